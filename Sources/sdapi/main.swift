import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Pipeline
import WebAPI

/// The sdapi server: an AUTOMATIC1111 v1.10.1-compatible HTTP API.
@main
struct SDAPI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdapi",
        abstract: "AUTOMATIC1111 stable-diffusion-webui v1.10.1 compatible API server (SD1.x on CPU).")

    @Option(help: "Port to listen on.")
    var port: Int = 7860

    @Flag(help: "Listen on 0.0.0.0 (all interfaces) instead of 127.0.0.1.")
    var listen = false

    @Option(name: .customLong("api-auth"), help: "HTTP Basic credentials for the API: user:password[,user2:password2].")
    var apiAuth: String?

    @Option(name: .customLong("models-dir"), help: "Folder with Stable-diffusion/, VAE/, Lora/, … (A1111 layout).")
    var modelsDir = "Models"

    @Option(help: "Checkpoint to load at startup (path, file name, title or hash).")
    var ckpt: String?

    @Option(name: .customLong("data-dir"),
            help: "Folder for config.json (settings), cache.json (hashes) and outputs/ (A1111's data path).")
    var dataDir: String = "."

    @Flag(name: .customLong("api-server-stop"), help: "Enable /sdapi/v1/server-kill, -restart and -stop.")
    var apiServerStop = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sdapi")
        var config = ServerConfig()
        config.port = port
        config.host = listen ? "0.0.0.0" : "127.0.0.1"
        config.modelsDir = modelsDir
        config.checkpoint = ckpt
        config.dataDir = dataDir
        config.apiServerStop = apiServerStop
        if let apiAuth {
            do {
                config.apiAuth = try ServerConfig.parseAuth(apiAuth)
            } catch {
                throw ValidationError("\(error)")
            }
        }

        let files = ModelFiles(modelsDir: config.modelsDir, dataDir: config.dataDir, logger: logger)
        let engine = Engine(makeText: CLIPPromptEncoder.factory, makeNoise: ImageNoise.factory, library: files)
        let jobLogger = Logger(label: "sdapi.job")
        engine.warn = { jobLogger.warning("\($0)") }
        let state = ServerState(config: config, logger: logger, files: files, generator: engine, stopServer: { code in
            logger.notice("stopping (exit \(code))")
            Foundation.exit(code)
        })
        try state.selectStartupCheckpoint()
        logStartup(state)
        try await SDAPIServer.makeApplication(state: state).runService()
    }

    func logStartup(_ state: ServerState) {
        let logger = state.logger
        let checkpoints = state.catalog.checkpoints
        logger.info("models dir: \(state.catalog.modelsDir)")
        logger.info("checkpoints found: \(checkpoints.count)\(checkpoints.isEmpty ? "" : " — " + checkpoints.map(\.name).joined(separator: ", "))")
        logger.info("VAEs: \(state.catalog.vaes.count), LoRAs: \(state.catalog.loras.count)")
        if let loaded = state.options.string("sd_model_checkpoint"), let info = state.catalog.checkpoint(matching: loaded) {
            logger.info("loaded checkpoint: \(loaded)")
            // The embedded default model says what it is in its safetensors metadata.
            if let description = state.catalog.metadata(of: info)["sdapi.description"]?.stringValue,
               description.contains("RANDOM-WEIGHT") {
                logger.warning("THE LOADED MODEL IS A RANDOM-WEIGHT TEST MODEL (\(info.name)): its images are noise, not pictures. Put a real SD1.5 checkpoint into \(state.catalog.checkpointDir)/ and select it (--ckpt, or POST /sdapi/v1/options sd_model_checkpoint).")
            }
        } else {
            logger.warning("no checkpoint found under \(state.catalog.modelsDir)/Stable-diffusion: txt2img will answer 503")
        }
        if !state.config.apiAuth.isEmpty { logger.info("API authentication enabled for \(state.config.apiAuth.count) user(s)") }
        if state.generator == nil { logger.warning("no image generation engine in this build: txt2img validates requests and answers 503") }
        logger.info("serving the A1111 API on http://\(state.config.host):\(state.config.port)")
    }
}
