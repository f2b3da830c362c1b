import TensorCore

/// Multi-head attention with separate query / key / value projections (no bias) and a biased output projection.
///
/// Matches: ldm/modules/attention.py CrossAttention. Keys: `to_q`, `to_k`, `to_v`, `to_out.0`.
public struct CrossAttention: Sendable {
    public let heads: Int
    public let toQ: Linear
    public let toK: Linear
    public let toV: Linear
    public let toOut: Linear

    public init(_ w: WeightReader, queryDim: Int, contextDim: Int, heads: Int, headDim: Int) throws {
        let inner = heads * headDim
        self.heads = heads
        toQ = try Linear(w["to_q"], inFeatures: queryDim, outFeatures: inner, bias: false)
        toK = try Linear(w["to_k"], inFeatures: contextDim, outFeatures: inner, bias: false)
        toV = try Linear(w["to_v"], inFeatures: contextDim, outFeatures: inner, bias: false)
        toOut = try Linear(w["to_out"][0], inFeatures: inner, outFeatures: queryDim)
    }

    /// `t += attention(x, context ?? x)`. `x, t: [B, T, C]`, `context: [B, S, ctx]`.
    func accumulate(_ x: Tensor, context: Tensor?, into t: inout Tensor) {
        let source = context ?? x
        let out = multiHeadAttention(query: toQ(x), key: toK(source), value: toV(source), heads: heads)
        toOut.accumulate(out, into: &t)                  // [B, T, C]
    }
}

/// GEGLU feed-forward: `net.2(a · gelu(gate))` with `(a, gate) = net.0.proj(x)` split in halves.
///
/// Matches: ldm/modules/attention.py FeedForward (glu True, mult 4) and GEGLU. Keys: `net.0.proj`, `net.2`.
public struct FeedForward: Sendable {
    public let projIn: Linear    // [2·inner, dim]
    public let projOut: Linear   // [dim, inner]

    public init(_ w: WeightReader, dim: Int, mult: Int = 4) throws {
        let inner = dim * mult
        projIn = try Linear(w["net"][0]["proj"], inFeatures: dim, outFeatures: 2 * inner)
        projOut = try Linear(w["net"][2], inFeatures: inner, outFeatures: dim)
    }

    /// `t += ff(x)`. `x, t: [B, T, dim]`.
    func accumulate(_ x: Tensor, into t: inout Tensor) {
        projOut.accumulate(projIn(x).gegluFast(), into: &t)   // [B, T, 2·inner] → [B, T, inner] → [B, T, dim]
    }
}

/// Self-attention, cross-attention and feed-forward, each pre-normed and residual.
///
/// Matches: ldm/modules/attention.py BasicTransformerBlock (disable_self_attn False).
/// Keys: `attn1`, `attn2`, `ff`, `norm1`, `norm2`, `norm3`.
public struct BasicTransformerBlock: Sendable {
    public let attn1: CrossAttention
    public let attn2: CrossAttention
    public let ff: FeedForward
    public let norm1: LayerNorm
    public let norm2: LayerNorm
    public let norm3: LayerNorm

    public init(_ w: WeightReader, dim: Int, heads: Int, headDim: Int, contextDim: Int) throws {
        attn1 = try CrossAttention(w["attn1"], queryDim: dim, contextDim: dim, heads: heads, headDim: headDim)
        attn2 = try CrossAttention(w["attn2"], queryDim: dim, contextDim: contextDim, heads: heads, headDim: headDim)
        ff = try FeedForward(w["ff"], dim: dim)
        norm1 = try LayerNorm(w["norm1"], channels: dim)
        norm2 = try LayerNorm(w["norm2"], channels: dim)
        norm3 = try LayerNorm(w["norm3"], channels: dim)
    }

    /// Updates the tokens `t: [B, T, dim]` in place; `context: [B, S, ctx]`.
    public func callAsFunction(_ t: inout Tensor, context: Tensor) {
        attn1.accumulate(t.layerNormFast(weight: norm1.weight, bias: norm1.bias, eps: norm1.eps), context: nil,
                         into: &t)
        attn2.accumulate(t.layerNormFast(weight: norm2.weight, bias: norm2.bias, eps: norm2.eps), context: context,
                         into: &t)
        ff.accumulate(t.layerNormFast(weight: norm3.weight, bias: norm3.bias, eps: norm3.eps), into: &t)
    }
}

/// Image ↔ token transformer of the UNet: GroupNorm, 1×1 projection in, transformer blocks, projection out, residual.
///
/// Matches: ldm/modules/attention.py SpatialTransformer. `proj_in` / `proj_out` may be stored as 1×1 convolutions
/// (`[O, I, 1, 1]`, SD1) or linear layers (`[O, I]`, `use_linear` models); both are the same matrix here.
/// Keys: `norm`, `proj_in`, `transformer_blocks.N`, `proj_out`.
public struct SpatialTransformer: Sendable {
    public let norm: GroupNorm
    public let projIn: Linear
    public let blocks: [BasicTransformerBlock]
    public let projOut: Linear

    /// `depth` nil counts the `transformer_blocks.N` the file holds.
    public init(_ w: WeightReader, channels: Int, heads: Int, headDim: Int, contextDim: Int, depth: Int? = nil) throws {
        let inner = heads * headDim
        norm = try GroupNorm(w["norm"], channels: channels, eps: 1e-6)
        projIn = try Linear(w["proj_in"], inFeatures: channels, outFeatures: inner)
        let n = depth ?? SpatialTransformer.depth(in: w)
        guard n > 0 else { throw TensorError.missingKey(w["transformer_blocks"][0].key("norm1.weight")) }
        blocks = try (0..<n).map {
            try BasicTransformerBlock(w["transformer_blocks"][$0], dim: inner, heads: heads, headDim: headDim,
                                      contextDim: contextDim)
        }
        projOut = try Linear(w["proj_out"], inFeatures: inner, outFeatures: channels)
    }

    /// Number of `transformer_blocks.N` present under `w`.
    static func depth(in w: WeightReader) -> Int {
        var n = 0
        while w["transformer_blocks"][n].contains("norm1.weight") { n += 1 }
        return n
    }

    /// `x: [B, C, H, W]`, `context: [B, S, ctx]` → `[B, C, H, W]`.
    public func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        let normed = x.groupNormFast(groups: norm.groups, weight: norm.weight, bias: norm.bias, eps: norm.eps,
                                     silu: false)
        var t = projIn.imageToTokens(normed)                 // [B, HW, inner]
        for block in blocks { block(&t, context: context) }
        return projOut.tokensToImage(t, adding: x)           // [B, C, H, W]
    }
}
