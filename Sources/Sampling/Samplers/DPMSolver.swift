import Foundation

/// DPM-Solver in t = −log σ with eps = (x − D(x, σ)) / σ; single steps of order 1–3, the fixed-step "DPM fast"
/// and the PID-controlled "DPM adaptive".
/// Matches: k_diffusion/sampling.py DPMSolver, PIDStepSizeController
struct DPMSolver {
    let run: SamplingRun

    static func sigma(_ t: Double) -> Double { exp(-t) }
    static func t(_ sigma: Double) -> Double { -log(sigma) }

    /// Cached eps evaluations of one step ("eps", "eps_r1", "eps_r2").
    struct Cache { var eps: Tensor?; var r1: Tensor?; var r2: Tensor? }

    func eps(_ x: Tensor, _ t: Double) throws -> Tensor {
        let s = Self.sigma(t)
        return Tensor.derivative(x, try run.denoise(x, Float(s)), s)
    }

    func step1(_ x: Tensor, _ t: Double, _ tNext: Double, _ cache: inout Cache) throws -> Tensor {
        let h = tNext - t
        let e = try cache.eps ?? eps(x, t)
        cache.eps = e
        return x.adding(e, scaledBy: Float(-Self.sigma(tNext) * expm1(h)))
    }

    func step2(_ x: Tensor, _ t: Double, _ tNext: Double, r1: Double = 0.5, _ cache: inout Cache) throws -> Tensor {
        let h = tNext - t
        let e = try cache.eps ?? eps(x, t)
        cache.eps = e
        let s1 = t + r1 * h
        let u1 = x.adding(e, scaledBy: Float(-Self.sigma(s1) * expm1(r1 * h)))
        let e1 = try cache.r1 ?? eps(u1, s1)
        cache.r1 = e1
        let sn = Self.sigma(tNext), em = expm1(h)
        let c = sn / (2 * r1) * em
        return Tensor.lincomb([(1, x), (-sn * em + c, e), (-c, e1)])
    }

    func step3(_ x: Tensor, _ t: Double, _ tNext: Double, r1: Double = 1.0 / 3, r2: Double = 2.0 / 3,
               _ cache: inout Cache) throws -> Tensor {
        let h = tNext - t
        let e = try cache.eps ?? eps(x, t)
        cache.eps = e
        let s1 = t + r1 * h, s2 = t + r2 * h
        let u1 = x.adding(e, scaledBy: Float(-Self.sigma(s1) * expm1(r1 * h)))
        let e1 = try cache.r1 ?? eps(u1, s1)
        cache.r1 = e1
        let sig2 = Self.sigma(s2)
        let c2 = sig2 * (r2 / r1) * (expm1(r2 * h) / (r2 * h) - 1)
        let u2 = Tensor.lincomb([(1, x), (-sig2 * expm1(r2 * h) + c2, e), (-c2, e1)])
        let e2 = try cache.r2 ?? eps(u2, s2)
        cache.r2 = e2
        let sn = Self.sigma(tNext)
        let c3 = sn / r2 * (expm1(h) / h - 1)
        return Tensor.lincomb([(1, x), (-sn * expm1(h) + c3, e), (-c3, e2)])
    }

    /// Matches: k_diffusion/sampling.py DPMSolver.dpm_solver_fast (noise drawn every step, as upstream)
    func fast(_ x: Tensor, tStart: Double, tEnd: Double, nfe: Int, eta: Double, sNoise: Double) throws -> Tensor {
        guard nfe >= 1 else { throw SamplingError.invalidParameter("DPM fast needs at least 1 step") }
        let m = nfe / 3 + 1
        let ts = linspaceF(Float(tStart), Float(tEnd), m + 1).map(Double.init)
        let orders = nfe % 3 == 0 ? [Int](repeating: 3, count: m - 2) + [2, 1]
                                  : [Int](repeating: 3, count: m - 1) + [nfe % 3]
        var x = x
        for (i, order) in orders.enumerated() {
            var cache = Cache()
            let t = ts[i], tNext = ts[i + 1]
            var tNextUsed = tNext, su = 0.0
            if eta != 0 {
                let (sd, _) = ancestralStep(Self.sigma(t), Self.sigma(tNext), eta: eta)
                tNextUsed = min(tEnd, Self.t(sd))
                su = max(Self.sigma(tNext) * Self.sigma(tNext) - Self.sigma(tNextUsed) * Self.sigma(tNextUsed), 0)
                    .squareRoot()
            }
            let e = try eps(x, t)
            cache.eps = e
            try run.report(i, orders.count, sigma: Float(Self.sigma(t)), x: x,
                           denoised: x.adding(e, scaledBy: Float(-Self.sigma(t))))
            switch order {
            case 1: x = try step1(x, t, tNextUsed, &cache)
            case 2: x = try step2(x, t, tNextUsed, &cache)
            default: x = try step3(x, t, tNextUsed, &cache)
            }
            x = x.adding(try run.randn(like: x), scaledBy: Float(su * sNoise))
        }
        return x
    }

