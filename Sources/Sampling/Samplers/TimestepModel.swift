import Foundation

/// The eps view of a `Denoiser` that A1111's timestep samplers (DDIM, PLMS, UniPC) work with: `x` is the
/// variance-preserving latent (√ᾱ·x0 + √(1−ᾱ)·eps), `t` a DDPM timestep (fractional for UniPC).
///
/// The denoiser is called at σ = t_to_sigma(t) with x scaled to x/c_in (c_in = 1/√(σ²+1)), so the model inside
/// (`Denoisers.discreteEps`) sees x·c_in/c_in = x and timestep sigma_to_t(σ) = t — exactly for integer t, and to
/// float rounding (≈1e-5) for UniPC's fractional t. eps = (x_ve − x0)/σ, which is linear, so guidance applied to
/// x0 equals A1111's guidance applied to eps.
struct TimestepModel {
    let run: SamplingRun
    let schedule: NoiseSchedule

    func eps(_ x: Tensor, t: Float) throws -> (eps: Tensor, sigma: Float) {
        let (e, sigma, _) = try epsAndInput(x, t: t)
        return (e, sigma)
    }

    /// Also returns the VE-scaled input the denoiser saw (to convert other x0 predictions of the same call).
    func epsAndInput(_ x: Tensor, t: Float) throws -> (eps: Tensor, sigma: Float, xVE: Tensor) {
        let sigma = schedule.tToSigma(t)
        let cIn = 1 / (sigma * sigma + 1).squareRoot()
        let xVE = x.map { $0 / cIn }
        let x0 = try run.denoise(xVE, sigma)
        return (Tensor.derivative(xVE, x0, Double(sigma)), sigma, xVE)
    }
}

extension SamplingRun {
    /// Matches: modules/sd_samplers_timesteps_impl.py ddim
    func sampleDDIM(_ x: Tensor, timesteps: [Int], schedule: NoiseSchedule, eta: Double) throws -> Tensor {
        let model = TimestepModel(run: self, schedule: schedule)
        let ac = schedule.alphasCumprod
        let alphas = timesteps.map { Double(ac[$0]) }
        let alphasPrev = ([0] + timesteps.dropLast()).map { Double(ac[$0]) }
        let sigmas = (0..<timesteps.count).map { k in
            eta * ((1 - alphasPrev[k]) / (1 - alphas[k]) * (1 - alphas[k] / alphasPrev[k])).squareRoot()
        }
        var x = x
        let total = timesteps.count - 1
        for i in 0..<total {
            let index = timesteps.count - 1 - i
            let (e, sigma) = try model.eps(x, t: Float(timesteps[index]))
            let aT = alphas[index], aPrev = alphasPrev[index], sigmaT = sigmas[index]
            let predX0 = Tensor.lincomb([(1 / aT.squareRoot(), x), (-(1 - aT).squareRoot() / aT.squareRoot(), e)])
            let noise = try randn(like: x)
            x = Tensor.lincomb([(aPrev.squareRoot(), predX0), ((1 - aPrev - sigmaT * sigmaT).squareRoot(), e),
                                (sigmaT, noise)])
            try report(i, total, sigma: sigma, x: x, denoised: predX0)
        }
        return x
    }

