import Foundation

/// Runs jobs one at a time, in arrival order, on a dedicated thread (never on the Swift concurrency pool, so a
/// minutes-long generation does not starve HTTP handlers). Progress and interrupt flags live in `progress`.
/// Matches: modules/call_queue.py queue_lock (one generation at a time)
public final class JobQueue: Sendable {
    public let progress = ProgressTracker()
    private let queue = DispatchQueue(label: "sdapi.jobs", qos: .userInitiated)
    private let waiting = WaitingCount()

    public init() {}

    /// Jobs submitted and not yet finished (including the running one).
    public var pending: Int { waiting.value }

    /// Runs `body` after every job submitted before it has finished; returns its result or rethrows its error.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        waiting.add(1)
        defer { waiting.add(-1) }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }

    private final class WaitingCount: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
        func add(_ d: Int) { lock.lock(); count += d; lock.unlock() }
    }
}
