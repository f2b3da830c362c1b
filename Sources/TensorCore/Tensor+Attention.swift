extension Tensor {
    /// Multi-head scaled-dot-product attention, `softmax(q kᵀ · scale) v` per head, as
    /// `torch.nn.functional.scaled_dot_product_attention` after splitting heads.
    ///
    /// `q: [B, Tq, H·D]`, `k, v: [B, Tk, H·D]` → `[B, Tq, H·D]`. Heads are read in place through GEMM leading
    /// dimensions (no transposes), and queries are processed in blocks so the score matrix never exceeds
    /// `queryBlock × Tk` floats: memory stays bounded at 4096×4096 tokens.
    public static func attention(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int,
                                 scale: Float? = nil, queryBlock: Int = 1024) -> Tensor {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "attention: ranks \(q.shape) \(k.shape) \(v.shape)")
        let (b, tq, inner) = (q.shape[0], q.shape[1], q.shape[2])
        let tk = k.shape[1]
        precondition(k.shape[0] == b && v.shape[0] == b && k.shape[2] == inner && v.shape[2] == inner
                     && v.shape[1] == tk, "attention: q \(q.shape), k \(k.shape), v \(v.shape)")
        precondition(inner % heads == 0, "attention: width \(inner) not divisible by \(heads) heads")
        let d = inner / heads
        let s = scale ?? 1 / Float(d).squareRoot()
        let block = min(queryBlock, tq)
        var scores = [Float](repeating: 0, count: block * tk)
        return Tensor(uninitialized: q.shape) { out in
            q.scalars.withUnsafeBufferPointer { qb in
                k.scalars.withUnsafeBufferPointer { kb in
                    v.scalars.withUnsafeBufferPointer { vb in
                        scores.withUnsafeMutableBufferPointer { sb in
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
                                        sgemm(transB: true, m: rows, n: tk, k: d, alpha: s,
                                              a: qh + start * inner, lda: inner, b: kh, ldb: inner,
                                              c: sb.baseAddress!, ldc: tk)
                                        softmaxRows(sb.baseAddress!, rows: rows, cols: tk)
                                        // out[rows, d] = scores[rows, tk] · v[tk, d]
                                        sgemm(m: rows, n: d, k: tk, a: sb.baseAddress!, lda: tk,
                                              b: vh, ldb: inner, c: oh + start * inner, ldc: inner)
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
}
