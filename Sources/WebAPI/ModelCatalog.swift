import Foundation
import Pipeline

/// A LoRA file as `/sdapi/v1/loras` lists it.
public struct LoraInfo: Sendable {
    public let name: String
    public let alias: String
    public let path: String
    public let metadata: JSONObject
}

/// What only the wire format needs from the model files: safetensors metadata as ordered JSON.
extension ModelFiles {
    /// LoRAs with their metadata as A1111's `/sdapi/v1/loras` answers them.
    var loraListing: [LoraInfo] {
        loras.map { LoraInfo(name: $0.name, alias: $0.alias, path: $0.path, metadata: Self.safetensorsMetadata($0.path)) }
    }

    /// The safetensors `__metadata__` of a checkpoint (empty for other formats).
    public func metadata(of info: CheckpointInfo) -> JSONObject {
        Self.safetensorsMetadata(info.filename)
    }

    /// The `__metadata__` of a safetensors header; values that hold JSON objects are decoded, as A1111 does.
    /// Matches: modules/sd_models.py read_metadata_from_safetensors
    static func safetensorsMetadata(_ path: String) -> JSONObject {
        guard path.lowercased().hasSuffix(".safetensors") else { return JSONObject() }
        guard let handle = FileHandle(forReadingAtPath: path) else { return JSONObject() }
        defer { try? handle.close() }
        guard let lengthBytes = try? handle.read(upToCount: 8), lengthBytes.count == 8 else { return JSONObject() }
        let length = lengthBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard length < 100_000_000, let header = try? handle.read(upToCount: Int(length)),
              let parsed = try? JSONParser.parse(header), case let .object(meta)? = parsed["__metadata__"] else {
            return JSONObject()
        }
        var out = JSONObject()
        for (k, v) in meta.pairs {
            if case let .string(s) = v, s.hasPrefix("{"), let decoded = try? JSONParser.parse(s) {
                out[k] = decoded
            } else {
                out[k] = v
            }
        }
        return out
    }
}
