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
            // t = −log σ and σ(t) = exp(−t) in float32 as torch evaluates them: the Brownian queries and the
            // model are called at these exact float32 levels.
            let tF = -logf(sigmas[i]), tNextF = -logf(sigmas[i + 1])
            let sF = tF + (tNextF - tF) * Float(r)
            let sigmaT = expf(-tF), sigmaS = expf(-sF), sigmaNext = expf(-tNextF)
            let t = Double(tF)
            let fac = 1 / (2 * r)

            // Step 1: to the intermediate level s
            let (sd1, su1) = ancestralStep(Double(sigmaT), Double(sigmaS), eta: eta)
            let s1 = -log(sd1)
            var x2 = Tensor.lincomb([(exp(-s1) / Double(sigmaT), x), (-expm1(t - s1), denoised)])
            x2 = x2.adding(try brownian(sigmaT, sigmaS, like: x), scaledBy: Float(sNoise * su1))
            let denoised2 = try denoise(x2, sigmaS)

            // Step 2: to the next level
            let (sd2, su2) = ancestralStep(Double(sigmaT), Double(sigmaNext), eta: eta)
            let tNext2 = -log(sd2)
            x = Tensor.lincomb([(exp(-tNext2) / Double(sigmaT), x),
                                (-expm1(t - tNext2) * (1 - fac), denoised), (-expm1(t - tNext2) * fac, denoised2)])
            x = x.adding(try brownian(sigmaT, sigmaNext, like: x), scaledBy: Float(sNoise * su2))
        }
        return x
    }
}
