import Foundation

/// Storage types found in checkpoints. Values are widened to Float32 on read.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", i16 = "I16",
         i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// Errors from reading model files. Each names the file and, where there is one, the key.
public enum ModelFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case badHeader(file: String, reason: String)
    case truncated(file: String, key: String, needed: Int, available: Int)
    case unsupportedDType(file: String, key: String, dtype: String)
    case missingKey(file: String, key: String)
    case forbiddenGlobal(file: String, global: String)
    case badPickle(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .badHeader(file, reason): return "\(file): bad header: \(reason)"
        case let .truncated(file, key, needed, available):
            return "\(file): tensor '\(key)' needs bytes up to \(needed) but the file has \(available) (truncated?)"
        case let .unsupportedDType(file, key, dtype):
            return "\(file): tensor '\(key)' has dtype \(dtype); supported: F32, F16, BF16, F64, integer types"
        case let .missingKey(file, key): return "\(file): no tensor named '\(key)'"
        case let .forbiddenGlobal(file, global):
            return "\(file): pickle refers to '\(global)', which is not allowed in a checkpoint (refused, nothing executed)"
        case let .badPickle(file, reason): return "\(file): malformed pickle: \(reason)"
        }
    }
}

/// Converts `count` stored values of `dtype` at `raw` (little-endian) to Float32.
func widen(_ raw: UnsafeRawPointer, dtype: DType, count: Int, into out: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .f32:
        for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case .f16:
        for i in 0..<count {
            out[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
        }
    case .bf16:
        for i in 0..<count {
            let bits = UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16
            out[i] = Float(bitPattern: bits)
        }
    case .f64:
        for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
    case .i64:
        for i in 0..<count { out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
    case .i32:
        for i in 0..<count { out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
    case .i16:
        for i in 0..<count { out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
    case .i8:
        for i in 0..<count { out[i] = Float(raw.load(fromByteOffset: i, as: Int8.self)) }
    case .u8, .bool:
        for i in 0..<count { out[i] = Float(raw.load(fromByteOffset: i, as: UInt8.self)) }
    }
}

/// A safetensors file, memory-mapped; tensors are decoded lazily, one key at a time.
///
/// Layout: 8-byte little-endian header length N, N bytes of JSON `{key: {dtype, shape, data_offsets}}` (plus an
/// optional `__metadata__` string map), then the data. Every entry is checked against the file size at open.
public final class SafetensorsFile: TensorSource, @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let dtype: DType
        public let shape: [Int]
        public let begin: Int
        public let end: Int
    }

    public static let maxHeaderBytes = 100 * 1024 * 1024

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    /// Byte offset of the data section (8 + header length).
    public let dataOffset: Int
    public let keys: [String]
    private let data: Data

    public convenience init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw ModelFileError.unreadable(file: path, reason: error.localizedDescription)
        }
        try self.init(data: data, name: path)
    }

    public init(data: Data, name: String) throws {
        self.path = name
        self.data = data
        guard data.count >= 8 else { throw ModelFileError.badHeader(file: name, reason: "file shorter than 8 bytes") }
        let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw ModelFileError.badHeader(file: name, reason: "header length \(n) exceeds \(Self.maxHeaderBytes) bytes")
        }
        guard 8 + Int(n) <= data.count else {
            throw ModelFileError.badHeader(file: name, reason: "header length \(n) runs past the end of the file (\(data.count) bytes)")
        }
        dataOffset = 8 + Int(n)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataOffset))
        } catch {
            throw ModelFileError.badHeader(file: name, reason: "header is not valid JSON")
        }
        guard let dict = json as? [String: Any] else {
            throw ModelFileError.badHeader(file: name, reason: "header is not a JSON object")
        }
        let available = data.count - dataOffset
        var entries = [String: Entry]()
        var metadata = [String: String]()
        for (key, value) in dict {
            if key == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (mk, mv) in m { metadata[mk] = (mv as? String) ?? "\(mv)" }
                }
                continue
            }
            guard let e = value as? [String: Any], let dt = e["dtype"] as? String,
                  let shapeAny = e["shape"] as? [Any], let offs = e["data_offsets"] as? [Any], offs.count == 2 else {
                throw ModelFileError.badHeader(file: name, reason: "entry '\(key)' lacks dtype/shape/data_offsets")
            }
            guard let dtype = DType(rawValue: dt) else {
                throw ModelFileError.unsupportedDType(file: name, key: key, dtype: dt)
            }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw ModelFileError.badHeader(file: name, reason: "entry '\(key)' has a malformed shape")
            }
            guard let b = (offs[0] as? NSNumber)?.intValue, let en = (offs[1] as? NSNumber)?.intValue, 0 <= b, b <= en else {
                throw ModelFileError.badHeader(file: name, reason: "entry '\(key)' has malformed data_offsets")
            }
            let (elements, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, elements * dtype.byteSize == en - b else {
                throw ModelFileError.badHeader(file: name,
                    reason: "entry '\(key)': shape \(shape) of \(dt) does not match its \(en - b) data bytes")
            }
            guard en <= available else {
                throw ModelFileError.truncated(file: name, key: key, needed: dataOffset + en, available: data.count)
            }
            entries[key] = Entry(dtype: dtype, shape: shape, begin: b, end: en)
        }
        self.entries = entries
        self.metadata = metadata
        self.keys = entries.keys.sorted()
    }

    public func shape(of key: String) -> [Int]? { entries[key]?.shape }

    public func tensor(_ key: String) throws -> Tensor {
        guard let e = entries[key] else { throw ModelFileError.missingKey(file: path, key: key) }
        let count = e.shape.reduce(1, *)
        return Tensor(uninitialized: e.shape) { out in
            data.withUnsafeBytes { raw in
                widen(raw.baseAddress! + dataOffset + e.begin, dtype: e.dtype, count: count, into: out.baseAddress!)
            }
        }
    }

    /// The raw stored bytes of `key` (for hashing and re-serialising).
    public func rawBytes(_ key: String) throws -> Data {
        guard let e = entries[key] else { throw ModelFileError.missingKey(file: path, key: key) }
        return data.subdata(in: (dataOffset + e.begin)..<(dataOffset + e.end))
    }
}
