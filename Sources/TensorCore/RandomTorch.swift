import Foundation

/// The 32-bit Mersenne Twister as PyTorch's CPU generator runs it (`at::mt19937`).
/// Matches: aten/src/ATen/core/MT19937RNGEngine.h
public struct MT19937: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    /// Seeds like `torch.manual_seed(seed)`: the low 32 bits initialise the state.
    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
        }
        index = 0
    }
}

/// `torch.randn` on a CPU `torch.Generator` seeded with `manual_seed(seed)`, bit for bit.
///
/// Tensors of ≥ 16 elements take ATen's vectorised path (what A1111 runs on any x86-64 CPU with AVX2, AVX-512
/// included): all uniforms first, Box–Muller in blocks of 16 with avx_mathfun's log/sincos polynomials (the fused
/// multiply-adds are where GCC contracts them in the AVX2 kernel build), the tail recomputed from 16 fresh uniforms.
/// Smaller tensors take the scalar double path, which caches the second Box–Muller value across calls.
/// Matches: aten/src/ATen/native/cpu/DistributionKernels.cpp normal_kernel / normal_fill_AVX2,
/// aten/src/ATen/native/cpu/avx_mathfun.h log256_ps / sincos256_ps, aten/src/ATen/core/DistributionsHelper.h
public struct TorchGenerator: Sendable {
    private var engine: MT19937
    private var cachedNormal: Double?

    public init(seed: UInt64) {
        engine = MT19937(seed: seed)
    }

    /// Uniform in [0, 1) from 24 random bits (`uniform_real_distribution<float>`).
    mutating func uniformFloat() -> Float {
        Float(engine.next() & 0xFF_FFFF) * 0x1p-24
    }

    /// Uniform in [0, 1) from 53 random bits of `random64()` (high word drawn first).
    mutating func uniformDouble() -> Double {
        let hi = UInt64(engine.next()), lo = UInt64(engine.next())
        return Double(((hi << 32) | lo) & ((1 << 53) - 1)) * 0x1p-53
    }

    /// One standard normal from the scalar path (`at::normal_distribution<double>`).
    mutating func normalDouble() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let r = (-2 * log1p(-u2)).squareRoot()
        let theta = 2 * Double.pi * u1
        cachedNormal = r * sin(theta)
        return r * cos(theta)
    }

    /// Standard normal values shaped `shape`, as `torch.randn(shape, generator=g)` draws them.
    public mutating func randn(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: n)
        if n < 16 {
            for i in 0..<n { data[i] = Float(normalDouble()) }
            return Tensor(shape: shape, scalars: data)
        }
        for i in 0..<n { data[i] = uniformFloat() }
        data.withUnsafeMutableBufferPointer { d in
            var i = 0
            while i + 16 <= n {
                Self.boxMuller16(d.baseAddress! + i)
                i += 16
            }
            if n % 16 != 0 {
                let tail = d.baseAddress! + n - 16
                for j in 0..<16 { tail[j] = uniformFloat() }
                Self.boxMuller16(tail)
            }
        }
        return Tensor(shape: shape, scalars: data)
    }

    /// Box–Muller over 16 uniforms in place: u1 = 1 − d[j], u2 = d[j + 8] for j < 8.
    static func boxMuller16(_ d: UnsafeMutablePointer<Float>) {
        let twoPi = Float(2 * Double.pi)
        for j in 0..<8 {
            let u1 = 1 - d[j], u2 = d[j + 8]
            let radius = (-2 * AVXMath.log(u1)).squareRoot()
            let (s, c) = AVXMath.sincos(twoPi * u2)
            d[j] = radius * c
            d[j + 8] = radius * s
        }
    }
}

/// Scalar ports of the Cephes-based polynomials in avx_mathfun.h as PyTorch's AVX2 kernels evaluate them.
enum AVXMath {
    /// Natural log for positive normal inputs.
    static func log(_ input: Float) -> Float {
        let x0 = max(input, Float(bitPattern: 0x0080_0000))
        let exponent = Int32(bitPattern: x0.bitPattern >> 23) - 0x7F
        var x = Float(bitPattern: (x0.bitPattern & ~0x7F80_0000) | Float(0.5).bitPattern)
        var e = Float(exponent) + 1
        let small = x < 0.707106781186547524
        let tmp: Float = small ? x : 0
        x = x - 1
        e = e - (small ? 1 : 0)
        x = x + tmp
        let z = x * x
        var y: Float = 7.0376836292E-2
        for c: Float in [-1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
                         -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1] {
            y = c.addingProduct(y, x)
        }
        y = y * x
        y = (e * -2.12194440e-4).addingProduct(y, z)
        y = y.addingProduct(z, -0.5)
        x = x + y
        return x.addingProduct(e, 0.693359375)
    }

    /// (sin x, cos x) for x ≥ 0 of moderate size.
    static func sincos(_ input: Float) -> (sin: Float, cos: Float) {
        var signSin = input.sign == .minus
        var x = abs(input)
        var j = Int32(x * 1.27323954473516)
        j = (j + 1) & ~1
        let y = Float(j)
        let swapSin = (j & 4) != 0
        let firstPoly = (j & 2) == 0
        x = x.addingProduct(y, -0.78515625)
        x = x.addingProduct(y, -2.4187564849853515625e-4)
        x = x.addingProduct(y, -3.77489497744594108e-8)
        let signCos = (~(j - 2) & 4) != 0
        signSin = signSin != swapSin
        let z = x * x
        var c: Float = 2.443315711809948E-005
        c = Float(-1.388731625493765E-003).addingProduct(c, z)
        c = Float(4.166664568298827E-002).addingProduct(c, z)
        c = c * z
        c = (-(z * 0.5)).addingProduct(c, z)
        c = c + 1
        var s: Float = -1.9515295891E-4
        s = Float(8.3321608736E-3).addingProduct(s, z)
        s = Float(-1.6666654611E-1).addingProduct(s, z)
        s = s * z
        s = x.addingProduct(s, x)
        let sinValue = firstPoly ? s : c
        let cosValue = firstPoly ? c : s
        return (signSin ? -sinValue : sinValue, signCos ? -cosValue : cosValue)
    }
}
