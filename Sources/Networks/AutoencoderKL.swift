import Foundation
import TensorCore

/// Hyper-parameters of an ldm `AutoencoderKL`, read from the tensor shapes of a checkpoint.
public struct VAEConfig: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var baseChannels: Int
    public var channelMult: [Int]
    public var numResBlocks: Int
    public var latentChannels: Int
    /// Multiplies the posterior sample to give the latent the samplers work on (SD1: 0.18215; not in the weights).
    public var scaleFactor: Float

    /// Stable Diffusion 1.x (v1-inference.yaml first_stage_config).
    public static let sd1 = VAEConfig(inChannels: 3, outChannels: 3, baseChannels: 128, channelMult: [1, 2, 4, 4],
                                      numResBlocks: 2, latentChannels: 4, scaleFactor: 0.18215)

    public init(inChannels: Int, outChannels: Int, baseChannels: Int, channelMult: [Int], numResBlocks: Int,
                latentChannels: Int, scaleFactor: Float) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.baseChannels = baseChannels
        self.channelMult = channelMult
        self.numResBlocks = numResBlocks
        self.latentChannels = latentChannels
        self.scaleFactor = scaleFactor
    }

    /// Reads the configuration from the shapes under `w` (scoped at `first_stage_model`).
    public static func detect(from w: WeightReader, scaleFactor: Float = 0.18215) throws -> VAEConfig {
        func shape(_ key: String) throws -> [Int] {
            guard let s = w.shape(key), s.count == 4 else { throw TensorError.missingKey(w.key(key)) }
            return s
        }
        let convIn = try shape("encoder.conv_in.weight"), convOut = try shape("decoder.conv_out.weight")
        let post = try shape("post_quant_conv.weight")
        let ch = convIn[0]
        var mult: [Int] = []
        while let s = w.shape("encoder.down.\(mult.count).block.0.conv1.weight") {
            guard s[0] % ch == 0 else {
                throw TensorError.invalid("\(w.key("encoder.down.\(mult.count)")): width \(s[0]) is not a multiple of \(ch)")
            }
            mult.append(s[0] / ch)
        }
        var blocks = 0
        while w.contains("encoder.down.0.block.\(blocks).conv1.weight") { blocks += 1 }
        guard !mult.isEmpty, blocks > 0 else { throw TensorError.missingKey(w.key("encoder.down.0.block.0.conv1.weight")) }
        return VAEConfig(inChannels: convIn[1], outChannels: convOut[0], baseChannels: ch, channelMult: mult,
                         numResBlocks: blocks, latentChannels: post[0], scaleFactor: scaleFactor)
    }
}

/// The diagonal Gaussian the encoder outputs, per latent element.
///
/// Matches: ldm/modules/distributions/distributions.py DiagonalGaussianDistribution (logvar clamped to [−30, 20]).
public struct LatentDistribution: Sendable {
    /// `[B, z, h, w]`, unscaled.
    public let mean: Tensor
    /// `[B, z, h, w]`, clamped.
    public let logvar: Tensor
    public let scaleFactor: Float

    /// The scaled latent the samplers start from: `scaleFactor · (mean + exp(logvar / 2) · noise)`, `noise` of
    /// the latent's shape (A1111 `get_first_stage_encoding(encode_first_stage(x))`).
    public func sample(noise: Tensor) throws -> Tensor {
        guard noise.shape == mean.shape else {
            throw TensorError.shapeMismatch(op: "VAE posterior noise", expected: mean.shape, got: noise.shape)
        }
        var out = mean
        out.withUnsafeMutableBufferPointer { o in
            logvar.withUnsafeBufferPointer { lv in
                noise.withUnsafeBufferPointer { nz in
                    for i in 0..<o.count { o[i] = scaleFactor * (o[i] + expf(0.5 * lv[i]) * nz[i]) }
                }
            }
        }
        return out
    }

    /// `scaleFactor · mean`: the deterministic scaled latent.
    public var scaledMean: Tensor { mean * scaleFactor }
}

/// The SD1 KL autoencoder in ldm's layout, read from a `WeightReader` scoped at `first_stage_model`.
///
/// Matches: ldm/models/autoencoder.py AutoencoderKL with ldm/modules/diffusionmodules/model.py Encoder / Decoder
/// (no attention but the middle block, double_z). Keys: `encoder.*`, `decoder.*`, `quant_conv`, `post_quant_conv`.
///
/// Latent API: `decode` takes the *scaled* latent the samplers produce (it applies `1 / scaleFactor`, then
/// `post_quant_conv` and the decoder) and returns pixels in about [−1, 1], unclamped, `[B, 3, 8h, 8w]`.
/// `encode` takes pixels in [−1, 1] and returns the unscaled posterior; `LatentDistribution.sample(noise:)` /
/// `scaledMean` give the scaled latent.
public struct AutoencoderKL: Sendable {
    struct Level: Sendable {
        let blocks: [VAEResnetBlock]
        let down: VAEDownsample?
        let up: Upsample?
    }

    struct Middle: Sendable {
        let block1: VAEResnetBlock
        let attention: VAEAttentionBlock
        let block2: VAEResnetBlock

        init(_ w: WeightReader, channels: Int) throws {
            block1 = try VAEResnetBlock(w["block_1"], inChannels: channels, outChannels: channels)
            attention = try VAEAttentionBlock(w["attn_1"], channels: channels)
            block2 = try VAEResnetBlock(w["block_2"], inChannels: channels, outChannels: channels)
        }

        func callAsFunction(_ x: Tensor) -> Tensor { block2(attention(block1(x))) }
    }

