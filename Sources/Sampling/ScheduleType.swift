import Foundation

/// A1111's schedule types ("Schedule type" in the UI and infotext), in `/sdapi/v1/schedulers` order.
/// Matches: modules/sd_schedulers.py schedulers
public enum ScheduleType: String, CaseIterable, Sendable {
    case automatic, uniform, karras, exponential, polyexponential
    case sgmUniform = "sgm_uniform", klOptimal = "kl_optimal", alignYourSteps = "align_your_steps"
    case simple, normal, ddim, beta

    /// Internal name (`name` in the API).
    public var name: String { rawValue }

    /// Display name (`label`; what infotext prints).
    public var label: String {
        switch self {
        case .automatic: return "Automatic"
        case .uniform: return "Uniform"
        case .karras: return "Karras"
        case .exponential: return "Exponential"
        case .polyexponential: return "Polyexponential"
        case .sgmUniform: return "SGM Uniform"
        case .klOptimal: return "KL Optimal"
        case .alignYourSteps: return "Align Your Steps"
        case .simple: return "Simple"
        case .normal: return "Normal"
        case .ddim: return "DDIM"
        case .beta: return "Beta"
        }
    }

    /// `aliases` (null in the API for all but SGM Uniform).
    public var aliases: [String]? { self == .sgmUniform ? ["SGMUniform"] : nil }

    /// `default_rho`: -1 when rho does not apply.
    public var defaultRho: Double {
        switch self {
        case .karras: return 7
        case .polyexponential: return 1
        default: return -1
        }
    }

    /// `need_inner_model`: the schedule reads the model's discrete sigmas.
    public var needsInnerModel: Bool {
        switch self {
        case .uniform, .sgmUniform, .simple, .normal, .ddim, .beta: return true
        default: return false
        }
    }

    /// Lookup by `name` or `label`, exactly as `schedulers_map` (case-sensitive).
    public init?(nameOrLabel: String) {
        guard let found = ScheduleType.allCases.first(where: { $0.name == nameOrLabel || $0.label == nameOrLabel })
        else { return nil }
        self = found
    }
}

/// Inputs of a schedule besides the step count. `sigmaMin`/`sigmaMax` default to the model's extremes; `rho`
/// to the schedule's `defaultRho` (A1111 options sigma_min, sigma_max, rho, beta_dist_alpha/beta).
public struct ScheduleInputs: Sendable {
    public var sigmaMin: Float
    public var sigmaMax: Float
    public var rho: Double?
    public var betaAlpha: Double
    public var betaBeta: Double
    /// Align Your Steps uses its SDXL table when true.
    public var isSDXL: Bool

    public init(sigmaMin: Float, sigmaMax: Float, rho: Double? = nil, betaAlpha: Double = 0.6, betaBeta: Double = 0.6,
                isSDXL: Bool = false) {
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.rho = rho
        self.betaAlpha = betaAlpha
        self.betaBeta = betaBeta
        self.isSDXL = isSDXL
    }

    public init(model: some DiscreteSigmaSchedule) {
        self.init(sigmaMin: model.sigmaMin, sigmaMax: model.sigmaMax)
    }
}

