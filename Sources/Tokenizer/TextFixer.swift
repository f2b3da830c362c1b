import Foundation

/// The parts of `ftfy.fix_text` (default configuration) that change prompt text: HTML entities (when the text has
/// no `<`), Latin ligatures, full-width characters, curly quotes, control characters and NFC. Mojibake repair
/// (`fix_encoding`) is not reproduced: it only alters text that was mis-decoded before reaching the API.
/// Matches: ftfy 6 fixes.py unescape_html, fix_latin_ligatures, fix_character_width, uncurl_quotes,
/// remove_control_chars; ftfy fix_text normalization NFC
enum TextFixer {
    static func fix(_ text: String) -> String {
        var s = text
        if !s.contains("<") && s.contains("&") { s = unescapeHTML(s) }
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            let v = c.value
            switch v {
            case 0x2018...0x201B, 0x02BC: out.append("'")
            case 0x201C...0x201F: out.append("\"")
            case 0x3000: out.append(" ")
            case 0xFF01...0xFFEE, 0xFB00...0xFB06, 0x0132, 0x0133, 0x0149, 0x01C4...0x01CC, 0x01F1...0x01F3:
                out.append(contentsOf: String(c).precomposedStringWithCompatibilityMapping.unicodeScalars)
            case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC,
                 0x1D173...0x1D17A, 0xE0000...0xE007F:
                continue
            default: out.append(c)
            }
        }
        return String(out).precomposedStringWithCanonicalMapping
    }

    private static let named: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}",
        "AMP": "&", "LT": "<", "GT": ">", "QUOT": "\"",
    ]

    /// `&amp;`, `&#39;`, `&#x27;` and the other common entities, terminated by `;`.
    static func unescapeHTML(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semi = after.prefix(12).firstIndex(of: ";") {
                let body = after[..<semi]
                var replacement: String?
                if body.hasPrefix("#x") || body.hasPrefix("#X") {
                    replacement = UInt32(body.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String($0) }
                } else if body.hasPrefix("#") {
                    replacement = UInt32(body.dropFirst()).flatMap(Unicode.Scalar.init).map { String($0) }
                } else {
                    replacement = named[String(body)]
                }
                if let replacement {
                    out += replacement
                    rest = after[after.index(after: semi)...]
                    continue
                }
            }
            out += "&"
            rest = after
        }
        return out + rest
    }
}
