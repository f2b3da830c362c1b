import Foundation
@testable import Sampling

/// The analytic model of compat/reference/gen_sampling.py, evaluated the same way in float32:
/// D(x, s) = x·c1 + tanh(x)·c2 + m·c3 with c1 = 1/(1+s²), c2 = 0.3·s/(1+s²), c3 = s²/(1+s²).
enum Analytic {
    static func denoise(_ x: Tensor, _ sigma: Float, mean: Tensor) -> Tensor {
        let s = Double(sigma)
        let c1 = Float(1 / (1 + s * s)), c2 = Float(0.3 * s / (1 + s * s)), c3 = Float(s * s / (1 + s * s))
        return Tensor(uninitialized: x.shape) { out in
            x.scalars.withUnsafeBufferPointer { a in
                mean.scalars.withUnsafeBufferPointer { m in
                    for i in 0..<out.count { out[i] = (a[i] * c1 + tanhf(a[i]) * c2) + m[i] * c3 }
                }
            }
        }
    }

    /// The eps "network" used for the wrapper tests: tanh(x)·(0.5 + t/2000) + m·t/1000.
    static func eps(_ x: Tensor, _ t: Float, mean: Tensor) -> Tensor {
        let a = Float(0.5 + Double(t) / 2000), b = Float(Double(t) / 1000)
        return Tensor(uninitialized: x.shape) { out in
            x.scalars.withUnsafeBufferPointer { xs in
                mean.scalars.withUnsafeBufferPointer { m in
                    for i in 0..<out.count { out[i] = tanhf(xs[i]) * a + m[i] * b }
                }
            }
        }
    }
}

/// Serves recorded noise tensors in order and counts them.
final class RecordedNoise {
    private let list: [Tensor]
    private(set) var used = 0

    init(_ list: [Tensor]) { self.list = list }

    func next() throws -> Tensor {
        guard used < list.count else { throw SamplingError.invalidParameter("recorded noise exhausted") }
        defer { used += 1 }
        return list[used]
    }
}
