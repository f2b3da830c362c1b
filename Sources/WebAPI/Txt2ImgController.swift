import Foundation
import Hummingbird
import Logging
import Pipeline

/// POST `/sdapi/v1/txt2img`: decode and validate (pydantic v1 semantics), paste `infotext`, check scripts and
/// names, then run the job on the queue and answer `{images, parameters, info}`.
/// Matches: modules/api/api.py text2imgapi, apply_infotext, init_script_args
struct Txt2ImgController {
    let state: ServerState

    func register(_ r: Routes) {
        r.on(.post, "/sdapi/v1/txt2img", "Generate images from a prompt", schema: OpenAPIController.txt2imgSchema()) { request, _ in
            let body = try await RequestBody.json(request, limit: state.config.maxBodyBytes)
            var req = try Txt2ImgRequest.decode(body, limits: state.config.limits)
            try applyInfotext(&req)
            let job = try prepare(req)
            return JSONResponse.make(try await run(job, request: req))
        }
    }

    /// A request checked against what this server has, ready to run.
    struct PreparedJob {
        var overrides: JSONObject
        var checkpoint: CheckpointInfo
        var hooks: [any GenerationHook]
    }

    // MARK: infotext

    /// Fills fields the client did not set from `infotext`, and merges option overrides it implies.
    /// Matches: modules/api/api.py Api.apply_infotext; modules/infotext_utils.py get_override_settings
    func applyInfotext(_ req: inout Txt2ImgRequest) throws {
        guard let text = req.string("infotext"), !text.isEmpty else { return }
        let params = Infotext.parse(text, options: PNGInfoController(state: state).parseOptions())
        for (field, value) in InfotextPaste.txt2imgFields(params, resolve: SamplersController.resolve) {
            req.paste(field, value)
        }
        var overrides = req.object("override_settings") ?? JSONObject()
        for (setting, value) in InfotextPaste.overrideSettings(params, options: state.options)
            where !overrides.contains(setting) {
            overrides[setting] = value
        }
        req.values["override_settings"] = .object(overrides)
    }

    // MARK: checks

    func prepare(_ req: Txt2ImgRequest) throws -> PreparedJob {
        if let name = req.string("script_name"), !name.isEmpty {
            // This server has no selectable scripts (prompt matrix, X/Y/Z plot, …).
            throw APIError.unprocessable("Script '\(name)' not found")
        }
        let hooks = try state.scripts.hooks(for: req)

        var overrides = req.object("override_settings") ?? JSONObject()
        var checkpointOverride: CheckpointInfo?
        if let value = overrides["sd_model_checkpoint"] {
            // A1111 drops an override naming no known checkpoint and uses the configured one.
            if let name = value.stringValue, let info = state.catalog.checkpoint(matching: name) {
                checkpointOverride = info
            } else {
                state.logger.warning("override_settings.sd_model_checkpoint \(value.serialized()) is not a known checkpoint; using the configured one")
            }
            overrides["sd_model_checkpoint"] = nil
        }
        do {
            try state.options.validate(overrides)
        } catch {
            throw APIError.unprocessable("override_settings: \(error.detail)")
        }

        if req.bool("enable_hr") == true {
            let upscaler = req.string("hr_upscaler") ?? "Latent"
            let latent = InfoController.latentUpscaleModes
            guard latent.contains(upscaler) else {
                let why = InfoController.imageUpscalers.contains(upscaler)
                    ? "the image upscaler '\(upscaler)' is listed by /sdapi/v1/upscalers but this server's hires fix "
                      + "upscales latents only"
                    : "'\(upscaler)' is not an upscaler of this server"
                throw APIError.unprocessable("hr_upscaler: \(why) (accepted: \(latent.joined(separator: ", ")))")
            }
            if req.double("denoising_strength") == nil {
                throw APIError.unprocessable("denoising_strength: required when enable_hr is true")
            }
        }
        if let firstpass = req.string("firstpass_image"), !firstpass.isEmpty {
            _ = try ImageCodec.decodePNG(base64: firstpass)
            throw APIError.unprocessable("firstpass_image: supplying the first-pass image is not supported by this server")
        }
        if let refiner = req.string("refiner_checkpoint"), !["", "None", "none"].contains(refiner) {
            throw APIError.unprocessable("refiner_checkpoint: the SDXL refiner is not supported by this server (SD1.x only)")
        }
        let current = checkpointOverride ?? state.loaded.current
        guard let checkpoint = current else {
            throw APIError(.serviceUnavailable, "No checkpoint found in \(state.catalog.checkpointDir)")
        }
        if let hr = req.string("hr_checkpoint_name"), !hr.isEmpty, hr != "Use same checkpoint" {
            guard let info = state.catalog.checkpoint(matching: hr) else {
                throw APIError.notFound("hr_checkpoint_name: checkpoint '\(hr)' not found (GET /sdapi/v1/sd-models lists them)")
            }
            guard info.filename == checkpoint.filename else {
                throw APIError.unprocessable("hr_checkpoint_name: switching checkpoints for the hires pass is not supported")
            }
        }
        return PreparedJob(overrides: overrides, checkpoint: checkpoint, hooks: hooks)
    }

    // MARK: run

    func run(_ job: PreparedJob, request req: Txt2ImgRequest) async throws -> JSONValue {
        guard let generator = state.generator else {
            throw APIError(.serviceUnavailable, "Image generation is not available in this build")
        }
        let effective = EffectiveOptions(store: state.options, overrides: job.overrides)
        let resolved = SamplersController.resolve(nonEmpty(req.string("sampler_name")) ?? req.string("sampler_index"),
                                                  req.string("scheduler"), convertAutomatic: false)
        let generation = try GenerationMapping.request(from: req, options: effective, sampler: resolved.sampler,
                                                       scheduler: resolved.scheduler, checkpoint: job.checkpoint,
                                                       hooks: job.hooks)
        let checkpoint = state.catalog.hashCheckpoint(job.checkpoint)
        let started = Date()
        state.logger.info("txt2img: \(generation.width)x\(generation.height), \(generation.steps) steps, \(generation.samplerName)/\(generation.scheduler), batch \(generation.batchSize)x\(generation.nIter), model \(checkpoint.name)")
        let progress = state.queue.progress
        let result: GenerationResult
        do {
            result = try await state.queue.run {
                try generator.generate(generation, checkpoint: checkpoint, progress: progress)
            }
        } catch let e as GenerationError {
            throw e.apiError
        }
        state.logger.info("txt2img: \(result.images.count) image(s) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s\(result.interrupted ? " (interrupted)" : "")")
        if req.bool("override_settings_restore_afterwards") == false, !job.overrides.isEmpty {
            try state.options.set(job.overrides, save: false)
        }
        let logger = state.logger
        return try ResultEncoding.response(result, request: req, options: effective, version: state.config.version,
                                           log: { logger.warning("\($0)") })
    }
}

/// Python truthiness for an optional string (`a or b` skips "").
func nonEmpty(_ s: String?) -> String? { s?.isEmpty == false ? s : nil }

/// The part of the Engine the API drives: one job at a time, on the queue's thread.
public protocol ImageGenerator: Sendable {
    /// Drops the model from memory (called on the job queue, never during a job).
    func unload()
    /// Loads a checkpoint ahead of the next job (called on the job queue).
    func preload(_ info: CheckpointInfo) throws
    func generate(_ request: GenerationRequest, checkpoint: CheckpointInfo, progress: ProgressTracker) throws -> GenerationResult
}
