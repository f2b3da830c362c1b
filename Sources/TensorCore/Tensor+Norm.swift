import Foundation

extension Tensor {
    /// Group normalisation over `[N, C, ...]`, as `torch.nn.functional.group_norm`.
    /// Statistics are accumulated in Double for parity with PyTorch's two-pass reductions.
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let n = shape[0], c = shape[1]
        precondition(c % groups == 0, "groupNorm: \(c) channels not divisible by \(groups) groups")
        let spatial = count / (n * c)
        let perGroup = c / groups
        let groupSize = perGroup * spatial
        return Tensor(uninitialized: shape) { out in
            scalars.withUnsafeBufferPointer { x in
                for b in 0..<n {
                    for g in 0..<groups {
                        let base = (b * c + g * perGroup) * spatial
                        var sum = 0.0
                        for i in 0..<groupSize { sum += Double(x[base + i]) }
                        let mean = sum / Double(groupSize)
                        var sq = 0.0
                        for i in 0..<groupSize { let d = Double(x[base + i]) - mean; sq += d * d }
                        let inv = 1.0 / (sq / Double(groupSize) + Double(eps)).squareRoot()
                        for ch in 0..<perGroup {
                            let channel = g * perGroup + ch
                            let gamma = Double(weight?.scalars[channel] ?? 1)
                            let beta = Double(bias?.scalars[channel] ?? 0)
                            let scale = Float(inv * gamma)
                            let shift = Float(beta - mean * inv * gamma)
                            let off = base + ch * spatial
                            for i in 0..<spatial { out[off + i] = x[off + i] * scale + shift }
                        }
                    }
                }
            }
        }
    }

    /// Layer normalisation over the last dimension, as `torch.nn.functional.layer_norm`.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let d = dim(-1), rows = count / d
        return Tensor(uninitialized: shape) { out in
            scalars.withUnsafeBufferPointer { x in
                for r in 0..<rows {
                    let base = r * d
                    var sum = 0.0
                    for i in 0..<d { sum += Double(x[base + i]) }
                    let mean = sum / Double(d)
                    var sq = 0.0
                    for i in 0..<d { let v = Double(x[base + i]) - mean; sq += v * v }
                    let inv = 1.0 / (sq / Double(d) + Double(eps)).squareRoot()
                    for i in 0..<d {
                        let y = Float((Double(x[base + i]) - mean) * inv)
                        out[base + i] = y * (weight?.scalars[i] ?? 1) + (bias?.scalars[i] ?? 0)
                    }
                }
            }
        }
    }

    /// Softmax over the last dimension.
    public func softmax() -> Tensor {
        var out = self
        let d = dim(-1)
        out.scalars.withUnsafeMutableBufferPointer { x in
            softmaxRows(x.baseAddress!, rows: count / d, cols: d)
        }
        return out
    }
}

/// In-place, numerically stable softmax of `rows` rows of length `cols`.
@inline(__always)
func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        var m = -Float.infinity
        for j in 0..<cols { m = max(m, row[j]) }
        var s: Float = 0
        for j in 0..<cols { let e = expf(row[j] - m); row[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<cols { row[j] *= inv }
    }
}
