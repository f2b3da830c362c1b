import Foundation

/// One generator of the selected `randn_source`: torch's CPU generator, or the Philox stream that reproduces NVIDIA
/// GPU noise (used for "GPU" and "NV").
enum NoiseGenerator {
    case torchCPU(TorchGenerator)
    case philox(PhiloxGenerator)

    init(seed: Int64, source: NoiseSourceKind) {
        let s = UInt64(bitPattern: seed)
        self = source == .cpu ? .torchCPU(TorchGenerator(seed: s)) : .philox(PhiloxGenerator(seed: s))
    }

    mutating func randn(_ shape: [Int]) -> Tensor {
        switch self {
        case var .torchCPU(g): let t = g.randn(shape); self = .torchCPU(g); return t
        case var .philox(g): let t = g.randn(shape); self = .philox(g); return t
        }
    }
}

/// A1111's per-image noise for one batch: the initial latent noise (with variation seeds and seed resize) from
/// `next()`'s first call, then the extra noise of ancestral samplers from each image's generator (reseeded with
/// seed + ENSD after the initial latent).
/// Matches: modules/rng.py ImageRNG, randn, randn_local, slerp
public final class ImageNoise: BatchNoise {
    public let shape: [Int]   // [C, h, w] of one image
    public let seeds: [Int64]
    public let subseeds: [Int64]
    public let subseedStrength: Float
    public let resizeFromH: Int
    public let resizeFromW: Int
    public let source: NoiseSourceKind
    public let etaNoiseSeedDelta: Int64
    private var generators: [NoiseGenerator]
    private var isFirst = true

    public init(shape: [Int], seeds: [Int64], subseeds: [Int64], subseedStrength: Float, resizeFromH: Int,
                resizeFromW: Int, source: NoiseSourceKind, etaNoiseSeedDelta: Int64) {
        self.shape = shape
        self.seeds = seeds
        self.subseeds = subseeds
        self.subseedStrength = subseedStrength
        self.resizeFromH = resizeFromH
        self.resizeFromW = resizeFromW
        self.source = source
        self.etaNoiseSeedDelta = etaNoiseSeedDelta
        generators = seeds.map { NoiseGenerator(seed: $0, source: source) }
    }

    /// The noise factory the pipeline uses: A1111's ImageRNG for the request's seeds and noise options.
    public static let factory: BatchNoiseFactory = { shape, seeds, subseeds, r in
        ImageNoise(shape: shape, seeds: seeds, subseeds: subseeds, subseedStrength: Float(r.subseedStrength),
                   resizeFromH: r.seedResizeFromH, resizeFromW: r.seedResizeFromW, source: r.noiseSource,
                   etaNoiseSeedDelta: r.etaNoiseSeedDelta)
    }

    /// A fresh generator's first tensor for `seed` (A1111 `randn` / `randn_local`).
    func randnFresh(_ seed: Int64, _ shape: [Int]) -> Tensor {
        var g = NoiseGenerator(seed: seed, source: source)
        return g.randn(shape)
    }

    /// `[B, C, h, w]`: the initial noise on the first call, per-step noise afterwards.
    public func next() throws -> Tensor {
        if isFirst {
            isFirst = false
            return first()
        }
        var parts = [Tensor]()
        for i in generators.indices { parts.append(generators[i].randn(shape)) }
        return Tensor.concat(parts.map { $0.reshaped([1] + shape) }, axis: 0)
    }

    public func seededNormal(seed: UInt64, shape: [Int]) throws -> Tensor {
        randnFresh(Int64(bitPattern: seed), shape)
    }

    private func first() -> Tensor {
        let resized = resizeFromH > 0 && resizeFromW > 0
        let noiseShape = resized ? [shape[0], resizeFromH / 8, resizeFromW / 8] : shape
        var images = [Tensor]()
        for (i, seed) in seeds.enumerated() {
            var sub: Tensor?
            if subseedStrength != 0 {
                sub = randnFresh(i < subseeds.count ? subseeds[i] : 0, noiseShape)
            }
            var noise = resized ? randnFresh(seed, noiseShape) : generators[i].randn(shape)
            if let sub { noise = Self.slerp(subseedStrength, noise, sub) }
            if resized {
                var x = generators[i].randn(shape)
                Self.paste(noise, into: &x)
                noise = x
            }
            images.append(noise.reshaped([1] + shape))
        }
        if etaNoiseSeedDelta != 0 {
            generators = seeds.map { NoiseGenerator(seed: $0 + etaNoiseSeedDelta, source: source) }
        }
        return Tensor.concat(images, axis: 0)
    }

    /// Centres `noise` ([C, nh, nw]) over `x` ([C, h, w]), cropping whichever is larger.
    static func paste(_ noise: Tensor, into x: inout Tensor) {
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (nh, nw) = (noise.shape[1], noise.shape[2])
        // Python floor division, as rng.py computes the offsets.
        func floorHalf(_ v: Int) -> Int { v >= 0 ? v / 2 : -((-v + 1) / 2) }
        let dx = floorHalf(w - nw), dy = floorHalf(h - nh)
        let cw = dx >= 0 ? nw : nw + 2 * dx
        let ch = dy >= 0 ? nh : nh + 2 * dy
        let tx = max(dx, 0), ty = max(dy, 0)
        let sx = max(-dx, 0), sy = max(-dy, 0)
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

    /// Spherical interpolation between two noise tensors `[C, H, W]`, normalising over dim 1 as A1111 does.
    /// Matches: modules/rng.py slerp
    static func slerp(_ val: Float, _ low: Tensor, _ high: Tensor) -> Tensor {
        let (c, h, w) = (low.shape[0], low.shape[1], low.shape[2])
        // Norms over dim 1 → [C, W].
        func norms(_ t: Tensor) -> [Float] {
            var n = [Float](repeating: 0, count: c * w)
            for k in 0..<c { for q in 0..<w {
                var s: Float = 0
                for r in 0..<h { let v = t.scalars[(k * h + r) * w + q]; s += v * v }
                n[k * w + q] = s.squareRoot()
            } }
            return n
        }
        let nl = norms(low), nh = norms(high)
        var dot = [Float](repeating: 0, count: c * w)
        for k in 0..<c { for q in 0..<w {
            var s: Float = 0
            for r in 0..<h {
                let i = (k * h + r) * w + q
                s += (low.scalars[i] / nl[k * w + q]) * (high.scalars[i] / nh[k * w + q])
            }
            dot[k * w + q] = s
        } }
        let mean = dot.reduce(0, +) / Float(dot.count)
        if mean > 0.9995 { return low * val + high * (1 - val) }
        var out = low
        for k in 0..<c { for q in 0..<w {
            let omega = acosf(dot[k * w + q]), so = sinf(omega)
            let a = sinf((1 - val) * omega) / so, b = sinf(val * omega) / so
            for r in 0..<h {
                let i = (k * h + r) * w + q
                out.scalars[i] = a * low.scalars[i] + b * high.scalars[i]
            }
        } }
        return out
    }
}
