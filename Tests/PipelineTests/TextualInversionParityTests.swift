import Foundation
import Testing
import TestSupport
import ModelIO
import Tokenizer
@testable import Pipeline

/// Textual-inversion embeddings against A1111 v1.10.1's own EmbeddingDatabase, tokenize_line, forward and
/// EmbeddingsWithFixes on the tiny CLIP (fixtures/text/ti.*, compat/reference/gen_ti.py): chunks with their fixes,
/// the conditioning, used embeddings and TI hashes, the database listing.
@Suite struct TextualInversionParityTests {
    struct Chunk: Decodable {
        let tokens: [Int]
        let multipliers: [Double]
        let fixes: [Fix]
    }
    struct Fix: Decodable {
        let offset: Int, name: String
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            offset = try c.decode(Int.self)
            name = try c.decode(String.self)
        }
    }
    struct Case: Decodable {
        let id, prompt, tensor: String
        let chunks: [Chunk]
        let token_count: Int
        let used_embeddings: [String]
        let ti_hashes: String?
    }
    struct Batch: Decodable {
        let id, tensor: String
        let texts: [String]
        let used_embeddings: [String]
        let ti_hashes: String?
    }
    struct Chained: Decodable {
        struct Call: Decodable { let prompt: String; let used_embeddings: [String]; let ti_hashes: String }
        let calls: [Call]
    }
    struct Listing: Decodable {
        let sd_checkpoint, sd_checkpoint_name: String?
        let shape, vectors: Int
        let step: Int?
    }
    struct Database: Decodable {
        let loaded, skipped: [String]
        let listing: [String: [String: Listing]]
    }
    struct File: Decodable {
        let cases: [Case]
        let batches: [Batch]
        let chained: [Chained]
        let database: Database
    }

    /// The fixture embeddings as the server would find them in Models/embeddings.
    static func database() throws -> (EmbeddingDatabase, TempModels) {
        let models = try TempModels()
        let folder = Fixtures.url("text/ti")
        try FileManager.default.copyItem(atPath: folder.path, toPath: models.path("embeddings"))
        return (ModelFiles(modelsDir: models.root.path, dataDir: nil).embeddings(width: 32), models)
    }

    @Test func databaseListsWhatA1111Lists() throws {
        let file: File = try Fixtures.json("text/ti.json")
        let (db, models) = try Self.database()
        _ = models
        #expect(db.loaded.map(\.name) == file.database.loaded)
        #expect(db.skipped.map(\.name) == file.database.skipped)
        for e in db.loaded {
            let want = try #require(file.database.listing["loaded"]?[e.name])
            #expect(e.vectorCount == want.vectors && e.shape == want.shape && e.step == want.step, "\(e.name)")
            #expect(e.sdCheckpoint == want.sd_checkpoint && e.sdCheckpointName == want.sd_checkpoint_name, "\(e.name)")
        }
    }

    /// Tolerance: the F32 CLIP sums in another order than torch (as TextEncoderTests, measured ≤ 3e-5).
    @Test func promptsEncodeAsA1111Encodes() throws {
        let file: File = try Fixtures.json("text/ti.json")
        let tensors = try Fixtures.safetensors("text/ti.safetensors")
        let (db, models) = try Self.database()
        _ = models
        let base = try Txt2ImgParityTests.tinyModel()
        let encoder = try #require(base.text.using(db) as? CLIPPromptEncoder)
        let active = ActiveNetworks(model: base, embeddingHashes: Dictionary(uniqueKeysWithValues:
            db.loaded.compactMap { e in e.shortHash.map { (e.name, $0) } }))
        for c in file.cases {
            let (chunks, count) = try encoder.chunker.chunks(c.prompt)
            #expect(count == c.token_count, "\(c.id)")
            #expect(chunks.map(\.tokens) == c.chunks.map(\.tokens), "\(c.id)")
            #expect(chunks.map(\.multipliers) == c.chunks.map(\.multipliers), "\(c.id)")
            #expect(chunks.map { $0.fixes.map { "\($0.offset):\($0.name)" } }
                    == c.chunks.map { $0.fixes.map { "\($0.offset):\($0.name)" } }, "\(c.id)")
            let (conds, used) = try encoder.encodeRecordingEmbeddings([c.prompt], clipSkip: 1)
            #expect(used == c.used_embeddings, "\(c.id)")
            #expect(active.tiHashes(calls: [used]) == c.ti_hashes, "\(c.id)")
            let closeness = Closeness(conds[0], try tensors.tensor(c.tensor))
            #expect(closeness.maxAbs < 2e-4, "\(c.id): \(closeness)")
        }
        for b in file.batches {
            let (conds, used) = try encoder.encodeRecordingEmbeddings(b.texts, clipSkip: 1)
            #expect(used == b.used_embeddings, "\(b.id)")
            #expect(active.tiHashes(calls: [used]) == b.ti_hashes, "\(b.id)")
            let want = try tensors.tensor(b.tensor)
            let closeness = Closeness(Tensor.concat(conds.map { $0.reshaped([1] + $0.shape) }, axis: 0), want)
            #expect(closeness.maxAbs < 2e-4, "\(b.id): \(closeness)")
        }
        for chain in file.chained {
            var calls = [[String]]()
            for call in chain.calls {
                calls.append(try encoder.encodeRecordingEmbeddings([call.prompt], clipSkip: 1).used)
                #expect(calls.last == call.used_embeddings)
                #expect(active.tiHashes(calls: calls) == call.ti_hashes)
            }
        }
    }
}
