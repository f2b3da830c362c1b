import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ModelIO
import Testing
import TestSupport
@testable import WebAPI

/// Routes served through Hummingbird's in-process test client, on a temporary models folder.
@Suite struct RoutesTests {
    static func makeState(auth: [String: String] = [:]) throws -> ServerState {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sdapi-test-\(UUID().uuidString)")
        let sd = root.appendingPathComponent("Models/Stable-diffusion")
        try FileManager.default.createDirectory(at: sd, withIntermediateDirectories: true)
        try Data("first model".utf8).write(to: sd.appendingPathComponent("alpha.safetensors"))
        try Data("second model".utf8).write(to: sd.appendingPathComponent("beta.ckpt"))
        var config = ServerConfig()
        config.modelsDir = root.appendingPathComponent("Models").path
        config.dataDir = root.appendingPathComponent("data").path
        config.apiAuth = auth
        let state = ServerState(config: config, logger: Logger(label: "test"))
        try state.selectStartupCheckpoint()
        return state
    }

    static func app(_ state: ServerState) -> some ApplicationProtocol {
        Application(router: SDAPIServer.makeRouter(state: state))
    }

    static func json(_ buffer: ByteBuffer) throws -> JSONValue { try JSONParser.parse(Data(buffer.readableBytesView)) }

    @Test func optionsHoldEveryA1111Key() async throws {
        let recorded = Set(try #require(try Fixtures.jsonObject("api/a1111_get/options.json") as? [String: Any]).keys)
        try await Self.app(try Self.makeState()).test(.router) { client in
            try await client.execute(uri: "/sdapi/v1/options", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.processTime] != nil)
                let options = try #require(try Self.json(response.body).objectValue)
                #expect(Set(options.keys) == recorded)
                #expect(options["sd_model_checkpoint"] == .string("alpha.safetensors [\(Self.sha("first model").prefix(10))]"))
                #expect(options["CLIP_stop_at_last_layers"] == .int(1))
                #expect(options["eta_ancestral"] == .double(1.0))
            }
        }
    }

    @Test func optionsPostValidatesAndSelectsCheckpoints() async throws {
        let state = try Self.makeState()
        try await Self.app(state).test(.router) { client in
            try await client.execute(uri: "/sdapi/v1/options", method: .post,
                                     body: ByteBuffer(string: #"{"no_such_option": 1}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("no_such_option"))
            }
            try await client.execute(uri: "/sdapi/v1/options", method: .post,
                                     body: ByteBuffer(string: #"{"sd_model_checkpoint": "../../etc/passwd"}"#)) { response in
                #expect(response.status == .notFound)
            }
            for alias in ["beta", "beta.ckpt", "beta.ckpt [\(Self.sha("second model").prefix(10))]",
                          String(Self.sha("second model").prefix(10)), Self.sha("second model")] {
                try await client.execute(uri: "/sdapi/v1/options", method: .post,
                                         body: ByteBuffer(string: #"{"sd_model_checkpoint": "alpha"}"#)) { #expect($0.status == .ok) }
                try await client.execute(uri: "/sdapi/v1/options", method: .post,
                                         body: ByteBuffer(string: "{\"sd_model_checkpoint\": \"\(alias)\"}")) { response in
                    #expect(response.status == .ok, "alias \(alias)")
                }
                #expect(state.options.string("sd_model_checkpoint")?.hasPrefix("beta.ckpt [") == true, "alias \(alias)")
            }
            try await client.execute(uri: "/sdapi/v1/options", method: .post,
                                     body: ByteBuffer(string: #"{"CLIP_stop_at_last_layers": 2, "samples_format": "png"}"#)) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "null")
            }
            #expect(state.options.int("CLIP_stop_at_last_layers") == 2)
        }
        let saved = try String(contentsOfFile: state.config.dataDir! + "/config.json", encoding: .utf8)
        #expect(saved.contains(#""CLIP_stop_at_last_layers":2"#))
    }

    @Test func sdModelsListsTitlesAndHashes() async throws {
        try await Self.app(try Self.makeState()).test(.router) { client in
            try await client.execute(uri: "/sdapi/v1/sd-models", method: .get) { response in
                let list = try #require(try Self.json(response.body).arrayValue)
                #expect(list.count == 2)
                #expect(list[0]["title"] == .string("alpha.safetensors [\(Self.sha("first model").prefix(10))]"))
                #expect(list[0]["model_name"] == .string("alpha"))
                #expect(list[0]["sha256"] == .string(Self.sha("first model")))
                #expect(list[1]["hash"] == .null)
                #expect(list[0].objectValue?.keys == ["title", "model_name", "hash", "sha256", "filename", "config"])
            }
        }
    }

    @Test func authProtectsAllButLoras() async throws {
        try await Self.app(try Self.makeState(auth: ["u": "p:w"])).test(.router) { client in
            try await client.execute(uri: "/sdapi/v1/options", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Basic")
            }
            let bad = "Basic " + Data("u:nope".utf8).base64EncodedString()
            try await client.execute(uri: "/sdapi/v1/options", method: .get, headers: [.authorization: bad]) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("Incorrect username or password"))
            }
            let good = "Basic " + Data("u:p:w".utf8).base64EncodedString()
            try await client.execute(uri: "/sdapi/v1/options", method: .get, headers: [.authorization: good]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/sdapi/v1/loras", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/sdapi/v1/nope", method: .get) { #expect($0.status == .notFound) }
        }
    }

    @Test func errorsUseA1111Shapes() async throws {
        try await Self.app(try Self.makeState()).test(.router) { client in
            try await client.execute(uri: "/sdapi/v1/txt2img", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(String(buffer: response.body) == #"{"detail":"Method Not Allowed"}"#)
            }
            try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"script_name": "nope"}"#)) { response in
                #expect(response.status == .unprocessableContent)
                #expect(String(buffer: response.body) == #"{"error":"HTTPException","detail":"Script 'nope' not found","body":"","errors":""}"#)
            }
            try await client.execute(uri: "/sdapi/v1/png-info", method: .post, body: ByteBuffer(string: #"{"image": "!!"}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("Invalid encoded image"))
            }
        }
    }

    @Test func pngInfoReadsParameters() async throws {
        let png = try Data(contentsOf: Fixtures.url("api/png/rgb8.png")).base64EncodedString()
        try await Self.app(try Self.makeState()).test(.router) { client in
            try await client.execute(uri: "/sdapi/v1/png-info", method: .post,
                                     body: ByteBuffer(string: "{\"image\": \"data:image/png;base64,\(png)\"}")) { response in
                #expect(response.status == .ok)
                let body = try Self.json(response.body)
                #expect(body["info"] == .string("a cat\nSteps: 20, Sampler: Euler"))
                #expect(body["items"]?["title"] == .string("漢字 ünïcode"))
                #expect(body["parameters"]?["Prompt"] == .string("a cat\nSteps: 20, Sampler: Euler"))
            }
        }
    }

    static func sha(_ s: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data(s.utf8))
        return (try? ModelHashes.sha256(file: path)) ?? ""
    }
}
