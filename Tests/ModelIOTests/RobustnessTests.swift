import Foundation
import Testing
import TestSupport
@testable import ModelIO

/// Mutated model files must produce thrown errors, never a crash (a trap would abort the whole test process).
@Suite struct RobustnessTests {
    static let files = ["values_f32.safetensors", "values_bf16.safetensors", "nested_p2.ckpt", "flat_p4.ckpt",
                        "hostile_posix_system.ckpt", "deflated.ckpt", "lightning.ckpt"]

    /// Opens `data` with the reader its name implies and decodes every tensor.
    static func openAndReadAll(_ data: Data, name: String) throws {
        let source: any CheckpointFile = name.hasSuffix(".safetensors")
            ? try SafetensorsFile(data: data, name: name) : try PickleCheckpointFile(data: data, name: name)
        for key in source.keys { _ = try source.tensor(key) }
    }

    @Test(arguments: files)
    func everyTruncationThrows(file: String) throws {
        let full = try Data(contentsOf: Fixtures.url("modelio/" + file))
        var offsets = Array(stride(from: 0, to: full.count, by: 97))
        offsets.append(full.count - 1)
        for length in offsets {
            #expect(throws: ModelFileError.self, "\(file) cut at \(length)") {
                try Self.openAndReadAll(full.prefix(length), name: file)
            }
        }
    }

    /// Flips bytes one at a time (three patterns) over the header / archive structure. A flip may leave a valid
    /// file (e.g. inside a metadata string or tensor data); what is asserted is that nothing traps and that
    /// structural damage is reported.
    @Test(arguments: files)
    func byteFlipsNeverCrash(file: String) throws {
        let full = try Data(contentsOf: Fixtures.url("modelio/" + file))
        let region: Range<Int>
        if file.hasSuffix(".safetensors") {
            let n = full.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
            region = 0..<(8 + n)
        } else {
            region = 0..<full.count
        }
        var thrown = 0, opened = 0
        for offset in region {
            for mask: UInt8 in [0xff, 0x01, 0x80] {
                var copy = full
                copy[offset] ^= mask
                do {
                    try Self.openAndReadAll(copy, name: file)
                    opened += 1
                } catch is ModelFileError {
                    thrown += 1
                } catch {
                    Issue.record("\(file) flip at \(offset): unexpected error type \(error)")
                }
            }
        }
        #expect(thrown > 0, "\(file): no flip was detected")
        #expect(thrown + opened == region.count * 3)
    }

    /// Size fields set to extremes must be refused before any allocation of that size.
    @Test func extremeLengthFieldsAreRefused() throws {
        let full = try Data(contentsOf: Fixtures.url("modelio/values_f32.safetensors"))
        for value: UInt64 in [0, 1, 7, UInt64(full.count), UInt64(Int64.max), UInt64.max] {
            var copy = full
            withUnsafeBytes(of: value.littleEndian) { copy.replaceSubrange(0..<8, with: $0) }
            #expect(throws: ModelFileError.self, "header length \(value)") {
                try SafetensorsFile(data: copy, name: "x.safetensors")
            }
        }
    }
}
