import Foundation

/// A JSON cache of model hashes beside the models, in the layout of A1111's `cache.json`:
///
///     {"hashes":        {"checkpoint/sub/model.safetensors": {"mtime": 1712345678.123, "sha256": "…"}},
///      "hashes-addnet": {"lora/style":                        {"mtime": …,              "sha256": "…"}}}
///
/// An entry is valid while the file's modification time is not later than the cached one. Other sections are
/// kept as they are when saving. A file that cannot be parsed is moved aside to `<name>.corrupt` and the cache
/// starts empty (it is rebuilt as hashes are computed); malformed entries count as absent.
///
/// Matches: stable-diffusion-webui modules/hashes.py `sha256_from_cache` / `sha256` (titles such as
/// `checkpoint/<name>`, `lora/<name>`, `textual_inversion/<name>`), modules/cache.py (the JSON layout).
public final class HashCache: @unchecked Sendable {
    public enum Kind: String, Sendable {
        /// Full-file SHA-256 (checkpoints, non-safetensors networks, embeddings).
        case sha256 = "hashes"
        /// The addnet hash of safetensors LoRAs.
        case addnet = "hashes-addnet"
    }

    public let url: URL
    /// True when the file existed but was unreadable as a cache and was moved aside.
    public let recoveredFromCorruption: Bool
    private var root: [String: Any]
    private let lock = NSLock()

    public init(url: URL) {
        self.url = url
        var recovered = false
        var root = [String: Any]()
        if let data = try? Data(contentsOf: url) {
            if let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] {
                root = dict
            } else {
                let aside = url.appendingPathExtension("corrupt")
                try? FileManager.default.removeItem(at: aside)
                try? FileManager.default.moveItem(at: url, to: aside)
                recovered = true
            }
        }
        self.root = root
        self.recoveredFromCorruption = recovered
    }

    /// The cached hash of `file` under `title`, or nil when absent, malformed or older than the file.
    public func cachedHash(title: String, file: String, kind: Kind = .sha256) -> String? {
        guard let onDisk = try? MappedFile.modificationTime(path: file) else { return nil }
        lock.lock(); defer { lock.unlock() }
        guard let entry = (root[kind.rawValue] as? [String: Any])?[title] as? [String: Any],
              let hash = entry["sha256"] as? String, Self.isSHA256Hex(hash) else { return nil }
        let cachedTime = entry["mtime"].flatMap(Self.exactDouble) ?? 0
        return onDisk > cachedTime ? nil : hash
    }

    /// The hash of `file`: from the cache when still valid, else computed, stored and saved.
    public func hash(title: String, file: String, kind: Kind = .sha256) throws -> String {
        if let cached = cachedHash(title: title, file: file, kind: kind) { return cached }
        let mtime = try MappedFile.modificationTime(path: file)
        let value = kind == .addnet ? try ModelHashes.addnetHash(file: file) : try ModelHashes.sha256(file: file)
        try store(title: title, kind: kind, sha256: value, mtime: mtime)
        return value
    }

    /// The hash A1111 keeps for a LoRA/LyCORIS file: addnet for safetensors, full SHA-256 otherwise.
    /// Matches: extensions-builtin/Lora/network.py `NetworkOnDisk.read_hash`
    public func networkHash(name: String, file: String) throws -> String {
        let isSafetensors = URL(fileURLWithPath: file).pathExtension.lowercased() == "safetensors"
        return try hash(title: "lora/" + name, file: file, kind: isSafetensors ? .addnet : .sha256)
    }

    /// Records a hash and writes the cache file (atomically).
    public func store(title: String, kind: Kind, sha256: String, mtime: Double) throws {
        lock.lock(); defer { lock.unlock() }
        var section = root[kind.rawValue] as? [String: Any] ?? [:]
        section[title] = ["mtime": mtime, "sha256": sha256]
        root[kind.rawValue] = section
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        } catch {
            throw ModelFileError.unreadable(file: url.path, reason: "cannot encode hash cache: \(error)")
        }
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
        } catch {
            throw ModelFileError.unreadable(file: url.path, reason: "cannot write hash cache: \(error.localizedDescription)")
        }
    }

    /// A JSON number as Double. Foundation parses long decimals into NSDecimalNumber, whose `doubleValue` is not
    /// correctly rounded; its text is, so an mtime written by us (or by Python's `repr`) reads back exactly.
    private static func exactDouble(_ value: Any) -> Double? {
        if let decimal = value as? NSDecimalNumber { return Double(decimal.description) }
        return (value as? NSNumber)?.doubleValue
    }

    private static func isSHA256Hex(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
