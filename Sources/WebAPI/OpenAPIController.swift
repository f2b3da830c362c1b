import Foundation
import Hummingbird

/// `/openapi.json`: an OpenAPI 3.0 description generated from the routes this server actually registered
/// (so it never lists a route we do not serve), with the txt2img body schema from the request model.
struct OpenAPIController {
    let table: RouteTable
    let version: String

    func register(_ r: Routes) {
        r.router.get("/openapi.json") { _, _ in JSONResponse.make(document()) }
    }

    func document() -> JSONValue {
        var paths = JSONObject()
        for route in table.routes {
            var ops = paths[route.path]?.objectValue ?? JSONObject()
            var op = JSONObject([("summary", .string(route.summary)),
                                 ("operationId", .string(operationId(route)))])
            if let schema = route.requestSchema {
                op["requestBody"] = ["required": true, "content": ["application/json": ["schema": schema]]]
            }
            if route.method == .get && route.path.hasSuffix("/progress") {
                op["parameters"] = [["name": "skip_current_image", "in": "query", "required": false,
                                     "schema": ["type": "boolean", "default": false]]]
            }
            op["responses"] = ["200": ["description": "Successful Response",
                                       "content": ["application/json": ["schema": [:]]]],
                               "422": ["description": "Validation Error"]]
            if route.requiresAuth { op["security"] = [["HTTPBasic": []]] }
            ops[route.method.rawValue.lowercased()] = .object(op)
            paths[route.path] = .object(ops)
        }
        return ["openapi": "3.0.2",
                "info": ["title": "sdapi-swift (AUTOMATIC1111 stable-diffusion-webui API)", "version": .string(version)],
                "paths": .object(paths),
                "components": ["securitySchemes": ["HTTPBasic": ["type": "http", "scheme": "basic"]]]]
    }

    private func operationId(_ route: RouteInfo) -> String {
        let name = route.path.split(separator: "/").last.map(String.init) ?? "root"
        return "\(route.method.rawValue.lowercased())_\(name.replacingOccurrences(of: "-", with: "_"))"
    }

    /// JSON schema of the txt2img request: every field, its type and default, in A1111's order.
    static func txt2imgSchema() -> JSONValue {
        var props = JSONObject()
        for (name, kind, def) in Txt2ImgFields.all {
            var p = JSONObject()
            switch kind {
            case .int: p["type"] = "integer"
            case .float: p["type"] = "number"
            case .bool: p["type"] = "boolean"
            case .str: p["type"] = "string"
            case .strList: p["type"] = "array"; p["items"] = ["type": "string"]
            case .list: p["type"] = "array"; p["items"] = [:]
            case .dict: p["type"] = "object"
            }
            if !def.isNull { p["default"] = def }
            props[name] = .object(p)
        }
        return ["title": "StableDiffusionProcessingTxt2Img", "type": "object", "properties": .object(props)]
    }
}
