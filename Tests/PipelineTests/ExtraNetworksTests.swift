import Foundation
import Testing
import TestSupport
import ModelIO
import Tokenizer
@testable import Pipeline

/// A temporary `Models/` folder.
final class TempModels {
    let root: URL
    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(UUID().uuidString)")
        for sub in ["Stable-diffusion", "VAE", "Lora"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
    }
    deinit { try? FileManager.default.removeItem(at: root) }
    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
    func copy(_ source: String, to relative: String) throws {
        try FileManager.default.copyItem(atPath: source, toPath: path(relative))
    }
}

@Suite struct LoraTagTests {
    func params(_ prompt: String) -> (name: String, te: Double, unet: Double, dyn: Int?)? {
        ExtraNetworkTag.strip(prompt).tags.first.flatMap(LoraTags.parameters)
    }

    /// Matches: extensions-builtin/Lora/extra_networks_lora.py activate (positional, then te=/unet=/dyn=).
    @Test func multipliersAsA1111ReadsThem() throws {
        let plain = try #require(params("a <lora:style>"))
        #expect(plain.name == "style" && plain.te == 1 && plain.unet == 1 && plain.dyn == nil)
        let both = try #require(params("<lora:style:0.7:1.3>"))
        #expect(both.te == 0.7 && both.unet == 1.3)
        let teOnly = try #require(params("<lora:style:0.4>"))
        #expect(teOnly.te == 0.4 && teOnly.unet == 0.4)
        let named = try #require(params("<lora:style:te=0.3:dyn=8>"))
        #expect(named.te == 0.3 && named.unet == 0.3 && named.dyn == 8)
        let mixed = try #require(params("<lora:style:0.5:unet=0.2>"))
        #expect(mixed.te == 0.5 && mixed.unet == 0.2)
        #expect(params("<lora:style:strong>") == nil)
    }

    struct Library: ModelLibrary {
        func lora(named name: String) -> LoraFileInfo? {
            ["a", "b,c"].contains(name) ? LoraFileInfo(name: name, alias: name, path: "/x/\(name)", shortHash: "0123456789ab") : nil
        }
        func vae(named name: String) -> VAEFileInfo? { nil }
        func vae(nearCheckpoint checkpoint: CheckpointInfo) -> VAEFileInfo? { nil }
        func embeddings(width: Int) -> EmbeddingDatabase { EmbeddingDatabase() }
    }

    @Test func selectionTakesTheFirstPromptsLoraAndLycoTags() {
        let (selected, missing, malformed) = LoraTags.select(
            prompts: ["x <lora:a:0.5> <hypernet:h:1> <lyco:b,c> <lora:gone>", "y <lora:other>"], library: Library())
        #expect(selected.map(\.mentionedName) == ["a", "b,c"])
        #expect(missing == ["gone"])
        #expect(malformed == nil)
        #expect(LoraTags.hashes(selected).map { "\($0.name): \($0.hash)" } == ["a: 0123456789ab", "bc: 0123456789ab"])
        let bad = LoraTags.select(prompts: ["<lora:a:1> <lora:b,c:x>"], library: Library())
        #expect(bad.selected.isEmpty && bad.malformed?.name == "b,c")
    }
}

@Suite struct ModelFilesTests {
    static let loraFixture = Fixtures.url("lora/tiny_lora.safetensors").path

    @Test func lorasResolveByStemAndAliasWithA1111Hashes() throws {
        let models = try TempModels()
        try models.copy(Self.loraFixture, to: "Lora/first.safetensors")
        let files = ModelFiles(modelsDir: models.root.path, dataDir: models.path("data"))
        let byStem = try #require(files.lora(named: "first"))
        #expect(byStem.alias == "tinyAlias")
        // fixtures/lora/cases.json addnet_hash, first 12 hex.
        #expect(byStem.shortHash == "9912717f6c2d")
        #expect(files.lora(named: "tinyAlias")?.path == byStem.path)
        #expect(files.lora(named: "missing") == nil)
        // The hash went into A1111's cache section for LoRAs.
        let cache = try String(contentsOfFile: models.path("data/cache.json"), encoding: .utf8)
        #expect(cache.contains("hashes-addnet") && cache.contains("lora/first"))

        // Two files with one alias: the alias is forbidden, stems still work.
        try models.copy(Self.loraFixture, to: "Lora/second.safetensors")
        files.refreshLoras()
        #expect(files.lora(named: "tinyAlias") == nil)
        #expect(files.lora(named: "second") != nil)
    }

