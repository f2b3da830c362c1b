import Foundation

/// Parsed infotext parameters in A1111's insertion order (a Python dict: a repeated key keeps its first slot).
public struct InfotextParameters: Sendable, Equatable {
    public private(set) var pairs: [(key: String, value: InfotextValue)] = []

    public init() {}

    public subscript(key: String) -> InfotextValue? {
        get { pairs.first { $0.key == key }?.value }
        set {
            if let i = pairs.firstIndex(where: { $0.key == key }) {
                if let newValue { pairs[i].value = newValue } else { pairs.remove(at: i) }
            } else if let newValue {
                pairs.append((key, newValue))
            }
        }
    }

    public func has(_ key: String) -> Bool { pairs.contains { $0.key == key } }
    public var keys: [String] { pairs.map(\.key) }

    public static func == (a: Self, b: Self) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// Options that change how infotext is parsed (their A1111 defaults).
public struct InfotextParseOptions: Sendable {
    public var skipPasting: [String] = []               // infotext_skip_pasting
    public var useOldHiresFixWidthHeight = false        // use_old_hires_fix_width_height
    public var autoBackcompat = true                    // auto_backcompat
    public init() {}
}

extension Infotext {
    /// Matches: modules/infotext_utils.py parse_generation_parameters (with no prompt styles defined)
    public static func parse(_ text: String, options: InfotextParseOptions = InfotextParseOptions()) -> InfotextParameters {
        var res = InfotextParameters()
        var lines = pythonStrip(text).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var lastLine = lines.removeLast()
        if paramMatches(lastLine).count < 3 {
            lines.append(lastLine)
            lastLine = ""
        }
        var prompt = "", negative = "", doneWithPrompt = false
        for raw in lines {
            var line = pythonStrip(raw)
            if line.hasPrefix("Negative prompt:") {
                doneWithPrompt = true
                line = pythonStrip(String(line.unicodeScalars.dropFirst(16)))
            }
            if doneWithPrompt {
                negative += (negative.isEmpty ? "" : "\n") + line
            } else {
                prompt += (prompt.isEmpty ? "" : "\n") + line
            }
        }
        for (k, rawValue) in paramMatches(lastLine) {
            // An empty value raises IndexError in A1111, which skips the key.
            guard !rawValue.isEmpty else { continue }
            var v = rawValue
            if v.first == "\"" && v.last == "\"" { v = unquote(v) }
            if let (a, b) = imageSize(v) {
                res["\(k)-1"] = .string(a)
                res["\(k)-2"] = .string(b)
            } else {
                res[k] = .string(v)
            }
        }
        res["Prompt"] = .string(prompt)
        res["Negative prompt"] = .string(negative)
        if !res.has("Clip skip") { res["Clip skip"] = .string("1") }
        if case let .string(hypernet)? = res["Hypernet"] {
            let strength = res["Hypernet strength"]?.description ?? "1.0"
            res["Prompt"] = .string(prompt + "<hypernet:\(hypernet):\(strength)>")
        }
        if !res.has("Hires resize-1") {
            res["Hires resize-1"] = .int(0)
            res["Hires resize-2"] = .int(0)
        }
        let defaults: [(String, InfotextValue)] = [
            ("Hires sampler", .string("Use same sampler")), ("Hires schedule type", .string("Use same scheduler")),
            ("Hires checkpoint", .string("Use same checkpoint")), ("Hires prompt", .string("")),
            ("Hires negative prompt", .string("")), ("Mask mode", .string("Inpaint masked")),
            ("Masked content", .string("original")), ("Inpaint area", .string("Whole picture")),
            ("Masked area padding", .int(32)),
        ]
        for (k, v) in defaults where !res.has(k) { res[k] = v }
        restoreOldHiresFixParams(&res, options: options)
        let later: [(String, InfotextValue)] = [
            ("RNG", .string("GPU")), ("Schedule type", .string("Automatic")), ("Schedule max sigma", .int(0)),
            ("Schedule min sigma", .int(0)), ("Schedule rho", .int(0)), ("VAE Encoder", .string("Full")),
            ("VAE Decoder", .string("Full")), ("FP8 weight", .string("Disable")),
        ]
        for (k, v) in later where !res.has(k) { res[k] = v }
        if !res.has("Cache FP16 weight for LoRA") && res["FP8 weight"] != .string("Disable") {
            res["Cache FP16 weight for LoRA"] = .bool(false)
        }
        if !res.has("Emphasis") && (promptUsesEmphasis(prompt) || promptUsesEmphasis(negative)) {
            res["Emphasis"] = .string("Original")
        }
        if !res.has("Refiner switch by sampling steps") { res["Refiner switch by sampling steps"] = .bool(false) }
        if options.autoBackcompat { backcompat(&res) }
        for key in options.skipPasting { res[key] = nil }
        return res
    }

