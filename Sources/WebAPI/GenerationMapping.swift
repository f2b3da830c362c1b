import Foundation
import Pipeline

/// Options as one job sees them: the store overlaid with the request's `override_settings`.
struct EffectiveOptions {
    let store: OptionStore
    let overrides: JSONObject

    func value(_ key: String) -> JSONValue? { overrides[key] ?? store.value(key) }

    func double(_ key: String) -> Double {
        switch value(key) {
        case let .int(i)?: return Double(i)
        case let .double(d)?: return d
        default: return 0
        }
    }

    func int(_ key: String) -> Int64 {
        switch value(key) {
        case let .int(i)?: return i
        case let .double(d)?: return Int64(d)
        default: return 0
        }
    }

    func bool(_ key: String) -> Bool { value(key) == .bool(true) }
    func string(_ key: String) -> String? { value(key)?.stringValue }
}

/// Turns a decoded A1111 request into the pipeline's typed `GenerationRequest`, resolving everything that
/// comes from options (A1111 reads them from `opts` while processing).
/// Matches: modules/processing.py StableDiffusionProcessing (option fallbacks), modules/sd_samplers_common.py
enum GenerationMapping {
    /// Samplers driven by timesteps (their eta option is eta_ddim, the others use eta_ancestral).
    /// Matches: modules/sd_samplers_timesteps.py samplers_data_timesteps
    static let timestepSamplers: Set<String> = ["DDIM", "DDIM CFG++", "PLMS", "UniPC"]

