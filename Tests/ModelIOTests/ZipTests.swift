import Foundation
import Testing
import TestSupport
@testable import ModelIO

/// Writes stored entries in zip64 form (every size and offset in the 64-bit extra fields, 32-bit fields
/// saturated, zip64 end records), as torch does for archives over 4 GiB.
func zip64Image(_ entries: [(name: String, data: Data)]) -> Data {
    var out = Data()
    func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { out.append(contentsOf: $0) } }
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { out.append(contentsOf: $0) } }
    var offsets = [Int]()
    for (name, data) in entries {
        offsets.append(out.count)
        u32(0x0403_4b50); u16(45); u16(0); u16(0); u16(0); u16(0); u32(0); u32(.max); u32(.max)
        u16(name.utf8.count); u16(20)
        out.append(contentsOf: Array(name.utf8))
        u16(1); u16(16); u64(data.count); u64(data.count)
        out.append(data)
    }
    let cdStart = out.count
    for ((name, data), offset) in zip(entries, offsets) {
        u32(0x0201_4b50); u16(45); u16(45); u16(0); u16(0); u16(0); u16(0); u32(0); u32(.max); u32(.max)
        u16(name.utf8.count); u16(28); u16(0); u16(0); u16(0); u32(0); u32(.max)
        out.append(contentsOf: Array(name.utf8))
        u16(1); u16(24); u64(data.count); u64(data.count); u64(offset)
    }
    let cdSize = out.count - cdStart
    let record = out.count
    u32(0x0606_4b50); u64(44); u16(45); u16(45); u32(0); u32(0)
    u64(entries.count); u64(entries.count); u64(cdSize); u64(cdStart)
    u32(0x0706_4b50); u32(0); u64(record); u32(1)
    u32(0x0605_4b50); u16(0); u16(0); u16(0xffff); u16(0xffff); u32(.max); u32(.max); u16(0)
    return out
}

@Suite struct ZipTests {
    static func entries(of file: String) throws -> [(name: String, data: Data)] {
        let data = try Data(contentsOf: Fixtures.url("modelio/" + file))
        let directory = try ZipDirectory(data: data, file: file)
        return directory.entries.values.sorted { $0.dataOffset < $1.dataOffset }.map { entry in
            (entry.name, data.subdata(in: entry.dataOffset..<(entry.dataOffset + entry.compressedSize)))
        }
    }

    @Test func zip64ArchiveReadsLikeTheOriginal() throws {
        let original = try PickleCheckpointFile(path: Fixtures.url("modelio/nested_p2.ckpt").path)
        let image = zip64Image(try Self.entries(of: "nested_p2.ckpt"))
        let repacked = try PickleCheckpointFile(data: image, name: "zip64.ckpt")
        #expect(repacked.keys == original.keys)
        for key in original.keys { #expect(try repacked.tensor(key) == original.tensor(key), "\(key)") }
    }

    @Test func deflatedArchiveIsInflated() throws {
        let original = try PickleCheckpointFile(path: Fixtures.url("modelio/nested_p2.ckpt").path)
        let deflated = try PickleCheckpointFile(path: Fixtures.url("modelio/deflated.ckpt").path)
        #expect(deflated.keys == original.keys)
        #expect(deflated.metadata == original.metadata)
        for key in original.keys { #expect(try deflated.tensor(key) == original.tensor(key), "\(key)") }
    }

    @Test func inconsistentDirectoriesAreRefused() throws {
        let good = try Self.entries(of: "nested_p2.ckpt")
        // Same name twice.
        #expect(throws: ModelFileError.badArchive(file: "d.ckpt", reason: "duplicate entry 'archive/data.pkl'")) {
            try PickleCheckpointFile(data: zip64Image(good + [good.first { $0.name.hasSuffix("data.pkl") }!]), name: "d.ckpt")
        }
        // No data.pkl at all.
        #expect(throws: ModelFileError.badArchive(file: "n.ckpt", reason: "no <name>/data.pkl entry")) {
            try PickleCheckpointFile(data: zip64Image(good.filter { !$0.name.hasSuffix("data.pkl") }), name: "n.ckpt")
        }
        // A big-endian byteorder record.
        let bigEndian = good.map { $0.name.hasSuffix("/byteorder") ? ($0.name, Data("big".utf8)) : $0 }
        #expect {
            try PickleCheckpointFile(data: zip64Image(bigEndian), name: "b.ckpt")
        } throws: { error in
            guard case .unsupportedFormat("b.ckpt", _) = error as? ModelFileError else { return false }
            return true
        }
        // A storage entry shorter than the storage it must hold.
        let short = good.map { $0.name.hasSuffix("/data/0") ? ($0.name, $0.data.prefix(2)) : $0 }
        #expect {
            try PickleCheckpointFile(data: zip64Image(short), name: "s.ckpt")
        } throws: { error in
            guard case let .truncated(file, key, _, available) = error as? ModelFileError else { return false }
            return file == "s.ckpt" && key.contains("archive/data/0") && available == 2
        }
    }
}
