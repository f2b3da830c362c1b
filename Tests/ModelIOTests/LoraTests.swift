import Foundation
import Testing
import TestSupport
@testable import ModelIO

/// fixtures/lora: a kohya-style LoRA over the tiny checkpoint and the weights A1111's math makes of it at
/// te 0.7 / unet 1.3, from compat/reference/gen_lora.py (cross-checked there against upstream network_lora.py).
@Suite struct LoraTests {
    struct Cases: Decodable {
        struct Module: Decodable { let lora_module: String; let checkpoint_key: String }
        let te_multiplier, unet_multiplier: Double
        let modules: [Module]
        let unmatched: [String]
        let addnet_hash, sha256: String
    }

    static let tinyPath = Fixtures.packageRoot
        .appendingPathComponent("Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors").path

    static func tiny() throws -> SafetensorsFile { try SafetensorsFile(path: tinyPath) }

    @Test func modulesMapToTheCheckpointKeysA1111Finds() throws {
        let cases: Cases = try Fixtures.json("lora/cases.json")
        let network = try LoraNetwork(file: try Fixtures.safetensors("lora/tiny_lora.safetensors"),
                                      layers: LoraLayerIndex(try Self.tiny()))
        let found = Dictionary(uniqueKeysWithValues: network.modules.map { ($0.name, $0.targetKey) })
        let expected = Dictionary(uniqueKeysWithValues: cases.modules.map { ($0.lora_module, $0.checkpoint_key) })
        #expect(found == expected)
        #expect(Set(network.unmatched.map { String($0.prefix { $0 != "." }) }) == Set(cases.unmatched))
    }

    /// Tolerance 1e-6 absolute: the reference equals upstream bit for bit; our rank-≤4 GEMM may round its few
    /// products in another order (a few ulp of weights below 4).
    @Test func mergedWeightsMatchTheReference() throws {
        let cases: Cases = try Fixtures.json("lora/cases.json")
        let base = try Self.tiny()
        let network = try LoraNetwork(file: try Fixtures.safetensors("lora/tiny_lora.safetensors"),
                                      layers: LoraLayerIndex(base))
        let overlay = LoraOverlay(base: base, applying: [
            .init(network: network, teMultiplier: cases.te_multiplier, unetMultiplier: cases.unet_multiplier, dynDim: nil),
        ])
        let expected = try Fixtures.safetensors("lora/patched.safetensors")
        #expect(overlay.patchedKeys == Set(expected.keys))
        for key in expected.keys {
            let got = try overlay.tensor(key), want = try expected.tensor(key)
            #expect(got.shape == want.shape, "\(key)")
            let closeness = Closeness(got, want)
            #expect(closeness.maxAbs <= 1e-6, "\(key): \(closeness)")
            #expect(got.maxAbsDifference(try base.tensor(key)) > 1e-3, "\(key) unchanged")
        }
        let untouched = "model.diffusion_model.out.2.weight"
        #expect(try overlay.tensor(untouched) == base.tensor(untouched))
    }

    @Test func addnetHashIsA1111s() throws {
        let cases: Cases = try Fixtures.json("lora/cases.json")
        let path = Fixtures.url("lora/tiny_lora.safetensors").path
        #expect(try ModelHashes.addnetHash(file: path) == cases.addnet_hash)
        #expect(try ModelHashes.sha256(file: path) == cases.sha256)
    }

