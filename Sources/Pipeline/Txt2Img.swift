import Foundation
import Networks
import Sampling
import Tokenizer

/// Encodes prompts into A1111 conditioning schedules (text side: parser, tokenizer, CLIP, emphasis, clip skip).
public protocol PromptEncoder: Sendable {
    /// Positive prompts: `AND` parts with weights, each part scheduled over `steps` denoiser calls (prompt editing,
    /// alternation). For the hires pass `hiresSteps` is set and `steps` is the first pass's count, as A1111's
    /// get_learned_conditioning_prompt_schedules(prompts, base_steps, hires_steps).
    func composable(_ prompts: [String], steps: Int, hiresSteps: Int?, clipSkip: Int) throws -> [ComposablePrompt]
    /// Negative prompts: scheduled, no `AND`.
    func scheduled(_ prompts: [String], steps: Int, hiresSteps: Int?, clipSkip: Int) throws -> [PromptSchedule]
    /// Width of the conditioning vectors (what textual-inversion embeddings must match).
    var width: Int { get }
    /// The same encoder recognising `embeddings` (the loaded ones of a database) in prompts.
    func using(_ embeddings: EmbeddingDatabase) -> any PromptEncoder
    /// The same encoder with A1111's `emphasis` and `comma_padding_backtrack` options.
    func configured(emphasis: EmphasisMode, commaBacktrack: Int) -> any PromptEncoder
}

/// A1111's per-image noise for one batch (`ImageRNG`): `next()` gives the initial latent noise first
/// `[B, 4, h, w]`, then the extra noise of ancestral steps; `seededNormal` is `randn_local` (a fresh generator's
/// first draw), which feeds the SDE samplers' Brownian trees.
public protocol BatchNoise: AnyObject {
    func next() throws -> Tensor
    func seededNormal(seed: UInt64, shape: [Int]) throws -> Tensor
}

/// Makes the noise of one batch: latent shape `[4, h, w]`, the batch's seeds and subseeds.
public typealias BatchNoiseFactory = @Sendable (_ shape: [Int], _ seeds: [Int64], _ subseeds: [Int64],
                                      _ request: GenerationRequest) throws -> BatchNoise

/// A checkpoint ready to generate: its networks, noise schedule and text encoder.
public final class LoadedModel: @unchecked Sendable {
    public let info: CheckpointInfo
    public let unet: UNetModel
    public let vae: AutoencoderKL
    public let schedule: NoiseSchedule
    public let text: any PromptEncoder
    /// The checkpoint's tensors, which LoRA merges read through.
    public let source: any TensorSource

    public init(info: CheckpointInfo, unet: UNetModel, vae: AutoencoderKL, schedule: NoiseSchedule,
                text: any PromptEncoder, source: any TensorSource) {
        self.info = info
        self.unet = unet
        self.vae = vae
        self.schedule = schedule
        self.text = text
        self.source = source
    }

    /// The same networks decoding (and encoding) with another VAE.
    public func replacingVAE(_ vae: AutoencoderKL) -> LoadedModel {
        LoadedModel(info: info, unet: unet, vae: vae, schedule: schedule, text: text, source: source)
    }

    /// The same networks with another text side (e.g. one that knows textual-inversion embeddings).
    public func replacingText(_ text: any PromptEncoder) -> LoadedModel {
        LoadedModel(info: info, unet: unet, vae: vae, schedule: schedule, text: text, source: source)
    }

    /// UNet as guidance calls it. Inpainting UNets (9 input channels) get A1111's txt2img image conditioning
    /// (`imageConditioning`, `[B, 5, h, w]`) concatenated to the latent.
    func eps(imageConditioning: Tensor?) -> ConditionedEps {
        { [unet] x, t, context in
            var input = x
            if let c = imageConditioning {
                let reps = x.shape[0] / c.shape[0]
                input = Tensor.concat([x, Tensor.concat(Array(repeating: c, count: reps), axis: 0)], axis: 1)
            }
            return try unet(input, timesteps: [t], context: context)
        }
    }
}

