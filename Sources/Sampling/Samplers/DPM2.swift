import Foundation

extension SamplingRun {
    /// Midpoint in log-sigma: exp(lerp(log a, log b, 0.5)).
    private func logMidpoint(_ a: Double, _ b: Double) -> Double { exp(log(a) + 0.5 * (log(b) - log(a))) }

    /// Matches: k_diffusion/sampling.py sample_dpm_2
    func sampleDPM2(_ x: Tensor, sigmas: [Float]) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let (xc, sigmaHat) = try churn(x, sigmas: sigmas, i)
            x = xc
            let denoised = try denoise(x, Float(sigmaHat))
            let d = Tensor.derivative(x, denoised, sigmaHat)
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            let next = Double(sigmas[i + 1])
            if next == 0 {
                x = x.adding(d, scaledBy: Float(next - sigmaHat))
            } else {
                let mid = Double(Float(logMidpoint(sigmaHat, next)))
                let x2 = x.adding(d, scaledBy: Float(mid - sigmaHat))
                let denoised2 = try denoise(x2, Float(mid))
                let d2 = Tensor.derivative(x2, denoised2, mid)
                x = x.adding(d2, scaledBy: Float(next - sigmaHat))
            }
        }
        return x
    }

    /// Matches: k_diffusion/sampling.py sample_dpm_2_ancestral
    func sampleDPM2Ancestral(_ x: Tensor, sigmas: [Float], eta: Double, sNoise: Double) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let sigma = Double(sigmas[i])
            let denoised = try denoise(x, sigmas[i])
            let (down, up) = ancestralStep(sigma, Double(sigmas[i + 1]), eta: eta)
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            let d = Tensor.derivative(x, denoised, sigma)
            if down == 0 {
                x = x.adding(d, scaledBy: Float(down - sigma))
            } else {
                let mid = Double(Float(logMidpoint(sigma, down)))
                let x2 = x.adding(d, scaledBy: Float(mid - sigma))
                let denoised2 = try denoise(x2, Float(mid))
                let d2 = Tensor.derivative(x2, denoised2, mid)
                x = x.adding(d2, scaledBy: Float(down - sigma))
                x = x.adding(try randn(like: x), scaledBy: Float(sNoise * up))
            }
        }
        return x
    }
}
