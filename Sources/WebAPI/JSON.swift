import Foundation

/// A JSON value that keeps what A1111's Python side can tell apart: integers vs floats, key order, duplicate keys
/// (last wins, first position kept, as Python's `json.loads` into a dict).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    /// An integer literal outside Int64 (Python ints are unbounded); kept as its digits.
    case bigInt(String)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var objectValue: JSONObject? { if case let .object(o) = self { return o }; return nil }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    public var isNull: Bool { self == .null }

    /// Python's name for the value's type, for messages.
    public var pythonTypeName: String {
        switch self {
        case .null: return "NoneType"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        }
    }
}

/// An ordered JSON object.
public struct JSONObject: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var values: [String: JSONValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public subscript(key: String) -> JSONValue? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }
    public var pairs: [(key: String, value: JSONValue)] { keys.map { ($0, values[$0] ?? .null) } }
    public func contains(_ key: String) -> Bool { values[key] != nil }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    public init(_ s: String?) { self = s.map { .string($0) } ?? .null }
    public init(_ i: Int?) { self = i.map { .int(Int64($0)) } ?? .null }
    public init(_ i: Int64?) { self = i.map { .int($0) } ?? .null }
    public init(_ d: Double?) { self = d.map { .double($0) } ?? .null }
    public init(_ b: Bool?) { self = b.map { .bool($0) } ?? .null }
    public init(_ a: [String]) { self = .array(a.map { .string($0) }) }
}

// MARK: - Serialisation (as Python's json.dumps with ensure_ascii=False, compact separators)

extension JSONValue {
    public func serialized() -> String {
        var out = ""
        write(into: &out)
        return out
    }

    /// Python's `json.dumps(obj)` with its defaults: `", "` / `": "` separators and ASCII-only output
    /// (`\uXXXX` escapes, surrogate pairs above U+FFFF). A1111 writes the txt2img `info` string this way.
    public func pythonDumps() -> String {
        var out = ""
        writePython(into: &out)
        return out
    }

    func writePython(into out: inout String) {
        switch self {
        case let .string(s):
            var tmp = ""
            Self.writeString(s, into: &tmp)
            for scalar in tmp.unicodeScalars {
                if scalar.value < 0x80 {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value <= 0xFFFF {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    let v = scalar.value - 0x10000
                    out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                }
            }
        case let .array(a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += ", " }
                v.writePython(into: &out)
            }
            out += "]"
        case let .object(o):
            out += "{"
            for (i, (k, v)) in o.pairs.enumerated() {
                if i > 0 { out += ", " }
                JSONValue.string(k).writePython(into: &out)
                out += ": "
                v.writePython(into: &out)
            }
            out += "}"
        case let .double(d) where !d.isFinite:
            out += d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity")
        default:
            write(into: &out)
        }
    }

