import Dispatch
import Foundation
import TensorCore

// Fused, vectorised element-wise kernels for the diffusion networks. The GEMMs stay in OpenBLAS (which
// threads itself); what is left — normalisations, activations, softmax — is memory-bound work that the
// networks run on ~10⁸ values per UNet step, so it is vectorised (SIMD16) and split over the cores here.

typealias Vec = SIMD16<Float>

/// Runs `body(chunk)` for `chunks` chunks on all cores (serially when there is only one chunk).
/// The chunks write disjoint parts of raw buffers, which the compiler cannot see; hence the unchecked box.
@inline(__always)
func parallelChunks(_ chunks: Int, _ body: (Int) -> Void) {
    if chunks <= 1 { body(0); return }
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendableBox(escapable)
        DispatchQueue.concurrentPerform(iterations: chunks) { box.value($0) }
    }
}

struct UncheckedSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Worker count for element-wise work on `elements` values: one per core, but not for small tensors.
@inline(__always)
func workers(for elements: Int) -> Int {
    elements < 1 << 15 ? 1 : min(ProcessInfo.processInfo.activeProcessorCount, 8)
}

/// eˣ for 16 lanes: Cody–Waite range reduction and the Cephes `expf` polynomial (relative error < 2e-7 on the
/// range that does not overflow; inputs below −87.3 give 0's neighbourhood, as `expf`).
@inline(__always)
func vexp(_ x: Vec) -> Vec {
    // Clamp with compare-and-select: `pointwiseMin/Max` (NaN-aware) are lowered lane by lane.
    let hi = Vec(repeating: 88.72283), lo = Vec(repeating: -87.33654)
    let upper = x.replacing(with: hi, where: x .> hi)
    let clamped = upper.replacing(with: lo, where: upper .< lo)
    // Adding 1.5·2²³ rounds to the nearest integer n and leaves n in the low mantissa bits.
    let shifted = clamped * 1.44269504088896341 + 12582912
    let n = shifted - 12582912
    let ni = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
    var r = clamped - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = Vec(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let er = p * (r * r) + r + 1
    // 2ⁿ built from the exponent bits; n ∈ [−126, 128] after clamping, split in two to stay representable.
    let half = ni &>> 1
    let s1 = unsafeBitCast((half &+ 127) &<< 23, to: Vec.self)
    let s2 = unsafeBitCast(((ni &- half) &+ 127) &<< 23, to: Vec.self)
    return er * s1 * s2
}

/// erf for 16 lanes (Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7).
@inline(__always)
func verf(_ x: Vec) -> Vec {
    let a = unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: Vec.self)
    let one = Vec(repeating: 1)
    let t = one / (one + a * 0.3275911)
    var p = Vec(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    let y = one - p * t * vexp(-(a * a))   // erf(|x|) ≥ 0: give it the sign of x
    let sign = unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x8000_0000
    return unsafeBitCast(unsafeBitCast(y, to: SIMD16<UInt32>.self) | sign, to: Vec.self)
}

@inline(__always)
func vsilu(_ x: Vec) -> Vec { x / (Vec(repeating: 1) + vexp(-x)) }

@inline(__always)
func vgelu(_ x: Vec) -> Vec { x * 0.5 * (Vec(repeating: 1) + verf(x * 0.70710678118654752)) }

@inline(__always)
func loadVec(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}

@inline(__always)
func storeVec(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
}

/// `dst[i] = vector(src[i])` for `count` values, whole SIMD lanes then the tail (`src` may equal `dst`).
@inline(__always)
func mapValues(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, _ vector: (Vec) -> Vec) {
    var i = 0
    while i + 16 <= count { storeVec(vector(loadVec(src + i)), dst + i); i += 16 }
    if i < count {
        var tail = Vec(repeating: 0)
        for j in 0..<(count - i) { tail[j] = src[i + j] }
        tail = vector(tail)
        for j in 0..<(count - i) { dst[i + j] = tail[j] }
    }
}

/// Sum of `count` values (SIMD lanes in Float, flushed to Double every 16 Ki values).
@inline(__always)
func sumOf(_ p: UnsafePointer<Float>, count: Int) -> Double {
    var acc = Vec(repeating: 0), total = 0.0, i = 0
    while i + 16 <= count {
        acc += loadVec(p + i); i += 16
        if i & 0x3FFF == 0 { total += Double(acc.sum()); acc = Vec(repeating: 0) }
    }
    total += Double(acc.sum())
    while i < count { total += Double(p[i]); i += 1 }
    return total
}

@inline(__always)
func squaredDeviation(_ p: UnsafePointer<Float>, count: Int, mean: Float) -> Double {
    var acc = Vec(repeating: 0), total = 0.0, i = 0
    let m = Vec(repeating: mean)
    while i + 16 <= count {
        let d = loadVec(p + i) - m
        acc += d * d; i += 16
        if i & 0x3FFF == 0 { total += Double(acc.sum()); acc = Vec(repeating: 0) }
    }
    total += Double(acc.sum())
    while i < count { let d = p[i] - mean; total += Double(d * d); i += 1 }
    return total
}

extension Tensor {
    /// `silu(x)` elementwise, vectorised.
    func siluFast() -> Tensor {
        var out = self
        out.withUnsafeMutableBufferPointer { mapValues($0.baseAddress!, $0.baseAddress!, count: $0.count, vsilu) }
        return out
    }

    /// Group normalisation of `[N, C, ...]` with affine `weight`/`bias`, optionally followed by SiLU, as
    /// `F.group_norm` (+ `F.silu`). Groups are spread over the cores.
    func groupNormFast(groups: Int, weight: Tensor, bias: Tensor, eps: Float, silu: Bool) -> Tensor {
        let n = shape[0], c = shape[1]
        let spatial = count / (n * c), perGroup = c / groups
        let groupSize = perGroup * spatial
        let jobs = n * groups
        return Tensor(uninitialized: shape) { out in
            let op = out.baseAddress!
            scalars.withUnsafeBufferPointer { xb in
                weight.scalars.withUnsafeBufferPointer { gb in
                    bias.scalars.withUnsafeBufferPointer { bb in
                        let xp = xb.baseAddress!, gp = gb.baseAddress!, bp = bb.baseAddress!
                        let w = min(workers(for: count), jobs)
                        parallelChunks(w) { worker in
                            for job in stride(from: worker, to: jobs, by: w) {
                                let g = job % groups
                                let base = job / groups * c * spatial + g * perGroup * spatial
                                let mean = sumOf(xp + base, count: groupSize) / Double(groupSize)
                                let variance = squaredDeviation(xp + base, count: groupSize, mean: Float(mean))
                                    / Double(groupSize)
                                let inv = 1 / (variance + Double(eps)).squareRoot()
                                for ch in 0..<perGroup {
                                    let channel = g * perGroup + ch
                                    let scale = Float(inv * Double(gp[channel]))
                                    let shift = Float(Double(bp[channel]) - mean * inv * Double(gp[channel]))
                                    let src = xp + base + ch * spatial, dst = op + base + ch * spatial
                                    if silu {
                                        mapValues(src, dst, count: spatial) { vsilu($0 * scale + shift) }
                                    } else {
                                        mapValues(src, dst, count: spatial) { $0 * scale + shift }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Layer normalisation over the last dimension with affine parameters, as `F.layer_norm`.
    func layerNormFast(weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        let d = dim(-1), rows = count / d
        return Tensor(uninitialized: shape) { out in
            let op = out.baseAddress!
            scalars.withUnsafeBufferPointer { xb in
                weight.scalars.withUnsafeBufferPointer { gb in
                    bias.scalars.withUnsafeBufferPointer { bb in
                        let xp = xb.baseAddress!, gp = gb.baseAddress!, bp = bb.baseAddress!
                        let w = workers(for: count)
                        parallelChunks(w) { worker in
                            for r in stride(from: worker, to: rows, by: w) {
                                let src = xp + r * d, dst = op + r * d
                                let mean = Float(sumOf(src, count: d) / Double(d))
                                let variance = squaredDeviation(src, count: d, mean: mean) / Double(d)
                                let inv = Float(1 / (variance + Double(eps)).squareRoot())
                                for i in 0..<d { dst[i] = (src[i] - mean) * inv * gp[i] + bp[i] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// GEGLU: the last dimension holds `(a, gate)` halves; returns `a · gelu(gate)` (exact erf GELU).
    /// `[..., 2d] → [..., d]`
    func gegluFast() -> Tensor {
        let twoD = dim(-1), d = twoD / 2, rows = count / twoD
        return Tensor(uninitialized: Array(shape.dropLast()) + [d]) { out in
            let op = out.baseAddress!
            scalars.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!
                let w = workers(for: count)
                parallelChunks(w) { worker in
                    for r in stride(from: worker, to: rows, by: w) {
                        let dst = op + r * d, a = xp + r * twoD
                        mapValues(a + d, dst, count: d, vgelu)
                        for j in 0..<d { dst[j] *= a[j] }
                    }
                }
            }
        }
    }
}

/// In-place numerically stable softmax of `rows` rows of `cols` values (row stride `ld`), vectorised.
@inline(__always)
func softmaxRowsFast(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int) {
    for r in 0..<rows {
        let row = x + r * ld
        var mv = Vec(repeating: -.infinity), i = 0
        while i + 16 <= cols { let v = loadVec(row + i); mv = mv.replacing(with: v, where: v .> mv); i += 16 }
        var m = mv.max()
        while i < cols { m = max(m, row[i]); i += 1 }
        let mvec = Vec(repeating: m)
        var sv = Vec(repeating: 0)
        i = 0
        while i + 16 <= cols { let e = vexp(loadVec(row + i) - mvec); storeVec(e, row + i); sv += e; i += 16 }
        var s = sv.sum()
        while i < cols { let e = expf(row[i] - m); row[i] = e; s += e; i += 1 }
        let inv = Vec(repeating: 1 / s)
        i = 0
        while i + 16 <= cols { storeVec(loadVec(row + i) * inv, row + i); i += 16 }
        while i < cols { row[i] *= inv[0]; i += 1 }
    }
}
