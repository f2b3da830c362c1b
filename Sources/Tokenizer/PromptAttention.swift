/// A1111's emphasis syntax: `(a)` ×1.1, `[a]` ÷1.1, `(a:1.3)`, escapes `\(` `\)` `\[` `\]` `\\`, and `BREAK`.
public enum PromptAttention {
    /// One run of prompt text with its weight; `isBreak` marks a `BREAK` (chunk boundary).
    public struct Segment: Sendable, Equatable {
        public var text: String
        public var weight: Double
        public var isBreak: Bool { text == "BREAK" && weight == -1 }

        public init(_ text: String, _ weight: Double) {
            self.text = text
            self.weight = weight
        }
    }

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case invalidWeight(String)
        public var description: String {
            switch self { case .invalidWeight(let s): "prompt emphasis weight '\(s)' is not a number" }
        }
    }

    private enum Token {
        case literal(String)     // escaped character, or "" for a lone backslash
        case open(Unicode.Scalar)
        case weight(String, match: String)   // `:1.3)` closing with an explicit weight
        case close(Unicode.Scalar)
        case text(String)
    }

    /// Splits `text` into weighted segments.
    /// Matches: modules/prompt_parser.py parse_prompt_attention
    public static func parse(_ text: String) throws -> [Segment] {
        var res = [Segment]()
        var round = [Int](), square = [Int]()
        func multiply(from start: Int, _ m: Double) {
            for p in start..<res.count { res[p].weight *= m }
        }
        for token in tokens(Array(text.unicodeScalars)) {
            switch token {
            case .literal(let s): res.append(Segment(s, 1))
            case .open(let c): if c == "(" { round.append(res.count) } else { square.append(res.count) }
            case .weight(let w, let match):
                if let start = round.popLast() {
                    guard let value = pythonFloat(w) else { throw ParseError.invalidWeight(w) }
                    multiply(from: start, value)
                } else {
                    appendText(match, to: &res)
                }
            case .close(let c):
                if c == ")", let start = round.popLast() {
                    multiply(from: start, 1.1)
                } else if c == "]", let start = square.popLast() {
                    multiply(from: start, 1 / 1.1)
                } else {
                    appendText(String(c), to: &res)
                }
            case .text(let s): appendText(s, to: &res)
            }
        }
        for p in round { multiply(from: p, 1.1) }
        for p in square { multiply(from: p, 1 / 1.1) }
        if res.isEmpty { res = [Segment("", 1)] }
        var i = 0
        while i + 1 < res.count {
            if res[i].weight == res[i + 1].weight {
                res[i].text += res[i + 1].text
                res.remove(at: i + 1)
            } else {
                i += 1
            }
        }
        return res
    }

    /// Plain text, split at `BREAK` (`\s*\bBREAK\b\s*`) into text and break markers.
    private static func appendText(_ s: String, to res: inout [Segment]) {
        for (i, part) in splitBreak(s).enumerated() {
            if i > 0 { res.append(Segment("BREAK", -1)) }
            res.append(Segment(part, 1))
        }
    }

    /// `re.split(r"\s*\bBREAK\b\s*", s)`.
    static func splitBreak(_ s: String) -> [String] {
        let sc = Array(s.unicodeScalars)
        let word = Array("BREAK".unicodeScalars)
        var parts = [String](), partStart = 0, i = 0
        while i + word.count <= sc.count {
            let boundaryBefore = i == 0 || !isWordScalar(sc[i - 1])
            let end = i + word.count
            if boundaryBefore && Array(sc[i..<end]) == word && (end == sc.count || !isWordScalar(sc[end])) {
                var start = i
                while start > partStart && CLIPTokenizer.isPythonSpace(sc[start - 1]) { start -= 1 }
                var stop = end
                while stop < sc.count && CLIPTokenizer.isPythonSpace(sc[stop]) { stop += 1 }
                parts.append(String(String.UnicodeScalarView(sc[partStart..<start])))
                partStart = stop
                i = stop
            } else {
                i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(sc[partStart...])))
        return parts
    }

    /// Python `re` `\w` on str.
    static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        if s == "_" { return true }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// The alternatives of A1111's `re_attention`, in its order.
    private static func tokens(_ s: [Unicode.Scalar]) -> [Token] {
        var out = [Token]()
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\\" {
                if i + 1 < s.count, "()[]\\".unicodeScalars.contains(s[i + 1]) {
                    out.append(.literal(String(s[i + 1])))
                    i += 2
                } else {
                    out.append(.literal(""))
                    i += 1
                }
            } else if c == "(" || c == "[" {
                out.append(.open(c)); i += 1
            } else if c == ":" {
                // `:\s*([+-]?[.\d]+)\s*\)`
                var j = i + 1
                while j < s.count && CLIPTokenizer.isPythonSpace(s[j]) { j += 1 }
                let numStart = j
                if j < s.count && (s[j] == "+" || s[j] == "-") { j += 1 }
                let digitsStart = j
                while j < s.count && (s[j] == "." || s[j].properties.generalCategory == .decimalNumber) { j += 1 }
                let numEnd = j
                while j < s.count && CLIPTokenizer.isPythonSpace(s[j]) { j += 1 }
                if numEnd > digitsStart && j < s.count && s[j] == ")" {
                    out.append(.weight(String(String.UnicodeScalarView(s[numStart..<numEnd])),
                                       match: String(String.UnicodeScalarView(s[i...j]))))
                    i = j + 1
                } else {
                    out.append(.text(":")); i += 1
                }
            } else if c == ")" || c == "]" {
                out.append(.close(c)); i += 1
            } else {
                var j = i + 1
                while j < s.count && !"\\()[]:".unicodeScalars.contains(s[j]) { j += 1 }
                out.append(.text(String(String.UnicodeScalarView(s[i..<j]))))
                i = j
            }
        }
        return out
    }

    /// Python `float()` of a decimal literal (`[+-]?[.\d]+`, Unicode digits allowed); nil where Python raises.
    static func pythonFloat(_ s: String) -> Double? {
        var ascii = ""
        for c in s.unicodeScalars {
            if c.properties.generalCategory == .decimalNumber, let v = c.properties.numericValue {
                ascii += String(Int(v))
            } else {
                ascii.unicodeScalars.append(c)
            }
        }
        guard ascii.contains(where: \.isNumber), ascii.filter({ $0 == "." }).count <= 1 else { return nil }
        return Double(ascii)
    }
}
