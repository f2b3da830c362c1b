import Foundation
import Testing
import TestSupport
@testable import Tokenizer

/// 400 seeded random prompts from the bracket grammar (some with a character dropped or inserted), parsed by
/// A1111's prompt_parser.py in compat/reference/gen_text.py (fixtures/text/fuzz.json). Emphasis and AND must match
/// on all; schedules must match exactly on every prompt with a single grammatical reading.
@Suite struct PromptFuzzTests {
    struct Case: Decodable {
        let prompt: String
        let mutated: Bool
        let unambiguous: Bool
        let attention: [PromptCase.Weighted]?
        let schedule: [PromptCase.Step]
        let schedule_hires: [PromptCase.Step]
        let and_parts: [PromptCase.Weighted]
    }
    struct File: Decodable { let cases: [Case] }

    @Test func matchesA1111() throws {
        let cases = try Fixtures.json("text/fuzz.json", as: File.self).cases
        #expect(cases.count == 400)
        var divergent = [String]()
        for c in cases {
            if let want = c.attention {
                let got = try PromptAttention.parse(c.prompt)
                #expect(got.map(\.text) == want.map(\.text), "\(c.prompt)")
                #expect(got.map(\.weight) == want.map(\.weight), "\(c.prompt)")
            } else {
                #expect(throws: PromptAttention.ParseError.self, "\(c.prompt)") { try PromptAttention.parse(c.prompt) }
            }
            let plain = PromptScheduling.schedule(c.prompt, steps: 7)
            let hires = PromptScheduling.schedule(c.prompt, steps: 5, hiresSteps: 8)
            let same = plain.map(\.endAtStep) == c.schedule.map(\.step) && plain.map(\.text) == c.schedule.map(\.text)
                && hires.map(\.endAtStep) == c.schedule_hires.map(\.step)
                && hires.map(\.text) == c.schedule_hires.map(\.text)
            if c.unambiguous {
                #expect(same, "\(c.prompt)")
            } else if !same {
                divergent.append(c.prompt)
            }
            let parts = PromptComposition.parts(c.prompt)
            #expect(parts.map(\.text) == c.and_parts.map(\.text), "\(c.prompt)")
            #expect(parts.map(\.weight) == c.and_parts.map(\.weight), "\(c.prompt)")
        }
        // Known gap: where a top-level bracket can be literal or open a construct, lark's Earley parser chooses by
        // its internal derivation order and this parser always takes the construct. Measured: 20 of 175 such prompts
        // differ; the bound catches regressions.
        #expect(cases.filter(\.unambiguous).count == 225)
        #expect(divergent.count <= 20, "\(divergent)")
    }
}
