import TensorCore

/// The VAE's residual block (no timestep input).
///
/// Matches: ldm/modules/diffusionmodules/model.py ResnetBlock (temb_channels 0, conv_shortcut False).
/// Keys: `norm1`, `conv1`, `norm2`, `conv2`, `nin_shortcut` (1×1, only when the channel count changes).
public struct VAEResnetBlock: Sendable {
    public let norm1: GroupNorm
    public let conv1: Conv2d
    public let norm2: GroupNorm
    public let conv2: Conv2d
    public let shortcut: Conv2d?

    public init(_ w: WeightReader, inChannels: Int, outChannels: Int) throws {
        norm1 = try GroupNorm(w["norm1"], channels: inChannels, eps: 1e-6)
        conv1 = try Conv2d(w["conv1"], inChannels: inChannels, outChannels: outChannels, kernel: 3, padding: 1)
        norm2 = try GroupNorm(w["norm2"], channels: outChannels, eps: 1e-6)
        conv2 = try Conv2d(w["conv2"], inChannels: outChannels, outChannels: outChannels, kernel: 3, padding: 1)
        shortcut = inChannels == outChannels ? nil
            : try Conv2d(w["nin_shortcut"], inChannels: inChannels, outChannels: outChannels, kernel: 1)
    }

    /// `[B, Cin, H, W] → [B, Cout, H, W]`
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = conv1(x.groupNormFast(groups: norm1.groups, weight: norm1.weight, bias: norm1.bias, eps: norm1.eps,
                                      silu: true))
        var out = conv2(h.groupNormFast(groups: norm2.groups, weight: norm2.weight, bias: norm2.bias, eps: norm2.eps,
                                        silu: true))
        out += shortcut.map { $0(x) } ?? x
        return out
    }
}

/// Single-head self-attention over the pixels of the VAE's middle block, with 1×1-convolution projections.
///
/// Matches: ldm/modules/diffusionmodules/model.py AttnBlock ("vanilla"). Keys: `norm`, `q`, `k`, `v`, `proj_out`
/// (stored as `[C, C, 1, 1]`; `[C, C]` linear weights, as diffusers-converted files hold, are accepted too).
public struct VAEAttentionBlock: Sendable {
    public let norm: GroupNorm
    public let q: Linear
    public let k: Linear
    public let v: Linear
    public let projOut: Linear

    public init(_ w: WeightReader, channels: Int) throws {
        norm = try GroupNorm(w["norm"], channels: channels, eps: 1e-6)
        q = try Linear(w["q"], inFeatures: channels, outFeatures: channels)
        k = try Linear(w["k"], inFeatures: channels, outFeatures: channels)
        v = try Linear(w["v"], inFeatures: channels, outFeatures: channels)
        projOut = try Linear(w["proj_out"], inFeatures: channels, outFeatures: channels)
    }

    /// `[B, C, H, W] → [B, C, H, W]`
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = x.groupNormFast(groups: norm.groups, weight: norm.weight, bias: norm.bias, eps: norm.eps, silu: false)
        let attended = multiHeadAttention(query: q.imageToTokens(h), key: k.imageToTokens(h),
                                          value: v.imageToTokens(h), heads: 1)   // [B, HW, C]
        return projOut.tokensToImage(attended, adding: x)
    }
}

/// The encoder's downsampling: zero padding on the right and bottom only, then a stride-2 3×3 convolution.
///
/// Matches: ldm/modules/diffusionmodules/model.py Downsample (with_conv True: pad (0, 1, 0, 1)). Key: `conv`.
public struct VAEDownsample: Sendable {
    public let conv: Conv2d

    public init(_ w: WeightReader, channels: Int) throws {
        conv = try Conv2d(w["conv"], inChannels: channels, outChannels: channels, kernel: 3, stride: 2, padding: 0)
    }

    /// `[B, C, H, W] → [B, C, H/2, W/2]` (even sizes).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let padded = Tensor(uninitialized: [n, c, h + 1, w + 1]) { out in   // [B, C, H+1, W+1]
            x.withUnsafeBufferPointer { src in
                for p in 0..<(n * c) {
                    let s = src.baseAddress! + p * h * w, d = out.baseAddress! + p * (h + 1) * (w + 1)
                    for y in 0..<h {
                        (d + y * (w + 1)).update(from: s + y * w, count: w)
                        d[y * (w + 1) + w] = 0
                    }
                    (d + h * (w + 1)).update(repeating: 0, count: w + 1)
                }
            }
        }
        return conv(padded)
    }
}
