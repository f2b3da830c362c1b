import Foundation
import Testing
import TestSupport
@testable import Tokenizer

/// Every corpus prompt of fixtures/text/prompts.json (made by compat/reference/gen_text.py from A1111's own
/// prompt_parser.py, extra_networks.py and sd_hijack_clip.py with transformers' CLIPTokenizer) reproduced exactly.
struct PromptCase: Decodable, Sendable, CustomTestStringConvertible {
    struct Chunk: Decodable, Sendable { let tokens: [Int]; let multipliers: [Double] }
    struct Tag: Decodable, Sendable {
        let kind: String
        let items: [String]
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            kind = try c.decode(String.self)
            items = try c.decode([String].self)
        }
    }
    struct Weighted: Decodable, Sendable {
        let text: String
        let weight: Double
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            text = try c.decode(String.self)
            weight = try c.decode(Double.self)
        }
    }
    struct Step: Decodable, Sendable {
        let step: Int
        let text: String
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            step = try c.decode(Int.self)
            text = try c.decode(String.self)
        }
    }
    let prompt: String
    let attention: [Weighted]
    let schedule: [Step]
    let schedule_hires: [Step]
    let and_parts: [Weighted]
    let extra_text: String
    let extra_tags: [Tag]
    let ids: [Int]
    let chunks: [Chunk]
    let token_count: Int

    var testDescription: String { prompt.debugDescription }

    static func all() throws -> [PromptCase] {
        struct File: Decodable { let cases: [PromptCase] }
        return try Fixtures.json("text/prompts.json", as: File.self).cases
    }
}

@Suite struct PromptParityTests {
    static let cases = (try? PromptCase.all()) ?? []

    @Test func corpusIsPresent() {
        #expect(Self.cases.count >= 20)
    }

    @Test(arguments: cases) func tokenIds(_ c: PromptCase) throws {
        #expect(try CLIPTokenizer.shared().encode(c.prompt) == c.ids)
    }

    @Test(arguments: cases) func attention(_ c: PromptCase) throws {
        let got = try PromptAttention.parse(c.prompt)
        #expect(got.map(\.text) == c.attention.map(\.text))
        #expect(got.map(\.weight) == c.attention.map(\.weight))
    }

    @Test(arguments: cases) func schedules(_ c: PromptCase) {
        let plain = PromptScheduling.schedule(c.prompt, steps: 10)
        #expect(plain.map(\.endAtStep) == c.schedule.map(\.step))
        #expect(plain.map(\.text) == c.schedule.map(\.text))
        let hires = PromptScheduling.schedule(c.prompt, steps: 10, hiresSteps: 6)
        #expect(hires.map(\.endAtStep) == c.schedule_hires.map(\.step))
        #expect(hires.map(\.text) == c.schedule_hires.map(\.text))
    }

    @Test(arguments: cases) func andParts(_ c: PromptCase) {
        let parts = PromptComposition.parts(c.prompt)
        #expect(parts.map(\.text) == c.and_parts.map(\.text))
        #expect(parts.map(\.weight) == c.and_parts.map(\.weight))
    }

    @Test(arguments: cases) func extraNetworks(_ c: PromptCase) {
        let (text, found) = ExtraNetworkTag.strip(c.prompt)
        // A1111 collects the tags in a dict keyed by kind (first appearance), each kind in prompt order.
        let kinds = found.map(\.kind).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let tags = kinds.flatMap { k in found.filter { $0.kind == k } }
        #expect(text == c.extra_text)
        #expect(tags.map(\.kind) == c.extra_tags.map(\.kind))
        #expect(tags.map(\.items) == c.extra_tags.map(\.items))
    }

    @Test(arguments: cases) func chunks(_ c: PromptCase) throws {
        let chunker = PromptChunker(tokenizer: try CLIPTokenizer.shared())
        let (chunks, count) = try chunker.chunks(c.prompt)
        #expect(count == c.token_count)
        #expect(chunks.map(\.tokens) == c.chunks.map(\.tokens))
        // A1111 multiplies in Python floats; the same operations in Double give the same numbers.
        #expect(chunks.map(\.multipliers) == c.chunks.map(\.multipliers))
    }
}

@Suite struct TokenizerBasicsTests {
    @Test func specialTokensAndVocabulary() throws {
        let t = try CLIPTokenizer.shared()
        #expect(t.id(of: ",</w>") == 267)
        #expect(t.id(of: "<|startoftext|>") == CLIPTokenizer.startToken)
        #expect(t.id(of: "<|endoftext|>") == CLIPTokenizer.endToken)
        #expect(t.encode("<|endoftext|>") == [CLIPTokenizer.endToken])
    }

    @Test func malformedMergesAreReported() {
        #expect(throws: TokenizerError.malformedMerges(line: 3, text: "abc")) {
            try CLIPTokenizer(merges: ["i n", "abc"])
        }
    }

    @Test func badEmphasisWeightThrows() {
        #expect(throws: PromptAttention.ParseError.invalidWeight("1.2.3")) {
            try PromptAttention.parse("(a:1.2.3)")
        }
    }

    @Test func extraNetworkMultiplier() {
        let (text, tags) = ExtraNetworkTag.strip(prompts: ["<lora:a:0.25>x<lora:b>", "<lora:c:2>"])
        #expect(text == ["x", ""])
        #expect(tags.map(\.name) == ["a", "b"])
        #expect(tags.map(\.multiplier) == [0.25, 1])
    }
}
