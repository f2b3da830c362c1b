import Foundation
@testable import Networks
import Testing

/// The fused kernels and the banded convolution the networks rely on, against plain scalar definitions.
@Suite struct KernelTests {
    static func values(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    @Test func vectorExpAndErfMatchLibm() {
        let xs = Self.values(4096, seed: 1, scale: 90) + [-200, -87.5, 0, 88, 1e-8, -1e-8]
        for chunk in stride(from: 0, to: xs.count - 15, by: 16) {
            var v = Vec(repeating: 0)
            for j in 0..<16 { v[j] = xs[chunk + j] }
            let e = vexp(v), f = verf(v * 0.05)
            for j in 0..<16 {
                let x = xs[chunk + j]
                // Relative 3e-7; below e^−87.3 (the clamp) results are ~1e-38 instead of denormals or 0.
                #expect(abs(e[j] - expf(x)) <= 3e-7 * expf(x) + 2e-38, "exp(\(x))")
                // A&S 7.1.26 is within 1.5e-7; Float rounding of its terms adds a few 1e-8.
                #expect(abs(f[j] - erff(x * 0.05)) <= 5e-7, "erf(\(x * 0.05))")
            }
        }
    }

    @Test func groupNormSiLUMatchesDefinition() {
        let x = Tensor(shape: [2, 64, 5, 7], scalars: Self.values(2 * 64 * 35, seed: 2, scale: 3))
        let gamma = Tensor(shape: [64], scalars: Self.values(64, seed: 3))
        let beta = Tensor(shape: [64], scalars: Self.values(64, seed: 4))
        let fast = x.groupNormFast(groups: 32, weight: gamma, bias: beta, eps: 1e-6, silu: true)
        let reference = x.groupNorm(groups: 32, weight: gamma, bias: beta, eps: 1e-6).silu()
        #expect(fast.maxAbsDifference(reference) < 1e-5)
    }

    @Test func softmaxAndLayerNormAndGEGLUMatchDefinitions() {
        let x = Tensor(shape: [3, 70], scalars: Self.values(210, seed: 5, scale: 20))
        var fast = x
        fast.withUnsafeMutableBufferPointer { softmaxRowsFast($0.baseAddress!, rows: 3, cols: 70, ld: 70) }
        #expect(fast.maxAbsDifference(x.softmax()) < 1e-6)
        let gamma = Tensor(shape: [70], scalars: Self.values(70, seed: 6))
        let beta = Tensor(shape: [70], scalars: Self.values(70, seed: 7))
        #expect(x.layerNormFast(weight: gamma, bias: beta, eps: 1e-5)
            .maxAbsDifference(x.layerNorm(weight: gamma, bias: beta, eps: 1e-5)) < 1e-5)
        let g = Tensor(shape: [3, 70], scalars: Self.values(210, seed: 8, scale: 4))
        #expect(g.gegluFast().maxAbsDifference(g.geglu()) < 1e-5)
    }

    /// Large enough that conv2d unfolds the image in several bands of output rows; checked against a direct sum.
    @Test func bandedConvolutionMatchesDirectSum() {
        let (cin, cout, h, w) = (64, 3, 150, 130)
        let x = Tensor(shape: [1, cin, h, w], scalars: Self.values(cin * h * w, seed: 9))
        let weight = Tensor(shape: [cout, cin, 3, 3], scalars: Self.values(cout * cin * 9, seed: 10, scale: 0.1))
        let bias = Tensor(shape: [cout], scalars: [0.5, -1, 2])
        for (stride, padding) in [(1, 1), (2, 1), (2, 0)] {
            let y = x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
            let (ho, wo) = (y.shape[2], y.shape[3])
            // Spot-check rows in every band and at the edges.
            for (o, oy, ox) in [(0, 0, 0), (1, ho / 2, wo - 1), (2, ho - 1, 3), (0, ho - 2, wo / 3), (1, 37, min(64, wo - 2))] {
                var sum = Double(bias.scalars[o])
                for c in 0..<cin {
                    for ki in 0..<3 {
                        for kj in 0..<3 {
                            let iy = oy * stride - padding + ki, ix = ox * stride - padding + kj
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            sum += Double(x.scalars[(c * h + iy) * w + ix])
                                * Double(weight.scalars[((o * cin + c) * 3 + ki) * 3 + kj])
                        }
                    }
                }
                #expect(abs(Double(y.scalars[(o * ho + oy) * wo + ox]) - sum) < 1e-3,
                        "stride \(stride) padding \(padding) at \(o),\(oy),\(ox)")
            }
        }
    }
}
