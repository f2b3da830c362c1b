import Foundation
import ModelIO
import Networks
import Testing
import TestSupport

/// Parity of `AutoencoderKL` with diffusers' AutoencoderKL on the tiny checkpoint
/// (fixtures/networks/vae_tiny.safetensors, made by compat/reference/gen_networks.py). Tolerance: 1e-4 of the peak (measured 1–3e-6).
@Suite struct AutoencoderKLTests {
    static let tolerance: Float = 1e-4

    func loadTiny() throws -> (AutoencoderKL, SafetensorsFile) {
        let reader = WeightReader(try tinyCheckpoint(), prefix: "first_stage_model")
        let vae = try AutoencoderKL(reader)
        #expect(reader.unusedKeys().isEmpty, "unused: \(reader.unusedKeys().prefix(5))")
        return (vae, try Fixtures.safetensors("networks/vae_tiny.safetensors"))
    }

    @Test func detectsTinyConfig() throws {
        let config = try VAEConfig.detect(from: WeightReader(try tinyCheckpoint(), prefix: "first_stage_model"))
        #expect(config == VAEConfig(inChannels: 3, outChannels: 3, baseChannels: 32, channelMult: [1, 2, 4, 4],
                                    numResBlocks: 2, latentChannels: 4, scaleFactor: 0.18215))
    }

    @Test func decodesScaledLatentsLikeDiffusers() throws {
        let (vae, fx) = try loadTiny()
        let decoded = try vae.decode(try fx.tensor("latent"))
        let closeness = Closeness(decoded, try fx.tensor("decoded"))
        #expect(closeness.relativeToPeak < Self.tolerance, "\(closeness)")
    }

    @Test func encodesLikeDiffusers() throws {
        let (vae, fx) = try loadTiny()
        let posterior = try vae.encode(try fx.tensor("image"))
        for (name, value) in [("mean", posterior.mean), ("logvar", posterior.logvar)] {
            let closeness = Closeness(value, try fx.tensor(name))
            #expect(closeness.relativeToPeak < Self.tolerance, "\(name): \(closeness)")
        }
        let sample = try posterior.sample(noise: try fx.tensor("noise"))
        let closeness = Closeness(sample, try fx.tensor("sample"))
        #expect(closeness.relativeToPeak < Self.tolerance, "sample: \(closeness)")
        #expect(throws: TensorError.self) { try posterior.sample(noise: Tensor(zeros: [1, 4, 4, 4])) }
    }

    @Test func rejectsBadSizes() throws {
        let (vae, _) = try loadTiny()
        #expect(throws: TensorError.self) { try vae.encode(Tensor(zeros: [1, 3, 60, 64])) }
        #expect(throws: TensorError.self) { try vae.decode(Tensor(zeros: [1, 3, 8, 8])) }
    }
}
