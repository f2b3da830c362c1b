import TensorCore

/// The Stable Diffusion 1.x denoising UNet in ldm's module layout, read from a `WeightReader` scoped at
/// `model.diffusion_model`.
///
/// Matches: ldm/modules/diffusionmodules/openaimodel.py UNetModel (SD1 configuration: no class labels,
/// use_spatial_transformer, legacy heads). Keys: `time_embed.{0,2}`, `input_blocks.N.M`, `middle_block.{0,1,2}`,
/// `output_blocks.N.M`, `out.{0,2}`.
///
/// The forward pass is independent of the batch size: CFG runs cond and uncond as one batch of 2.
public struct UNetModel: Sendable {
    enum InputBlock: Sendable {
        case conv(Conv2d)
        case res(ResBlock, SpatialTransformer?)
        case down(Downsample)
    }

    struct OutputBlock: Sendable {
        let res: ResBlock
        let transformer: SpatialTransformer?
        let upsample: Upsample?
    }

    public let config: UNetConfig
    let timeEmbed0: Linear
    let timeEmbed2: Linear
    let inputBlocks: [InputBlock]
    let middle: (ResBlock, SpatialTransformer, ResBlock)
    let outputBlocks: [OutputBlock]
    let outNorm: GroupNorm
    let outConv: Conv2d

    /// Builds the network; `config` nil detects it from the shapes under `w`.
    public init(_ w: WeightReader, config: UNetConfig? = nil) throws {
        let cfg = try config ?? UNetConfig.detect(from: w)
        self.config = cfg
        let mc = cfg.modelChannels, embDim = 4 * mc
        timeEmbed0 = try Linear(w["time_embed"][0], inFeatures: mc, outFeatures: embDim)
        timeEmbed2 = try Linear(w["time_embed"][2], inFeatures: embDim, outFeatures: embDim)

        func transformer(_ w: WeightReader, _ channels: Int) throws -> SpatialTransformer {
            let heads = cfg.heads(channels: channels)
            return try SpatialTransformer(w, channels: channels, heads: heads, headDim: channels / heads,
                                          contextDim: cfg.contextDim, depth: cfg.transformerDepth)
        }

        var blocks: [InputBlock] = [.conv(try Conv2d(w["input_blocks"][0][0], inChannels: cfg.inChannels,
                                                     outChannels: mc, kernel: 3, padding: 1))]
        var skipChannels = [mc]
        var ch = mc
        for (level, mult) in cfg.channelMult.enumerated() {
            for _ in 0..<cfg.numResBlocks {
                let bw = w["input_blocks"][blocks.count]
                let res = try ResBlock(bw[0], inChannels: ch, outChannels: mult * mc, embeddingChannels: embDim)
                ch = mult * mc
                let attn = cfg.attentionLevels[level] ? try transformer(bw[1], ch) : nil
                blocks.append(.res(res, attn))
                skipChannels.append(ch)
            }
            if level != cfg.channelMult.count - 1 {
                blocks.append(.down(try Downsample(w["input_blocks"][blocks.count][0], channels: ch)))
                skipChannels.append(ch)
            }
        }
        inputBlocks = blocks

        let mw = w["middle_block"]
        middle = (try ResBlock(mw[0], inChannels: ch, outChannels: ch, embeddingChannels: embDim),
                  try transformer(mw[1], ch),
                  try ResBlock(mw[2], inChannels: ch, outChannels: ch, embeddingChannels: embDim))

        var outs: [OutputBlock] = []
        for (level, mult) in cfg.channelMult.enumerated().reversed() {
            for i in 0...cfg.numResBlocks {
                let bw = w["output_blocks"][outs.count]
                let skip = skipChannels.removeLast()
                let res = try ResBlock(bw[0], inChannels: ch + skip, outChannels: mult * mc, embeddingChannels: embDim)
                ch = mult * mc
                let attn = cfg.attentionLevels[level] ? try transformer(bw[1], ch) : nil
                let up = level != 0 && i == cfg.numResBlocks
                    ? try Upsample(bw[attn == nil ? 1 : 2], channels: ch) : nil
                outs.append(OutputBlock(res: res, transformer: attn, upsample: up))
            }
        }
        outputBlocks = outs
        outNorm = try GroupNorm(w["out"][0], channels: ch)
        outConv = try Conv2d(w["out"][2], inChannels: ch, outChannels: cfg.outChannels, kernel: 3, padding: 1)
    }

    /// Number of skip tensors (and of `downResiduals` a ControlNet supplies): one per input block.
    public var inputBlockCount: Int { inputBlocks.count }

