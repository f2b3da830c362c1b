import Foundation

/// The VP view of a discrete schedule used by UniPC: log α(t) piecewise linear over t_n = (n+1)/N.
/// Matches: modules/models/diffusion/uni_pc/uni_pc.py NoiseScheduleVP ('discrete'), interpolate_fn
struct VPSchedule {
    let tArray: [Double]
    let logAlpha: [Double]
    var totalN: Int { tArray.count }

    init(_ schedule: NoiseSchedule) {
        let n = schedule.alphasCumprod.count
        tArray = (1...n).map { Double(Float($0) / Float(n)) }
        logAlpha = schedule.alphasCumprod.map { Double(0.5 * logf($0)) }
    }

    /// Piecewise-linear interpolation, extrapolating with the outermost segments.
    static func interpolate(_ x: Double, _ xp: [Double], _ yp: [Double]) -> Double {
        let k = xp.count
        let ascending = xp[k - 1] >= xp[0]
        var j = 0
        // first segment [j, j+1] whose end lies beyond x (clamped to the outermost segments)
        while j < k - 2 && (ascending ? x > xp[j + 1] : x < xp[j + 1]) { j += 1 }
        return yp[j] + (x - xp[j]) * (yp[j + 1] - yp[j]) / (xp[j + 1] - xp[j])
    }

    func logMeanCoeff(_ t: Double) -> Double { Self.interpolate(t, tArray, logAlpha) }
    func alpha(_ t: Double) -> Double { exp(logMeanCoeff(t)) }
    func std(_ t: Double) -> Double { (1 - exp(2 * logMeanCoeff(t))).squareRoot() }
    func lambda(_ t: Double) -> Double {
        let l = logMeanCoeff(t)
        return l - 0.5 * log(1 - exp(2 * l))
    }
    func inverseLambda(_ lambda: Double) -> Double {
        // log α = −½·logaddexp(0, −2λ)
        let m = max(0, -2 * lambda)
        let logAlpha = -0.5 * (m + log(exp(-m) + exp(-2 * lambda - m)))
        return Self.interpolate(logAlpha, self.logAlpha.reversed(), tArray.reversed())
    }
}

extension SamplingRun {
    /// UniPC multistep with data prediction (B(h) variants), as A1111 runs it.
    /// Matches: modules/sd_samplers_timesteps_impl.py unipc, UniPCCFG; uni_pc.py UniPC.sample (multistep),
    /// multistep_uni_pc_bh_update
    func sampleUniPC(_ x: Tensor, steps: Int, schedule: NoiseSchedule, options: UniPCOptions,
                     tStart: Double? = nil) throws -> Tensor {
        let ns = VPSchedule(schedule)
        let model = TimestepModel(run: self, schedule: schedule)
        let order = options.order
        guard order >= 1, steps >= order else {
            throw SamplingError.invalidParameter("UniPC order \(order) must be < sampling steps (\(steps))")
        }
        let t0 = 1 / Double(ns.totalN), tT = tStart ?? 1
        let times: [Double]
        switch options.skipType {
        case .timeUniform:
            times = linspaceF(Float(tT), Float(t0), steps + 1).map(Double.init)
        case .timeQuadratic:
            times = linspaceF(Float(tT.squareRoot()), Float(t0.squareRoot()), steps + 1).map { Double($0) * Double($0) }
        case .logSNR:
            times = linspaceF(Float(ns.lambda(tT)), Float(ns.lambda(t0)), steps + 1).map { ns.inverseLambda(Double($0)) }
        }
        // data prediction x0 = (x − σ_t·eps)/α_t at model input time (t − 1/N)·1000
        func dataPrediction(_ x: Tensor, _ t: Double) throws -> Tensor {
            let tInput = (Float(t) - 1 / Float(ns.totalN)) * 1000
            let (e, _) = try model.eps(x, t: tInput)
            return Tensor.lincomb([(1 / ns.alpha(t), x), (-ns.std(t) / ns.alpha(t), e)])
        }
        var callbackIndex = 0
        func afterUpdate(_ x: Tensor, _ denoised: Tensor, _ t: Double) throws {
            try report(callbackIndex, steps, sigma: Float(ns.std(t) / ns.alpha(t)), x: x, denoised: denoised)
            callbackIndex += 1
        }

        var x = x
        var modelPrev = [try dataPrediction(x, times[0])]
        var tPrev = [times[0]]
        if order > 1 {
            for initOrder in 1..<order {
                let t = times[initOrder]
                let (xNew, modelT) = try uniPCUpdate(x, modelPrev, tPrev, t, order: initOrder, useCorrector: true,
                                                     ns: ns, variant: options.variant, predict: dataPrediction)
                x = xNew
                let m = try modelT ?? dataPrediction(x, t)
                try afterUpdate(x, m, t)
                modelPrev.append(m)
                tPrev.append(t)
            }
        }
        for step in order...steps {
            let t = times[step]
            let stepOrder = options.lowerOrderFinal ? min(order, steps + 1 - step) : order
            let (xNew, modelT) = try uniPCUpdate(x, modelPrev, tPrev, t, order: stepOrder, useCorrector: step != steps,
                                                 ns: ns, variant: options.variant, predict: dataPrediction)
            x = xNew
            try afterUpdate(x, modelT ?? x, t)
            for i in 0..<(order - 1) {
                tPrev[i] = tPrev[i + 1]
                modelPrev[i] = modelPrev[i + 1]
            }
            tPrev[order - 1] = t
            if step < steps {
                modelPrev[order - 1] = try modelT ?? dataPrediction(x, t)
            }
        }
        return x
    }

