import Crypto
import Foundation
import Logging
import Pipeline

/// A LoRA file as `/sdapi/v1/loras` lists it.
public struct LoraInfo: Sendable {
    public let name: String
    public let alias: String
    public let path: String
    public let metadata: JSONObject
}

/// The model files under `--models-dir`, named and hashed the way A1111 does (checkpoints, VAEs, LoRAs,
/// embeddings, hypernetworks). Hashes are cached in `cache.json` (A1111's format) in the data dir.
/// Matches: modules/sd_models.py list_models, modules/hashes.py sha256/calculate_sha256, modules/cache.py
public final class ModelCatalog: @unchecked Sendable {
    public let modelsDir: String
    private let cacheFile: String?
    private let logger: Logger
    private let lock = NSLock()
    private var checkpointList: [CheckpointInfo] = []
    private var vaeList: [(name: String, path: String)] = []
    private var loraList: [LoraInfo] = []
    private var embeddingFiles: [String] = []
    private var hypernetworkFiles: [String] = []

    public static let checkpointExtensions: Set<String> = ["safetensors", "ckpt"]
    static let vaeExtensions: Set<String> = ["safetensors", "ckpt", "pt"]
    static let loraExtensions: Set<String> = ["safetensors", "ckpt", "pt"]

    public init(modelsDir: String, dataDir: String?, logger: Logger = Logger(label: "sdapi.models")) {
        self.modelsDir = URL(fileURLWithPath: modelsDir).standardizedFileURL.path
        cacheFile = dataDir.map { URL(fileURLWithPath: $0).appendingPathComponent("cache.json").path }
        self.logger = logger
        refreshAll()
    }

    public var checkpointDir: String { modelsDir + "/Stable-diffusion" }
    var vaeDir: String { modelsDir + "/VAE" }
    var loraDir: String { modelsDir + "/Lora" }
    var embeddingsDir: String { modelsDir + "/embeddings" }
    var hypernetworksDir: String { modelsDir + "/hypernetworks" }

    public func refreshAll() {
        refreshCheckpoints()
        refreshVAEs()
        refreshLoras()
        let emb = ModelFolder.list(embeddingsDir, extensions: ["safetensors", "pt", "bin"])
        let hyp = ModelFolder.list(hypernetworksDir, extensions: ["pt"])
        lock.lock()
        embeddingFiles = emb
        hypernetworkFiles = hyp
        lock.unlock()
    }

    public func refreshCheckpoints() {
        let cache = readHashCache()
        let infos = ModelFolder.list(checkpointDir, extensions: Self.checkpointExtensions).map { path in
            var info = CheckpointInfo(filename: path, modelsFolder: checkpointDir, legacyHash: Self.legacyHash(path),
                                      sha256: nil)
            info.sha256 = Self.cachedHash(cache, key: "checkpoint/\(info.name)", path: path)
            return info
        }
        lock.lock()
        checkpointList = infos
        lock.unlock()
    }

    public func refreshVAEs() {
        let list = ModelFolder.list(vaeDir, extensions: Self.vaeExtensions).map {
            (name: ($0 as NSString).lastPathComponent, path: $0)
        }
        lock.lock()
        vaeList = list
        lock.unlock()
    }

    public func refreshLoras() {
        let list = ModelFolder.list(loraDir, extensions: Self.loraExtensions).map { path -> LoraInfo in
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            let meta = path.lowercased().hasSuffix(".safetensors") ? Self.safetensorsMetadata(path) : JSONObject()
            let alias = meta["ss_output_name"]?.stringValue ?? stem
            return LoraInfo(name: stem, alias: alias, path: path, metadata: meta)
        }
        lock.lock()
        loraList = list
        lock.unlock()
    }

    public var checkpoints: [CheckpointInfo] { lock.lock(); defer { lock.unlock() }; return checkpointList }
    public var vaes: [(name: String, path: String)] { lock.lock(); defer { lock.unlock() }; return vaeList }
    public var loras: [LoraInfo] { lock.lock(); defer { lock.unlock() }; return loraList }
    public var hypernetworks: [String] { lock.lock(); defer { lock.unlock() }; return hypernetworkFiles }

