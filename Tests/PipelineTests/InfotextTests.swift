import Foundation
import Testing
import TestSupport
@testable import Pipeline

/// Golden cases recorded from A1111 v1.10.1's own parse_generation_parameters and create_infotext
/// (compat/reference/gen_api.py). Comparison is exact: same keys, same order, same values and types.
@Suite struct InfotextParseTests {
    struct ParseCase: Decodable {
        let infotext: String
        let parameters: [[String]]
    }

    static func value(_ type: String, _ text: String) -> InfotextValue {
        switch type {
        case "int": return .int(Int64(text)!)
        case "float": return .float(Double(text)!)
        case "bool": return .bool(text == "True")
        default: return .string(text)
        }
    }

    static let cases: [ParseCase] = (try? Fixtures.json("api/infotext_parse.json")) ?? []

    @Test func fixtureIsPresent() {
        #expect(Self.cases.count >= 40)
    }

    @Test(arguments: 0..<45)
    func parseMatchesA1111(_ index: Int) throws {
        try #require(index < Self.cases.count)
        let c = Self.cases[index]
        let parsed = Infotext.parse(c.infotext)
        let expected = c.parameters.map { ($0[0], Self.value($0[1], $0[2])) }
        #expect(parsed.keys == expected.map(\.0), "keys differ for \(c.infotext.debugDescription)")
        for (k, v) in expected {
            #expect(parsed[k] == v, "\(k): got \(String(describing: parsed[k])), A1111 has \(v) for \(c.infotext.debugDescription)")
        }
    }

    @Test func quoteRoundTrips() {
        for text in ["plain", "a, b", "k: v", "line\nbreak", "q\"uote\\", "é, 漢"] {
            #expect(Infotext.unquote(Infotext.quote(text)) == text)
        }
        #expect(Infotext.quote("a, b") == "\"a, b\"")
        #expect(Infotext.unquote("\"broken") == "\"broken")
        #expect(Infotext.unquote("\"a\" \"b\"") == "\"a\" \"b\"")
    }
}

@Suite struct InfotextCreateTests {
    struct Settings: Decodable {
        let prompt: String
        let negative_prompt: String
        let steps: Int
        let sampler_name: String
        let scheduler: String?
        let cfg_scale: Double
        let seed: Int64
        let width: Int
        let height: Int
        let sd_model_hash: String?
        let sd_model_name: String?
        let sd_vae_hash: String?
        let sd_vae_name: String?
        let subseed: Int64
        let subseed_strength: Double
        let seed_resize_from_w: Int
        let seed_resize_from_h: Int
        let restore_faces: Bool
        let tiling: Bool
        let eta: Double?
        let extra: [[String]]
        let clip_skip: Int
        let opts: Opts
    }

    struct Opts: Decodable {
        let eta_noise_seed_delta: Int64
        let randn_source: String
        let add_model_hash_to_info: Bool
        let add_model_name_to_info: Bool
        let add_vae_hash_to_info: Bool
        let add_vae_name_to_info: Bool
        let add_version_to_infotext: Bool
        let face_restoration_model: String
    }

    struct CreateCase: Decodable {
        let settings: Settings
        let infotext: String
    }

    static let cases: [CreateCase] = (try? Fixtures.json("api/infotext_create.json")) ?? []

    /// The same typed values A1111's `p` held, as the server fills them.
    static func fields(_ s: Settings) -> InfotextFields {
        var f = InfotextFields(prompt: s.prompt, negativePrompt: s.negative_prompt, steps: s.steps,
                               sampler: s.sampler_name, scheduleType: s.scheduler, cfgScale: s.cfg_scale, seed: s.seed,
                               width: s.width, height: s.height,
                               modelHash: s.opts.add_model_hash_to_info ? s.sd_model_hash : nil,
                               modelName: s.opts.add_model_name_to_info ? s.sd_model_name : nil,
                               clipSkip: s.clip_skip, rng: s.opts.randn_source, tiling: s.tiling,
                               extra: s.extra.map { ($0[0], InfotextParseTests.value($0[1], $0[2])) },
                               version: s.opts.add_version_to_infotext ? "v1.10.1" : nil)
        f.vaeHash = s.opts.add_vae_hash_to_info ? s.sd_vae_hash : nil
        f.vaeName = s.opts.add_vae_name_to_info ? s.sd_vae_name : nil
        f.variationSeed = s.subseed
        f.variationSeedStrength = s.subseed_strength
        f.seedResizeFrom = (s.seed_resize_from_w, s.seed_resize_from_h)
        f.faceRestoration = s.restore_faces ? s.opts.face_restoration_model : nil
        if Infotext.samplerUsesENSD(sampler: s.sampler_name, eta: s.eta ?? 1, ensd: s.opts.eta_noise_seed_delta) {
            f.ensd = s.opts.eta_noise_seed_delta
        }
        return f
    }

    @Test func fixtureIsPresent() {
        #expect(Self.cases.count >= 20)
    }

    @Test(arguments: 0..<26)
    func createMatchesA1111(_ index: Int) throws {
        try #require(index < Self.cases.count)
        let c = Self.cases[index]
        #expect(Infotext.create(Self.fields(c.settings)) == c.infotext)
    }

    @Test func createdTextParsesBack() throws {
        for c in Self.cases where !c.settings.prompt.isEmpty {
            let parsed = Infotext.parse(Infotext.create(Self.fields(c.settings)))
            #expect(parsed["Steps"] == .string(String(c.settings.steps)))
            #expect(parsed["Seed"] == .string(String(c.settings.seed)))
            #expect(parsed["Size-1"] == .string(String(c.settings.width)))
        }
    }
}
