import Foundation
import TensorCore

/// The CLIP text transformer of SD1 checkpoints (`cond_stage_model.transformer.text_model`): token and position
/// embeddings, pre-norm causal self-attention layers with quick-GELU MLPs, final layer norm.
///
/// The configuration comes from the weight shapes: width from the token embedding, context length from the
/// position embedding, depth from the `encoder.layers.N` keys, MLP width from `fc1`, heads = width / 64.
/// Matches: transformers/models/clip/modeling_clip.py CLIPTextTransformer (causal mask, no padding mask)
public struct CLIPTextModel: Sendable {
    public struct Layer: Sendable {
        let norm1: LayerNorm
        let q: Linear, k: Linear, v: Linear, out: Linear
        let norm2: LayerNorm
        let fc1: Linear, fc2: Linear
    }

    public let tokenEmbedding: Tensor      // [V, C]
    public let positionEmbedding: Tensor   // [P, C]
    /// Position of each token slot: the checkpoint's `position_ids` truncated toward zero (as loading them into
    /// transformers' int64 buffer does; merged checkpoints sometimes carry values like 4.9999), else 0..<P.
    public let positionIds: [Int]
    public let layers: [Layer]
    public let finalNorm: LayerNorm
    public let heads: Int

    public var width: Int { tokenEmbedding.shape[1] }
    public var vocabularySize: Int { tokenEmbedding.shape[0] }
    public var contextLength: Int { positionEmbedding.shape[0] }

    /// Reads the model under `w` (scoped at `...text_model`). Every key there is consumed, including the
    /// `embeddings.position_ids` buffer (one id per context slot, each a valid position).
    public init(_ w: WeightReader) throws {
        guard let tok = w.shape("embeddings.token_embedding.weight"), tok.count == 2 else {
            throw TensorError.missingKey(w.key("embeddings.token_embedding.weight"))
        }
        guard let pos = w.shape("embeddings.position_embedding.weight"), pos.count == 2 else {
            throw TensorError.missingKey(w.key("embeddings.position_embedding.weight"))
        }
        let c = tok[1]
        tokenEmbedding = try w.tensor("embeddings.token_embedding.weight", shape: tok)
        positionEmbedding = try w.tensor("embeddings.position_embedding.weight", shape: [pos[0], c])
        if let ids = try w.optionalTensor("embeddings.position_ids") {
            guard ids.count == pos[0] else {
                throw TensorError.shapeMismatch(op: "weight '\(w.key("embeddings.position_ids"))'",
                                                expected: [1, pos[0]], got: ids.shape)
            }
            positionIds = try ids.scalars.map { v in
                guard v.isFinite, v > -1, v < Float(pos[0]) else {
                    throw TensorError.invalid("\(w.key("embeddings.position_ids")) holds \(v), outside 0..<\(pos[0])")
                }
                return Int(v)
            }
        } else {
            positionIds = Array(0..<pos[0])
        }
        let enc = w["encoder"]["layers"]
        var depth = 0
        while enc[depth].contains("layer_norm1.weight") { depth += 1 }
        guard depth > 0 else { throw TensorError.missingKey(enc[0].key("layer_norm1.weight")) }
        guard let fc1 = enc[0].shape("mlp.fc1.weight"), fc1.count == 2 else {
            throw TensorError.missingKey(enc[0].key("mlp.fc1.weight"))
        }
        let inner = fc1[0]
        layers = try (0..<depth).map { i in
            let l = enc[i], a = l["self_attn"]
            return Layer(norm1: try LayerNorm(l["layer_norm1"], channels: c),
                         q: try Linear(a["q_proj"], inFeatures: c, outFeatures: c),
                         k: try Linear(a["k_proj"], inFeatures: c, outFeatures: c),
                         v: try Linear(a["v_proj"], inFeatures: c, outFeatures: c),
                         out: try Linear(a["out_proj"], inFeatures: c, outFeatures: c),
                         norm2: try LayerNorm(l["layer_norm2"], channels: c),
                         fc1: try Linear(l["mlp"]["fc1"], inFeatures: c, outFeatures: inner),
                         fc2: try Linear(l["mlp"]["fc2"], inFeatures: inner, outFeatures: c))
        }
        finalNorm = try LayerNorm(w["final_layer_norm"], channels: c)
        heads = max(1, c / 64)
    }

