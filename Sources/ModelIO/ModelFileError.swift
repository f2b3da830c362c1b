/// Errors from reading model files (which are untrusted input). Each names the file and, where there is one,
/// the tensor key or archive entry.
public enum ModelFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case badHeader(file: String, reason: String)
    case truncated(file: String, key: String, needed: Int, available: Int)
    case overlappingData(file: String, key: String, other: String)
    case unsupportedDType(file: String, key: String, dtype: String)
    case missingKey(file: String, key: String)
    case forbiddenGlobal(file: String, global: String)
    case badPickle(file: String, reason: String)
    case badArchive(file: String, reason: String)
    case badTensor(file: String, key: String, reason: String)
    case unsupportedFormat(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .badHeader(file, reason): return "\(file): bad header: \(reason)"
        case let .truncated(file, key, needed, available):
            return "\(file): '\(key)' needs bytes up to \(needed) but only \(available) are there (truncated?)"
        case let .overlappingData(file, key, other):
            return "\(file): data of tensor '\(key)' overlaps that of '\(other)'"
        case let .unsupportedDType(file, key, dtype):
            let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(file): tensor '\(key)' has dtype \(dtype); supported: \(known)"
        case let .missingKey(file, key): return "\(file): no tensor named '\(key)'"
        case let .forbiddenGlobal(file, global):
            return "\(file): pickle refers to '\(global)', which is not allowed in a checkpoint (refused, nothing executed)"
        case let .badPickle(file, reason): return "\(file): malformed pickle: \(reason)"
        case let .badArchive(file, reason): return "\(file): bad checkpoint archive: \(reason)"
        case let .badTensor(file, key, reason): return "\(file): tensor '\(key)': \(reason)"
        case let .unsupportedFormat(file, reason): return "\(file): unsupported model file: \(reason)"
        }
    }
}
