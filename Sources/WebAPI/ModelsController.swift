import Foundation
import Hummingbird
import Pipeline

/// Model lists and (un)loading: sd-models, sd-vae, loras, embeddings, hypernetworks and their refresh routes.
/// Matches: modules/api/api.py get_sd_models, get_sd_vaes, get_embeddings, get_hypernetworks, refresh_*,
/// unloadapi, reloadapi; extensions-builtin/Lora/scripts/lora_script.py api_networks
struct ModelsController {
    let state: ServerState

    func register(_ r: Routes) {
        r.get("/sdapi/v1/sd-models", "Checkpoints") { sdModels() }
        r.post("/sdapi/v1/refresh-checkpoints", "Rescan checkpoints") {
            state.catalog.refreshCheckpoints()
            return .null
        }
        r.get("/sdapi/v1/sd-vae", "VAE files") {
            .array(state.catalog.vaes.map { ["model_name": .string($0.name), "filename": .string($0.path)] })
        }
        r.post("/sdapi/v1/refresh-vae", "Rescan VAE files") {
            state.catalog.refreshVAEs()
            return .null
        }
        // Registered by A1111's Lora extension directly on the app: not behind --api-auth.
        r.get("/sdapi/v1/loras", "LoRA networks", auth: false) {
            .array(state.catalog.loraListing.map {
                ["name": .string($0.name), "alias": .string($0.alias), "path": .string($0.path),
                 "metadata": .object($0.metadata)]
            })
        }
        r.post("/sdapi/v1/refresh-loras", "Rescan LoRA networks", auth: false) {
            state.catalog.refreshLoras()
            return .null
        }
        r.get("/sdapi/v1/embeddings", "Textual-inversion embeddings, loaded (usable with the checkpoint) and skipped") {
            embeddings()
        }
        r.post("/sdapi/v1/refresh-embeddings", "Rescan embeddings") {
            state.catalog.refreshAll()
            return .null
        }
        r.get("/sdapi/v1/hypernetworks", "Hypernetworks") {
            .array(state.catalog.hypernetworks.map { path in
                ["name": .string(((path as NSString).lastPathComponent as NSString).deletingPathExtension),
                 "path": .string(path)]
            })
        }
        // A1111 reloads an unloaded model on the next job; so does the engine.
        r.post("/sdapi/v1/unload-checkpoint", "Release the checkpoint's weights from memory") {
            if let generator = state.generator {
                try await state.queue.run { generator.unload() }
            }
            state.logger.info("checkpoint unloaded")
            return [:]
        }
        r.post("/sdapi/v1/reload-checkpoint", "Load the selected checkpoint's weights into memory") {
            if let generator = state.generator, let info = state.loaded.current {
                let started = Date()
                do {
                    try await state.queue.run { try generator.preload(info) }
                } catch let e as GenerationError {
                    throw e.apiError
                }
                state.logger.info("checkpoint loaded: \(info.title) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
            }
            return [:]
        }
    }

    /// Matches: modules/api/api.py get_embeddings
    func embeddings() -> JSONValue {
        let width = state.loaded.current.flatMap(state.catalog.textEncoderWidth(of:)) ?? 768
        let db = state.catalog.embeddings(width: width)
        func listing(_ list: [TextualInversionEmbedding]) -> JSONValue {
            .object(JSONObject(list.map { e in
                (e.name, .object(JSONObject([
                    ("step", JSONValue(e.step.map { Int64($0) })), ("sd_checkpoint", JSONValue(e.sdCheckpoint)),
                    ("sd_checkpoint_name", JSONValue(e.sdCheckpointName)), ("shape", .int(Int64(e.shape))),
                    ("vectors", .int(Int64(e.vectorCount))),
                ])))
            }))
        }
        return ["loaded": listing(db.loaded), "skipped": listing(db.skipped)]
    }

    func sdModels() -> JSONValue {
        .array(state.catalog.checkpoints.map { info in
            [
                "title": .string(info.title), "model_name": .string(info.modelName),
                "hash": JSONValue(info.shorthash), "sha256": JSONValue(info.sha256),
                "filename": .string(info.filename), "config": JSONValue(Self.configNear(info.filename)),
            ]
        })
    }

    /// A `.yaml` with the checkpoint's stem next to it, as A1111's find_checkpoint_config_near_filename.
    static func configNear(_ path: String) -> String? {
        let yaml = (path as NSString).deletingPathExtension + ".yaml"
        return FileManager.default.fileExists(atPath: yaml) ? yaml : nil
    }
}
