import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import Pipeline
@testable import WebAPI

struct EchoHook: GenerationHook {
    let name = "Echo"
    let strength: Double
    func prepare(_ request: GenerationRequest) throws {}
    func infotextParameters() -> [(key: String, value: String)] { [("Echo strength", "\(strength)")] }
}

struct EchoScript: AlwaysOnScript {
    let title = "Echo"
    var info: JSONValue { ["name": "echo", "is_alwayson": true, "is_img2img": false, "args": []] }
    func hook(args: [JSONValue], request: Txt2ImgRequest) throws -> (any GenerationHook)? {
        guard let first = args.first else { return nil }
        guard case let .double(d) = first else { throw APIError.unprocessable("Echo: args[0] must be a number") }
        return EchoHook(strength: d)
    }
}

struct EchoExtension: APIExtension {
    var scripts: [any AlwaysOnScript] { [EchoScript()] }
    func register(_ routes: RouteRegistrar) {
        routes.get("/echo/version", summary: "Echo version") { _ in ["version": 1] }
        routes.post("/echo/detect", summary: "Echo body") { body in ["got": body] }
    }
}

@Suite struct ExtensionTests {
    @Test func extensionRoutesAndScripts() async throws {
        let base = try RoutesTests.makeState()
        let generator = RecordingGenerator()
        let state = ServerState(config: base.config, logger: Logger(label: "test"), generator: generator)
        try state.selectStartupCheckpoint()
        let app = Application(router: SDAPIServer.makeRouter(state: state, extensions: [EchoExtension()]))
        try await app.test(.router) { client in
            try await client.execute(uri: "/echo/version", method: .get) { response in
                #expect(String(buffer: response.body) == #"{"version":1}"#)
                #expect(response.headers[.processTime] != nil)
            }
            try await client.execute(uri: "/echo/detect", method: .post, body: ByteBuffer(string: "[1]")) { response in
                #expect(String(buffer: response.body) == #"{"got":[1]}"#)
            }
            try await client.execute(uri: "/sdapi/v1/scripts", method: .get) { response in
                #expect(String(buffer: response.body) == #"{"txt2img":["echo"],"img2img":[]}"#)
            }
            try await client.execute(uri: "/sdapi/v1/txt2img", method: .post,
                                     body: ByteBuffer(string: #"{"alwayson_scripts": {"ECHO": {"args": [0.5]}}}"#)) { response in
                #expect(response.status == .ok)
                #expect(generator.last?.hooks.first?.name == "Echo")
            }
            try await client.execute(uri: "/sdapi/v1/txt2img", method: .post,
                                     body: ByteBuffer(string: #"{"alwayson_scripts": {"echo": {"args": ["x"]}}}"#)) { response in
                #expect(response.status == .unprocessableContent)
                #expect(String(buffer: response.body).contains("args[0] must be a number"))
            }
        }
    }
}