    /// Predicts the noise. `x: [B, inChannels, h, w]` (h, w divisible by 2^downsamplings), `timesteps`: B values
    /// (or one, shared by the batch), `context: [B, T, contextDim]` → `[B, outChannels, h, w]`.
    ///
    /// `downResiduals` (one per input block, shaped like its output) and `midResidual` (shaped like the middle
    /// block's output) are added to the skips and to the middle output, as ControlNet's residuals are.
    public func callAsFunction(_ x: Tensor, timesteps: [Float], context: Tensor,
                               downResiduals: [Tensor]? = nil, midResidual: Tensor? = nil) throws -> Tensor {
        try validate(x, timesteps: timesteps, context: context, downResiduals: downResiduals)
        let batch = x.shape[0]
        let t = timesteps.count == batch ? timesteps : Array(repeating: timesteps[0], count: batch)
        // emb = time_embed(timestep_embedding(t)); every ResBlock applies SiLU first, so do it once here.
        let emb = timeEmbed2(timeEmbed0(timestepEmbedding(t, dim: config.modelChannels)).siluFast()).siluFast()

        var skips: [Tensor] = []
        skips.reserveCapacity(inputBlocks.count)
        var h = x
        for (i, block) in inputBlocks.enumerated() {
            switch block {
            case .conv(let conv): h = conv(h)
            case .res(let res, let attn):
                h = res(h, activatedEmbedding: emb)
                if let attn { h = attn(h, context: context) }
            case .down(let down): h = down(h)
            }
            if let residual = downResiduals?[i] { skips.append(h + residual) } else { skips.append(h) }
        }
        h = middle.0(h, activatedEmbedding: emb)
        h = middle.1(h, context: context)
        h = middle.2(h, activatedEmbedding: emb)
        if let midResidual {
            guard midResidual.shape == h.shape else {
                throw TensorError.shapeMismatch(op: "UNet midResidual", expected: h.shape, got: midResidual.shape)
            }
            h += midResidual
        }
        for block in outputBlocks {
            let skip = skips.removeLast()
            // Latent sizes that are not multiples of 2^downsamplings: A1111 resizes the upsampled path to the skip's
            // size (nearest) before concatenating (modules/sd_hijack_unet.py TorchHijack.cat).
            if h.shape[2] != skip.shape[2] || h.shape[3] != skip.shape[3] {
                h = h.resizedNearest(height: skip.shape[2], width: skip.shape[3])
            }
            h = block.res(Tensor.concat([h, skip], axis: 1), activatedEmbedding: emb)
            if let attn = block.transformer { h = attn(h, context: context) }
            if let up = block.upsample { h = up(h) }
        }
        return outConv(h.groupNormFast(groups: outNorm.groups, weight: outNorm.weight, bias: outNorm.bias,
                                       eps: outNorm.eps, silu: true))
    }

    /// Output shapes of the input blocks for an input of `h × w` and batch `batch` (what `downResiduals` must be).
    public func skipShapes(batch: Int, height: Int, width: Int) -> [[Int]] {
        var (hh, ww, ch) = (height, width, config.modelChannels)
        return inputBlocks.map { block in
            switch block {
            case .conv: break
            case .res(let res, _): ch = res.outChannels
            case .down: hh = (hh + 1) / 2; ww = (ww + 1) / 2
            }
            return [batch, ch, hh, ww]
        }
    }

    private func validate(_ x: Tensor, timesteps: [Float], context: Tensor, downResiduals: [Tensor]?) throws {
        guard x.rank == 4, x.shape[1] == config.inChannels else {
            throw TensorError.shapeMismatch(op: "UNet input", expected: [-1, config.inChannels, -1, -1], got: x.shape)
        }
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        guard height > 0, width > 0 else {
            throw TensorError.invalid("UNet input \(height)×\(width) is empty")
        }
        guard timesteps.count == batch || timesteps.count == 1 else {
            throw TensorError.invalid("UNet: \(timesteps.count) timesteps for a batch of \(batch)")
        }
        guard context.rank == 3, context.shape[0] == batch, context.shape[2] == config.contextDim else {
            throw TensorError.shapeMismatch(op: "UNet context", expected: [batch, -1, config.contextDim],
                                            got: context.shape)
        }
        if let downResiduals {
            let expected = skipShapes(batch: batch, height: height, width: width)
            guard downResiduals.count == expected.count else {
                throw TensorError.invalid("UNet: \(downResiduals.count) down residuals, expected \(expected.count)")
            }
            for (r, e) in zip(downResiduals, expected) where r.shape != e {
                throw TensorError.shapeMismatch(op: "UNet down residual", expected: e, got: r.shape)
            }
        }
    }
}
