/// A1111's prompt editing `[from:to:when]` and alternation `[a|b]`: one prompt becomes the texts in force up to
/// given steps.
///
/// The grammar is A1111's lark grammar (`schedule_parser`):
/// ```
/// start: (prompt | /[][():]/+)*
/// prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
/// emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
/// scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
/// alternate: "[" prompt ("|" [prompt])+ "]"
/// plain: /([^\\\[\]():|]|\\.)+/
/// ```
/// parsed here by recursive descent: a bracket opens a construct when one fits, otherwise (top level only) it is
/// literal text; a prompt the grammar rejects is used unchanged for every step.
public enum PromptScheduling {
    /// A text and the last step it is used for.
    public struct Entry: Sendable, Equatable {
        public var endAtStep: Int
        public var text: String
        public init(endAtStep: Int, text: String) {
            self.endAtStep = endAtStep
            self.text = text
        }
    }

    indirect enum Node {
        case text(String)
        case scheduled(before: [Node], after: [Node], number: String)
        case alternate([[Node]])
    }

    /// The schedule of one prompt. With `hiresSteps`, integer step numbers count from the start of the first pass
    /// and fractions run from 1 to 2 over the hires pass.
    /// Matches: modules/prompt_parser.py get_learned_conditioning_prompt_schedules
    public static func schedule(_ prompt: String, steps baseSteps: Int, hiresSteps: Int? = nil) -> [Entry] {
        let steps = hiresSteps ?? baseSteps
        let intOffset = hiresSteps == nil ? 0 : baseSteps
        let floatOffset = hiresSteps == nil ? 0.0 : 1.0
        guard let tree = parse(prompt) else { return [Entry(endAtStep: steps, text: prompt)] }

        func when(_ number: String) -> Int {
            let v = Double(number) ?? 0
            let scaled = number.contains(".") ? (v - floatOffset) * Double(steps) : v - Double(intOffset)
            return min(steps, pythonInt(scaled))
        }
        var points: Set<Int> = [steps]
        func collect(_ nodes: [Node]) {
            for node in nodes {
                switch node {
                case .text: break
                case .scheduled(let before, let after, let number):
                    let w = when(number)
                    if w >= 1 { points.insert(w) }
                    collect(before); collect(after)
                case .alternate(let options):
                    if steps >= 1 { points.formUnion(1...steps) }
                    options.forEach(collect)
                }
            }
        }
        collect(tree)
        func render(_ nodes: [Node], at step: Int) -> String {
            var out = ""
            for node in nodes {
                switch node {
                case .text(let s): out += s
                case .scheduled(let before, let after, let number):
                    out += render(step <= when(number) ? before : after, at: step)
                case .alternate(let options):
                    out += render(options[(step - 1).pythonModulo(options.count)], at: step)
                }
            }
            return out
        }
        return points.sorted().map { Entry(endAtStep: $0, text: render(tree, at: $0)) }
    }

    /// Python `int(float)`: truncation toward zero, clamped to the Int range.
    private static func pythonInt(_ v: Double) -> Int {
        guard v.isFinite else { return v > 0 ? Int.max : Int.min }
        return v >= Double(Int.max) ? Int.max : (v <= Double(Int.min) ? Int.min : Int(v))
    }

    // MARK: Parser

    /// The parse tree of `prompt`, or nil when A1111's grammar rejects it.
    static func parse(_ prompt: String) -> [Node]? {
        var parser = Parser(Array(prompt.unicodeScalars))
        return parser.start()
    }

    private struct Parser {
        let s: [Unicode.Scalar]
        init(_ s: [Unicode.Scalar]) { self.s = s }

        func at(_ i: Int) -> Unicode.Scalar? { i < s.count ? s[i] : nil }

        /// `start: (prompt | /[][():]/+)*`
        mutating func start() -> [Node]? {
            var nodes = [Node]()
            var i = 0
            while true {
                let (part, next) = prompt(i)
                nodes += part
                i = next
                guard let c = at(i) else { return nodes }
                guard "[]():".unicodeScalars.contains(c) else { return nil }   // '|' or a dangling '\'
                nodes.append(.text(String(c)))
                i += 1
            }
        }

