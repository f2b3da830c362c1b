import Foundation
import Hummingbird

/// Read-only lists and server facts: cmd-flags, memory, upscalers, latent modes, face restorers, RealESRGAN,
/// prompt styles, scripts, script-info, extensions.
/// Matches: modules/api/api.py get_cmd_flags, get_memory, get_upscalers, get_latent_upscale_modes,
/// get_face_restorers, get_realesrgan_models, get_prompt_styles, get_scripts_list, get_script_info, get_extensions_list
struct InfoController {
    let state: ServerState

    /// Latent upscale modes for the hires fix, in A1111's order (modules/shared_items.py latent_upscale_modes).
    static let latentUpscaleModes = ["Latent", "Latent (antialiased)", "Latent (bicubic)",
                                     "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)"]
    /// Image upscalers that need no model file (A1111's built-in "None", "Lanczos", "Nearest").
    static let imageUpscalers = ["None", "Lanczos", "Nearest"]

    func register(_ r: Routes) {
        r.get("/sdapi/v1/cmd-flags", "Command-line flags (A1111 argparse names)") { cmdFlags() }
        r.get("/sdapi/v1/memory", "Process and system memory") { memory() }
        r.get("/sdapi/v1/upscalers", "Image upscalers") {
            .array(Self.imageUpscalers.map { name in
                ["name": .string(name), "model_name": nil, "model_path": nil, "model_url": nil, "scale": 4.0]
            })
        }
        r.get("/sdapi/v1/latent-upscale-modes", "Latent upscale modes for the hires fix") {
            .array(Self.latentUpscaleModes.map { ["name": .string($0)] })
        }
        r.get("/sdapi/v1/face-restorers", "Face restorers (none are available)") { [] }
        r.get("/sdapi/v1/realesrgan-models", "RealESRGAN models (none are available)") { [] }
        r.get("/sdapi/v1/prompt-styles", "Prompt styles (none are defined)") { [] }
        r.get("/sdapi/v1/extensions", "Installed extensions (none; ControlNet and AnimateDiff are built in)") { [] }
        r.get("/sdapi/v1/scripts", "Script names per tab") {
            let names = JSONValue(state.scripts.all.map { $0.title.lowercased() })
            return ["txt2img": names, "img2img": []]
        }
        r.get("/sdapi/v1/script-info", "Script arguments") { .array(state.scripts.all.map(\.info)) }
    }

    func cmdFlags() -> JSONValue {
        let config = state.config
        let base = config.dataDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            ?? FileManager.default.currentDirectoryPath
        let models = state.catalog.modelsDir
        var flags = JSONObject()
        for (k, v) in OptionDefaults.cmdFlags {
            if case let .string(s) = v, s.hasPrefix("{data}") {
                flags[k] = .string(base + s.dropFirst("{data}".count))
            } else if case let .array(items) = v {
                flags[k] = .array(items.map { item in
                    if case let .string(s) = item, s.hasPrefix("{data}") { return .string(base + s.dropFirst("{data}".count)) }
                    return item
                })
            } else {
                flags[k] = v
            }
        }
        let overrides: [(String, JSONValue)] = [
            ("data_dir", .string(base)), ("models_dir", .string(models)),
            ("ckpt", JSONValue(config.checkpoint)), ("ckpt_dir", .string(state.catalog.checkpointDir)),
            ("vae_dir", .string(state.catalog.vaeDir)), ("lora_dir", .string(state.catalog.loraDir)),
            ("embeddings_dir", .string(state.catalog.embeddingsDir)),
            ("hypernetwork_dir", .string(state.catalog.hypernetworksDir)),
            ("listen", .bool(config.host == "0.0.0.0")), ("port", .int(Int64(config.port))),
            ("server_name", .string(config.host)), ("api", true), ("nowebui", true),
            // The credentials themselves are never echoed.
            ("api_auth", config.apiAuth.isEmpty ? .null : "***"),
            ("api_server_stop", .bool(config.apiServerStop)), ("no_half", true), ("no_download_sd_model", true),
            ("use_cpu", ["all"]), ("skip_torch_cuda_test", true),
        ]
        for (k, v) in overrides { flags[k] = v }
        return .object(flags)
    }

    /// `{ram: {free, used, total}, cuda: {error: "unavailable"}}`; `used` is this process's resident memory.
    func memory() -> JSONValue {
        let ram: JSONValue
        if let total = Self.meminfo("MemTotal"), let rss = Self.residentBytes() {
            ram = ["free": .double(total - rss), "used": .int(Int64(rss)), "total": .double(total)]
        } else {
            ram = ["error": "memory statistics unavailable on this system"]
        }
        return ["ram": ram, "cuda": ["error": "unavailable"]]
    }

    static func meminfo(_ key: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kb = Double(parts[1]) { return kb * 1024 }
        }
        return nil
    }

    static func residentBytes() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let parts = text.split(separator: " ")
        guard parts.count >= 2, let pages = Double(parts[1]) else { return nil }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
    }
}