extension ScheduleType {
    /// The sigmas for `steps` steps, normally `steps + 1` values ending in 0 (DDIM may give more; KL Optimal ends
    /// at sigma_min instead of 0 — both as in A1111). `.automatic` gives the model's default discretisation.
    public func sigmas(steps n: Int, model: some DiscreteSigmaSchedule, inputs: ScheduleInputs) throws -> [Float] {
        guard n >= 1 else { throw SamplingError.invalidParameter("steps must be at least 1, got \(n)") }
        let smin = Double(inputs.sigmaMin), smax = Double(inputs.sigmaMax)
        guard smin > 0, smax > smin else {
            throw SamplingError.invalidParameter("sigma range (\(smin), \(smax)) must satisfy 0 < min < max")
        }
        switch self {
        case .automatic, .uniform:
            return model.defaultSigmas(steps: n)
        case .karras:
            // Matches: k_diffusion/sampling.py get_sigmas_karras
            return Self.karrasSigmas(n, sigmaMin: smin, sigmaMax: smax, rho: inputs.rho ?? defaultRho)
        case .exponential:
            // Matches: k_diffusion/sampling.py get_sigmas_exponential
            return linspaceF(Float(log(smax)), Float(log(smin)), n).map { expf($0) } + [0]
        case .polyexponential:
            // Matches: k_diffusion/sampling.py get_sigmas_polyexponential
            let rho = inputs.rho ?? defaultRho
            let lmin = log(smin), lmax = log(smax)
            return linspaceF(1, 0, n).map { Float(exp(pow(Double($0), rho) * (lmax - lmin) + lmin)) } + [0]
        case .sgmUniform:
            // Matches: modules/sd_schedulers.py sgm_uniform
            let start = model.sigmaToT(inputs.sigmaMax), end = model.sigmaToT(inputs.sigmaMin)
            return linspaceF(start, end, n + 1).dropLast().map(model.tToSigma) + [0]
        case .klOptimal:
            // Matches: modules/sd_schedulers.py kl_optimal (n+1 values, the last is sigma_min, no 0)
            let amin = atan(smin), amax = atan(smax)
            return (0...n).map { i in
                let f = Double(i) / Double(n)
                return Float(tan(f * amin + (1 - f) * amax))
            }
        case .alignYourSteps:
            return Self.alignYourSteps(n, sdxl: inputs.isSDXL)
        case .simple:
            // Matches: modules/sd_schedulers.py simple_scheduler
            let s = model.sigmas
            let ss = Double(s.count) / Double(n)
            return (0..<n).map { x in s[s.count - 1 - Int(Double(x) * ss)] } + [0]
        case .normal:
            // Matches: modules/sd_schedulers.py normal_scheduler (sgm=False)
            let start = model.sigmaToT(inputs.sigmaMax), end = model.sigmaToT(inputs.sigmaMin)
            return linspaceF(start, end, n).map(model.tToSigma) + [0]
        case .ddim:
            // Matches: modules/sd_schedulers.py ddim_scheduler
            let s = model.sigmas
            let ss = max(s.count / n, 1)
            return Array(stride(from: 1, to: s.count, by: ss).map { s[$0] }.reversed()) + [0]
        case .beta:
            // Matches: modules/sd_schedulers.py beta_scheduler
            return try numpyLinspace(0, 1, n).map { x in
                let q = try BetaDistribution.quantile(1 - x, alpha: inputs.betaAlpha, beta: inputs.betaBeta)
                return Float(smin + q * (smax - smin))
            } + [0]
        }
    }

    /// Matches: k_diffusion/sampling.py get_sigmas_karras
    /// Evaluated in float32 in torch's order, so the values agree to the bit in most cases (the SDE samplers'
    /// Brownian trees resolve noise levels to 1e-6).
    static func karrasSigmas(_ n: Int, sigmaMin: Double, sigmaMax: Double, rho: Double = 7) -> [Float] {
        let minInv = pow(sigmaMin, 1 / rho), maxInv = pow(sigmaMax, 1 / rho)
        let span = Float(minInv - maxInv), start = Float(maxInv), r = Float(rho)
        return linspaceF(0, 1, n).map { powf(start + $0 * span, r) } + [0]
    }

    /// Matches: modules/sd_schedulers.py get_align_your_steps_sigmas
    static func alignYourSteps(_ n: Int, sdxl: Bool) -> [Float] {
        let table: [Double] = sdxl
            ? [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029]
            : [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
        if n == table.count { return table.map { Float($0) } + [0] }
        // log-linear interpolation of the decreasing table onto n points (numpy interp on the reversed logs)
        let ys = table.reversed().map { log($0) }
        let xs = numpyLinspace(0, 1, table.count)
        let out = numpyLinspace(0, 1, n).map { x -> Double in
            var j = 0
            while j < xs.count - 2 && x > xs[j + 1] { j += 1 }
            let w = (x - xs[j]) / (xs[j + 1] - xs[j])
            return exp(ys[j] + w * (ys[j + 1] - ys[j]))
        }
        return out.reversed().map { Float($0) } + [0]
    }
}
