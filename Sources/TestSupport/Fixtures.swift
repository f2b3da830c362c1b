import Foundation
import ModelIO

/// Locates and reads the committed reference fixtures under `fixtures/` (made by `make fixtures`, see
/// `compat/reference/`). Used only by test targets.
public enum Fixtures {
    /// The package root, found from this file's compile-time path.
    public static let packageRoot: URL = {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    public static func url(_ relative: String) -> URL {
        packageRoot.appendingPathComponent("fixtures").appendingPathComponent(relative)
    }

    /// Opens `fixtures/<relative>` as a safetensors file.
    public static func safetensors(_ relative: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: url(relative).path)
    }

    /// Decodes `fixtures/<relative>` as JSON.
    public static func json<T: Decodable>(_ relative: String, as type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(relative)))
    }

    /// Untyped JSON (for fixtures whose structure varies per case).
    public static func jsonObject(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url(relative)))
    }
}

/// How far apart two tensors are, for parity assertions with stated tolerances.
public struct Closeness: CustomStringConvertible, Sendable {
    public let maxAbs: Float
    /// max |a-b| / (max |b| + tiny): a scale-free bound.
    public let relativeToPeak: Float

    public init(_ a: Tensor, _ b: Tensor) {
        precondition(a.shape == b.shape, "Closeness: shapes \(a.shape) vs \(b.shape)")
        var m: Float = 0, peak: Float = 0
        for i in 0..<a.count {
            m = max(m, abs(a.scalars[i] - b.scalars[i]))
            peak = max(peak, abs(b.scalars[i]))
        }
        maxAbs = m
        relativeToPeak = m / (peak + 1e-12)
    }

    public var description: String { "maxAbs=\(maxAbs) relativeToPeak=\(relativeToPeak)" }
}

/// Writes F32 tensors as a safetensors file (for tests that need model files of their own making).
public enum SafetensorsWriter {
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        try image(tensors, metadata: metadata).write(to: URL(fileURLWithPath: path))
    }

    /// The file's bytes.
    public static func image(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header = [String: Any](), bytes = [UInt8]()
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        for (key, t) in tensors.sorted(by: { $0.key < $1.key }) {
            let begin = bytes.count
            for v in t.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            header[key] = ["dtype": "F32", "shape": t.shape, "data_offsets": [begin, bytes.count]] as [String: Any]
        }
        return try image(header: header, data: bytes)
    }

    /// A file from an arbitrary header object and data section (also malformed ones, for hostile-input tests).
    public static func image(header: [String: Any], data: [UInt8]) throws -> Data {
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(contentsOf: data)
        return out
    }
}
