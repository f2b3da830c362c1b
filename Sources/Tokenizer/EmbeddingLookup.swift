/// Textual-inversion embedding names as the tokenizer sees them, for finding them in token sequences.
/// Names are tokenized like prompt text; candidates sharing a first token are tried longest first.
/// Matches: modules/textual_inversion/textual_inversion.py EmbeddingDatabase.register_embedding_by_name,
/// find_embedding_at_position
public struct EmbeddingLookup: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        /// The name's token ids.
        public let ids: [Int]
        /// How many vectors (token slots) the embedding fills.
        public let vectors: Int
    }

    private var byFirstToken: [Int: [Entry]] = [:]

    /// `embeddings` in registration order (A1111 registers files as it finds them; later entries with the same
    /// first token and length come after earlier ones).
    public init(_ embeddings: [(name: String, vectors: Int)], tokenizer: CLIPTokenizer) {
        for (name, vectors) in embeddings {
            let ids = tokenizer.encode(name)
            guard let first = ids.first, vectors > 0 else { continue }
            var list = byFirstToken[first, default: []].filter { $0.name != name }
            list.append(Entry(name: name, ids: ids, vectors: vectors))
            // A stable sort, longest name first, as Python's sorted(..., reverse=True) keeps ties in order.
            byFirstToken[first] = list.enumerated().sorted {
                $0.element.ids.count != $1.element.ids.count ? $0.element.ids.count > $1.element.ids.count
                                                             : $0.offset < $1.offset
            }.map(\.element)
        }
    }

    public var isEmpty: Bool { byFirstToken.isEmpty }

    /// The embedding whose name's tokens start at `offset` of `tokens`, if any.
    public func match(_ tokens: [Int], at offset: Int) -> Entry? {
        guard let candidates = byFirstToken[tokens[offset]] else { return nil }
        return candidates.first { entry in
            offset + entry.ids.count <= tokens.count && Array(tokens[offset..<(offset + entry.ids.count)]) == entry.ids
        }
    }
}
