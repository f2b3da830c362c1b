import Foundation

/// The 50-step LCM view of a DDPM schedule: every 20th timestep (19, 39, …, 999), quantised sigma → timestep.
/// Matches: modules/sd_samplers_lcm.py LCMCompVisDenoiser
public struct LCMNoiseSchedule: DiscreteSigmaSchedule, Equatable {
    public static let originalTimesteps = 50
    public let skipSteps: Int
    public let sigmas: [Float]
    public let logSigmas: [Float]

    public init(_ base: NoiseSchedule) throws {
        let total = base.alphasCumprod.count
        let original = Self.originalTimesteps
        guard total >= original, total % original == 0 else {
            throw SamplingError.invalidSchedule("LCM needs a multiple of \(original) timesteps, got \(total)")
        }
        let skip = total / original
        skipSteps = skip
        // alphas_cumprod_valid[original-1-x] = alphas_cumprod[total-1-x*skip]
        let valid = (0..<original).map { j in base.alphasCumprod[total - 1 - (original - 1 - j) * skip] }
        sigmas = valid.map { ((1 - $0) / $0).squareRoot() }
        logSigmas = sigmas.map { logf($0) }
    }

    /// Nearest LCM sigma's DDPM timestep (an integer value).
    public func sigmaToT(_ sigma: Float) -> Float {
        let l = logf(sigma)
        var best = 0
        var bestDist = Float.infinity
        for (i, ls) in logSigmas.enumerated() where abs(l - ls) < bestDist {
            bestDist = abs(l - ls)
            best = i
        }
        return Float(best * skipSteps + (skipSteps - 1))
    }

    public func tToSigma(_ t: Float) -> Float {
        let index = min(max((t - Float(skipSteps - 1)) / Float(skipSteps), 0), Float(sigmas.count - 1))
        return NoiseSchedule.interpolatedSigma(index, logSigmas: logSigmas)
    }

    /// Matches: modules/sd_samplers_lcm.py LCMCompVisDenoiser.get_sigmas
    public func defaultSigmas(steps: Int) -> [Float] {
        linspaceF(sigmaToT(sigmaMax), sigmaToT(sigmaMin), steps).map(tToSigma) + [0]
    }
}
