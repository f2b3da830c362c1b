import Foundation

/// A discrete list of noise levels indexed by timestep, with k-diffusion's continuous mapping between sigma and
/// (fractional) timestep. `NoiseSchedule` (DDPM) and `LCMNoiseSchedule` conform; schedule types that need the
/// "inner model" (Uniform, SGM Uniform, Simple, Normal, DDIM, Beta) read it through this protocol.
public protocol DiscreteSigmaSchedule: Sendable {
    /// Sigmas in ascending order (index = discrete timestep).
    var sigmas: [Float] { get }
    func sigmaToT(_ sigma: Float) -> Float
    func tToSigma(_ t: Float) -> Float
    /// The model's own discretisation for `steps` steps, with the trailing 0 (A1111 "Automatic" for samplers
    /// without a preferred scheduler).
    func defaultSigmas(steps: Int) -> [Float]
}

extension DiscreteSigmaSchedule {
    public var sigmaMin: Float { sigmas[0] }
    public var sigmaMax: Float { sigmas[sigmas.count - 1] }
}

/// The DDPM noise schedule of an SD1 checkpoint: ᾱ per timestep and σ = √((1−ᾱ)/ᾱ).
/// Matches: k_diffusion/external.py DiscreteSchedule, DiscreteEpsDDPMDenoiser (CompVisDenoiser)
public struct NoiseSchedule: DiscreteSigmaSchedule, Equatable {
    /// ᾱ per timestep, as stored in the checkpoint (`alphas_cumprod`, float32).
    public let alphasCumprod: [Float]
    public let sigmas: [Float]
    public let logSigmas: [Float]

    /// From a checkpoint's `alphas_cumprod` buffer (1000 values for SD1).
    public init(alphasCumprod: [Float]) throws {
        guard alphasCumprod.count >= 2 else {
            throw SamplingError.invalidSchedule("alphas_cumprod needs at least 2 values, got \(alphasCumprod.count)")
        }
        if let bad = alphasCumprod.firstIndex(where: { !($0 > 0 && $0 <= 1) }) {
            throw SamplingError.invalidSchedule("alphas_cumprod[\(bad)] = \(alphasCumprod[bad]) is not in (0, 1]")
        }
        self.init(validated: alphasCumprod)
    }

    /// LDM's "scaled linear" DDPM schedule: β = linspace(√start, √end, n)², ᾱ = cumprod(1 − β), computed in
    /// float64 and stored as float32 (ldm/models/diffusion/ddpm.py register_schedule).
    public static func scaledLinear(betaStart: Double = 0.00085, betaEnd: Double = 0.012, timesteps: Int = 1000) -> NoiseSchedule {
        var cumulative = 1.0
        var out = [Float]()
        out.reserveCapacity(timesteps)
        for root in linspaceD(betaStart.squareRoot(), betaEnd.squareRoot(), timesteps) {
            cumulative *= 1 - root * root
            out.append(Float(cumulative))
        }
        // Values are in (0, 1) for any betaEnd < 1, so this cannot throw.
        return NoiseSchedule(validated: out)
    }

    /// The SD1.x schedule (scaled linear 0.00085 → 0.012, 1000 steps).
    public static let sd1 = NoiseSchedule.scaledLinear()

    private init(validated alphasCumprod: [Float]) {
        self.alphasCumprod = alphasCumprod
        // float32 arithmetic as torch does on the float32 buffer: ((1 - a) / a) ** 0.5
        let s = alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
        self.sigmas = s
        self.logSigmas = s.map { logf($0) }
    }

    /// Continuous timestep for `sigma` by linear interpolation in log-sigma.
    /// Matches: k_diffusion/external.py DiscreteSchedule.sigma_to_t (quantize=False)
    public func sigmaToT(_ sigma: Float) -> Float {
        Self.interpolatedT(logf(sigma), logSigmas: logSigmas)
    }

    /// Matches: k_diffusion/external.py DiscreteSchedule.t_to_sigma
    public func tToSigma(_ t: Float) -> Float {
        Self.interpolatedSigma(t, logSigmas: logSigmas)
    }

    /// Matches: k_diffusion/external.py DiscreteSchedule.get_sigmas(n)
    public func defaultSigmas(steps: Int) -> [Float] {
        linspaceF(Float(sigmas.count - 1), 0, steps).map(tToSigma) + [0]
    }

    static func interpolatedT(_ logSigma: Float, logSigmas: [Float]) -> Float {
        // low_idx: the last index whose log-sigma is ≤ log_sigma (0 when none), clamped to n−2
        let low = min(logSigmas.lastIndex { logSigma - $0 >= 0 } ?? 0, logSigmas.count - 2)
        let high = low + 1
        let lo = logSigmas[low], hi = logSigmas[high]
        let w = min(max((lo - logSigma) / (lo - hi), 0), 1)
        return (1 - w) * Float(low) + w * Float(high)
    }

    static func interpolatedSigma(_ t: Float, logSigmas: [Float]) -> Float {
        let low = Int(t.rounded(.down)), high = Int(t.rounded(.up))
        let w = t - t.rounded(.down)
        let l = (1 - w) * logSigmas[low] + w * logSigmas[high]
        return expf(l)
    }
}

/// torch.linspace in float32: start + i·step for the first half, end − (n−1−i)·step for the second.
func linspaceF(_ start: Float, _ end: Float, _ n: Int) -> [Float] {
    guard n > 1 else { return n == 1 ? [start] : [] }
    let step = (end - start) / Float(n - 1)
    let half = n / 2
    return (0..<n).map { i in i < half ? start + step * Float(i) : end - step * Float(n - 1 - i) }
}

/// torch.linspace in float64 (same two-sided formula as `linspaceF`).
func linspaceD(_ start: Double, _ end: Double, _ n: Int) -> [Double] {
    guard n > 1 else { return n == 1 ? [start] : [] }
    let step = (end - start) / Double(n - 1)
    let half = n / 2
    return (0..<n).map { i in i < half ? start + step * Double(i) : end - step * Double(n - 1 - i) }
}

/// numpy.linspace in float64: start + i·step, the last value exactly `end`.
func numpyLinspace(_ start: Double, _ end: Double, _ n: Int) -> [Double] {
    guard n > 1 else { return n == 1 ? [start] : [] }
    let step = (end - start) / Double(n - 1)
    var out = (0..<n).map { start + Double($0) * step }
    out[n - 1] = end
    return out
}
