import Testing
import TestSupport
@testable import TensorCore

/// Fixtures: compat/reference/gen_rng.py (torch.randn on seeded CPU generators; A1111's rng_philox.py).
/// Equality is exact: the noise must be A1111's bit for bit.
@Suite struct RandomTests {
    static let seeds: [UInt64] = [0, 1, 42, 12345, 4_294_967_295]
    static let sizes: [(String, [Int])] = [("1", [1]), ("15", [15]), ("16", [16]), ("17", [17]),
                                           ("4x64x64", [4, 64, 64])]

    @Test(arguments: seeds)
    func torchRandnIsBitExact(seed: UInt64) throws {
        let file = try Fixtures.safetensors("rng/torch_randn.safetensors")
        for (name, shape) in Self.sizes {
            var g = TorchGenerator(seed: seed)
            let got = g.randn(shape)
            let want = try file.tensor("\(seed)/\(name)")
            #expect(got.scalars == want.scalars, "seed \(seed) size \(name)")
        }
    }

    /// Several draws from one generator, including a small one that leaves a cached normal behind.
    @Test(arguments: seeds)
    func successiveDrawsContinueTheStream(seed: UInt64) throws {
        var g = TorchGenerator(seed: seed)
        let parts = [g.randn([3]), g.randn([4, 8, 8]), g.randn([5]), g.randn([33])]
        let want = try Fixtures.safetensors("rng/torch_randn.safetensors").tensor("\(seed)/seq")
        #expect(parts.flatMap(\.scalars) == want.scalars)
    }

    @Test(arguments: seeds + [1 << 40 + 7])
    func philoxMatchesA1111(seed: UInt64) throws {
        let file = try Fixtures.safetensors("rng/philox.safetensors")
        var g = PhiloxGenerator(seed: seed)
        for (name, shape) in Self.sizes {
            let want = try file.tensor("\(seed)/\(name)")
            #expect(g.randn(shape).scalars == want.scalars, "seed \(seed) size \(name)")
        }
    }
}
