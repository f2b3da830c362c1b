import Foundation

/// Errors of the text side: resources that cannot be read, prompts that cannot be tokenized.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case resourceMissing(String)
    case malformedMerges(line: Int, text: String)
    /// A textual-inversion embedding with more vectors than one 75-token chunk holds.
    case embeddingTooLong(name: String, vectors: Int)

    public var description: String {
        switch self {
        case .resourceMissing(let name): "tokenizer resource '\(name)' is missing from the bundle"
        case .malformedMerges(let line, let text): "clip_merges.txt line \(line): '\(text)' is not a pair"
        case .embeddingTooLong(let name, let vectors):
            "embedding '\(name)' has \(vectors) vectors; a prompt chunk holds at most \(PromptChunker.chunkLength)"
        }
    }
}

/// The CLIP byte-level BPE tokenizer (openai/clip-vit-large-patch14), as `transformers.CLIPTokenizer` with ftfy.
///
/// Vocabulary: the 256 byte symbols, the same with `</w>`, one token per merge (48894), then `<|startoftext|>`
/// (49406) and `<|endoftext|>` (49407). Merges ship as `Resources/clip_merges.txt`, taken from open_clip's
/// `bpe_simple_vocab_16e6.txt.gz` lines `1 ..< 48895`.
/// Matches: transformers/models/clip/tokenization_clip.py CLIPTokenizer (_tokenize, bpe)
public final class CLIPTokenizer: @unchecked Sendable {
    public static let startToken = 49406
    public static let endToken = 49407
    public static let vocabularySize = 49408

    /// The tokenizer over the bundled merges; loaded once per process.
    public static func shared() throws -> CLIPTokenizer {
        try SharedTokenizer.get()
    }

    private let encoder: [String: Int]
    private let ranks: [Pair: Int]
    private let byteSymbols: [String]   // byte value → printable symbol
    private let cacheLock = NSLock()
    private var cache: [String: [Int]] = [:]

    private struct Pair: Hashable {
        let a: String
        let b: String
    }

