import Foundation

/// One entry of FastAPI's 422 `detail` list: `{"loc": [...], "msg": ..., "type": ..., "ctx"?: {...}}`.
public struct FieldError: Sendable, Equatable {
    public var loc: [JSONValue]
    public var msg: String
    public var type: String
    public var ctx: JSONObject?

    public init(loc: [JSONValue], msg: String, type: String, ctx: JSONObject? = nil) {
        self.loc = loc
        self.msg = msg
        self.type = type
        self.ctx = ctx
    }

    var json: JSONValue {
        var o = JSONObject([("loc", .array(loc)), ("msg", .string(msg)), ("type", .string(type))])
        if let ctx { o["ctx"] = .object(ctx) }
        return .object(o)
    }
}

/// Pydantic v1 validators as A1111's request models apply them (FastAPI 0.9x with pydantic 1.10).
/// Each returns the coerced value or throws the FieldError pydantic would report (loc is filled by the caller).
/// Matches: pydantic/validators.py (v1) int_validator, float_validator, str_validator, bool_validator,
/// list_validator, dict_validator
enum Pydantic {
    struct Failure: Error {
        let msg: String
        let type: String
        var ctx: JSONObject? = nil
    }

    static let notInt = Failure(msg: "value is not a valid integer", type: "type_error.integer")
    static let notFloat = Failure(msg: "value is not a valid float", type: "type_error.float")
    static let notStr = Failure(msg: "str type expected", type: "type_error.str")
    static let notBool = Failure(msg: "value could not be parsed to a boolean", type: "type_error.bool")
    static let notList = Failure(msg: "value is not a valid list", type: "type_error.list")
    static let notDict = Failure(msg: "value is not a valid dict", type: "type_error.dict")
    static let noneNotAllowed = Failure(msg: "none is not an allowed value", type: "type_error.none.not_allowed")
    static let missing = Failure(msg: "field required", type: "value_error.missing")

    /// Python `int(v)`: bools are 0/1, floats truncate toward zero, strings must hold an integer literal
    /// (surrounding whitespace and `_` digit separators allowed, as Python accepts them).
    static func int(_ v: JSONValue) throws(Failure) -> Int64 {
        switch v {
        case let .int(i): return i
        case let .bool(b): return b ? 1 : 0
        case let .double(d):
            guard d.isFinite, let i = Int64(exactly: d.rounded(.towardZero)) else { throw notInt }
            return i
        case .bigInt: throw Failure(msg: "integer is too large for this server (limit is 64-bit)",
                                    type: "value_error.number.too_large")
        case let .string(s):
            var t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !t.isEmpty, !t.hasPrefix("_"), !t.hasSuffix("_"), !t.contains("__") else { throw notInt }
            t = t.replacingOccurrences(of: "_", with: "")
            if t.hasPrefix("+") { t.removeFirst() }
            guard let i = Int64(t) else { throw notInt }
            return i
        default: throw notInt
        }
    }

    /// Python `float(v)`: ints and bools convert, strings hold a float literal (also "inf", "nan").
    static func float(_ v: JSONValue) throws(Failure) -> Double {
        switch v {
        case let .double(d): return d
        case let .int(i): return Double(i)
        case let .bigInt(s): return Double(s) ?? .infinity
        case let .bool(b): return b ? 1 : 0
        case let .string(s):
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "_", with: "")
            switch t.lowercased() {
            case "inf", "+inf", "infinity", "+infinity": return .infinity
            case "-inf", "-infinity": return -.infinity
            case "nan", "+nan", "-nan": return .nan
            default:
                guard !t.isEmpty, t.allSatisfy({ "0123456789.eE+-".contains($0) }), let d = Double(t) else {
                    throw notFloat
                }
                return d
            }
        default: throw notFloat
        }
    }

    /// Strings pass; ints, floats (and bools, which are Python ints) become `str(v)`.
    static func str(_ v: JSONValue) throws(Failure) -> String {
        switch v {
        case let .string(s): return s
        case let .int(i): return String(i)
        case let .bigInt(s): return s
        case let .double(d): return JSONValue.pythonFloat(d)
        case let .bool(b): return b ? "True" : "False"
        default: throw notStr
        }
    }

    static func bool(_ v: JSONValue) throws(Failure) -> Bool {
        switch v {
        case let .bool(b): return b
        case let .int(i):
            if i == 1 { return true }
            if i == 0 { return false }
        case let .double(d):
            if d == 1 { return true }
            if d == 0 { return false }
        case let .string(s):
            switch s.lowercased() {
            case "1", "on", "t", "true", "y", "yes": return true
            case "0", "off", "f", "false", "n", "no": return false
            default: break
            }
        default: break
        }
        throw notBool
    }

    static func list(_ v: JSONValue) throws(Failure) -> [JSONValue] {
        if case let .array(a) = v { return a }
        throw notList
    }

    /// Dicts pass; a list of two-item lists becomes a dict (Python `dict(v)`).
    static func dict(_ v: JSONValue) throws(Failure) -> JSONObject {
        switch v {
        case let .object(o): return o
        case let .array(items):
            var o = JSONObject()
            for item in items {
                guard case let .array(pair) = item, pair.count == 2, case let .string(k) = pair[0] else { throw notDict }
                o[k] = pair[1]
            }
            return o
        default: throw notDict
        }
    }
}

/// Reads the fields of one request object in declaration order, collecting every error like pydantic does.
struct FieldReader {
    let object: JSONObject
    let locPrefix: [JSONValue]
    private(set) var errors: [FieldError] = []

    init(_ object: JSONObject, locPrefix: [JSONValue] = ["body"]) {
        self.object = object
        self.locPrefix = locPrefix
    }

    private mutating func record(_ f: Pydantic.Failure, _ key: String, _ extra: [JSONValue] = []) {
        errors.append(FieldError(loc: locPrefix + [.string(key)] + extra, msg: f.msg, type: f.type, ctx: f.ctx))
    }

    /// Optional field: absent → default, null → nil, else coerced.
    mutating func optional<T>(_ key: String, _ def: T?, _ coerce: (JSONValue) throws(Pydantic.Failure) -> T) -> T? {
        guard let v = object[key] else { return def }
        if v.isNull { return nil }
        do { return try coerce(v) } catch { record(error, key); return def }
    }

    /// Required field (`field required` when absent).
    mutating func required<T>(_ key: String, _ coerce: (JSONValue) throws(Pydantic.Failure) -> T) -> T? {
        guard let v = object[key] else { record(Pydantic.missing, key); return nil }
        do { return try coerce(v) } catch { record(error, key); return nil }
    }

    mutating func stringList(_ key: String) -> [String]? {
        guard let v = object[key], !v.isNull else { return nil }
        guard case let .array(items) = v else { record(Pydantic.notList, key); return nil }
        var out = [String]()
        for (n, item) in items.enumerated() {
            do { out.append(try Pydantic.str(item)) } catch { record(error, key, [.int(Int64(n))]) }
        }
        return out
    }

    /// A value that A1111 accepts but that cannot work (A1111 fails later with a 500): reported as a pydantic
    /// constraint error so clients see the usual 422 shape.
    mutating func constraint(_ key: String, _ msg: String, _ type: String, _ ctx: JSONObject? = nil) {
        errors.append(FieldError(loc: locPrefix + [.string(key)], msg: msg, type: type, ctx: ctx))
    }

    mutating func notNone(_ key: String) {
        record(Pydantic.noneNotAllowed, key)
    }
}
