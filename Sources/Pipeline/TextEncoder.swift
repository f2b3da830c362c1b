import Foundation
import Networks
import Tokenizer

/// How `(text:1.2)` emphasis changes the encoding (A1111 option `emphasis`).
public enum EmphasisMode: String, Sendable, CaseIterable {
    /// Brackets are plain text; no multipliers.
    case none = "None"
    /// Brackets are parsed away; multipliers are not applied.
    case ignore = "Ignore"
    /// Hidden states × multipliers, then rescaled to the chunk batch's original mean (A1111 default).
    case original = "Original"
    /// Hidden states × multipliers, no rescaling.
    case noNorm = "No norm"
}

/// The SD1 text side: extra-network tags, `AND`, prompt editing and alternation, emphasis, 75-token chunks,
/// CLIP with clip skip.
/// Matches: modules/prompt_parser.py get_multicond_learned_conditioning, get_learned_conditioning;
/// modules/sd_hijack_clip.py TextConditionalModel.forward, process_tokens
public final class CLIPPromptEncoder: PromptEncoder, @unchecked Sendable {
    public let model: CLIPTextModel
    public let chunker: PromptChunker
    public let emphasis: EmphasisMode
    /// Textual-inversion vectors by name (those `chunker.embeddings` recognises).
    public let embeddingVectors: [String: Tensor]

    /// Builds the encoder from weights scoped at `cond_stage_model.transformer.text_model`, with the bundled
    /// tokenizer; fails when any key there is left unread.
    public init(_ w: WeightReader, emphasis: EmphasisMode = .original, commaBacktrack: Int = 20) throws {
        model = try CLIPTextModel(w)
        let unused = w.unusedKeys()
        guard unused.isEmpty else {
            throw TensorError.invalid("text encoder keys not understood: \(unused.prefix(5).joined(separator: ", "))")
        }
        chunker = PromptChunker(tokenizer: try CLIPTokenizer.shared(), commaBacktrack: commaBacktrack,
                                parseEmphasis: emphasis != .none)
        self.emphasis = emphasis
        embeddingVectors = [:]
    }

    private init(model: CLIPTextModel, chunker: PromptChunker, emphasis: EmphasisMode, embeddings: [String: Tensor]) {
        self.model = model
        self.chunker = chunker
        self.emphasis = emphasis
        embeddingVectors = embeddings
    }

    public var width: Int { model.width }

    public func configured(emphasis: EmphasisMode, commaBacktrack: Int) -> any PromptEncoder {
        guard emphasis != self.emphasis || commaBacktrack != chunker.commaBacktrack else { return self }
        var chunker = self.chunker
        chunker.commaBacktrack = commaBacktrack
        chunker.parseEmphasis = emphasis != .none
        return CLIPPromptEncoder(model: model, chunker: chunker, emphasis: emphasis, embeddings: embeddingVectors)
    }

    public func using(_ embeddings: EmbeddingDatabase) -> any PromptEncoder {
        var chunker = self.chunker
        let usable = embeddings.loaded.filter { $0.shape == model.width }
        chunker.embeddings = usable.isEmpty ? nil
            : EmbeddingLookup(usable.map { ($0.name, $0.vectorCount) }, tokenizer: chunker.tokenizer)
        return CLIPPromptEncoder(model: model, chunker: chunker, emphasis: emphasis,
                                 embeddings: Dictionary(usable.map { ($0.name, $0.vectors) }, uniquingKeysWith: { a, _ in a }))
    }

    /// The factory the Engine uses for SD1 checkpoints.
    public static var factory: Engine.TextEncoderFactory { { try CLIPPromptEncoder($0) } }

    /// Positive prompts with extra-network tags removed, then split at `AND`; equal parts are encoded once.
    public func composable(_ prompts: [String], steps: Int, hiresSteps: Int?, clipSkip: Int) throws
        -> [ComposablePrompt] {
        let texts = ExtraNetworkTag.strip(prompts: prompts).texts
        let split = texts.map(PromptComposition.parts)
        var flat = [String](), slot = [String: Int]()
        for part in split.joined() where slot[part.text] == nil {
            slot[part.text] = flat.count
            flat.append(part.text)
        }
        let schedules = try scheduled(flat, steps: steps, hiresSteps: hiresSteps, clipSkip: clipSkip)
        return split.map { parts in
            ComposablePrompt(parts: parts.map { (schedules[slot[$0.text, default: 0]], Float($0.weight)) })
        }
    }

