import Foundation
import Testing
import TestSupport
import ModelIO
@testable import Sampling

/// fixtures/sampling/brownian.*: numpy SeedSequence states, k-diffusion BrownianTreeNoiseSampler queries over
/// torchsde trees seeded as A1111 seeds them (per-image seeds, node normals from a freshly seeded CPU generator,
/// recorded per seed), and the SDE samplers end to end with that noise.
/// Tolerance: 1e-6 of peak for queries (measured: bit-equal), 5e-6 for whole runs (measured ≤ 1e-6).
struct BrownianTreeTests {
    struct Query: Decodable { let index: Int; let sigma: Float; let sigma_next: Float }
    struct Run: Decodable { let key: String; let sampler: String; let steps: Int; let sigmas: [Float] }
    struct SeedSeq: Decodable { let entropy: UInt64; let spawn_key: [UInt64]; let state: [UInt32] }
    struct Meta: Decodable { let seeds: [UInt64]; let queries: [Query]; let runs: [Run]; let seed_sequences: [SeedSeq] }

    static func load() throws -> (Meta, SafetensorsFile, SeededNormal) {
        let meta = try Fixtures.json("sampling/brownian.json", as: Meta.self)
        let file = try Fixtures.safetensors("sampling/brownian.safetensors")
        let normal: SeededNormal = { seed, shape in
            let t = try file.tensor("seeded|\(seed)")
            guard t.shape == shape else { throw TensorError.shapeMismatch(op: "seeded", expected: shape, got: t.shape) }
            return t
        }
        return (meta, file, normal)
    }

    @Test func seedSequenceMatchesNumpy() throws {
        let (meta, _, _) = try Self.load()
        for s in meta.seed_sequences {
            let got = NumpySeedSequence.generateState(entropy: s.entropy, spawnKey: s.spawn_key, poolSize: 24, count: 4)
            #expect(got == s.state, "entropy \(s.entropy) spawn \(s.spawn_key)")
        }
    }

    @Test func noiseSamplerQueriesMatchTorchsde() throws {
        let (meta, file, normal) = try Self.load()
        let sigmas = try #require(meta.runs.first { $0.sampler == "DPM++ SDE" && $0.steps == 9 }).sigmas
        let noise = try A1111BrownianNoise(sigmas: sigmas, imageShape: [4, 3, 3], seeds: meta.seeds, normal: normal)
        for q in meta.queries {
            let got = try noise(q.sigma, q.sigma_next)
            let c = Closeness(got, try file.tensor("brownian_query|\(q.index)"))
            #expect(c.relativeToPeak <= 1e-6, "query \(q.index): \(c)")
        }
    }

    @Test func sdeSamplersMatchA1111WithBrownianTrees() throws {
        let (meta, file, normal) = try Self.load()
        let mean = try file.tensor("brownian_mean"), noise0 = try file.tensor("brownian_noise0")
        for r in meta.runs {
            let sampler = try #require(SamplerRegistry.named(r.sampler))
            let plan = try SamplingPlan(sampler: sampler, scheduler: .automatic, steps: r.steps, model: .sd1)
            #expect(ScheduleTests.close(plan.sigmas, r.sigmas), "\(r.key) sigmas")
            // The trees resolve noise levels to 1e-6, so the run uses torch's exact float32 sigmas.
            let trees = try A1111BrownianNoise(sigmas: r.sigmas, imageShape: [4, 3, 3], seeds: meta.seeds, normal: normal)
            let noise = SamplingNoise(randn: { throw SamplingError.invalidParameter("no randn expected") },
                                      brownian: { try trees($0, $1) })
            let run = SamplingRun(denoiser: { x, s in Analytic.denoise(x, s, mean: mean) }, noise: noise)
            let x = noise0 * r.sigmas[0]
            let out: Tensor
            switch sampler.algorithm {
            case .dpmppSDE: out = try run.sampleDPMPPSDE(x, sigmas: r.sigmas, eta: 1, sNoise: 1)
            case let .dpmpp2MSDE(heun): out = try run.sampleDPMPP2MSDE(x, sigmas: r.sigmas, eta: 1, sNoise: 1, heun: heun)
            case .dpmpp3MSDE: out = try run.sampleDPMPP3MSDE(x, sigmas: r.sigmas, eta: 1, sNoise: 1)
            default: Issue.record("\(r.sampler) is not an SDE sampler"); continue
            }
            let c = Closeness(out, try file.tensor(r.key))
            #expect(c.relativeToPeak <= 5e-6, "\(r.key): \(c)")
        }
    }
}
