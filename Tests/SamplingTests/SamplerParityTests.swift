import Foundation
import Testing
import TestSupport
import ModelIO
@testable import Sampling

/// Every sampler against k-diffusion (ab527a9) / A1111's timestep samplers over the analytic model with recorded
/// noise (fixtures/sampling/samplers.*, made by compat/reference/gen_sampling.py).
/// Tolerance: max |Δ| ≤ 5e-6 of the result's peak (float32 both sides, coefficients rounded differently; measured
/// ≤ 2.3e-6, the worst a 4th-order UniPC), 2e-5 for DPM fast / adaptive (torch keeps t = −log σ in float32; measured ≤ 1.2e-5).
struct SamplerParityTests {
    struct Params: Decodable {
        let eta: Float; let s_churn: Float; let s_tmin: Float; let s_tmax: Float; let s_noise: Float
        let eta_ddim: Float; let cfg_scale: Float
    }
    struct Run: Decodable {
        let key: String; let sampler: String; let steps: Int; let params: String
        let noise_used: Int; let model_calls: Int; let callbacks: Int; let schedule: [Float]
        let scheduler: String; let t_enc: Int?; let unipc: UniPC?; let batch: Int?
    }
    struct UniPC: Decodable { let variant: String; let skip_type: String; let order: Int; let lower_order_final: Bool }
    struct Wrapper: Decodable { let index: Int; let sigma: Float }
    struct Meta: Decodable { let shape: [Int]; let params: [String: Params]; let runs: [Run]; let wrappers: [Wrapper] }

    static let meta: Meta? = try? Fixtures.json("sampling/samplers.json", as: Meta.self)
    static let tensors: SafetensorsFile? = try? Fixtures.safetensors("sampling/samplers.safetensors")
    static var runKeys: [String] { meta?.runs.map(\.key) ?? [] }

    @Test(arguments: SamplerParityTests.runKeys)
    func samplerMatchesReference(_ key: String) throws {
        let meta = try #require(Self.meta), file = try #require(Self.tensors)
        let r = try #require(meta.runs.first { $0.key == key })
        let p = try #require(meta.params[r.params])
        let fullMean = try file.tensor("mean"), meanUncond = try file.tensor("mean_uncond")
        let mean = r.batch.map { fullMean.slice(axis: 0, 0..<$0) } ?? fullMean
        let allNoise0 = try file.tensor("noise0")
        let noise0 = r.batch.map { allNoise0.slice(axis: 0, 0..<$0) } ?? allNoise0
        let list = try file.tensor("noise_list")
        let count = list.shape[0], per = list.count / count
        let noises = (0..<count).map { i in
            Tensor(shape: allNoise0.shape, scalars: Array(list.scalars[(i * per)..<((i + 1) * per)]))
        }
        let recorded = RecordedNoise(noises)
        let sampler = try #require(SamplerRegistry.named(r.sampler))
        let scheduler = try #require(ScheduleType(nameOrLabel: r.scheduler))
        let plan = try SamplingPlan(sampler: sampler, scheduler: scheduler, steps: r.steps, model: .sd1)
        if sampler.algorithm.family == .timesteps {
            let used = r.t_enc.map { Array(plan.timesteps[..<$0]) } ?? plan.timesteps
            #expect(used.map(Float.init) == r.schedule)
        } else {
            let used = r.t_enc.map { Array(plan.sigmas[(r.steps - $0 - 1)...]) } ?? plan.sigmas
            #expect(ScheduleTests.close(used, r.schedule), "\(key) sigmas")
        }

        var guidance: ClassifierFreeGuidance?
        var denoiser: Denoiser = { x, s in Analytic.denoise(x, s, mean: mean) }
        if sampler.algorithm == .ddimCFGPlusPlus {
            let cfg = ClassifierFreeGuidance(scale: p.cfg_scale) { x2, s in
                let halves = x2.chunked(2, axis: 0)
                return Tensor.concat([Analytic.denoise(halves[0], s, mean: mean),
                                      Analytic.denoise(halves[1], s, mean: meanUncond)], axis: 0)
            }
            guidance = cfg
            denoiser = cfg.denoiser
        }
        let eta = sampler.algorithm.family == .timesteps ? p.eta_ddim : p.eta
        var params = SamplerParameters(eta: eta, sChurn: p.s_churn, sTmin: p.s_tmin, sTmax: p.s_tmax, sNoise: p.s_noise)
        if let u = r.unipc {
            params.uniPC = UniPCOptions(variant: try #require(UniPCOptions.Variant(rawValue: u.variant)),
                                        skipType: try #require(UniPCOptions.SkipType(rawValue: u.skip_type)),
                                        order: u.order, lowerOrderFinal: u.lower_order_final)
        }
        var callbacks = 0
        let run = SamplingRun(denoiser: denoiser, noise: SamplingNoise(randn: recorded.next), parameters: params,
                              callback: { _ in callbacks += 1; return .proceed }, guidance: guidance)
        let out = try r.t_enc.map { try plan.sampleImg2Img(latent: file.tensor("latent"), noise: noise0, tEnc: $0, run: run) }
            ?? plan.sample(noise: noise0, run: run)
        let expected = try file.tensor(key)
        let c = Closeness(out, expected)
        let tolerance: Float = [.dpmFast, .dpmAdaptive].contains(sampler.algorithm) ? 2e-5 : 5e-6
        #expect(c.relativeToPeak <= tolerance, "\(key): \(c)")
        #expect(recorded.used == r.noise_used, "\(key) noise draws")
        #expect(run.modelCalls == r.model_calls, "\(key) model calls")
        #expect(callbacks == r.callbacks, "\(key) callbacks")
    }

    @Test func wrappersMatchKDiffusionAndA1111LCM() throws {
        let meta = try #require(Self.meta), file = try #require(Self.tensors)
        let mean = try file.tensor("mean")
        let eps: EpsPredictor = { x, t in Analytic.eps(x, t, mean: mean) }
        let compvis = Denoisers.discreteEps(eps, schedule: .sd1)
        let lcm = Denoisers.lcm(eps, schedule: try LCMNoiseSchedule(.sd1))
        for w in meta.wrappers {
            let x = try file.tensor("wrap_in|\(w.index)")
            let a = Closeness(try compvis(x, w.sigma), try file.tensor("wrap_compvis|\(w.index)"))
            #expect(a.relativeToPeak <= 1e-5, "CompVis σ=\(w.sigma): \(a)")
            let b = Closeness(try lcm(x, w.sigma), try file.tensor("wrap_lcm|\(w.index)"))
            #expect(b.relativeToPeak <= 1e-5, "LCM σ=\(w.sigma): \(b)")
        }
    }
}
