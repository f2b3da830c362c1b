import Foundation

/// Options that shape the noise levels (A1111 settings; defaults are A1111's).
public struct ScheduleOptions: Sendable, Equatable {
    /// `always_discard_next_to_last_sigma`.
    public var alwaysDiscardNextToLastSigma = false
    /// `use_old_karras_scheduler_sigmas`: range (0.1, 10) instead of the model's.
    public var useOldKarrasSigmas = false
    /// `sigma_min`, `sigma_max`, `rho`: 0 means the default.
    public var sigmaMin: Float = 0
    public var sigmaMax: Float = 0
    public var rho: Double = 0
    /// `beta_dist_alpha`, `beta_dist_beta`.
    public var betaAlpha: Double = 0.6
    public var betaBeta: Double = 0.6
    public var isSDXL = false

    public init() {}
}

/// The noise levels (or timesteps) one sampler will run through, with what A1111 records about them.
public struct SamplingPlan: Sendable {
    public let sampler: SamplerInfo
    public let steps: Int
    /// The schedule actually used (Automatic resolved to the sampler's default; `.automatic` when the model's
    /// own discretisation was used).
    public let scheduleType: ScheduleType
    /// k-diffusion / LCM: sigmas with the trailing 0 (may be longer than steps+1 for DDIM, no 0 for KL Optimal).
    public let sigmas: [Float]
    /// Timestep samplers: A1111's `get_timesteps`.
    public let timesteps: [Int]
    /// Infotext entries A1111 adds while computing them ("Schedule type", "Discard penultimate sigma",
    /// "Schedule min sigma", "Schedule max sigma", "Schedule rho", "Beta schedule alpha/beta"), in order.
    public let infotext: [(key: String, value: String)]
    let model: NoiseSchedule
    let lcmModel: LCMNoiseSchedule?

    /// Matches: modules/sd_samplers_kdiffusion.py KDiffusionSampler.get_sigmas,
    /// modules/sd_samplers_timesteps.py CompVisSampler.get_timesteps
    public init(sampler: SamplerInfo, scheduler: ScheduleType, steps requested: Int, model: NoiseSchedule,
                options: ScheduleOptions = ScheduleOptions()) throws {
        guard requested >= 1 else { throw SamplingError.invalidParameter("steps must be at least 1, got \(requested)") }
        self.sampler = sampler
        self.steps = requested
        self.model = model
        var info = [(key: String, value: String)]()
        var discard = sampler.discardNextToLastSigma
        if options.alwaysDiscardNextToLastSigma && !discard {
            discard = true
            info.append(("Discard penultimate sigma", "True"))
        }
        let steps = requested + (discard ? 1 : 0)

        if sampler.algorithm.family == .timesteps {
            let stride = 1000 / steps
            guard stride > 0 else { throw SamplingError.invalidParameter("at most 1000 steps for \(sampler.name)") }
            timesteps = Swift.stride(from: 0, to: 1000, by: stride).map { min(max($0 + 1, 0), 999) }
            sigmas = []
            scheduleType = .automatic
            lcmModel = nil
            infotext = info
            return
        }

        let lcm = sampler.algorithm.family == .lcm ? try LCMNoiseSchedule(model) : nil
        lcmModel = lcm
        let inner: any DiscreteSigmaSchedule = lcm ?? model
        let type = scheduler == .automatic ? (sampler.defaultScheduler ?? .automatic) : scheduler
        var sigmas: [Float]
        if type == .automatic {
            sigmas = inner.defaultSigmas(steps: steps)
        } else {
            let mMin = inner.sigmaMin, mMax = inner.sigmaMax
            var inputs = options.useOldKarrasSigmas
                ? ScheduleInputs(sigmaMin: 0.1, sigmaMax: 10) : ScheduleInputs(sigmaMin: mMin, sigmaMax: mMax)
            inputs.betaAlpha = options.betaAlpha
            inputs.betaBeta = options.betaBeta
            inputs.isSDXL = options.isSDXL
            info.append(("Schedule type", type.label))
            if options.sigmaMin != 0 && options.sigmaMin != mMin {
                inputs.sigmaMin = options.sigmaMin
                info.append(("Schedule min sigma", "\(options.sigmaMin)"))
            }
            if options.sigmaMax != 0 && options.sigmaMax != mMax {
                inputs.sigmaMax = options.sigmaMax
                info.append(("Schedule max sigma", "\(options.sigmaMax)"))
            }
            if type.defaultRho != -1 && options.rho != 0 && options.rho != type.defaultRho {
                inputs.rho = options.rho
                info.append(("Schedule rho", "\(options.rho)"))
            }
            if type == .beta {
                info.append(("Beta schedule alpha", "\(options.betaAlpha)"))
                info.append(("Beta schedule beta", "\(options.betaBeta)"))
            }
            sigmas = try type.sigmas(steps: steps, model: inner, inputs: inputs)
        }
        if discard && sigmas.count >= 2 {
            sigmas.remove(at: sigmas.count - 2)
        }
        self.sigmas = sigmas
        self.scheduleType = type
        self.timesteps = []
        self.infotext = info
    }

