import Foundation

/// Wire type of one request field, as A1111's dynamically built pydantic model declares it (all Optional).
enum FieldKind: Sendable {
    case int, float, bool, str, strList, list, dict
}

/// `StableDiffusionTxt2ImgProcessingAPI`: field names, order, types and defaults exactly as A1111 v1.10.1 builds
/// the model (dataclass init fields of StableDiffusionProcessingTxt2Img, where the base class default of
/// `denoising_strength` (None) wins, then the API's extra fields).
/// Matches: modules/api/models.py PydanticModelGenerator / StableDiffusionTxt2ImgProcessingAPI
enum Txt2ImgFields {
    static let all: [(name: String, kind: FieldKind, def: JSONValue)] = [
        ("prompt", .str, ""), ("negative_prompt", .str, ""), ("styles", .strList, nil),
        ("seed", .int, -1), ("subseed", .int, -1), ("subseed_strength", .float, 0),
        ("seed_resize_from_h", .int, -1), ("seed_resize_from_w", .int, -1),
        ("sampler_name", .str, nil), ("scheduler", .str, nil), ("batch_size", .int, 1), ("n_iter", .int, 1),
        ("steps", .int, 50), ("cfg_scale", .float, 7.0), ("width", .int, 512), ("height", .int, 512),
        ("restore_faces", .bool, nil), ("tiling", .bool, nil), ("do_not_save_samples", .bool, false),
        ("do_not_save_grid", .bool, false), ("eta", .float, nil), ("denoising_strength", .float, nil),
        ("s_min_uncond", .float, nil), ("s_churn", .float, nil), ("s_tmax", .float, nil), ("s_tmin", .float, nil),
        ("s_noise", .float, nil), ("override_settings", .dict, nil), ("override_settings_restore_afterwards", .bool, true),
        ("refiner_checkpoint", .str, nil), ("refiner_switch_at", .float, nil), ("disable_extra_networks", .bool, false),
        ("firstpass_image", .str, nil), ("comments", .dict, nil), ("enable_hr", .bool, false),
        ("firstphase_width", .int, 0), ("firstphase_height", .int, 0), ("hr_scale", .float, 2.0),
        ("hr_upscaler", .str, nil), ("hr_second_pass_steps", .int, 0), ("hr_resize_x", .int, 0),
        ("hr_resize_y", .int, 0), ("hr_checkpoint_name", .str, nil), ("hr_sampler_name", .str, nil),
        ("hr_scheduler", .str, nil), ("hr_prompt", .str, ""), ("hr_negative_prompt", .str, ""),
        ("force_task_id", .str, nil), ("sampler_index", .str, "Euler"), ("script_name", .str, nil),
        ("script_args", .list, []), ("send_images", .bool, true), ("save_images", .bool, false),
        ("alwayson_scripts", .dict, [:]), ("infotext", .str, nil),
    ]

    static let kinds: [String: FieldKind] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0.kind) })
}

/// Limits that keep one request from exhausting the machine (A1111 has none: `steps: 1e9` allocates until the
/// kernel kills it). Values outside are answered with a 422 naming the field and the limit.
public struct RequestLimits: Sendable {
    public var maxSteps = 1000
    public var maxSide = 4096
    public var maxBatchSize = 64
    public var maxIterations = 100
    /// width × height × batch_size of one pass.
    public var maxPixelsPerBatch = 2048 * 2048 * 4
    public init() {}
}

/// A decoded txt2img request: coerced values in A1111's field order (the `parameters` echo) plus which fields
/// the client set, which is what `infotext` pasting needs.
public struct Txt2ImgRequest: Sendable {
    /// Every field, coerced, in model order — `parameters` of the response.
    public var values: JSONObject
    /// Fields present in the request body (pydantic `exclude_unset`).
    public var setFields: Set<String>

