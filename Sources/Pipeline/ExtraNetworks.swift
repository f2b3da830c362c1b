import Foundation
import ModelIO
import Networks
import Tokenizer

/// One `<lora:name:te:unet:dyn>` tag resolved to a file.
public struct LoraSelection: Sendable, Equatable {
    public let file: LoraFileInfo
    /// The name as the prompt wrote it (file stem or alias); `Lora hashes` keys use it.
    public let mentionedName: String
    public let teMultiplier: Double
    public let unetMultiplier: Double
    public let dynDim: Int?
}

/// What one pass (first pass or hires pass) runs with: the model with its LoRAs merged, and the
/// `Lora hashes` entries of those LoRAs in prompt order.
public struct ActiveNetworks: @unchecked Sendable {
    public let model: LoadedModel
    public let loraHashes: [(name: String, hash: String)]
    /// 12-hex hashes of the textual-inversion embeddings the model's text encoder knows, by name.
    public let embeddingHashes: [String: String]

    public init(model: LoadedModel, loraHashes: [(name: String, hash: String)] = [],
                embeddingHashes: [String: String] = [:]) {
        self.model = model
        self.loraHashes = loraHashes
        self.embeddingHashes = embeddingHashes
    }

    /// `TI hashes` after text-encoder calls that used `calls[i]` embeddings, in call order: each call writes its
    /// own entries followed by what was there (so the last call's come first), names without `:` and `,`.
    /// Matches: modules/sd_hijack_clip.py TextConditionalModel.forward (TI hashes)
    public func tiHashes(calls: [[String]]) -> String? {
        var text: String?
        for names in calls {
            var entries = names.compactMap { name in
                embeddingHashes[name].map { "\(name.filter { $0 != ":" && $0 != "," }): \($0)" }
            }
            guard !entries.isEmpty else { continue }
            if let text { entries.append(text) }
            text = entries.joined(separator: ", ")
        }
        return text
    }
}

/// The LoRA side of A1111's extra networks: reading `<lora:…>` tags, finding their files, merging them.
public enum LoraTags {
    /// Tag kinds the Lora extension answers to (`lyco` is its registered alias).
    static let kinds: Set<String> = ["lora", "lyco"]

    /// The multipliers of one tag: positional `name:te:unet:dyn`, or named `te=`, `unet=`, `dyn=`; unet defaults
    /// to te, te to 1. Nil when a multiplier is not a number (A1111 then skips the batch's LoRAs).
    /// Matches: extensions-builtin/Lora/extra_networks_lora.py ExtraNetworkLora.activate;
    /// modules/extra_networks.py ExtraNetworkParams
    public static func parameters(_ tag: ExtraNetworkTag) -> (name: String, te: Double, unet: Double, dyn: Int?)? {
        var positional = [String](), named = [String: String]()
        for item in tag.items {
            let parts = item.split(separator: "=", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 2 { named[String(parts[0])] = String(parts[1]) } else { positional.append(item) }
        }
        guard let name = positional.first else { return nil }
        func number(_ s: String) -> Double? { Double(s.trimmingCharacters(in: .whitespaces)) }
        func integer(_ s: String) -> Int? { Int(s.trimmingCharacters(in: .whitespaces)) }
        var te = 1.0
        if positional.count > 1 { guard let v = number(positional[1]) else { return nil }; te = v }
        if let s = named["te"] { guard let v = number(s) else { return nil }; te = v }
        var unet = te
        if positional.count > 2 { guard let v = number(positional[2]) else { return nil }; unet = v }
        if let s = named["unet"] { guard let v = number(s) else { return nil }; unet = v }
        var dyn: Int?
        if positional.count > 3 { guard let v = integer(positional[3]) else { return nil }; dyn = v }
        if let s = named["dyn"] { guard let v = integer(s) else { return nil }; dyn = v }
        return (name, te, unet, dyn)
    }

    /// The LoRAs a batch's prompts ask for (tags of the first prompt, as A1111 applies one set per batch), and the
    /// names no file answers to. A malformed multiplier drops the whole set, as A1111's failed activation does.
    public static func select(prompts: [String], library: any ModelLibrary)
        -> (selected: [LoraSelection], missing: [String], malformed: ExtraNetworkTag?) {
        let tags = ExtraNetworkTag.strip(prompts: prompts).tags.filter { kinds.contains($0.kind) }
        var selected = [LoraSelection](), missing = [String]()
        for tag in tags {
            guard let p = parameters(tag) else { return ([], [], tag) }
            guard let file = library.lora(named: p.name) else { missing.append(p.name); continue }
            selected.append(LoraSelection(file: file, mentionedName: p.name, teMultiplier: p.te,
                                          unetMultiplier: p.unet, dynDim: p.dyn))
        }
        return (selected, missing, nil)
    }

    /// `Lora hashes` entries: the mentioned name without `:` and `,`, and the 12-hex hash; a later entry with the
    /// same name replaces the earlier one in place (a Python dict).
    /// Matches: extensions-builtin/Lora/extra_networks_lora.py ExtraNetworkLora.activate (lora_hashes)
    public static func hashes(_ selections: [LoraSelection], after earlier: [(name: String, hash: String)] = [])
        -> [(name: String, hash: String)] {
        var out = earlier
        for s in selections {
            guard let hash = s.file.shortHash, !hash.isEmpty else { continue }
            let name = s.mentionedName.filter { $0 != ":" && $0 != "," }
            if let i = out.firstIndex(where: { $0.name == name }) { out[i].hash = hash } else { out.append((name, hash)) }
        }
        return out
    }
}

/// Builds and caches a checkpoint's networks with LoRAs merged (`LoraOverlay`), rebuilding only the networks
/// whose weights a LoRA changes. The last merged set stays in memory, so consecutive jobs with the same LoRAs
/// pay nothing; the base networks stay too, so jobs without LoRAs pay nothing either.
final class LoraMerger {
    private struct FileKey: Hashable { let path: String; let mtime: Double }
    private struct Applied: Equatable {
        let path: String, mtime: Double, te: Double, unet: Double, dyn: Int?
    }

