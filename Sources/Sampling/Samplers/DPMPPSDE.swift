import Foundation

extension SamplingRun {
    /// Matches: k_diffusion/sampling.py sample_dpmpp_sde (r = 1/2, Brownian noise)
    func sampleDPMPPSDE(_ x: Tensor, sigmas: [Float], eta: Double, sNoise: Double, r: Double = 0.5) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let sigma = Double(sigmas[i]), next = Double(sigmas[i + 1])
            let denoised = try denoise(x, sigmas[i])
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            if next == 0 {
                let d = Tensor.derivative(x, denoised, sigma)
                x = x.adding(d, scaledBy: Float(next - sigma))
                continue
            }
            let t = -log(sigma), tNext = -log(next)
            let h = tNext - t
            let s = t + h * r
            let fac = 1 / (2 * r)
            let sigmaS = Double(Float(exp(-s)))

            // Step 1: to the intermediate level s
            let (sd1, su1) = ancestralStep(sigma, sigmaS, eta: eta)
            let s1 = -log(sd1)
            var x2 = Tensor.lincomb([(exp(-s1) / sigma, x), (-expm1(t - s1), denoised)])
            x2 = x2.adding(try brownian(sigmas[i], Float(sigmaS), like: x), scaledBy: Float(sNoise * su1))
            let denoised2 = try denoise(x2, Float(sigmaS))

            // Step 2: to the next level
            let (sd2, su2) = ancestralStep(sigma, next, eta: eta)
            let tNext2 = -log(sd2)
            x = Tensor.lincomb([(exp(-tNext2) / sigma, x),
                                (-expm1(t - tNext2) * (1 - fac), denoised), (-expm1(t - tNext2) * fac, denoised2)])
            x = x.adding(try brownian(sigmas[i], sigmas[i + 1], like: x), scaledBy: Float(sNoise * su2))
        }
        return x
    }
}
