import Foundation
import Testing
import TestSupport
@testable import Sampling

/// Schedule fixtures come from A1111's sd_schedulers.py and k-diffusion run by compat/reference/gen_sampling.py.
/// Tolerance: 2e-6 relative per sigma (+1e-7 absolute): float32 rounding of the same formulas.
struct ScheduleTests {
    struct Case: Decodable {
        let scheduler: String
        let steps: Int
        let sigmas: [Float]
        let rho: Double?
        let sigma_min: Float?
        let sigma_max: Float?
        let sdxl: Bool?
    }
    struct LCMCase: Decodable { let steps: Int; let sigmas: [Float] }
    struct File: Decodable {
        let sigma_min: Float
        let sigma_max: Float
        let cases: [Case]
        let lcm: [LCMCase]
        let lcm_sigma_min: Float
        let lcm_sigma_max: Float
        let sigma_to_t: [[Float]]
        let t_to_sigma: [[Float]]
        let lcm_sigma_to_t: [[Float]]
    }

    static func close(_ a: [Float], _ b: [Float], rel: Float = 2e-6, abs absTol: Float = 1e-7) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { abs($0 - $1) <= absTol + rel * abs($1) }
    }

    @Test func sd1ModelSigmasAndTimestepMapping() throws {
        let f = try Fixtures.json("sampling/schedules.json", as: File.self)
        let m = NoiseSchedule.sd1
        #expect(m.sigmas.count == 1000)
        #expect(Self.close([m.sigmaMin, m.sigmaMax], [f.sigma_min, f.sigma_max]))
        for pair in f.sigma_to_t {
            #expect(abs(m.sigmaToT(pair[0]) - pair[1]) <= 2e-3, "sigma_to_t(\(pair[0])) = \(m.sigmaToT(pair[0])) vs \(pair[1])")
        }
        for pair in f.t_to_sigma {
            #expect(Self.close([m.tToSigma(pair[0])], [pair[1]]), "t_to_sigma(\(pair[0]))")
        }
    }

    @Test func everyScheduleTypeMatchesA1111() throws {
        let f = try Fixtures.json("sampling/schedules.json", as: File.self)
        let m = NoiseSchedule.sd1
        #expect(Set(f.cases.map(\.scheduler)) == Set(ScheduleType.allCases.map(\.name)))
        for c in f.cases {
            let type = try #require(ScheduleType(nameOrLabel: c.scheduler))
            var inputs = ScheduleInputs(model: m)
            if let lo = c.sigma_min, let hi = c.sigma_max { inputs.sigmaMin = lo; inputs.sigmaMax = hi }
            inputs.rho = c.rho
            inputs.isSDXL = c.sdxl ?? false
            let got = try type.sigmas(steps: c.steps, model: m, inputs: inputs)
            #expect(Self.close(got, c.sigmas), "\(c.scheduler) n=\(c.steps): \(got) vs \(c.sigmas)")
        }
    }

    @Test func lcmScheduleMatchesA1111() throws {
        let f = try Fixtures.json("sampling/schedules.json", as: File.self)
        let lcm = try LCMNoiseSchedule(.sd1)
        #expect(Self.close([lcm.sigmaMin, lcm.sigmaMax], [f.lcm_sigma_min, f.lcm_sigma_max]))
        for c in f.lcm {
            #expect(Self.close(lcm.defaultSigmas(steps: c.steps), c.sigmas), "LCM n=\(c.steps)")
        }
        for pair in f.lcm_sigma_to_t {
            #expect(lcm.sigmaToT(pair[0]) == pair[1], "LCM sigma_to_t(\(pair[0]))")
        }
    }

    @Test func discardPenultimateSigmaDropsTheSecondToLast() throws {
        let m = NoiseSchedule.sd1
        let dpm2 = try #require(SamplerRegistry.named("DPM2"))
        let plan = try SamplingPlan(sampler: dpm2, scheduler: .automatic, steps: 10, model: m)
        let full = try ScheduleType.karras.sigmas(steps: 11, model: m, inputs: ScheduleInputs(model: m))
        #expect(plan.sigmas == Array(full[..<10]) + [0])
        #expect(plan.scheduleType == .karras)
        var options = ScheduleOptions()
        options.alwaysDiscardNextToLastSigma = true
        let euler = try #require(SamplerRegistry.named("Euler"))
        let forced = try SamplingPlan(sampler: euler, scheduler: .automatic, steps: 10, model: m, options: options)
        #expect(forced.sigmas.count == 11)
        #expect(forced.infotext.first?.key == "Discard penultimate sigma")
    }

    @Test func invalidAlphasAreRejected() {
        #expect(throws: SamplingError.self) { try NoiseSchedule(alphasCumprod: [0.5, 0]) }
        #expect(throws: SamplingError.self) { try NoiseSchedule(alphasCumprod: [0.5]) }
    }
}
