import Foundation
import Testing
import TestSupport
@testable import ModelIO

/// Expected values written by compat/reference/gen_modelio.py (fixtures/modelio/values.json).
struct ValuesFixture: Decodable {
    struct Entry: Decodable { let shape: [Int]; let values: [Double] }
    let metadata: [String: String]
    let tensors: [String: Entry]
}

/// Builds a safetensors image from a header object and a data section.
func safetensorsImage(_ header: [String: Any], data: [UInt8]) throws -> Data {
    try SafetensorsWriter.image(header: header, data: data)
}

@Suite struct SafetensorsTests {
    static let dtypes: [(file: String, dtype: DType)] = [
        ("values_f32.safetensors", .f32), ("values_f16.safetensors", .f16), ("values_bf16.safetensors", .bf16),
    ]

    @Test(arguments: dtypes)
    func sameValuesInEveryDType(file: String, dtype: DType) throws {
        let expected: ValuesFixture = try Fixtures.json("modelio/values.json")
        let st = try Fixtures.safetensors("modelio/" + file)
        #expect(st.metadata == expected.metadata)
        #expect(Set(st.keys) == Set(expected.tensors.keys))
        for (key, entry) in expected.tensors {
            let t = try st.tensor(key)
            #expect(t.shape == entry.shape, "\(file) \(key)")
            // Every value is exactly representable in F32, F16 and BF16 (tolerance: none).
            #expect(t.scalars == entry.values.map { Float($0) }, "\(file) \(key)")
        }
        #expect(st.dtype(of: "model.a.weight") == dtype)
        #expect(st.dtype(of: "ids.long") == .i64)
        #expect(st.dtype(of: "mask.u8") == .u8)
        #expect(st.dtype(of: "absent") == nil)
    }

    @Test func rawHalfBitsStayCompact() throws {
        let st = try Fixtures.safetensors("modelio/values_f16.safetensors")
        let widened = try st.tensor("model.a.weight")
        let bits: [UInt16] = try st.withRawBytes("model.a.weight") { raw in
            (0..<(raw.count / 2)).map { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        }
        #expect(bits.count == widened.count)
        #expect(bits.map { Float(Float16(bitPattern: $0)) } == widened.scalars)
        #expect(try st.rawBytes("model.a.weight").count == 2 * widened.count)
    }

    @Test func halfConversionMatchesFloat16ForAllBitPatterns() {
        for bits in 0...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let ours = halfToFloat(bits)
            if reference.isNaN {
                #expect(ours.isNaN, "0x\(String(bits, radix: 16))")
            } else if ours.bitPattern != reference.bitPattern {
                Issue.record("0x\(String(bits, radix: 16)): \(ours) != \(reference)")
                return
            }
        }
    }

    @Test func fp8DecodesKnownValues() {
        var out = [Float](repeating: 0, count: 5)
        let e4m3: [UInt8] = [0x38, 0xb8, 0x7e, 0x01, 0x7f]  // 1, -1, 448 (max), 2^-9 (min subnormal), NaN
        e4m3.withUnsafeBytes { widen($0.baseAddress!, dtype: .f8e4m3, count: 5, into: &out) }
        #expect(Array(out[0..<4]) == [1, -1, 448, 0x1p-9])
        #expect(out[4].isNaN)
        let e5m2: [UInt8] = [0x3c, 0xc0, 0x7b, 0x7c, 0x01]  // 1, -2, 57344, inf, 2^-16
        e5m2.withUnsafeBytes { widen($0.baseAddress!, dtype: .f8e5m2, count: 5, into: &out) }
        #expect(out == [1, -2, 57344, .infinity, 0x1p-16])
    }