    /// All `key: value` matches of A1111's parameter regex
    /// `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`, scanned like `re.findall`.
    static func paramMatches(_ line: String) -> [(String, String)] {
        let s = Array(line.unicodeScalars)
        let n = s.count
        func isWord(_ c: Unicode.Scalar) -> Bool {
            c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
        }
        func inKey(_ c: Unicode.Scalar) -> Bool { isWord(c) || c == " " || c == "-" || c == "/" }
        func string(_ a: Int, _ b: Int) -> String {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[a..<b])
            return String(v)
        }
        var out = [(String, String)]()
        var p = 0
        while p < n {
            var q = p
            while q < n, isPythonSpace(s[q]) { q += 1 }
            guard q < n, isWord(s[q]) else { p += 1; continue }
            var e = q + 1
            while e < n, inKey(s[e]) { e += 1 }
            guard e - q >= 2, e < n, s[e] == ":" else {
                // Every start inside this run ends at the same place and fails the same way.
                p = max(p + 1, e)
                continue
            }
            let key = string(q, e)
            var v = e + 1
            while v < n, isPythonSpace(s[v]) { v += 1 }
            var end: Int?
            if v < n, s[v] == "\"" {
                var j = v + 1, ok = false
                while j < n {
                    if s[j] == "\\" {
                        guard j + 1 < n, s[j + 1] != "\n" else { break }
                        j += 2
                    } else if s[j] == "\"" {
                        ok = j > v + 1
                        break
                    } else {
                        j += 1
                    }
                }
                if ok, j < n, j + 1 == n || s[j + 1] == "," { end = j + 1 }
            }
            let valueEnd: Int
            if let end {
                valueEnd = end
            } else {
                var j = v
                while j < n, s[j] != "," { j += 1 }
                valueEnd = j
            }
            out.append((key, string(v, valueEnd)))
            p = valueEnd < n ? valueEnd + 1 : n
        }
        return out
    }

    /// `^(\d+)x(\d+)$`
    static func imageSize(_ v: String) -> (String, String)? {
        let parts = v.split(separator: "x", maxSplits: 1, omittingEmptySubsequences: false)
        let isDigits: (Substring) -> Bool = { !$0.isEmpty && $0.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal } }
        guard parts.count == 2, isDigits(parts[0]), isDigits(parts[1]) else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    /// Matches: modules/infotext_utils.py restore_old_hires_fix_params
    static func restoreOldHiresFixParams(_ res: inout InfotextParameters, options: InfotextParseOptions) {
        func int(_ key: String, _ def: Int) -> Int? {
            switch res[key] {
            case nil: return def
            case let .int(i)?: return Int(i)
            case let .string(s)?: return Int(s)
            default: return nil
            }
        }
        if options.useOldHiresFixWidthHeight, let w = int("Hires resize-1", 0), let h = int("Hires resize-2", 0), w != 0, h != 0 {
            res["Size-1"] = .int(Int64(w))
            res["Size-2"] = .int(Int64(h))
            return
        }
        guard res.has("First pass size-1"), res.has("First pass size-2"),
              var fw = int("First pass size-1", 0), var fh = int("First pass size-2", 0),
              let width = int("Size-1", 512), let height = int("Size-2", 512) else { return }
        if fw == 0 || fh == 0 {
            // Matches: modules/processing.py old_hires_fix_first_pass_dimensions
            let scale = (Double(512 * 512) / Double(width * height)).squareRoot()
            fw = Int((scale * Double(width) / 64).rounded(.up)) * 64
            fh = Int((scale * Double(height) / 64).rounded(.up)) * 64
        }
        res["Size-1"] = .int(Int64(fw))
        res["Size-2"] = .int(Int64(fh))
        res["Hires resize-1"] = .int(Int64(width))
        res["Hires resize-2"] = .int(Int64(height))
    }