    /// DDIM whose direction term uses the unconditional noise, with guidance scale divided by 12.5.
    /// Needs `guidance` on the run.
    /// Matches: modules/sd_samplers_timesteps_impl.py ddim_cfgpp
    func sampleDDIMCFGPlusPlus(_ x: Tensor, timesteps: [Int], schedule: NoiseSchedule, eta: Double) throws -> Tensor {
        guard let guidance else {
            throw SamplingError.invalidParameter("DDIM CFG++ needs the run's guidance (SamplingRun.guidance)")
        }
        let previousMultiplier = guidance.scaleMultiplier
        guidance.scaleMultiplier = 1 / 12.5
        defer { guidance.scaleMultiplier = previousMultiplier }
        let model = TimestepModel(run: self, schedule: schedule)
        let ac = schedule.alphasCumprod
        let alphas = timesteps.map { Double(ac[$0]) }
        let alphasPrev = ([0] + timesteps.dropLast()).map { Double(ac[$0]) }
        let sigmas = (0..<timesteps.count).map { k in
            eta * ((1 - alphasPrev[k]) / (1 - alphas[k]) * (1 - alphas[k] / alphasPrev[k])).squareRoot()
        }
        var x = x
        let total = timesteps.count - 1
        for i in 0..<total {
            let index = timesteps.count - 1 - i
            let (e, sigma, xVE) = try model.epsAndInput(x, t: Float(timesteps[index]))
            guard let uncondX0 = guidance.lastUncond, uncondX0.shape == x.shape else {
                throw SamplingError.invalidParameter("DDIM CFG++: the denoiser did not call the run's guidance")
            }
            let eUncond = Tensor.derivative(xVE, uncondX0, Double(sigma))
            let aT = alphas[index], aPrev = alphasPrev[index], sigmaT = sigmas[index]
            let predX0 = Tensor.lincomb([(1 / aT.squareRoot(), x), (-(1 - aT).squareRoot() / aT.squareRoot(), e)])
            let noise = try randn(like: x)
            x = Tensor.lincomb([(aPrev.squareRoot(), predX0), ((1 - aPrev - sigmaT * sigmaT).squareRoot(), eUncond),
                                (sigmaT, noise)])
            try report(i, total, sigma: sigma, x: x, denoised: predX0)
        }
        return x
    }

    /// Matches: modules/sd_samplers_timesteps_impl.py plms
    func samplePLMS(_ x: Tensor, timesteps: [Int], schedule: NoiseSchedule) throws -> Tensor {
        let model = TimestepModel(run: self, schedule: schedule)
        let ac = schedule.alphasCumprod
        let alphas = timesteps.map { Double(ac[$0]) }
        let alphasPrev = ([0] + timesteps.dropLast()).map { Double(ac[$0]) }
        var x = x
        var oldEps = [Tensor]()
        func step(_ x: Tensor, _ e: Tensor, _ index: Int) -> (prev: Tensor, predX0: Tensor) {
            let aT = alphas[index], aPrev = alphasPrev[index]
            let predX0 = Tensor.lincomb([(1 / aT.squareRoot(), x), (-(1 - aT).squareRoot() / aT.squareRoot(), e)])
            return (Tensor.lincomb([(aPrev.squareRoot(), predX0), ((1 - aPrev).squareRoot(), e)]), predX0)
        }
        let total = timesteps.count - 1
        for i in 0..<total {
            let index = timesteps.count - 1 - i
            let (e, sigma) = try model.eps(x, t: Float(timesteps[index]))
            let ePrime: Tensor
            switch oldEps.count {
            case 0:
                // pseudo improved Euler
                let (xPrev, _) = step(x, e, index)
                let (eNext, _) = try model.eps(xPrev, t: Float(timesteps[max(index - 1, 0)]))
                ePrime = Tensor.lincomb([(0.5, e), (0.5, eNext)])
            case 1:
                ePrime = Tensor.lincomb([(1.5, e), (-0.5, oldEps[0])])
            case 2:
                ePrime = Tensor.lincomb([(23.0 / 12, e), (-16.0 / 12, oldEps[1]), (5.0 / 12, oldEps[0])])
            default:
                ePrime = Tensor.lincomb([(55.0 / 24, e), (-59.0 / 24, oldEps[2]), (37.0 / 24, oldEps[1]),
                                         (-9.0 / 24, oldEps[0])])
            }
            let (xPrev, predX0) = step(x, ePrime, index)
            oldEps.append(e)
            if oldEps.count >= 4 { oldEps.removeFirst() }
            x = xPrev
            try report(i, total, sigma: sigma, x: x, denoised: predX0)
        }
        return x
    }
}