    /// Builds the vocabulary from merge lines (`"a b"` each, in rank order).
    public init(merges: [Substring]) throws {
        let symbols = Self.bytesToUnicode()
        byteSymbols = symbols
        // CLIP enumerates the byte symbols in the table's insertion order: printable bytes first, then the rest.
        let ordered = Self.printableBytes.map { symbols[$0] }
            + (0..<256).filter { !Self.printableBytes.contains($0) }.map { symbols[$0] }
        var vocab = ordered
        vocab += ordered.map { $0 + "</w>" }
        var ranks = [Pair: Int](minimumCapacity: merges.count)
        for (i, line) in merges.enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw TokenizerError.malformedMerges(line: i + 2, text: String(line)) }
            let pair = Pair(a: String(parts[0]), b: String(parts[1]))
            ranks[pair] = i
            vocab.append(pair.a + pair.b)
        }
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        var encoder = [String: Int](minimumCapacity: vocab.count)
        for (i, token) in vocab.enumerated() { encoder[token] = i }
        self.encoder = encoder
        self.ranks = ranks
    }

    /// The token id of a vocabulary entry (`",</w>"` → 267), or nil.
    public func id(of token: String) -> Int? { encoder[token] }

    /// Token ids of `text` without start/end tokens and without truncation (A1111 calls it with
    /// `truncation=False, add_special_tokens=False`).
    public func encode(_ text: String) -> [Int] {
        var ids = [Int]()
        for piece in Self.preTokenize(Self.clean(text)) {
            if piece == "<|startoftext|>" { ids.append(Self.startToken); continue }
            if piece == "<|endoftext|>" { ids.append(Self.endToken); continue }
            ids += bpe(piece)
        }
        return ids
    }

    /// ftfy-style fixes, whitespace collapsing and lowercasing.
    /// Matches: tokenization_clip.py CLIPTokenizer._tokenize (fix_text, whitespace_clean, lower)
    static func clean(_ text: String) -> String {
        let fixed = TextFixer.fix(text)
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for s in fixed.unicodeScalars {
            if isPythonSpace(s) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(s)
            }
        }
        return String(out).lowercased()
    }

    /// Python `str.isspace` / `re` `\s` on str.
    static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: return true
        default: return s.properties.isWhitespace
        }
    }

    /// The CLIP pattern `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
    /// (case-insensitive, on lowercased text), applied as `regex.findall`.
    static func preTokenize(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var pieces = [String]()
        var i = 0
        func kind(_ s: Unicode.Scalar) -> Int {   // 0 space, 1 letter, 2 number, 3 other
            if isPythonSpace(s) { return 0 }
            switch s.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return 1
            case .decimalNumber, .letterNumber, .otherNumber: return 2
            default: return 3
            }
        }
        func matches(_ literal: String, at start: Int) -> Bool {
            let lit = Array(literal.unicodeScalars)
            guard start + lit.count <= scalars.count else { return false }
            for (k, c) in lit.enumerated() where scalars[start + k].properties.lowercaseMapping != String(c) {
                return false
            }
            return true
        }
        let literals = ["<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
        while i < scalars.count {
            if let lit = literals.first(where: { matches($0, at: i) }) {
                let n = lit.unicodeScalars.count
                pieces.append(String(String.UnicodeScalarView(scalars[i..<(i + n)])))
                i += n
                continue
            }
            let k = kind(scalars[i])
            var j = i + 1
            switch k {
            case 0: i += 1; continue
            case 1: while j < scalars.count && kind(scalars[j]) == 1 { j += 1 }
            case 2: break
            default: while j < scalars.count && kind(scalars[j]) == 3 { j += 1 }
            }
            pieces.append(String(String.UnicodeScalarView(scalars[i..<j])))
            i = j
        }
        return pieces
    }

    /// Byte-level BPE of one pre-token, the last symbol carrying `</w>`.
    /// Matches: tokenization_clip.py CLIPTokenizer.bpe
    func bpe(_ piece: String) -> [Int] {
        cacheLock.lock()
        if let hit = cache[piece] { cacheLock.unlock(); return hit }
        cacheLock.unlock()
        var word = Array(piece.utf8).map { byteSymbols[Int($0)] }
        guard !word.isEmpty else { return [] }
        word[word.count - 1] += "</w>"
        while word.count > 1 {
            var best: (rank: Int, index: Int)?
            for i in 0..<(word.count - 1) {
                if let r = ranks[Pair(a: word[i], b: word[i + 1])], r < (best?.rank ?? Int.max) { best = (r, i) }
            }
            guard let best else { break }
            let first = word[best.index], second = word[best.index + 1]
            var merged = [String]()
            merged.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i < word.count - 1 && word[i] == first && word[i + 1] == second {
                    merged.append(first + second)
                    i += 2
                } else {
                    merged.append(word[i])
                    i += 1
                }
            }
            word = merged
        }
        // Every symbol is in the vocabulary (bytes and merge results); unknowns map to <|endoftext|> as in HF.
        let ids = word.map { encoder[$0] ?? Self.endToken }
        cacheLock.lock()
        cache[piece] = ids
        cacheLock.unlock()
        return ids
    }

    /// GPT-2's reversible byte → printable character table.
    /// Matches: tokenization_clip.py bytes_to_unicode
    static let printableBytes = Array(33...126) + Array(161...172) + Array(174...255)

    static func bytesToUnicode() -> [String] {
        let printable = Set(printableBytes)
        var table = [String](repeating: "", count: 256)
        var extra = 0
        for b in 0..<256 {
            if printable.contains(b) {
                table[b] = String(Character(Unicode.Scalar(UInt32(b))!))
            } else {
                table[b] = String(Character(Unicode.Scalar(UInt32(256 + extra))!))
                extra += 1
            }
        }
        return table
    }
}

/// Loads the bundled merges once.
private enum SharedTokenizer {
    nonisolated(unsafe) static var instance: CLIPTokenizer?
    static let lock = NSLock()

    static func get() throws -> CLIPTokenizer {
        lock.lock(); defer { lock.unlock() }
        if let instance { return instance }
        guard let url = Bundle.module.url(forResource: "clip_merges", withExtension: "txt", subdirectory: "Resources")
                ?? Bundle.module.url(forResource: "clip_merges", withExtension: "txt") else {
            throw TokenizerError.resourceMissing("clip_merges.txt")
        }
        let text = try String(contentsOf: url, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let tokenizer = try CLIPTokenizer(merges: lines)
        instance = tokenizer
        return tokenizer
    }
}
