import Foundation

/// A value in an infotext, printed as Python's `str()` prints it (floats keep a decimal point: `7.0`).
public enum InfotextValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int64)
    case float(Double)
    case string(String)
    case bool(Bool)

    public var description: String {
        switch self {
        case let .int(i): return String(i)
        case let .float(d): return Infotext.pythonFloat(d)
        case let .string(s): return s
        case let .bool(b): return b ? "True" : "False"
        }
    }
}

/// The typed values one image's infotext is made of (A1111's `create_infotext` reads them from `p` and `opts`).
/// nil means "not written". Keys appear in A1111's fixed order; `extra` (extra_generation_params) follows `Tiling`
/// in insertion order, except keys that already have a slot in the fixed list (e.g. "Denoising strength").
public struct InfotextFields: Sendable {
    public var prompt: String
    public var negativePrompt: String
    public var steps: Int
    public var sampler: String
    public var scheduleType: String?
    public var cfgScale: Double
    public var imageCfgScale: Double?
    public var seed: Int64
    public var faceRestoration: String?
    public var width: Int
    public var height: Int
    public var modelHash: String?
    public var modelName: String?
    public var vaeHash: String?
    public var vaeName: String?
    public var variationSeed: Int64?
    public var variationSeedStrength: Double?
    public var seedResizeFrom: (width: Int, height: Int)?
    public var conditionalMaskWeight: Double?
    /// CLIP_stop_at_last_layers; written only when > 1.
    public var clipSkip: Int
    /// Written only when set (the caller decides with `Infotext.samplerUsesENSD`).
    public var ensd: Int64?
    public var tokenMergingRatio: Double?
    public var tokenMergingRatioHr: Double?
    public var initImageHash: String?
    /// randn_source; written only when not "GPU".
    public var rng: String
    public var tiling: Bool
    /// A nil value keeps the key's slot but writes nothing (a Python `None`).
    public var extra: [(key: String, value: InfotextValue?)]
    public var version: String?
    public var user: String?

    public init(prompt: String, negativePrompt: String = "", steps: Int, sampler: String, scheduleType: String?,
                cfgScale: Double, seed: Int64, width: Int, height: Int, modelHash: String? = nil,
                modelName: String? = nil, clipSkip: Int = 1, rng: String = "GPU", tiling: Bool = false,
                extra: [(key: String, value: InfotextValue?)] = [], version: String? = "v1.10.1") {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.steps = steps
        self.sampler = sampler
        self.scheduleType = scheduleType
        self.cfgScale = cfgScale
        self.seed = seed
        self.width = width
        self.height = height
        self.modelHash = modelHash
        self.modelName = modelName
        self.clipSkip = clipSkip
        self.rng = rng
        self.tiling = tiling
        self.extra = extra
        self.version = version
    }
}

/// A1111's infotext ("parameters" text): building it byte-identically and parsing it back.
public enum Infotext {
    /// Samplers whose step noise is reseeded by ENSD (k-diffusion `uses_ensd`).
    /// Matches: modules/sd_samplers_kdiffusion.py samplers_k_diffusion options
    public static let samplersUsingENSD: Set<String> = ["Euler a", "DPM2 a", "DPM++ 2S a", "DPM fast", "DPM adaptive"]

    /// Whether `ENSD` is written: option ≠ 0, the sampler uses it, and the effective eta ≠ 0.
    /// Matches: modules/sd_samplers_common.py is_sampler_using_eta_noise_seed_delta
    public static func samplerUsesENSD(sampler: String, eta: Double, ensd: Int64) -> Bool {
        ensd != 0 && eta != 0 && samplersUsingENSD.contains(sampler)
    }

