import Foundation

/// The hires-fix latent upscalers A1111 offers, by their UI names.
/// Matches: modules/shared.py latent_upscale_modes
public enum LatentUpscaleMode: String, CaseIterable, Sendable {
    case latent = "Latent"
    case antialiased = "Latent (antialiased)"
    case bicubic = "Latent (bicubic)"
    case bicubicAntialiased = "Latent (bicubic antialiased)"
    case nearest = "Latent (nearest)"
    case nearestExact = "Latent (nearest-exact)"

    /// Resizes `[N, C, h, w]` to `[N, C, height, width]` as `torch.nn.functional.interpolate(size=…)` with this
    /// mode (align_corners=False; `size` given, so the scale is in/out).
    public func resize(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let (inH, inW) = (x.shape[2], x.shape[3])
        let rows = LatentUpscaleMode.weights(self, inSize: inH, outSize: height)
        let cols = LatentUpscaleMode.weights(self, inSize: inW, outSize: width)
        let planes = x.shape[0] * x.shape[1]
        return Tensor(uninitialized: [x.shape[0], x.shape[1], height, width]) { out in
            x.withUnsafeBufferPointer { src in
                var tmp = [Float](repeating: 0, count: inH * width)
                for p in 0..<planes {
                    let s = src.baseAddress! + p * inH * inW
                    // Horizontal pass: [inH, inW] → [inH, width]
                    for y in 0..<inH {
                        for (ox, taps) in cols.enumerated() {
                            var acc: Float = 0
                            for (i, wgt) in taps { acc += s[y * inW + i] * wgt }
                            tmp[y * width + ox] = acc
                        }
                    }
                    // Vertical pass: [inH, width] → [height, width]
                    let d = out.baseAddress! + p * height * width
                    for (oy, taps) in rows.enumerated() {
                        for ox in 0..<width {
                            var acc: Float = 0
                            for (i, wgt) in taps { acc += tmp[i * width + ox] * wgt }
                            d[oy * width + ox] = acc
                        }
                    }
                }
            }
        }
    }

    /// For each output index, the (input index, weight) taps along one axis.
    /// Matches: aten/src/ATen/native/UpSample.h (area_pixel_compute_source_index, nearest_idx,
    /// upsample_bicubic2d coefficients A = −0.75) and UpSampleKernel.cpp (_compute_indices_weights_aa:
    /// triangle / cubic A = −0.5 filters, support widened when downscaling, weights normalised).
    static func weights(_ mode: LatentUpscaleMode, inSize: Int, outSize: Int) -> [[(Int, Float)]] {
        let scale = Double(inSize) / Double(outSize)
        let last = inSize - 1
        func clamp(_ i: Int) -> Int { min(max(i, 0), last) }
        switch mode {
        case .nearest:
            return (0..<outSize).map { [(min(Int(floor(Double($0) * Double(Float(scale)))), last), 1)] }
        case .nearestExact:
            return (0..<outSize).map { [(min(Int(floor((Double($0) + 0.5) * Double(Float(scale)))), last), 1)] }
        case .latent:
            return (0..<outSize).map { o in
                let src = max(Float(scale) * (Float(o) + 0.5) - 0.5, 0)
                let i0 = Int(src)
                let l1 = src - Float(i0)
                let i1 = i0 < last ? i0 + 1 : i0
                return [(i0, 1 - l1), (i1, l1)]
            }
        case .bicubic:
            let a: Float = -0.75
            func near(_ t: Float) -> Float { ((a + 2) * t - (a + 3)) * t * t + 1 }
            func far(_ t: Float) -> Float { ((a * t - 5 * a) * t + 8 * a) * t - 4 * a }
            return (0..<outSize).map { o in
                let src = Float(scale) * (Float(o) + 0.5) - 0.5
                let i = Int(floor(src))
                let t = src - Float(i)
                let w = [far(t + 1), near(t), near(1 - t), far(2 - t)]
                return (0..<4).map { (clamp(i - 1 + $0), w[$0]) }
            }
        case .antialiased, .bicubicAntialiased:
            let cubic = mode == .bicubicAntialiased
            let interpSize = cubic ? 4.0 : 2.0
            func filter(_ x: Double) -> Double {
                let x = abs(x)
                if !cubic { return x < 1 ? 1 - x : 0 }
                let a = -0.5
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            }
            let support = scale >= 1 ? interpSize / 2 * scale : interpSize / 2
            let invScale = scale >= 1 ? 1 / scale : 1
            return (0..<outSize).map { o in
                let center = scale * (Double(o) + 0.5)
                let xmin = max(Int(center - support + 0.5), 0)
                let xmax = min(Int(center + support + 0.5), inSize)
                var taps = [(Int, Double)]()
                var total = 0.0
                for j in xmin..<xmax {
                    let w = filter((Double(j) - center + 0.5) * invScale)
                    taps.append((j, w))
                    total += w
                }
                return taps.map { ($0.0, Float(total != 0 ? $0.1 / total : 0)) }
            }
        }
    }
}