    /// A1111's `setup_img2img_steps`: total steps and t_enc for a denoising strength.
    /// Matches: modules/sd_samplers_common.py setup_img2img_steps
    public static func img2imgSteps(steps: Int, denoisingStrength: Double, fixSteps: Bool = false,
                                    overrideSteps: Int? = nil) -> (steps: Int, tEnc: Int) {
        if fixSteps || overrideSteps != nil {
            let requested = overrideSteps ?? steps
            let total = denoisingStrength > 0 ? Int(Double(requested) / min(denoisingStrength, 0.999)) : 0
            return (total, requested - 1)
        }
        return (steps, Int(min(denoisingStrength, 0.999) * Double(steps)))
    }
}

extension SamplingPlan {
    /// The noise sources for this plan: `randn` (A1111's per-image generators, ENSD-reseeded) for ancestral
    /// steps, and for samplers with `brownian_noise` A1111's torchsde Brownian trees over the whole schedule's
    /// range (also the full sigmas in img2img), one per image `seeds[i]`, their node normals from `seededNormal`.
    /// Matches: modules/sd_samplers_common.py Sampler.create_noise_sampler
    public func noise(randn: @escaping () throws -> Tensor, seeds: [UInt64], imageShape: [Int],
                      seededNormal: @escaping SeededNormal) throws -> SamplingNoise {
        guard sampler.brownianNoise else { return SamplingNoise(randn: randn) }
        let trees = try A1111BrownianNoise(sigmas: sigmas, imageShape: imageShape, seeds: seeds, normal: seededNormal)
        return SamplingNoise(randn: randn, brownian: { try trees($0, $1) })
    }

    /// Like `noise(randn:seeds:imageShape:seededNormal:)` but with an approximate Brownian path built from a plain
    /// normal stream (`BrownianNoiseSampler`): same statistics, not A1111's values. For callers without per-seed
    /// generators; A1111-identical SDE images need the seeded form.
    public func noise(randn: @escaping () throws -> Tensor,
                      brownianNormal: @escaping () throws -> Tensor) throws -> SamplingNoise {
        guard sampler.brownianNoise else { return SamplingNoise(randn: randn) }
        let path = try BrownianNoiseSampler(sigmas: sigmas, normal: brownianNormal)
        return SamplingNoise(randn: randn, brownian: { try path($0, $1) })
    }

    /// txt2img: `noise` is the unit-variance initial latent; k-diffusion samplers scale it by sigmas[0]
    /// (or √(1+σ₀²) with `sgmNoiseMultiplier`).
    /// Matches: modules/sd_samplers_kdiffusion.py KDiffusionSampler.sample, sd_samplers_timesteps.py CompVisSampler.sample
    public func sample(noise: Tensor, run: SamplingRun, sgmNoiseMultiplier: Bool = false) throws -> Tensor {
        switch sampler.algorithm.family {
        case .timesteps:
            return try run.run(noise) { try runTimesteps(noise, timesteps: timesteps, img2img: false, run: run) }
        case .kDiffusion, .lcm:
            let s0 = sigmas[0]
            let x = noise * (sgmNoiseMultiplier ? (1 + s0 * s0).squareRoot() : s0)
            let inner: any DiscreteSigmaSchedule = lcmModel ?? model
            return try run.run(x) {
                try runSigmas(x, sigmas: sigmas, dpmRange: (Double(inner.sigmaMin), Double(inner.sigmaMax)),
                              dpmSteps: steps, run: run)
            }
        }
    }

