import Foundation

extension Tensor {
    /// Shape that `a` and `b` broadcast to (NumPy rules), or nil when they are incompatible.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            out[i] = max(da, db)
        }
        return out
    }

    /// Applies `op` elementwise with NumPy broadcasting.
    public func zip(_ other: Tensor, _ op: (Float, Float) -> Float) -> Tensor {
        if shape == other.shape {
            return Tensor(uninitialized: shape) { out in
                scalars.withUnsafeBufferPointer { a in
                    other.scalars.withUnsafeBufferPointer { b in
                        for i in 0..<out.count { out[i] = op(a[i], b[i]) }
                    }
                }
            }
        }
        guard let outShape = Tensor.broadcastShape(shape, other.shape) else {
            preconditionFailure("cannot broadcast \(shape) with \(other.shape)")
        }
        // Fast path: `other` repeats along the leading dims and is contiguous in the trailing ones
        // (e.g. bias [C, 1, 1] against [N, C, H, W] is handled by the general path below).
        let r = outShape.count
        func strides(_ s: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: r - s.count) + s
            var st = [Int](repeating: 0, count: r)
            var acc = 1
            for i in stride(from: r - 1, through: 0, by: -1) {
                st[i] = padded[i] == 1 ? 0 : acc
                acc *= padded[i]
            }
            return st
        }
        let sa = strides(shape), sb = strides(other.shape)
        let inner = outShape[r - 1]
        let innerA = sa[r - 1], innerB = sb[r - 1]
        let outer = outShape.reduce(1, *) / max(inner, 1)
        return Tensor(uninitialized: outShape) { out in
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    var index = [Int](repeating: 0, count: r)
                    for o in 0..<outer {
                        var offA = 0, offB = 0
                        for d in 0..<(r - 1) { offA += index[d] * sa[d]; offB += index[d] * sb[d] }
                        let base = o * inner
                        for j in 0..<inner { out[base + j] = op(a[offA + j * innerA], b[offB + j * innerB]) }
                        var d = r - 2
                        while d >= 0 {
                            index[d] += 1
                            if index[d] < outShape[d] { break }
                            index[d] = 0
                            d -= 1
                        }
                    }
                }
            }
        }
    }

    public func map(_ op: (Float) -> Float) -> Tensor {
        Tensor(uninitialized: shape) { out in
            scalars.withUnsafeBufferPointer { a in
                for i in 0..<out.count { out[i] = op(a[i]) }
            }
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zip(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zip(b, -) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zip(b, *) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.zip(b, /) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }
    public static func * (s: Float, a: Tensor) -> Tensor { a.map { $0 * s } }
    public static func + (a: Tensor, s: Float) -> Tensor { a.map { $0 + s } }
    public static func - (a: Tensor, s: Float) -> Tensor { a.map { $0 - s } }
    public static prefix func - (a: Tensor) -> Tensor { a.map { -$0 } }

    public static func += (a: inout Tensor, b: Tensor) {
        if a.shape == b.shape {
            a.scalars.withUnsafeMutableBufferPointer { x in
                b.scalars.withUnsafeBufferPointer { y in
                    for i in 0..<x.count { x[i] += y[i] }
                }
            }
        } else {
            a = a + b
        }
    }

    /// `self + alpha · other` for equal shapes, without temporaries.
    public func adding(_ other: Tensor, scaledBy alpha: Float) -> Tensor {
        precondition(shape == other.shape, "adding(scaledBy:): \(shape) vs \(other.shape)")
        return Tensor(uninitialized: shape) { out in
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    for i in 0..<out.count { out[i] = a[i] + alpha * b[i] }
                }
            }
        }
    }

    /// x · sigmoid(x)
    public func silu() -> Tensor { map { $0 / (1 + expf(-$0)) } }

    /// Exact (erf) GELU, as `torch.nn.functional.gelu(approximate='none')`.
    public func gelu() -> Tensor { map { 0.5 * $0 * (1 + erff($0 * 0.70710678118654752)) } }

    /// CLIP's quick GELU: x · sigmoid(1.702 x).
    public func quickGELU() -> Tensor { map { $0 / (1 + expf(-1.702 * $0)) } }

    /// GEGLU: splits the last dimension in halves `(a, gate)` and returns `a · gelu(gate)`.
    /// `[..., 2d] → [..., d]`
    public func geglu() -> Tensor {
        let twoD = dim(-1), d = twoD / 2
        let rows = count / twoD
        return Tensor(uninitialized: Array(shape.dropLast()) + [d]) { out in
            scalars.withUnsafeBufferPointer { x in
                for r in 0..<rows {
                    let src = r * twoD, dst = r * d
                    for j in 0..<d {
                        let g = x[src + d + j]
                        out[dst + j] = x[src + j] * 0.5 * g * (1 + erff(g * 0.70710678118654752))
                    }
                }
            }
        }
    }

    public func sum() -> Double { scalars.reduce(0.0) { $0 + Double($1) } }
    public func mean() -> Double { count == 0 ? 0 : sum() / Double(count) }

    /// Largest absolute elementwise difference; shapes must match.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsDifference: \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(scalars[i] - other.scalars[i])) }
        return m
    }
}