        /// `prompt`: text and constructs up to the first character that cannot continue it.
        func prompt(_ start: Int) -> ([Node], Int) {
            var nodes = [Node]()
            var text = String.UnicodeScalarView()
            var i = start
            func flush() {
                if !text.isEmpty { nodes.append(.text(String(text))); text = String.UnicodeScalarView() }
            }
            while let c = at(i) {
                if c == "(" || c == "[" {
                    guard let (node, next) = construct(i) else { break }
                    flush()
                    nodes += node
                    i = next
                } else if "]):|".unicodeScalars.contains(c) {
                    break
                } else if c == "\\" {
                    guard let n = at(i + 1), n != "\n" else { break }
                    text.append(c); text.append(n)
                    i += 2
                } else {
                    text.append(c)
                    i += 1
                }
            }
            flush()
            return (nodes, i)
        }

        /// A bracket construct starting at `i` (which holds `(` or `[`), as nodes, and the index after it.
        func construct(_ i: Int) -> ([Node], Int)? {
            let open = s[i]
            let (first, j) = prompt(i + 1)
            guard let c = at(j) else { return nil }
            if open == "(" {
                if c == ")" { return ([.text("(")] + first + [.text(")")], j + 1) }
                guard c == ":" else { return nil }
                let (second, k) = prompt(j + 1)
                guard at(k) == ")" else { return nil }
                return ([.text("(")] + first + [.text(":")] + second + [.text(")")], k + 1)
            }
            switch c {
            case "]":
                return ([.text("[")] + first + [.text("]")], j + 1)
            case "|":
                var options = [first]
                var k = j
                while at(k) == "|" {
                    let (option, next) = prompt(k + 1)
                    options.append(option)
                    k = next
                }
                guard at(k) == "]" else { return nil }
                return ([.alternate(options)], k + 1)
            case ":":
                if let (number, end) = numberClose(j + 1) {
                    return ([.scheduled(before: [], after: first, number: number)], end)
                }
                let (second, k) = prompt(j + 1)
                guard at(k) == ":", let (number, end) = numberClose(k + 1) else { return nil }
                return ([.scheduled(before: first, after: second, number: number)], end)
            default:
                return nil
            }
        }

        /// `[WHITESPACE] NUMBER [WHITESPACE] "]"` from `i`: the number's text and the index after `]`.
        func numberClose(_ i: Int) -> (String, Int)? {
            var j = i
            while let c = at(j), CLIPTokenizer.isPythonSpace(c) { j += 1 }
            guard let end = signedNumberEnd(j) else { return nil }
            var k = end
            while let c = at(k), CLIPTokenizer.isPythonSpace(c) { k += 1 }
            guard at(k) == "]" else { return nil }
            return (String(String.UnicodeScalarView(s[j..<end])), k + 1)
        }

        /// Longest lark `SIGNED_NUMBER` at `i`: `[+-]? (INT | DECIMAL) ([eE] [+-]? INT)?` with
        /// `DECIMAL: INT "." INT? | "." INT`.
        func signedNumberEnd(_ i: Int) -> Int? {
            func digits(_ k: Int) -> Int {
                var k = k
                while let c = at(k), c.isASCII, ("0"..."9").contains(Character(c)) { k += 1 }
                return k
            }
            var j = i
            if let c = at(j), c == "+" || c == "-" { j += 1 }
            let intEnd = digits(j)
            var end: Int
            if at(intEnd) == "." {
                let fracEnd = digits(intEnd + 1)
                guard intEnd > j || fracEnd > intEnd + 1 else { return nil }
                end = fracEnd
            } else {
                guard intEnd > j else { return nil }
                end = intEnd
            }
            if let e = at(end), e == "e" || e == "E" {
                var k = end + 1
                if let c = at(k), c == "+" || c == "-" { k += 1 }
                let expEnd = digits(k)
                if expEnd > k { end = expEnd }
            }
            return end
        }
    }
}

extension Int {
    /// Python's `%` (result has the divisor's sign).
    func pythonModulo(_ m: Int) -> Int { ((self % m) + m) % m }
}
