import Foundation

/// Brownian-motion noise for the SDE samplers: `callAsFunction(sigma, sigmaNext)` returns
/// (W(sigmaNext) − W(sigma)) / √|sigmaNext − sigma| for one Brownian path W over noise levels, so overlapping
/// queries (DPM++ SDE asks for [σ, σ_mid] and then [σ, σ_next]) are consistent, as with k-diffusion's
/// `BrownianTreeNoiseSampler`.
///
/// This is the approximate form, for callers without per-seed generators: A1111 uses torchsde's `BrownianTree`
/// (one per image, entropy = the image seed), which `A1111BrownianNoise` reproduces. Here the path is built
/// lazily from the `normal` closure: W(σ_min) = 0, W(σ_max) drawn first, every new point drawn from the
/// Brownian bridge between its known neighbours (or as a free increment outside them). The statistics are the
/// same; the values are not, so SDE images differ from A1111's for the same seed.
/// Matches: k_diffusion/sampling.py BrownianTreeNoiseSampler (interface and sign conventions)
public final class BrownianNoiseSampler {
    private let tMin: Double, tMax: Double
    private let normal: () throws -> Tensor
    private var points: [(t: Double, w: Tensor)] = []

    /// `sigmaMin`/`sigmaMax`: the smallest positive and the largest sigma of the schedule.
    public init(sigmaMin: Float, sigmaMax: Float, normal: @escaping () throws -> Tensor) throws {
        guard sigmaMin > 0, sigmaMax > sigmaMin else {
            throw SamplingError.invalidParameter("Brownian noise range (\(sigmaMin), \(sigmaMax)) is empty")
        }
        tMin = Double(sigmaMin)
        tMax = Double(sigmaMax)
        self.normal = normal
    }

    /// The smallest positive and the largest sigma of a schedule (what A1111 passes).
    public convenience init(sigmas: [Float], normal: @escaping () throws -> Tensor) throws {
        let positive = sigmas.filter { $0 > 0 }
        guard let lo = positive.min(), let hi = sigmas.max() else {
            throw SamplingError.invalidSchedule("no positive sigma for Brownian noise")
        }
        try self.init(sigmaMin: lo, sigmaMax: hi, normal: normal)
    }

    public func callAsFunction(_ sigma: Float, _ sigmaNext: Float) throws -> Tensor {
        let a = Double(sigma), b = Double(sigmaNext)
        guard a != b else { throw SamplingError.invalidParameter("Brownian increment over an empty interval at \(a)") }
        let wa = try value(at: a), wb = try value(at: b)
        let scale = Float(1 / abs(b - a).squareRoot())
        return wb.zip(wa) { ($0 - $1) * scale }
    }

    private func value(at t: Double) throws -> Tensor {
        if points.isEmpty {
            let z = try normal()
            points = [(tMin, Tensor(zeros: z.shape)), (tMax, z * Float((tMax - tMin).squareRoot()))]
        }
        if let hit = points.first(where: { $0.t == t }) { return hit.w }
        let z = try normal()
        guard z.shape == points[0].w.shape else {
            throw TensorError.shapeMismatch(op: "Brownian noise", expected: points[0].w.shape, got: z.shape)
        }
        let w: Tensor
        let index = points.firstIndex { $0.t > t } ?? points.count
        if index == 0 {
            w = points[0].w.adding(z, scaledBy: Float((points[0].t - t).squareRoot()))
        } else if index == points.count {
            let last = points[points.count - 1]
            w = last.w.adding(z, scaledBy: Float((t - last.t).squareRoot()))
        } else {
            // Brownian bridge between the neighbours
            let l = points[index - 1], r = points[index]
            let f = (t - l.t) / (r.t - l.t)
            let std = ((t - l.t) * (r.t - t) / (r.t - l.t)).squareRoot()
            w = Tensor.lincomb([(1 - f, l.w), (f, r.w), (std, z)])
        }
        points.insert((t, w), at: index)
        return w
    }
}
