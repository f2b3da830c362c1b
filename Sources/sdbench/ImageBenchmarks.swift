import Foundation
import Networks
import Pipeline
import TensorCore

/// The text side and the whole image on the full-size random networks, through the server's own code: CLIP
/// encode of one `[2, 77]` cond + uncond batch, and one txt2img image by `Txt2Img.run` (prompt parsing and
/// encoding, Euler with CFG — one UNet call at batch 2 per step —, VAE decode, conversion to RGB). PyTorch CPU
/// does the same work in compat/reference/bench_torch_unet.py (stages `clip` and `image`).
enum ImageBenchmarks {
    /// The prompts both sides encode and generate with (bench_torch_unet.py holds the same two).
    static let prompt = "a photograph of an astronaut riding a horse on the moon, highly detailed, sharp focus"
    static let negative = "blurry, low quality, watermark"
    /// Where an SD1 checkpoint keeps the text model.
    static let textPrefix = "cond_stage_model.transformer.text_model"

    /// The text encoder the Engine builds for an SD1 checkpoint (bundled tokenizer, CLIP, emphasis).
    static func textEncoder(_ source: RandomTensorSource) throws -> CLIPPromptEncoder {
        try CLIPPromptEncoder(WeightReader(source, prefix: textPrefix))
    }

    /// GEMM FLOPs of one CLIP call on `batch` rows of a full context, from the checkpoint's shapes.
    static func clipFLOPs(_ text: CLIPPromptEncoder, source: RandomTensorSource, batch: Int) -> Double {
        let model = text.model
        let inner = source.shape(of: "\(textPrefix).encoder.layers.0.mlp.fc1.weight")?.first ?? 4 * model.width
        return CLIPFLOPs.count(layers: model.layers.count, width: model.width, inner: inner, batch: batch,
                               tokens: model.contextLength)
    }

    /// The table row for CLIP: one forward of the prompt's and the negative prompt's first chunks together.
    static func clipRow(_ text: CLIPPromptEncoder, source: RandomTensorSource, options: NetworkBenchmarks.Options,
                        gemm: Double) throws {
        let rows = try [prompt, negative].map { line in
            guard let chunk = try text.chunker.chunks(line).chunks.first else {
                throw NetworkBenchmarks.BenchmarkError.failed("the tokenizer made no chunk of '\(line)'")
            }
            return chunk.tokens
        }
        let seconds = try NetworkBenchmarks.time(options.repeats) { _ in _ = try text.model(rows) }
        let tokens = text.model.contextLength
        NetworkBenchmarks.row("CLIP encode", "2×\(tokens)", seconds,
                              clipFLOPs(text, source: source, batch: 2) / gemm,
                              NetworkBenchmarks.torchSeconds(options, stage: "clip", size: 512))
    }

    /// The table row for one whole `options.imageSize` image of `options.steps` Euler steps at CFG 7. Both sides
    /// make a 1-step image first (warm-up) and time one image. The floor counts two CLIP calls of one row (prompt
    /// and negative prompt are encoded apart, as in A1111 and diffusers), the steps' UNet calls and the decode.
    static func imageRow(unet: UNetModel, vae: AutoencoderKL, text: CLIPPromptEncoder, source: RandomTensorSource,
                         options: NetworkBenchmarks.Options, gemm: Double) throws {
        let size = options.imageSize, steps = options.steps, latent = size / 8
        let info = CheckpointInfo(filename: "random-sd15.safetensors", modelsFolder: "", legacyHash: "00000000",
                                  sha256: nil)
        let model = LoadedModel(info: info, unet: unet, vae: vae, schedule: .sd1, text: text, source: source)
        let txt2img = Txt2Img(model: model, progress: ProgressTracker(), makeNoise: ImageNoise.factory)
        func image(steps: Int) throws {
            let request = GenerationRequest(prompt: prompt, negativePrompt: negative, seed: 1, subseed: 1,
                                            samplerName: "Euler", steps: steps, cfgScale: 7, width: size,
                                            height: size)
            let result = try txt2img.run(request)
            guard result.images.count == 1, !result.interrupted else {
                throw NetworkBenchmarks.BenchmarkError.failed("txt2img made \(result.images.count) images")
            }
        }
        try image(steps: 1)
        let t0 = DispatchTime.now().uptimeNanoseconds
        try image(steps: steps)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let flops = 2 * clipFLOPs(text, source: source, batch: 1)
            + Double(steps) * UNetFLOPs.count(unet.config, batch: 2, height: latent, width: latent,
                                              contextTokens: text.model.contextLength)
            + VAEFLOPs.decode(vae.config, height: latent, width: latent)
        NetworkBenchmarks.row("txt2img \(steps) steps", "\(size)×\(size) CFG", seconds, flops / gemm,
                              NetworkBenchmarks.torchSeconds(options, stage: "image", size: size, steps: steps))
    }
}
