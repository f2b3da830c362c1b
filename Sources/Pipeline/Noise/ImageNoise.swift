import Foundation

extension NoiseSourceKind {
    /// A freshly seeded generator of this source (A1111 `create_generator`): torch's CPU generator for "CPU", the
    /// Philox stream for "NV" and for "GPU" (A1111's NV stream reproduces NVIDIA GPU noise). Python integer
    /// seeds reach both as unsigned 64-bit values (negative ones wrap, as `manual_seed` and numpy store them).
    public func generator(seed: Int64) -> any NormalGenerator {
        let s = UInt64(bitPattern: seed)
        switch self {
        case .cpu: return TorchGenerator(seed: s)
        case .gpu, .nv: return PhiloxGenerator(seed: s)
        }
    }

    /// A fresh generator's first tensor (A1111 `randn(seed, shape)` / `randn_local`).
    public func randn(seed: Int64, shape: [Int]) -> Tensor {
        var g = generator(seed: seed)
        return g.randn(shape)
    }
}

/// A1111's per-image noise for one batch: the first `next()` is the initial latent noise `[B, C, h, w]` (variation
/// seeds mixed in by slerp, noise drawn at `seed_resize_from` size and centred), every later `next()` the extra
/// noise of ancestral steps from each image's own generator — the one that drew its initial noise, or, when
/// eta_noise_seed_delta (ENSD) is set, a fresh one seeded with seed + ENSD.
/// Matches: modules/rng.py ImageRNG (first, next), randn, randn_local, randn_without_seed (A1111 v1.10.1)
public final class ImageNoise: BatchNoise {
    /// One image's latent shape `[C, h, w]`.
    public let shape: [Int]
    public let seeds: [Int64]
    /// Variation seeds; images past the end of the list use subseed 0, as A1111 does.
    public let subseeds: [Int64]
    public let subseedStrength: Double
    /// seed_resize_from_w / _h in pixels; off unless both are positive.
    public let seedResizeFromW: Int
    public let seedResizeFromH: Int
    public let source: NoiseSourceKind
    public let etaNoiseSeedDelta: Int64
    private var generators: [any NormalGenerator]
    private var isFirst = true

