import Foundation
import Testing
import TestSupport
@testable import ModelIO

/// fixtures/modelio/hashes.json: hashlib results from compat/reference/gen_modelio.py.
struct HashFixture: Decodable {
    struct Hashes: Decodable {
        let sha256: String, shorthash: String, legacy: String, addnet: String, addnet_short: String
    }
    struct Pattern: Decodable { let sizes: [String: Hashes] }
    struct LoraLike: Decodable {
        let header_length: Int, pattern_bytes: Int
        let sha256: String, legacy: String, addnet: String, addnet_short: String
    }
    let files: [String: Hashes]
    let pattern: Pattern
    let lora_like: LoraLike
}

/// Byte i of the synthetic files: ((i * 2654435761) >> 13) & 0xff (the generator's formula).
func patternBytes(_ n: Int) -> [UInt8] {
    (0..<n).map { UInt8(truncatingIfNeeded: (UInt64($0) &* 2_654_435_761) >> 13) }
}

final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("modelio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = url.appendingPathComponent(name)
        try Data(bytes).write(to: file)
        return file.path
    }
}

@Suite struct HashTests {
    @Test func committedFixturesHashLikeHashlib() throws {
        let fixture: HashFixture = try Fixtures.json("modelio/hashes.json")
        #expect(fixture.files.count == 4)
        for (name, h) in fixture.files {
            let path = Fixtures.url("modelio/" + name).path
            let sha = try ModelHashes.sha256(file: path)
            #expect(sha == h.sha256, "\(name)")
            #expect(ModelHashes.shorthash(sha) == h.shorthash)
            #expect(try ModelHashes.legacyModelHash(file: path) == h.legacy, "\(name)")
            let addnet = try ModelHashes.addnetHash(file: path)
            #expect(addnet == h.addnet, "\(name)")
            #expect(ModelHashes.addnetShortHash(addnet) == h.addnet_short)
        }
    }

    @Test func syntheticFilesCoverTheLegacyWindow() throws {
        let fixture: HashFixture = try Fixtures.json("modelio/hashes.json")
        let dir = try TempDir()
        #expect(fixture.pattern.sizes.count == 5)
        for (size, h) in fixture.pattern.sizes {
            let path = try dir.write("p\(size).bin", patternBytes(Int(size)!))
            #expect(try ModelHashes.sha256(file: path) == h.sha256, "size \(size)")
            #expect(try ModelHashes.legacyModelHash(file: path) == h.legacy, "size \(size)")
            #expect(try ModelHashes.addnetHash(file: path) == h.addnet, "size \(size)")
        }
        let lora = fixture.lora_like
        var bytes = withUnsafeBytes(of: UInt64(lora.header_length).littleEndian, Array.init)
        bytes += patternBytes(lora.pattern_bytes)
        let path = try dir.write("lora.safetensors", bytes)
        #expect(try ModelHashes.sha256(file: path) == lora.sha256)
        #expect(try ModelHashes.legacyModelHash(file: path) == lora.legacy)
        #expect(try ModelHashes.addnetHash(file: path) == lora.addnet)
    }

    @Test func missingFileIsAnError() {
        #expect(throws: ModelFileError.self) { try ModelHashes.sha256(file: "/nonexistent/x.ckpt") }
        #expect(throws: ModelFileError.self) { try ModelHashes.legacyModelHash(file: "/nonexistent/x.ckpt") }
    }
}

