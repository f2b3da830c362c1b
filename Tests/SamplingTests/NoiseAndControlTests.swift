import Foundation
import Testing
import TestSupport
@testable import Sampling

/// A small deterministic normal generator for property tests (LCG + Box–Muller).
final class TestNormals {
    private var state: UInt64
    let shape: [Int]

    init(seed: UInt64, shape: [Int]) {
        state = seed
        self.shape = shape
    }

    private func uniform() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Double(state >> 11) + 0.5) / Double(1 << 53)
    }

    func next() -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, scalars: (0..<n).map { _ in
            Float((-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()))
        })
    }
}

struct NoiseAndControlTests {
    static func moments(_ t: Tensor) -> (mean: Double, variance: Double) {
        let m = t.mean()
        let v = t.scalars.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(t.count)
        return (m, v)
    }

    @Test func brownianIncrementsAreConsistentAndStandardNormal() throws {
        let normals = TestNormals(seed: 7, shape: [4, 64, 64])
        let tree = try BrownianNoiseSampler(sigmaMin: 0.03, sigmaMax: 14.6, normal: normals.next)
        let a: Float = 14.6, b: Float = 3.0, c: Float = 0.5
        let ac = try tree(a, c)      // drawn first: the later queries are bridges inside it
        let ab = try tree(a, b)
        let bc = try tree(b, c)
        // W(c) − W(a) = (W(b) − W(a)) + (W(c) − W(b))
        let lhs = ac * (a - c).squareRoot()
        let rhs = ab * (a - b).squareRoot() + bc * (b - c).squareRoot()
        #expect(Closeness(lhs, rhs).maxAbs <= 1e-4)
        // reversed interval flips the sign
        let ca = try tree(c, a)
        #expect(Closeness(ca, -ac).maxAbs <= 1e-6)
        for t in [ac, ab, bc] {
            let (m, v) = Self.moments(t)
            #expect(abs(m) < 0.05 && abs(v - 1) < 0.05, "mean \(m) variance \(v)")
        }
        // the two halves of a split interval are uncorrelated
        let corr = zip(ab.scalars, bc.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / Double(ab.count)
        #expect(abs(corr) < 0.05)
    }

    @Test func sdeSamplerUsesBrownianNoiseOverTheWholeSchedule() throws {
        let sampler = try #require(SamplerRegistry.named("DPM++ SDE"))
        let plan = try SamplingPlan(sampler: sampler, scheduler: .automatic, steps: 6, model: .sd1)
        let normals = TestNormals(seed: 3, shape: [1, 4, 8, 8])
        var randnCalls = 0
        let noise = try plan.noise(randn: { randnCalls += 1; return normals.next() }, seeds: [42],
                                   imageShape: [4, 8, 8], seededNormal: { seed, shape in
                                       TestNormals(seed: seed, shape: shape).next()
                                   })
        let run = SamplingRun(denoiser: { x, s in x.map { $0 / (1 + s * s) } }, noise: noise)
        let out = try plan.sample(noise: normals.next(), run: run)
        #expect(randnCalls == 0)
        let finite = out.scalars.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(run.modelCalls == 11)
    }

    @Test func stoppingReturnsTheLastPrediction() throws {
        let sampler = try #require(SamplerRegistry.named("Euler"))
        let plan = try SamplingPlan(sampler: sampler, scheduler: .automatic, steps: 10, model: .sd1)
        let normals = TestNormals(seed: 5, shape: [1, 4, 8, 8])
        var seen = [Int]()
        let run = SamplingRun(denoiser: { x, s in x.map { tanhf($0) / (1 + s) } }, noise: SamplingNoise(randn: normals.next),
                              callback: { step in
                                  seen.append(step.index)
                                  #expect(step.total == 10)
                                  return step.index == 2 ? .stop : .proceed
                              })
        let out = try plan.sample(noise: normals.next(), run: run)
        #expect(seen == [0, 1, 2])
        #expect(run.stopped)
        #expect(run.modelCalls == 3)
        #expect(out == run.lastDenoised)
    }

    @Test func guidanceCombinesCondAndUncondHalves() throws {
        let cond = Tensor(shape: [1, 2], scalars: [1, 2]), uncond = Tensor(shape: [1, 2], scalars: [0.5, -1])
        var batch: [Int] = []
        let cfg = ClassifierFreeGuidance(scale: 3) { x2, _ in
            batch = x2.shape
            return Tensor.concat([cond, uncond], axis: 0)
        }
        let out = try cfg(Tensor(zeros: [1, 2]), 1)
        #expect(batch == [2, 2])
        let expected: [Float] = [0.5 + (1 - 0.5) * 3, -1 + (2 + 1) * 3]
        #expect(out.scalars == expected)
        #expect(cfg.lastUncond == uncond)
        let bad = ClassifierFreeGuidance(scale: 3) { x2, _ in x2.slice(axis: 0, 0..<1) }
        #expect(throws: TensorError.self) { try bad(Tensor(zeros: [1, 2]), 1) }
    }

    @Test func uniPCRejectsTooFewSteps() throws {
        let sampler = try #require(SamplerRegistry.named("UniPC"))
        let plan = try SamplingPlan(sampler: sampler, scheduler: .automatic, steps: 2, model: .sd1)
        let run = SamplingRun(denoiser: { x, _ in x }, noise: SamplingNoise(randn: { Tensor(zeros: [1, 1, 2, 2]) }))
        #expect(throws: SamplingError.self) { try plan.sample(noise: Tensor(zeros: [1, 1, 2, 2]), run: run) }
    }
}