    /// img2img (and the hires-fix second pass): `latent` is the clean encoded image, `noise` unit noise; runs the
    /// last `tEnc + 1` sigmas (k-diffusion) or the first `tEnc` timesteps (timestep samplers).
    /// Matches: modules/sd_samplers_kdiffusion.py KDiffusionSampler.sample_img2img,
    /// modules/sd_samplers_timesteps.py CompVisSampler.sample_img2img
    public func sampleImg2Img(latent: Tensor, noise: Tensor, tEnc: Int, run: SamplingRun) throws -> Tensor {
        guard latent.shape == noise.shape else {
            throw TensorError.shapeMismatch(op: "img2img noise", expected: latent.shape, got: noise.shape)
        }
        switch sampler.algorithm.family {
        case .timesteps:
            guard tEnc >= 1, tEnc < timesteps.count else {
                throw SamplingError.invalidParameter("t_enc \(tEnc) outside 1..<\(timesteps.count)")
            }
            let a = Double(model.alphasCumprod[timesteps[tEnc]])
            let xi = Tensor.lincomb([(a.squareRoot(), latent), ((1 - a).squareRoot(), noise)])
            return try run.run(xi) { try runTimesteps(xi, timesteps: Array(timesteps[..<tEnc]), img2img: true, run: run) }
        case .kDiffusion, .lcm:
            let start = steps - tEnc - 1
            guard start >= 0, start < sigmas.count - 1 else {
                throw SamplingError.invalidParameter("t_enc \(tEnc) does not fit \(steps) steps")
            }
            let sched = Array(sigmas[start...])
            let xi = latent.adding(noise, scaledBy: sched[0])
            return try run.run(xi) {
                try runSigmas(xi, sigmas: sched, dpmRange: (Double(sched[sched.count - 2]), Double(sched[0])),
                              dpmSteps: sched.count - 1, run: run)
            }
        }
    }

    private func runSigmas(_ x: Tensor, sigmas: [Float], dpmRange: (min: Double, max: Double), dpmSteps: Int,
                           run: SamplingRun) throws -> Tensor {
        let p = run.parameters
        let eta = Double(p.eta ?? 1)
        let sNoise = sampler.acceptsSNoise ? Double(p.sNoise) : 1
        switch sampler.algorithm {
        case .euler: return try run.sampleEuler(x, sigmas: sigmas)
        case .eulerAncestral: return try run.sampleEulerAncestral(x, sigmas: sigmas, eta: eta)
        case .heun: return try run.sampleHeun(x, sigmas: sigmas)
        case .dpm2: return try run.sampleDPM2(x, sigmas: sigmas)
        case .dpm2Ancestral: return try run.sampleDPM2Ancestral(x, sigmas: sigmas, eta: eta, sNoise: sNoise)
        case .lms: return try run.sampleLMS(x, sigmas: sigmas)
        case .dpmpp2SAncestral: return try run.sampleDPMPP2SAncestral(x, sigmas: sigmas, eta: eta, sNoise: sNoise)
        case .dpmpp2M: return try run.sampleDPMPP2M(x, sigmas: sigmas)
        case .dpmppSDE: return try run.sampleDPMPPSDE(x, sigmas: sigmas, eta: eta, sNoise: sNoise)
        case let .dpmpp2MSDE(heun):
            return try run.sampleDPMPP2MSDE(x, sigmas: sigmas, eta: eta, sNoise: sNoise, heun: heun)
        case .dpmpp3MSDE: return try run.sampleDPMPP3MSDE(x, sigmas: sigmas, eta: eta, sNoise: sNoise)
        case .dpmFast:
            return try DPMSolver(run: run).fast(x, tStart: DPMSolver.t(dpmRange.max), tEnd: DPMSolver.t(dpmRange.min),
                                                nfe: dpmSteps, eta: eta, sNoise: sNoise)
        case .dpmAdaptive:
            return try DPMSolver(run: run).adaptive(x, tStart: DPMSolver.t(dpmRange.max),
                                                    tEnd: DPMSolver.t(dpmRange.min), eta: eta, sNoise: 1,
                                                    total: dpmSteps)
        case .restart: return try run.sampleRestart(x, sigmas: sigmas)
        case .lcm: return try run.sampleLCM(x, sigmas: sigmas)
        case .ddim, .ddimCFGPlusPlus, .plms, .uniPC:
            throw SamplingError.invalidParameter("\(sampler.name) runs on timesteps, not sigmas")
        }
    }

    private func runTimesteps(_ x: Tensor, timesteps: [Int], img2img: Bool, run: SamplingRun) throws -> Tensor {
        let eta = Double(run.parameters.eta ?? 0)
        switch sampler.algorithm {
        case .ddim: return try run.sampleDDIM(x, timesteps: timesteps, schedule: model, eta: eta)
        case .ddimCFGPlusPlus: return try run.sampleDDIMCFGPlusPlus(x, timesteps: timesteps, schedule: model, eta: eta)
        case .plms: return try run.samplePLMS(x, timesteps: timesteps, schedule: model)
        case .uniPC:
            let tStart = img2img ? Double(Float(timesteps[timesteps.count - 1]) / 1000 + 1 / 1000) : nil
            return try run.sampleUniPC(x, steps: timesteps.count, schedule: model, options: run.parameters.uniPC,
                                       tStart: tStart)
        default:
            throw SamplingError.invalidParameter("\(sampler.name) runs on sigmas, not timesteps")
        }
    }
}
