import Foundation

/// A model file found under `Models/`, named the way A1111 names it.
/// Matches: modules/sd_models.py CheckpointInfo
public struct CheckpointInfo: Sendable, Equatable {
    /// Absolute path of the file.
    public let filename: String
    /// Path relative to the model folder, with extension ("sub/model.safetensors").
    public let name: String
    /// File stem without folders ("model"), as `Model:` in the infotext.
    public let nameForExtra: String
    /// `name` without extension, folder separators replaced by "_".
    public let modelName: String
    /// Legacy 8-hex hash (sha256 of 64 KiB at 1 MiB), always known.
    public let legacyHash: String
    /// Full-file sha256, known once hashed (A1111 hashes a checkpoint when it is first loaded).
    public var sha256: String?

    public init(filename: String, modelsFolder: String, legacyHash: String, sha256: String?) {
        self.filename = filename
        let folder = modelsFolder.hasSuffix("/") ? modelsFolder : modelsFolder + "/"
        name = filename.hasPrefix(folder) ? String(filename.dropFirst(folder.count))
                                          : (filename as NSString).lastPathComponent
        nameForExtra = ((filename as NSString).lastPathComponent as NSString).deletingPathExtension
        modelName = (name.replacingOccurrences(of: "\\", with: "_").replacingOccurrences(of: "/", with: "_")
                     as NSString).deletingPathExtension
        self.legacyHash = legacyHash
        self.sha256 = sha256
    }

    /// First 10 hex digits of the sha256.
    public var shorthash: String? { sha256.map { String($0.prefix(10)) } }

    /// "name [shorthash]" once hashed, else "name".
    public var title: String { shorthash.map { "\(name) [\($0)]" } ?? name }

    /// Every string A1111 accepts for this checkpoint (`checkpoint_aliases`).
    public var aliases: [String] {
        var ids = [legacyHash, modelName, title, name, nameForExtra, "\(name) [\(legacyHash)]"]
        if let sha256, let short = shorthash {
            ids += [short, sha256, "\(name) [\(short)]", "\(nameForExtra) [\(short)]"]
        }
        return ids
    }
}

/// Lists model files of one kind under a folder (recursively), sorted as A1111 sorts them (case-insensitive name).
public enum ModelFolder {
    public static func list(_ folder: String, extensions: Set<String>) -> [String] {
        let root = URL(fileURLWithPath: folder)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                          options: [.skipsHiddenFiles]) else { return [] }
        var files = [String]()
        for case let url as URL in walker where extensions.contains(url.pathExtension.lowercased()) {
            files.append(url.standardizedFileURL.path)
        }
        return files.sorted { $0.lowercased() < $1.lowercased() }
    }

    /// True when `candidate` (after resolving `..` and links) lies inside `folder`.
    public static func contains(_ folder: String, _ candidate: String) -> Bool {
        let base = URL(fileURLWithPath: folder).standardizedFileURL.resolvingSymlinksInPath().path
        let path = URL(fileURLWithPath: candidate).standardizedFileURL.resolvingSymlinksInPath().path
        return path == base || path.hasPrefix(base.hasSuffix("/") ? base : base + "/")
    }
}
