/// An extension acting on a job (ControlNet, AnimateDiff, FreeU, Dynamic CFG …), decoded once at the API edge.
///
/// Lifecycle: `prepare` once per job, `wrap` around the model call of every sampling step, `finish` on the result.
/// Adding an extension touches its hook file, its DTO decoder and its tests — nothing else.
public protocol GenerationHook: Sendable {
    /// Name as A1111's `alwayson_scripts` title (e.g. "ControlNet", "AnimateDiff").
    var name: String { get }
    /// Validates the job against this hook's needs before any work; throws a `GenerationError` naming the field.
    func prepare(_ request: GenerationRequest) throws
    /// Extra infotext parameters this hook records, in order.
    func infotextParameters() -> [(key: String, value: String)]
}

/// Errors a job can fail with; each says what was wrong and what is accepted.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    /// A request value the pipeline cannot honour (`field` uses the A1111 wire name).
    case invalidValue(field: String, message: String)
    case unknownSampler(String, accepted: [String])
    case unknownScheduler(String, accepted: [String])
    case unknownCheckpoint(String)
    case unknownLora(String)
    case noModelLoaded
    case modelLoadFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidValue(field, message): return "\(field): \(message)"
        case let .unknownSampler(name, accepted):
            return "Sampler not found: \(name) (accepted: \(accepted.joined(separator: ", ")))"
        case let .unknownScheduler(name, accepted):
            return "Scheduler not found: \(name) (accepted: \(accepted.joined(separator: ", ")))"
        case let .unknownCheckpoint(name): return "Checkpoint not found: \(name)"
        case let .unknownLora(name): return "LoRA not found: \(name) (looked in Models/Lora)"
        case .noModelLoaded: return "No checkpoint is loaded"
        case let .modelLoadFailed(file, reason): return "Could not load \(file): \(reason)"
        }
    }
}