/// txt2img with A1111 semantics: seeds, batches, conditioning schedules, guidance, samplers, hires fix, decode.
/// Matches: modules/processing.py process_images_inner, StableDiffusionProcessingTxt2Img.sample / sample_hr_pass
public struct Txt2Img {
    public let model: LoadedModel
    public let progress: ProgressTracker
    public let makeNoise: BatchNoiseFactory
    /// The networks one pass runs with, given that pass's prompts (their `<lora:…>` tags); by default the model
    /// as it is.
    public var activate: (_ prompts: [String]) throws -> ActiveNetworks

    public init(model: LoadedModel, progress: ProgressTracker, makeNoise: @escaping BatchNoiseFactory) {
        self.model = model
        self.progress = progress
        self.makeNoise = makeNoise
        activate = { _ in ActiveNetworks(model: model) }
    }

    /// Random seed as A1111's get_fixed_seed: uniform in [0, 4294967294).
    public static func fixedSeed(_ seed: Int64) -> Int64 {
        seed == -1 ? Int64.random(in: 0..<4_294_967_294) : seed
    }

    public func run(_ original: GenerationRequest) throws -> GenerationResult {
        var request = original
        try Self.validate(request)
        let began = Date()
        let (sampler, scheduler) = SamplerRegistry.resolve(sampler: request.samplerName, scheduler: request.scheduler)
        request.samplerName = sampler.name
        request.scheduler = scheduler.label
        request.seed = Self.fixedSeed(request.seed)
        request.subseed = Self.fixedSeed(request.subseed)
        let count = request.batchSize * request.nIter
        let allSeeds = (0..<count).map { request.seed + (request.subseedStrength == 0 ? Int64($0) : 0) }
        let allSubseeds = (0..<count).map { request.subseed + Int64($0) }
        let allPrompts = Array(repeating: request.prompt, count: count)
        let allNegative = Array(repeating: request.negativePrompt, count: count)
        let passes = request.hires == nil ? 1 : 2
        progress.begin(job: "txt2img", jobCount: request.nIter * passes)
        defer { progress.end() }

        var images = [RGBImage]()
        var scheduleInfo = [(key: String, value: String)]()
        var hiresScheduleLabel: String?
        var tiHashes: String?
        var loraHashes = [(name: String, hash: String)]()
        var interrupted = false
        for n in 0..<request.nIter {
            progress.update { $0.skipped = false }
            if progress.isInterrupted { interrupted = true; break }
            if request.nIter > 1 { progress.update { $0.job = "Batch \(n + 1) out of \(request.nIter)" } }
            let range = (n * request.batchSize)..<((n + 1) * request.batchSize)
            let seeds = Array(allSeeds[range]), subseeds = Array(allSubseeds[range])
            let batch = try sampleBatch(request, sampler: sampler, scheduler: scheduler, seeds: seeds,
                                        subseeds: subseeds, prompts: Array(allPrompts[range]),
                                        negatives: Array(allNegative[range]))
            if n == 0 {
                scheduleInfo = batch.infotext
                hiresScheduleLabel = batch.hiresScheduleLabel
                tiHashes = batch.tiHashes
            }
            loraHashes = batch.loraHashes
            // One image at a time, so that a batch member decodes exactly as the same seed alone.
            for latent in batch.samples.chunked(batch.samples.shape[0], axis: 0) {
                images += ImageConversion.images(fromDecoded: try model.vae.decode(latent))
            }
            if progress.isInterrupted { interrupted = true }
        }
        return GenerationResult(images: images, allPrompts: allPrompts, allNegativePrompts: allNegative,
                                allSeeds: allSeeds, allSubseeds: allSubseeds, request: request,
                                scheduleLabel: scheduler.label, modelName: model.info.nameForExtra,
                                modelShortHash: model.info.shorthash, loraHashes: loraHashes,
                                extraParameters: Self.extraParameters(request, original: original, loraHashes: loraHashes,
                                                                      tiHashes: tiHashes, schedule: scheduleInfo,
                                                                      hiresSchedule: hiresScheduleLabel),
                                interrupted: interrupted,
                                seconds: Date().timeIntervalSince(began))
    }

