import Foundation
import Logging
import ModelIO

/// The model files under `--models-dir` (A1111's layout), named and hashed as A1111 does, with hashes kept in
/// `cache.json` (A1111's format, `ModelIO.HashCache`) so that a restart does not re-hash gigabytes.
/// It is the `ModelLibrary` jobs look LoRAs and VAEs up in.
/// Matches: modules/sd_models.py list_models; modules/sd_vae.py refresh_vae_list;
/// extensions-builtin/Lora/networks.py process_network_files
public final class ModelFiles: ModelLibrary, @unchecked Sendable {
    /// A LoRA as listed, before hashing.
    public struct Lora: Sendable {
        public let name: String
        public let alias: String
        public let path: String
    }

    public let modelsDir: String
    private let cache: HashCache?
    private let logger: Logger
    private let lock = NSLock()
    private var checkpointList: [CheckpointInfo] = []
    private var vaeList: [(name: String, path: String)] = []
    private var loraList: [Lora] = []
    private var embeddingFiles: [String] = []
    private var embeddingCache: [String: (mtime: Double, embedding: TextualInversionEmbedding?)] = [:]
    /// Hashes computed without a cache file, by kind, path and modification time.
    private var memoryHashes: [String: String] = [:]
    private var hypernetworkFiles: [String] = []

    public static let checkpointExtensions: Set<String> = ["safetensors", "ckpt"]
    static let networkExtensions: Set<String> = ["safetensors", "ckpt", "pt"]

    public init(modelsDir: String, dataDir: String?, logger: Logger = Logger(label: "sdapi.models")) {
        self.modelsDir = URL(fileURLWithPath: modelsDir).standardizedFileURL.path
        cache = dataDir.map { HashCache(url: URL(fileURLWithPath: $0).appendingPathComponent("cache.json")) }
        self.logger = logger
        if cache?.recoveredFromCorruption == true {
            logger.warning("hash cache in \(dataDir ?? "") was unreadable; moved aside, hashes will be recomputed")
        }
        refreshAll()
    }

    public var checkpointDir: String { modelsDir + "/Stable-diffusion" }
    public var vaeDir: String { modelsDir + "/VAE" }
    public var loraDir: String { modelsDir + "/Lora" }
    public var embeddingsDir: String { modelsDir + "/embeddings" }
    public var hypernetworksDir: String { modelsDir + "/hypernetworks" }

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

    /// Checkpoints (`*.vae.*` files beside them are VAEs, not checkpoints), with hashes the cache still holds.
    public func refreshCheckpoints() {
        let infos = ModelFolder.list(checkpointDir, extensions: Self.checkpointExtensions)
            .filter { !Self.isVAEBesideCheckpoints($0) }
            .map { path -> CheckpointInfo in
                let legacy = (try? ModelHashes.legacyModelHash(file: path)) ?? "NOFILE"
                var info = CheckpointInfo(filename: path, modelsFolder: checkpointDir, legacyHash: legacy, sha256: nil)
                info.sha256 = cache?.cachedHash(title: "checkpoint/\(info.name)", file: path)
                return info
            }
        lock.lock()
        checkpointList = infos
        lock.unlock()
    }

    /// `VAE/**/*.{ckpt,pt,safetensors}` and `Stable-diffusion/**/*.vae.*`, keyed by file name, natural order.
    public func refreshVAEs() {
        let paths = ModelFolder.list(checkpointDir, extensions: Self.networkExtensions).filter(Self.isVAEBesideCheckpoints)
            + ModelFolder.list(vaeDir, extensions: Self.networkExtensions)
        var byName = [String: String](), order = [String]()
        for path in paths {
            let name = (path as NSString).lastPathComponent
            if byName[name] == nil { order.append(name) }
            byName[name] = path
        }
        let list = order.sorted { Self.naturalLess($0, $1) }.map { (name: $0, path: byName[$0] ?? "") }
        lock.lock()
        vaeList = list
        lock.unlock()
    }

