import Foundation

/// A1111's "NV" noise: Philox 4x32-10 counters turned into normals the way NVIDIA's torch.randn on CUDA does,
/// computed on the CPU. Each `randn` call uses a new counter offset; element i uses counter (offset, 0, i, 0) and
/// key = the 64-bit seed, and keeps the first Box–Muller value of the first two words.
/// Matches: modules/rng_philox.py Generator
public struct PhiloxGenerator: Sendable {
    public let seed: UInt64
    public private(set) var offset: UInt32 = 0

    public init(seed: UInt64) { self.seed = seed }

    static let m0: UInt32 = 0xD251_1F53, m1: UInt32 = 0xCD9E_8D57
    static let w0: UInt32 = 0x9E37_79B9, w1: UInt32 = 0xBB67_AE85
    /// float32(2.3283064e-10) and float32(2.3283064e-10 · 6.2831855) as rng_philox.py stores them.
    static let twoPow32Inv = Double(Float(2.3283064e-10))
    static let twoPow32Inv2Pi = Double(Float(2.3283064e-10 * 6.2831855))

    /// Ten Philox rounds for one counter; returns the first two output words.
    static func philox(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32) {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            let v1 = UInt64(c0) &* UInt64(m0), v2 = UInt64(c2) &* UInt64(m1)
            (c0, c1, c2, c3) = (UInt32(truncatingIfNeeded: v2 >> 32) ^ c1 ^ k0, UInt32(truncatingIfNeeded: v2),
                                UInt32(truncatingIfNeeded: v1 >> 32) ^ c3 ^ k1, UInt32(truncatingIfNeeded: v1))
            if round < 9 { k0 = k0 &+ w0; k1 = k1 &+ w1 }
        }
        return (c0, c1)
    }

    /// Standard normal values shaped `shape` (numpy float64 arithmetic, then float32, as rng_philox.py).
    public mutating func randn(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        let off = offset
        offset &+= 1
        return Tensor(uninitialized: shape) { out in
            for i in 0..<n {
                let (x, y) = Self.philox(counter: (off, 0, UInt32(truncatingIfNeeded: i), 0), key: key)
                let u = Double(x) * Self.twoPow32Inv + Double(Float(Self.twoPow32Inv) / 2)
                let v = Double(y) * Self.twoPow32Inv2Pi + Double(Float(Self.twoPow32Inv2Pi) / 2)
                out[i] = Float((-2 * Foundation.log(u)).squareRoot() * Foundation.sin(v))
            }
        }
    }
}
