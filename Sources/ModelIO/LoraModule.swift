import Foundation

/// One network module of a LoRA / LyCORIS file: the factors that change one checkpoint weight (and, for `full`
/// modules with `diff_b`, its bias).
public struct LoraModule: Sendable {
    /// A LoKr factor: stored whole, as a product `a · b`, or as a CP rebuild `t, a, b`.
    public enum KronFactor: Sendable {
        case whole(Tensor)
        case product(Tensor, Tensor)
        case cp(t: Tensor, a: Tensor, b: Tensor)
    }

    public enum Factors: Sendable {
        /// `up [out, r(,1,1)] · down [r, in(,k,k)]`, or with `mid [r, r, k, k]` the CP rebuild (LoCon).
        case lora(up: Tensor, down: Tensor, mid: Tensor?)
        /// `(w1a · w1b) ⊙ (w2a · w2b)`; with `t1`/`t2` each product is a CP rebuild.
        case loha(w1a: Tensor, w1b: Tensor, t1: Tensor?, w2a: Tensor, w2b: Tensor, t2: Tensor?)
        /// `w1 ⊗ w2`.
        case lokr(w1: KronFactor, w2: KronFactor)
        /// The change itself, and optionally a bias change.
        case full(diff: Tensor, bias: Tensor?)
    }

    /// The module name in the file (`lora_unet_…`).
    public let name: String
    /// A1111's layer name of the patched layer.
    public let layer: String
    /// Checkpoint key of the patched weight, and its stored shape.
    public let targetKey: String
    public let targetShape: [Int]
    public let factors: Factors
    /// `scale`, else `alpha / dim` (dim as each type defines it), else 1.
    public let scale: Double
    public let precision: ModulePrecision

    /// Text-encoder layers take the te multiplier, the rest the UNet multiplier.
    /// Matches: extensions-builtin/Lora/network.py NetworkModule.multiplier
    public var isTextEncoder: Bool { layer.prefix(20).contains("transformer") }

    /// The checkpoint key of the bias this module changes, if any.
    public var biasKey: String? {
        guard case .full(_, let bias?) = factors, bias.count > 0 else { return nil }
        return String(targetKey.dropLast("weight".count)) + "bias"
    }

    /// The weight change at `multiplier`, in the target's stored shape: the rebuilt factors, times the scale, times
    /// the multiplier, each step rounded to the module's precision. `dynDim` keeps a LoRA's first ranks only.
    /// Matches: extensions-builtin/Lora/network_lora.py, network_hada.py, network_lokr.py, network_full.py
    /// calc_updown; network.py NetworkModule.finalize_updown; lyco_helpers.py
    public func delta(multiplier: Double, dynDim: Int?) -> Tensor {
        let p = precision
        var updown: Tensor
        switch factors {
        case let .lora(up, down, mid):
            updown = Self.loraProduct(up: up, down: down, mid: mid, dynDim: dynDim)
        case let .loha(w1a, w1b, t1, w2a, w2b, t2):
            let u1 = t1.map { LycorisMath.cp($0, w1a, w1b, p) } ?? LycorisMath.conventional(w1a, w1b, p)
            let u2 = t2.map { LycorisMath.cp($0, w2a, w2b, p) } ?? LycorisMath.conventional(w2a, w2b, p)
            updown = u1.zip(u2.reshaped(u1.shape)) { p.round($0 * $1) }
        case let .lokr(w1, w2):
            updown = LycorisMath.kron(Self.kronFactor(w1, p), Self.kronFactor(w2, p), p)
        case let .full(diff, _):
            updown = diff
        }
        updown = p.round(updown * Float(scale))
        updown = p.round(updown * Float(multiplier))
        let targetCount = targetShape.reduce(1, *)
        if updown.count == targetCount { return updown.reshaped(targetShape) }
        // A 4-channel conv_in change on a 9-channel inpainting UNet: zero for the 5 extra input channels.
        // Matches: extensions-builtin/Lora/networks.py network_apply_weights (inpainting pad)
        let out = targetShape[0], inner = updown.count / (out * 4)
        let padded = Tensor.concat([updown.reshaped([out, 4, inner]), Tensor(zeros: [out, 5, inner])], axis: 1)
        return padded.reshaped(targetShape)
    }

    /// `weight` with this module applied: `w + Δ` in float32 for LoRA; for 16-bit LyCORIS modules the weight is
    /// rounded to the module's dtype, the sum rounded again, and the result kept as float32.
    /// Matches: extensions-builtin/Lora/networks.py network_apply_weights
    public func applied(to weight: Tensor, multiplier: Double, dynDim: Int?) -> Tensor {
        let d = delta(multiplier: multiplier, dynDim: dynDim).reshaped(weight.shape)
        guard precision != .f32 else { return weight + d }
        let p = precision
        return weight.zip(d) { p.round(p.round($0) + $1) }
    }

    /// `bias` with a `full` module's bias change (`diff_b · multiplier`, in the module's dtype) added in float32.
    public func appliedToBias(_ bias: Tensor, multiplier: Double) -> Tensor {
        guard case .full(_, let change?) = factors, change.count == bias.count else { return bias }
        let p = precision
        return bias + change.reshaped(bias.shape).map { p.round($0 * Float(multiplier)) }
    }

    /// `up · down` (or the LoCon CP rebuild) in float32, `[out, in·k·k]` or `[out, in, k·k]`.
    /// Matches: extensions-builtin/Lora/lyco_helpers.py rebuild_conventional, rebuild_cp_decomposition
    static func loraProduct(up: Tensor, down: Tensor, mid: Tensor?, dynDim: Int?) -> Tensor {
        let out = up.shape[0], rank = down.shape[0]
        var up2 = up.reshaped([out, up.count / out])                      // [out, r]
        var down2 = down.reshaped([rank, down.count / rank])              // [r, in·k·k]
        if let mid {
            // einsum('n m k l, i n, m j -> i j k l', mid, up, down)
            let (n, m) = (mid.shape[0], mid.shape[1]), kl = mid.count / (n * m)
            let t = up2.matmul(mid.reshaped([n, m * kl]))                   // [out, m·kl]
                .reshaped([out, m, kl]).permuted([0, 2, 1])                   // [out, kl, m]
            return t.matmul(down2).permuted([0, 2, 1])                       // [out, in, kl]
        }
        if let dynDim, dynDim < up2.shape[1] {
            up2 = up2.slice(axis: 1, 0..<dynDim)
            down2 = down2.slice(axis: 0, 0..<dynDim)
        }
        return up2.matmul(down2)                                             // [out, in·k·k]
    }

    static func kronFactor(_ f: KronFactor, _ p: ModulePrecision) -> Tensor {
        switch f {
        case let .whole(t): return t
        case let .product(a, b): return LycorisMath.matmul(a, b, p)
        case let .cp(t, a, b): return LycorisMath.cp(t, a, b, p)
        }
    }
}
