import CPNG
import Foundation

/// A text chunk of a PNG file.
public struct PNGText: Sendable, Equatable {
    public enum Kind: String, Sendable { case tEXt, zTXt, iTXt }
    public let keyword: String
    public let text: String
    public let kind: Kind

    public init(keyword: String, text: String, kind: Kind = .tEXt) {
        self.keyword = keyword
        self.text = text
        self.kind = kind
    }
}

/// A decoded PNG: 8-bit RGB pixels (whatever the file held: gray, palette, alpha, 16-bit) and its text chunks.
/// 16-bit samples are scaled to 8 bits by libpng (round(v · 255 / 65535)).
public struct DecodedPNG: Sendable {
    public let width: Int
    public let height: Int
    /// Row-major RGB, 3 bytes per pixel. Alpha is dropped (A1111 converts images to RGB the same way).
    public let rgb: [UInt8]
    public let texts: [PNGText]
}

public enum PNGError: Error, CustomStringConvertible, Equatable {
    case notPNG
    case decodeFailed(String)
    case encodeFailed(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .notPNG: return "data is not a PNG file (bad signature)"
        case let .decodeFailed(m): return "PNG decode failed: \(m)"
        case let .encodeFailed(m): return "PNG encode failed: \(m)"
        case let .badInput(m): return "PNG encode: \(m)"
        }
    }
}

