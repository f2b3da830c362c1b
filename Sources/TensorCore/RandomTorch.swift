import Foundation

/// A source of standard-normal tensors that advances with every draw (torch's CPU generator, A1111's Philox).
public protocol NormalGenerator {
    /// The next `shape`-sized block of N(0, 1) samples, float32, row-major.
    mutating func randn(_ shape: [Int]) -> Tensor
}

/// The 32-bit Mersenne Twister exactly as PyTorch seeds and steps it.
/// Matches: aten/src/ATen/core/MT19937RNGEngine.h mt19937 (init_with_uint32, next_state, operator())
public struct MT19937: Sendable {
    private static let n = 624, m = 397
    private static let matrixA: UInt32 = 0x9908_b0df, upperMask: UInt32 = 0x8000_0000, lowerMask: UInt32 = 0x7fff_ffff

    private var state: [UInt32]
    private var left = 1
    private var next = 0

    /// PyTorch keeps the 64-bit seed but fills the state from its low 32 bits only.
    public init(seed: UInt64) {
        var s = [UInt32](repeating: 0, count: Self.n)
        s[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<Self.n {
            s[j] = 1_812_433_253 &* (s[j - 1] ^ (s[j - 1] >> 30)) &+ UInt32(j)
        }
        state = s
    }

    /// Regenerates all 624 words (the standard twist); called when the current block is used up.
    private mutating func twist() {
        left = Self.n
        next = 0
        state.withUnsafeMutableBufferPointer { s in
            @inline(__always) func mix(_ u: UInt32, _ v: UInt32) -> UInt32 {
                let y = (u & Self.upperMask) | (v & Self.lowerMask)
                return (y >> 1) ^ ((v & 1) == 0 ? 0 : Self.matrixA)
            }
            for i in 0..<(Self.n - Self.m) {
                s[i] = s[i + Self.m] ^ mix(s[i], s[i + 1])
            }
            for i in (Self.n - Self.m)..<(Self.n - 1) {
                s[i] = s[i + Self.m - Self.n] ^ mix(s[i], s[i + 1])
            }
            s[Self.n - 1] = s[Self.m - 1] ^ mix(s[Self.n - 1], s[0])
        }
    }

    /// The next tempered 32-bit output.
    public mutating func next32() -> UInt32 {
        left -= 1
        if left == 0 { twist() }
        var y = state[next]
        next += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }
}

/// Which of PyTorch's float32 `normal_fill` kernels to reproduce for tensors of 16 or more elements.
public enum TorchNormalKernel: String, Sendable, CaseIterable {
    /// x86-64 builds on AVX2 or AVX512 machines (the normal kernel is never dispatched to AVX512):
    /// `normal_fill_16_AVX2` with avx_mathfun's Cephes log/sincos, FMA-contracted as GCC compiles it.
    case avx2
    /// The portable kernel (`ATEN_CPU_CAPABILITY=default`, CPUs without AVX2): libm `logf`/`cosf`/`sinf`.
    case generic
}

/// `torch.Generator("cpu").manual_seed(seed)` followed by any number of `torch.randn(shape, generator=g)` calls,
/// bit-identical: mt19937, 24-bit float uniforms filled first then Box-Muller in blocks of 16 (the last,
/// partial block redrawn) for ≥ 16 elements; per-element double Box-Muller with the cached second sample
/// (53-bit uniforms) for fewer.
/// Matches: aten/src/ATen/native/cpu/DistributionTemplates.h normal_kernel / normal_fill / normal_fill_AVX2,
/// aten/src/ATen/core/DistributionsHelper.h normal_distribution<double>, CPUGeneratorImpl random/random64
public struct TorchGenerator: NormalGenerator, Sendable {
    public private(set) var seed: UInt64
    public let kernel: TorchNormalKernel
    private var engine: MT19937
    /// CPUGeneratorImpl's next_double_normal_sample: the sine half of the last scalar Box-Muller pair.
    private var cachedNormal: Double?

    public init(seed: UInt64, kernel: TorchNormalKernel = .avx2) {
        self.seed = seed
        self.kernel = kernel
        engine = MT19937(seed: seed)
    }


    /// Re-seeds in place (clears the cached normal), as `manual_seed` does.
    public mutating func manualSeed(_ seed: UInt64) {
        self = TorchGenerator(seed: seed, kernel: kernel)
    }

    public mutating func random32() -> UInt32 { engine.next32() }

    /// Two draws, the first in the high half. Matches: CPUGeneratorImpl::random64, make64BitsFrom32Bits
    public mutating func random64() -> UInt64 {
        let hi = UInt64(engine.next32())
        return (hi << 32) | UInt64(engine.next32())
    }

    /// uniform_real_distribution<float>(0, 1): the low 24 bits of one draw × 2⁻²⁴.
    public mutating func uniformFloat() -> Float {
        Float(random32() & 0x00ff_ffff) * 0x1p-24
    }

    /// uniform_real_distribution<double>(0, 1): the low 53 bits of `random64()` × 2⁻⁵³.
    public mutating func uniformDouble() -> Double {
        Double(random64() & 0x001f_ffff_ffff_ffff) * 0x1p-53
    }

    /// One sample of normal_distribution<double>(0, 1), using and refilling the cached second sample.
    public mutating func normalDouble() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = uniformDouble()
        let u2 = uniformDouble()
        let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    public mutating func randn(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: randn(count: shape.reduce(1, *)))
    }

    /// `count` samples as `torch.randn(count)` draws them.
    public mutating func randn(count: Int) -> [Float] {
        guard count >= 16 else {
            return (0..<count).map { _ in Float(normalDouble()) }
        }
        var data = [Float](repeating: 0, count: count)
        data.withUnsafeMutableBufferPointer { buffer in
            let p = buffer.baseAddress!
            for i in 0..<count { p[i] = uniformFloat() }
            var i = 0
            while i + 16 <= count {
                boxMuller16(p + i)
                i += 16
            }
            if count % 16 != 0 {
                let tail = p + count - 16
                for j in 0..<16 { tail[j] = uniformFloat() }
                boxMuller16(tail)
            }
        }
        return data
    }

    /// Turns 16 uniforms in place into 16 normals: pairs (j, j + 8) give cosine at j and sine at j + 8.
    private func boxMuller16(_ data: UnsafeMutablePointer<Float>) {
        switch kernel {
        case .avx2:
            let twoPi = Float(2.0 * Double.pi)
            for j in 0..<8 {
                let u1 = 1 - data[j]
                let u2 = data[j + 8]
                let radius = (-2 * CephesFloat.log(u1)).squareRoot()
                let (s, c) = CephesFloat.sincos(twoPi * u2)
                // The kernel ends with fmadd(n, std = 1, mean = 0), which turns -0 into +0.
                data[j] = Float(0).addingProduct(radius * c, 1)
                data[j + 8] = Float(0).addingProduct(radius * s, 1)
            }
        case .generic:
            for j in 0..<8 {
                let u1 = 1 - data[j]
                let u2 = data[j + 8]
                let radius = (-2 * Foundation.log(u1)).squareRoot()
                // `2.0f * pi<double> * u2` is a double product narrowed to float.
                let theta = Float(2.0 * Double.pi * Double(u2))
                data[j] = radius * Foundation.cos(theta) * 1 + 0
                data[j + 8] = radius * Foundation.sin(theta) * 1 + 0
            }
        }
    }
}
