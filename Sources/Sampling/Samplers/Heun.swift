import Foundation

extension SamplingRun {
    /// Matches: k_diffusion/sampling.py sample_heun
    func sampleHeun(_ x: Tensor, sigmas: [Float]) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let (xc, sigmaHat) = try churn(x, sigmas: sigmas, i)
            x = xc
            let denoised = try denoise(x, Float(sigmaHat))
            let d = Tensor.derivative(x, denoised, sigmaHat)
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            let next = Double(sigmas[i + 1])
            let dt = Float(next - sigmaHat)
            if next == 0 {
                x = x.adding(d, scaledBy: dt)
            } else {
                let x2 = x.adding(d, scaledBy: dt)
                let denoised2 = try denoise(x2, sigmas[i + 1])
                let d2 = Tensor.derivative(x2, denoised2, next)
                x = Tensor.lincomb([(1, x), (Double(dt) / 2, d), (Double(dt) / 2, d2)])
            }
        }
        return x
    }
}
