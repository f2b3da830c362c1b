import Foundation

extension SamplingRun {
    /// Matches: k_diffusion/sampling.py sample_dpmpp_2s_ancestral
    func sampleDPMPP2SAncestral(_ x: Tensor, sigmas: [Float], eta: Double, sNoise: Double) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let sigma = Double(sigmas[i])
            let denoised = try denoise(x, sigmas[i])
            let (down, up) = ancestralStep(sigma, Double(sigmas[i + 1]), eta: eta)
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            if down == 0 {
                let d = Tensor.derivative(x, denoised, sigma)
                x = x.adding(d, scaledBy: Float(down - sigma))
            } else {
                // t = -log(sigma); midpoint s = t + h/2
                let t = -log(sigma), tNext = -log(down)
                let h = tNext - t
                let s = t + 0.5 * h
                let sigmaS = Double(Float(exp(-s)))
                let x2 = Tensor.lincomb([(sigmaS / sigma, x), (-expm1(-h * 0.5), denoised)])
                let denoised2 = try denoise(x2, Float(sigmaS))
                x = Tensor.lincomb([(exp(-tNext) / sigma, x), (-expm1(-h), denoised2)])
            }
            if sigmas[i + 1] > 0 {
                x = x.adding(try randn(like: x), scaledBy: Float(sNoise * up))
            }
        }
        return x
    }
}