    /// Matches: modules/processing.py create_infotext
    public static func create(_ f: InfotextFields) -> String {
        var params: [(String, InfotextValue?)] = [
            ("Steps", .int(Int64(f.steps))),
            ("Sampler", .string(f.sampler)),
            ("Schedule type", f.scheduleType.map { .string($0) }),
            ("CFG scale", .float(f.cfgScale)),
            ("Image CFG scale", f.imageCfgScale.map { .float($0) }),
            ("Seed", .int(f.seed)),
            ("Face restoration", f.faceRestoration.map { .string($0) }),
            ("Size", .string("\(f.width)x\(f.height)")),
            ("Model hash", f.modelHash.map { .string($0) }),
            ("Model", f.modelName.map { .string($0) }),
            ("VAE hash", f.vaeHash.map { .string($0) }),
            ("VAE", f.vaeName.map { .string($0) }),
            ("Variation seed", f.variationSeedStrength.flatMap { $0 == 0 ? nil : f.variationSeed.map { .int($0) } }),
            ("Variation seed strength", f.variationSeedStrength.flatMap { $0 == 0 ? nil : .float($0) }),
            ("Seed resize from", f.seedResizeFrom.flatMap { $0.width <= 0 || $0.height <= 0 ? nil
                                                            : .string("\($0.width)x\($0.height)") }),
            ("Denoising strength", f.extra.first { $0.key == "Denoising strength" }?.value ?? nil),
            ("Conditional mask weight", f.conditionalMaskWeight.map { .float($0) }),
            ("Clip skip", f.clipSkip <= 1 ? nil : .int(Int64(f.clipSkip))),
            ("ENSD", f.ensd.map { .int($0) }),
            ("Token merging ratio", f.tokenMergingRatio.flatMap { $0 == 0 ? nil : .float($0) }),
            ("Token merging ratio hr", f.tokenMergingRatioHr.flatMap { $0 == 0 ? nil : .float($0) }),
            ("Init image hash", f.initImageHash.map { .string($0) }),
            ("RNG", f.rng == "GPU" ? nil : .string(f.rng)),
            ("Tiling", f.tiling ? .string("True") : nil),
        ]
        // A dict update: a key already in the list keeps its slot and takes the new value.
        for (k, v) in f.extra {
            if let i = params.firstIndex(where: { $0.0 == k }) { params[i].1 = v } else { params.append((k, v)) }
        }
        for (k, v) in [("Version", f.version.map { InfotextValue.string($0) }), ("User", f.user.map { .string($0) })] {
            if let i = params.firstIndex(where: { $0.0 == k }) { params[i].1 = v } else { params.append((k, v)) }
        }
        let line = params.compactMap { k, v -> String? in
            guard let v else { return nil }
            if case let .string(s) = v, s == k { return k }
            return "\(k): \(quote(v.description))"
        }.joined(separator: ", ")
        let negative = f.negativePrompt.isEmpty ? "" : "\nNegative prompt: \(f.negativePrompt)"
        return pythonStrip("\(f.prompt)\(negative)\n\(line)")
    }

    /// A value containing `,`, `:` or a newline becomes a JSON string literal (non-ASCII kept).
    /// Matches: modules/infotext_utils.py quote
    public static func quote(_ text: String) -> String {
        guard text.contains(",") || text.contains("\n") || text.contains(":") else { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// A text in double quotes is decoded as a JSON string; anything else (or invalid JSON) is returned as is.
    /// Matches: modules/infotext_utils.py unquote
    public static func unquote(_ text: String) -> String {
        guard text.count >= 1, text.first == "\"", text.last == "\"" else { return text }
        return decodeJSONString(Array(text.unicodeScalars)) ?? text
    }

    /// Decodes a complete JSON string literal (the whole input), or nil.
    static func decodeJSONString(_ s: [Unicode.Scalar]) -> String? {
        guard s.count >= 2, s[0] == "\"" else { return nil }
        var out = String.UnicodeScalarView()
        var i = 1
        func hex(_ at: Int) -> UInt32? {
            guard at + 4 <= s.count else { return nil }
            var v: UInt32 = 0
            for k in at..<(at + 4) {
                guard s[k].isASCII, let d = UInt32(String(s[k]), radix: 16) else { return nil }
                v = v * 16 + d
            }
            return v
        }
        while i < s.count {
            let c = s[i]
            if c == "\"" { return i == s.count - 1 ? String(out) : nil }
            if c.value < 0x20 { return nil }
            if c != "\\" { out.append(c); i += 1; continue }
            guard i + 1 < s.count else { return nil }
            switch s[i + 1] {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "/": out.append("/")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "u":
                guard var code = hex(i + 2) else { return nil }
                i += 6
                if (0xD800..<0xDC00).contains(code), i + 1 < s.count, s[i] == "\\", s[i + 1] == "u",
                   let low = hex(i + 2), (0xDC00..<0xE000).contains(low) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                continue
            default: return nil
            }
            i += 2
        }
        return nil
    }

    /// Python `repr(float)`.
    public static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        var s = "\(d)"
        if !s.contains(".") && !s.contains("e") { s += ".0" }
        return s
    }

    /// Python `str.isspace` characters.
    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: return true
        default: return c.value > 0xFF && c.properties.isWhitespace
        }
    }

    /// Python `str.strip()`.
    static func pythonStrip<S: StringProtocol>(_ s: S) -> String {
        let scalars = Array(s.unicodeScalars)
        var a = 0, b = scalars.count
        while a < b, isPythonSpace(scalars[a]) { a += 1 }
        while b > a, isPythonSpace(scalars[b - 1]) { b -= 1 }
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars[a..<b])
        return String(v)
    }
}

extension Infotext {
    /// Python `str.strip()` for callers outside this module.
    public static func pythonStripped(_ s: String) -> String { pythonStrip(s) }
}