    @Test func vaesAreListedAsA1111ListsThem() throws {
        let models = try TempModels()
        let tiny = Fixtures.packageRoot.appendingPathComponent(
            "Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors").path
        try models.copy(tiny, to: "Stable-diffusion/model.safetensors")
        try models.copy(Self.loraFixture, to: "Stable-diffusion/model.vae.safetensors")
        for name in ["vae10.pt", "vae2.safetensors", "Other.ckpt"] {
            FileManager.default.createFile(atPath: models.path("VAE/\(name)"), contents: Data("x".utf8))
        }
        let files = ModelFiles(modelsDir: models.root.path, dataDir: nil)
        #expect(files.checkpoints.map(\.name) == ["model.safetensors"])
        #expect(files.vaes.map(\.name) == ["model.vae.safetensors", "Other.ckpt", "vae2.safetensors", "vae10.pt"])
        let checkpoint = try #require(files.checkpoints.first)
        #expect(files.vae(nearCheckpoint: checkpoint)?.name == "model.vae.safetensors")
        let sha = try ModelHashes.sha256(file: models.path("VAE/vae2.safetensors"))
        #expect(files.vae(named: "vae2.safetensors")?.shortHash == String(sha.prefix(10)))
        #expect(files.vae(named: "nope.pt") == nil)
    }
}

/// A whole job on the tiny checkpoint with a LoRA tag and an external VAE, through the Engine as the server runs it.
@Suite struct EngineExtraNetworksTests {
    static func setUp() throws -> (TempModels, ModelFiles, CheckpointInfo) {
        let models = try TempModels()
        let tiny = Fixtures.packageRoot.appendingPathComponent(
            "Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors").path
        try models.copy(tiny, to: "Stable-diffusion/tiny.safetensors")
        try models.copy(ModelFilesTests.loraFixture, to: "Lora/first.safetensors")
        // An external VAE: the checkpoint's own with a brighter decoder output.
        let source = try SafetensorsFile(path: tiny)
        var vae = [String: Tensor]()
        for key in source.keys where key.hasPrefix("first_stage_model.") {
            vae[String(key.dropFirst("first_stage_model.".count))] = try source.tensor(key)
        }
        vae["decoder.conv_out.bias"] = try source.tensor("first_stage_model.decoder.conv_out.bias") + 0.3
        try SafetensorsWriter.write(vae, to: models.path("VAE/bright.safetensors"))
        let files = ModelFiles(modelsDir: models.root.path, dataDir: nil)
        let info = files.hashCheckpoint(try #require(files.checkpoints.first))
        return (models, files, info)
    }

    static func request(_ prompt: String, vae: String?) -> GenerationRequest {
        GenerationRequest(prompt: prompt, seed: 3, samplerName: "Euler", steps: 2, cfgScale: 5, width: 64, height: 64,
                          noiseSource: .cpu, vae: vae)
    }

    @Test func loraAndVAEChangeTheImageAndAreRecorded() throws {
        let (models, files, info) = try Self.setUp()
        _ = models
        let warnings = WarningLog()
        let engine = Engine(makeText: CLIPPromptEncoder.factory, makeNoise: ImageNoise.factory, library: files)
        engine.warn = { warnings.add($0) }
        let progress = ProgressTracker()
        let plain = try engine.generate(Self.request("a fox", vae: nil), checkpoint: info, progress: progress)
        #expect(plain.loraHashes.isEmpty && plain.vaeName == nil)

        let lora = try engine.generate(Self.request("a fox <lora:first:0.7:1.3>", vae: "None"), checkpoint: info,
                                       progress: progress)
        #expect(lora.loraHashes.map { "\($0.name): \($0.hash)" } == ["first: 9912717f6c2d"])
        #expect(lora.images[0].pixels != plain.images[0].pixels)
        // Back to no LoRA: the base networks again, bit for bit.
        let again = try engine.generate(Self.request("a fox", vae: nil), checkpoint: info, progress: progress)
        #expect(again.images[0].pixels == plain.images[0].pixels)

        let bright = try engine.generate(Self.request("a fox", vae: "bright.safetensors"), checkpoint: info,
                                         progress: progress)
        #expect(bright.vaeName == "bright.safetensors")
        #expect(bright.vaeShortHash == String(try ModelHashes.sha256(file: models.path("VAE/bright.safetensors")).prefix(10)))
        let meanPlain = plain.images[0].pixels.reduce(0) { $0 + Int($1) }
        let meanBright = bright.images[0].pixels.reduce(0) { $0 + Int($1) }
        #expect(meanBright > meanPlain)

        let unknown = try engine.generate(Self.request("a fox <lora:nobody>", vae: "missing.pt"), checkpoint: info,
                                          progress: progress)
        #expect(unknown.images[0].pixels == plain.images[0].pixels && unknown.vaeName == nil)
        #expect(warnings.all.contains("Lora not found: nobody"))
        #expect(warnings.all.contains { $0.contains("missing.pt") })
    }

    @Test func aLoraThatCannotBeAppliedIsAClearError() throws {
        let (models, files, info) = try Self.setUp()
        var hada = [String: Tensor]()
        hada["lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a"] = Tensor(repeating: 0.1, shape: [32, 2])
        try SafetensorsWriter.write(hada, to: models.path("Lora/loha.safetensors"))
        files.refreshLoras()
        let engine = Engine(makeText: CLIPPromptEncoder.factory, makeNoise: ImageNoise.factory, library: files)
        #expect {
            try engine.generate(Self.request("a <lora:loha:1>", vae: nil), checkpoint: info, progress: ProgressTracker())
        } throws: { error in
            guard case let GenerationError.invalidValue(field, message) = error else { return false }
            return field == "prompt" && message.contains("loha") && message.contains("hada_w1_a")
        }
    }
}

