import Foundation

extension SamplingRun {
    /// Karras churn shared by Euler, Heun and DPM2: draws `randn` every step (as k-diffusion does, even when
    /// unused), raises sigma by gamma when sigma lies in [s_tmin, s_tmax], and returns the new x and sigma_hat.
    func churn(_ x: Tensor, sigmas: [Float], _ i: Int) throws -> (Tensor, Double) {
        let p = parameters
        let sigma = Double(sigmas[i])
        let gamma = (Double(p.sTmin) <= sigma && sigma <= Double(p.sTmax))
            ? min(Double(p.sChurn) / Double(sigmas.count - 1), 2.0.squareRoot() - 1) : 0
        let eps = try randn(like: x)
        let sigmaHat = Double(Float(sigma * (gamma + 1)))
        guard gamma > 0 else { return (x, sigmaHat) }
        return (x.adding(eps, scaledBy: Float(Double(p.sNoise) * (sigmaHat * sigmaHat - sigma * sigma).squareRoot())),
                sigmaHat)
    }

    /// Matches: k_diffusion/sampling.py sample_euler
    func sampleEuler(_ x: Tensor, sigmas: [Float]) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let (xc, sigmaHat) = try churn(x, sigmas: sigmas, i)
            x = xc
            let denoised = try denoise(x, Float(sigmaHat))
            let d = Tensor.derivative(x, denoised, sigmaHat)
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            x = x.adding(d, scaledBy: Float(Double(sigmas[i + 1]) - sigmaHat))
        }
        return x
    }

    /// Matches: k_diffusion/sampling.py sample_euler_ancestral (A1111 passes no s_noise to it)
    func sampleEulerAncestral(_ x: Tensor, sigmas: [Float], eta: Double) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let sigma = Double(sigmas[i]), next = Double(sigmas[i + 1])
            let denoised = try denoise(x, sigmas[i])
            let (down, up) = ancestralStep(sigma, next, eta: eta)
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            let d = Tensor.derivative(x, denoised, sigma)
            x = x.adding(d, scaledBy: Float(down - sigma))
            if next > 0 {
                x = x.adding(try randn(like: x), scaledBy: Float(up))
            }
        }
        return x
    }
}
