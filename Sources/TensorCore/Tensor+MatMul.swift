import CBLAS

/// Row-major single-precision GEMM: C[m×n] = alpha · op(A) · op(B) + beta · C.
/// `lda`, `ldb`, `ldc` default to the packed row strides.
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
                  b: UnsafePointer<Float>, ldb: Int? = nil,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda ?? (transA ? m : k)),
                b, Int32(ldb ?? (transB ? k : n)),
                beta, c, Int32(ldc ?? n))
}

extension Tensor {
    /// Matrix product over the last two dimensions; leading dimensions are batch dimensions and must agree,
    /// except that a rank-2 `other` is shared by every batch entry.
    /// `[..., m, k] @ [..., k, n] → [..., m, n]` (with `transposeOther`: `other` is `[..., n, k]`).
    public func matmul(_ other: Tensor, transposeOther: Bool = false) -> Tensor {
        precondition(rank >= 2 && other.rank >= 2, "matmul needs rank ≥ 2, got \(shape) and \(other.shape)")
        let m = dim(-2), k = dim(-1)
        let n = transposeOther ? other.dim(-2) : other.dim(-1)
        let otherK = transposeOther ? other.dim(-1) : other.dim(-2)
        precondition(k == otherK, "matmul: inner dimensions differ, \(shape) @ \(other.shape)")
        let batch = count / (m * k)
        let sharedOther = other.rank == 2
        precondition(sharedOther || other.count / (k * n) == batch, "matmul: batch dimensions differ")
        if sharedOther {
            // One GEMM with the batch folded into M.
            let out = Tensor(uninitialized: Array(shape.dropLast()) + [n]) { c in
                scalars.withUnsafeBufferPointer { a in
                    other.scalars.withUnsafeBufferPointer { b in
                        sgemm(transB: transposeOther, m: batch * m, n: n, k: k,
                              a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
                    }
                }
            }
            return out
        }
        return Tensor(uninitialized: Array(shape.dropLast()) + [n]) { c in
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    for i in 0..<batch {
                        sgemm(transB: transposeOther, m: m, n: n, k: k,
                              a: a.baseAddress! + i * m * k, b: b.baseAddress! + i * k * n,
                              c: c.baseAddress! + i * m * n)
                    }
                }
            }
        }
    }

    /// `x @ weightᵀ + bias` over the last dimension, as `torch.nn.functional.linear`.
    /// `[..., in] → [..., out]` with `weight: [out, in]`, `bias: [out]`.
    public func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        let inFeatures = dim(-1), outFeatures = weight.shape[0]
        precondition(weight.shape[1] == inFeatures, "linear: input \(shape) vs weight \(weight.shape)")
        let rows = count / inFeatures
        return Tensor(uninitialized: Array(shape.dropLast()) + [outFeatures]) { c in
            let cp = c.baseAddress!
            if let bias {
                bias.scalars.withUnsafeBufferPointer { bp in
                    for r in 0..<rows { (cp + r * outFeatures).update(from: bp.baseAddress!, count: outFeatures) }
                }
            }
            scalars.withUnsafeBufferPointer { a in
                weight.scalars.withUnsafeBufferPointer { w in
                    sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures,
                          a: a.baseAddress!, b: w.baseAddress!, beta: bias == nil ? 0 : 1, c: cp)
                }
            }
        }
    }
}
