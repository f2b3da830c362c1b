import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import TestSupport
@testable import Media
@testable import Pipeline
@testable import WebAPI

/// A generator test double: solid-colour images, seeds resolved like A1111 (seed + i), the request recorded.
final class RecordingGenerator: ImageGenerator, @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [GenerationRequest] = []
    var fail: GenerationError?

    var last: GenerationRequest? { lock.lock(); defer { lock.unlock() }; return requests.last }

    func unload() {}
    func preload(_ info: CheckpointInfo) throws {}

    func generate(_ request: GenerationRequest, checkpoint: CheckpointInfo, progress: ProgressTracker) throws -> GenerationResult {
        lock.lock()
        requests.append(request)
        lock.unlock()
        if let fail { throw fail }
        var r = request
        r.seed = r.seed == -1 ? 1234 : r.seed
        r.subseed = r.subseed == -1 ? 99 : r.subseed
        let n = r.batchSize * r.nIter
        let image = RGBImage(width: r.width, height: r.height,
                             pixels: [UInt8](repeating: UInt8(r.seed % 256), count: r.width * r.height * 3))
        let extra: [(key: String, value: InfotextValue?)] = r.samplerName == "DPM++ 2M" ? [("Schedule type", .string("Karras"))] : []
        return GenerationResult(images: Array(repeating: image, count: n), allPrompts: Array(repeating: r.prompt, count: n),
                                allNegativePrompts: Array(repeating: r.negativePrompt, count: n),
                                allSeeds: (0..<n).map { r.seed + Int64($0) }, allSubseeds: (0..<n).map { r.subseed + Int64($0) },
                                request: r, scheduleLabel: r.scheduler, modelName: checkpoint.nameForExtra,
                                modelShortHash: checkpoint.shorthash, extraParameters: extra)
    }
}

@Suite struct Txt2ImgTests {
    static func run(_ body: String, generator: RecordingGenerator = RecordingGenerator(),
                    check: @escaping @Sendable (TestResponse, ServerState) throws -> Void) async throws {
        let base = try RoutesTests.makeState()
        let state = ServerState(config: base.config, logger: Logger(label: "test"), generator: generator)
        try state.selectStartupCheckpoint()
        try await RoutesTests.app(state).test(.router) { client in
            try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: body)) { try check($0, state) }
        }
    }

    @Test func responseShapeInfotextAndPNG() async throws {
        try await Self.run(#"{"prompt": "a cat", "negative_prompt": "dog", "seed": 5, "steps": 3, "width": 16, "height": 8, "cfg_scale": 7}"#) { response, _ in
            #expect(response.status == .ok)
            let body = try RoutesTests.json(response.body)
            #expect(body.objectValue?.keys == ["images", "parameters", "info"])
            let infoText = try #require(body["info"]?.stringValue)
            let info = try #require(try JSONParser.parse(infoText).objectValue)
            #expect(info.keys == ["prompt", "all_prompts", "negative_prompt", "all_negative_prompts", "seed", "all_seeds",
                                  "subseed", "all_subseeds", "subseed_strength", "width", "height", "sampler_name",
                                  "cfg_scale", "steps", "batch_size", "restore_faces", "face_restoration_model",
                                  "sd_model_name", "sd_model_hash", "sd_vae_name", "sd_vae_hash", "seed_resize_from_w",
                                  "seed_resize_from_h", "denoising_strength", "extra_generation_params",
                                  "index_of_first_image", "infotexts", "styles", "job_timestamp", "clip_skip",
                                  "is_using_inpainting_conditioning", "version"])
            #expect(body["info"]?.stringValue?.hasPrefix(#"{"prompt": "a cat", "all_prompts": ["a cat"]"#) == true)
            let text = try #require(info["infotexts"]?.arrayValue?.first?.stringValue)
            #expect(text.hasPrefix("a cat\nNegative prompt: dog\nSteps: 3, Sampler: Euler, Schedule type: Automatic, CFG scale: 7.0, Seed: 5, Size: 16x8, Model hash: "))
            #expect(text.hasSuffix(", Model: alpha, Version: v1.10.1"))
            let b64 = try #require(body["images"]?.arrayValue?.first?.stringValue)
            let png = try PNG.decode(try #require(Data(base64Encoded: b64)))
            #expect(png.width == 16 && png.height == 8)
            #expect(png.texts == [PNGText(keyword: "parameters", text: text, kind: .tEXt)])
            let params = try #require(body["parameters"]?.objectValue)
            #expect(params["sampler_index"] == .string("Euler") && params["sampler_name"] == .null)
            #expect(params["cfg_scale"] == .double(7.0) && params["denoising_strength"] == .null)
        }
    }

    @Test func infotextFillsUnsetFieldsAndSplitsLegacySampler() async throws {
        let generator = RecordingGenerator()
        let body = #"{"infotext": "pasted\nSteps: 3, Sampler: DPM++ 2M Karras, CFG scale: 5.0, Seed: 99, Size: 24x16, Clip skip: 2", "steps": 2}"#
        try await Self.run(body, generator: generator) { response, state in
            #expect(response.status == .ok)
            let params = try #require(try RoutesTests.json(response.body)["parameters"]?.objectValue)
            #expect(params["prompt"] == .string("pasted") && params["steps"] == .int(2) && params["seed"] == .int(99))
            // A1111 reports a scheduler equal to the sampler default as "Automatic" when pasting.
            #expect(params["sampler_name"] == .string("DPM++ 2M") && params["scheduler"] == .string("Automatic"))
            #expect(params["width"] == .int(24) && params["cfg_scale"] == .double(5))
            #expect(params["override_settings"]?["CLIP_stop_at_last_layers"] == .int(2))
            #expect(generator.last?.clipSkip == 2)
            // override_settings_restore_afterwards defaults to true: the option is unchanged.
            #expect(state.options.int("CLIP_stop_at_last_layers") == 1)
            let infoText = try #require(try RoutesTests.json(response.body)["info"]?.stringValue)
            let info = try JSONParser.parse(infoText)
            #expect(info["infotexts"]?.arrayValue?.first?.stringValue?.contains("Sampler: DPM++ 2M, Schedule type: Karras,") == true)
            #expect(info["infotexts"]?.arrayValue?.first?.stringValue?.contains("Clip skip: 2") == true)
        }
    }

    @Test func unknownSamplerFallsBackAndOverridesCanPersist() async throws {
        let generator = RecordingGenerator()
        let body = #"{"sampler_name": "nope", "override_settings": {"eta_noise_seed_delta": 31337}, "override_settings_restore_afterwards": false, "batch_size": 2, "seed": 10, "send_images": false}"#
        try await Self.run(body, generator: generator) { response, state in
            #expect(response.status == .ok)
            #expect(generator.last?.samplerName == "DPM++ 2M")
            #expect(generator.last?.etaNoiseSeedDelta == 31337)
            #expect(state.options.int("eta_noise_seed_delta") == 31337)
            let body = try RoutesTests.json(response.body)
            #expect(body["images"] == .array([]))
            let infoText = try #require(body["info"]?.stringValue)
            let info = try JSONParser.parse(infoText)
            #expect(info["all_seeds"] == .array([.int(10), .int(11)]))
        }
    }

    @Test func generationErrorsAreClear4xx() async throws {
        let generator = RecordingGenerator()
        generator.fail = .invalidValue(field: "width", message: "must be a multiple of 8")
        try await Self.run(#"{"width": 20}"#, generator: generator) { response, _ in
            #expect(response.status == .unprocessableContent)
            #expect(String(buffer: response.body).contains("width: must be a multiple of 8"))
        }
    }
}
