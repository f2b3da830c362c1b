/// `torch.nn.Linear`: `[..., in] → [..., out]`.
public struct Linear: Sendable {
    public let weight: Tensor   // [out, in]
    public let bias: Tensor?    // [out]

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    /// Reads `weight` (and `bias` when `bias` is true) under `w`, checking `[outFeatures, inFeatures]`.
    public init(_ w: WeightReader, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try w.tensor("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try w.tensor("bias", shape: [outFeatures]) : nil
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight: weight, bias: bias) }
}

/// `torch.nn.Conv2d` (groups 1): `[N, Cin, H, W] → [N, Cout, Ho, Wo]`.
public struct Conv2d: Sendable {
    public let weight: Tensor   // [Cout, Cin, k, k]
    public let bias: Tensor?    // [Cout]
    public let stride: Int
    public let padding: Int

    public init(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) {
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
    }

    public init(_ w: WeightReader, inChannels: Int, outChannels: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0, bias: Bool = true) throws {
        weight = try w.tensor("weight", shape: [outChannels, inChannels, kernel, kernel])
        self.bias = bias ? try w.tensor("bias", shape: [outChannels]) : nil
        self.stride = stride
        self.padding = padding
    }

    public var outChannels: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

/// `torch.nn.GroupNorm` with affine parameters.
public struct GroupNorm: Sendable {
    public let groups: Int
    public let eps: Float
    public let weight: Tensor   // [C]
    public let bias: Tensor     // [C]

    public init(_ w: WeightReader, groups: Int = 32, channels: Int, eps: Float = 1e-5) throws {
        self.groups = groups
        self.eps = eps
        weight = try w.tensor("weight", shape: [channels])
        bias = try w.tensor("bias", shape: [channels])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// `torch.nn.LayerNorm` over the last dimension.
public struct LayerNorm: Sendable {
    public let eps: Float
    public let weight: Tensor   // [C]
    public let bias: Tensor     // [C]

    public init(_ w: WeightReader, channels: Int, eps: Float = 1e-5) throws {
        self.eps = eps
        weight = try w.tensor("weight", shape: [channels])
        bias = try w.tensor("bias", shape: [channels])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }
}

/// `torch.nn.Embedding`: integer ids → rows of `weight` (`[vocab, dim]`).
public struct Embedding: Sendable {
    public let weight: Tensor

    public init(_ w: WeightReader, count: Int, dim: Int) throws {
        weight = try w.tensor("weight", shape: [count, dim])
    }

    /// `ids: [T]` → `[T, dim]`. Ids out of range throw.
    public func callAsFunction(_ ids: [Int]) throws -> Tensor {
        let d = weight.shape[1], vocab = weight.shape[0]
        var out = [Float]()
        out.reserveCapacity(ids.count * d)
        for id in ids {
            guard id >= 0 && id < vocab else { throw TensorError.invalid("embedding id \(id) outside 0..<\(vocab)") }
            out.append(contentsOf: weight.scalars[(id * d)..<((id + 1) * d)])
        }
        return Tensor(shape: [ids.count, d], scalars: out)
    }
}