    /// What one batch made before decoding.
    struct BatchOutput {
        /// Latents `[B, 4, h, w]`.
        let samples: Tensor
        /// Infotext entries the schedule adds.
        let infotext: [(key: String, value: String)]
        /// `Lora hashes` of the LoRAs both passes applied.
        let loraHashes: [(name: String, hash: String)]
        /// `TI hashes` of the first pass's prompts.
        var tiHashes: String?
        /// The hires pass's schedule label when A1111 records it as `Hires schedule type`.
        var hiresScheduleLabel: String?
    }

    /// A1111's `extra_generation_params` in the order it fills them: hires-fix keys (StableDiffusionProcessingTxt2Img
    /// init and calculate_target_resolution), `Lora hashes` (extra networks activation), `TI hashes` (conditioning),
    /// then what the sampler's schedule adds; `Hires schedule type` keeps the slot init reserved for it.
    /// Matches: modules/processing.py StableDiffusionProcessingTxt2Img.init, calculate_target_resolution;
    /// extensions-builtin/Lora/extra_networks_lora.py activate; modules/sd_samplers_kdiffusion.py get_sigmas
    static func extraParameters(_ request: GenerationRequest, original: GenerationRequest,
                                loraHashes: [(name: String, hash: String)], tiHashes: String? = nil,
                                schedule: [(key: String, value: String)],
                                hiresSchedule: String?) -> [(key: String, value: InfotextValue?)] {
        var out = [(key: String, value: InfotextValue?)]()
        func set(_ key: String, _ value: InfotextValue?) {
            if let i = out.firstIndex(where: { $0.key == key }) { out[i].value = value } else { out.append((key, value)) }
        }
        var hiresScheduleSlot: Int?
        if let hires = request.hires {
            set("Denoising strength", .float(hires.denoisingStrength))
            if let name = original.hires?.samplerName, name != original.samplerName { set("Hires sampler", .string(name)) }
            // Always present (callables in A1111, written only when they differ from the first pass's).
            set("Hires prompt", hires.prompt.isEmpty || hires.prompt == request.prompt ? nil : .string(hires.prompt))
            set("Hires negative prompt", hires.negativePrompt.isEmpty || hires.negativePrompt == request.negativePrompt
                ? nil : .string(hires.negativePrompt))
            set("Hires schedule type", nil)   // filled by the hires pass when its schedule differs
            hiresScheduleSlot = out.count - 1
            if hires.resizeX == 0 && hires.resizeY == 0 {
                set("Hires upscale", .float(hires.scale))
            } else {
                set("Hires resize", .string("\(hires.resizeX)x\(hires.resizeY)"))
            }
            if hires.secondPassSteps > 0 { set("Hires steps", .int(Int64(hires.secondPassSteps))) }
            if let upscaler = hires.upscaler { set("Hires upscaler", .string(upscaler)) }
        }
        if !loraHashes.isEmpty {
            set("Lora hashes", .string(loraHashes.map { "\($0.name): \($0.hash)" }.joined(separator: ", ")))
        }
        if let tiHashes { set("TI hashes", .string(tiHashes)) }
        // Matches: modules/sd_hijack_clip.py TextConditionalModel.forward (Emphasis)
        let texts = [request.prompt, request.negativePrompt] + (request.hires.map { [$0.prompt, $0.negativePrompt] } ?? [])
        if request.emphasis != .original, texts.contains(where: { $0.contains("(") || $0.contains("[") }) {
            set("Emphasis", .string(request.emphasis.rawValue))
        }
        for (key, value) in schedule { set(key, .string(value)) }
        if let hiresSchedule, let slot = hiresScheduleSlot { out[slot].value = .string(hiresSchedule) }
        return out
    }

