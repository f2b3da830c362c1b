import Foundation
import TensorCore

/// The UNet residual block with timestep conditioning.
///
/// Matches: ldm/modules/diffusionmodules/openaimodel.py ResBlock (use_scale_shift_norm False, no up/down)
/// Keys: `in_layers.0` (GroupNorm), `in_layers.2` (conv 3×3), `emb_layers.1` (Linear), `out_layers.0`
/// (GroupNorm), `out_layers.3` (conv 3×3), `skip_connection` (conv 1×1, only when the channel count changes).
public struct ResBlock: Sendable {
    public let inNorm: GroupNorm
    public let inConv: Conv2d
    public let embedding: Linear
    public let outNorm: GroupNorm
    public let outConv: Conv2d
    public let skip: Conv2d?

    public init(_ w: WeightReader, inChannels: Int, outChannels: Int, embeddingChannels: Int) throws {
        inNorm = try GroupNorm(w["in_layers"][0], channels: inChannels)
        inConv = try Conv2d(w["in_layers"][2], inChannels: inChannels, outChannels: outChannels, kernel: 3, padding: 1)
        embedding = try Linear(w["emb_layers"][1], inFeatures: embeddingChannels, outFeatures: outChannels)
        outNorm = try GroupNorm(w["out_layers"][0], channels: outChannels)
        outConv = try Conv2d(w["out_layers"][3], inChannels: outChannels, outChannels: outChannels, kernel: 3,
                             padding: 1)
        skip = inChannels == outChannels ? nil
            : try Conv2d(w["skip_connection"], inChannels: inChannels, outChannels: outChannels, kernel: 1)
    }

    public var outChannels: Int { inConv.outChannels }

    /// `x: [B, Cin, H, W]`, `activatedEmbedding: [B, E]` = `silu(time embedding)` → `[B, Cout, H, W]`.
    public func callAsFunction(_ x: Tensor, activatedEmbedding emb: Tensor) -> Tensor {
        var h = inConv(x.groupNormFast(groups: inNorm.groups, weight: inNorm.weight, bias: inNorm.bias,
                                       eps: inNorm.eps, silu: true))         // [B, Cout, H, W]
        let e = embedding(emb)                                                // [B, Cout]
        let planes = h.shape[0] * h.shape[1], plane = h.count / planes
        h.withUnsafeMutableBufferPointer { hb in
            e.withUnsafeBufferPointer { eb in
                for p in 0..<planes {
                    let row = hb.baseAddress! + p * plane, v = eb[p]
                    for i in 0..<plane { row[i] += v }
                }
            }
        }
        var out = outConv(h.groupNormFast(groups: outNorm.groups, weight: outNorm.weight, bias: outNorm.bias,
                                          eps: outNorm.eps, silu: true))      // [B, Cout, H, W]
        out += skip.map { $0(x) } ?? x
        return out
    }
}

/// Stride-2 3×3 convolution that halves the resolution.
///
/// Matches: ldm/modules/diffusionmodules/openaimodel.py Downsample (use_conv True, padding 1). Key: `op`.
public struct Downsample: Sendable {
    public let conv: Conv2d

    public init(_ w: WeightReader, channels: Int) throws {
        conv = try Conv2d(w["op"], inChannels: channels, outChannels: channels, kernel: 3, stride: 2, padding: 1)
    }

    /// `[B, C, H, W] → [B, C, H/2, W/2]`
    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x) }
}

/// Nearest ×2 upsampling followed by a 3×3 convolution.
///
/// Matches: ldm/modules/diffusionmodules/openaimodel.py Upsample (use_conv True). Key: `conv`.
/// The VAE decoder's `upsample` (ldm/modules/diffusionmodules/model.py Upsample) is the same layer.
public struct Upsample: Sendable {
    public let conv: Conv2d

    public init(_ w: WeightReader, channels: Int) throws {
        conv = try Conv2d(w["conv"], inChannels: channels, outChannels: channels, kernel: 3, padding: 1)
    }

    /// `[B, C, H, W] → [B, C, 2H, 2W]`
    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x.upsampleNearest2x()) }
}

/// Sinusoidal timestep features, `[cos(t·f), sin(t·f)]` with `f_i = 10000^(−i/half)`, in Float32 as torch does.
///
/// Matches: ldm/modules/diffusionmodules/util.py timestep_embedding (repeat_only False)
/// `timesteps: [B]` → `[B, dim]`.
public func timestepEmbedding(_ timesteps: [Float], dim: Int, maxPeriod: Float = 10000) -> Tensor {
    let half = dim / 2
    let logPeriod = -Float(log(Double(maxPeriod)))
    let freqs = (0..<half).map { expf(logPeriod * Float($0) / Float(half)) }
    var out = [Float](repeating: 0, count: timesteps.count * dim)  // odd `dim` leaves the last column 0
    for (b, t) in timesteps.enumerated() {
        for i in 0..<half {
            let arg = t * freqs[i]
            out[b * dim + i] = cosf(arg)
            out[b * dim + half + i] = sinf(arg)
        }
    }
    return Tensor(shape: [timesteps.count, dim], scalars: out)
}