/// PNG reading and writing on libpng's simplified API (which reports errors instead of longjmp-ing), with text
/// chunks handled here: libpng's simplified API does not expose them.
public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func isPNG(_ data: Data) -> Bool { data.count >= 8 && Array(data.prefix(8)) == signature }

    /// Encodes 8-bit RGB pixels, then adds the text chunks right after IHDR: a `tEXt` chunk when the text is
    /// Latin-1, else `iTXt` (UTF-8), as Pillow's `PngInfo.add_text` chooses.
    public static func encode(width: Int, height: Int, rgb: [UInt8], texts: [(String, String)] = []) throws(PNGError) -> Data {
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw .badInput("\(rgb.count) bytes for \(width)x\(height) RGB")
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = png_uint_32(PNG_FORMAT_RGB)
        var size: png_alloc_size_t = 0
        let sizeOK = rgb.withUnsafeBytes { px in
            png_image_write_to_memory(&image, nil, &size, 0, px.baseAddress, png_int_32(width * 3), nil)
        }
        guard sizeOK != 0, size > 0 else { throw .encodeFailed(message(image)) }
        var out = [UInt8](repeating: 0, count: Int(size))
        let ok = out.withUnsafeMutableBytes { buf in
            rgb.withUnsafeBytes { px in
                png_image_write_to_memory(&image, buf.baseAddress, &size, 0, px.baseAddress, png_int_32(width * 3), nil)
            }
        }
        png_image_free(&image)
        guard ok != 0 else { throw .encodeFailed(message(image)) }
        out.removeSubrange(Int(size)...)
        out = withoutColorspaceChunks(out)
        var chunks = [UInt8]()
        for (keyword, text) in texts {
            guard (1...79).contains(keyword.utf8.count), keyword.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value <= 255 }) else {
                throw .badInput("text keyword '\(keyword)' must be 1-79 Latin-1 characters")
            }
            let key = keyword.unicodeScalars.map { UInt8($0.value) }
            if let latin1 = latin1Bytes(text) {
                chunks += chunk("tEXt", key + [0] + latin1)
            } else {
                chunks += chunk("iTXt", key + [0, 0, 0, 0, 0] + Array(text.utf8))
            }
        }
        // IHDR is always 8 (signature) + 4 + 4 + 13 + 4 bytes.
        out.insert(contentsOf: chunks, at: 33)
        return Data(out)
    }

    /// Drops the sRGB / gAMA / cHRM chunks libpng's simplified writer adds, so files carry what Pillow writes for
    /// A1111 (IHDR, text, IDAT, IEND): clients that list a PNG's info keys see only `parameters`.
    static func withoutColorspaceChunks(_ png: [UInt8]) -> [UInt8] {
        var out = Array(png.prefix(8))
        var i = 8
        while i + 12 <= png.count {
            let length = Int(png[i]) << 24 | Int(png[i + 1]) << 16 | Int(png[i + 2]) << 8 | Int(png[i + 3])
            let end = i + 12 + length
            guard end <= png.count else { return png }
            let type = String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self)
            if !["sRGB", "gAMA", "cHRM"].contains(type) { out += png[i..<end] }
            i = end
        }
        return out
    }

    /// Decodes any PNG libpng reads (gray, gray+alpha, palette, RGB, RGBA; 8 or 16 bits) into 8-bit RGB, and
    /// collects its tEXt, zTXt and iTXt chunks in file order.
    public static func decode(_ data: Data) throws(PNGError) -> DecodedPNG {
        guard isPNG(data) else { throw .notPNG }
        let texts = try readTexts(data)
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { buf in png_image_begin_read_from_memory(&image, buf.baseAddress, buf.count) }
        guard begun != 0 else { throw .decodeFailed(message(image)) }
        let width = Int(image.width), height = Int(image.height)
        guard width > 0, height > 0, width * height <= 1 << 28 else {
            png_image_free(&image)
            throw .decodeFailed("image size \(width)x\(height) is not supported")
        }
        let sixteenBit = image.format & png_uint_32(PNG_FORMAT_FLAG_LINEAR) != 0
        let rgb = sixteenBit ? try finishRead16(&image, width: width, height: height)
                             : try finishRead8(&image, width: width, height: height)
        return DecodedPNG(width: width, height: height, rgb: rgb, texts: texts)
    }

    /// 8-bit files: read as RGBA and drop alpha, as Pillow's convert("RGB") does (libpng would otherwise
    /// composite onto a background).
    private static func finishRead8(_ image: inout png_image, width: Int, height: Int) throws(PNGError) -> [UInt8] {
        image.format = png_uint_32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let ok = rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, png_int_32(width * 4), nil) }
        guard ok != 0 else {
            let m = message(image)
            png_image_free(&image)
            throw .decodeFailed(m)
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            rgb[p * 3] = rgba[p * 4]
            rgb[p * 3 + 1] = rgba[p * 4 + 1]
            rgb[p * 3 + 2] = rgba[p * 4 + 2]
        }
        return rgb
    }

    /// 16-bit files: read the samples unchanged (libpng's "linear" format; converting to 8 bits itself would apply
    /// an sRGB curve), then scale to 8 bits. libpng premultiplies linear colour by alpha; that is undone here.
    private static func finishRead16(_ image: inout png_image, width: Int, height: Int) throws(PNGError) -> [UInt8] {
        image.format = png_uint_32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_LINEAR)
        var rgba = [UInt16](repeating: 0, count: width * height * 4)
        let ok = rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, png_int_32(width * 4), nil) }
        guard ok != 0 else {
            let m = message(image)
            png_image_free(&image)
            throw .decodeFailed(m)
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            let a = UInt32(rgba[p * 4 + 3])
            for c in 0..<3 {
                var v = UInt32(rgba[p * 4 + c])
                if a > 0 && a < 65535 { v = min(65535, (v * 65535 + a / 2) / a) }
                rgb[p * 3 + c] = UInt8((v * 255 + 32767) / 65535)
            }
        }
        return rgb
    }

    // MARK: chunks

    static func readTexts(_ data: Data) throws(PNGError) -> [PNGText] {
        let bytes = [UInt8](data)
        var texts = [PNGText]()
        var pos = 8
        while pos + 12 <= bytes.count {
            let length = Int(UInt32(bytes[pos]) << 24 | UInt32(bytes[pos + 1]) << 16 | UInt32(bytes[pos + 2]) << 8 | UInt32(bytes[pos + 3]))
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            let start = pos + 8
            guard length <= bytes.count - start - 4 else { throw .decodeFailed("chunk \(type) runs past the end of the file") }
            let body = Array(bytes[start..<(start + length)])
            switch type {
            case "tEXt": if let t = parseText(body) { texts.append(t) }
            case "zTXt": if let t = parseZText(body) { texts.append(t) }
            case "iTXt": if let t = parseIText(body) { texts.append(t) }
            case "IEND": return texts
            default: break
            }
            pos = start + length + 4
        }
        return texts
    }

    static func parseText(_ body: [UInt8]) -> PNGText? {
        guard let nul = body.firstIndex(of: 0) else { return nil }
        return PNGText(keyword: latin1String(body[..<nul]), text: latin1String(body[(nul + 1)...]), kind: .tEXt)
    }

    static func parseZText(_ body: [UInt8]) -> PNGText? {
        guard let nul = body.firstIndex(of: 0), nul + 1 < body.count, body[nul + 1] == 0,
              let raw = inflate(Array(body[(nul + 2)...])) else { return nil }
        return PNGText(keyword: latin1String(body[..<nul]), text: latin1String(raw[...]), kind: .zTXt)
    }

    static func parseIText(_ body: [UInt8]) -> PNGText? {
        guard let nul = body.firstIndex(of: 0), nul + 2 < body.count else { return nil }
        let compressed = body[nul + 1] == 1
        var p = nul + 3
        guard let langEnd = body[p...].firstIndex(of: 0) else { return nil }
        p = langEnd + 1
        guard let transEnd = body[p...].firstIndex(of: 0) else { return nil }
        p = transEnd + 1
        var textBytes = Array(body[p...])
        if compressed {
            guard let raw = inflate(textBytes) else { return nil }
            textBytes = raw
        }
        return PNGText(keyword: latin1String(body[..<nul]), text: String(decoding: textBytes, as: UTF8.self), kind: .iTXt)
    }

    static func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        let n = UInt32(body.count)
        var out: [UInt8] = [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
        out += typeBytes + body
        let crc = (typeBytes + body).withUnsafeBufferPointer { buf in
            UInt32(crc32(0, buf.baseAddress, uInt(buf.count)))
        }
        out += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        return out
    }

    /// zlib inflate with a 64 MiB cap on the output.
    static func inflate(_ input: [UInt8]) -> [UInt8]? {
        var capacity = max(input.count * 4, 1024)
        while capacity <= 64 << 20 {
            var out = [UInt8](repeating: 0, count: capacity)
            var outLen = uLongf(capacity)
            let rc = out.withUnsafeMutableBufferPointer { o in
                input.withUnsafeBufferPointer { i in uncompress(o.baseAddress, &outLen, i.baseAddress, uLong(i.count)) }
            }
            if rc == Z_OK { return Array(out.prefix(Int(outLen))) }
            if rc != Z_BUF_ERROR { return nil }
            capacity *= 4
        }
        return nil
    }

    static func latin1Bytes(_ s: String) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            guard scalar.value <= 255 else { return nil }
            out.append(UInt8(scalar.value))
        }
        return out
    }

    static func latin1String(_ bytes: ArraySlice<UInt8>) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    private static func message(_ image: png_image) -> String {
        var m = image.message
        return withUnsafeBytes(of: &m) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