    public func refreshLoras() {
        let list = ModelFolder.list(loraDir, extensions: Self.networkExtensions).map { path -> Lora in
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            return Lora(name: stem, alias: Self.metadata(path)["ss_output_name"] ?? stem, path: path)
        }
        lock.lock()
        loraList = list
        lock.unlock()
    }

    public var checkpoints: [CheckpointInfo] { lock.lock(); defer { lock.unlock() }; return checkpointList }
    public var vaes: [(name: String, path: String)] { lock.lock(); defer { lock.unlock() }; return vaeList }
    public var loras: [Lora] { lock.lock(); defer { lock.unlock() }; return loraList }
    public var hypernetworks: [String] { lock.lock(); defer { lock.unlock() }; return hypernetworkFiles }
    public var embeddingPaths: [String] { lock.lock(); defer { lock.unlock() }; return embeddingFiles }

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
        var hashed = info
        do {
            hashed.sha256 = try hash(title: "checkpoint/\(info.name)", file: info.filename, kind: .sha256)
        } catch {
            logger.error("could not hash \(info.filename): \(error)")
            return info
        }
        logger.info("hashed \(info.name): \(hashed.shorthash ?? "") in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        lock.lock()
        if let i = checkpointList.firstIndex(where: { $0.filename == info.filename }) { checkpointList[i] = hashed }
        lock.unlock()
        return hashed
    }

    // MARK: ModelLibrary

    /// By alias first; an alias two files share is "forbidden" and then only a file stem matches.
    /// Matches: extensions-builtin/Lora/networks.py process_network_files, load_networks
    public func lora(named name: String) -> LoraFileInfo? {
        let list = loras
        var byName = [String: Lora](), byAlias = [String: Lora]()
        var forbidden: Set<String> = ["none", "addams"]
        for entry in list {
            byName[entry.name] = entry
            if byAlias[entry.alias] != nil { forbidden.insert(entry.alias.lowercased()) }
            byAlias[entry.name] = entry
            byAlias[entry.alias] = entry
        }
        guard let entry = forbidden.contains(name.lowercased()) ? byName[name] : byAlias[name] else { return nil }
        let isSafetensors = entry.path.lowercased().hasSuffix(".safetensors")
        let hash = Self.metadata(entry.path)["sshs_model_hash"]
            ?? (try? hash(title: "lora/\(entry.name)", file: entry.path, kind: isSafetensors ? .addnet : .sha256))
        if hash == nil { logger.warning("could not hash LoRA \(entry.path)") }
        return LoraFileInfo(name: entry.name, alias: entry.alias, path: entry.path,
                            shortHash: hash.map(ModelHashes.addnetShortHash))
    }

    public func vae(named name: String) -> VAEFileInfo? {
        vaes.first { $0.name == name }.map(vaeInfo)
    }

    public func vae(nearCheckpoint checkpoint: CheckpointInfo) -> VAEFileInfo? {
        let stem = (checkpoint.filename as NSString).lastPathComponent.split(separator: ".", omittingEmptySubsequences: false)
            .dropLast().joined(separator: ".")
        return vaes.first { $0.name.hasPrefix(stem) }.map(vaeInfo)
    }