    /// Matches: k_diffusion/sampling.py DPMSolver.dpm_solver_adaptive (order 3, rtol 0.05, atol 0.0078,
    /// h_init 0.05, PID (0, 1, 0), accept_safety 0.81)
    func adaptive(_ x: Tensor, tStart: Double, tEnd: Double, eta: Double, sNoise: Double, total: Int,
                  rtol: Double = 0.05, atol: Double = 0.0078, hInit: Double = 0.05) throws -> Tensor {
        guard tEnd > tStart else { throw SamplingError.invalidParameter("DPM adaptive needs sigma_min < sigma_max") }
        let order = 3.0
        var pid = PIDController(h: hInit, p: 0, i: 1, d: 0, order: eta != 0 ? 1.5 : order, acceptSafety: 0.81)
        var s = Double(Float(tStart))
        var x = x, xPrev = x
        var attempts = 0
        while s < tEnd - 1e-5 {
            var cache = Cache()
            let t = Double(Float(min(tEnd, s + pid.h)))
            var tUsed = t, su = 0.0
            if eta != 0 {
                let (sd, _) = ancestralStep(Self.sigma(s), Self.sigma(t), eta: eta)
                tUsed = min(tEnd, Self.t(sd))
                su = max(Self.sigma(t) * Self.sigma(t) - Self.sigma(tUsed) * Self.sigma(tUsed), 0).squareRoot()
            }
            let e = try eps(x, s)
            cache.eps = e
            let denoised = x.adding(e, scaledBy: Float(-Self.sigma(s)))
            let low = try step2(x, s, tUsed, r1: 1.0 / 3, &cache)
            let high = try step3(x, s, tUsed, &cache)
            var sum = 0.0
            low.scalars.withUnsafeBufferPointer { l in
                high.scalars.withUnsafeBufferPointer { hi in
                    xPrev.scalars.withUnsafeBufferPointer { p in
                        for k in 0..<l.count {
                            let delta = max(atol, rtol * Double(max(abs(l[k]), abs(p[k]))))
                            let q = Double(l[k] - hi[k]) / delta
                            sum += q * q
                        }
                    }
                }
            }
            let error = sum.squareRoot() / Double(x.count).squareRoot()
            if pid.proposeStep(error) {
                xPrev = low
                x = high.adding(try run.randn(like: x), scaledBy: Float(su * sNoise))
                s = t
            }
            attempts += 1
            try run.report(attempts - 1, total, sigma: Float(Self.sigma(s)), x: x, denoised: denoised)
        }
        return x
    }
}

/// Matches: k_diffusion/sampling.py PIDStepSizeController
struct PIDController {
    var h: Double
    let b1: Double, b2: Double, b3: Double
    let acceptSafety: Double
    let eps = 1e-8
    var errs: [Double] = []

    init(h: Double, p: Double, i: Double, d: Double, order: Double, acceptSafety: Double) {
        self.h = h
        b1 = (p + i + d) / order
        b2 = -(p + 2 * d) / order
        b3 = d / order
        self.acceptSafety = acceptSafety
    }

    mutating func proposeStep(_ error: Double) -> Bool {
        let inv = 1 / (error + eps)
        if errs.isEmpty { errs = [inv, inv, inv] }
        errs[0] = inv
        var factor = pow(errs[0], b1) * pow(errs[1], b2) * pow(errs[2], b3)
        factor = 1 + atan(factor - 1)
        let accept = factor >= acceptSafety
        if accept {
            errs[2] = errs[1]
            errs[1] = errs[0]
        }
        h *= factor
        return accept
    }
}