    /// Matches: modules/infotext_versions.py backcompat
    static func backcompat(_ res: inout InfotextParameters) {
        guard case let .string(text)? = res["Version"], let ver = PyVersion(text) else { return }
        let v160 = PyVersion(release: [1, 6, 0]), v170tsnr = PyVersion(release: [1, 7, 0], post: 225)
        let v180 = PyVersion(release: [1, 8, 0])
        if ver < v160, case let .string(p)? = res["Prompt"], p.contains("[") { res["Old prompt editing timelines"] = .bool(true) }
        if ver < v160, case let .string(s)? = res["Sampler"], s == "DDIM" || s == "PLMS" { res["Pad conds v0"] = .bool(true) }
        if ver < v170tsnr { res["Downcast alphas_cumprod"] = .bool(true) }
        if ver < v180, case let .string(r)? = res["Refiner"], !r.isEmpty { res["Refiner switch by sampling steps"] = .bool(true) }
    }

    /// True when A1111's attention parser gives some non-BREAK segment a weight other than 1.0.
    /// Matches: modules/prompt_parser.py parse_prompt_attention (weights only)
    static func promptUsesEmphasis(_ text: String) -> Bool {
        var res: [(text: String, weight: Double)] = []
        var round: [Int] = [], square: [Int] = []
        func multiply(_ start: Int, _ m: Double) { for i in start..<res.count { res[i].weight *= m } }
        let s = Array(text.unicodeScalars)
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\\" {
                if i + 1 < s.count, "()[]\\".unicodeScalars.contains(s[i + 1]) {
                    res.append((String(s[i + 1]), 1.0)); i += 2
                } else {
                    res.append(("", 1.0)); i += 1
                }
            } else if c == "(" {
                round.append(res.count); i += 1
            } else if c == "[" {
                square.append(res.count); i += 1
            } else if c == ":" {
                var j = i + 1
                while j < s.count, isPythonSpace(s[j]) { j += 1 }
                var k = j
                if k < s.count, s[k] == "+" || s[k] == "-" { k += 1 }
                let digitsStart = k
                while k < s.count, s[k] == "." || ("0"..."9").contains(s[k]) { k += 1 }
                var close = k
                while close < s.count, isPythonSpace(s[close]) { close += 1 }
                if k > digitsStart, close < s.count, s[close] == ")" {
                    var num = String.UnicodeScalarView()
                    num.append(contentsOf: s[j..<k])
                    if !round.isEmpty, let w = Double(String(num)) {
                        multiply(round.removeLast(), w)
                    } else {
                        appendText(&res, String(String.UnicodeScalarView(s[i...close])))
                    }
                    i = close + 1
                } else {
                    appendText(&res, ":"); i += 1
                }
            } else if c == ")" && !round.isEmpty {
                multiply(round.removeLast(), 1.1); i += 1
            } else if c == "]" && !square.isEmpty {
                multiply(square.removeLast(), 1 / 1.1); i += 1
            } else if c == ")" || c == "]" {
                appendText(&res, String(c)); i += 1
            } else {
                var j = i
                while j < s.count, !"\\()[]:".unicodeScalars.contains(s[j]) { j += 1 }
                appendText(&res, String(String.UnicodeScalarView(s[i..<j]))); i = j
            }
        }
        for pos in round { multiply(pos, 1.1) }
        for pos in square { multiply(pos, 1 / 1.1) }
        return res.contains { $0.weight != 1.0 && $0.text != "BREAK" }
    }

    /// Splits plain text on `\s*\bBREAK\b\s*`, BREAK entries get weight -1.
    private static func appendText(_ res: inout [(text: String, weight: Double)], _ text: String) {
        let parts = text.components(separatedBy: "BREAK")
        guard parts.count > 1 else { res.append((text, 1.0)); return }
        let s = Array(text.unicodeScalars)
        func isWord(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil }
        let word = Array("BREAK".unicodeScalars)
        var pieces: [String] = [], start = 0, i = 0
        while i + 5 <= s.count {
            if Array(s[i..<(i + 5)]) == word, i == 0 || !isWord(s[i - 1]), i + 5 == s.count || !isWord(s[i + 5]) {
                var a = i
                while a > start, isPythonSpace(s[a - 1]) { a -= 1 }
                var b = i + 5
                while b < s.count, isPythonSpace(s[b]) { b += 1 }
                pieces.append(String(String.UnicodeScalarView(s[start..<a])))
                start = b; i = b
            } else {
                i += 1
            }
        }
        pieces.append(String(String.UnicodeScalarView(s[start...])))
        for (n, piece) in pieces.enumerated() {
            if n > 0 { res.append(("BREAK", -1)) }
            res.append((piece, 1.0))
        }
    }
}