    private func uniPCUpdate(_ x: Tensor, _ modelPrev: [Tensor], _ tPrev: [Double], _ t: Double, order: Int,
                             useCorrector: Bool, ns: VPSchedule, variant: UniPCOptions.Variant,
                             predict: (Tensor, Double) throws -> Tensor) throws -> (Tensor, Tensor?) {
        variant == .varyCoeff
            ? try uniPCVaryUpdate(x, modelPrev, tPrev, t, order: order, useCorrector: useCorrector, ns: ns,
                                  predict: predict)
            : try uniPCBHUpdate(x, modelPrev, tPrev, t, order: order, useCorrector: useCorrector, ns: ns,
                                variant: variant, predict: predict)
    }

    /// Matches: uni_pc.py UniPC.multistep_uni_pc_bh_update (predict_x0 = True)
    private func uniPCBHUpdate(_ x: Tensor, _ modelPrev: [Tensor], _ tPrev: [Double], _ t: Double, order: Int,
                             useCorrector: Bool, ns: VPSchedule, variant: UniPCOptions.Variant,
                             predict: (Tensor, Double) throws -> Tensor) throws -> (Tensor, Tensor?) {
        let tPrev0 = tPrev[tPrev.count - 1]
        let lambdaPrev0 = ns.lambda(tPrev0), lambdaT = ns.lambda(t)
        let model0 = modelPrev[modelPrev.count - 1]
        let sigmaPrev0 = ns.std(tPrev0), sigmaT = ns.std(t)
        let alphaT = ns.alpha(t)
        let h = lambdaT - lambdaPrev0

        var rks = [Double]()
        var d1s = [Tensor]()
        if order > 1 {
            for i in 1..<order {
                let rk = (ns.lambda(tPrev[tPrev.count - 1 - i]) - lambdaPrev0) / h
                rks.append(rk)
                d1s.append(Tensor.lincomb([(1 / rk, modelPrev[modelPrev.count - 1 - i]), (-1 / rk, model0)]))
            }
        }
        rks.append(1)

        let hh = -h
        let hPhi1 = expm1(hh)
        var hPhiK = hPhi1 / hh - 1
        var factorial = 1.0
        let bH = variant == .bh1 ? hh : expm1(hh)
        var rMatrix = [[Double]]()
        var b = [Double]()
        for i in 1...order {
            rMatrix.append(rks.map { pow($0, Double(i - 1)) })
            b.append(hPhiK * factorial / bH)
            factorial *= Double(i + 1)
            hPhiK = hPhiK / hh - 1 / factorial
        }

        var rhosP = [Double]()
        if !d1s.isEmpty {
            rhosP = order == 2 ? [0.5]
                : try solveLinear(Array(rMatrix.dropLast().map { Array($0.dropLast()) }), Array(b.dropLast()))
        }
        var rhosC = [Double]()
        if useCorrector { rhosC = order == 1 ? [0.5] : try solveLinear(rMatrix, b) }

        let base: [(Double, Tensor)] = [(sigmaT / sigmaPrev0, x), (-alphaT * hPhi1, model0)]
        var predicted = base
        for (k, d) in d1s.enumerated() { predicted.append((-alphaT * bH * rhosP[k], d)) }
        var xT = Tensor.lincomb(predicted)
        var modelT: Tensor?
        if useCorrector {
            let m = try predict(xT, t)
            modelT = m
            var corrected = base
            for (k, d) in d1s.enumerated() { corrected.append((-alphaT * bH * rhosC[k], d)) }
            let last = rhosC[rhosC.count - 1]
            corrected += [(-alphaT * bH * last, m), (alphaT * bH * last, model0)]
            xT = Tensor.lincomb(corrected)
        }
        return (xT, modelT)
    }
}

