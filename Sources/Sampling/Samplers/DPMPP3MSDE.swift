import Foundation

extension SamplingRun {
    /// Matches: k_diffusion/sampling.py sample_dpmpp_3m_sde
    func sampleDPMPP3MSDE(_ x: Tensor, sigmas: [Float], eta: Double, sNoise: Double) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        var denoised1: Tensor?, denoised2: Tensor?
        var h1: Double?, h2: Double?
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
                let hEta = step * (eta + 1)
                var terms: [(Double, Tensor)] = [(exp(-hEta), x), (-expm1(-hEta), denoised)]
                let phi2 = expm1(-hEta) / hEta + 1
                if let d1n = denoised1, let d2n = denoised2, let a = h1, let b = h2 {
                    let r0 = a / step, r1 = b / step
                    // d1_0 = (D - D1)/r0, d1_1 = (D1 - D2)/r1, d1 = d1_0 + (d1_0 - d1_1)·r0/(r0+r1),
                    // d2 = (d1_0 - d1_1)/(r0+r1); x += phi2·d1 − phi3·d2
                    let phi3 = phi2 / hEta - 0.5
                    let k = r0 / (r0 + r1), inv = 1 / (r0 + r1)
                    let c10 = phi2 * (1 + k) - phi3 * inv       // coefficient of d1_0
                    let c11 = -phi2 * k + phi3 * inv            // coefficient of d1_1
                    terms += [(c10 / r0, denoised), (-c10 / r0 + c11 / r1, d1n), (-c11 / r1, d2n)]
                } else if let d1n = denoised1, let a = h1 {
                    let r = a / step
                    terms += [(phi2 / r, denoised), (-phi2 / r, d1n)]
                }
                x = Tensor.lincomb(terms)
                if eta != 0 {
                    let scale = next * (-expm1(-2 * step * eta)).squareRoot() * sNoise
                    x = x.adding(try brownian(sigmas[i], sigmas[i + 1], like: x), scaledBy: Float(scale))
                }
            }
            denoised2 = denoised1
            denoised1 = denoised
            h2 = h1
            h1 = h
        }
        return x
    }
}
