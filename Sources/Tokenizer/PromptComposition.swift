/// `AND` composition and extra-network tags (`<lora:name:0.8>`) of A1111 prompts.
public enum PromptComposition {
    /// One `AND` part: its text and weight.
    public struct Part: Sendable, Equatable {
        public var text: String
        public var weight: Double
        public init(text: String, weight: Double) {
            self.text = text
            self.weight = weight
        }
    }

    /// Splits a prompt at `AND` (`\bAND\b`); each part may end in `:weight`.
    /// Matches: modules/prompt_parser.py get_multicond_prompt_list (re_AND, re_weight)
    public static func parts(_ prompt: String) -> [Part] {
        splitAND(prompt).map(partWeight)
    }

    static func splitAND(_ prompt: String) -> [String] {
        let sc = Array(prompt.unicodeScalars)
        let word = Array("AND".unicodeScalars)
        var parts = [String](), start = 0, i = 0
        while i + word.count <= sc.count {
            let end = i + word.count
            if (i == 0 || !PromptAttention.isWordScalar(sc[i - 1])) && Array(sc[i..<end]) == word
                && (end == sc.count || !PromptAttention.isWordScalar(sc[end])) {
                parts.append(String(String.UnicodeScalarView(sc[start..<i])))
                start = end
                i = end
            } else {
                i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(sc[start...])))
        return parts
    }

    /// `^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$` on one part.
    static func partWeight(_ part: String) -> Part {
        var sc = Array(part.unicodeScalars)
        while let last = sc.last, CLIPTokenizer.isPythonSpace(last) { sc.removeLast() }
        if let colon = sc.lastIndex(of: ":") {
            var j = colon + 1
            while j < sc.count && CLIPTokenizer.isPythonSpace(sc[j]) { j += 1 }
            let number = String(String.UnicodeScalarView(sc[j...]))
            if isWeightLiteral(number), let w = PromptAttention.pythonFloat(number) {
                var end = colon
                while end > 0 && CLIPTokenizer.isPythonSpace(sc[end - 1]) { end -= 1 }
                return Part(text: String(String.UnicodeScalarView(sc[..<end])), weight: w)
            }
        }
        return Part(text: String(String.UnicodeScalarView(sc)), weight: 1)
    }

    /// `[-+]?(?:\d+\.?|\d*\.\d+)` as a whole string.
    private static func isWeightLiteral(_ s: String) -> Bool {
        var body = Substring(s)
        if let f = body.first, f == "+" || f == "-" { body = body.dropFirst() }
        let isDigit: (Character) -> Bool = { c in c.unicodeScalars.count == 1
            && c.unicodeScalars.first!.properties.generalCategory == .decimalNumber }
        let pieces = body.split(separator: ".", omittingEmptySubsequences: false)
        switch pieces.count {
        case 1: return !body.isEmpty && body.allSatisfy(isDigit)
        case 2:
            let (a, b) = (pieces[0], pieces[1])
            guard a.allSatisfy(isDigit), b.allSatisfy(isDigit) else { return false }
            return !a.isEmpty || !b.isEmpty
        default: return false
        }
    }
}

/// An extra-network tag found in a prompt: `<lora:name:0.8>` is kind `lora`, items `["name", "0.8"]`.
public struct ExtraNetworkTag: Sendable, Equatable {
    public var kind: String
    public var items: [String]

    public init(kind: String, items: [String]) {
        self.kind = kind
        self.items = items
    }

    /// The network name (first item).
    public var name: String { items.first ?? "" }
    /// The text-encoder multiplier (second item, default 1), as A1111's lora extension reads it.
    public var multiplier: Double { items.count > 1 ? Double(items[1]) ?? 1 : 1 }

    /// Removes every `<kind:args>` tag (`<(\w+):([^>]+)>`) from `prompt`; returns the text and the tags in order.
    /// Matches: modules/extra_networks.py parse_prompt
    public static func strip(_ prompt: String) -> (text: String, tags: [ExtraNetworkTag]) {
        let sc = Array(prompt.unicodeScalars)
        var out = String.UnicodeScalarView()
        var tags = [ExtraNetworkTag]()
        var i = 0
        while i < sc.count {
            if sc[i] == "<" {
                var j = i + 1
                while j < sc.count && PromptAttention.isWordScalar(sc[j]) { j += 1 }
                if j > i + 1 && j < sc.count && sc[j] == ":" {
                    var k = j + 1
                    while k < sc.count && sc[k] != ">" { k += 1 }
                    if k > j + 1 && k < sc.count {
                        let kind = String(String.UnicodeScalarView(sc[(i + 1)..<j]))
                        let args = String(String.UnicodeScalarView(sc[(j + 1)..<k]))
                        tags.append(ExtraNetworkTag(kind: kind, items: args.split(separator: ":",
                            omittingEmptySubsequences: false).map(String.init)))
                        i = k + 1
                        continue
                    }
                }
            }
            out.append(sc[i])
            i += 1
        }
        return (String(out), tags)
    }
}

extension ExtraNetworkTag {
    /// Strips the tags from every prompt of a batch; the networks are those of the first prompt, as A1111 applies
    /// one set per batch.
    /// Matches: modules/extra_networks.py parse_prompts
    public static func strip(prompts: [String]) -> (texts: [String], tags: [ExtraNetworkTag]) {
        let parsed = prompts.map { strip($0) }
        return (parsed.map(\.text), parsed.first?.tags ?? [])
    }
}