    @Test func namesConvertLikeA1111() {
        let pairs = [
            ("lora_unet_down_blocks_2_resnets_1_time_emb_proj", "diffusion_model_input_blocks_8_0_emb_layers_1"),
            ("lora_unet_mid_block_resnets_1_conv2", "diffusion_model_middle_block_2_out_layers_3"),
            ("lora_unet_up_blocks_3_attentions_2_proj_out", "diffusion_model_output_blocks_11_1_proj_out"),
            ("lora_unet_up_blocks_1_upsamplers_0_conv", "diffusion_model_output_blocks_5_2_conv"),
            ("lora_unet_conv_out", "diffusion_model_out_2"),
            ("lora_unet_time_embedding_linear_2", "diffusion_model_time_embed_2"),
            ("lora_te_text_model_encoder_layers_7_mlp_fc2", "transformer_text_model_encoder_layers_7_mlp_fc2"),
            ("something_else", "something_else"),
        ]
        for (kohya, compvis) in pairs { #expect(LoraLayerIndex.compvisName(kohya) == compvis) }
    }

    // MARK: files that must be refused

    /// A safetensors image of F32 tensors.
    static func file(_ tensors: [String: (shape: [Int], values: [Float])]) throws -> SafetensorsFile {
        let image = try SafetensorsWriter.image(tensors.mapValues { Tensor(shape: $0.shape, scalars: $0.values) })
        return try SafetensorsFile(data: image, name: "hostile.safetensors")
    }

    static let q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"

    @Test func otherNetworkTypesAreRefusedByName() throws {
        let ia3 = try Self.file(["\(Self.q).weight": ([32], Array(repeating: 0.1, count: 32)),
                                 "\(Self.q).on_input": ([1], [1])])
        #expect {
            try LoraNetwork(file: ia3, layers: LoraLayerIndex(try Self.tiny()))
        } throws: { error in
            let text = "\(error)"
            return text.contains(Self.q) && text.contains("on_input") && text.contains("supported")
        }
        let halfLoha = try Self.file(["\(Self.q).hada_w1_a": ([32, 2], Array(repeating: 0.1, count: 64)),
                                      "\(Self.q).hada_w1_b": ([2, 32], Array(repeating: 0.1, count: 64))])
        #expect {
            try LoraNetwork(file: halfLoha, layers: LoraLayerIndex(try Self.tiny()))
        } throws: { "\($0)".contains("no complete network module") }
    }

    struct LycorisCases: Decodable {
        struct Module: Decodable { let module, checkpoint_key, dtype, type: String }
        let te_multiplier, unet_multiplier: Double
        let modules: [Module]
        let patched_keys: [String]
    }

    /// LoHa, LoKr and full modules (fixtures/lora/lycoris_*, compat/reference/gen_lycoris.py, equal to upstream
    /// network_apply_weights under torch 2.13): float16 modules bit for bit (every op rounded to float16 as torch
    /// does), float32 ones within 1e-6 (their GEMMs sum in another order).
    @Test func lycorisModulesMatchTheReference() throws {
        let cases: LycorisCases = try Fixtures.json("lora/lycoris_cases.json")
        let base = try Self.tiny()
        let network = try LoraNetwork(file: try Fixtures.safetensors("lora/tiny_lycoris.safetensors"),
                                      layers: LoraLayerIndex(base))
        #expect(Set(network.modules.map(\.name)) == Set(cases.modules.map(\.module)))
        let overlay = LoraOverlay(base: base, applying: [
            .init(network: network, teMultiplier: cases.te_multiplier, unetMultiplier: cases.unet_multiplier, dynDim: nil),
        ])
        #expect(overlay.patchedKeys == Set(cases.patched_keys))
        let expected = try Fixtures.safetensors("lora/lycoris_patched.safetensors")
        let halfKeys = Set(cases.modules.filter { $0.dtype == "float16" }.map(\.checkpoint_key))
        for key in expected.keys {
            let closeness = Closeness(try overlay.tensor(key), try expected.tensor(key))
            let exact = halfKeys.contains(key) || halfKeys.contains(key.replacingOccurrences(of: ".bias", with: ".weight"))
            #expect(closeness.maxAbs <= (exact ? 0 : 1e-6), "\(key): \(closeness)")
        }
    }

    @Test func factorsThatDoNotRebuildTheWeightAreRefused() throws {
        // to_q is [32, 32]; a rank-2 LoRA for a [32, 16] weight cannot patch it.
        let wrong = try Self.file(["\(Self.q).lora_down.weight": ([2, 16], Array(repeating: 0.1, count: 32)),
                                   "\(Self.q).lora_up.weight": ([32, 2], Array(repeating: 0.1, count: 64))])
        #expect {
            try LoraNetwork(file: wrong, layers: LoraLayerIndex(try Self.tiny()))
        } throws: { error in
            "\(error)".contains("make 512 values") && "\(error)".contains("[32, 32]")
        }
        let ranks = try Self.file(["\(Self.q).lora_down.weight": ([2, 32], Array(repeating: 0.1, count: 64)),
                                   "\(Self.q).lora_up.weight": ([32, 3], Array(repeating: 0.1, count: 96))])
        #expect(throws: ModelFileError.self) { try LoraNetwork(file: ranks, layers: LoraLayerIndex(try Self.tiny())) }
        let halfModule = try Self.file(["\(Self.q).lora_down.weight": ([2, 32], Array(repeating: 0.1, count: 64))])
        #expect(throws: ModelFileError.self) {
            try LoraNetwork(file: halfModule, layers: LoraLayerIndex(try Self.tiny()))
        }
    }

    @Test func dynDimKeepsTheFirstRanks() throws {
        // up · down with rank 2 = 1·1 + 2·2 per entry; dyn 1 keeps only the first product.
        let file = try Self.file(["\(Self.q).lora_down.weight": ([2, 32], Array(repeating: 1, count: 32) + Array(repeating: 2, count: 32)),
                                  "\(Self.q).lora_up.weight": ([32, 2], (0..<64).map { $0 % 2 == 0 ? 1 : 2 })])
        let module = try #require(try LoraNetwork(file: file, layers: LoraLayerIndex(try Self.tiny())).modules.first)
        #expect(module.delta(multiplier: 1, dynDim: nil).scalars.allSatisfy { $0 == 5 })
        #expect(module.delta(multiplier: 0.5, dynDim: 1).scalars.allSatisfy { $0 == 0.5 })
    }
}
