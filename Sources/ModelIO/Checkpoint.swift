import Foundation

/// Opens a model file as a tensor source, choosing the reader by content (magic bytes) and, when the content is
/// not recognisable, by extension so that the error comes from the reader the file claims to be for.
///
/// - zip archive (`PK\u{3}\u{4}`): a `torch.save` checkpoint → `PickleCheckpointFile`
/// - 8-byte length then `{`: safetensors → `SafetensorsFile`
public func openCheckpoint(path: String) throws -> any CheckpointFile {
    let data = try MappedFile.map(path: path)
    if ZipDirectory.looksLikeZip(data) { return try PickleCheckpointFile(data: data, name: path) }
    if data.count >= 9, data[data.startIndex + 8] == UInt8(ascii: "{") { return try SafetensorsFile(data: data, name: path) }
    switch URL(fileURLWithPath: path).pathExtension.lowercased() {
    case "safetensors": return try SafetensorsFile(data: data, name: path)
    case "ckpt", "pt", "pth", "bin": return try PickleCheckpointFile(data: data, name: path)
    default:
        throw ModelFileError.unsupportedFormat(file: path, reason: "neither a safetensors file nor a torch zip checkpoint")
    }
}
