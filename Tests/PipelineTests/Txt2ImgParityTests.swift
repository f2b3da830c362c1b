import Foundation
import Testing
import TestSupport
import ModelIO
import Networks
import Sampling
@testable import Pipeline

/// End-to-end parity: txt2img on the tiny random SD1 checkpoint against compat/reference/gen_txt2img.py (A1111
/// semantics restated over transformers' CLIP, diffusers' UNet/VAE, k-diffusion's samplers and torch CPU noise).
/// Tolerance from the issue: max |Δ| ≤ 1e-3 on the latent before decoding.
@Suite struct Txt2ImgParityTests {
    struct Case: Decodable {
        let name, prompt, negative_prompt, sampler_name, scheduler: String
        let steps, seed, width, height, batch_size: Int
        let cfg_scale: Double
        /// LoRA name → file (relative to the package root) for cases whose prompt has `<lora:…>` tags.
        let loras: [String: String]?
    }

    /// LoRAs from the fixture folder, by the names the cases use.
    struct FixtureLibrary: ModelLibrary {
        let loras: [String: String]
        func lora(named name: String) -> LoraFileInfo? {
            loras[name].map {
                LoraFileInfo(name: name, alias: name, path: Fixtures.packageRoot.appendingPathComponent($0).path,
                             shortHash: nil)
            }
        }
        func vae(named name: String) -> VAEFileInfo? { nil }
        func vae(nearCheckpoint checkpoint: CheckpointInfo) -> VAEFileInfo? { nil }
        func embeddings(width: Int) -> EmbeddingDatabase { EmbeddingDatabase() }
    }

    static func tinyModel() throws -> LoadedModel {
        let path = Fixtures.packageRoot.appendingPathComponent(
            "Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors").path
        let file = try openCheckpoint(path: path)
        let root = WeightReader(file)
        let info = CheckpointInfo(filename: path, modelsFolder: Fixtures.packageRoot.path, legacyHash: "00000000",
                                  sha256: nil)
        return LoadedModel(info: info, unet: try UNetModel(root["model"]["diffusion_model"]),
                           vae: try AutoencoderKL(root["first_stage_model"]),
                           schedule: try Engine.schedule(from: root),
                           text: try CLIPPromptEncoder(root["cond_stage_model"]["transformer"]["text_model"]),
                           source: file)
    }

    @Test func latentsMatchTheReference() throws {
        let model = try Self.tinyModel()
        let cases = try Fixtures.json("txt2img/cases.json", as: [Case].self)
        for c in cases {
            var txt2img = Txt2Img(model: model, progress: ProgressTracker(), makeNoise: ImageNoise.factory)
            if let loras = c.loras {
                let engine = Engine(makeText: CLIPPromptEncoder.factory, makeNoise: ImageNoise.factory,
                                    library: FixtureLibrary(loras: loras))
                txt2img.activate = { try engine.activate($0, on: model) }
            }
            let request = GenerationRequest(prompt: c.prompt, negativePrompt: c.negative_prompt, seed: Int64(c.seed),
                                            samplerName: c.sampler_name, scheduler: c.scheduler, steps: c.steps,
                                            cfgScale: c.cfg_scale, width: c.width, height: c.height,
                                            batchSize: c.batch_size, noiseSource: .cpu)
            let (sampler, scheduler) = SamplerRegistry.resolve(sampler: c.sampler_name, scheduler: c.scheduler)
            let seeds = (0..<c.batch_size).map { Int64(c.seed + $0) }
            let latent = try txt2img.sampleBatch(request, sampler: sampler, scheduler: scheduler, seeds: seeds,
                                                      subseeds: seeds, prompts: Array(repeating: c.prompt, count: c.batch_size),
                                                      negatives: Array(repeating: c.negative_prompt, count: c.batch_size)).samples
            let file = try Fixtures.safetensors("txt2img/\(c.name).safetensors")
            let closeness = Closeness(latent, try file.tensor("latent"))
            #expect(closeness.maxAbs <= 1e-3, "\(c.name): \(closeness)")

            // Decoded pixels: A1111 truncates to uint8, so a value within 1e-3 of a level boundary may land one
            // level away.
            let image = ImageConversion.images(fromDecoded: try model.vae.decode(latent))
            let reference = try file.tensor("image")
            var worst = 0
            for (b, img) in image.enumerated() {
                let plane = img.width * img.height
                for p in 0..<plane {
                    for ch in 0..<3 {
                        let want = Int(reference.scalars[(b * 3 + ch) * plane + p] * 255)
                        worst = max(worst, abs(Int(img.pixels[p * 3 + ch]) - want))
                    }
                }
            }
            #expect(worst <= 1, "\(c.name): pixels differ by up to \(worst) levels")
        }
    }
}
