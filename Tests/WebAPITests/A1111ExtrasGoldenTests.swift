import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ModelIO
import Testing
import TestSupport
@testable import Pipeline
@testable import WebAPI

/// Infotexts against the real A1111 v1.10.1 for hires fix, LoRAs, VAEs and textual inversion
/// (fixtures/a1111/extras_cases.json, recorded by compat/reference/record_a1111_extras.py from the real server on
/// a full-size random SD1.5 checkpoint with the committed fixtures/a1111 LoRA and embedding files).
///
/// Our server runs each recorded request end to end on the tiny model. Names, aliases, hashes and embeddings are
/// resolved from the same committed files as A1111's; since the full-size LoRAs and 768-wide embeddings do not fit
/// the tiny model, the merge uses tiny-layout stand-ins (the fixture LoRA, zero vectors of the tiny width) and the
/// VAE is a tiny VAE carrying the recorded file's hash. The infotext depends on names and hashes, not on weights,
/// so every byte must match once A1111's `Model hash`/`Model` replace ours.
@Suite struct A1111ExtrasGoldenTests {
    /// The recording, read with our own JSON parser (number kinds and key order as written).
    static func recording() throws -> JSONValue {
        try JSONParser.parse(Data(contentsOf: Fixtures.url("a1111/extras_cases.json")))
    }

    /// A1111's files by name for lookups and hashes; tiny stand-ins for what gets merged.
    struct GoldenLibrary: ModelLibrary {
        let files: ModelFiles
        let tinyLora: String
        let tinyVAE: String
        let vaeHash: String
        func lora(named name: String) -> LoraFileInfo? {
            files.lora(named: name).map { LoraFileInfo(name: $0.name, alias: $0.alias, path: tinyLora, shortHash: $0.shortHash) }
        }
        func vae(named name: String) -> VAEFileInfo? {
            name == "vaeA.safetensors" ? VAEFileInfo(name: name, path: tinyVAE, shortHash: vaeHash) : nil
        }
        func vae(nearCheckpoint checkpoint: CheckpointInfo) -> VAEFileInfo? { nil }
        func embeddings(width: Int) -> EmbeddingDatabase {
            let real = files.embeddings(width: 768)
            return EmbeddingDatabase(loaded: real.loaded.map {
                TextualInversionEmbedding(name: $0.name, path: $0.path, vectors: Tensor(zeros: [$0.vectorCount, width]),
                                          shortHash: $0.shortHash)
            }, skipped: real.skipped)
        }
    }

    static func server() throws -> (ServerState, URL) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sdapi-golden-\(UUID().uuidString)")
        let models = root.appendingPathComponent("Models")
        for sub in ["Stable-diffusion", "Lora", "embeddings", "VAE"] {
            try FileManager.default.createDirectory(at: models.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let tiny = Fixtures.packageRoot.appendingPathComponent("Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors")
        try FileManager.default.copyItem(at: tiny, to: models.appendingPathComponent("Stable-diffusion/tiny.safetensors"))
        for (file, folder) in [("lora_full_a.safetensors", "Lora"), ("lora_full_b.safetensors", "Lora"), ("embA.pt", "embeddings"),
                               ("embB.safetensors", "embeddings"), ("embC.bin", "embeddings"), ("embXL.safetensors", "embeddings")] {
            try FileManager.default.copyItem(at: Fixtures.url("a1111/\(file)"),
                                             to: models.appendingPathComponent("\(folder)/\(file)"))
        }
        let source = try SafetensorsFile(path: tiny.path)
        var vae = [String: Tensor]()
        for key in source.keys where key.hasPrefix("first_stage_model.") {
            vae[String(key.dropFirst("first_stage_model.".count))] = try source.tensor(key)
        }
        let tinyVAE = root.appendingPathComponent("tiny-vae.safetensors").path
        try SafetensorsWriter.write(vae, to: tinyVAE)
        let vaeSHA = try Self.recording()["files"]?["vaeA.safetensors"]?["sha256"]?.stringValue ?? ""
        var config = ServerConfig()
        config.modelsDir = models.path
        config.dataDir = root.appendingPathComponent("data").path
        let files = ModelFiles(modelsDir: models.path, dataDir: config.dataDir)
        let library = GoldenLibrary(files: files, tinyLora: Fixtures.url("lora/tiny_lora.safetensors").path,
                                    tinyVAE: tinyVAE, vaeHash: String(vaeSHA.prefix(10)))
        let engine = Engine(makeText: CLIPPromptEncoder.factory, makeNoise: ImageNoise.factory, library: library)
        let state = ServerState(config: config, logger: Logger(label: "golden"), files: files, generator: engine)
        try state.selectStartupCheckpoint()
        return (state, root)
    }

    @Test func infotextsEqualA1111s() async throws {
        let cases = try #require(try Self.recording()["cases"]?.arrayValue)
        #expect(cases.count == 22)
        let (state, root) = try Self.server()
        defer { try? FileManager.default.removeItem(at: root) }
        let ours = "Model hash: \(state.loaded.current?.shorthash ?? ""), Model: tiny"
        try await RoutesTests.app(state).test(.router) { client in
            for c in cases {
                let id = c["id"]?.stringValue ?? ""
                let request = try #require(c["request"])
                try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, headers: [.contentType: "application/json"],
                                         body: ByteBuffer(string: request.serialized())) { response in
                    #expect(Int(response.status.code) == 200, "\(id)")
                    let body = try RoutesTests.json(response.body)
                    let info = try JSONParser.parse(Data((body["info"]?.stringValue ?? "").utf8))
                    let text = info["infotexts"]?.arrayValue?.first?.stringValue ?? ""
                    let expected = (c["infotext"]?.stringValue ?? "").replacingOccurrences(of: "Model hash: 663bbc5a5d, Model: sd15-random-fp16", with: ours)
                    #expect(text == expected, "\(id)")
                    // extra_generation_params as a dict (the recording sorted its keys).
                    #expect(info["extra_generation_params"]?.objectValue.map(Self.sorted)
                            == c["extra_generation_params"]?.objectValue.map(Self.sorted), "\(id)")
                }
            }
        }
    }

    static func sorted(_ o: JSONObject) -> [String] { o.pairs.map { "\($0.0)=\($0.1.serialized())" }.sorted() }
}