/// The part of `packaging.version.Version` that infotext versions use: release numbers, pre-release, post-release.
struct PyVersion: Comparable {
    var release: [Int]
    var pre: (Int, Int)? = nil     // (0 = a, 1 = b, 2 = rc, number)
    var post: Int? = nil

    init(release: [Int], post: Int? = nil) {
        self.release = release
        self.post = post
    }

    /// Matches: modules/infotext_versions.py parse_version (None when packaging would refuse the text)
    init?(_ raw: String) {
        var text = raw
        let dashes = raw.split(separator: "-", omittingEmptySubsequences: false)
        if dashes.count >= 3, !dashes[0].isEmpty, !dashes[1].isEmpty { text = "\(dashes[0])-\(dashes[1])" }
        var t = Substring(text.lowercased().trimmingCharacters(in: .whitespaces))
        if t.hasPrefix("v") { t = t.dropFirst() }
        var nums: [Int] = []
        while let d = t.first, d.isASCII, d.isNumber {
            let digits = t.prefix { $0.isASCII && $0.isNumber }
            nums.append(Int(digits) ?? 0)
            t = t.dropFirst(digits.count)
            if t.first == ".", t.dropFirst().first?.isNumber == true { t = t.dropFirst() } else { break }
        }
        guard !nums.isEmpty else { return nil }
        release = nums
        for (name, rank) in [("rc", 2), ("c", 2), ("alpha", 0), ("a", 0), ("beta", 1), ("b", 1), ("preview", 2), ("pre", 2)] {
            var u = t
            if u.first == "-" || u.first == "." || u.first == "_" { u = u.dropFirst() }
            if u.hasPrefix(name) {
                u = u.dropFirst(name.count)
                if u.first == "-" || u.first == "." || u.first == "_" { u = u.dropFirst() }
                let digits = u.prefix { $0.isASCII && $0.isNumber }
                pre = (rank, Int(digits) ?? 0)
                t = u.dropFirst(digits.count)
                break
            }
        }
        if t.hasPrefix("-"), t.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }), t.count > 1 {
            post = Int(t.dropFirst())
            t = ""
        } else if let r = t.range(of: "post"), t[..<r.lowerBound].allSatisfy({ "-._".contains($0) }) {
            let digits = t[r.upperBound...].drop { "-._".contains($0) }
            guard digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            post = Int(digits) ?? 0
            t = ""
        }
        guard t.isEmpty else { return nil }
    }

    static func == (a: PyVersion, b: PyVersion) -> Bool { !(a < b) && !(b < a) }

    static func < (a: PyVersion, b: PyVersion) -> Bool {
        let n = max(a.release.count, b.release.count)
        for i in 0..<n {
            let x = i < a.release.count ? a.release[i] : 0, y = i < b.release.count ? b.release[i] : 0
            if x != y { return x < y }
        }
        // pre-release < release < post-release
        let ap = a.pre.map { [0, $0.0, $0.1] } ?? [1, 0, 0], bp = b.pre.map { [0, $0.0, $0.1] } ?? [1, 0, 0]
        if ap != bp { return ap.lexicographicallyPrecedes(bp) }
        return (a.post ?? -1) < (b.post ?? -1)
    }
}