final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items = [String]()
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}

@Suite struct TextualInversionTests {
    @Test func filesAndDatabaseAsA1111ListsThem() throws {
        let models = try TempModels()
        try FileManager.default.createDirectory(atPath: models.path("embeddings/sub"), withIntermediateDirectories: true)
        try SafetensorsWriter.write(["emb_params": Tensor(repeating: 0.01, shape: [3, 32])], to: models.path("embeddings/b.safetensors"))
        try SafetensorsWriter.write(["emb_params": Tensor(repeating: 0.01, shape: [1, 768])], to: models.path("embeddings/sub/Wide.safetensors"))
        try SafetensorsWriter.write(["x": Tensor(repeating: 0.01, shape: [32]), "y": Tensor(repeating: 0, shape: [32])],
                                    to: models.path("embeddings/two.safetensors"))
        FileManager.default.createFile(atPath: models.path("embeddings/empty.pt"), contents: Data())
        let files = ModelFiles(modelsDir: models.root.path, dataDir: nil)
        let db = files.embeddings(width: 32)
        #expect(db.loaded.map(\.name) == ["b"])
        #expect(db.loaded.first?.vectorCount == 3 && db.loaded.first?.shape == 32)
        #expect(db.skipped.map(\.name) == ["Wide"])
        let sha = try ModelHashes.sha256(file: models.path("embeddings/b.safetensors"))
        #expect(db.loaded.first?.shortHash == String(sha.prefix(12)))
        #expect(throws: ModelFileError.self) { try TextualInversionEmbedding(path: models.path("embeddings/two.safetensors")) }
    }

    @Test func lookupPrefersTheLongestNameAndChunksKeepEmbeddingsWhole() throws {
        let tokenizer = try CLIPTokenizer.shared()
        let lookup = EmbeddingLookup([("red", 1), ("red fox", 2)], tokenizer: tokenizer)
        let ids = tokenizer.encode("red fox red")
        #expect(lookup.match(ids, at: 0)?.name == "red fox")
        #expect(lookup.match(ids, at: 2)?.name == "red")
        #expect(lookup.match(ids, at: 1) == nil)

        let chunker = PromptChunker(tokenizer: tokenizer, embeddings: EmbeddingLookup([("emb", 3)], tokenizer: tokenizer))
        let filler = Array(repeating: "cat", count: 73).joined(separator: " ")
        let chunks = try chunker.chunks(filler + " emb").chunks
        #expect(chunks.count == 2)
        #expect(chunks[0].fixes.isEmpty)
        #expect(chunks[1].fixes == [PromptChunk.Fix(offset: 0, name: "emb")])
        #expect(Array(chunks[1].tokens[1...3]) == [0, 0, 0])
    }

    @Test func tiHashesFollowA1111sCallOrder() throws {
        let active = ActiveNetworks(model: try Txt2ImgParityTests.tinyModel(), embeddingHashes: ["a": "aaaa", "b,x": "bbbb"])
        #expect(active.tiHashes(calls: [["a"], [], ["b,x", "a"]]) == "bx: bbbb, a: aaaa, a: aaaa")
        #expect(active.tiHashes(calls: [["unknown"]]) == nil)
    }
}

@Suite struct ExtraParameterOrderTests {
    /// The order A1111 fills extra_generation_params in: hires keys (init), Lora hashes, TI hashes, Emphasis,
    /// schedule keys; `Hires schedule type` in the slot init reserved.
    @Test func keysComeInA1111sOrder() {
        var r = GenerationRequest(prompt: "a (cat)", samplerName: "DPM++ 2M", scheduler: "Karras")
        r.emphasis = .noNorm
        r.hires = HiresFix(upscaler: "Latent (nearest)", scale: 1.5, secondPassSteps: 3, denoisingStrength: 0.55,
                           prompt: "other", samplerName: "Euler")
        let extras = Txt2Img.extraParameters(r, original: r, loraHashes: [("a", "0123456789ab")], tiHashes: "e: ffff",
                                             schedule: [("Schedule type", "Karras")], hiresSchedule: "Automatic")
        #expect(extras.map(\.key) == ["Denoising strength", "Hires sampler", "Hires prompt", "Hires negative prompt",
                                      "Hires schedule type",
                                      "Hires upscale", "Hires steps", "Hires upscaler", "Lora hashes", "TI hashes",
                                      "Emphasis", "Schedule type"])
        #expect(extras.first?.value == .float(0.55))
        r.hires?.upscaler = nil
        r.hires?.resizeX = 128
        let resized = Txt2Img.extraParameters(r, original: r, loraHashes: [], schedule: [], hiresSchedule: nil)
        #expect(resized.contains { $0.key == "Hires resize" && $0.value == .string("128x0") })
        #expect(!resized.contains { $0.key == "Hires upscaler" })
        // Present as None (A1111's placeholder), so written nowhere in the infotext.
        #expect(resized.contains { $0.key == "Hires schedule type" && $0.value == nil })
    }
}
