import Foundation

/// A snapshot of the running job, as A1111's `shared.state` exposes it to `/sdapi/v1/progress`.
public struct ProgressSnapshot: Sendable, Equatable {
    public var job: String
    public var jobCount: Int
    public var jobNo: Int
    public var samplingStep: Int
    public var samplingSteps: Int
    public var jobTimestamp: String
    public var interrupted: Bool
    public var skipped: Bool
    public var stoppingGeneration: Bool
    /// Seconds since the job began (0 when idle).
    public var elapsed: Double
    /// Latest cheap preview of the current latent, if any.
    public var preview: RGBImage?
    public var textinfo: String?

    public static let idle = ProgressSnapshot(job: "", jobCount: 0, jobNo: 0, samplingStep: 0, samplingSteps: 0,
                                              jobTimestamp: "0", interrupted: false, skipped: false,
                                              stoppingGeneration: false, elapsed: 0, preview: nil, textinfo: nil)

    /// `progress` as A1111 computes it: 0.01 + job_no/job_count + step/steps/job_count, capped at 1 (0 when idle).
    public var progress: Double {
        guard jobCount > 0 else { return 0 }
        return min(1, uncappedProgress)
    }

    /// `eta_relative` = elapsed/progress − elapsed, using the uncapped progress (0 when idle).
    public var etaRelative: Double {
        guard jobCount > 0 else { return 0 }
        let p = uncappedProgress
        return p > 0 ? elapsed / p - elapsed : 0
    }

    private var uncappedProgress: Double {
        var p = 0.01 + Double(jobNo) / Double(jobCount)
        if samplingSteps > 0 { p += Double(samplingStep) / Double(samplingSteps) / Double(jobCount) }
        return p
    }
}

/// Thread-safe progress and control flags shared by the job thread and the HTTP handlers.
/// Reading never waits for a job: `/progress`, `/interrupt` and `/skip` answer while a job runs.
public final class ProgressTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var state = ProgressSnapshot.idle
    private var began = Date()

    public init() {}

    public func snapshot() -> ProgressSnapshot {
        lock.lock(); defer { lock.unlock() }
        var s = state
        s.elapsed = s.jobCount > 0 ? Date().timeIntervalSince(began) : 0
        return s
    }

    /// Starts a job of `jobCount` batches; clears interrupt and skip (A1111 `state.begin`).
    func begin(job: String, jobCount: Int) {
        let stamp = Self.timestamp(Date())
        lock.lock(); defer { lock.unlock() }
        began = Date()
        state = ProgressSnapshot(job: job, jobCount: jobCount, jobNo: 0, samplingStep: 0, samplingSteps: 0,
                                 jobTimestamp: stamp, interrupted: false, skipped: false,
                                 stoppingGeneration: false, elapsed: 0, preview: nil, textinfo: nil)
    }

    func update(_ body: (inout ProgressSnapshot) -> Void) {
        lock.lock(); defer { lock.unlock() }
        body(&state)
    }

    func end() {
        lock.lock(); defer { lock.unlock() }
        state = .idle
    }

    /// Stops the running job after the current step; what was made so far is returned.
    public func interrupt() { update { if $0.jobCount > 0 { $0.interrupted = true } } }

    /// Ends the current batch early; the job goes on with the next batch.
    public func skip() { update { if $0.jobCount > 0 { $0.skipped = true } } }

    var isInterrupted: Bool { lock.lock(); defer { lock.unlock() }; return state.interrupted }
    var isSkipped: Bool { lock.lock(); defer { lock.unlock() }; return state.skipped }

    /// "YYYYMMDDhhmmss" in local time, as A1111's job_timestamp.
    static func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMddHHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        return f.string(from: date)
    }
}