    public func serializedData() -> Data { Data(serialized().utf8) }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .bigInt(s): out += s
        case let .double(d): out += Self.pythonFloat(d)
        case let .string(s): Self.writeString(s, into: &out)
        case let .array(a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out)
            }
            out += "]"
        case let .object(o):
            out += "{"
            for (i, (k, v)) in o.pairs.enumerated() {
                if i > 0 { out += "," }
                Self.writeString(k, into: &out)
                out += ":"
                v.write(into: &out)
            }
            out += "}"
        }
    }

    /// Python `repr(float)`: shortest round-trip digits, always with a decimal point or exponent.
    /// Starlette refuses NaN/Infinity in responses; we never produce them, and write `null` if one slips through.
    static func pythonFloat(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        var s = "\(d)"
        if !s.contains(".") && !s.contains("e") { s += ".0" }
        return s
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

// MARK: - Parsing (Python json.loads semantics and error messages)

/// A JSON syntax error, reported as Python's `json.JSONDecodeError` (message, character position, line, column).
public struct JSONSyntaxError: Error, Equatable {
    public let message: String
    /// Position in characters (Python counts code points of the decoded text).
    public let position: Int
    public let line: Int
    public let column: Int
    public let document: String
    /// Nesting deeper than the parser allows (Python's recursion limit plays this role in A1111).
    public var tooDeep = false
}

public struct JSONParser {
    private let scalars: [Unicode.Scalar]
    private var i = 0
    private var depth = 0
    private let maxDepth: Int

    public static func parse(_ data: Data, maxDepth: Int = 512) throws(JSONSyntaxError) -> JSONValue {
        let text = String(decoding: data, as: UTF8.self)
        var p = JSONParser(scalars: Array(text.unicodeScalars), maxDepth: maxDepth)
        return try p.parseDocument()
    }

    public static func parse(_ text: String, maxDepth: Int = 512) throws(JSONSyntaxError) -> JSONValue {
        var p = JSONParser(scalars: Array(text.unicodeScalars), maxDepth: maxDepth)
        return try p.parseDocument()
    }

    private init(scalars: [Unicode.Scalar], maxDepth: Int) {
        self.scalars = scalars
        self.maxDepth = maxDepth
    }

    private func error(_ message: String, at pos: Int) -> JSONSyntaxError {
        var line = 1, lastNewline = -1
        for k in 0..<min(pos, scalars.count) where scalars[k] == "\n" {
            line += 1
            lastNewline = k
        }
        var doc = String.UnicodeScalarView()
        doc.append(contentsOf: scalars.prefix(4096))
        return JSONSyntaxError(message: message, position: pos, line: line, column: pos - lastNewline,
                               document: String(doc))
    }

    private mutating func skipWhitespace() {
        while i < scalars.count, [" ", "\t", "\n", "\r"].contains(scalars[i]) { i += 1 }
    }

    private mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if i != scalars.count { throw error("Extra data", at: i) }
        return value
    }

    private mutating func parseValue() throws(JSONSyntaxError) -> JSONValue {
        guard i < scalars.count else { throw error("Expecting value", at: i) }
        switch scalars[i] {
        case "{": return try parseObject()
        case "[": return try parseArray()
        case "\"": return .string(try parseString())
        case "n": return try literal("null", .null)
        case "t": return try literal("true", .bool(true))
        case "f": return try literal("false", .bool(false))
        case "N": return try literal("NaN", .double(.nan))
        case "I": return try literal("Infinity", .double(.infinity))
        case "-":
            guard i + 1 < scalars.count, scalars[i + 1] == "I" else { return try parseNumber() }
            i += 1
            _ = try literal("Infinity", .null)
            return .double(-.infinity)
        default:
            if ("0"..."9").contains(scalars[i]) {
                return try parseNumber()
            }
            throw error("Expecting value", at: i)
        }
    }

    private mutating func literal(_ word: String, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        let w = Array(word.unicodeScalars)
        guard i + w.count <= scalars.count, Array(scalars[i..<(i + w.count)]) == w else {
            throw error("Expecting value", at: i)
        }
        i += w.count
        return value
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = i
        if scalars[i] == "-" { i += 1 }
        guard i < scalars.count, ("0"..."9").contains(scalars[i]) else { throw error("Expecting value", at: start) }
        if scalars[i] == "0" { i += 1 } else { while i < scalars.count, ("0"..."9").contains(scalars[i]) { i += 1 } }
        var isFloat = false
        if i + 1 < scalars.count, scalars[i] == ".", ("0"..."9").contains(scalars[i + 1]) {
            isFloat = true
            i += 1
            while i < scalars.count, ("0"..."9").contains(scalars[i]) { i += 1 }
        }
        if i < scalars.count, scalars[i] == "e" || scalars[i] == "E" {
            var j = i + 1
            if j < scalars.count, scalars[j] == "+" || scalars[j] == "-" { j += 1 }
            if j < scalars.count, ("0"..."9").contains(scalars[j]) {
                isFloat = true
                i = j
                while i < scalars.count, ("0"..."9").contains(scalars[i]) { i += 1 }
            }
        }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars[start..<i])
        let s = String(text)
        if isFloat { return .double(Double(s) ?? .nan) }
        if let v = Int64(s) { return .int(v) }
        return .bigInt(s)
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        let start = i
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard i < scalars.count else { throw error("Unterminated string starting at", at: start) }
            let c = scalars[i]
            if c == "\"" { i += 1; return String(out) }
            if c.value < 0x20 { throw error("Invalid control character at", at: i) }
            if c != "\\" { out.append(c); i += 1; continue }
            guard i + 1 < scalars.count else { throw error("Unterminated string starting at", at: start) }
            let e = scalars[i + 1]
            switch e {
            case "\"": out.append("\""); i += 2
            case "\\": out.append("\\"); i += 2
            case "/": out.append("/"); i += 2
            case "b": out.append("\u{08}"); i += 2
            case "f": out.append("\u{0C}"); i += 2
            case "n": out.append("\n"); i += 2
            case "r": out.append("\r"); i += 2
            case "t": out.append("\t"); i += 2
            case "u":
                var code = try hex4(at: i + 2, escapeAt: i)
                i += 6
                if (0xD800..<0xDC00).contains(code), i + 1 < scalars.count, scalars[i] == "\\", scalars[i + 1] == "u",
                   let low = try? hex4(at: i + 2, escapeAt: i), (0xDC00..<0xE000).contains(low) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default:
                throw error("Invalid \\escape", at: i)
            }
        }
    }

    private func hex4(at pos: Int, escapeAt: Int) throws(JSONSyntaxError) -> UInt32 {
        guard pos + 4 <= scalars.count else { throw error("Invalid \\uXXXX escape", at: escapeAt) }
        var v: UInt32 = 0
        for k in pos..<(pos + 4) {
            guard scalars[k].isASCII, let d = UInt32(String(scalars[k]), radix: 16) else {
                throw error("Invalid \\uXXXX escape", at: escapeAt)
            }
            v = v * 16 + d
        }
        return v
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > maxDepth {
            var e = error("Nesting too deep", at: i)
            e.tooDeep = true
            throw e
        }
    }

    private mutating func parseObject() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var obj = JSONObject()
        skipWhitespace()
        if i < scalars.count, scalars[i] == "}" { i += 1; return .object(obj) }
        while true {
            guard i < scalars.count, scalars[i] == "\"" else {
                throw error("Expecting property name enclosed in double quotes", at: i)
            }
            let key = try parseString()
            skipWhitespace()
            guard i < scalars.count, scalars[i] == ":" else { throw error("Expecting ':' delimiter", at: i) }
            i += 1
            skipWhitespace()
            obj[key] = try parseValue()
            skipWhitespace()
            guard i < scalars.count else { throw error("Expecting ',' delimiter", at: i) }
            if scalars[i] == "}" { i += 1; return .object(obj) }
            guard scalars[i] == "," else { throw error("Expecting ',' delimiter", at: i) }
            i += 1
            skipWhitespace()
        }
    }

    private mutating func parseArray() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var items = [JSONValue]()
        skipWhitespace()
        if i < scalars.count, scalars[i] == "]" { i += 1; return .array(items) }
        while true {
            items.append(try parseValue())
            skipWhitespace()
            guard i < scalars.count else { throw error("Expecting ',' delimiter", at: i) }
            if scalars[i] == "]" { i += 1; return .array(items) }
            guard scalars[i] == "," else { throw error("Expecting ',' delimiter", at: i) }
            i += 1
            skipWhitespace()
        }
    }
}
