import Foundation

/// A1111's "NV" random source: Philox 4x32-10 with Box-Muller, which reproduces `torch.randn` on an NVIDIA GPU.
/// Each `randn` call uses counter `(offset, 0, i, 0)` for element `i` and key = the seed's two 32-bit halves,
/// keeps the first two words of each block, and then advances `offset` by one (whatever the size).
/// Box-Muller runs in double precision from float32 constants and keeps only the sine sample, as numpy does there.
/// Matches: modules/rng_philox.py Generator.randn, philox4_32, box_muller (A1111 v1.10.1)
public struct PhiloxGenerator: NormalGenerator, Sendable {
    public let seed: UInt64
    public private(set) var offset: UInt32 = 0

    private static let m0: UInt64 = 0xD251_1F53, m1: UInt64 = 0xCD9E_8D57
    private static let w0: UInt32 = 0x9E37_79B9, w1: UInt32 = 0xBB67_AE85
    /// The float32 constants of rng_philox.py, widened as numpy widens them against uint32 inputs.
    private static let inv32 = Double(Float(2.3283064e-10 as Double))
    private static let halfInv32 = Double(Float(2.3283064e-10 as Double) / 2)
    private static let inv32TwoPi = Double(Float((2.3283064e-10 as Double) * (6.2831855 as Double)))
    private static let halfInv32TwoPi = Double(Float((2.3283064e-10 as Double) * (6.2831855 as Double)) / 2)

    public init(seed: UInt64) {
        self.seed = seed
    }


    /// The first two output words of Philox4x32-10 for counter (c0, 0, c2, 0).
    @inline(__always)
    static func block(c0: UInt32, c2: UInt32, key: UInt64) -> (UInt32, UInt32) {
        var c = (c0, UInt32(0), c2, UInt32(0))
        var k0 = UInt32(truncatingIfNeeded: key), k1 = UInt32(truncatingIfNeeded: key >> 32)
        for round in 0..<10 {
            let p0 = UInt64(c.0) &* m0, p2 = UInt64(c.2) &* m1
            c = (UInt32(truncatingIfNeeded: p2 >> 32) ^ c.1 ^ k0, UInt32(truncatingIfNeeded: p2),
                 UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k1, UInt32(truncatingIfNeeded: p0))
            if round < 9 {
                k0 = k0 &+ w0
                k1 = k1 &+ w1
            }
        }
        return (c.0, c.1)
    }

    /// Box-Muller on two words, first (sine) sample only.
    @inline(__always)
    static func normal(_ a: UInt32, _ b: UInt32) -> Float {
        let u = Double(a) * inv32 + halfInv32
        let v = Double(b) * inv32TwoPi + halfInv32TwoPi
        let s = (-2.0 * Foundation.log(u)).squareRoot()
        return Float(s * Foundation.sin(v))
    }

    public mutating func randn(_ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        let (key, c0) = (seed, offset)
        offset &+= 1
        return Tensor(uninitialized: shape) { out in
            for i in 0..<count {
                let (a, b) = Self.block(c0: c0, c2: UInt32(truncatingIfNeeded: i), key: key)
                out[i] = Self.normal(a, b)
            }
        }
    }
}
