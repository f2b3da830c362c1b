/// A dense, contiguous, row-major Float32 tensor.
///
/// Storage is a Swift array, so copies are cheap until written (copy-on-write) and a `Tensor` is `Sendable`.
/// Shapes follow PyTorch conventions: images are `[N, C, H, W]`, token sequences `[N, T, C]`.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var scalars: [Float]

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count,
                     "Tensor: \(scalars.count) scalars do not fill shape \(shape)")
        self.shape = shape
        self.scalars = scalars
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// Allocates without zeroing; `fill` must write every element.
    public init(uninitialized shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.scalars = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try fill(buffer)
            initialized = count
        }
    }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }

    /// Size of dimension `d`; negative `d` counts from the end.
    public func dim(_ d: Int) -> Int { shape[d < 0 ? shape.count + d : d] }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            resolved[inferred] = count / max(known, 1)
        }
        return Tensor(shape: resolved, scalars: scalars)
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(6).map { String(format: "%.4f", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 6 ? ", …" : "")])"
    }
}

/// Errors raised by tensor operations and weight loading; each names what was wrong.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, expected: [Int], got: [Int])
    case missingKey(String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, expected, got):
            return "\(op): expected shape \(expected), got \(got)"
        case let .missingKey(key):
            return "missing weight '\(key)'"
        case let .invalid(message):
            return message
        }
    }
}
