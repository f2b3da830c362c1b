import Foundation

extension SamplingRun {
    /// Matches: k_diffusion/sampling.py sample_dpmpp_2m_sde (solver_type midpoint or heun)
    func sampleDPMPP2MSDE(_ x: Tensor, sigmas: [Float], eta: Double, sNoise: Double, heun: Bool) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        var oldDenoised: Tensor?
        var hLast: Double?
        for i in 0..<total {
            let sigma = Double(sigmas[i]), next = Double(sigmas[i + 1])
            let denoised = try denoise(x, sigmas[i])
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            var h: Double?
            if next == 0 {
                x = denoised
            } else {
                let step = log(sigma) - log(next)
                h = step
                let etaH = eta * step
                let phi = -expm1(-step - etaH)
                var terms: [(Double, Tensor)] = [(next / sigma * exp(-etaH), x), (phi, denoised)]
                if let old = oldDenoised, let last = hLast {
                    let r = last / step
                    let c = heun ? (phi / (-step - etaH) + 1) * (1 / r) : 0.5 * phi * (1 / r)
                    terms += [(c, denoised), (-c, old)]
                }
                x = Tensor.lincomb(terms)
                if eta != 0 {
                    let scale = next * (-expm1(-2 * etaH)).squareRoot() * sNoise
                    x = x.adding(try brownian(sigmas[i], sigmas[i + 1], like: x), scaledBy: Float(scale))
                }
            }
            oldDenoised = denoised
            hLast = h
        }
        return x
    }
}
