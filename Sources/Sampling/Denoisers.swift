import Foundation

/// An eps-predicting network as the samplers' wrappers call it: (input already scaled by c_in, DDPM timestep)
/// → predicted noise. For SD1 this is the UNet with its conditioning bound by the Pipeline.
public typealias EpsPredictor = (_ scaledInput: Tensor, _ timestep: Float) throws -> Tensor

/// Model-agnostic wrappers that turn an eps network into a `Denoiser`, and guidance.
public enum Denoisers {
    /// k-diffusion's wrapper for CompVis eps models: x0 = x − σ·eps(x/√(σ²+1), sigma_to_t(σ)).
    /// Matches: k_diffusion/external.py DiscreteEpsDDPMDenoiser.forward (CompVisDenoiser)
    public static func discreteEps(_ eps: @escaping EpsPredictor, schedule: NoiseSchedule) -> Denoiser {
        { x, sigma in
            let cIn = 1 / (sigma * sigma + 1).squareRoot()
            let e = try eps(x.map { $0 * cIn }, schedule.sigmaToT(sigma))
            guard e.shape == x.shape else {
                throw TensorError.shapeMismatch(op: "eps model output", expected: x.shape, got: e.shape)
            }
            return x.adding(e, scaledBy: -sigma)
        }
    }

    /// A1111's LCM wrapper: the eps step at the quantised LCM timestep, then the consistency-model boundary
    /// condition c_skip·x + c_out·x0 with the timestep scaled by 10 and σ_data = 0.5.
    /// Matches: modules/sd_samplers_lcm.py LCMCompVisDenoiser.forward, get_scaled_out
    public static func lcm(_ eps: @escaping EpsPredictor, schedule: LCMNoiseSchedule) -> Denoiser {
        { x, sigma in
            let cIn = 1 / (sigma * sigma + 1).squareRoot()
            let t = schedule.sigmaToT(sigma)
            let e = try eps(x.map { $0 * cIn }, t)
            guard e.shape == x.shape else {
                throw TensorError.shapeMismatch(op: "eps model output", expected: x.shape, got: e.shape)
            }
            let x0 = x.adding(e, scaledBy: -sigma)
            let st = Double(t) * 10, sigmaData = 0.5
            let cSkip = sigmaData * sigmaData / (st * st + sigmaData * sigmaData)
            let cOut = st / (st * st + sigmaData * sigmaData).squareRoot()
            return Tensor.lincomb([(cOut, x0), (cSkip, x)])
        }
    }
}

/// What DDIM CFG++ needs from the guidance inside a run's denoiser (A1111 `cond_scale_miltiplier`,
/// `last_noise_uncond`). `ClassifierFreeGuidance` conforms; so can any guidance the Pipeline builds.
public protocol GuidanceControl: AnyObject {
    /// Multiplies the guidance scale; DDIM CFG++ sets 1/12.5 for its run and restores it afterwards.
    var scaleMultiplier: Float { get set }
    /// The unconditional x0 prediction ([B, …]) of the last denoiser call.
    var lastUncond: Tensor? { get }
}

/// Classifier-free guidance with cond and uncond batched into one call, in A1111's order: the wrapped model gets
/// `[x; x]` ([2B, …]; first half conditioned on the prompt, second half unconditional — the Pipeline binds the
/// conditioning in that order) and the result is uncond + (cond − uncond)·scale. It keeps the last unconditional
/// prediction for DDIM CFG++.
/// Matches: modules/sd_samplers_cfg_denoiser.py CFGDenoiser.forward, combine_denoised (one cond per image)
public final class ClassifierFreeGuidance: GuidanceControl {
    public let scale: Float
    /// Multiplies `scale` (A1111 `cond_scale_miltiplier`; DDIM CFG++ sets 1/12.5).
    public var scaleMultiplier: Float = 1
    /// The unconditional x0 prediction of the last call.
    public private(set) var lastUncond: Tensor?
    private let batched: Denoiser

    public init(scale: Float, batched: @escaping Denoiser) {
        self.scale = scale
        self.batched = batched
    }

    public func callAsFunction(_ x: Tensor, _ sigma: Float) throws -> Tensor {
        let out = try batched(Tensor.concat([x, x], axis: 0), sigma)
        let expected = [2 * x.shape[0]] + x.shape.dropFirst()
        guard out.shape == expected else {
            throw TensorError.shapeMismatch(op: "guided model output", expected: expected, got: out.shape)
        }
        let halves = out.chunked(2, axis: 0)   // [cond; uncond], each [B, …]
        lastUncond = halves[1]
        let s = scale * scaleMultiplier
        return halves[1].zip(halves[0]) { uncond, cond in uncond + (cond - uncond) * s }
    }

    /// This guidance as a plain `Denoiser`.
    public var denoiser: Denoiser { { x, sigma in try self(x, sigma) } }
}
