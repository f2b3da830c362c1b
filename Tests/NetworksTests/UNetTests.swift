import Foundation
import ModelIO
import Networks
import Testing
import TestSupport

/// Parity of `UNetModel` with diffusers' UNet2DConditionModel on the tiny checkpoint
/// (fixtures/networks/unet_tiny.safetensors, made by compat/reference/gen_networks.py).
/// Tolerance: 1e-4 of the output's peak (float32 GEMMs in a different order and a polynomial exp/erf; measured
/// 1–3e-6 relative).
@Suite struct UNetTests {
    static let tolerance: Float = 1e-4

    func loadTiny() throws -> (UNetModel, SafetensorsFile) {
        let reader = WeightReader(try tinyCheckpoint(), prefix: "model.diffusion_model")
        let unet = try UNetModel(reader)
        #expect(reader.unusedKeys().isEmpty, "unused: \(reader.unusedKeys().prefix(5))")
        return (unet, try Fixtures.safetensors("networks/unet_tiny.safetensors"))
    }

    @Test func detectsTinyConfig() throws {
        let reader = WeightReader(try tinyCheckpoint(), prefix: "model.diffusion_model")
        let config = try UNetConfig.detect(from: reader)
        #expect(config == UNetConfig(inChannels: 4, outChannels: 4, modelChannels: 32, channelMult: [1, 2, 4, 4],
                                     numResBlocks: 2, attentionLevels: [true, true, true, false],
                                     transformerDepth: 1, contextDim: 32, numHeads: 8, headChannels: nil))
    }

    @Test func matchesDiffusers() throws {
        let (unet, fx) = try loadTiny()
        let eps = try unet(try fx.tensor("x"), timesteps: try fx.tensor("timesteps").scalars,
                           context: try fx.tensor("context"))
        let closeness = Closeness(eps, try fx.tensor("eps"))
        #expect(closeness.relativeToPeak < Self.tolerance, "\(closeness)")
    }

    @Test func addsControlNetResiduals() throws {
        let (unet, fx) = try loadTiny()
        let downs = try (0..<unet.inputBlockCount).map { try fx.tensor("down_\($0)") }
        let eps = try unet(try fx.tensor("x"), timesteps: try fx.tensor("timesteps").scalars,
                           context: try fx.tensor("context"), downResiduals: downs, midResidual: try fx.tensor("mid"))
        let expected = try fx.tensor("eps_residual")
        let closeness = Closeness(eps, expected)
        #expect(closeness.relativeToPeak < Self.tolerance, "\(closeness)")
        // The residuals must matter: without them the output is far from the residual reference.
        #expect(Closeness(try fx.tensor("eps"), expected).relativeToPeak > 100 * Self.tolerance)
    }

    @Test func batchEntriesAreIndependent() throws {
        let (unet, fx) = try loadTiny()
        let x = try fx.tensor("x"), context = try fx.tensor("context"), t = try fx.tensor("timesteps").scalars
        let both = try unet(x, timesteps: t, context: context)
        let second = try unet(x.slice(axis: 0, 1..<2), timesteps: [t[1]], context: context.slice(axis: 0, 1..<2))
        #expect(Closeness(second, both.slice(axis: 0, 1..<2)).relativeToPeak < 1e-5)
    }

    @Test func rejectsMismatchedInputs() throws {
        let (unet, fx) = try loadTiny()
        let x = try fx.tensor("x"), context = try fx.tensor("context"), t = try fx.tensor("timesteps").scalars
        #expect(throws: TensorError.self) { try unet(Tensor(zeros: [2, 3, 16, 16]), timesteps: t, context: context) }
        #expect(throws: TensorError.self) { try unet(x, timesteps: [1, 2, 3], context: context) }
        #expect(throws: TensorError.self) { try unet(x, timesteps: t, context: Tensor(zeros: [2, 77, 16])) }
        #expect(throws: TensorError.self) { try unet(x, timesteps: t, context: context, downResiduals: [x]) }
    }

    /// Latents that are not multiples of 8 (e.g. 96×96 images) run as in A1111, whose hijacked torch.cat resizes
    /// the upsampled path to the skip's size.
    @Test func acceptsLatentSizesA1111Accepts() throws {
        let (unet, fx) = try loadTiny()
        let context = try fx.tensor("context"), t = try fx.tensor("timesteps").scalars
        let out = try unet(Tensor(repeating: 0.1, shape: [2, 4, 12, 10]), timesteps: t, context: context)
        #expect(out.shape == [2, 4, 12, 10])
        #expect(out.scalars.allSatisfy { $0.isFinite })
    }

    @Test func timestepEmbeddingIsCosThenSin() {
        let e = timestepEmbedding([0, 2], dim: 4)
        // freqs: 1, 10000^(-1/2) = 0.01
        let expected: [Float] = [1, 1, 0, 0, cosf(2), cosf(0.02), sinf(2), sinf(0.02)]
        for (a, b) in zip(e.scalars, expected) { #expect(abs(a - b) < 1e-6) }
    }
}
