@_exported import TensorCore
import Foundation

/// A model file that hands out named tensors and knows how they are stored.
public protocol CheckpointFile: TensorSource {
    /// The path the file was opened from (used in every error message).
    var path: String { get }
    /// Free-form string metadata (safetensors `__metadata__`; scalar top-level values of a pickle checkpoint).
    var metadata: [String: String] { get }
    /// The stored dtype of `key`, or nil when absent.
    func dtype(of key: String) -> DType?
    /// The stored little-endian bytes of `key`, row-major (e.g. to keep F16/BF16 weights compact).
    func rawBytes(_ key: String) throws -> Data
}

/// A safetensors file, memory-mapped; tensors are decoded lazily, one key at a time.
///
/// Layout: 8-byte little-endian header length N, N bytes of JSON `{key: {dtype, shape, data_offsets}}` (plus an
/// optional `__metadata__` string map), then the data. The whole header is validated at open: dtypes, shapes
/// against byte counts, offsets inside the file and not overlapping. Decoding a tensor afterwards cannot fail.
public final class SafetensorsFile: CheckpointFile, @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let dtype: DType
        public let shape: [Int]
        /// Byte range inside the data section.
        public let begin: Int
        public let end: Int
    }

    /// Same bound as the reference implementation (100 MB of header JSON).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    /// Byte offset of the data section (8 + header length).
    public let dataOffset: Int
    public let keys: [String]
    private let data: Data

    /// Opens and validates `path` (memory-mapped, nothing is read eagerly beyond the header).
    public convenience init(path: String) throws {
        try self.init(data: MappedFile.map(path: path), name: path)
    }

    /// Validates an in-memory safetensors image; `name` is used in error messages.
    public init(data: Data, name: String) throws {
        self.path = name
        self.data = data
        let size = data.count
        guard size >= 8 else {
            throw ModelFileError.truncated(file: name, key: "header length", needed: 8, available: size)
        }
        let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw ModelFileError.badHeader(file: name, reason: "header length \(n) exceeds \(Self.maxHeaderBytes) bytes")
        }
        guard n >= 2 else { throw ModelFileError.badHeader(file: name, reason: "header length \(n) is too small") }
        guard 8 + Int(n) <= size else {
            throw ModelFileError.truncated(file: name, key: "header", needed: 8 + Int(n), available: size)
        }
        dataOffset = 8 + Int(n)
        let headerBytes = data.subdata(in: data.startIndex + 8 ..< data.startIndex + dataOffset)
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw ModelFileError.badHeader(file: name, reason: "header does not start with '{' (not a safetensors file?)")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw ModelFileError.badHeader(file: name, reason: "header is not valid JSON")
        }
        guard let dict = json as? [String: Any] else {
            throw ModelFileError.badHeader(file: name, reason: "header is not a JSON object")
        }
        var entries = [String: Entry]()
        var metadata = [String: String]()
        for (key, value) in dict {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw ModelFileError.badHeader(file: name, reason: "__metadata__ is not an object")
                }
                for (mk, mv) in m { metadata[mk] = (mv as? String) ?? "\(mv)" }
                continue
            }
            entries[key] = try Self.parseEntry(key: key, value: value, file: name, available: size - dataOffset)
        }
        try Self.checkOverlaps(entries, file: name)
        self.entries = entries
        self.metadata = metadata
        self.keys = entries.keys.sorted()
    }

    private static func parseEntry(key: String, value: Any, file: String, available: Int) throws -> Entry {
        guard let e = value as? [String: Any], let dt = e["dtype"] as? String,
              let shapeAny = e["shape"] as? [Any], let offs = e["data_offsets"] as? [Any] else {
            throw ModelFileError.badHeader(file: file, reason: "entry '\(key)' lacks dtype, shape or data_offsets")
        }
        guard let dtype = DType(rawValue: dt) else {
            throw ModelFileError.unsupportedDType(file: file, key: key, dtype: dt)
        }
        let shape = shapeAny.compactMap(exactInt)
        guard shape.count == shapeAny.count, shape.count <= 16, shape.allSatisfy({ $0 >= 0 }) else {
            throw ModelFileError.badHeader(file: file, reason: "entry '\(key)' has a malformed shape")
        }
        guard offs.count == 2, let b = exactInt(offs[0]), let en = exactInt(offs[1]), 0 <= b, b <= en else {
            throw ModelFileError.badHeader(file: file, reason: "entry '\(key)' has malformed data_offsets")
        }
        guard let elements = elementCount(shape),
              case let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize), !overflow,
              bytes == en - b else {
            throw ModelFileError.badHeader(file: file,
                reason: "entry '\(key)': shape \(shape) of \(dt) does not match its \(en - b) data bytes")
        }
        guard en <= available else {
            throw ModelFileError.truncated(file: file, key: key, needed: en, available: available)
        }
        return Entry(dtype: dtype, shape: shape, begin: b, end: en)
    }

    /// Non-empty data ranges must be disjoint (holes between them are tolerated).
    private static func checkOverlaps(_ entries: [String: Entry], file: String) throws {
        let ranges = entries.filter { $0.value.end > $0.value.begin }
            .sorted { ($0.value.begin, $0.key) < ($1.value.begin, $1.key) }
        for (previous, next) in zip(ranges, ranges.dropFirst()) where next.value.begin < previous.value.end {
            throw ModelFileError.overlappingData(file: file, key: next.key, other: previous.key)
        }
    }

    public func shape(of key: String) -> [Int]? { entries[key]?.shape }

    public func dtype(of key: String) -> DType? { entries[key]?.dtype }

    public func tensor(_ key: String) throws -> Tensor {
        guard let e = entries[key] else { throw ModelFileError.missingKey(file: path, key: key) }
        let count = (e.end - e.begin) / e.dtype.byteSize
        return Tensor(uninitialized: e.shape) { out in
            guard count > 0 else { return }
            data.withUnsafeBytes { raw in
                widen(raw.baseAddress! + dataOffset + e.begin, dtype: e.dtype, count: count, into: out.baseAddress!)
            }
        }
    }

    /// Calls `body` with the stored little-endian bytes of `key`, without copying (e.g. to keep F16/BF16 compact).
    public func withRawBytes<R>(_ key: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let e = entries[key] else { throw ModelFileError.missingKey(file: path, key: key) }
        return try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[(dataOffset + e.begin)..<(dataOffset + e.end)]))
        }
    }

    /// A copy of the raw stored bytes of `key` (for hashing and re-serialising).
    public func rawBytes(_ key: String) throws -> Data {
        try withRawBytes(key) { Data($0) }
    }
}

/// An integral JSON number as Int, or nil for fractions, non-numbers and values outside ±2^53.
private func exactInt(_ value: Any) -> Int? {
    guard let n = value as? NSNumber else { return nil }
    let d = n.doubleValue
    guard d.isFinite, d.rounded() == d, abs(d) <= 9_007_199_254_740_992 else { return nil }
    return n.int64Value == Int64(d) ? Int(n.int64Value) : nil
}