extension SamplingRun {
    /// Matches: uni_pc.py UniPC.multistep_uni_pc_vary_update (predict_x0 = True; the corrector's last
    /// coefficient is taken from row K−2 of C⁻¹ as upstream's loop variable leaves it)
    fileprivate func uniPCVaryUpdate(_ x: Tensor, _ modelPrev: [Tensor], _ tPrev: [Double], _ t: Double, order: Int,
                                     useCorrector: Bool, ns: VPSchedule,
                                     predict: (Tensor, Double) throws -> Tensor) throws -> (Tensor, Tensor?) {
        let tPrev0 = tPrev[tPrev.count - 1]
        let lambdaPrev0 = ns.lambda(tPrev0)
        let model0 = modelPrev[modelPrev.count - 1]
        let sigmaPrev0 = ns.std(tPrev0), sigmaT = ns.std(t), alphaT = ns.alpha(t)
        let h = ns.lambda(t) - lambdaPrev0
        var rks = [Double](), d1s = [Tensor]()
        if order > 1 {
            for i in 1..<order {
                let rk = (ns.lambda(tPrev[tPrev.count - 1 - i]) - lambdaPrev0) / h
                rks.append(rk)
                d1s.append(Tensor.lincomb([(1 / rk, modelPrev[modelPrev.count - 1 - i]), (-1 / rk, model0)]))
            }
        }
        rks.append(1)
        let k = rks.count
        // C[i][j] = rks[i]^j / (j+1)!
        var c = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        var col = [Double](repeating: 1, count: k)
        for j in 0..<k {
            for i in 0..<k { c[i][j] = col[i] }
            col = (0..<k).map { col[$0] * rks[$0] / Double(j + 2) }
        }
        let aP = d1s.isEmpty ? [] : try invert(Array(c.dropLast().map { Array($0.dropLast()) }))
        let aC = useCorrector ? try invert(c) : []
        let hh = -h
        let hPhi1 = expm1(hh)
        var hPhiKs = [Double]()
        var factorial = 1.0, hPhiK = hPhi1
        for step in 1...(k + 1) {
            hPhiKs.append(hPhiK)
            hPhiK = hPhiK / hh - 1 / factorial
            factorial *= Double(step + 1)
        }
        let base: [(Double, Tensor)] = [(sigmaT / sigmaPrev0, x), (-alphaT * hPhi1, model0)]
        var terms = base
        if !d1s.isEmpty {
            for row in 0..<(k - 1) {
                for (j, d) in d1s.enumerated() { terms.append((-alphaT * hPhiKs[row + 1] * aP[row][j], d)) }
            }
        }
        var xT = Tensor.lincomb(terms)
        var modelT: Tensor?
        if useCorrector {
            let m = try predict(xT, t)
            modelT = m
            var corrected = base
            var lastRow = 0
            for row in 0..<(k - 1) {
                lastRow = row
                for (j, d) in d1s.enumerated() { corrected.append((-alphaT * hPhiKs[row + 1] * aC[row][j], d)) }
            }
            let last = aC[lastRow][k - 1]
            corrected += [(-alphaT * hPhiKs[k] * last, m), (alphaT * hPhiKs[k] * last, model0)]
            xT = Tensor.lincomb(corrected)
        }
        return (xT, modelT)
    }
}

/// Inverse of a small dense matrix, column by column.
func invert(_ m: [[Double]]) throws -> [[Double]] {
    let n = m.count
    let columns = try (0..<n).map { j in try solveLinear(m, (0..<n).map { $0 == j ? 1.0 : 0.0 }) }
    return (0..<n).map { i in (0..<n).map { j in columns[j][i] } }
}

/// Solves the small dense system A·x = b by Gaussian elimination with partial pivoting.
func solveLinear(_ a: [[Double]], _ b: [Double]) throws -> [Double] {
    let n = b.count
    var m = a
    var v = b
    for col in 0..<n {
        guard let pivot = (col..<n).max(by: { abs(m[$0][col]) < abs(m[$1][col]) }), m[pivot][col] != 0 else {
            throw SamplingError.invalidParameter("UniPC: singular coefficient matrix")
        }
        m.swapAt(col, pivot)
        v.swapAt(col, pivot)
        for row in (col + 1)..<n {
            let f = m[row][col] / m[col][col]
            for k in col..<n { m[row][k] -= f * m[col][k] }
            v[row] -= f * v[col]
        }
    }
    var out = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        var s = v[row]
        for k in (row + 1)..<n { s -= m[row][k] * out[k] }
        out[row] = s / m[row][row]
    }
    return out
}
