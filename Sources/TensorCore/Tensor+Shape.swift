extension Tensor {
    /// Concatenates tensors along `axis`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat of no tensors")
        let first = parts[0]
        let ax = axis < 0 ? first.rank + axis : axis
        for p in parts {
            precondition(p.rank == first.rank, "concat: ranks differ")
            for d in 0..<first.rank where d != ax {
                precondition(p.shape[d] == first.shape[d], "concat along \(ax): \(p.shape) vs \(first.shape)")
            }
        }
        let outer = first.shape[..<ax].reduce(1, *)
        let inner = first.shape[(ax + 1)...].reduce(1, *)
        var outShape = first.shape
        outShape[ax] = parts.reduce(0) { $0 + $1.shape[ax] }
        let rowOut = outShape[ax] * inner
        return Tensor(uninitialized: outShape) { out in
            var offset = 0
            for p in parts {
                let rowIn = p.shape[ax] * inner
                p.scalars.withUnsafeBufferPointer { src in
                    for o in 0..<outer {
                        (out.baseAddress! + o * rowOut + offset).update(from: src.baseAddress! + o * rowIn, count: rowIn)
                    }
                }
                offset += rowIn
            }
        }
    }

    /// Elements `range` along `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = axis < 0 ? rank + axis : axis
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax], "slice \(range) out of \(shape)")
        let outer = shape[..<ax].reduce(1, *)
        let inner = shape[(ax + 1)...].reduce(1, *)
        var outShape = shape
        outShape[ax] = range.count
        let rowIn = shape[ax] * inner, rowOut = range.count * inner
        return Tensor(uninitialized: outShape) { out in
            scalars.withUnsafeBufferPointer { src in
                for o in 0..<outer {
                    (out.baseAddress! + o * rowOut)
                        .update(from: src.baseAddress! + o * rowIn + range.lowerBound * inner, count: rowOut)
                }
            }
        }
    }

    /// Splits along `axis` into `parts` equal chunks, as `torch.chunk`.
    public func chunked(_ parts: Int, axis: Int) -> [Tensor] {
        let ax = axis < 0 ? rank + axis : axis
        let size = shape[ax] / parts
        return (0..<parts).map { slice(axis: ax, ($0 * size)..<(($0 + 1) * size)) }
    }

    /// Reorders dimensions, as `torch.permute`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permute order \(order) for rank \(rank)")
        let outShape = order.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = order.map { inStrides[$0] }
        let inner = outShape.last ?? 1, innerStride = strides.last ?? 1
        let outer = count / max(inner, 1)
        return Tensor(uninitialized: outShape) { out in
            scalars.withUnsafeBufferPointer { src in
                var index = [Int](repeating: 0, count: rank)
                for o in 0..<outer {
                    var off = 0
                    for d in 0..<(rank - 1) { off += index[d] * strides[d] }
                    let dst = o * inner
                    for j in 0..<inner { out[dst + j] = src[off + j * innerStride] }
                    var d = rank - 2
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

    /// Nearest-neighbour ×2 upsampling of `[N, C, H, W]` → `[N, C, 2H, 2W]`.
    public func upsampleNearest2x() -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        return Tensor(uninitialized: [n, c, 2 * h, 2 * w]) { out in
            scalars.withUnsafeBufferPointer { src in
                for p in 0..<(n * c) {
                    let s = src.baseAddress! + p * h * w
                    let d = out.baseAddress! + p * 4 * h * w
                    for y in 0..<h {
                        let row = d + 2 * y * 2 * w
                        for x in 0..<w { let v = s[y * w + x]; row[2 * x] = v; row[2 * x + 1] = v }
                        (row + 2 * w).update(from: row, count: 2 * w)
                    }
                }
            }
        }
    }

    /// Nearest-neighbour resize of `[N, C, H, W]` to `height × width`, as
    /// `torch.nn.functional.interpolate(size=…, mode="nearest")`: source index floor(dst · in / out).
    public func resizedNearest(height: Int, width: Int) -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let sy = Float(h) / Float(height), sx = Float(w) / Float(width)
        let rows = (0..<height).map { min(Int((Float($0) * sy).rounded(.down)), h - 1) }
        let cols = (0..<width).map { min(Int((Float($0) * sx).rounded(.down)), w - 1) }
        return Tensor(uninitialized: [n, c, height, width]) { out in
            scalars.withUnsafeBufferPointer { src in
                for p in 0..<(n * c) {
                    for (y, r) in rows.enumerated() {
                        for (x, q) in cols.enumerated() { out[(p * height + y) * width + x] = src[(p * h + r) * w + q] }
                    }
                }
            }
        }
    }
}
