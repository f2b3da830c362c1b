import Foundation

/// The beta distribution's CDF and quantile (what A1111's Beta schedule takes from `scipy.stats.beta.ppf`).
enum BetaDistribution {
    /// Regularised incomplete beta function I_x(a, b), by the continued fraction (modified Lentz).
    static func cdf(_ x: Double, alpha a: Double, beta b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * continuedFraction(x, a, b) / a
        }
        let logFrontSwapped = lgamma(a + b) - lgamma(a) - lgamma(b) + b * log1p(-x) + a * log(x)
        return 1 - exp(logFrontSwapped) * continuedFraction(1 - x, b, a) / b
    }

    private static func continuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...10_000 {
            let md = Double(m)
            // even step
            var num = md * (b - md) * x / ((a + 2 * md - 1) * (a + 2 * md))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            // odd step
            num = -(a + md) * (a + b + md) * x / ((a + 2 * md) * (a + 2 * md + 1))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return h
    }

    /// The x with I_x(a, b) = p, by bisection (the CDF is monotone; 200 halvings reach double resolution).
    static func quantile(_ p: Double, alpha: Double, beta: Double) throws -> Double {
        guard alpha > 0, beta > 0 else {
            throw SamplingError.invalidParameter("beta distribution needs alpha, beta > 0, got \(alpha), \(beta)")
        }
        guard p > 0 else { return 0 }
        guard p < 1 else { return 1 }
        var lo = 0.0, hi = 1.0
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if mid <= lo || mid >= hi { break }
            if cdf(mid, alpha: alpha, beta: beta) < p { lo = mid } else { hi = mid }
        }
        return 0.5 * (lo + hi)
    }
}