    /// Finds a checkpoint by any alias A1111 accepts (title, name, stem, model_name, short/legacy/full hash).
    /// Only names from the listing match, so `../` or absolute paths never reach the file system.
    public func checkpoint(matching alias: String) -> CheckpointInfo? {
        checkpoints.first { $0.aliases.contains(alias) }
    }

    /// Computes (or reads from cache) the full sha256 of a checkpoint, as A1111 does when it loads one.
    @discardableResult
    public func hashCheckpoint(_ info: CheckpointInfo) -> CheckpointInfo {
        if info.sha256 != nil { return info }
        let started = Date()
        guard let digest = Self.sha256(ofFile: info.filename) else {
            logger.error("could not read \(info.filename) to hash it")
            return info
        }
        var hashed = info
        hashed.sha256 = digest
        logger.info("hashed \(info.name): \(digest.prefix(10)) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        writeHash(key: "checkpoint/\(info.name)", path: info.filename, sha256: digest)
        lock.lock()
        if let i = checkpointList.firstIndex(where: { $0.filename == info.filename }) { checkpointList[i] = hashed }
        lock.unlock()
        return hashed
    }

    /// The safetensors `__metadata__` of a checkpoint (empty for other formats).
    public func metadata(of info: CheckpointInfo) -> JSONObject {
        info.filename.lowercased().hasSuffix(".safetensors") ? Self.safetensorsMetadata(info.filename) : JSONObject()
    }

    // MARK: hashing

    /// sha256 of the whole file in 1 MiB blocks, lowercase hex.
    /// Matches: modules/hashes.py calculate_sha256
    static func sha256(ofFile path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                return nil
            }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The pre-2023 "model hash": sha256 of the 64 KiB at offset 1 MiB, first 8 hex; "NOFILE" when unreadable.
    /// Matches: modules/sd_models.py model_hash
    static func legacyHash(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "NOFILE" }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: 0x100000)
            let block = try handle.read(upToCount: 0x10000) ?? Data()
            return String(SHA256.hash(data: block).map { String(format: "%02x", $0) }.joined().prefix(8))
        } catch {
            return "NOFILE"
        }
    }

    /// The `__metadata__` of a safetensors header; values that hold JSON objects are decoded, as A1111 does.
    /// Matches: modules/sd_models.py read_metadata_from_safetensors
    static func safetensorsMetadata(_ path: String) -> JSONObject {
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

    private func readHashCache() -> JSONObject {
        guard let cacheFile, let data = FileManager.default.contents(atPath: cacheFile),
              let parsed = try? JSONParser.parse(data), case let .object(o) = parsed else { return JSONObject() }
        return o["hashes"]?.objectValue ?? JSONObject()
    }

    private static func cachedHash(_ cache: JSONObject, key: String, path: String) -> String? {
        guard let entry = cache[key]?.objectValue, case let .string(sha)? = entry["sha256"],
              let mtime = Self.mtime(path) else { return nil }
        let cached: Double
        switch entry["mtime"] {
        case let .double(d)?: cached = d
        case let .int(i)?: cached = Double(i)
        default: return nil
        }
        return mtime <= cached ? sha : nil
    }

    private static func mtime(_ path: String) -> Double? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)?
            .map { $0.timeIntervalSince1970 }
    }

    private func writeHash(key: String, path: String, sha256: String) {
        guard let cacheFile, let mtime = Self.mtime(path) else { return }
        lock.lock(); defer { lock.unlock() }
        var root = JSONObject()
        if let data = FileManager.default.contents(atPath: cacheFile), let parsed = try? JSONParser.parse(data),
           case let .object(o) = parsed {
            root = o
        }
        var hashes = root["hashes"]?.objectValue ?? JSONObject()
        hashes[key] = .object(JSONObject([("mtime", .double(mtime)), ("sha256", .string(sha256))]))
        root["hashes"] = .object(hashes)
        do {
            try FileManager.default.createDirectory(atPath: (cacheFile as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try JSONValue.object(root).serialized().write(toFile: cacheFile, atomically: true, encoding: .utf8)
        } catch {
            logger.warning("could not write hash cache \(cacheFile): \(error)")
        }
    }
}
