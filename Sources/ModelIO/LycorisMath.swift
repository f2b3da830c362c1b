import Foundation

/// The arithmetic precision of a network module's weight change. Plain LoRA factors are widened to float32 by
/// A1111; LyCORIS modules (LoHa, LoKr, full) compute in their file's dtype, every torch op rounding its float32
/// result once to that dtype, and the layer weight is rounded through it when the change is added.
/// Matches: extensions-builtin/Lora/network_lora.py create_module (LoRA to devices.dtype);
/// network_hada.py, network_lokr.py, network_full.py (file dtype); networks.py network_apply_weights
public enum ModulePrecision: Sendable, Equatable {
    case f32, f16, bf16

    /// The precision of tensors stored as `dtypes` (float32 unless every one is the same 16-bit type).
    static func of(_ dtypes: [DType?]) -> ModulePrecision {
        if !dtypes.isEmpty, dtypes.allSatisfy({ $0 == .f16 }) { return .f16 }
        if !dtypes.isEmpty, dtypes.allSatisfy({ $0 == .bf16 }) { return .bf16 }
        return .f32
    }

    /// `x` rounded to this precision (to nearest, ties to even).
    @inline(__always)
    func round(_ x: Float) -> Float {
        switch self {
        case .f32: return x
        case .f16: return Float(Float16(x))
        case .bf16:
            let bits = x.bitPattern
            guard x.isFinite else { return x }
            let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
            return Float(bitPattern: rounded & 0xFFFF_0000)
        }
    }

    func round(_ t: Tensor) -> Tensor { self == .f32 ? t : t.map { round($0) } }
}

/// Shapes and products of LyCORIS factors. Every function assumes shapes already checked by `LoraNetwork`.
enum LycorisMath {
    /// `a [m, k] · b [k, n]` as torch computes it at `precision`: float32 through sgemm; 16-bit as exact float32
    /// products summed in ascending k, rounded once.
    /// Matches: extensions-builtin/Lora/lyco_helpers.py rebuild_conventional (the matmul)
    static func matmul(_ a: Tensor, _ b: Tensor, _ p: ModulePrecision) -> Tensor {
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        if p == .f32 { return a.matmul(b) }
        return Tensor(uninitialized: [m, n]) { out in
            a.withUnsafeBufferPointer { ab in
                b.withUnsafeBufferPointer { bb in
                    for i in 0..<m {
                        for j in 0..<n {
                            var acc = ab[i * k] * bb[j]
                            for q in 1..<max(1, k) { acc += ab[i * k + q] * bb[q * n + j] }
                            out[i * n + j] = p.round(acc)
                        }
                    }
                }
            }
        }
    }

    /// `up [out, …] · down [r, …]` flattened to 2-D: `[out, numel(down) / r]`.
    static func conventional(_ up: Tensor, _ down: Tensor, _ p: ModulePrecision) -> Tensor {
        matmul(up.reshaped([up.shape[0], up.count / up.shape[0]]), down.reshaped([down.shape[0], down.count / down.shape[0]]), p)
    }

    /// CP rebuild of a conv from `t [r, r', k, l]`, `wa [r, out]`, `wb [r', in]` → `[out, in, k, l]`, two einsums
    /// each rounded: `tmp = t ×₂ wb`, then `out = tmp ×₁ wa`.
    /// Matches: extensions-builtin/Lora/lyco_helpers.py make_weight_cp
    static func cp(_ t: Tensor, _ wa: Tensor, _ wb: Tensor, _ p: ModulePrecision) -> Tensor {
        let (r, r2) = (t.shape[0], t.shape[1]), kl = t.count / (r * r2)
        let (outC, inC) = (wa.shape[1], wb.shape[1])
        // tmp[i, n, s] = Σ_j t[i, j, s] · wb[j, n]
        let tmp = Tensor(uninitialized: [r, inC, kl]) { o in
            t.withUnsafeBufferPointer { tb in
                wb.withUnsafeBufferPointer { bb in
                    for i in 0..<r { for n in 0..<inC { for s in 0..<kl {
                        var acc: Float = 0
                        for j in 0..<r2 { acc = j == 0 ? tb[(i * r2) * kl + s] * bb[n] : acc + tb[(i * r2 + j) * kl + s] * bb[j * inC + n] }
                        o[(i * inC + n) * kl + s] = p.round(acc)
                    } } }
                }
            }
        }
        // out[o, n, s] = Σ_i tmp[i, n, s] · wa[i, o]
        return Tensor(uninitialized: [outC, inC] + Array(t.shape.dropFirst(2))) { o in
            tmp.withUnsafeBufferPointer { tb in
                wa.withUnsafeBufferPointer { ab in
                    for oc in 0..<outC { for n in 0..<inC { for s in 0..<kl {
                        var acc: Float = 0
                        for i in 0..<r { acc = i == 0 ? tb[n * kl + s] * ab[oc] : acc + tb[(i * inC + n) * kl + s] * ab[i * outC + oc] }
                        o[(oc * inC + n) * kl + s] = p.round(acc)
                    } } }
                }
            }
        }
    }

    /// Kronecker product of 2-D `a [m, n]` with `b [p, q, …]` → `[m·p, n·q, …]`, each product rounded.
    /// Matches: extensions-builtin/Lora/network_lokr.py make_kron (torch.kron with a unsqueezed to b's rank)
    static func kron(_ a: Tensor, _ b: Tensor, _ prec: ModulePrecision) -> Tensor {
        let (m, n, pr, q) = (a.shape[0], a.shape[1], b.shape[0], b.shape[1]), inner = b.count / (pr * q)
        return Tensor(uninitialized: [m * pr, n * q] + Array(b.shape.dropFirst(2))) { o in
            a.withUnsafeBufferPointer { ab in
                b.withUnsafeBufferPointer { bb in
                    for i in 0..<m { for p in 0..<pr { for j in 0..<n { for qq in 0..<q { for s in 0..<inner {
                        o[(((i * pr + p) * n + j) * q + qq) * inner + s] = prec.round(ab[i * n + j] * bb[(p * q + qq) * inner + s])
                    } } } } }
                }
            }
        }
    }
}