    /// One batch through the first pass (and the hires pass when asked).
    func sampleBatch(_ request: GenerationRequest, sampler: SamplerInfo, scheduler: ScheduleType, seeds: [Int64],
                     subseeds: [Int64], prompts: [String], negatives: [String]) throws -> BatchOutput {
        let active = try activate(prompts)
        let model = active.model
        let shape = [4, request.height / 8, request.width / 8]
        let noise = try makeNoise(shape, seeds, subseeds, request)
        let plan = try SamplingPlan(sampler: sampler, scheduler: scheduler, steps: request.steps, model: model.schedule)
        // Schedules count denoiser calls: second-order samplers call twice per step.
        let firstPassSteps = sampler.totalSteps(request.steps)
        let cond = try model.text.composable(prompts, steps: firstPassSteps, hiresSteps: nil, clipSkip: request.clipSkip)
        let uncond = try model.text.scheduled(negatives, steps: firstPassSteps, hiresSteps: nil,
                                              clipSkip: request.clipSkip)
        let tiHashes = active.tiHashes(calls: Self.encoderCalls(prompts: prompts, cond: cond, negatives: negatives,
                                                                uncond: uncond))
        let imageCond = try txt2imgImageConditioning(model, batch: seeds.count, height: request.height,
                                                     width: request.width)
        let guidance = CFGDenoiser(model: model.eps(imageConditioning: imageCond), schedule: model.schedule,
                                   prompts: cond, negative: uncond, scale: Float(request.cfgScale))
        let run = SamplingRun(denoiser: guidance.denoiser,
                              noise: try plan.noise(randn: noise.next, seeds: seeds.map { UInt64(bitPattern: $0) },
                                                    imageShape: shape, seededNormal: noise.seededNormal),
                              parameters: parameters(request), callback: stepCallback(total: request.steps),
                              guidance: guidance)
        var samples = try plan.sample(noise: try noise.next(), run: run)
        progress.update { $0.jobNo += 1 }
        var loraHashes = active.loraHashes
        if let hires = request.hires, !progress.isInterrupted {
            let hrPrompts = hires.prompt.isEmpty ? prompts : Array(repeating: hires.prompt, count: prompts.count)
            let hrActive = try activate(hrPrompts)
            for entry in hrActive.loraHashes {
                if let i = loraHashes.firstIndex(where: { $0.name == entry.name }) {
                    loraHashes[i] = entry
                } else {
                    loraHashes.append(entry)
                }
            }
            let hr = try hiresPass(samples, hires: hires, model: hrActive.model, request: request, sampler: sampler,
                                   scheduler: scheduler, seeds: seeds, subseeds: subseeds, prompts: hrPrompts,
                                   negatives: negatives)
            samples = hr.samples
            progress.update { $0.jobNo += 1 }
            // A1111 records the hires pass's schedule when it differs from the first pass's recorded one.
            let first = plan.infotext.first { $0.key == "Schedule type" }?.value
            if let label = hr.scheduleLabel, label != first {
                return BatchOutput(samples: samples, infotext: plan.infotext, loraHashes: loraHashes,
                                   tiHashes: tiHashes, hiresScheduleLabel: label)
            }
        }
        return BatchOutput(samples: samples, infotext: plan.infotext, loraHashes: loraHashes, tiHashes: tiHashes)
    }

    /// The embeddings each text-encoder call used, in A1111's call order: the unconditional prompts first (one
    /// call per distinct prompt), then the distinct `AND` parts of the prompts.
    /// Matches: modules/processing.py StableDiffusionProcessing.setup_conds; modules/prompt_parser.py
    /// get_learned_conditioning, get_multicond_prompt_list
    static func encoderCalls(prompts: [String], cond: [ComposablePrompt], negatives: [String],
                             uncond: [PromptSchedule]) -> [[String]] {
        var calls = [[String]](), seen = Set<String>()
        for (text, schedule) in zip(negatives, uncond) where seen.insert(text).inserted { calls.append(schedule.embeddings) }
        seen = []
        let parts = ExtraNetworkTag.strip(prompts: prompts).texts.map(PromptComposition.parts)
        for (split, prompt) in zip(parts, cond) {
            for (part, encoded) in zip(split, prompt.parts) where seen.insert(part.text).inserted {
                calls.append(encoded.schedule.embeddings)
            }
        }
        return calls
    }