    /// Encodes token rows `ids` (`B` rows of `T ≤ contextLength` ids) → `[B, T, C]`.
    ///
    /// `clipSkip` = 1 returns the final-normed last layer (`last_hidden_state`); N > 1 returns
    /// `final_layer_norm(hidden_states[-N])`, i.e. the output after `depth + 1 - N` layers (at least none) —
    /// A1111's `CLIP_stop_at_last_layers`.
    ///
    /// `replacements[b]` puts vectors (`[n, C]`, textual-inversion embeddings) in place of the token embeddings of
    /// row `b` from slot `start` on (cut at the row's end); position embeddings are added to them as to tokens.
    /// Matches: modules/sd_hijack_clip.py FrozenCLIPEmbedderWithCustomWords.encode_with_transformers;
    /// modules/sd_hijack.py EmbeddingsWithFixes.forward
    public func callAsFunction(_ ids: [[Int]], replacements: [[(start: Int, vectors: Tensor)]] = [],
                               clipSkip: Int = 1) throws -> Tensor {
        guard let t = ids.first?.count, ids.allSatisfy({ $0.count == t }), t <= contextLength else {
            throw TensorError.invalid("CLIP input rows must share one length ≤ \(contextLength)")
        }
        let b = ids.count, c = width
        let run = max(0, layers.count + 1 - max(1, clipSkip))
        var rows = [Tensor]()
        rows.reserveCapacity(b)
        for (r, row) in ids.enumerated() {
            var x = Tensor(zeros: [t, c])   // [T, C]
            try x.withUnsafeMutableBufferPointer { xb in
                try tokenEmbedding.withUnsafeBufferPointer { eb in
                    try positionEmbedding.withUnsafeBufferPointer { pb in
                        for (i, id) in row.enumerated() {
                            guard id >= 0 && id < vocabularySize else {
                                throw TensorError.invalid("CLIP token id \(id) outside 0..<\(vocabularySize)")
                            }
                            let p = positionIds[i]
                            for j in 0..<c { xb[i * c + j] = eb[id * c + j] + pb[p * c + j] }
                        }
                        for (start, vectors) in r < replacements.count ? replacements[r] : [] {
                            guard vectors.rank == 2, vectors.shape[1] == c, start >= 0 else {
                                throw TensorError.invalid("embedding vectors \(vectors.shape) do not fit CLIP width \(c)")
                            }
                            let n = min(vectors.shape[0], t - start)
                            vectors.withUnsafeBufferPointer { vb in
                                for i in 0..<max(0, n) {
                                    let p = positionIds[start + i]
                                    for j in 0..<c { xb[(start + i) * c + j] = vb[i * c + j] + pb[p * c + j] }
                                }
                            }
                        }
                    }
                }
            }
            rows.append(x)
        }
        var x = Tensor.concat(rows, axis: 0)   // [B·T, C]
        for layer in layers.prefix(run) {
            x = layer.forward(x, batch: b, tokens: t, heads: heads)
        }
        return finalNorm(x).reshaped([b, t, c])
    }
}

extension CLIPTextModel.Layer {
    /// One pre-norm transformer layer over `x: [B·T, C]`.
    func forward(_ x: Tensor, batch b: Int, tokens t: Int, heads: Int) -> Tensor {
        let h = norm1(x)
        let attended = out(Self.causalAttention(q: q(h), k: k(h), v: v(h), batch: b, tokens: t, heads: heads))
        let x1 = x + attended
        return x1 + fc2(fc1(norm2(x1)).quickGELU())
    }

    /// Multi-head attention where token i sees tokens 0...i. `q, k, v: [B·T, C]` → `[B·T, C]`.
    static func causalAttention(q: Tensor, k: Tensor, v: Tensor, batch b: Int, tokens t: Int, heads: Int) -> Tensor {
        let c = q.shape[1], d = c / heads
        let scale = 1 / Float(d).squareRoot()
        var scores = [Float](repeating: 0, count: t * t)
        return Tensor(uninitialized: [b * t, c]) { out in
            q.withUnsafeBufferPointer { qb in
                k.withUnsafeBufferPointer { kb in
                    v.withUnsafeBufferPointer { vb in
                        scores.withUnsafeMutableBufferPointer { sb in
                            let s = sb.baseAddress!
                            for bi in 0..<b {
                                for hi in 0..<heads {
                                    let off = bi * t * c + hi * d
                                    // scores[T, T] = q[T, d] · k[T, d]ᵀ · scale
                                    sgemm(transB: true, m: t, n: t, k: d, alpha: scale, a: qb.baseAddress! + off,
                                          lda: c, b: kb.baseAddress! + off, ldb: c, c: s, ldc: t)
                                    for i in 0..<t {
                                        let row = s + i * t
                                        var m = -Float.infinity
                                        for j in 0...i { m = max(m, row[j]) }
                                        var sum: Float = 0
                                        for j in 0...i { row[j] = expf(row[j] - m); sum += row[j] }
                                        let inv = 1 / sum
                                        for j in 0...i { row[j] *= inv }
                                        for j in (i + 1)..<t { row[j] = 0 }
                                    }
                                    // out[T, d] = scores[T, T] · v[T, d]
                                    sgemm(m: t, n: d, k: t, a: s, lda: t, b: vb.baseAddress! + off, ldb: c,
                                          c: out.baseAddress! + off, ldc: c)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
