import Foundation

/// Anything that can hand out named tensors: a safetensors file, a pickle checkpoint, an in-memory dictionary,
/// a LoRA overlay. Values are always Float32 once read; the source converts from its stored dtype.
public protocol TensorSource: Sendable {
    /// Every key this source holds, in a stable order.
    var keys: [String] { get }
    /// The shape of `key` without reading its data, or nil when absent.
    func shape(of key: String) -> [Int]?
    /// Reads `key` as Float32. Throws (naming the key) when it is absent or cannot be decoded.
    func tensor(_ key: String) throws -> Tensor
}

/// A `TensorSource` over a dictionary; used by tests and by generated models.
public struct DictionaryTensorSource: TensorSource {
    public let tensors: [String: Tensor]
    public init(_ tensors: [String: Tensor]) { self.tensors = tensors }
    public var keys: [String] { tensors.keys.sorted() }
    public func shape(of key: String) -> [Int]? { tensors[key]?.shape }
    public func tensor(_ key: String) throws -> Tensor {
        guard let t = tensors[key] else { throw TensorError.missingKey(key) }
        return t
    }
}

/// Reads weights by checkpoint key, scoped like the module tree: `w["input_blocks"]["1"]["0"]["weight"]`.
///
/// Every read checks the stored shape against the shape the layer expects and remembers the key, so that after
/// a network is built `unusedKeys(under:)` reports what the file held that no layer consumed.
public final class WeightReader: @unchecked Sendable {
    private final class Ledger: @unchecked Sendable {
        let lock = NSLock()
        var used = Set<String>()
        var missing = [String]()
    }

    public let source: any TensorSource
    public let prefix: String
    private let ledger: Ledger

    public init(_ source: any TensorSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
        self.ledger = Ledger()
    }

    private init(_ source: any TensorSource, prefix: String, ledger: Ledger) {
        self.source = source
        self.prefix = prefix
        self.ledger = ledger
    }

    /// A reader scoped one module deeper.
    public subscript(_ component: String) -> WeightReader {
        WeightReader(source, prefix: key(component), ledger: ledger)
    }

    public subscript(_ index: Int) -> WeightReader { self[String(index)] }

    /// The full checkpoint key of `name` under this scope.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    public func contains(_ name: String) -> Bool { source.shape(of: key(name)) != nil }

    /// Shape of `name` under this scope, or nil when the file does not hold it.
    public func shape(_ name: String) -> [Int]? { source.shape(of: key(name)) }

    /// Reads `name`, requiring `shape` when given. Missing keys and shape mismatches throw with the full key.
    public func tensor(_ name: String, shape expected: [Int]? = nil) throws -> Tensor {
        let full = key(name)
        guard let stored = source.shape(of: full) else {
            ledger.lock.lock(); ledger.missing.append(full); ledger.lock.unlock()
            throw TensorError.missingKey(full)
        }
        if let expected, stored != expected {
            // A [O, I, 1, 1] conv and an [O, I] linear hold the same numbers; accept either for 1×1 projections.
            guard stored.reduce(1, *) == expected.reduce(1, *),
                  stored.filter({ $0 != 1 }) == expected.filter({ $0 != 1 }) else {
                throw TensorError.shapeMismatch(op: "weight '\(full)'", expected: expected, got: stored)
            }
        }
        let t = try source.tensor(full)
        ledger.lock.lock(); ledger.used.insert(full); ledger.lock.unlock()
        return expected.map { t.reshaped($0) } ?? t
    }

    /// Reads `name` if present (for optional parameters such as biases), else nil.
    public func optionalTensor(_ name: String, shape expected: [Int]? = nil) throws -> Tensor? {
        contains(name) ? try tensor(name, shape: expected) : nil
    }

    /// Keys under this reader's scope that no layer has read.
    public func unusedKeys() -> [String] {
        let scope = prefix.isEmpty ? "" : prefix + "."
        ledger.lock.lock(); defer { ledger.lock.unlock() }
        return source.keys.filter { $0.hasPrefix(scope) && !ledger.used.contains($0) }
    }

    /// Keys that a layer asked for and the source did not hold.
    public func missingKeys() -> [String] {
        ledger.lock.lock(); defer { ledger.lock.unlock() }
        return ledger.missing
    }
}
