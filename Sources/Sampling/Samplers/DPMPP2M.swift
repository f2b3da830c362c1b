import Foundation

extension SamplingRun {
    /// Matches: k_diffusion/sampling.py sample_dpmpp_2m
    func sampleDPMPP2M(_ x: Tensor, sigmas: [Float]) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        var oldDenoised: Tensor?
        for i in 0..<total {
            let sigma = Double(sigmas[i]), next = Double(sigmas[i + 1])
            let denoised = try denoise(x, sigmas[i])
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            // t = -log(sigma); sigma_fn(t_next) / sigma_fn(t) = next / sigma (0 at the last step)
            let h = -log(next) + log(sigma)
            let ratio = next / sigma
            if let old = oldDenoised, next != 0 {
                let hLast = log(Double(sigmas[i - 1])) - log(sigma)
                let r = hLast / h
                let a = 1 + 1 / (2 * r), b = 1 / (2 * r)
                let e = -expm1(-h)
                x = Tensor.lincomb([(ratio, x), (e * a, denoised), (-e * b, old)])
            } else {
                x = Tensor.lincomb([(ratio, x), (-expm1(-h), denoised)])
            }
            oldDenoised = denoised
        }
        return x
    }
}
