import Foundation
import Pipeline

/// Builds the txt2img answer `{images, parameters, info}` from a finished job.
/// Matches: modules/api/api.py text2imgapi (response), modules/processing.py Processed.js, create_infotext
enum ResultEncoding {
    static func response(_ result: GenerationResult, request req: Txt2ImgRequest, options: EffectiveOptions,
                         version: String) throws -> JSONValue {
        let infotexts = (0..<result.images.count).map { infotext(result, index: $0, options: options, version: version) }
        var images = [JSONValue]()
        if req.bool("send_images") != false {
            let embed = options.value("enable_pnginfo") != .bool(false)
            for (i, image) in result.images.enumerated() {
                images.append(.string(try ImageCodec.encodePNG(image, parameters: embed ? infotexts[i] : nil)))
            }
        }
        let info = infoJSON(result, infotexts: infotexts, request: req, options: options, version: version)
        return ["images": .array(images), "parameters": .object(req.values), "info": .string(info.pythonDumps())]
    }

    static func infotextFields(_ result: GenerationResult, index i: Int, options: EffectiveOptions,
                               version: String) -> InfotextFields {
        let g = result.request
        let at = { (list: [Int64], fallback: Int64) in i < list.count ? list[i] : fallback }
        var f = InfotextFields(
            prompt: i < result.allPrompts.count ? result.allPrompts[i] : g.prompt,
            negativePrompt: i < result.allNegativePrompts.count ? result.allNegativePrompts[i] : g.negativePrompt,
            steps: g.steps, sampler: g.samplerName, scheduleType: result.scheduleLabel, cfgScale: g.cfgScale,
            seed: at(result.allSeeds, g.seed), width: g.width, height: g.height,
            modelHash: options.bool("add_model_hash_to_info") ? result.modelShortHash : nil,
            modelName: options.bool("add_model_name_to_info") ? result.modelName : nil,
            clipSkip: g.clipSkip, rng: g.noiseSource.rawValue, tiling: g.tiling,
            version: options.bool("add_version_to_infotext") ? version : nil)
        f.vaeHash = options.bool("add_vae_hash_to_info") ? result.vaeShortHash : nil
        f.vaeName = options.bool("add_vae_name_to_info") ? result.vaeName : nil
        f.variationSeed = at(result.allSubseeds, g.subseed)
        f.variationSeedStrength = g.subseedStrength
        f.seedResizeFrom = (g.seedResizeFromW, g.seedResizeFromH)
        let eta = g.eta ?? 1
        if Infotext.samplerUsesENSD(sampler: g.samplerName, eta: eta, ensd: g.etaNoiseSeedDelta) {
            f.ensd = g.etaNoiseSeedDelta
        }
        f.extra = result.extraParameters
        if options.value("lora_add_hashes_to_infotext") == .bool(false) {
            f.extra.removeAll { $0.key == "Lora hashes" }
        }
        if options.value("textual_inversion_add_hashes_to_infotext") == .bool(false) {
            f.extra.removeAll { $0.key == "TI hashes" }
        }
        return f
    }

    static func infotext(_ result: GenerationResult, index: Int, options: EffectiveOptions, version: String) -> String {
        Infotext.create(infotextFields(result, index: index, options: options, version: version))
    }

    /// `info`: Processed.js() keys in A1111's order.
    static func infoJSON(_ result: GenerationResult, infotexts: [String], request req: Txt2ImgRequest,
                         options: EffectiveOptions, version: String) -> JSONValue {
        let g = result.request
        let extras = JSONObject(infotextFields(result, index: 0, options: options, version: version).extra.map { k, v in
            let value: JSONValue
            switch v {
            case let .int(i): value = .int(i)
            case let .float(d): value = .double(d)
            case let .string(s): value = .string(s)
            case let .bool(b): value = .bool(b)
            }
            return (k, value)
        })
        let restoreFaces = req.bool("restore_faces")
        return .object(JSONObject([
            ("prompt", .string(result.allPrompts.first ?? g.prompt)),
            ("all_prompts", JSONValue(result.allPrompts)),
            ("negative_prompt", .string(result.allNegativePrompts.first ?? g.negativePrompt)),
            ("all_negative_prompts", JSONValue(result.allNegativePrompts)),
            ("seed", .int(result.allSeeds.first ?? g.seed)),
            ("all_seeds", .array(result.allSeeds.map { .int($0) })),
            ("subseed", .int(result.allSubseeds.first ?? g.subseed)),
            ("all_subseeds", .array(result.allSubseeds.map { .int($0) })),
            ("subseed_strength", .double(g.subseedStrength)),
            ("width", .int(Int64(g.width))), ("height", .int(Int64(g.height))),
            ("sampler_name", .string(g.samplerName)), ("cfg_scale", .double(g.cfgScale)),
            ("steps", .int(Int64(g.steps))), ("batch_size", .int(Int64(g.batchSize))),
            ("restore_faces", JSONValue(restoreFaces)), ("face_restoration_model", .null),
            ("sd_model_name", .string(result.modelName)), ("sd_model_hash", JSONValue(result.modelShortHash)),
            ("sd_vae_name", JSONValue(result.vaeName)), ("sd_vae_hash", JSONValue(result.vaeShortHash)),
            ("seed_resize_from_w", .int(Int64(g.seedResizeFromW))), ("seed_resize_from_h", .int(Int64(g.seedResizeFromH))),
            ("denoising_strength", JSONValue(req.double("denoising_strength"))),
            ("extra_generation_params", .object(extras)),
            ("index_of_first_image", .int(0)),
            ("infotexts", JSONValue(infotexts)),
            ("styles", JSONValue(req.strings("styles"))),
            ("job_timestamp", .string(Self.timestamp())),
            ("clip_skip", .int(Int64(g.clipSkip))),
            ("is_using_inpainting_conditioning", .bool(false)),
            ("version", .string(version)),
        ]))
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMddHHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        return f.string(from: Date())
    }
}
