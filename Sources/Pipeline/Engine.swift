import Foundation
import ModelIO
import Networks
import Sampling

/// Loads checkpoints and runs generation jobs. Used only from the job queue's thread (one job at a time), so the
/// loaded model needs no lock; the cache keeps the last checkpoint loaded (A1111 keeps one model in memory by
/// default, `sd_checkpoints_limit` = 1).
public final class Engine: @unchecked Sendable {
    /// Builds the text side (tokenizer, prompt parser, CLIP) of a checkpoint.
    public typealias TextEncoderFactory = (_ weights: WeightReader) throws -> any PromptEncoder

    private let makeText: TextEncoderFactory
    private let makeNoise: BatchNoiseFactory
    private var loaded: LoadedModel?

    public init(makeText: @escaping TextEncoderFactory, makeNoise: @escaping BatchNoiseFactory) {
        self.makeText = makeText
        self.makeNoise = makeNoise
    }

    /// The checkpoint in memory, if any.
    public var current: CheckpointInfo? { loaded?.info }

    /// Drops the model from memory (`/sdapi/v1/unload-checkpoint`).
    public func unload() { loaded = nil }

    /// Loads `info` unless it is the model already in memory. Every network is built from the file's keys with
    /// shapes checked; a file that is not an SD1 checkpoint fails with the file and key that did not fit.
    @discardableResult
    public func load(_ info: CheckpointInfo) throws -> LoadedModel {
        if let loaded, loaded.info.filename == info.filename, loaded.info.sha256 == info.sha256 { return loaded }
        loaded = nil
        do {
            let file = try openCheckpoint(path: info.filename)
            let root = WeightReader(file)
            let unet = try UNetModel(root["model"]["diffusion_model"])
            let vae = try AutoencoderKL(root["first_stage_model"])
            let text = try makeText(root["cond_stage_model"]["transformer"]["text_model"])
            let schedule = try Self.schedule(from: root)
            let model = LoadedModel(info: info, unet: unet, vae: vae, schedule: schedule, text: text)
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
        let model = try load(info)
        for hook in request.hooks { try hook.prepare(request) }
        var result = try Txt2Img(model: model, progress: progress, makeNoise: makeNoise).run(request)
        for hook in request.hooks { result.extraParameters += hook.infotextParameters() }
        return result
    }
}
