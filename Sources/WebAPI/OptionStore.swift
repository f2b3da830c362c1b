import Foundation
import Logging

/// A1111's settings (`opts`): every key with its default, overlaid with what was set through the API or read from
/// `config.json` in the data dir. Thread-safe; writes are saved back to `config.json` like A1111 does.
/// Matches: modules/options.py Options (set, save, load)
public final class OptionStore: @unchecked Sendable {
    private let lock = NSLock()
    private var values: JSONObject
    private let defaults: JSONObject
    private let configFile: String?
    private let logger: Logger

    /// - Parameters:
    ///   - dataDir: folder for `config.json` and the output paths; nil keeps settings in memory only.
    public init(dataDir: String?, logger: Logger = Logger(label: "sdapi.options")) {
        let base = dataDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? "."
        var d = JSONObject()
        for (k, v) in OptionDefaults.all {
            if case let .string(s) = v, s.hasPrefix("{data}") {
                d[k] = .string(base + s.dropFirst("{data}".count))
            } else {
                d[k] = v
            }
        }
        defaults = d
        values = d
        configFile = dataDir.map { URL(fileURLWithPath: $0).appendingPathComponent("config.json").path }
        self.logger = logger
        loadConfig()
    }

    private func loadConfig() {
        guard let configFile, let data = FileManager.default.contents(atPath: configFile) else { return }
        do {
            guard case let .object(saved) = try JSONParser.parse(data) else {
                logger.warning("\(configFile): not a JSON object, using defaults")
                return
            }
            var applied = 0
            for (k, v) in saved.pairs where defaults.contains(k) && Self.sameType(defaults[k] ?? .null, v) {
                values[k] = v
                applied += 1
            }
            logger.info("settings: \(applied) values read from \(configFile)")
        } catch {
            logger.warning("\(configFile): invalid JSON (\(error.message) at char \(error.position)), using defaults")
        }
    }

    /// All options in A1111's order.
    public func all() -> JSONObject {
        lock.lock(); defer { lock.unlock() }
        return values
    }

    public func value(_ key: String) -> JSONValue? {
        lock.lock(); defer { lock.unlock() }
        return values[key]
    }

    public func isKnown(_ key: String) -> Bool { defaults.contains(key) }

    /// Checks keys and value types of an update without applying it.
    /// Unknown keys and values of the wrong type are refused (A1111 raises KeyError → 500 for the former and stores
    /// the latter, which breaks every later generation).
    public func validate(_ update: JSONObject) throws(APIError) {
        for (k, v) in update.pairs {
            guard let def = defaults[k] else {
                throw APIError.badRequest("Unknown option key: '\(k)' (GET /sdapi/v1/options lists the keys)")
            }
            guard Self.sameType(def, v) else {
                throw APIError.badRequest("Option '\(k)' expects a value of type \(Self.typeName(def)), got \(v.pythonTypeName)")
            }
        }
    }

    /// Applies an update (already validated) and saves `config.json`. Returns the keys whose value changed.
    @discardableResult
    public func set(_ update: JSONObject, save: Bool = true) throws(APIError) -> [String] {
        try validate(update)
        lock.lock()
        var changed = [String]()
        for (k, v) in update.pairs where values[k] != v {
            values[k] = v
            changed.append(k)
        }
        let snapshot = values
        lock.unlock()
        if save && !changed.isEmpty { persist(snapshot) }
        return changed
    }

    /// Sets a value computed by the server itself (the loaded checkpoint's title and hash).
    func setInternal(_ key: String, _ value: JSONValue) {
        lock.lock(); defer { lock.unlock() }
        values[key] = value
    }

    private func persist(_ snapshot: JSONObject) {
        guard let configFile else { return }
        do {
            try FileManager.default.createDirectory(atPath: (configFile as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try JSONValue.object(snapshot).serialized().write(toFile: configFile, atomically: true, encoding: .utf8)
        } catch {
            logger.error("could not save settings to \(configFile): \(error)")
        }
    }

    /// A1111's `same_type` (ints and floats are one type; None matches anything).
    static func sameType(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, _), (_, .null): return true
        case (.int, .int), (.int, .double), (.double, .int), (.double, .double), (.int, .bigInt): return true
        case (.bool, .bool), (.string, .string), (.array, .array), (.object, .object): return true
        default: return false
        }
    }

    static func typeName(_ v: JSONValue) -> String {
        switch v {
        case .int, .bigInt, .double: return "number"
        case .bool: return "bool"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        case .null: return "any"
        }
    }

    // MARK: typed reads

    public func int(_ key: String) -> Int {
        switch value(key) {
        case let .int(i): return Int(i)
        case let .double(d): return Int(d)
        default: return 0
        }
    }

    public func double(_ key: String) -> Double {
        switch value(key) {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return 0
        }
    }

    public func bool(_ key: String) -> Bool { value(key) == .bool(true) }

    public func string(_ key: String) -> String? { value(key)?.stringValue }
}