    /// Prompts (negative prompts: no `AND`, no tag stripping) encoded over their edit/alternation schedules.
    public func scheduled(_ prompts: [String], steps: Int, hiresSteps: Int?, clipSkip: Int) throws
        -> [PromptSchedule] {
        var cache = [String: PromptSchedule]()
        return try prompts.map { prompt in
            if let hit = cache[prompt] { return hit }
            let entries = PromptScheduling.schedule(prompt, steps: steps, hiresSteps: hiresSteps)
            let (conds, used) = try encodeRecordingEmbeddings(entries.map(\.text), clipSkip: clipSkip)
            var schedule = PromptSchedule(zip(entries, conds).map {
                ScheduledConditioning(endAtStep: $0.endAtStep, cond: $1)
            })
            schedule.embeddings = used
            cache[prompt] = schedule
            return schedule
        }
    }

    /// Encodes texts together as one A1111 batch: every text gets as many chunks as the longest (padding with
    /// empty chunks), and emphasis is normalised per chunk position over the whole batch. Each result is
    /// `[chunks·77, C]`.
    public func encode(_ texts: [String], clipSkip: Int) throws -> [Tensor] {
        try encodeRecordingEmbeddings(texts, clipSkip: clipSkip).conds
    }

    /// `encode`, and the textual-inversion embeddings the texts used, in the order A1111 meets them (chunk
    /// position, then text).
    /// Matches: modules/sd_hijack_clip.py TextConditionalModel.forward (used_embeddings)
    func encodeRecordingEmbeddings(_ texts: [String], clipSkip: Int) throws -> (conds: [Tensor], used: [String]) {
        var chunkCache = [String: [PromptChunk]]()
        let batch = try texts.map { text -> [PromptChunk] in
            if let hit = chunkCache[text] { return hit }
            let chunks = try chunker.chunks(text).chunks
            chunkCache[text] = chunks
            return chunks
        }
        let chunkCount = batch.map(\.count).max() ?? 0
        var rows = [[Tensor]](repeating: [], count: texts.count)
        var used = [String]()
        for i in 0..<chunkCount {
            let chunks = batch.map { i < $0.count ? $0[i] : PromptChunk.empty }
            for fix in chunks.flatMap(\.fixes) where !used.contains(fix.name) { used.append(fix.name) }
            for (b, z) in try encodeChunks(chunks, clipSkip: clipSkip).enumerated() { rows[b].append(z) }
        }
        return (rows.map { Tensor.concat($0, axis: 0) }, used)
    }

    /// One chunk per text through CLIP (identical token rows once), then emphasis over the batch `[B, 77, C]`.
    /// Matches: modules/sd_hijack_clip.py TextConditionalModel.process_tokens; modules/sd_emphasis.py
    func encodeChunks(_ chunks: [PromptChunk], clipSkip: Int) throws -> [Tensor] {
        var unique = [PromptChunk](), index = [ChunkKey: Int](), rowOf = [Int]()
        for c in chunks {
            let key = ChunkKey(tokens: c.tokens, fixes: c.fixes)
            if let i = index[key] { rowOf.append(i); continue }
            index[key] = unique.count
            rowOf.append(unique.count)
            unique.append(c)
        }
        let replacements = try unique.map { chunk in
            try chunk.fixes.map { fix -> (start: Int, vectors: Tensor) in
                guard let vectors = embeddingVectors[fix.name] else {
                    throw TensorError.invalid("embedding '\(fix.name)' has no vectors")
                }
                return (fix.offset + 1, vectors)
            }
        }
        let z = try model(unique.map(\.tokens), replacements: replacements, clipSkip: clipSkip)   // [U, 77, C]
        let perRow = z.shape[1] * z.shape[2], width = z.shape[2]
        var out = rowOf.map { z.slice(axis: 0, $0..<($0 + 1)).reshaped([z.shape[1], width]) }   // [77, C] each
        guard emphasis == .original || emphasis == .noNorm else { return out }
        let originalMean = Float(out.reduce(0.0) { $0 + $1.sum() } / Double(out.count * perRow))
        for (b, chunk) in chunks.enumerated() {
            out[b].withUnsafeMutableBufferPointer { p in
                for (t, m) in chunk.multipliers.enumerated() {
                    let f = Float(m)
                    for j in 0..<width { p[t * width + j] *= f }
                }
            }
        }
        guard emphasis == .original else { return out }
        let newMean = Float(out.reduce(0.0) { $0 + $1.sum() } / Double(out.count * perRow))
        let ratio = originalMean / newMean
        return out.map { $0 * ratio }
    }
}

/// Chunks encode alike when their tokens and embedding placements agree.
private struct ChunkKey: Hashable {
    let tokens: [Int]
    let fixes: [PromptChunk.Fix]
}