    public let config: VAEConfig
    let encoderIn: Conv2d
    let encoderLevels: [Level]
    let encoderMid: Middle
    let encoderNorm: GroupNorm
    let encoderOut: Conv2d
    let quantConv: Conv2d
    let postQuantConv: Conv2d
    let decoderIn: Conv2d
    let decoderMid: Middle
    /// Decoder levels in execution order (ldm `up.N` from the last N down to 0).
    let decoderLevels: [Level]
    let decoderNorm: GroupNorm
    let decoderOut: Conv2d

    /// Builds the autoencoder; `config` nil detects it from the shapes under `w`.
    public init(_ w: WeightReader, config: VAEConfig? = nil) throws {
        let cfg = try config ?? VAEConfig.detect(from: w)
        self.config = cfg
        let ch = cfg.baseChannels, z = cfg.latentChannels, last = cfg.channelMult.count - 1
        let enc = w["encoder"], dec = w["decoder"]

        encoderIn = try Conv2d(enc["conv_in"], inChannels: cfg.inChannels, outChannels: ch, kernel: 3, padding: 1)
        var width = ch
        var levels: [Level] = []
        for (i, mult) in cfg.channelMult.enumerated() {
            let lw = enc["down"][i]
            var blocks: [VAEResnetBlock] = []
            for j in 0..<cfg.numResBlocks {
                blocks.append(try VAEResnetBlock(lw["block"][j], inChannels: width, outChannels: ch * mult))
                width = ch * mult
            }
            let down = i != last ? try VAEDownsample(lw["downsample"], channels: width) : nil
            levels.append(Level(blocks: blocks, down: down, up: nil))
        }
        encoderLevels = levels
        encoderMid = try Middle(enc["mid"], channels: width)
        encoderNorm = try GroupNorm(enc["norm_out"], channels: width, eps: 1e-6)
        encoderOut = try Conv2d(enc["conv_out"], inChannels: width, outChannels: 2 * z, kernel: 3, padding: 1)
        quantConv = try Conv2d(w["quant_conv"], inChannels: 2 * z, outChannels: 2 * z, kernel: 1)

        postQuantConv = try Conv2d(w["post_quant_conv"], inChannels: z, outChannels: z, kernel: 1)
        width = ch * cfg.channelMult[last]
        decoderIn = try Conv2d(dec["conv_in"], inChannels: z, outChannels: width, kernel: 3, padding: 1)
        decoderMid = try Middle(dec["mid"], channels: width)
        levels = []
        for (i, mult) in cfg.channelMult.enumerated().reversed() {
            let lw = dec["up"][i]
            var blocks: [VAEResnetBlock] = []
            for j in 0...cfg.numResBlocks {
                blocks.append(try VAEResnetBlock(lw["block"][j], inChannels: width, outChannels: ch * mult))
                width = ch * mult
            }
            let up = i != 0 ? try Upsample(lw["upsample"], channels: width) : nil
            levels.append(Level(blocks: blocks, down: nil, up: up))
        }
        decoderLevels = levels
        decoderNorm = try GroupNorm(dec["norm_out"], channels: width, eps: 1e-6)
        decoderOut = try Conv2d(dec["conv_out"], inChannels: width, outChannels: cfg.outChannels, kernel: 3,
                                padding: 1)
    }

    /// Spatial factor between pixels and latents (8 for SD1).
    public var downscale: Int { 1 << (config.channelMult.count - 1) }

    /// Scaled latent `[B, z, h, w]` → pixels `[B, out, h·8, w·8]` in about [−1, 1] (not clamped).
    /// Matches: ldm/models/diffusion/ddpm.py LatentDiffusion.decode_first_stage (1/scale_factor, then decode).
    public func decode(_ latent: Tensor) throws -> Tensor {
        guard latent.rank == 4, latent.shape[1] == config.latentChannels else {
            throw TensorError.shapeMismatch(op: "VAE decode input", expected: [-1, config.latentChannels, -1, -1],
                                            got: latent.shape)
        }
        var h = decoderIn(postQuantConv(latent * (1 / config.scaleFactor)))   // [B, C, h, w]
        h = decoderMid(h)
        for level in decoderLevels {
            for block in level.blocks { h = block(h) }
            if let up = level.up { h = up(h) }
        }
        return decoderOut(h.groupNormFast(groups: decoderNorm.groups, weight: decoderNorm.weight,
                                          bias: decoderNorm.bias, eps: decoderNorm.eps, silu: true))
    }

    /// Pixels `[B, in, H, W]` in [−1, 1] (H, W multiples of 8) → the posterior over unscaled latents `[B, z, H/8, W/8]`.
    /// Matches: ldm/models/autoencoder.py AutoencoderKL.encode
    public func encode(_ image: Tensor) throws -> LatentDistribution {
        guard image.rank == 4, image.shape[1] == config.inChannels,
              image.shape[2] % downscale == 0, image.shape[3] % downscale == 0 else {
            throw TensorError.shapeMismatch(op: "VAE encode input (sizes multiples of \(downscale))",
                                            expected: [-1, config.inChannels, -1, -1], got: image.shape)
        }
        var h = encoderIn(image)
        for level in encoderLevels {
            for block in level.blocks { h = block(h) }
            if let down = level.down { h = down(h) }
        }
        h = encoderMid(h)
        h = encoderOut(h.groupNormFast(groups: encoderNorm.groups, weight: encoderNorm.weight, bias: encoderNorm.bias,
                                       eps: encoderNorm.eps, silu: true))
        let moments = quantConv(h).chunked(2, axis: 1)                    // 2 × [B, z, h, w]
        return LatentDistribution(mean: moments[0], logvar: moments[1].map { min(max($0, -30), 20) },
                                  scaleFactor: config.scaleFactor)
    }
}