    /// Decodes a request body with pydantic v1 semantics and A1111's defaults; unknown keys are ignored.
    public static func decode(_ body: JSONValue, limits: RequestLimits = RequestLimits()) throws(ValidationError) -> Txt2ImgRequest {
        guard case let .object(object) = body else { throw ValidationError.bodyNotDict }
        var reader = FieldReader(object)
        var values = JSONObject()
        for (name, kind, def) in Txt2ImgFields.all {
            values[name] = decodeField(&reader, name, kind, def)
        }
        if !reader.errors.isEmpty { throw ValidationError(reader.errors) }
        let request = Txt2ImgRequest(values: values, setFields: Set(object.keys).intersection(Txt2ImgFields.kinds.keys))
        try request.checkLimits(limits)
        return request
    }

    static func decodeField(_ reader: inout FieldReader, _ name: String, _ kind: FieldKind, _ def: JSONValue) -> JSONValue {
        switch kind {
        case .int: return JSONValue(reader.optional(name, Self.int(def), Pydantic.int))
        case .float: return JSONValue(reader.optional(name, Self.double(def), Pydantic.float))
        case .bool: return JSONValue(reader.optional(name, Self.bool(def), Pydantic.bool))
        case .str: return JSONValue(reader.optional(name, def.stringValue, Pydantic.str))
        case .strList: return reader.stringList(name).map { JSONValue($0) } ?? def
        case .list: return reader.optional(name, def.arrayValue, Pydantic.list).map { .array($0) } ?? .null
        case .dict: return reader.optional(name, def.objectValue, Pydantic.dict).map { .object($0) } ?? .null
        }
    }

    private static func int(_ v: JSONValue) -> Int64? { if case let .int(i) = v { return i }; return nil }
    private static func double(_ v: JSONValue) -> Double? {
        switch v { case let .double(d): return d; case let .int(i): return Double(i); default: return nil }
    }
    private static func bool(_ v: JSONValue) -> Bool? { if case let .bool(b) = v { return b }; return nil }

    // MARK: typed access

