import Foundation
import Hummingbird
import Media
import Pipeline

/// Base64 image input/output as A1111's API handles it.
/// Matches: modules/api/api.py decode_base64_to_image, encode_pil_to_base64
enum ImageCodec {
    /// Raw base64 or a `data:image/...;base64,` URL → bytes. Characters outside the base64 alphabet are skipped
    /// (Python's `b64decode` default); padding must be right. URLs are refused: this server never fetches.
    static func bytes(fromBase64 text: String) throws -> Data {
        var encoding = text
        if encoding.hasPrefix("http://") || encoding.hasPrefix("https://") {
            throw APIError.badRequest("Image URLs are not fetched by this server; send the image as base64")
        }
        if encoding.hasPrefix("data:image/") {
            let afterSemicolon = encoding.split(separator: ";", omittingEmptySubsequences: false).dropFirst().first ?? ""
            let parts = afterSemicolon.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count >= 2 else { throw APIError.invalidImage }
            encoding = String(parts[1])
        }
        guard let data = Data(base64Encoded: encoding, options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw APIError.invalidImage
        }
        return data
    }

    /// Decodes a base64 PNG. Other formats are refused with a message saying so.
    static func decodePNG(base64 text: String) throws -> DecodedPNG {
        let data = try bytes(fromBase64: text)
        guard PNG.isPNG(data) else {
            if data.starts(with: [0xFF, 0xD8, 0xFF]) || data.starts(with: Array("RIFF".utf8)) || data.starts(with: Array("GIF8".utf8)) {
                throw APIError.badRequest("Invalid encoded image: only PNG images are supported by this server")
            }
            throw APIError.invalidImage
        }
        do {
            return try PNG.decode(data)
        } catch {
            throw APIError(.badRequest, "Invalid encoded image", errors: error.description)
        }
    }

    /// PNG with exactly one `parameters` text chunk (when infotext is given), as base64 without a data: prefix.
    static func encodePNG(_ image: RGBImage, parameters: String?) throws -> String {
        try png(image, parameters: parameters).base64EncodedString()
    }

    /// PNG bytes with the infotext in a `parameters` text chunk (when given).
    static func png(_ image: RGBImage, parameters: String?) throws -> Data {
        do {
            let texts = parameters.map { [("parameters", $0)] } ?? []
            return try PNG.encode(width: image.width, height: image.height, rgb: image.pixels, texts: texts)
        } catch {
            throw APIError(.internalServerError, "Could not encode the image", error: "PNGError", errors: error.description)
        }
    }
}

/// POST `/sdapi/v1/png-info` → `{info, items, parameters}`.
/// Matches: modules/api/api.py pnginfoapi; modules/images.py read_info_from_image
struct PNGInfoController {
    let state: ServerState

    func register(_ r: Routes) {
        r.on(.post, "/sdapi/v1/png-info", "Read and parse the generation parameters of a PNG",
             schema: ["type": "object", "required": ["image"], "properties": ["image": ["type": "string"]]]) { request, _ in
            let body = try await RequestBody.object(request, limit: state.config.maxBodyBytes)
            var reader = FieldReader(body)
            let image = reader.required("image", Pydantic.str)
            guard reader.errors.isEmpty, let image else { throw ValidationError(reader.errors) }
            return JSONResponse.make(try pngInfo(base64: image))
        }
    }

    func pngInfo(base64: String) throws -> JSONValue {
        let png = try ImageCodec.decodePNG(base64: Infotext.pythonStripped(base64))
        var items = JSONObject()
        var info: String?
        for t in png.texts {
            if t.keyword == "parameters" { info = t.text } else { items[t.keyword] = .string(t.text) }
        }
        let text = info ?? ""
        let params = Infotext.parse(text, options: parseOptions())
        return ["info": .string(text), "items": .object(items), "parameters": .object(Self.json(params))]
    }

    func parseOptions() -> InfotextParseOptions {
        var o = InfotextParseOptions()
        o.skipPasting = state.options.value("infotext_skip_pasting")?.arrayValue?.compactMap(\.stringValue) ?? []
        o.useOldHiresFixWidthHeight = state.options.bool("use_old_hires_fix_width_height")
        o.autoBackcompat = state.options.value("auto_backcompat") != .bool(false)
        return o
    }

    static func json(_ params: InfotextParameters) -> JSONObject {
        JSONObject(params.pairs.map { k, v in
            let value: JSONValue
            switch v {
            case let .int(i): value = .int(i)
            case let .float(d): value = .double(d)
            case let .string(s): value = .string(s)
            case let .bool(b): value = .bool(b)
            }
            return (k, value)
        })
    }
}
