import Foundation
import ModelIO
import Testing
import TestSupport
@testable import Networks

/// The tiny random CLIP of fixtures/text/clip_tiny.safetensors (compat/reference/gen_text.py, from
/// sd_layout.tiny_sd1()) as a checkpoint-keyed source: the fixture keeps only the token-embedding rows the
/// prompts use (`token_rows` at `token_ids`); the other rows are zero here.
func tinyTextEncoderSource() throws -> DictionaryTensorSource {
    let file = try Fixtures.safetensors("text/clip_tiny.safetensors")
    guard let vocab = file.metadata["vocab_size"].flatMap(Int.init) else {
        throw TensorError.missingKey("clip_tiny.safetensors metadata vocab_size")
    }
    var tensors = [String: Tensor]()
    for key in file.keys where key != "token_rows" && key != "token_ids" { tensors[key] = try file.tensor(key) }
    let rows = try file.tensor("token_rows"), ids = try file.tensor("token_ids").scalars.map { Int($0) }
    let c = rows.shape[1]
    var table = Tensor(zeros: [vocab, c])
    for (r, id) in ids.enumerated() {
        for j in 0..<c { table.scalars[id * c + j] = rows.scalars[r * c + j] }
    }
    tensors["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = table
    return DictionaryTensorSource(tensors)
}

@Suite struct CLIPTextModelTests {
    @Test func configFromShapesAndEveryKeyConsumed() throws {
        let root = WeightReader(try tinyTextEncoderSource())
        let scope = root["cond_stage_model"]["transformer"]["text_model"]
        let model = try CLIPTextModel(scope)
        #expect(model.width == 32)
        #expect(model.layers.count == 12)
        #expect(model.heads == 1)
        #expect(model.contextLength == 77)
        #expect(model.vocabularySize == 49408)
        #expect(scope.unusedKeys().isEmpty)
    }

    @Test func missingLayerNormIsNamed() throws {
        var tensors = try tinyTextEncoderSource().tensors
        tensors["cond_stage_model.transformer.text_model.final_layer_norm.bias"] = nil
        let scope = WeightReader(DictionaryTensorSource(tensors))["cond_stage_model"]["transformer"]["text_model"]
        #expect(throws: TensorError.missingKey("cond_stage_model.transformer.text_model.final_layer_norm.bias")) {
            try CLIPTextModel(scope)
        }
    }

    /// Float position ids of merged checkpoints are truncated as transformers' int64 buffer truncates them.
    @Test func brokenPositionIdsAreTruncated() throws {
        struct Case: Decodable { struct Chunk: Decodable { let tokens: [Int] }; let chunks: [Chunk] }
        struct File: Decodable { let cases: [Case] }
        let tokens = try Fixtures.json("text/prompts.json", as: File.self).cases[0].chunks[0].tokens
        let fixture = try Fixtures.safetensors("text/encode.safetensors")
        var tensors = try tinyTextEncoderSource().tensors
        tensors["cond_stage_model.transformer.text_model.embeddings.position_ids"] =
            try fixture.tensor("broken_position_ids").reshaped([1, 77])
        let model = try CLIPTextModel(WeightReader(DictionaryTensorSource(tensors))["cond_stage_model"]["transformer"]["text_model"])
        #expect(model.positionIds[5] == 4 && model.positionIds[76] == 75)
        let closeness = Closeness(try model([tokens]).reshaped([77, 32]), try fixture.tensor("broken_position_ids_z"))
        #expect(closeness.maxAbs < 1e-4, "\(closeness)")
    }

    /// A prompt without emphasis: A1111's conditioning is the raw CLIP output (the emphasis rescale is exactly 1).
    @Test(arguments: [1, 2]) func hiddenStatesMatchTransformers(clipSkip: Int) throws {
        struct Case: Decodable { struct Chunk: Decodable { let tokens: [Int] }; let prompt: String; let chunks: [Chunk] }
        struct File: Decodable { let cases: [Case] }
        let corpus = try Fixtures.json("text/prompts.json", as: File.self).cases
        let prompt = try #require(corpus.first { $0.prompt == "a photo of an astronaut riding a horse" })
        let model = try CLIPTextModel(WeightReader(try tinyTextEncoderSource())["cond_stage_model"]["transformer"]["text_model"])
        let z = try model([prompt.chunks[0].tokens], clipSkip: clipSkip)   // [1, 77, 32]
        let expected = try Fixtures.safetensors("text/encode.safetensors").tensor("c0_skip\(clipSkip)_p0_part0_e0")
        let closeness = Closeness(z.reshaped([77, 32]), expected)
        // F32 with a different summation order than torch: measured 3e-5 (relative to peak 1e-5).
        #expect(closeness.maxAbs < 1e-4, "\(closeness)")
    }
}
