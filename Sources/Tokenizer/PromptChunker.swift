/// One 77-token window of a prompt: start token, 75 prompt tokens (padded with end tokens), end token.
public struct PromptChunk: Sendable, Equatable {
    /// A textual-inversion embedding placed in the chunk: its vectors replace the token embeddings from
    /// `offset + 1` on (the `+ 1` skips the start token; the ids there are placeholders, 0).
    public struct Fix: Sendable, Hashable {
        public let offset: Int
        public let name: String

        public init(offset: Int, name: String) {
            self.offset = offset
            self.name = name
        }
    }

    public var tokens: [Int]
    public var multipliers: [Double]
    public var fixes: [Fix]

    public init(tokens: [Int], multipliers: [Double], fixes: [Fix] = []) {
        self.tokens = tokens
        self.multipliers = multipliers
        self.fixes = fixes
    }

    /// A chunk of nothing: start token then end tokens (pads shorter prompts of a batch).
    /// Matches: modules/sd_hijack_clip.py TextConditionalModel.empty_chunk
    public static var empty: PromptChunk {
        PromptChunk(tokens: [CLIPTokenizer.startToken] + Array(repeating: CLIPTokenizer.endToken,
                                                                  count: PromptChunker.chunkLength + 1),
                    multipliers: Array(repeating: 1, count: PromptChunker.chunkLength + 2))
    }
}

/// Turns prompt text into CLIP chunks with per-token emphasis multipliers, as A1111's SD1 text conditioner.
public struct PromptChunker: Sendable {
    public static let chunkLength = 75

    public let tokenizer: CLIPTokenizer
    /// `comma_padding_backtrack`: text after a comma within this many tokens of a chunk's end moves to the next
    /// chunk (A1111 default 20; 0 disables).
    public var commaBacktrack: Int
    /// Emphasis parsing on (`opts.emphasis != "None"`); off, the whole prompt has weight 1 and brackets are text.
    public var parseEmphasis: Bool
    /// Textual-inversion embeddings recognised in the text.
    public var embeddings: EmbeddingLookup?
    private let commaToken: Int?

    public init(tokenizer: CLIPTokenizer, commaBacktrack: Int = 20, parseEmphasis: Bool = true,
                embeddings: EmbeddingLookup? = nil) {
        self.tokenizer = tokenizer
        self.commaBacktrack = commaBacktrack
        self.parseEmphasis = parseEmphasis
        self.embeddings = embeddings
        self.commaToken = tokenizer.id(of: ",</w>")
    }

    /// The chunks of one prompt and its token count (as shown in A1111's token counter).
    /// Matches: modules/sd_hijack_clip.py TextConditionalModel.tokenize_line
    public func chunks(_ line: String) throws -> (chunks: [PromptChunk], tokenCount: Int) {
        let parsed = parseEmphasis ? try PromptAttention.parse(line) : [PromptAttention.Segment(line, 1)]
        let n = Self.chunkLength
        var chunks = [PromptChunk]()
        var tokens = [Int](), mults = [Double](), fixes = [PromptChunk.Fix]()
        var tokenCount = 0
        var lastComma = -1

        func nextChunk(isLast: Bool = false) {
            tokenCount += isLast ? tokens.count : n
            let pad = n - tokens.count
            if pad > 0 {
                tokens += Array(repeating: CLIPTokenizer.endToken, count: pad)
                mults += Array(repeating: 1, count: pad)
            }
            chunks.append(PromptChunk(tokens: [CLIPTokenizer.startToken] + tokens + [CLIPTokenizer.endToken],
                                      multipliers: [1] + mults + [1], fixes: fixes))
            tokens = []; mults = []; fixes = []
            lastComma = -1
        }

        for segment in parsed {
            if segment.isBreak { nextChunk(); continue }
            let ids = tokenizer.encode(segment.text)
            var position = 0
            while position < ids.count {
                let token = ids[position]
                if token == commaToken {
                    lastComma = tokens.count
                } else if commaBacktrack != 0 && tokens.count == n && lastComma != -1
                            && tokens.count - lastComma <= commaBacktrack {
                    let cut = lastComma + 1
                    let movedTokens = Array(tokens[cut...]), movedMults = Array(mults[cut...])
                    tokens.removeSubrange(cut...); mults.removeSubrange(cut...)
                    nextChunk()
                    tokens = movedTokens; mults = movedMults
                }
                if tokens.count == n { nextChunk() }
                if let embedding = embeddings?.match(ids, at: position) {
                    guard embedding.vectors <= n else {
                        throw TokenizerError.embeddingTooLong(name: embedding.name, vectors: embedding.vectors)
                    }
                    // An embedding never straddles chunks; its placeholders take its vectors later. (A1111 keeps
                    // the fix with the chunk it was made in even when a comma backtrack moves the tokens on.)
                    if tokens.count + embedding.vectors > n { nextChunk() }
                    fixes.append(PromptChunk.Fix(offset: tokens.count, name: embedding.name))
                    tokens += Array(repeating: 0, count: embedding.vectors)
                    mults += Array(repeating: segment.weight, count: embedding.vectors)
                    position += embedding.ids.count
                    continue
                }
                tokens.append(token)
                mults.append(segment.weight)
                position += 1
            }
        }
        if !tokens.isEmpty || chunks.isEmpty { nextChunk(isLast: true) }
        return (chunks, tokenCount)
    }
}
