extension Tensor {
    /// 2-D convolution as `torch.nn.functional.conv2d` (groups = 1, dilation = 1).
    /// `[N, Cin, H, W] → [N, Cout, Ho, Wo]` with `weight: [Cout, Cin, kh, kw]`, `bias: [Cout]`.
    /// 1×1 stride-1 convolutions are a single GEMM; others go through im2col + GEMM per image.
    public func conv2d(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        precondition(rank == 4 && weight.rank == 4, "conv2d: input \(shape), weight \(weight.shape)")
        let (n, cin, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (cout, wcin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(cin == wcin, "conv2d: input has \(cin) channels, weight expects \(wcin)")
        let ho = (h + 2 * padding - kh) / stride + 1
        let wo = (w + 2 * padding - kw) / stride + 1
        let kdim = cin * kh * kw
        let plane = ho * wo
        return Tensor(uninitialized: [n, cout, ho, wo]) { out in
            let op = out.baseAddress!
            scalars.withUnsafeBufferPointer { xBuf in
                weight.scalars.withUnsafeBufferPointer { wBuf in
                    let direct = kh == 1 && kw == 1 && stride == 1 && padding == 0
                    var columns = direct ? [] : [Float](repeating: 0, count: kdim * plane)
                    for b in 0..<n {
                        let xp = xBuf.baseAddress! + b * cin * h * w
                        let dst = op + b * cout * plane
                        if direct {
                            sgemm(m: cout, n: plane, k: cin, a: wBuf.baseAddress!, b: xp, c: dst)
                        } else {
                            columns.withUnsafeMutableBufferPointer { col in
                                im2col(xp, channels: cin, height: h, width: w, kh: kh, kw: kw,
                                       stride: stride, padding: padding, outH: ho, outW: wo, into: col.baseAddress!)
                                sgemm(m: cout, n: plane, k: kdim, a: wBuf.baseAddress!, b: col.baseAddress!, c: dst)
                            }
                        }
                    }
                }
            }
            if let bias {
                bias.scalars.withUnsafeBufferPointer { bp in
                    for b in 0..<n {
                        for c in 0..<cout {
                            let base = op + (b * cout + c) * plane
                            let v = bp[c]
                            for i in 0..<plane { base[i] += v }
                        }
                    }
                }
            }
        }
    }
}

/// Unfolds one image `[C, H, W]` into columns `[C·kh·kw, Ho·Wo]` (zero padding).
@inline(__always)
func im2col(_ x: UnsafePointer<Float>, channels: Int, height: Int, width: Int, kh: Int, kw: Int,
            stride: Int, padding: Int, outH: Int, outW: Int, into col: UnsafeMutablePointer<Float>) {
    var row = 0
    for c in 0..<channels {
        let plane = x + c * height * width
        for ki in 0..<kh {
            for kj in 0..<kw {
                let dst = col + row * outH * outW
                for oy in 0..<outH {
                    let iy = oy * stride - padding + ki
                    let drow = dst + oy * outW
                    if iy < 0 || iy >= height {
                        drow.update(repeating: 0, count: outW)
                        continue
                    }
                    let srow = plane + iy * width
                    if stride == 1 {
                        let shift = kj - padding
                        let lo = max(0, -shift), hi = min(outW, width - shift)
                        if lo > 0 { drow.update(repeating: 0, count: lo) }
                        if hi > lo { (drow + lo).update(from: srow + lo + shift, count: hi - lo) }
                        if hi < outW { (drow + max(hi, lo)).update(repeating: 0, count: outW - max(hi, lo)) }
                    } else {
                        for ox in 0..<outW {
                            let ix = ox * stride - padding + kj
                            drow[ox] = (ix >= 0 && ix < width) ? srow[ix] : 0
                        }
                    }
                }
                row += 1
            }
        }
    }
}
