import Foundation

/// The model as every sampler sees it: a noisy latent `x` at noise level `sigma` (k-diffusion "VE" scaling,
/// x = x0 + sigma·eps) → the predicted clean latent x0, same shape as `x`. Guidance, hooks and the UNet live
/// inside the closure (see `Denoisers`).
public typealias Denoiser = (_ x: Tensor, _ sigma: Float) throws -> Tensor

/// Where samplers draw their random numbers from.
///
/// A1111 replaces k-diffusion's `torch.randn_like` with `ImageRNG.next()` (per-image generators, re-seeded with
/// ENSD after the initial latent); every sampler here calls `randn` exactly where k-diffusion calls `randn_like`
/// (including the unused churn noise of Euler/Heun/DPM2 at every step), so hires-fix noise drawn afterwards from
/// the same generators lines up with A1111.
/// The SDE samplers (`brownian_noise`) call `brownian(sigma, sigmaNext)` instead: in A1111 a torchsde
/// `BrownianTree` per image seeded with the image seed, ported in `A1111BrownianNoise` (see
/// `SamplingPlan.noise`). Parity tests inject recorded noise through both closures.
public struct SamplingNoise {
    /// A standard-normal tensor shaped like the latent (A1111 `rng.next()`).
    public var randn: () throws -> Tensor
    /// Normalised Brownian increment between two noise levels, standard normal per element.
    public var brownian: (_ sigma: Float, _ sigmaNext: Float) throws -> Tensor

    public init(randn: @escaping () throws -> Tensor,
                brownian: @escaping (_ sigma: Float, _ sigmaNext: Float) throws -> Tensor) {
        self.randn = randn
        self.brownian = brownian
    }

    /// Both closures served by one generator (independent normals for every Brownian query; for tests and for
    /// samplers that never ask for Brownian noise).
    public init(randn: @escaping () throws -> Tensor) {
        self.randn = randn
        self.brownian = { _, _ in try randn() }
    }
}

/// Stochasticity knobs, A1111 names in comments. `nil` eta means the sampler family's default
/// (`eta_ancestral` 1.0 for k-diffusion, `eta_ddim` 0.0 for DDIM).
public struct SamplerParameters: Sendable, Equatable {
    public var eta: Float?
    public var sChurn: Float        // s_churn
    public var sTmin: Float         // s_tmin
    public var sTmax: Float         // s_tmax (A1111 option 0 means infinity; pass .infinity)
    public var sNoise: Float        // s_noise
    public var uniPC: UniPCOptions

    public init(eta: Float? = nil, sChurn: Float = 0, sTmin: Float = 0, sTmax: Float = .infinity, sNoise: Float = 1,
                uniPC: UniPCOptions = UniPCOptions()) {
        self.eta = eta
        self.sChurn = sChurn
        self.sTmin = sTmin
        self.sTmax = sTmax
        self.sNoise = sNoise
        self.uniPC = uniPC
    }
}

/// A1111 options `uni_pc_variant`, `uni_pc_skip_type`, `uni_pc_order`, `uni_pc_lower_order_final`.
public struct UniPCOptions: Sendable, Equatable {
    public enum Variant: String, Sendable { case bh1, bh2, varyCoeff = "vary_coeff" }
    public enum SkipType: String, Sendable { case timeUniform = "time_uniform", timeQuadratic = "time_quadratic", logSNR }
    public var variant: Variant
    public var skipType: SkipType
    public var order: Int
    public var lowerOrderFinal: Bool

    public init(variant: Variant = .bh1, skipType: SkipType = .timeUniform, order: Int = 3, lowerOrderFinal: Bool = true) {
        self.variant = variant
        self.skipType = skipType
        self.order = order
        self.lowerOrderFinal = lowerOrderFinal
    }
}

/// What a sampler reports after each step (A1111's `callback_state`): the step index (0-based), the number of
/// steps, the noise level, the current latent and the model's x0 prediction (for previews).
public struct SamplingStep {
    public let index: Int
    public let total: Int
    public let sigma: Float
    public let x: Tensor
    public let denoised: Tensor
}

/// Returned by the step callback: `.stop` ends sampling cleanly (A1111 interrupt/skip); the sampler then returns
/// the last x0 prediction, as A1111 returns `last_latent`.
public enum SamplingControl: Sendable { case proceed, stop }

public typealias StepCallback = (SamplingStep) throws -> SamplingControl

public enum SamplingError: Error, CustomStringConvertible, Equatable {
    case invalidSchedule(String)
    case invalidParameter(String)

