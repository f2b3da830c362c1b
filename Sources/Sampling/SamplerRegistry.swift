import Foundation

/// The sampling algorithm behind a sampler name.
public enum SamplerAlgorithm: Sendable, Equatable {
    case dpmpp2M, dpmppSDE, dpmpp2MSDE(heun: Bool), dpmpp2SAncestral, dpmpp3MSDE
    case eulerAncestral, euler, lms, heun, dpm2, dpm2Ancestral, dpmFast, dpmAdaptive, restart
    case ddim, ddimCFGPlusPlus, plms, uniPC
    case lcm

    /// How the sampler is driven: k-diffusion over sigmas, A1111's timestep samplers, or LCM (k-diffusion style
    /// over the LCM sub-schedule).
    public enum Family: Sendable { case kDiffusion, timesteps, lcm }

    public var family: Family {
        switch self {
        case .ddim, .ddimCFGPlusPlus, .plms, .uniPC: return .timesteps
        case .lcm: return .lcm
        default: return .kDiffusion
        }
    }
}

/// One A1111 sampler: display name, aliases, the options dict as `/sdapi/v1/samplers` reports it, and typed
/// views of those options.
public struct SamplerInfo: Sendable, Equatable {
    public let name: String
    public let aliases: [String]
    /// The options dict in A1111's key order, values stringified as the API model does (`True`).
    public let apiOptions: [(key: String, value: String)]
    public let algorithm: SamplerAlgorithm

    public static func == (a: SamplerInfo, b: SamplerInfo) -> Bool { a.name == b.name }

    private func option(_ key: String) -> String? { apiOptions.first { $0.key == key }?.value }

    /// The schedule "Automatic" stands for (nil: the model's own discretisation).
    public var defaultScheduler: ScheduleType? { option("scheduler").flatMap { ScheduleType(rawValue: $0) } }
    public var secondOrder: Bool { option("second_order") == "True" }
    public var brownianNoise: Bool { option("brownian_noise") == "True" }
    public var solverType: String? { option("solver_type") }
    public var discardNextToLastSigma: Bool { option("discard_next_to_last_sigma") == "True" }
    /// Step noise comes from the ENSD-reseeded generators.
    public var usesENSD: Bool { option("uses_ensd") == "True" }

    /// Model evaluations per step for progress and prompt-editing schedules (2× for second-order samplers).
    /// Matches: modules/sd_samplers_common.py SamplerData.total_steps
    public func totalSteps(_ steps: Int) -> Int { secondOrder ? steps * 2 : steps }

    /// Whether `eta` applies, which option feeds it and its default (A1111 `eta_option_field`, `eta_default`).
    public var etaOption: (key: String, infotextKey: String, defaultValue: Float)? {
        switch algorithm {
        case .eulerAncestral, .dpm2Ancestral, .dpmFast, .dpmAdaptive, .dpmpp2SAncestral, .dpmppSDE, .dpmpp2MSDE,
             .dpmpp3MSDE:
            return ("eta_ancestral", "Eta", 1)
        case .ddim, .ddimCFGPlusPlus:
            return ("eta_ddim", "Eta DDIM", 0)
        default:
            return nil
        }
    }

    /// Which of s_churn / s_tmin / s_tmax / s_noise A1111 passes to this sampler.
    /// Matches: modules/sd_samplers_kdiffusion.py sampler_extra_params
    public var acceptsChurn: Bool { [.euler, .heun, .dpm2].contains(algorithm) }
    public var acceptsSNoise: Bool {
        switch algorithm {
        case .euler, .heun, .dpm2, .dpmFast, .dpm2Ancestral, .dpmpp2SAncestral, .dpmppSDE, .dpmpp2MSDE, .dpmpp3MSDE:
            return true
        default:
            return false
        }
    }
}

/// A1111's sampler list and name resolution.
/// Matches: modules/sd_samplers.py, modules/sd_samplers_kdiffusion.py samplers_k_diffusion,
/// modules/sd_samplers_timesteps.py samplers_timesteps, modules/sd_samplers_lcm.py samplers_lcm
public enum SamplerRegistry {
    private static func info(_ name: String, _ aliases: [String], _ options: [(String, String)],
                             _ algorithm: SamplerAlgorithm) -> SamplerInfo {
        SamplerInfo(name: name, aliases: aliases, apiOptions: options.map { (key: $0.0, value: $0.1) },
                    algorithm: algorithm)
    }

