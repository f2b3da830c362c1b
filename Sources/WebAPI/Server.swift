import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Pipeline

/// Command-line settings the server runs with (A1111 flag names in comments).
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"          // --listen → 0.0.0.0
    public var port = 7860                 // --port
    public var apiAuth: [String: String] = [:]  // --api-auth u:p[,u2:p2]
    public var modelsDir = "Models"        // --models-dir
    public var checkpoint: String?         // --ckpt
    public var dataDir: String?            // --data-dir (config.json, cache.json)
    public var apiServerStop = false       // --api-server-stop
    public var maxBodyBytes = 64 << 20
    public var limits = RequestLimits()
    public var version = "v1.10.1"

    public init() {}

    /// Parses `u:p,u2:p2` (A1111 splits on "," then ":"; a password may not contain either).
    public static func parseAuth(_ text: String) throws -> [String: String] {
        var out = [String: String]()
        for pair in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ConfigError("--api-auth: expected user:password[,user2:password2], got '\(pair)'")
            }
            out[String(parts[0])] = String(parts[1])
        }
        return out
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything the controllers share.
public final class ServerState: Sendable {
    public let config: ServerConfig
    public let options: OptionStore
    public let catalog: ModelFiles
    public let queue: JobQueue
    public let scripts: ScriptRegistry
    public let logger: Logger
    let loaded: ActiveCheckpoint
    /// The engine that makes images; nil in builds without one (txt2img then answers 503 after validation).
    public let generator: (any ImageGenerator)?
    /// Called by `/server-stop` and `/server-kill` (the executable ends the process).
    let stopServer: @Sendable (_ exitCode: Int32) -> Void

    /// `files` defaults to a fresh listing of `config.modelsDir`; pass the one the generator looks LoRAs and VAEs
    /// up in so both see the same files.
    public init(config: ServerConfig, logger: Logger, scripts: ScriptRegistry = ScriptRegistry(),
                files: ModelFiles? = nil, generator: (any ImageGenerator)? = nil,
                stopServer: @escaping @Sendable (Int32) -> Void = { _ in }) {
        self.generator = generator
        self.config = config
        self.logger = logger
        self.options = OptionStore(dataDir: config.dataDir, logger: logger)
        self.catalog = files ?? ModelFiles(modelsDir: config.modelsDir, dataDir: config.dataDir, logger: logger)
        self.queue = JobQueue()
        self.scripts = scripts
        self.loaded = ActiveCheckpoint()
        self.stopServer = stopServer
    }

    /// Chooses the startup checkpoint: `--ckpt` (path or alias), else the configured `sd_model_checkpoint`,
    /// else the first one found (A1111's order). Hashes it, as A1111 does on load, and records it in options.
    public func selectStartupCheckpoint() throws {
        let list = catalog.checkpoints
        var chosen: CheckpointInfo?
        if let wanted = config.checkpoint {
            let path = URL(fileURLWithPath: wanted).standardizedFileURL.path
            chosen = list.first { $0.filename == path } ?? catalog.checkpoint(matching: wanted)
            if chosen == nil { throw ConfigError("--ckpt \(wanted): no such checkpoint under \(catalog.checkpointDir)") }
        } else if let configured = options.string("sd_model_checkpoint") {
            chosen = catalog.checkpoint(matching: configured) ?? list.first
        } else {
            chosen = list.first
        }
        guard let info = chosen else {
            loaded.set(nil)
            options.setInternal("sd_model_checkpoint", .null)
            return
        }
        select(info)
    }

    /// Makes `info` the active checkpoint (hashing it first, as A1111 does when loading).
    func select(_ info: CheckpointInfo) {
        let hashed = catalog.hashCheckpoint(info)
        loaded.set(hashed)
        options.setInternal("sd_model_checkpoint", .string(hashed.title))
        options.setInternal("sd_checkpoint_hash", .string(hashed.sha256 ?? ""))
    }
}

/// The checkpoint jobs run on (nil when the models folder has none).
final class ActiveCheckpoint: @unchecked Sendable {
    private let lock = NSLock()
    private var info: CheckpointInfo?

    var current: CheckpointInfo? { lock.lock(); defer { lock.unlock() }; return info }

    func set(_ value: CheckpointInfo?) {
        lock.lock(); defer { lock.unlock() }
        info = value
    }
}

/// One route as served, for the 405 answer, authentication and `/openapi.json`.
struct RouteInfo: Sendable {
    let method: HTTPRequest.Method
    let path: String
    let summary: String
    let requiresAuth: Bool
    let requestSchema: JSONValue?
}

/// Collects routes while controllers register them.
final class RouteTable: @unchecked Sendable {
    private(set) var routes: [RouteInfo] = []

    func add(_ r: RouteInfo) { routes.append(r) }

    func methods(for path: String) -> [HTTPRequest.Method] {
        routes.filter { $0.path == path }.map(\.method)
    }

    func requiresAuth(_ path: String, _ method: HTTPRequest.Method) -> Bool {
        routes.first { $0.path == path && $0.method == method }?.requiresAuth ?? false
    }
}

public typealias Context = BasicRequestContext

/// Registers routes on the Hummingbird router and in the route table.
struct Routes {
    let router: Router<Context>
    let table: RouteTable

    func on(_ method: HTTPRequest.Method, _ path: String, _ summary: String, auth: Bool = true,
            schema: JSONValue? = nil,
            _ handler: @escaping @Sendable (Request, Context) async throws -> Response) {
        table.add(RouteInfo(method: method, path: path, summary: summary, requiresAuth: auth, requestSchema: schema))
        router.on(RouterPath(path), method: method) { request, context in try await handler(request, context) }
    }

    func get(_ path: String, _ summary: String, auth: Bool = true, _ value: @escaping @Sendable () async throws -> JSONValue) {
        on(.get, path, summary, auth: auth) { _, _ in JSONResponse.make(try await value()) }
    }

    func post(_ path: String, _ summary: String, auth: Bool = true, _ value: @escaping @Sendable () async throws -> JSONValue) {
        on(.post, path, summary, auth: auth) { _, _ in JSONResponse.make(try await value()) }
    }
}

/// Reads a request body up to the configured limit and parses it as FastAPI would for a JSON body parameter.
enum RequestBody {
    static func json(_ request: Request, limit: Int) async throws -> JSONValue {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw APIError(.contentTooLarge, "Request body too large (limit is \(limit / (1 << 20)) MiB)")
        }
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        // FastAPI parses JSON when the content type is absent or JSON; other bodies (forms) are not a dict.
        if !contentType.isEmpty && !contentType.contains("json") { throw ValidationError.bodyNotDict }
        let missing = ValidationError([FieldError(loc: ["body"], msg: Pydantic.missing.msg, type: Pydantic.missing.type)])
        if buffer.readableBytes == 0 { throw missing }
        let value: JSONValue
        do {
            value = try JSONParser.parse(Data(buffer.readableBytesView))
        } catch {
            // FastAPI answers a body its JSON decoder cannot handle at all (RecursionError) this way.
            if error.tooDeep { throw DetailError(.badRequest, "There was an error parsing the body") }
            throw ValidationError(error)
        }
        // A JSON `null` body counts as no body (FastAPI).
        if value.isNull { throw missing }
        return value
    }

    static func object(_ request: Request, limit: Int) async throws -> JSONObject {
        guard case let .object(o) = try await json(request, limit: limit) else { throw ValidationError.bodyNotDict }
        return o
    }
}
