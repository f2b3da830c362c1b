import Foundation
import Hummingbird
import Pipeline

/// GET/POST `/sdapi/v1/options`.
/// Matches: modules/api/api.py get_config, set_config
struct OptionsController {
    let state: ServerState

    func register(_ r: Routes) {
        r.get("/sdapi/v1/options", "All settings with their current values") { .object(state.options.all()) }
        r.on(.post, "/sdapi/v1/options", "Change settings (one key or many)",
             schema: ["type": "object", "additionalProperties": true]) { request, _ in
            let update = try await RequestBody.object(request, limit: state.config.maxBodyBytes)
            try apply(update)
            return JSONResponse.make(.null)
        }
    }

    /// Validates the whole update first (nothing changes when one key is bad), then applies it.
    func apply(_ update: JSONObject) throws {
        var rest = update
        var checkpoint: CheckpointSelection?
        if let value = update["sd_model_checkpoint"], !value.isNull {
            guard case let .string(name) = value else {
                throw APIError.badRequest("Option 'sd_model_checkpoint' expects a checkpoint title, name or hash")
            }
            guard let info = state.catalog.checkpoint(matching: name) else {
                throw APIError.notFound("model '\(name)' not found (GET /sdapi/v1/sd-models lists the checkpoints)")
            }
            checkpoint = CheckpointSelection(info: info)
            rest["sd_model_checkpoint"] = nil
        }
        try state.options.validate(rest)
        if let checkpoint, state.loaded.current?.filename != checkpoint.info.filename {
            state.select(checkpoint.info)
            state.logger.info("checkpoint selected: \(state.options.string("sd_model_checkpoint") ?? checkpoint.info.name)")
        }
        if checkpoint != nil, let title = state.options.value("sd_model_checkpoint") {
            rest["sd_model_checkpoint"] = title
        }
        let changed = try state.options.set(rest)
        if !changed.isEmpty { state.logger.info("settings changed: \(changed.joined(separator: ", "))") }
    }

    private struct CheckpointSelection { let info: CheckpointInfo }
}
