import Testing
import TestSupport
@testable import Pipeline

/// Fixtures: compat/reference/gen_rng.py runs A1111 v1.10.1's own modules/rng.py ImageRNG (first() then two
/// next() calls) for each case and noise source.
@Suite struct ImageNoiseTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String, seeds: [Int64], subseeds: [Int64], strength: Float, resizeH: Int, resizeW: Int
        let ensd: Int64
        var description: String { name }
    }

    static let cases = [
        Case(name: "plain", seeds: [42, 43], subseeds: [7, 8], strength: 0, resizeH: 0, resizeW: 0, ensd: 0),
        Case(name: "subseed", seeds: [42, 42], subseeds: [7, 8], strength: 0.3, resizeH: 0, resizeW: 0, ensd: 0),
        Case(name: "resize_smaller", seeds: [5], subseeds: [0], strength: 0, resizeH: 48, resizeW: 40, ensd: 0),
        Case(name: "resize_larger", seeds: [5], subseeds: [0], strength: 0, resizeH: 80, resizeW: 96, ensd: 0),
        Case(name: "resize_subseed", seeds: [9], subseeds: [11], strength: 0.5, resizeH: 48, resizeW: 80, ensd: 0),
        Case(name: "ensd", seeds: [42, 43], subseeds: [7, 8], strength: 0, resizeH: 0, resizeW: 0, ensd: 31337),
    ]

    @Test(arguments: cases, [NoiseSourceKind.cpu, .nv])
    func matchesA1111ImageRNG(c: Case, source: NoiseSourceKind) throws {
        let file = try Fixtures.safetensors("rng/image_rng.safetensors")
        let noise = ImageNoise(shape: [4, 8, 8], seeds: c.seeds, subseeds: c.subseeds, subseedStrength: c.strength,
                               resizeFromH: c.resizeH, resizeFromW: c.resizeW, source: source,
                               etaNoiseSeedDelta: c.ensd)
        for step in ["first", "next1", "next2"] {
            let want = try file.tensor("\(source.rawValue)/\(c.name)/\(step)")
            let got = try noise.next()
            if c.strength == 0 {
                #expect(got.scalars == want.scalars, "\(step): not bit-identical")
            } else {
                // slerp's norms and dot products are float32 reductions whose order differs from torch's.
                let closeness = Closeness(got, want)
                #expect(closeness.maxAbs < 2e-6, "\(step): \(closeness)")
            }
        }
    }
}
