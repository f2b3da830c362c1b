import TensorCore

// Attention and projection helpers shared by the UNet's SpatialTransformer and the VAE's mid-block attention.

/// Multi-head scaled-dot-product attention, `softmax(q kᵀ · scale) v` per head, on `[B, T, H·D]` token tensors.
/// `q: [B, Tq, H·D]`, `k, v: [B, Tk, H·D]` → `[B, Tq, H·D]` (as `F.scaled_dot_product_attention` after splitting
/// heads). Heads are read in place through GEMM leading dimensions; queries go in blocks so the score buffer
/// stays at `block × Tk` floats (16 MiB: large GEMMs, and memory bounded at any token count; measured faster than
/// 1 MiB blocks at 4096 tokens); the softmax of a block is split over the cores.
public func multiHeadAttention(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int, scale: Float? = nil) -> Tensor {
    let (b, tq, inner) = (q.shape[0], q.shape[1], q.shape[2])
    let tk = k.shape[1]
    precondition(k.shape == [b, tk, inner] && v.shape == [b, tk, inner] && inner % heads == 0,
                 "attention: q \(q.shape), k \(k.shape), v \(v.shape), heads \(heads)")
    let d = inner / heads
    let s = scale ?? 1 / Float(d).squareRoot()
    // ~16 MiB of scores per block at most: large enough for efficient GEMMs, small enough to stay bounded.
    let block = max(1, min(tq, (1 << 22) / max(tk, 1)))
    var scores = [Float](repeating: 0, count: block * tk)
    return Tensor(uninitialized: q.shape) { out in
        q.withUnsafeBufferPointer { qb in
            k.withUnsafeBufferPointer { kb in
                v.withUnsafeBufferPointer { vb in
                    scores.withUnsafeMutableBufferPointer { sb in
                        let sp = sb.baseAddress!
                        for bi in 0..<b {
                            for h in 0..<heads {
                                let qh = qb.baseAddress! + bi * tq * inner + h * d
                                let kh = kb.baseAddress! + bi * tk * inner + h * d
                                let vh = vb.baseAddress! + bi * tk * inner + h * d
                                let oh = out.baseAddress! + bi * tq * inner + h * d
                                var start = 0
                                while start < tq {
                                    let rows = min(block, tq - start)
                                    // scores[rows, tk] = q[rows, d] · k[tk, d]ᵀ · s
                                    sgemm(transB: true, m: rows, n: tk, k: d, alpha: s, a: qh + start * inner,
                                          lda: inner, b: kh, ldb: inner, c: sp, ldc: tk)
                                    let w = min(workers(for: rows * tk), rows)
                                    parallelChunks(w) { worker in
                                        let lo = rows * worker / w, hi = rows * (worker + 1) / w
                                        softmaxRowsFast(sp + lo * tk, rows: hi - lo, cols: tk, ld: tk)
                                    }
                                    // out[rows, d] = scores[rows, tk] · v[tk, d]
                                    sgemm(m: rows, n: d, k: tk, a: sp, lda: tk, b: vh, ldb: inner,
                                          c: oh + start * inner, ldc: inner)
                                    start += rows
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Linear {
    /// `t += x · weightᵀ + bias` over the last dimension (the output projection of a residual branch), with the
    /// residual accumulated by the GEMM itself. `x: [..., in]`, `t: [..., out]`.
    func accumulate(_ x: Tensor, into t: inout Tensor) {
        let inF = inFeatures, outF = outFeatures
        precondition(x.dim(-1) == inF && t.dim(-1) == outF && x.count / inF == t.count / outF,
                     "linear accumulate: x \(x.shape), t \(t.shape), weight \(weight.shape)")
        let rows = x.count / inF
        t.withUnsafeMutableBufferPointer { tb in
            let tp = tb.baseAddress!
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    for r in 0..<rows {
                        let row = tp + r * outF
                        for j in 0..<outF { row[j] += bp[j] }
                    }
                }
            }
            x.withUnsafeBufferPointer { xb in
                weight.withUnsafeBufferPointer { wb in
                    sgemm(transB: true, m: rows, n: outF, k: inF, a: xb.baseAddress!, b: wb.baseAddress!,
                          beta: 1, c: tp)
                }
            }
        }
    }

    /// A 1×1 projection from channel-major images to tokens: `[B, in, HW] → [B, HW, out]`
    /// (`conv1x1` followed by `b c h w → b (h w) c`, without the transpose).
    func imageToTokens(_ x: Tensor) -> Tensor {
        let b = x.shape[0], c = x.shape[1], hw = x.count / (b * c)
        precondition(c == inFeatures, "projection: input \(x.shape), weight \(weight.shape)")
        let outF = outFeatures
        return Tensor(uninitialized: [b, hw, outF]) { out in
            let op = out.baseAddress!
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    for r in 0..<(b * hw) { (op + r * outF).update(from: bp.baseAddress!, count: outF) }
                }
            } else {
                op.update(repeating: 0, count: out.count)
            }
            x.withUnsafeBufferPointer { xb in
                weight.withUnsafeBufferPointer { wb in
                    for bi in 0..<b {
                        // out[hw, outF] += x[c, hw]ᵀ · W[outF, c]ᵀ
                        sgemm(transA: true, transB: true, m: hw, n: outF, k: c, a: xb.baseAddress! + bi * c * hw,
                              b: wb.baseAddress!, beta: 1, c: op + bi * hw * outF)
                    }
                }
            }
        }
    }

    /// The inverse layout: tokens `[B, HW, in]` projected back to channel-major `[B, out, HW]` and added to
    /// `residual` (`b (h w) c → b c h w`, `conv1x1`, `+ residual`). `residual` has `[B, out, H, W]`.
    func tokensToImage(_ t: Tensor, adding residual: Tensor) -> Tensor {
        let b = t.shape[0], hw = t.shape[1], outF = outFeatures
        precondition(t.shape[2] == inFeatures && residual.shape[0] == b && residual.shape[1] == outF
                     && residual.count == b * outF * hw,
                     "projection: tokens \(t.shape), residual \(residual.shape), weight \(weight.shape)")
        var out = residual
        out.withUnsafeMutableBufferPointer { ob in
            let op = ob.baseAddress!
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    for plane in 0..<(b * outF) {
                        let row = op + plane * hw, v = bp[plane % outF]
                        for i in 0..<hw { row[i] += v }
                    }
                }
            }
            t.withUnsafeBufferPointer { tb in
                weight.withUnsafeBufferPointer { wb in
                    for bi in 0..<b {
                        // out[outF, hw] += W[outF, in] · t[hw, in]ᵀ
                        sgemm(transB: true, m: outF, n: hw, k: inFeatures, a: wb.baseAddress!,
                              b: tb.baseAddress! + bi * hw * inFeatures, beta: 1, c: op + bi * outF * hw)
                    }
                }
            }
        }
        return out
    }
}
