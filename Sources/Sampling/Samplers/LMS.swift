import Foundation

extension SamplingRun {
    /// ∫ over [t[i], t[i+1]] of the Lagrange basis polynomial j built on t[i], t[i-1], …, t[i-order+1].
    /// k-diffusion integrates it with scipy quad; the integrand is a polynomial of degree < 4, so Gauss–Legendre
    /// with 3 nodes is exact.
    /// Matches: k_diffusion/sampling.py linear_multistep_coeff
    static func linearMultistepCoefficient(order: Int, t: [Double], i: Int, j: Int) -> Double {
        func basis(_ tau: Double) -> Double {
            var prod = 1.0
            for k in 0..<order where k != j {
                prod *= (tau - t[i - k]) / (t[i - j] - t[i - k])
            }
            return prod
        }
        let a = t[i], b = t[i + 1]
        let half = 0.5 * (b - a), mid = 0.5 * (a + b)
        let node = (3.0 / 5.0).squareRoot()
        return half * (5.0 / 9.0 * basis(mid - half * node) + 8.0 / 9.0 * basis(mid) + 5.0 / 9.0 * basis(mid + half * node))
    }

    /// Matches: k_diffusion/sampling.py sample_lms (order 4)
    func sampleLMS(_ x: Tensor, sigmas: [Float], order: Int = 4) throws -> Tensor {
        var x = x
        let total = sigmas.count - 1
        let t = sigmas.map(Double.init)
        var ds = [Tensor]()
        for i in 0..<total {
            let denoised = try denoise(x, sigmas[i])
            ds.append(Tensor.derivative(x, denoised, t[i]))
            if ds.count > order { ds.removeFirst() }
            try report(i, total, sigma: sigmas[i], x: x, denoised: denoised)
            let current = min(i + 1, order)
            var terms: [(Double, Tensor)] = [(1, x)]
            for j in 0..<current {
                terms.append((Self.linearMultistepCoefficient(order: current, t: t, i: i, j: j), ds[ds.count - 1 - j]))
            }
            x = Tensor.lincomb(terms)
        }
        return x
    }
}
