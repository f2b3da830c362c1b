import Foundation

extension SamplingRun {
    /// Matches: modules/sd_samplers_extra.py restart_sampler (automatic restart list, s_noise 1)
    func sampleRestart(_ x: Tensor, sigmas: [Float], sNoise: Double = 1) throws -> Tensor {
        var sigmas = sigmas
        let steps = sigmas.count - 1
        // restart_list {min_sigma: [restart_steps, restart_times, max_sigma]}
        var restart: (minSigma: Float, steps: Int, times: Int, maxSigma: Float)?
        if steps >= 20 {
            var restartSteps = 9, restartTimes = 1
            if steps >= 36 {
                restartSteps = steps / 4
                restartTimes = 2
            }
            sigmas = ScheduleType.karrasSigmas(steps - restartSteps * restartTimes, sigmaMin: Double(sigmas[sigmas.count - 2]),
                                               sigmaMax: Double(sigmas[0]))
            restart = (0.1, restartSteps + 1, restartTimes, 2)
        }
        func nearest(_ value: Float) -> Int {
            var best = 0
            for (i, s) in sigmas.enumerated() where abs(s - value) < abs(sigmas[best] - value) { best = i }
            return best
        }
        var stepList = [(Float, Float)]()
        let restartIndex = restart.map { nearest($0.minSigma) }
        for i in 0..<(sigmas.count - 1) {
            stepList.append((sigmas[i], sigmas[i + 1]))
            if let r = restart, i + 1 == restartIndex {
                let minIdx = i + 1, maxIdx = nearest(r.maxSigma)
                if maxIdx < minIdx {
                    let upSigmas = Array(ScheduleType.karrasSigmas(r.steps, sigmaMin: Double(sigmas[minIdx]),
                                                                   sigmaMax: Double(sigmas[maxIdx])).dropLast())
                    for _ in 0..<r.times {
                        for k in 0..<(upSigmas.count - 1) { stepList.append((upSigmas[k], upSigmas[k + 1])) }
                    }
                }
            }
        }
        var x = x
        var last: Float?
        for (index, (old, new)) in stepList.enumerated() {
            if let l = last, l < old {
                let scale = sNoise * (Double(old) * Double(old) - Double(l) * Double(l)).squareRoot()
                x = x.adding(try randn(like: x), scaledBy: Float(scale))
            }
            if last == nil { last = old }
            let denoised = try denoise(x, old)
            let d = Tensor.derivative(x, denoised, Double(old))
            try report(index, stepList.count, sigma: new, x: x, denoised: denoised)
            let dt = Float(Double(new) - Double(old))
            if new == 0 {
                x = x.adding(d, scaledBy: dt)
            } else {
                let x2 = x.adding(d, scaledBy: dt)
                let denoised2 = try denoise(x2, new)
                let d2 = Tensor.derivative(x2, denoised2, Double(new))
                x = Tensor.lincomb([(1, x), (Double(dt) / 2, d), (Double(dt) / 2, d2)])
            }
            last = new
        }
        return x
    }
}
