/// Text conditioning that changes during sampling, as A1111 schedules it.
///
/// A prompt with editing (`[a:b:0.5]`) or alternation (`[a|b]`) becomes several encodings, each valid up to a step;
/// `AND` splits a prompt into weighted parts that are denoised separately and combined in guidance.
/// Matches: modules/prompt_parser.py ScheduledPromptConditioning, ComposableScheduledPromptConditioning

/// One encoding of a prompt, used while the sampling step is ≤ `endAtStep`.
public struct ScheduledConditioning: Sendable {
    public var endAtStep: Int
    public var cond: Tensor   // [T, C]

    public init(endAtStep: Int, cond: Tensor) {
        self.endAtStep = endAtStep
        self.cond = cond
    }
}

/// A prompt (or one `AND` part) over the whole run: its encodings in step order.
public struct PromptSchedule: Sendable {
    public var entries: [ScheduledConditioning]
    /// Textual-inversion embeddings the prompt used (for `TI hashes`), in first-use order.
    public var embeddings: [String] = []

    public init(_ entries: [ScheduledConditioning]) {
        precondition(!entries.isEmpty, "a prompt schedule needs at least one encoding")
        self.entries = entries
    }

    /// The encoding in force at `step`: the first whose `endAtStep` is ≥ step, else the first.
    /// Matches: modules/prompt_parser.py reconstruct_cond_batch (target_index selection)
    public func cond(atStep step: Int) -> Tensor {
        (entries.first { step <= $0.endAtStep } ?? entries[0]).cond
    }
}

/// One image's positive prompt: its `AND` parts with their weights.
public struct ComposablePrompt: Sendable {
    public var parts: [(schedule: PromptSchedule, weight: Float)]

    public init(parts: [(schedule: PromptSchedule, weight: Float)]) {
        precondition(!parts.isEmpty, "a composable prompt needs at least one part")
        self.parts = parts
    }
}

/// Pads token sequences to the longest by repeating each one's last vector, then stacks: `[N, T, C]`.
/// Matches: modules/prompt_parser.py stack_conds
func stackConds(_ conds: [Tensor]) -> Tensor {
    let tokens = conds.map { $0.shape[0] }.max() ?? 0
    let padded = conds.map { c -> Tensor in
        let t = c.shape[0]
        guard t < tokens else { return c }
        let last = c.slice(axis: 0, (t - 1)..<t)
        return Tensor.concat([c] + Array(repeating: last, count: tokens - t), axis: 0)
    }
    return Tensor.concat(padded.map { $0.reshaped([1] + $0.shape) }, axis: 0)
}
