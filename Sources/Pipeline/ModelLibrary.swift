import Foundation

/// A LoRA file as the model folder lists it.
/// Matches: extensions-builtin/Lora/network.py NetworkOnDisk
public struct LoraFileInfo: Sendable, Equatable {
    /// File stem ("style" for `Lora/sub/style.safetensors`).
    public let name: String
    /// `ss_output_name` from the safetensors metadata, else `name`.
    public let alias: String
    public let path: String
    /// 12-hex hash as `Lora hashes` writes it (`sshs_model_hash` metadata, else the addnet hash of a
    /// safetensors file, else the file's sha256); nil when the file could not be read.
    public let shortHash: String?

    public init(name: String, alias: String, path: String, shortHash: String?) {
        self.name = name
        self.alias = alias
        self.path = path
        self.shortHash = shortHash
    }
}

/// A VAE file (`Models/VAE/*`, or `*.vae.*` beside the checkpoints).
public struct VAEFileInfo: Sendable, Equatable {
    /// File name with extension, as A1111's `sd_vae` option and the `VAE` infotext key use it.
    public let name: String
    public let path: String
    /// First 10 hex of the file's sha256, as `VAE hash`; nil when unreadable.
    public let shortHash: String?

    public init(name: String, path: String, shortHash: String?) {
        self.name = name
        self.path = path
        self.shortHash = shortHash
    }
}

/// The model files a job may use besides its checkpoint, looked up by the names prompts and options use.
/// Lookups run on the job queue and may hash a file the first time (through the hash cache).
public protocol ModelLibrary: Sendable {
    /// A LoRA by the name a `<lora:name:…>` tag uses (file stem or alias).
    /// Matches: extensions-builtin/Lora/networks.py load_networks (available_network_aliases lookup)
    func lora(named name: String) -> LoraFileInfo?
    /// A VAE by its `sd_vae` name (file name with extension).
    func vae(named name: String) -> VAEFileInfo?
    /// For `sd_vae` "Automatic": the first VAE whose file name starts with the checkpoint's stem.
    /// Matches: modules/sd_vae.py find_vae_near_checkpoint
    func vae(nearCheckpoint checkpoint: CheckpointInfo) -> VAEFileInfo?
    /// The textual-inversion embeddings of the embeddings folder for a text encoder of `width`.
    func embeddings(width: Int) -> EmbeddingDatabase
}

/// A library with nothing in it (jobs use the checkpoint alone).
public struct EmptyModelLibrary: ModelLibrary {
    public init() {}
    public func lora(named name: String) -> LoraFileInfo? { nil }
    public func vae(named name: String) -> VAEFileInfo? { nil }
    public func vae(nearCheckpoint checkpoint: CheckpointInfo) -> VAEFileInfo? { nil }
    public func embeddings(width: Int) -> EmbeddingDatabase { EmbeddingDatabase() }
}