    private let makeText: Engine.TextEncoderFactory
    private var layers: (checkpoint: String, index: LoraLayerIndex)?
    private var parsed = [FileKey: LoraNetwork]()
    private var merged: (checkpoint: String, applied: [Applied], model: LoadedModel)?

    init(makeText: @escaping Engine.TextEncoderFactory) { self.makeText = makeText }

    /// Forgets everything built for earlier checkpoints.
    func reset() {
        layers = nil
        parsed = [:]
        merged = nil
    }

    func model(_ base: LoadedModel, with selections: [LoraSelection]) throws -> LoadedModel {
        guard !selections.isEmpty else { return base }
        let keys = selections.map { FileKey(path: $0.file.path, mtime: (try? MappedFile.modificationTime(path: $0.file.path)) ?? 0) }
        let applied = zip(selections, keys).map { s, k in
            Applied(path: k.path, mtime: k.mtime, te: s.teMultiplier, unet: s.unetMultiplier, dyn: s.dynDim)
        }
        if let merged, merged.checkpoint == base.info.filename, merged.applied == applied { return merged.model }
        merged = nil
        let index = layerIndex(base)
        let applications = try zip(selections, keys).map { s, key -> LoraOverlay.Application in
            let network = try self.network(key, name: s.mentionedName, index: index)
            return LoraOverlay.Application(network: network, teMultiplier: s.teMultiplier,
                                           unetMultiplier: s.unetMultiplier, dynDim: s.dynDim)
        }
        // Only the networks in use stay in memory (A1111's lora_in_memory_limit defaults to 0).
        parsed = parsed.filter { keys.contains($0.key) }
        let overlay = LoraOverlay(base: base.source, applying: applications)
        let patched = overlay.patchedKeys
        let root = WeightReader(overlay)
        do {
            let unet = try patched.contains { $0.hasPrefix("model.diffusion_model.") }
                ? UNetModel(root["model"]["diffusion_model"]) : base.unet
            let text = try patched.contains { $0.hasPrefix("cond_stage_model.") }
                ? makeText(root["cond_stage_model"]["transformer"]["text_model"]) : base.text
            let model = LoadedModel(info: base.info, unet: unet, vae: base.vae, schedule: base.schedule, text: text,
                                    source: base.source)
            merged = (base.info.filename, applied, model)
            return model
        } catch {
            throw GenerationError.modelLoadFailed(file: base.info.filename, reason: "merging LoRAs: \(error)")
        }
    }

    private func layerIndex(_ base: LoadedModel) -> LoraLayerIndex {
        if let layers, layers.checkpoint == base.info.filename { return layers.index }
        let index = LoraLayerIndex(base.source)
        layers = (base.info.filename, index)
        parsed = [:]
        return index
    }

    private func network(_ key: FileKey, name: String, index: LoraLayerIndex) throws -> LoraNetwork {
        if let hit = parsed[key] { return hit }
        do {
            let network = try LoraNetwork(file: try openCheckpoint(path: key.path), layers: index)
            parsed[key] = network
            return network
        } catch {
            throw GenerationError.invalidValue(field: "prompt", message: "LoRA '\(name)' cannot be applied: \(error)")
        }
    }
}
