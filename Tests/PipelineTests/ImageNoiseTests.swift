import Foundation
import Testing
import TestSupport
@testable import Pipeline

/// Fixtures: compat/reference/gen_rng.py runs A1111 v1.10.1's own modules/rng.py `ImageRNG` (first() then the
/// listed next() calls) for each case. Noise without variation seeds must be bit-identical; with a variation
/// seed, slerp's float32 reductions and trigonometry differ from torch's by a few ulps, so a bound is stated.
@Suite struct ImageNoiseTests {
    struct Case: Decodable, Sendable, CustomStringConvertible {
        let name: String
        let source: String
        let seeds: [Int64]
        let subseeds: [Int64]
        let subseed_strength: Double
        let seed_resize_from_w: Int
        let seed_resize_from_h: Int
        let eta_noise_seed_delta: Int64
        let next_calls: Int
        var description: String { name }
    }

    struct Spec: Decodable {
        let shape: [Int]
        let cases: [Case]
    }

    static let spec: Spec? = try? Fixtures.json("rng/image_rng.json")

    static func noise(_ c: Case, shape: [Int]) throws -> ImageNoise {
        try ImageNoise(shape: shape, seeds: c.seeds, subseeds: c.subseeds, subseedStrength: c.subseed_strength,
                       seedResizeFromW: c.seed_resize_from_w, seedResizeFromH: c.seed_resize_from_h,
                       source: try #require(NoiseSourceKind(rawValue: c.source)),
                       etaNoiseSeedDelta: c.eta_noise_seed_delta)
    }

    @Test func fixtureListsEveryKindOfCase() throws {
        let spec = try #require(Self.spec)
        #expect(spec.cases.count >= 12)
        #expect(spec.cases.contains { $0.subseed_strength != 0 && $0.seed_resize_from_w > 0 })
        #expect(spec.cases.contains { $0.eta_noise_seed_delta != 0 && $0.source == "NV" })
    }

    @Test(arguments: spec?.cases ?? [])
    func matchesA1111ImageRNG(c: Case) throws {
        let shape = try #require(Self.spec).shape
        let file = try Fixtures.safetensors("rng/image_rng.safetensors")
        let noise = try Self.noise(c, shape: shape)
        let steps = ["first"] + (0..<c.next_calls).map { "next\($0 + 1)" }
        for step in steps {
            let want = try file.tensor("\(c.name).\(step)")
            let got = try noise.next()
            #expect(got.shape == [c.seeds.count] + shape)
            if c.subseed_strength == 0 || step != "first" {
                #expect(got.scalars.map(\.bitPattern) == want.scalars.map(\.bitPattern), "\(step): not bit-identical")
            } else {
                let closeness = Closeness(got, want)
                #expect(closeness.maxAbs < 1e-6, "\(step): \(closeness)")
            }
        }
    }

    @Test func gpuSourceIsTheNVStream() throws {
        let gpu = try ImageNoise(shape: [4, 6, 5], seeds: [3, 4], source: .gpu, etaNoiseSeedDelta: 9)
        let nv = try ImageNoise(shape: [4, 6, 5], seeds: [3, 4], source: .nv, etaNoiseSeedDelta: 9)
        for _ in 0..<3 { #expect(try gpu.next() == nv.next()) }
    }

    @Test func seededNormalIsAFreshGeneratorsFirstDraw() throws {
        let noise = try ImageNoise(shape: [4, 6, 5], seeds: [3], source: .cpu)
        var g = TorchGenerator(seed: UInt64(123))
        #expect(try noise.seededNormal(seed: 123, shape: [2, 17]) == g.randn([2, 17]))
        #expect(try noise.seededNormal(seed: 123, shape: [2, 17]) == noise.seededNormal(seed: 123, shape: [2, 17]))
    }

    @Test func rejectsAShapeThatIsNotCHW() {
        #expect(throws: TensorError.self) { try ImageNoise(shape: [4, 8], seeds: [1], source: .cpu) }
    }
}