    /// Every embedding file read once per modification (empty files skipped, unreadable ones logged), hashed
    /// through the cache as `textual_inversion/<name>`.
    /// Matches: modules/textual_inversion/textual_inversion.py EmbeddingDatabase.load_from_dir, load_from_file
    public func embeddings(width: Int) -> EmbeddingDatabase {
        var found = [TextualInversionEmbedding]()
        for path in embeddingPaths {
            let mtime = (try? MappedFile.modificationTime(path: path)) ?? 0
            lock.lock()
            let cached = embeddingCache[path]
            lock.unlock()
            if let cached, cached.mtime == mtime {
                if let e = cached.embedding { found.append(e) }
                continue
            }
            var embedding: TextualInversionEmbedding?
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            if size > 0 {
                do {
                    var e = try TextualInversionEmbedding(path: path)
                    e.shortHash = (try? hash(title: "textual_inversion/\(e.name)", file: path, kind: .sha256))
                        .map { String($0.prefix(12)) }
                    embedding = e
                } catch {
                    logger.error("Error loading embedding \((path as NSString).lastPathComponent): \(error)")
                }
            }
            lock.lock()
            embeddingCache[path] = (mtime, embedding)
            lock.unlock()
            if let embedding { found.append(embedding) }
        }
        return EmbeddingDatabase(found, width: width)
    }

    /// The text encoder width of a checkpoint from its token-embedding shape (768 for SD1), read from the file's
    /// index without loading weights; nil when the file is unreadable or holds no SD1 text encoder.
    public func textEncoderWidth(of checkpoint: CheckpointInfo) -> Int? {
        let key = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
        guard let shape = (try? openCheckpoint(path: checkpoint.filename))?.shape(of: key), shape.count == 2 else {
            return nil
        }
        return shape[1]
    }

    private func vaeInfo(_ entry: (name: String, path: String)) -> VAEFileInfo {
        let sha = try? hash(title: "vae/\(entry.name)", file: entry.path, kind: .sha256)
        return VAEFileInfo(name: entry.name, path: entry.path, shortHash: sha.map(ModelHashes.shorthash))
    }

    // MARK: helpers

    /// Through the cache file when there is one, else remembered in memory for the file's modification time.
    private func hash(title: String, file: String, kind: HashCache.Kind) throws -> String {
        if let cache { return try cache.hash(title: title, file: file, kind: kind) }
        let key = "\(kind.rawValue)|\(file)|\((try? MappedFile.modificationTime(path: file)) ?? 0)"
        lock.lock()
        let known = memoryHashes[key]
        lock.unlock()
        if let known { return known }
        let value = kind == .addnet ? try ModelHashes.addnetHash(file: file) : try ModelHashes.sha256(file: file)
        lock.lock()
        memoryHashes[key] = value
        lock.unlock()
        return value
    }

    /// String metadata of a safetensors file (empty for other formats or unreadable files).
    static func metadata(_ path: String) -> [String: String] {
        guard path.lowercased().hasSuffix(".safetensors") else { return [:] }
        return (try? SafetensorsFile(path: path).metadata) ?? [:]
    }

    static func isVAEBesideCheckpoints(_ path: String) -> Bool {
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension.lowercased()
        return stem.hasSuffix(".vae")
    }

    /// Digit runs compare as numbers, the rest case-insensitively.
    /// Matches: modules/shared_items.py natural_sort_key
    static func naturalLess(_ a: String, _ b: String) -> Bool {
        func parts(_ s: String) -> [Either] {
            var out = [Either](), text = "", digits = ""
            for c in s.lowercased() {
                if c.isASCII && c.isNumber {
                    if !text.isEmpty { out.append(.text(text)); text = "" }
                    digits.append(c)
                } else {
                    if !digits.isEmpty { out.append(.number(Int(digits) ?? 0)); digits = "" }
                    text.append(c)
                }
            }
            if !text.isEmpty { out.append(.text(text)) }
            if !digits.isEmpty { out.append(.number(Int(digits) ?? 0)) }
            return out
        }
        let (pa, pb) = (parts(a), parts(b))
        for (x, y) in zip(pa, pb) where x != y { return x < y }
        return pa.count < pb.count
    }

    enum Either: Comparable {
        case text(String), number(Int)
        static func < (l: Either, r: Either) -> Bool {
            switch (l, r) {
            case let (.text(a), .text(b)): return a < b
            case let (.number(a), .number(b)): return a < b
            case (.number, .text): return true
            case (.text, .number): return false
            }
        }
    }
}
