import Foundation
import Testing
import TestSupport
@testable import Media

@Suite struct PNGTests {
    struct Expected: Decodable {
        let width: Int
        let height: Int
        let rgb: [Int]
        let texts: [[String]]
    }

    static let expected: [String: Expected] = (try? Fixtures.json("api/png_expected.json")) ?? [:]

    /// PNGs written by Pillow (and one hand-built 16-bit RGB file) decode to the expected RGB pixels exactly and
    /// expose every tEXt/zTXt/iTXt chunk in file order.
    @Test(arguments: ["rgb8", "rgba8", "gray8", "graya8", "gray16", "palette", "rgb16"])
    func decodesColourTypes(_ name: String) throws {
        let want = try #require(Self.expected[name], "fixture \(name) missing")
        let data = try Data(contentsOf: Fixtures.url("api/png/\(name).png"))
        let png = try PNG.decode(data)
        #expect(png.width == want.width && png.height == want.height)
        #expect(png.rgb.map(Int.init) == want.rgb)
        #expect(png.texts.map { [$0.keyword, $0.text] } == want.texts)
    }

    @Test func encodeWritesExactlyOneParametersChunk() throws {
        let pixels = (0..<(3 * 2 * 3)).map { UInt8($0 * 13 % 256) }
        let data = try PNG.encode(width: 3, height: 2, rgb: pixels, texts: [("parameters", "a, b\nSteps: 1")])
        let chunks = Self.chunkTypes(data)
        #expect(chunks.first == "IHDR" && chunks.last == "IEND")
        #expect(chunks.filter { $0 == "tEXt" }.count == 1)
        #expect(!chunks.contains("iTXt") && !chunks.contains("zTXt"))
        let back = try PNG.decode(data)
        #expect(back.rgb == pixels)
        #expect(back.texts == [PNGText(keyword: "parameters", text: "a, b\nSteps: 1", kind: .tEXt)])
    }

    @Test func nonLatin1TextGoesToITXt() throws {
        let data = try PNG.encode(width: 1, height: 1, rgb: [1, 2, 3], texts: [("parameters", "漢字 café")])
        #expect(Self.chunkTypes(data).contains("iTXt"))
        #expect(try PNG.decode(data).texts.first?.text == "漢字 café")
    }

    @Test func latin1TextStaysTEXt() throws {
        let data = try PNG.encode(width: 1, height: 1, rgb: [1, 2, 3], texts: [("parameters", "café ñ")])
        #expect(Self.chunkTypes(data).contains("tEXt"))
        #expect(try PNG.decode(data).texts.first?.text == "café ñ")
    }

    @Test func refusesBadInput() {
        #expect(throws: PNGError.notPNG) { try PNG.decode(Data("hello".utf8)) }
        #expect(throws: PNGError.self) { try PNG.decode(Data(PNG.signature + [0, 0, 0, 13, 73, 72, 68, 82])) }
        #expect(throws: PNGError.self) { try PNG.encode(width: 2, height: 2, rgb: [0, 0, 0]) }
        #expect(throws: PNGError.self) { try PNG.encode(width: 1, height: 1, rgb: [0, 0, 0], texts: [("", "x")]) }
    }

    static func chunkTypes(_ data: Data) -> [String] {
        let b = [UInt8](data)
        var pos = 8, out = [String]()
        while pos + 8 <= b.count {
            let n = Int(b[pos]) << 24 | Int(b[pos + 1]) << 16 | Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            out.append(String(decoding: b[(pos + 4)..<(pos + 8)], as: UTF8.self))
            pos += 12 + n
        }
        return out
    }
}

/// A1111 saves with Pillow, which writes no colour-space chunks; clients listing `Image.info` expect only
/// `parameters`.
@Test func encodedPNGHasOnlyHeaderTextDataAndEnd() throws {
    let data = try PNG.encode(width: 2, height: 1, rgb: [1, 2, 3, 4, 5, 6], texts: [("parameters", "x")])
    let bytes = [UInt8](data)
    var types = [String](), i = 8
    while i + 12 <= bytes.count {
        let length = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
        types.append(String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self))
        i += 12 + length
    }
    #expect(Set(types) == ["IHDR", "tEXt", "IDAT", "IEND"])
    #expect(try PNG.decode(data).rgb == [1, 2, 3, 4, 5, 6])
}