@Suite struct HashCacheTests {
    @Test func computesStoresAndReusesUntilTheFileChanges() throws {
        let dir = try TempDir()
        let model = try dir.write("model.safetensors", patternBytes(5000))
        let cacheURL = dir.url.appendingPathComponent("cache.json")
        let cache = HashCache(url: cacheURL)
        #expect(!cache.recoveredFromCorruption)
        #expect(cache.cachedHash(title: "checkpoint/model.safetensors", file: model) == nil)
        let sha = try cache.hash(title: "checkpoint/model.safetensors", file: model)
        #expect(sha == (try ModelHashes.sha256(file: model)))

        // Reloaded from disk the entry is still valid (the mtime survives the JSON round trip exactly).
        let reloaded = HashCache(url: cacheURL)
        #expect(reloaded.cachedHash(title: "checkpoint/model.safetensors", file: model) == sha)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: cacheURL)) as? [String: Any]
        let entry = (json?["hashes"] as? [String: Any])?["checkpoint/model.safetensors"] as? [String: Any]
        #expect(entry?["sha256"] as? String == sha)
        let mtimeText = (entry?["mtime"] as? NSNumber).map { "\($0)" }
        #expect(mtimeText.flatMap(Double.init) == (try MappedFile.modificationTime(path: model)))

        // A newer file invalidates the entry; hashing again stores the new value.
        try Data(patternBytes(6000)).write(to: URL(fileURLWithPath: model))
        let later = Date().addingTimeInterval(5)
        try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: model)
        #expect(reloaded.cachedHash(title: "checkpoint/model.safetensors", file: model) == nil)
        let newSha = try reloaded.hash(title: "checkpoint/model.safetensors", file: model)
        #expect(newSha != sha)
        #expect(newSha == (try ModelHashes.sha256(file: model)))
    }

    @Test func addnetSectionAndOtherSectionsArePreserved() throws {
        let dir = try TempDir()
        var bytes = withUnsafeBytes(of: UInt64(4).littleEndian, Array.init)
        bytes += Array("{}  ".utf8) + patternBytes(300)
        let lora = try dir.write("style.safetensors", bytes)
        let other = try dir.write("style.pt", patternBytes(300))
        let cacheURL = dir.url.appendingPathComponent("cache.json")
        try Data(#"{"safetensors-metadata": {"lora/x": {"mtime": 1.0, "value": {"a": "b"}}}}"#.utf8).write(to: cacheURL)
        let cache = HashCache(url: cacheURL)
        let addnet = try cache.networkHash(name: "style", file: lora)
        #expect(addnet == (try ModelHashes.addnetHash(file: lora)))
        let full = try cache.networkHash(name: "style-pt", file: other)
        #expect(full == (try ModelHashes.sha256(file: other)))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: cacheURL)) as? [String: Any]
        #expect((json?["hashes-addnet"] as? [String: Any])?["lora/style"] != nil)
        #expect((json?["hashes"] as? [String: Any])?["lora/style-pt"] != nil)
        #expect(json?["safetensors-metadata"] != nil)
    }

    @Test func corruptedCacheIsMovedAsideAndRebuilt() throws {
        let dir = try TempDir()
        let model = try dir.write("m.ckpt", patternBytes(100))
        let cacheURL = dir.url.appendingPathComponent("cache.json")
        try Data("{\"hashes\": {\"checkpoint/m.ckpt\": ".utf8).write(to: cacheURL)
        let cache = HashCache(url: cacheURL)
        #expect(cache.recoveredFromCorruption)
        #expect(FileManager.default.fileExists(atPath: cacheURL.path + ".corrupt"))
        #expect(cache.cachedHash(title: "checkpoint/m.ckpt", file: model) == nil)
        let sha = try cache.hash(title: "checkpoint/m.ckpt", file: model)
        #expect(HashCache(url: cacheURL).cachedHash(title: "checkpoint/m.ckpt", file: model) == sha)
    }

    @Test func malformedEntriesCountAsAbsent() throws {
        let dir = try TempDir()
        let model = try dir.write("m.ckpt", patternBytes(100))
        let cacheURL = dir.url.appendingPathComponent("cache.json")
        let entries = #"""
        {"hashes": {"checkpoint/a": {"mtime": 9e12, "sha256": "not-a-hash"},
                    "checkpoint/b": {"mtime": "soon", "sha256": "\#(String(repeating: "0", count: 64))"},
                    "checkpoint/c": 7}}
        """#
        try Data(entries.utf8).write(to: cacheURL)
        let cache = HashCache(url: cacheURL)
        #expect(!cache.recoveredFromCorruption)
        #expect(cache.cachedHash(title: "checkpoint/a", file: model) == nil)
        #expect(cache.cachedHash(title: "checkpoint/b", file: model) == nil)  // mtime unreadable → 0 → stale
        #expect(cache.cachedHash(title: "checkpoint/c", file: model) == nil)
    }
}
