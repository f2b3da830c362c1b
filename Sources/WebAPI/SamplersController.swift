import Foundation
import Hummingbird
import Sampling

/// `/sdapi/v1/samplers` and `/sdapi/v1/schedulers` from the Sampling registry, and A1111's name resolution.
/// Matches: modules/api/api.py get_samplers, get_schedulers; modules/sd_samplers.py get_sampler_and_scheduler
struct SamplersController {
    func register(_ r: Routes) {
        r.get("/sdapi/v1/samplers", "Samplers") {
            .array(SamplerRegistry.all.map { s in
                ["name": .string(s.name), "aliases": JSONValue(s.aliases),
                 "options": .object(JSONObject(s.apiOptions.map { ($0.key, JSONValue.string($0.value)) }))]
            })
        }
        r.get("/sdapi/v1/schedulers", "Schedule types") {
            .array(ScheduleType.allCases.map { t in
                ["name": .string(t.name), "label": .string(t.label), "aliases": t.aliases.map { JSONValue($0) } ?? .null,
                 "default_rho": .double(t.defaultRho), "need_inner_model": .bool(t.needsInnerModel)]
            })
        }
    }

    /// (sampler display name, schedule type label). Unknown samplers fall back to the first one and unknown
    /// schedulers to Automatic, as A1111 v1.10.1 does; "DPM++ 2M Karras" splits into sampler and scheduler.
    static func resolve(_ name: String?, _ scheduler: String?, convertAutomatic: Bool) -> (sampler: String, scheduler: String) {
        let r = SamplerRegistry.resolve(sampler: name, scheduler: scheduler, convertAutomatic: convertAutomatic)
        return (r.sampler.name, r.scheduler.label)
    }
}
