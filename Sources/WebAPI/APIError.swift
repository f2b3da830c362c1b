import Foundation
import HTTPTypes
import Hummingbird
import Pipeline

/// An error answered in A1111's exception envelope `{"error", "detail", "body", "errors"}`.
/// Matches: modules/api/api.py api_middleware handle_exception
public struct APIError: Error, CustomStringConvertible, Sendable {
    public var status: HTTPResponse.Status
    /// Python exception class name as A1111 reports it ("HTTPException" for deliberate HTTP errors).
    public var error: String
    public var detail: String
    public var errors: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ detail: String, error: String = "HTTPException", errors: String = "",
                headers: HTTPFields = [:]) {
        self.status = status
        self.error = error
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public var description: String { "\(status.code) \(error): \(detail)" }

    var body: JSONValue {
        ["error": .string(error), "detail": .string(detail), "body": "", "errors": .string(errors)]
    }

    public static func badRequest(_ detail: String) -> APIError { APIError(.badRequest, detail) }
    public static func notFound(_ detail: String) -> APIError { APIError(.notFound, detail) }
    public static func unprocessable(_ detail: String) -> APIError { APIError(.unprocessableContent, detail) }
    static let invalidImage = APIError(.badRequest, "Invalid encoded image")
}

/// FastAPI's request validation answer: 422 `{"detail": [FieldError...]}`.
public struct ValidationError: Error, CustomStringConvertible, Sendable {
    public var errors: [FieldError]
    public init(_ errors: [FieldError]) { self.errors = errors }
    public var description: String { errors.map { "\($0.loc.map { $0.serialized() }.joined(separator: ".")): \($0.msg)" }
                                     .joined(separator: "; ") }

    var body: JSONValue { ["detail": .array(errors.map(\.json))] }

    /// The answer FastAPI gives for a body that is not valid JSON.
    init(_ syntax: JSONSyntaxError) {
        let message = "\(syntax.message): line \(syntax.line) column \(syntax.column) (char \(syntax.position))"
        let ctx = JSONObject([("msg", .string(syntax.message)), ("doc", .string(syntax.document)),
                              ("pos", .int(Int64(syntax.position))), ("lineno", .int(Int64(syntax.line))),
                              ("colno", .int(Int64(syntax.column)))])
        self.errors = [FieldError(loc: ["body", .int(Int64(syntax.position))], msg: message,
                                  type: "value_error.jsondecode", ctx: ctx)]
    }

    static let bodyNotDict = ValidationError([FieldError(loc: ["body"], msg: Pydantic.notDict.msg,
                                                         type: Pydantic.notDict.type)])
}

/// Starlette's plain `{"detail": "..."}` answer (unknown routes, wrong methods, unparsable bodies).
public struct DetailError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var detail: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }
}

extension GenerationError {
    /// Errors of a job map to clear 4xx answers (A1111 answers most of these with a 500).
    var apiError: APIError {
        switch self {
        case let .invalidValue(field, message): return APIError(.unprocessableContent, "\(field): \(message)")
        case .unknownSampler, .unknownScheduler: return APIError(.badRequest, description)
        case .unknownCheckpoint, .unknownLora: return APIError(.notFound, description)
        case .noModelLoaded: return APIError(.serviceUnavailable, description)
        case .modelLoadFailed: return APIError(.internalServerError, description, error: "RuntimeError")
        }
    }
}

enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        let data = value.serializedData()
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