    public func int(_ key: String) -> Int64? { if case let .int(i)? = values[key] { return i }; return nil }
    public func double(_ key: String) -> Double? { if case let .double(d)? = values[key] { return d }; return nil }
    public func bool(_ key: String) -> Bool? { if case let .bool(b)? = values[key] { return b }; return nil }
    public func string(_ key: String) -> String? { values[key]?.stringValue }
    public func object(_ key: String) -> JSONObject? { values[key]?.objectValue }
    public func strings(_ key: String) -> [String] { values[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    /// Sets a field from pasted infotext, cast to the field's type (A1111 `apply_infotext`: only fields the client
    /// did not set; values that do not convert are skipped).
    mutating func paste(_ key: String, _ raw: String) {
        guard let kind = Txt2ImgFields.kinds[key], !setFields.contains(key) else { return }
        let value: JSONValue
        switch kind {
        case .int:
            guard let v = Int64(raw) ?? Double(raw).flatMap({ Int64(exactly: $0.rounded(.towardZero)) }) else { return }
            value = .int(v)
        case .float:
            guard let v = Double(raw) else { return }
            value = .double(v)
        case .bool:
            value = .bool(raw == "True" || raw == "true")
        case .str: value = .string(raw)
        default: return
        }
        values[key] = value
    }

    // MARK: limits

    private func checkLimits(_ limits: RequestLimits) throws(ValidationError) {
        var reader = FieldReader(JSONObject())
        func range(_ key: String, min: Int64, max: Int64, required: Bool) {
            guard let v = int(key) else {
                if required { reader.notNone(key) }
                return
            }
            if v < min {
                reader.constraint(key, "ensure this value is greater than or equal to \(min)", "value_error.number.not_ge",
                                  JSONObject([("limit_value", .int(min))]))
            } else if v > max {
                reader.constraint(key, "ensure this value is less than or equal to \(max)", "value_error.number.not_le",
                                  JSONObject([("limit_value", .int(max))]))
            }
        }
        func unit(_ key: String, min: Double, max: Double?, exclusiveMin: Bool = false, required: Bool = false) {
            guard let v = double(key) else {
                if required { reader.notNone(key) }
                return
            }
            if !v.isFinite {
                reader.constraint(key, "ensure this value is a finite number", "value_error.number.not_finite")
            } else if exclusiveMin ? v <= min : v < min {
                let limit = JSONObject([("limit_value", .double(min))])
                if exclusiveMin {
                    reader.constraint(key, "ensure this value is greater than \(JSONValue.pythonFloat(min))",
                                      "value_error.number.not_gt", limit)
                } else {
                    reader.constraint(key, "ensure this value is greater than or equal to \(JSONValue.pythonFloat(min))",
                                      "value_error.number.not_ge", limit)
                }
            } else if let max, v > max {
                reader.constraint(key, "ensure this value is less than or equal to \(JSONValue.pythonFloat(max))",
                                  "value_error.number.not_le", JSONObject([("limit_value", .double(max))]))
            }
        }
        range("steps", min: 1, max: Int64(limits.maxSteps), required: true)
        unit("cfg_scale", min: -.greatestFiniteMagnitude, max: nil, required: true)
        range("width", min: 8, max: Int64(limits.maxSide), required: true)
        range("height", min: 8, max: Int64(limits.maxSide), required: true)
        range("batch_size", min: 1, max: Int64(limits.maxBatchSize), required: true)
        range("n_iter", min: 1, max: Int64(limits.maxIterations), required: true)
        unit("subseed_strength", min: 0, max: nil)
        unit("denoising_strength", min: 0, max: 1)
        for key in ["eta", "s_min_uncond", "s_churn", "s_tmax", "s_tmin", "s_noise", "refiner_switch_at"] {
            unit(key, min: -.greatestFiniteMagnitude, max: nil)
        }
        unit("hr_scale", min: 0, max: 8, exclusiveMin: true)
        range("hr_second_pass_steps", min: 0, max: Int64(limits.maxSteps), required: false)
        range("hr_resize_x", min: 0, max: Int64(limits.maxSide), required: false)
        range("hr_resize_y", min: 0, max: Int64(limits.maxSide), required: false)

        if reader.errors.isEmpty, let w = int("width"), let h = int("height"), let b = int("batch_size") {
            let pixels = w * h * b
            if pixels > Int64(limits.maxPixelsPerBatch) {
                reader.constraint("width", "image too large: width × height × batch_size = \(pixels) pixels, "
                                  + "limit is \(limits.maxPixelsPerBatch)", "value_error.too_large")
            } else if bool("enable_hr") == true {
                let target = hiresTarget(width: Int(w), height: Int(h))
                let hiresPixels = Int64(target.width) * Int64(target.height) * b
                if target.width > limits.maxSide * 2 || target.height > limits.maxSide * 2
                    || hiresPixels > Int64(limits.maxPixelsPerBatch) {
                    reader.constraint("hr_scale", "hires fix target too large: \(target.width)x\(target.height) × "
                                      + "batch_size \(b), limit is \(limits.maxPixelsPerBatch) pixels",
                                      "value_error.too_large")
                }
            }
        }
        if !reader.errors.isEmpty { throw ValidationError(reader.errors) }
    }

    /// Hires-fix target size as A1111 computes it from hr_scale / hr_resize_x / hr_resize_y.
    func hiresTarget(width: Int, height: Int) -> (width: Int, height: Int) {
        let rx = Int(int("hr_resize_x") ?? 0), ry = Int(int("hr_resize_y") ?? 0)
        let scale = double("hr_scale") ?? 2
        if rx == 0 && ry == 0 { return (Int(Double(width) * scale), Int(Double(height) * scale)) }
        if ry == 0 { return (rx, rx * height / max(width, 1)) }
        if rx == 0 { return (ry * width / max(height, 1), ry) }
        return (rx, ry)
    }
}
