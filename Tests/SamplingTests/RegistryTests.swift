import Foundation
import Testing
import TestSupport
@testable import Sampling

/// registry.json: A1111's sampler/scheduler tables read from its source, and get_sampler_and_scheduler's answers.
struct RegistryTests {
    struct Sampler: Decodable { let name: String; let aliases: [String]; let options: [String: String] }
    struct Scheduler: Decodable {
        let name: String; let label: String; let aliases: [String]?; let default_rho: Double; let need_inner_model: Bool
    }
    struct Resolution: Decodable {
        let sampler: String?; let scheduler: String?; let convert_automatic: Bool; let result: [String]
    }
    struct File: Decodable { let samplers: [Sampler]; let schedulers: [Scheduler]; let resolutions: [Resolution] }

    @Test func samplerListMatchesA1111() throws {
        let f = try Fixtures.json("sampling/registry.json", as: File.self)
        #expect(SamplerRegistry.all.map(\.name) == f.samplers.map(\.name))
        for (ours, theirs) in zip(SamplerRegistry.all, f.samplers) {
            #expect(ours.aliases == theirs.aliases, "\(ours.name)")
            #expect(Dictionary(uniqueKeysWithValues: ours.apiOptions.map { ($0.key, $0.value) }) == theirs.options,
                    "\(ours.name)")
        }
    }

    @Test func schedulerListMatchesA1111() throws {
        let f = try Fixtures.json("sampling/registry.json", as: File.self)
        #expect(ScheduleType.allCases.map(\.name) == f.schedulers.map(\.name))
        for (ours, theirs) in zip(ScheduleType.allCases, f.schedulers) {
            #expect(ours.label == theirs.label)
            #expect(ours.aliases == theirs.aliases)
            #expect(ours.defaultRho == theirs.default_rho)
            #expect(ours.needsInnerModel == theirs.need_inner_model)
        }
    }

    @Test func nameResolutionMatchesA1111() throws {
        let f = try Fixtures.json("sampling/registry.json", as: File.self)
        for r in f.resolutions {
            let got = SamplerRegistry.resolve(sampler: r.sampler, scheduler: r.scheduler,
                                              convertAutomatic: r.convert_automatic)
            #expect([got.sampler.name, got.scheduler.label] == r.result,
                    "\(String(describing: r.sampler)) / \(String(describing: r.scheduler))")
        }
    }

    @Test func caseInsensitiveLookupByNameOrAlias() throws {
        #expect(SamplerRegistry.find("k_euler_a")?.name == "Euler a")
        #expect(SamplerRegistry.find("EULER A")?.name == "Euler a")
        #expect(SamplerRegistry.find("k_dpmpp_2m")?.name == "DPM++ 2M")
        #expect(SamplerRegistry.find("DDIM_CFGPP")?.name == "DDIM CFG++")
        #expect(SamplerRegistry.find("no such sampler") == nil)
        let heun = try #require(SamplerRegistry.named("Heun"))
        #expect(heun.totalSteps(20) == 40)
        #expect(SamplerRegistry.named("DPM++ 2M SDE")?.defaultScheduler == .exponential)
        #expect(SamplerRegistry.named("Euler")?.defaultScheduler == nil)
    }
}
