import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging

extension HTTPField.Name {
    static let processTime = HTTPField.Name("X-Process-Time")!
}

/// Turns every error into A1111's answers (exception envelope, FastAPI 422 list, 404/405 `{"detail"}`), adds
/// `X-Process-Time` (seconds, rounded to 4 places, Python `str`), and logs each request with its duration.
/// Matches: modules/api/api.py api_middleware (log_and_time, exception_handling)
struct A1111Middleware: RouterMiddleware {
    let routes: RouteTable
    let logger: Logger

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = answer(for: error, request: request)
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        response.headers[.processTime] = JSONValue.pythonFloat((seconds * 10_000).rounded() / 10_000)
        let level: Logger.Level = response.status.code >= 500 ? .error : (request.uri.path.hasSuffix("/progress") ? .debug : .info)
        logger.log(level: level, "\(request.method.rawValue) \(request.uri.path) \(response.status.code) \(String(format: "%.4f", seconds)) s")
        return response
    }

    func answer(for error: any Error, request: Request) -> Response {
        switch error {
        case let e as APIError:
            if e.status.code >= 500 { logger.error("\(request.method.rawValue) \(request.uri.path): \(e)") }
            return JSONResponse.make(e.body, status: e.status, headers: e.headers)
        case let e as ValidationError:
            return JSONResponse.make(e.body, status: .unprocessableContent)
        case let e as DetailError:
            return JSONResponse.make(["detail": .string(e.detail)], status: e.status, headers: e.headers)
        case let e as HTTPError where e.status == .notFound:
            let allowed = routes.methods(for: request.uri.path)
            if !allowed.isEmpty {
                return JSONResponse.make(["detail": "Method Not Allowed"], status: .methodNotAllowed,
                                         headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")])
            }
            return JSONResponse.make(["detail": "Not Found"], status: .notFound)
        case let e as HTTPError:
            return JSONResponse.make(APIError(e.status, e.body ?? e.status.reasonPhrase).body, status: e.status)
        default:
            logger.error("\(request.method.rawValue) \(request.uri.path): unexpected \(type(of: error)): \(error)")
            return JSONResponse.make(APIError(.internalServerError, "", error: String(describing: type(of: error)),
                                              errors: String(describing: error)).body, status: .internalServerError)
        }
    }
}

/// HTTP Basic authentication for the routes A1111 puts behind `--api-auth` (all `/sdapi/v1` routes the Api
/// class registers; the Lora extension's `loras`/`refresh-loras` stay open). Passwords are compared in
/// constant time over their SHA-256 digests.
/// Matches: modules/api/api.py Api.auth
struct BasicAuthMiddleware: RouterMiddleware {
    let credentials: [String: String]
    let routes: RouteTable

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !credentials.isEmpty, routes.requiresAuth(request.uri.path, request.method) else {
            return try await next(request, context)
        }
        let challenge: HTTPFields = [.wwwAuthenticate: "Basic"]
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
            throw APIError(.unauthorized, "Not authenticated", headers: challenge)
        }
        let user = String(text[..<colon]), password = String(text[text.index(after: colon)...])
        // Compare against every account so timing does not reveal which user names exist.
        var ok = false
        for (name, expected) in credentials {
            let match = Self.constantTimeEqual(expected, password) && name == user
            ok = ok || match
        }
        guard ok else { throw APIError(.unauthorized, "Incorrect username or password", headers: challenge) }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let da = Array(SHA256.hash(data: Data(a.utf8))), db = Array(SHA256.hash(data: Data(b.utf8)))
        var diff: UInt8 = 0
        for i in 0..<da.count { diff |= da[i] ^ db[i] }
        return diff == 0
    }
}
