import Foundation
import Pipeline

/// Builds the txt2img answer `{images, parameters, info}` from a finished job.
/// Matches: modules/api/api.py text2imgapi (response), modules/processing.py Processed.js, create_infotext
enum ResultEncoding {
    /// With `save_images`, the images are also written to the outputs folder and, for more than one image, the
    /// grid is saved and returned first (`index_of_first_image` 1), as A1111's API does.
    static func response(_ result: GenerationResult, request req: Txt2ImgRequest, options: EffectiveOptions,
                         version: String, log: @escaping (String) -> Void = { _ in }) throws -> JSONValue {
        var infotexts = (0..<result.images.count).map { infotext(result, index: $0, options: options, version: version) }
        let embed = options.value("enable_pnginfo") != .bool(false)
        var pngs = try result.images.enumerated().map { i, image in
            try ImageCodec.png(image, parameters: embed ? infotexts[i] : nil)
        }
        var firstImage = 0
        if req.bool("save_images") == true {
            let files = OutputFiles(options: options, logger: log)
            if options.bool("samples_save") {
                for (i, png) in pngs.enumerated() { files.save(png, seed: result.allSeeds[safe: i], grid: false) }
            }
            if files.wantsGrid(count: result.images.count),
               let grid = files.grid(result.images, batchSize: result.request.batchSize) {
                if options.bool("grid_save") {
                    // Saved with the job's main prompt and first seed (use_main_prompt=True).
                    let text = infotext(result, index: 0, options: options, version: version)
                    files.save(try ImageCodec.png(grid, parameters: embed ? text : nil), seed: nil, grid: true)
                }
                if options.bool("return_grid") {
                    // Returned with infotext(): index 0 of the last batch's prompts and seeds.
                    let text = infotext(result, index: (result.request.nIter - 1) * result.request.batchSize,
                                        options: options, version: version)
                    infotexts.insert(text, at: 0)
                    pngs.insert(try ImageCodec.png(grid, parameters: embed ? text : nil), at: 0)
                    firstImage = 1
                }
            }
        }
        let images: [JSONValue] = req.bool("send_images") != false ? pngs.map { .string($0.base64EncodedString()) } : []
        let info = infoJSON(result, infotexts: infotexts, indexOfFirstImage: firstImage, request: req,
                            options: options, version: version)
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
    static func infoJSON(_ result: GenerationResult, infotexts: [String], indexOfFirstImage: Int = 0,
                         request req: Txt2ImgRequest,
                         options: EffectiveOptions, version: String) -> JSONValue {
        let g = result.request
        // A1111 keeps per-image values as callables, which its JSON encoder writes as null.
        let callables: Set<String> = ["Hires prompt", "Hires negative prompt"]
        let extras = JSONObject(infotextFields(result, index: 0, options: options, version: version).extra.map { k, v in
            let value: JSONValue
            switch callables.contains(k) ? nil : v {
            case let .int(i)?: value = .int(i)
            case let .float(d)?: value = .double(d)
            case let .string(s)?: value = .string(s)
            case let .bool(b)?: value = .bool(b)
            case nil: value = .null
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
            ("index_of_first_image", .int(Int64(indexOfFirstImage))),
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

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
