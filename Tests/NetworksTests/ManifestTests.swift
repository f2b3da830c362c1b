import Foundation
import Networks
import Testing
import TestSupport

/// Builds the networks from the key/shape manifest of the real SD1.5 release (fixtures/sd15/manifest.json, from
/// compat/reference/gen_checkpoint.py): every key under the network's prefix must be read, none may be missing,
/// and every shape must be the one the layer expects.
@Suite struct ManifestTests {
    @Test func fullUNetUsesEveryKey() throws {
        let reader = WeightReader(try ManifestTensorSource("sd15/manifest.json"), prefix: "model.diffusion_model")
        let unet = try UNetModel(reader)
        #expect(unet.config == .sd1)
        #expect(reader.unusedKeys() == [])
        #expect(reader.missingKeys() == [])
        #expect(unet.inputBlockCount == 12)
    }

    @Test func fullVAEUsesEveryKey() throws {
        let reader = WeightReader(try ManifestTensorSource("sd15/manifest.json"), prefix: "first_stage_model")
        let vae = try AutoencoderKL(reader)
        #expect(vae.config == .sd1)
        #expect(reader.unusedKeys() == [])
        #expect(reader.missingKeys() == [])
    }

    @Test func acceptsNineChannelInpaintingUNet() throws {
        let source = try ManifestTensorSource("sd15/manifest.json", overriding: [
            "model.diffusion_model.input_blocks.0.0.weight": [320, 9, 3, 3],
        ])
        let reader = WeightReader(source, prefix: "model.diffusion_model")
        let unet = try UNetModel(reader)
        #expect(unet.config.inChannels == 9)
        #expect(unet.config.outChannels == 4)
    }

    @Test func namesTheKeyOfAShapeMismatch() throws {
        let key = "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
        let source = try ManifestTensorSource("sd15/manifest.json", overriding: [key: [640, 1024]])
        #expect(throws: TensorError.shapeMismatch(op: "weight '\(key)'", expected: [640, 768], got: [640, 1024])) {
            try UNetModel(WeightReader(source, prefix: "model.diffusion_model"))
        }
    }

    @Test func namesAMissingKey() throws {
        let key = "first_stage_model.decoder.mid.attn_1.proj_out.bias"
        let source = try ManifestTensorSource("sd15/manifest.json", removing: [key])
        #expect(throws: TensorError.missingKey(key)) {
            try AutoencoderKL(WeightReader(source, prefix: "first_stage_model"))
        }
    }
}