    public init(shape: [Int], seeds: [Int64], subseeds: [Int64] = [], subseedStrength: Double = 0,
                seedResizeFromW: Int = 0, seedResizeFromH: Int = 0, source: NoiseSourceKind,
                etaNoiseSeedDelta: Int64 = 0) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalid("ImageNoise: latent shape must be [C, h, w] with positive sizes, got \(shape)")
        }
        self.shape = shape
        self.seeds = seeds
        self.subseeds = subseeds
        self.subseedStrength = subseedStrength
        self.seedResizeFromW = seedResizeFromW
        self.seedResizeFromH = seedResizeFromH
        self.source = source
        self.etaNoiseSeedDelta = etaNoiseSeedDelta
        generators = seeds.map { source.generator(seed: $0) }
    }

    /// The noise factory the pipeline uses: ImageRNG for the request's seeds and noise options.
    public static let factory: BatchNoiseFactory = { shape, seeds, subseeds, r in
        try ImageNoise(shape: shape, seeds: seeds, subseeds: subseeds, subseedStrength: r.subseedStrength,
                       seedResizeFromW: r.seedResizeFromW, seedResizeFromH: r.seedResizeFromH, source: r.noiseSource,
                       etaNoiseSeedDelta: r.etaNoiseSeedDelta)
    }

    /// `[B, C, h, w]`: the initial noise on the first call, per-step noise afterwards.
    public func next() throws -> Tensor {
        if isFirst {
            isFirst = false
            return first()
        }
        var parts = [Tensor]()
        for i in generators.indices { parts.append(generators[i].randn(shape).reshaped([1] + shape)) }
        return Tensor.concat(parts, axis: 0)
    }

    /// A1111 `randn_local` for this source: the SDE samplers' Brownian-tree node normals.
    public func seededNormal(seed: UInt64, shape: [Int]) throws -> Tensor {
        source.randn(seed: Int64(bitPattern: seed), shape: shape)
    }

    private func first() -> Tensor {
        let resized = seedResizeFromH > 0 && seedResizeFromW > 0
        let noiseShape = resized ? [shape[0], seedResizeFromH / 8, seedResizeFromW / 8] : shape
        var images = [Tensor]()
        for (i, seed) in seeds.enumerated() {
            var sub: Tensor?
            if subseedStrength != 0 {
                sub = source.randn(seed: i < subseeds.count ? subseeds[i] : 0, shape: noiseShape)
            }
            // Without resize this is the image generator's first draw; with it, a fresh generator's draw at the
            // other size, and the image generator's first draw (full size) is what it is pasted into.
            var noise = resized ? source.randn(seed: seed, shape: noiseShape) : generators[i].randn(shape)
            if let sub { noise = Self.slerp(subseedStrength, noise, sub) }
            if resized {
                var x = generators[i].randn(shape)
                Self.paste(noise, into: &x)
                noise = x
            }
            images.append(noise.reshaped([1] + shape))
        }
        if etaNoiseSeedDelta != 0 {
            generators = seeds.map { source.generator(seed: $0 &+ etaNoiseSeedDelta) }
        }
        return Tensor.concat(images, axis: 0)
    }

    /// Centres `noise` `[C, nh, nw]` on `x` `[C, h, w]`, cropping whichever is larger (Python floor division
    /// for the offsets, as rng.py computes them).
    static func paste(_ noise: Tensor, into x: inout Tensor) {
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (nh, nw) = (noise.shape[1], noise.shape[2])
        func floorHalf(_ v: Int) -> Int { v >= 0 ? v / 2 : -((-v + 1) / 2) }
        let dx = floorHalf(w - nw), dy = floorHalf(h - nh)
        let cw = dx >= 0 ? nw : nw + 2 * dx
        let ch = dy >= 0 ? nh : nh + 2 * dy
        let tx = max(dx, 0), ty = max(dy, 0)
        let sx = max(-dx, 0), sy = max(-dy, 0)
        guard cw > 0, ch > 0 else { return }
        x.withUnsafeMutableBufferPointer { dst in
            noise.withUnsafeBufferPointer { src in
                for k in 0..<c {
                    for r in 0..<ch {
                        for q in 0..<cw {
                            dst[(k * h + ty + r) * w + tx + q] = src[(k * nh + sy + r) * nw + sx + q]
                        }
                    }
                }
            }
        }
    }

    /// Spherical interpolation of two `[C, H, W]` noise tensors, normalised over dim 1 (H) as A1111 applies it to
    /// 3-D noise: one angle per (channel, column). Falls back to A1111's (swapped-weight) lerp when the mean cosine
    /// exceeds 0.9995. Reductions accumulate in double (torch's float32 cascade sums land within an ulp of that);
    /// elementwise steps round to float32 as torch does, with the Python-float scalars narrowed to float32.
    /// Matches: modules/rng.py slerp
    static func slerp(_ val: Double, _ low: Tensor, _ high: Tensor) -> Tensor {
        let (c, h, w) = (low.shape[0], low.shape[1], low.shape[2])
        let v = Float(val), rest = Float(1 - val)
        var dots = [Float](repeating: 0, count: c * w)
        for k in 0..<c {
            for q in 0..<w {
                var sl = 0.0, sh = 0.0
                for r in 0..<h {
                    let i = (k * h + r) * w + q
                    sl += Double(low.scalars[i] * low.scalars[i])
                    sh += Double(high.scalars[i] * high.scalars[i])
                }
                let nl = Float(sl.squareRoot()), nh = Float(sh.squareRoot())
                var d = 0.0
                for r in 0..<h {
                    let i = (k * h + r) * w + q
                    d += Double((low.scalars[i] / nl) * (high.scalars[i] / nh))
                }
                dots[k * w + q] = Float(d)
            }
        }
        let mean = Float(dots.reduce(0.0) { $0 + Double($1) } / Double(dots.count))
        var out = low
        if mean > Float(0.9995) {
            for i in 0..<out.count { out.scalars[i] = low.scalars[i] * v + high.scalars[i] * rest }
            return out
        }
        for k in 0..<c {
            for q in 0..<w {
                let omega = Foundation.acos(dots[k * w + q]), so = Foundation.sin(omega)
                let a = Foundation.sin(rest * omega) / so, b = Foundation.sin(v * omega) / so
                for r in 0..<h {
                    let i = (k * h + r) * w + q
                    out.scalars[i] = a * low.scalars[i] + b * high.scalars[i]
                }
            }
        }
        return out
    }
}
