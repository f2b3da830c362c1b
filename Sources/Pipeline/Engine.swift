import Foundation
import ModelIO
import Networks
import Sampling
import Tokenizer

/// Loads checkpoints and runs generation jobs. Used only from the job queue's thread (one job at a time), so the
/// loaded model needs no lock; the cache keeps the last checkpoint loaded (A1111 keeps one model in memory by
/// default, `sd_checkpoints_limit` = 1), the last external VAE and the last LoRA-merged networks.
public final class Engine: @unchecked Sendable {
    /// Builds the text side (tokenizer, prompt parser, CLIP) of a checkpoint.
    public typealias TextEncoderFactory = (_ weights: WeightReader) throws -> any PromptEncoder

    private let makeText: TextEncoderFactory
    private let makeNoise: BatchNoiseFactory
    private let library: any ModelLibrary
    private let loras: LoraMerger
    private var loaded: LoadedModel?
    private var externalVAE: (path: String, mtime: Double, vae: AutoencoderKL)?
    /// Called with a message for everything a job asked for and A1111 would skip with a console warning
    /// (a LoRA name no file answers to, an unknown VAE name).
    public var warn: @Sendable (String) -> Void = { _ in }

    public init(makeText: @escaping TextEncoderFactory, makeNoise: @escaping BatchNoiseFactory,
                library: any ModelLibrary = EmptyModelLibrary()) {
        self.makeText = makeText
        self.makeNoise = makeNoise
        self.library = library
        loras = LoraMerger(makeText: makeText)
    }

    /// The checkpoint in memory, if any.
    public var current: CheckpointInfo? { loaded?.info }

    /// Drops the model from memory (`/sdapi/v1/unload-checkpoint`).
    public func unload() {
        loaded = nil
        externalVAE = nil
        loras.reset()
    }

    /// Loads `info` unless it is the model already in memory. Every network is built from the file's keys with
    /// shapes checked; a file that is not an SD1 checkpoint fails with the file and key that did not fit.
    @discardableResult
    public func load(_ info: CheckpointInfo) throws -> LoadedModel {
        if let loaded, loaded.info.filename == info.filename, loaded.info.sha256 == info.sha256 { return loaded }
        unload()
        do {
            let file = try openCheckpoint(path: info.filename)
            let root = WeightReader(file)
            let unet = try UNetModel(root["model"]["diffusion_model"])
            let vae = try AutoencoderKL(root["first_stage_model"])
            let text = try makeText(root["cond_stage_model"]["transformer"]["text_model"])
            let schedule = try Self.schedule(from: root)
            let model = LoadedModel(info: info, unet: unet, vae: vae, schedule: schedule, text: text, source: file)
            loaded = model
            return model
        } catch let e as GenerationError {
            throw e
        } catch {
            throw GenerationError.modelLoadFailed(file: info.filename, reason: "\(error)")
        }
    }

    /// The checkpoint's own `alphas_cumprod` when it carries one (A1111 takes the sigmas from it), else SD1's.
    static func schedule(from root: WeightReader) throws -> NoiseSchedule {
        guard root.contains("alphas_cumprod") else { return NoiseSchedule.sd1 }
        return try NoiseSchedule(alphasCumprod: root.tensor("alphas_cumprod", shape: [1000]).scalars)
    }

    /// Runs one txt2img job on `info` (loading it first if needed).
    public func generate(_ request: GenerationRequest, checkpoint info: CheckpointInfo,
                         progress: ProgressTracker) throws -> GenerationResult {
        var model = try load(info)
        for hook in request.hooks { try hook.prepare(request) }
        let vaeFile = resolveVAE(request.vae, checkpoint: model.info)
        if let vaeFile { model = model.replacingVAE(try loadVAE(vaeFile)) }
        let base = model
        let text = TextSetup(emphasis: request.emphasis, commaBacktrack: request.commaPaddingBacktrack,
                             embeddings: library.embeddings(width: base.text.width))
        var txt2img = Txt2Img(model: base, progress: progress, makeNoise: makeNoise)
        txt2img.activate = { [self] prompts in try activate(prompts, on: base, text: text) }
        var result: GenerationResult
        do {
            result = try txt2img.run(request)
        } catch let e as TokenizerError {
            throw GenerationError.invalidValue(field: "prompt", message: e.description)
        }
        result.vaeName = vaeFile?.name
        result.vaeShortHash = vaeFile?.shortHash
        for hook in request.hooks {
            result.extraParameters += hook.infotextParameters().map { ($0.key, InfotextValue.string($0.value)) }
        }
        return result
    }

    /// What a job's options and embeddings make of the text encoder.
    struct TextSetup {
        var emphasis: EmphasisMode = .original
        var commaBacktrack = 20
        var embeddings = EmbeddingDatabase()
    }

    /// The networks for one pass: the `<lora:…>` tags of the batch's prompts merged into the model, and the text
    /// encoder with the job's emphasis options, recognising the loaded textual-inversion embeddings.
    func activate(_ prompts: [String], on base: LoadedModel, text: TextSetup = TextSetup()) throws -> ActiveNetworks {
        let (selected, missing, malformed) = LoraTags.select(prompts: prompts, library: library)
        if let malformed {
            warn("LoRA tag <\(malformed.kind):\(malformed.items.joined(separator: ":"))> has a multiplier that is not a number; no LoRA applied (as A1111)")
        }
        if !missing.isEmpty { warn("Lora not found: \(missing.joined(separator: ", "))") }
        let merged = try loras.model(base, with: selected)
        var encoder = merged.text.configured(emphasis: text.emphasis, commaBacktrack: text.commaBacktrack)
        if !text.embeddings.loaded.isEmpty { encoder = encoder.using(text.embeddings) }
        let model = merged.replacingText(encoder)
        var hashes = [String: String]()
        for e in text.embeddings.loaded { hashes[e.name] = e.shortHash }
        return ActiveNetworks(model: model, loraHashes: LoraTags.hashes(selected), embeddingHashes: hashes)
    }

    /// The VAE file `sd_vae` selects: "None" → the checkpoint's own; "Automatic" (nil) → one named after the
    /// checkpoint if present; a name → that file, or (unknown) the checkpoint's own with a warning.
    /// Matches: modules/sd_vae.py resolve_vae (sd_vae_overrides_per_model_preferences on, no user metadata)
    func resolveVAE(_ setting: String?, checkpoint: CheckpointInfo) -> VAEFileInfo? {
        guard let setting, setting != "Automatic", setting != "auto" else {
            return library.vae(nearCheckpoint: checkpoint)
        }
        if setting == "None" { return nil }
        if let file = library.vae(named: setting) { return file }
        warn("Couldn't find VAE named \(setting); using None instead")
        return nil
    }

    private func loadVAE(_ file: VAEFileInfo) throws -> AutoencoderKL {
        let mtime = (try? MappedFile.modificationTime(path: file.path)) ?? 0
        if let externalVAE, externalVAE.path == file.path, externalVAE.mtime == mtime { return externalVAE.vae }
        externalVAE = nil
        do {
            let vae = try AutoencoderKL(WeightReader(try openCheckpoint(path: file.path)))
            externalVAE = (file.path, mtime, vae)
            return vae
        } catch {
            throw GenerationError.modelLoadFailed(file: file.path, reason: "not an SD1 VAE: \(error)")
        }
    }
}