    @Test func truncatedFileNamesFileAndKey() throws {
        let full = try Data(contentsOf: Fixtures.url("modelio/values_f32.safetensors"))
        let cut = full.prefix(full.count - 3)
        #expect {
            try SafetensorsFile(data: cut, name: "cut.safetensors")
        } throws: { error in
            guard case let .truncated(file, key, _, _) = error as? ModelFileError else { return false }
            return file == "cut.safetensors" && !key.isEmpty
        }
        #expect(throws: ModelFileError.truncated(file: "tiny", key: "header length", needed: 8, available: 5)) {
            try SafetensorsFile(data: Data([1, 2, 3, 4, 5]), name: "tiny")
        }
    }

    @Test func headerLengthIsBounded() throws {
        var huge = Data()
        withUnsafeBytes(of: UInt64(200_000_000).littleEndian) { huge.append(contentsOf: $0) }
        huge.append(contentsOf: Array("{}".utf8))
        #expect(throws: ModelFileError.badHeader(file: "h", reason: "header length 200000000 exceeds 100000000 bytes")) {
            try SafetensorsFile(data: huge, name: "h")
        }
        var past = Data()
        withUnsafeBytes(of: UInt64(64).littleEndian) { past.append(contentsOf: $0) }
        past.append(contentsOf: Array("{}".utf8))
        #expect(throws: ModelFileError.truncated(file: "p", key: "header", needed: 72, available: 10)) {
            try SafetensorsFile(data: past, name: "p")
        }
        let notJSON = try safetensorsImage([:], data: []).replacingOccurrences(of: "{", with: "[")
        #expect(throws: ModelFileError.self) { try SafetensorsFile(data: notJSON, name: "j") }
    }

    @Test func deeplyNestedHeaderIsRefusedNotRecursedInto() throws {
        let text = String(repeating: "{\"a\":", count: 500_000) + "1" + String(repeating: "}", count: 500_000)
        var image = Data()
        withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { image.append(contentsOf: $0) }
        image.append(contentsOf: Array(text.utf8))
        #expect(throws: ModelFileError.badHeader(file: "deep", reason: "header is not valid JSON")) {
            try SafetensorsFile(data: image, name: "deep")
        }
    }

    @Test func overlappingOffsetsAreRefused() throws {
        let image = try safetensorsImage([
            "a": ["dtype": "F32", "shape": [2], "data_offsets": [0, 8]],
            "b": ["dtype": "F32", "shape": [2], "data_offsets": [4, 12]],
        ], data: [UInt8](repeating: 0, count: 12))
        #expect(throws: ModelFileError.overlappingData(file: "o", key: "b", other: "a")) {
            try SafetensorsFile(data: image, name: "o")
        }
    }

    @Test func outOfRangeAndInconsistentOffsetsAreRefused() throws {
        let past = try safetensorsImage(["w": ["dtype": "F32", "shape": [4], "data_offsets": [0, 16]]],
                                        data: [UInt8](repeating: 0, count: 8))
        #expect(throws: ModelFileError.truncated(file: "r", key: "w", needed: 16, available: 8)) {
            try SafetensorsFile(data: past, name: "r")
        }
        let mismatch = try safetensorsImage(["w": ["dtype": "F16", "shape": [4], "data_offsets": [0, 16]]],
                                            data: [UInt8](repeating: 0, count: 16))
        #expect {
            try SafetensorsFile(data: mismatch, name: "m")
        } throws: { error in
            guard case let .badHeader(file, reason) = error as? ModelFileError else { return false }
            return file == "m" && reason.contains("'w'")
        }
        let reversed = try safetensorsImage(["w": ["dtype": "U8", "shape": [0], "data_offsets": [4, 2]]],
                                            data: [UInt8](repeating: 0, count: 4))
        #expect(throws: ModelFileError.badHeader(file: "v", reason: "entry 'w' has malformed data_offsets")) {
            try SafetensorsFile(data: reversed, name: "v")
        }
        let fractional = try safetensorsImage(["w": ["dtype": "U8", "shape": [1.5], "data_offsets": [0, 1]]],
                                              data: [0])
        #expect(throws: ModelFileError.badHeader(file: "f", reason: "entry 'w' has a malformed shape")) {
            try SafetensorsFile(data: fractional, name: "f")
        }
        let overflowing = try safetensorsImage(
            ["w": ["dtype": "F64", "shape": [1 << 31, 1 << 31, 1 << 31], "data_offsets": [0, 8]]], data: [UInt8](repeating: 0, count: 8))
        #expect(throws: ModelFileError.self) { try SafetensorsFile(data: overflowing, name: "x") }
    }

    @Test func unsupportedDTypeNamesKey() throws {
        let image = try safetensorsImage(["odd.weight": ["dtype": "C64", "shape": [1], "data_offsets": [0, 8]]],
                                         data: [UInt8](repeating: 0, count: 8))
        #expect(throws: ModelFileError.unsupportedDType(file: "d", key: "odd.weight", dtype: "C64")) {
            try SafetensorsFile(data: image, name: "d")
        }
    }

    @Test func missingKeyAndMissingFileNameTheFile() throws {
        let st = try Fixtures.safetensors("modelio/values_f32.safetensors")
        #expect(throws: ModelFileError.missingKey(file: st.path, key: "nope")) { try st.tensor("nope") }
        #expect {
            try SafetensorsFile(path: "/nonexistent/model.safetensors")
        } throws: { error in
            guard case let .unreadable(file, _) = error as? ModelFileError else { return false }
            return file == "/nonexistent/model.safetensors"
        }
    }

    @Test func emptyAndScalarTensors() throws {
        let st = try Fixtures.safetensors("modelio/values_bf16.safetensors")
        #expect(try st.tensor("model.d.empty").shape == [0, 3])
        let scalar = try st.tensor("model.c.scale")
        #expect(scalar.shape == [])
        #expect(scalar.scalars == [0.375])
    }
}

extension Data {
    /// Replaces the first occurrence of `target` (ASCII) with `replacement` of the same length.
    func replacingOccurrences(of target: String, with replacement: String) -> Data {
        var copy = self
        if let r = copy.range(of: Data(target.utf8)) { copy.replaceSubrange(r, with: Data(replacement.utf8)) }
        return copy
    }
}
