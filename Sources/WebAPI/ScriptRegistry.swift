import Foundation
import Pipeline

/// An `alwayson_scripts` entry an extension answers to (ControlNet, AnimateDiff, …). Its decoder turns the
/// positional `args` of a request into a `GenerationHook`; the title is matched case-insensitively, as A1111 does.
public protocol AlwaysOnScript: Sendable {
    /// Title as A1111 shows it (`/sdapi/v1/scripts` lists it lowercased, as `script.name`).
    var title: String { get }
    /// `/sdapi/v1/script-info` entry: `{name, is_alwayson, is_img2img, args: [{label, value, minimum, maximum, step, choices}]}`.
    var info: JSONValue { get }
    /// Builds the hook for one request from `{"args": [...]}`; nil when the script is present but disabled.
    /// Throw `APIError` (4xx) naming the argument for bad input.
    func hook(args: [JSONValue], request: Txt2ImgRequest) throws -> (any GenerationHook)?
}

/// The scripts this server knows. There are no selectable scripts (`script_name`); always-on ones come from
/// the extensions registered at startup.
/// Matches: modules/api/api.py get_script / init_script_args (lookup and errors)
public final class ScriptRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var alwaysOn: [any AlwaysOnScript] = []

    public init(_ scripts: [any AlwaysOnScript] = []) { alwaysOn = scripts }

    public func register(_ script: any AlwaysOnScript) {
        lock.lock(); defer { lock.unlock() }
        alwaysOn.append(script)
    }

    public var all: [any AlwaysOnScript] { lock.lock(); defer { lock.unlock() }; return alwaysOn }

    public func alwaysOn(named name: String) -> (any AlwaysOnScript)? {
        all.first { $0.title.lowercased() == name.lowercased() }
    }

    /// Hooks for the request's `alwayson_scripts`, in request order. Unknown titles answer 422 as A1111 does.
    func hooks(for request: Txt2ImgRequest) throws -> [any GenerationHook] {
        guard let scripts = request.object("alwayson_scripts") else { return [] }
        var hooks = [any GenerationHook]()
        for (name, value) in scripts.pairs {
            guard let script = alwaysOn(named: name) else {
                throw APIError.unprocessable("Script '\(name)' not found")
            }
            let args = value["args"]?.arrayValue ?? []
            if let hook = try script.hook(args: args, request: request) { hooks.append(hook) }
        }
        return hooks
    }
}