    public var description: String {
        switch self {
        case let .invalidSchedule(m): return "sampling schedule: \(m)"
        case let .invalidParameter(m): return "sampling parameter: \(m)"
        }
    }
}

/// Thrown internally when the callback asks to stop; caught by `SamplingRun.run`.
struct SamplingStopped: Error {}

/// One sampling run: the model, noise, parameters and callback shared by the sampler functions.
public final class SamplingRun {
    public let denoiser: Denoiser
    public let noise: SamplingNoise
    public let parameters: SamplerParameters
    public let callback: StepCallback?
    /// The guidance inside `denoiser`, when the sampler needs its unconditional half (DDIM CFG++).
    public let guidance: (any GuidanceControl)?
    /// Number of model evaluations so far.
    public private(set) var modelCalls = 0
    /// The last x0 prediction (what an interrupted run returns).
    public private(set) var lastDenoised: Tensor?
    /// True when the callback stopped the run early.
    public private(set) var stopped = false

    public init(denoiser: @escaping Denoiser, noise: SamplingNoise, parameters: SamplerParameters = SamplerParameters(),
                callback: StepCallback? = nil, guidance: (any GuidanceControl)? = nil) {
        self.denoiser = denoiser
        self.guidance = guidance
        self.noise = noise
        self.parameters = parameters
        self.callback = callback
    }

    func denoise(_ x: Tensor, _ sigma: Float) throws -> Tensor {
        let out = try denoiser(x, sigma)
        guard out.shape == x.shape else {
            throw TensorError.shapeMismatch(op: "denoiser output", expected: x.shape, got: out.shape)
        }
        modelCalls += 1
        lastDenoised = out
        return out
    }

    func randn(like x: Tensor) throws -> Tensor {
        try checked(noise.randn(), like: x, what: "randn noise")
    }

    func brownian(_ sigma: Float, _ sigmaNext: Float, like x: Tensor) throws -> Tensor {
        try checked(noise.brownian(sigma, sigmaNext), like: x, what: "brownian noise")
    }

    private func checked(_ t: Tensor, like x: Tensor, what: String) throws -> Tensor {
        guard t.shape == x.shape else { throw TensorError.shapeMismatch(op: what, expected: x.shape, got: t.shape) }
        return t
    }

    func report(_ index: Int, _ total: Int, sigma: Float, x: Tensor, denoised: Tensor) throws {
        guard let callback else { return }
        if try callback(SamplingStep(index: index, total: total, sigma: sigma, x: x, denoised: denoised)) == .stop {
            throw SamplingStopped()
        }
    }

    /// Runs `body`; when the callback stops it, returns the last x0 prediction (or the input when none).
    func run(_ x: Tensor, _ body: () throws -> Tensor) throws -> Tensor {
        do {
            return try body()
        } catch is SamplingStopped {
            stopped = true
            return lastDenoised ?? x
        }
    }
}

extension Tensor {
    /// Σ cᵢ·tᵢ over equal-shaped tensors in one pass (coefficients rounded to Float once).
    static func lincomb(_ terms: [(Double, Tensor)]) -> Tensor {
        let shape = terms[0].1.shape
        for t in terms { precondition(t.1.shape == shape, "lincomb: \(t.1.shape) vs \(shape)") }
        let coeffs = terms.map { Float($0.0) }
        return Tensor(uninitialized: shape) { out in
            let n = out.count
            terms[0].1.scalars.withUnsafeBufferPointer { a in
                let c = coeffs[0]
                for i in 0..<n { out[i] = c * a[i] }
            }
            for k in 1..<terms.count {
                let c = coeffs[k]
                terms[k].1.scalars.withUnsafeBufferPointer { a in
                    for i in 0..<n { out[i] += c * a[i] }
                }
            }
        }
    }

    /// k-diffusion `to_d`: (x - denoised) / sigma.
    static func derivative(_ x: Tensor, _ denoised: Tensor, _ sigma: Double) -> Tensor {
        let s = Float(sigma)
        return x.zip(denoised) { ($0 - $1) / s }
    }
}

/// k-diffusion `get_ancestral_step`: the noise level to step down to and the noise to add back.
/// Matches: k_diffusion/sampling.py get_ancestral_step
func ancestralStep(_ sigmaFrom: Double, _ sigmaTo: Double, eta: Double) -> (down: Double, up: Double) {
    if eta == 0 { return (sigmaTo, 0) }
    let up = min(sigmaTo, eta * (sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo)
        / (sigmaFrom * sigmaFrom)).squareRoot())
    let down = (sigmaTo * sigmaTo - up * up).squareRoot()
    return (down, up)
}
