import Foundation
import Hummingbird
import Pipeline

/// progress, interrupt, skip, and (with `--api-server-stop`) server-kill / server-restart / server-stop.
/// Matches: modules/api/api.py progressapi, interruptapi, skip, kill_webui, restart_webui, stop_webui
struct ProgressController {
    let state: ServerState
    let encodePreview: @Sendable (RGBImage) -> String?

    func register(_ r: Routes) {
        r.on(.get, "/sdapi/v1/progress", "Progress of the running job") { request, _ in
            let skip = try Self.skipCurrentImage(request)
            return JSONResponse.make(progress(skipCurrentImage: skip))
        }
        r.post("/sdapi/v1/interrupt", "Stop the running job after the current step") {
            state.queue.progress.interrupt()
            state.logger.info("interrupt requested")
            return [:]
        }
        r.post("/sdapi/v1/skip", "Skip the current batch of the running job") {
            state.queue.progress.skip()
            state.logger.info("skip requested")
            return .null
        }
        guard state.config.apiServerStop else { return }
        r.post("/sdapi/v1/server-kill", "End the server process now") {
            state.logger.notice("server-kill requested")
            state.stopServer(0)
            return .null
        }
        // A1111's restart_webui answers 501 when the process was not started by its restartable launcher,
        // which is always our case (modules/api/api.py restart_webui).
        r.on(.post, "/sdapi/v1/server-restart", "Restart: 501 as A1111 answers without its launcher") { _, _ in
            Response(status: HTTPResponse.Status(code: 501, reasonPhrase: "Not Implemented"))
        }
        r.on(.post, "/sdapi/v1/server-stop", "Stop the server after answering") { _, _ in
            state.logger.notice("server-stop requested")
            let stop = state.stopServer
            Task {
                try? await Task.sleep(for: .milliseconds(200))
                stop(0)
            }
            return JSONResponse.text("Stopping.")
        }
    }

    /// `skip_current_image` query flag with pydantic's bool parsing (422 on anything else).
    static func skipCurrentImage(_ request: Request) throws -> Bool {
        guard let raw = request.uri.queryParameters.get("skip_current_image") else { return false }
        do {
            return try Pydantic.bool(.string(raw))
        } catch {
            throw ValidationError([FieldError(loc: ["query", "skip_current_image"], msg: error.msg, type: error.type)])
        }
    }

    func progress(skipCurrentImage: Bool) -> JSONValue {
        let s = state.queue.progress.snapshot()
        let stateJSON: JSONValue = [
            "skipped": .bool(s.skipped), "interrupted": .bool(s.interrupted),
            "stopping_generation": .bool(s.stoppingGeneration), "job": .string(s.job),
            "job_count": .int(Int64(s.jobCount)), "job_timestamp": .string(s.jobTimestamp),
            "job_no": .int(Int64(s.jobNo)), "sampling_step": .int(Int64(s.samplingStep)),
            "sampling_steps": .int(Int64(s.samplingSteps)),
        ]
        var image: JSONValue = .null
        if s.jobCount > 0, !skipCurrentImage, let preview = s.preview, let b64 = encodePreview(preview) {
            image = .string(b64)
        }
        return ["progress": .double(s.progress), "eta_relative": .double(s.etaRelative), "state": stateJSON,
                "current_image": image, "textinfo": JSONValue(s.textinfo)]
    }
}