    /// The second pass of hires fix: latent upscale, fresh noise from the same seeds, img2img sampling.
    /// Matches: modules/processing.py StableDiffusionProcessingTxt2Img.sample_hr_pass (latent upscalers)
    func hiresPass(_ samples: Tensor, hires: HiresFix, model: LoadedModel, request: GenerationRequest,
                   sampler: SamplerInfo, scheduler: ScheduleType, seeds: [Int64], subseeds: [Int64],
                   prompts hrPrompts: [String], negatives: [String])
        throws -> (samples: Tensor, scheduleLabel: String?) {
        let upscaler = hires.upscaler ?? "Latent"
        guard let mode = LatentUpscaleMode(rawValue: upscaler) else {
            throw GenerationError.invalidValue(field: "hr_upscaler",
                message: "unknown upscaler '\(upscaler)'; accepted: "
                    + LatentUpscaleMode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let target = hires.target(width: request.width, height: request.height)
        var latent = mode.resize(samples, height: target.height / 8, width: target.width / 8)
        let (ty, tx) = (target.truncateY, target.truncateX)
        if ty > 0 || tx > 0 {
            latent = latent.slice(axis: 2, (ty / 2)..<(latent.shape[2] - (ty + 1) / 2))
                .slice(axis: 3, (tx / 2)..<(latent.shape[3] - (tx + 1) / 2))
        }
        let hrSampler = hires.samplerName.map { SamplerRegistry.resolve(sampler: $0, scheduler: nil).sampler } ?? sampler
        let hrScheduler = hires.scheduler.flatMap { ScheduleType(nameOrLabel: $0) } ?? scheduler
        let steps = hires.secondPassSteps > 0 ? hires.secondPassSteps : request.steps
        // The hires pass passes its step count explicitly, so A1111 takes the "fixed steps" branch.
        let (total, tEnc) = SamplingPlan.img2imgSteps(steps: steps, denoisingStrength: hires.denoisingStrength,
                                                      overrideSteps: steps)
        let plan = try SamplingPlan(sampler: hrSampler, scheduler: hrScheduler, steps: total, model: model.schedule)
        let shape = Array(latent.shape.dropFirst())
        let noise = try makeNoise(shape, seeds, subseeds, request)
        let hrNegatives = hires.negativePrompt.isEmpty ? negatives
                                                       : Array(repeating: hires.negativePrompt, count: negatives.count)
        let firstPassSteps = sampler.totalSteps(request.steps), hiresSteps = hrSampler.totalSteps(steps)
        let cond = try model.text.composable(hrPrompts, steps: firstPassSteps, hiresSteps: hiresSteps,
                                             clipSkip: request.clipSkip)
        let uncond = try model.text.scheduled(hrNegatives, steps: firstPassSteps, hiresSteps: hiresSteps,
                                              clipSkip: request.clipSkip)
        let imageCond = try txt2imgImageConditioning(model, batch: latent.shape[0], height: latent.shape[2] * 8,
                                                     width: latent.shape[3] * 8)
        let guidance = CFGDenoiser(model: model.eps(imageConditioning: imageCond), schedule: model.schedule,
                                   prompts: cond, negative: uncond, scale: Float(request.cfgScale))
        let first = try noise.next()
        let run = SamplingRun(denoiser: guidance.denoiser,
                              noise: try plan.noise(randn: noise.next, seeds: seeds.map { UInt64(bitPattern: $0) },
                                                    imageShape: shape, seededNormal: noise.seededNormal),
                              parameters: parameters(request), callback: stepCallback(total: tEnc + 1),
                              guidance: guidance)
        return (try plan.sampleImg2Img(latent: latent, noise: first, tEnc: tEnc, run: run),
                plan.infotext.first { $0.key == "Schedule type" }?.value)
    }

    /// For inpainting checkpoints, A1111 conditions txt2img on a fully masked grey image: mask channel of ones
    /// followed by the VAE encoding of a 0.5-grey image. Nil for ordinary 4-channel UNets.
    /// Matches: modules/processing.py txt2img_image_conditioning
    func txt2imgImageConditioning(_ model: LoadedModel, batch: Int, height: Int, width: Int) throws -> Tensor? {
        guard model.unet.config.inChannels == 9 else { return nil }
        // A1111 feeds 0.5 to a VAE that expects [-1, 1] images; we do the same.
        let grey = Tensor(repeating: 0.5, shape: [1, 3, height, width])
        let latent = try model.vae.encode(grey).scaledMean                     // [1, 4, h, w]
        let mask = Tensor(repeating: 1, shape: [1, 1, latent.shape[2], latent.shape[3]])
        let one = Tensor.concat([mask, latent], axis: 1)                        // [1, 5, h, w]
        return Tensor.concat(Array(repeating: one, count: batch), axis: 0)
    }

    func parameters(_ r: GenerationRequest) -> SamplerParameters {
        SamplerParameters(eta: r.eta.map { Float($0) }, sChurn: Float(r.sChurn), sTmin: Float(r.sTmin),
                          sTmax: r.sTmax.map { $0 == 0 ? .infinity : Float($0) } ?? .infinity,
                          sNoise: Float(r.sNoise))
    }

    /// Progress after every step; interrupt and skip end sampling cleanly with the last prediction.
    func stepCallback(total: Int) -> StepCallback {
        progress.update { $0.samplingSteps = total; $0.samplingStep = 0 }
        return { [progress] step in
            progress.update { $0.samplingStep = step.index + 1 }
            if (step.index + 1) % 5 == 0 {
                let preview = ImageConversion.cheapPreview(step.denoised)
                progress.update { $0.preview = preview }
            }
            return progress.isInterrupted || progress.isSkipped ? .stop : .proceed
        }
    }

    /// Rejects values that cannot make an image, naming the A1111 field and what is accepted.
    static func validate(_ r: GenerationRequest) throws {
        func check(_ ok: Bool, _ field: String, _ message: String) throws {
            if !ok { throw GenerationError.invalidValue(field: field, message: message) }
        }
        try check(r.steps >= 1 && r.steps <= 1000, "steps", "must be between 1 and 1000, got \(r.steps)")
        try check(r.width >= 64 && r.width <= 4096 && r.width % 8 == 0, "width",
                  "must be a multiple of 8 between 64 and 4096, got \(r.width)")
        try check(r.height >= 64 && r.height <= 4096 && r.height % 8 == 0, "height",
                  "must be a multiple of 8 between 64 and 4096, got \(r.height)")
        try check(r.batchSize >= 1 && r.batchSize <= 64, "batch_size", "must be between 1 and 64, got \(r.batchSize)")
        try check(r.nIter >= 1 && r.nIter <= 1000, "n_iter", "must be between 1 and 1000, got \(r.nIter)")
        try check(r.cfgScale.isFinite, "cfg_scale", "must be a finite number")
        try check(r.subseedStrength >= 0 && r.subseedStrength <= 1, "subseed_strength",
                  "must be between 0 and 1, got \(r.subseedStrength)")
        try check(r.clipSkip >= 1 && r.clipSkip <= 12, "CLIP_stop_at_last_layers",
                  "must be between 1 and 12, got \(r.clipSkip)")
        if let h = r.hires {
            try check(h.denoisingStrength >= 0 && h.denoisingStrength <= 1, "denoising_strength",
                      "must be between 0 and 1, got \(h.denoisingStrength)")
            try check(h.scale > 0 && h.scale <= 8, "hr_scale", "must be in (0, 8], got \(h.scale)")
            let t = h.target(width: r.width, height: r.height)
            try check(t.width >= 64 && t.width <= 4096 && t.height >= 64 && t.height <= 4096, "hr_scale",
                      "hires size \(t.width)x\(t.height) is outside 64…4096")
        }
    }
}
