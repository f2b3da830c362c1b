import Foundation
import ModelIO
import Testing
import TestSupport
@testable import Pipeline

/// CLIPPromptEncoder against A1111's get_multicond_learned_conditioning / get_learned_conditioning on the tiny
/// CLIP (fixtures/text/encode.*, compat/reference/gen_text.py): schedules, AND weights, emphasis, BREAK, long
/// prompts, extra-network tags, hires step offsets, clip skip 1 and 2.
@Suite struct TextEncoderTests {
    struct Part: Decodable { let weight: Double; let schedule: [[Entry]] }
    enum Entry: Decodable {
        case step(Int), name(String)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .step(i) } else { self = .name(try c.decode(String.self)) }
        }
        var step: Int? { if case .step(let s) = self { s } else { nil } }
        var name: String? { if case .name(let n) = self { n } else { nil } }
    }
    struct Case: Decodable {
        let prompts: [String]
        let steps: Int
        let hires_steps: Int?
        let clip_skip: Int
        let emphasis: String
        let positive: [[Part]]
        let negative: [[[Entry]]]
    }
    struct File: Decodable { let cases: [Case]; let negative_prompts: [String] }

    static func encoder(_ emphasis: EmphasisMode) throws -> CLIPPromptEncoder {
        let source = try tinyTextSource()
        return try CLIPPromptEncoder(WeightReader(source)["cond_stage_model"]["transformer"]["text_model"],
                                     emphasis: emphasis)
    }

    func check(_ got: PromptSchedule, _ expected: [[Entry]], _ file: SafetensorsFile) throws {
        #expect(got.entries.map(\.endAtStep) == expected.map { $0[0].step })
        for (entry, want) in zip(got.entries, expected) {
            let ref = try file.tensor(try #require(want[1].name))
            let closeness = Closeness(entry.cond, ref)
            // F32 CLIP (summation order differs from torch) and the emphasis mean ratio: measured max 3e-5.
            #expect(closeness.maxAbs < 2e-4, "\(want[1].name ?? ""): \(closeness)")
        }
    }

    @Test func matchesA1111() throws {
        let fixture = try Fixtures.json("text/encode.json", as: File.self)
        let tensors = try Fixtures.safetensors("text/encode.safetensors")
        #expect(fixture.cases.count == 18)
        for c in fixture.cases {
            let encoder = try Self.encoder(try #require(EmphasisMode(rawValue: c.emphasis)))
            let positive = try encoder.composable(c.prompts, steps: c.steps, hiresSteps: c.hires_steps,
                                                  clipSkip: c.clip_skip)
            #expect(positive.count == c.positive.count)
            for (got, want) in zip(positive, c.positive) {
                #expect(got.parts.map(\.weight) == want.map { Float($0.weight) })
                for (part, wantPart) in zip(got.parts, want) { try check(part.schedule, wantPart.schedule, tensors) }
            }
            let negative = try encoder.scheduled(fixture.negative_prompts, steps: c.steps, hiresSteps: c.hires_steps,
                                                 clipSkip: c.clip_skip)
            for (got, want) in zip(negative, c.negative) { try check(got, want, tensors) }
        }
    }
}

/// fixtures/text/clip_tiny.safetensors as a checkpoint: the token embedding is rebuilt at full vocabulary size
/// from the rows the fixture keeps (the others are zero; the prompts never use them).
func tinyTextSource() throws -> DictionaryTensorSource {
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
