import Foundation
import Hummingbird

/// Routes an extension adds (e.g. ControlNet's `/controlnet/*`), with the same error envelopes, timing header,
/// logging and authentication as the built-in routes. Handlers see and return `JSONValue`; throw `APIError`
/// (A1111 envelope) or `ValidationError` (FastAPI 422 list) for bad input.
public struct RouteRegistrar {
    let routes: Routes
    let state: ServerState

    public var server: ServerState { state }

    public func get(_ path: String, summary: String, auth: Bool = true,
                    _ handler: @escaping @Sendable (_ query: [String: String]) async throws -> JSONValue) {
        routes.on(.get, path, summary, auth: auth) { request, _ in
            var query = [String: String]()
            for (k, v) in request.uri.queryParameters { query[String(k)] = String(v) }
            return JSONResponse.make(try await handler(query))
        }
    }

    public func post(_ path: String, summary: String, auth: Bool = true, schema: JSONValue? = nil,
                     _ handler: @escaping @Sendable (_ body: JSONValue) async throws -> JSONValue) {
        let limit = state.config.maxBodyBytes
        routes.on(.post, path, summary, auth: auth, schema: schema) { request, _ in
            let body = try await RequestBody.json(request, limit: limit)
            return JSONResponse.make(try await handler(body))
        }
    }
}

/// An extension of the API: its routes and its `alwayson_scripts` entries.
public protocol APIExtension: Sendable {
    /// Always-on scripts answering to `alwayson_scripts` titles.
    var scripts: [any AlwaysOnScript] { get }
    /// Adds the extension's own routes.
    func register(_ routes: RouteRegistrar)
}