    static func request(from req: Txt2ImgRequest, options: EffectiveOptions, sampler: String, scheduler: String,
                        checkpoint: CheckpointInfo, hooks: [any GenerationHook]) throws -> GenerationRequest {
        var g = GenerationRequest()
        g.prompt = req.string("prompt") ?? ""
        g.negativePrompt = req.string("negative_prompt") ?? ""
        g.seed = req.int("seed") ?? -1
        g.subseed = req.int("subseed") ?? -1
        g.subseedStrength = req.double("subseed_strength") ?? 0
        g.seedResizeFromW = Int(req.int("seed_resize_from_w") ?? -1)
        g.seedResizeFromH = Int(req.int("seed_resize_from_h") ?? -1)
        g.samplerName = sampler
        g.scheduler = scheduler
        g.steps = Int(req.int("steps") ?? 50)
        g.cfgScale = req.double("cfg_scale") ?? 7
        g.width = Int(req.int("width") ?? 512)
        g.height = Int(req.int("height") ?? 512)
        g.batchSize = Int(req.int("batch_size") ?? 1)
        g.nIter = Int(req.int("n_iter") ?? 1)
        g.tiling = req.bool("tiling") ?? options.bool("tiling")
        g.eta = req.double("eta") ?? options.double(timestepSamplers.contains(sampler) ? "eta_ddim" : "eta_ancestral")
        g.sChurn = req.double("s_churn") ?? options.double("s_churn")
        g.sTmin = req.double("s_tmin") ?? options.double("s_tmin")
        let tmax = req.double("s_tmax") ?? options.double("s_tmax")
        g.sTmax = tmax == 0 ? nil : tmax
        g.sNoise = req.double("s_noise") ?? options.double("s_noise")
        g.clipSkip = max(1, Int(options.int("CLIP_stop_at_last_layers")))
        let emphasis = options.string("emphasis") ?? "Original"
        guard let mode = EmphasisMode(rawValue: emphasis) else {
            throw APIError.unprocessable("emphasis: '\(emphasis)' is not one of "
                                         + EmphasisMode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        g.emphasis = mode
        g.commaPaddingBacktrack = max(0, Int(options.int("comma_padding_backtrack")))
        guard let source = NoiseSourceKind(rawValue: options.string("randn_source") ?? "GPU") else {
            throw APIError.unprocessable("randn_source: '\(options.string("randn_source") ?? "")' is not one of GPU, CPU, NV")
        }
        g.noiseSource = source
        g.etaNoiseSeedDelta = options.int("eta_noise_seed_delta")
        if req.bool("enable_hr") == true {
            g.hires = HiresFix(
                upscaler: req.string("hr_upscaler"), scale: req.double("hr_scale") ?? 2,
                resizeX: Int(req.int("hr_resize_x") ?? 0), resizeY: Int(req.int("hr_resize_y") ?? 0),
                secondPassSteps: Int(req.int("hr_second_pass_steps") ?? 0),
                denoisingStrength: req.double("denoising_strength") ?? 0.7,
                prompt: req.string("hr_prompt") ?? "", negativePrompt: req.string("hr_negative_prompt") ?? "",
                samplerName: req.string("hr_sampler_name").flatMap { $0 == "Use same sampler" || $0.isEmpty ? nil : $0 },
                scheduler: req.string("hr_scheduler").flatMap { $0 == "Use same scheduler" || $0.isEmpty ? nil : $0 })
        }
        g.checkpoint = checkpoint.title
        let vae = options.string("sd_vae") ?? "Automatic"
        g.vae = vae == "Automatic" ? nil : vae
        g.hooks = hooks
        return g
    }
}

/// Infotext → request fields and option overrides, as A1111's txt2img paste fields define them.
/// Matches: modules/ui.py txt2img_paste_fields; modules/processing_scripts/{sampler,seed,refiner}.py
/// infotext_fields; modules/infotext_utils.py get_override_settings
enum InfotextPaste {
    static let labelFields: [(label: String, field: String)] = [
        ("Prompt", "prompt"), ("Negative prompt", "negative_prompt"), ("CFG scale", "cfg_scale"),
        ("Size-1", "width"), ("Size-2", "height"), ("Batch size", "batch_size"),
        ("Denoising strength", "denoising_strength"), ("Hires upscale", "hr_scale"), ("Hires upscaler", "hr_upscaler"),
        ("Hires steps", "hr_second_pass_steps"), ("Hires resize-1", "hr_resize_x"), ("Hires resize-2", "hr_resize_y"),
        ("Hires checkpoint", "hr_checkpoint_name"), ("Hires prompt", "hr_prompt"),
        ("Hires negative prompt", "hr_negative_prompt"), ("Refiner switch at", "refiner_switch_at"),
        ("Steps", "steps"), ("Seed", "seed"), ("Variation seed", "subseed"),
        ("Variation seed strength", "subseed_strength"), ("Seed resize from-1", "seed_resize_from_w"),
        ("Seed resize from-2", "seed_resize_from_h"),
    ]

    /// Infotext label → option key, in A1111's option order (OptionInfo `infotext=`).
    static let settingLabels: [(label: String, setting: String)] = [
        ("Face restoration", "face_restoration"), ("Model hash", "sd_model_checkpoint"), ("Emphasis", "emphasis"),
        ("Clip skip", "CLIP_stop_at_last_layers"), ("RNG", "randn_source"), ("Tiling", "tiling"),
        ("Hires refiner", "hires_fix_refiner_pass"), ("VAE", "sd_vae"), ("VAE Encoder", "sd_vae_encode_method"),
        ("VAE Decoder", "sd_vae_decode_method"), ("Conditional mask weight", "inpainting_mask_weight"),
        ("Noise multiplier", "initial_noise_multiplier"), ("Extra noise", "img2img_extra_noise"),
        ("NGMS", "s_min_uncond"), ("NGMS all steps", "s_min_uncond_all"),
        ("Token merging ratio", "token_merging_ratio"), ("Token merging ratio hr", "token_merging_ratio_hr"),
        ("Pad conds", "pad_cond_uncond"), ("Pad conds v0", "pad_cond_uncond_v0"),
        ("Old prompt editing timelines", "use_old_scheduling"), ("Downcast alphas_cumprod", "use_downcasted_alpha_bar"),
        ("Refiner switch by sampling steps", "refiner_switch_by_sample_steps"), ("Eta DDIM", "eta_ddim"),
        ("Eta", "eta_ancestral"), ("Sigma churn", "s_churn"), ("Sigma tmin", "s_tmin"), ("Sigma tmax", "s_tmax"),
        ("Sigma noise", "s_noise"), ("Schedule min sigma", "sigma_min"), ("Schedule max sigma", "sigma_max"),
        ("Schedule rho", "rho"), ("ENSD", "eta_noise_seed_delta"),
        ("Discard penultimate sigma", "always_discard_next_to_last_sigma"),
        ("SGM noise multiplier", "sgm_noise_multiplier"), ("UniPC variant", "uni_pc_variant"),
        ("UniPC skip type", "uni_pc_skip_type"), ("UniPC order", "uni_pc_order"),
        ("UniPC lower order final", "uni_pc_lower_order_final"), ("Noise Schedule", "sd_noise_schedule"),
        ("Skip Early CFG", "skip_early_cond"), ("Beta scheduler alpha", "beta_dist_alpha"),
        ("Beta scheduler beta", "beta_dist_beta"),
    ]

    /// (request field, text value) pairs; `resolve` is A1111's get_sampler_and_scheduler (nil skips the
    /// sampler fields). `enable_hr` is true exactly when the infotext has "Denoising strength" (A1111 always
    /// inserts "Hires resize-1", which satisfies the other half of its condition).
    static func txt2imgFields(_ p: InfotextParameters,
                              resolve: ((String?, String?, Bool) -> (sampler: String, scheduler: String))?) -> [(String, String)] {
        var out = [(String, String)]()
        for (label, field) in labelFields {
            if let v = p[label] { out.append((field, v.description)) }
        }
        out.append(("enable_hr", p.has("Denoising strength") ? "True" : "False"))
        if let resolve {
            let sampler = p["Sampler"]?.description, schedule = p["Schedule type"]?.description
            let main = resolve(sampler, schedule, true)
            out.append(("sampler_name", main.sampler))
            out.append(("scheduler", main.scheduler))
            let hrSamplerText = p["Hires sampler"]?.description ?? "Use same sampler"
            let hrScheduleText = p["Hires schedule type"]?.description ?? "Use same scheduler"
            let hr = resolve(hrSamplerText == "Use same sampler" ? sampler : hrSamplerText,
                             hrScheduleText == "Use same scheduler" ? schedule : hrScheduleText, true)
            out.append(("hr_sampler_name", hr.sampler != sampler ? hr.sampler : "Use same sampler"))
            out.append(("hr_scheduler", hr.scheduler != schedule ? hr.scheduler : "Use same scheduler"))
        }
        return out
    }

    /// Option overrides an infotext implies, cast to each option's type; values equal to the current option
    /// are dropped, and "Model hash" only counts when disable_weights_auto_swap is off.
    static func overrideSettings(_ p: InfotextParameters, options: OptionStore) -> [(String, JSONValue)] {
        var out = [(String, JSONValue)]()
        for (label, setting) in settingLabels {
            guard let raw = p[label], options.isKnown(setting) else { continue }
            if setting == "sd_model_checkpoint" && options.value("disable_weights_auto_swap") != .bool(false) { continue }
            let current = options.value(setting) ?? .null
            let cast: JSONValue?
            switch (current, raw) {
            case (.bool, .bool(let b)): cast = .bool(b)
            case (.bool, _): cast = .bool(raw.description != "False" && !raw.description.isEmpty)
            case (.int, _): cast = Int64(raw.description).map { .int($0) }
            case (.double, _): cast = Double(raw.description).map { .double($0) }
            case (.string, _), (.null, _): cast = .string(raw.description)
            default: cast = nil
            }
            guard let cast, cast != current, !(isNumber(cast) && numericEqual(cast, current)) else { continue }
            out.append((setting, cast))
        }
        return out
    }

    private static func isNumber(_ v: JSONValue) -> Bool {
        switch v { case .int, .double: return true; default: return false }
    }

    private static func numericEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
        func d(_ v: JSONValue) -> Double? {
            switch v { case let .int(i): return Double(i); case let .double(x): return x; default: return nil }
        }
        return d(a) != nil && d(a) == d(b)
    }
}
