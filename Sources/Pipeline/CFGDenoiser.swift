import Sampling

/// The UNet as guidance calls it: predicted noise for inputs already scaled by c_in, at DDPM timestep `t`
/// (fractional), with cross-attention `context`. `x: [N, C, h, w]`, `context: [N, T, ctx]` → `[N, 4, h, w]`.
public typealias ConditionedEps = (_ x: Tensor, _ t: Float, _ context: Tensor) throws -> Tensor

/// Classifier-free guidance with A1111's batching and `AND` composition, as a `Denoiser` for the samplers.
///
/// Per call (one sampling step): each image's `AND` parts are evaluated at the current step's encodings together
/// with its unconditional row (one UNet call when cond and uncond have the same token count, else separate
/// calls), and combined as `uncond + Σ wᵢ·scale·(condᵢ − uncond)`.
///
/// A1111 sends the whole batch through one UNet call; here each image gets its own calls, so that an image of a
/// batch is bit-identical to the same seed generated alone (its infotext, pasted back, reproduces it exactly).
/// Matches: modules/sd_samplers_cfg_denoiser.py CFGDenoiser.forward, combine_denoised
public final class CFGDenoiser: GuidanceControl, @unchecked Sendable {
    public let model: ConditionedEps
    public let schedule: NoiseSchedule
    public let prompts: [ComposablePrompt]        // one per image
    public let negative: [PromptSchedule]         // one per image
    public let scale: Float
    /// Multiplies `scale` (A1111 `cond_scale_miltiplier`; DDIM CFG++ sets 1/12.5 for its run).
    public var scaleMultiplier: Float = 1
    /// The unconditional x0 prediction of the last call (DDIM CFG++ needs it).
    public private(set) var lastUncond: Tensor?
    /// Sampling step of the next call (A1111 counts denoiser calls, so second-order samplers advance it twice).
    public private(set) var step = 0

    public init(model: @escaping ConditionedEps, schedule: NoiseSchedule, prompts: [ComposablePrompt],
                negative: [PromptSchedule], scale: Float) {
        precondition(prompts.count == negative.count, "one prompt and one negative prompt per image")
        self.model = model
        self.schedule = schedule
        self.prompts = prompts
        self.negative = negative
        self.scale = scale
    }

    /// x: `[B, 4, h, w]` at noise level `sigma` → guided x0 prediction `[B, 4, h, w]`.
    public func denoise(_ x: Tensor, sigma: Float) throws -> Tensor {
        let b = x.shape[0]
        guard b == prompts.count else {
            throw TensorError.shapeMismatch(op: "CFG batch", expected: [prompts.count], got: [b])
        }
        let cIn = 1 / (sigma * sigma + 1).squareRoot()
        let t = schedule.sigmaToT(sigma)
        let guidanceScale = scale * scaleMultiplier
        var out = [Tensor](), uncondX0 = [Tensor]()
        for (i, image) in x.chunked(b, axis: 0).enumerated() {
            let parts = prompts[i].parts
            let cond = stackConds(parts.map { $0.schedule.cond(atStep: step) })   // [P, T, C]
            let u = negative[i].cond(atStep: step)
            let uncond = u.reshaped([1] + u.shape)                                      // [1, T', C]
            let xCond = Tensor.concat(Array(repeating: image, count: parts.count), axis: 0)   // [P, 4, h, w]
            let epsCond: Tensor, epsUncond: Tensor
            if cond.shape[1] == uncond.shape[1] {
                let both = try model(Tensor.concat([xCond, image], axis: 0) * cIn, t,
                                     Tensor.concat([cond, uncond], axis: 0))               // [P + 1, 4, h, w]
                epsCond = both.slice(axis: 0, 0..<parts.count)
                epsUncond = both.slice(axis: 0, parts.count..<(parts.count + 1))
            } else {
                epsCond = try model(xCond * cIn, t, cond)
                epsUncond = try model(image * cIn, t, uncond)
            }
            // x0 = x − σ·eps for every row; guidance on x0 as A1111 does.
            let x0Cond = xCond.adding(epsCond, scaledBy: -sigma).chunked(parts.count, axis: 0)
            let x0Uncond = image.adding(epsUncond, scaledBy: -sigma)
            var d = x0Uncond
            for (row, part) in parts.enumerated() {
                d = d.adding(x0Cond[row] - x0Uncond, scaledBy: part.weight * guidanceScale)
            }
            out.append(d)
            uncondX0.append(x0Uncond)
        }
        step += 1
        lastUncond = Tensor.concat(uncondX0, axis: 0)
        return Tensor.concat(out, axis: 0)
    }

    /// This guidance as the samplers' `Denoiser` closure.
    public var denoiser: Denoiser { { [self] x, sigma in try self.denoise(x, sigma: sigma) } }
}