    /// All samplers in `/sdapi/v1/samplers` order.
    public static let all: [SamplerInfo] = [
        info("DPM++ 2M", ["k_dpmpp_2m"], [("scheduler", "karras")], .dpmpp2M),
        info("DPM++ SDE", ["k_dpmpp_sde"],
             [("scheduler", "karras"), ("second_order", "True"), ("brownian_noise", "True")], .dpmppSDE),
        info("DPM++ 2M SDE", ["k_dpmpp_2m_sde"],
             [("scheduler", "exponential"), ("brownian_noise", "True")], .dpmpp2MSDE(heun: false)),
        info("DPM++ 2M SDE Heun", ["k_dpmpp_2m_sde_heun"],
             [("scheduler", "exponential"), ("brownian_noise", "True"), ("solver_type", "heun")],
             .dpmpp2MSDE(heun: true)),
        info("DPM++ 2S a", ["k_dpmpp_2s_a"],
             [("scheduler", "karras"), ("uses_ensd", "True"), ("second_order", "True")], .dpmpp2SAncestral),
        info("DPM++ 3M SDE", ["k_dpmpp_3m_sde"],
             [("scheduler", "exponential"), ("discard_next_to_last_sigma", "True"), ("brownian_noise", "True")],
             .dpmpp3MSDE),
        info("Euler a", ["k_euler_a", "k_euler_ancestral"], [("uses_ensd", "True")], .eulerAncestral),
        info("Euler", ["k_euler"], [], .euler),
        info("LMS", ["k_lms"], [], .lms),
        info("Heun", ["k_heun"], [("second_order", "True")], .heun),
        info("DPM2", ["k_dpm_2"],
             [("scheduler", "karras"), ("discard_next_to_last_sigma", "True"), ("second_order", "True")], .dpm2),
        info("DPM2 a", ["k_dpm_2_a"],
             [("scheduler", "karras"), ("discard_next_to_last_sigma", "True"), ("uses_ensd", "True"),
              ("second_order", "True")], .dpm2Ancestral),
        info("DPM fast", ["k_dpm_fast"], [("uses_ensd", "True")], .dpmFast),
        info("DPM adaptive", ["k_dpm_ad"], [("uses_ensd", "True")], .dpmAdaptive),
        info("Restart", ["restart"], [("scheduler", "karras"), ("second_order", "True")], .restart),
        info("DDIM", ["ddim"], [], .ddim),
        info("DDIM CFG++", ["ddim_cfgpp"], [], .ddimCFGPlusPlus),
        info("PLMS", ["plms"], [], .plms),
        info("UniPC", ["unipc"], [], .uniPC),
        info("LCM", ["k_lcm"], [], .lcm),
    ]

    /// The default sampler (first in the list).
    public static var defaultSampler: SamplerInfo { all[0] }

    /// Exact display-name lookup (`all_samplers_map`).
    public static func named(_ name: String) -> SamplerInfo? { all.first { $0.name == name } }

    /// Case-insensitive lookup by name or alias (`samplers_map`).
    public static func find(_ nameOrAlias: String) -> SamplerInfo? {
        let key = nameOrAlias.lowercased()
        return all.first { $0.name.lowercased() == key || $0.aliases.contains { $0.lowercased() == key } }
    }

    /// A1111's `get_sampler_and_scheduler`: an empty name means the default sampler; a trailing
    /// " <scheduler label|name|alias>" is split off as the scheduler ("DPM++ 2M Karras"); an unknown sampler
    /// name falls back to the default; an unknown scheduler to Automatic; with `convertAutomatic`, a scheduler
    /// equal to the sampler's default is reported as Automatic.
    /// Matches: modules/sd_samplers.py get_sampler_and_scheduler
    public static func resolve(sampler samplerName: String?, scheduler schedulerName: String?,
                               convertAutomatic: Bool = true) -> (sampler: SamplerInfo, scheduler: ScheduleType) {
        var found = schedulerName.flatMap { ScheduleType(nameOrLabel: $0) } ?? .automatic
        var name = (samplerName?.isEmpty ?? true) ? defaultSampler.name : samplerName ?? defaultSampler.name
        for candidate in ScheduleType.allCases {
            for option in [candidate.label, candidate.name] + (candidate.aliases ?? []) where name.hasSuffix(" " + option) {
                found = candidate
                name = String(name.dropLast(option.count + 1))
                break
            }
        }
        let sampler = named(name) ?? defaultSampler
        if convertAutomatic, sampler.defaultScheduler == found { found = .automatic }
        return (sampler, found)
    }
}
