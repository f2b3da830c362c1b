import Foundation

extension SamplingRun {
    /// Matches: modules/sd_samplers_lcm.py sample_lcm
    func sampleLCM(_ x: Tensor, sigmas: [Float]) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        for i in 0..<total {
            let denoised = try denoise(x, sigmas[i])
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            x = denoised
            if sigmas[i + 1] > 0 {
                x = x.adding(try randn(like: x), scaledBy: sigmas[i + 1])
            }
        }
        return x
    }
}
