import Foundation
import ModelIO

/// A textual-inversion embedding: vectors that stand in for tokens where its name appears in a prompt.
/// Matches: modules/textual_inversion/textual_inversion.py Embedding, create_embedding_from_data
public struct TextualInversionEmbedding: Sendable {
    /// File stem, which prompts use.
    public let name: String
    public let path: String
    public let vectors: Tensor          // [n, C]
    /// Training metadata as A1111's own `.pt` files carry it (nil for other formats).
    public let step: Int?
    public let sdCheckpoint: String?
    public let sdCheckpointName: String?
    /// 12 hex of the file's sha256, as `TI hashes` writes it; nil when unreadable.
    public var shortHash: String?

    /// Width of each vector (768 for SD1, 1280 + 768 for an SDXL pair).
    public var shape: Int { vectors.shape[1] }
    public var vectorCount: Int { vectors.shape[0] }

    public init(name: String, path: String, vectors: Tensor, step: Int? = nil, sdCheckpoint: String? = nil,
                sdCheckpointName: String? = nil, shortHash: String? = nil) {
        self.name = name
        self.path = path
        self.vectors = vectors
        self.step = step
        self.sdCheckpoint = sdCheckpoint
        self.sdCheckpointName = sdCheckpointName
        self.shortHash = shortHash
    }

    /// Reads an embedding file: A1111's `.pt` (`string_to_param` with one entry), a diffusers concept (`.bin`
    /// or `.safetensors` with one tensor, `[C]` or `[n, C]`, e.g. `emb_params`), or an SDXL pair
    /// (`clip_g` + `clip_l`, kept only to be listed as skipped). Anything else is an error naming the file.
    public init(path: String) throws {
        let file = try openCheckpoint(path: path)
        name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        self.path = path
        func fail(_ why: String) -> ModelFileError { .unsupportedFormat(file: path, reason: why) }
        let params = file.keys.filter { $0.hasPrefix("string_to_param.") }
        let tensor: Tensor
        if !params.isEmpty {
            guard params.count == 1, let key = params.first else { throw fail("embedding file has multiple terms in it") }
            tensor = try file.tensor(key)
        } else if file.keys.contains("clip_g"), file.keys.contains("clip_l") {
            let g = try file.tensor("clip_g"), l = try file.tensor("clip_l")
            guard g.rank == 2, l.rank == 2, g.shape[0] == l.shape[0] else { throw fail("clip_g/clip_l shapes differ") }
            tensor = Tensor.concat([g, l], axis: 1)
        } else if file.keys.count == 1, let key = file.keys.first {
            tensor = try file.tensor(key)
        } else {
            throw fail("neither a textual inversion embedding nor a diffusers concept (keys: \(file.keys.prefix(5).joined(separator: ", ")))")
        }
        switch tensor.rank {
        case 1: vectors = tensor.reshaped([1, tensor.count])
        case 2 where tensor.shape[0] > 0 && tensor.shape[1] > 0: vectors = tensor
        default: throw fail("embedding vectors have shape \(tensor.shape), expected [C] or [n, C]")
        }
        guard vectors.scalars.allSatisfy(\.isFinite) else { throw fail("embedding vectors are not all finite") }
        step = file.metadata["step"].flatMap { Int($0) }
        sdCheckpoint = file.metadata["sd_checkpoint"]
        sdCheckpointName = file.metadata["sd_checkpoint_name"]
        shortHash = nil
    }
}

/// The embeddings of the embeddings folder as they apply to one text encoder width: `loaded` (sorted by name,
/// case-insensitively) and `skipped` (another width).
/// Matches: modules/textual_inversion/textual_inversion.py EmbeddingDatabase.load_textual_inversion_embeddings
public struct EmbeddingDatabase: Sendable {
    public var loaded: [TextualInversionEmbedding] = []
    public var skipped: [TextualInversionEmbedding] = []

    public init(loaded: [TextualInversionEmbedding] = [], skipped: [TextualInversionEmbedding] = []) {
        self.loaded = loaded
        self.skipped = skipped
    }

    /// Sorts `embeddings` (in folder order) into loaded and skipped for a text encoder of `width`.
    public init(_ embeddings: [TextualInversionEmbedding], width: Int) {
        var byName = [String: TextualInversionEmbedding]()
        for e in embeddings {
            if e.shape == width { byName[e.name] = e } else { skipped.append(e) }
        }
        loaded = byName.values.sorted { $0.name.lowercased() < $1.name.lowercased() }
    }

    public func embedding(named name: String) -> TextualInversionEmbedding? { loaded.first { $0.name == name } }
}
