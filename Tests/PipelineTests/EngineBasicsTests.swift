import Foundation
import Testing
@testable import Pipeline

@Suite struct CheckpointNamingTests {
    @Test func namesFollowA1111() {
        let info = CheckpointInfo(filename: "/m/Stable-diffusion/sub/My Model.safetensors",
                                  modelsFolder: "/m/Stable-diffusion", legacyHash: "abcdef12",
                                  sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        #expect(info.name == "sub/My Model.safetensors")
        #expect(info.nameForExtra == "My Model")
        #expect(info.modelName == "sub_My Model")
        #expect(info.shorthash == "0123456789")
        #expect(info.title == "sub/My Model.safetensors [0123456789]")
        #expect(info.aliases.contains("My Model [0123456789]"))
        #expect(info.aliases.contains(info.sha256!))
        #expect(info.aliases.contains("sub/My Model.safetensors [abcdef12]"))
    }

    @Test func unhashedTitleIsTheName() {
        let info = CheckpointInfo(filename: "/m/a.ckpt", modelsFolder: "/m", legacyHash: "00000000", sha256: nil)
        #expect(info.title == "a.ckpt")
        #expect(!info.aliases.contains { $0.count == 10 })
    }

    @Test func folderContainmentRefusesTraversal() {
        #expect(ModelFolder.contains("/m/Lora", "/m/Lora/x.safetensors"))
        #expect(!ModelFolder.contains("/m/Lora", "/m/Lora/../../etc/passwd"))
        #expect(!ModelFolder.contains("/m/Lora", "/m/Lora2/x.safetensors"))
    }
}

@Suite struct ProgressTests {
    @Test func idleReportsZero() {
        let s = ProgressSnapshot.idle
        #expect(s.progress == 0 && s.etaRelative == 0)
    }

    /// progress = 0.01 + job_no/job_count + (step/steps)/job_count, as modules/api/api.py progressapi.
    @Test func progressFormula() {
        var s = ProgressSnapshot.idle
        s.jobCount = 2; s.jobNo = 1; s.samplingStep = 5; s.samplingSteps = 20; s.elapsed = 10
        #expect(abs(s.progress - (0.01 + 0.5 + 0.125)) < 1e-12)
        #expect(abs(s.etaRelative - (10 / 0.635 - 10)) < 1e-9)
        s.jobNo = 2; s.samplingStep = 20
        #expect(s.progress == 1)
    }

    @Test func interruptOnlyWhileRunning() {
        let p = ProgressTracker()
        p.interrupt()
        #expect(!p.snapshot().interrupted)
        p.begin(job: "txt2img", jobCount: 1)
        p.interrupt()
        #expect(p.snapshot().interrupted)
        p.begin(job: "txt2img", jobCount: 1)
        #expect(!p.snapshot().interrupted)
    }
}

@Suite struct ImageConversionTests {
    /// A1111 truncates (numpy astype(uint8)) after clamp((x+1)/2)·255: 0.999 → 254, not 255.
    @Test func truncatesLikeNumpy() {
        let x = Tensor(shape: [1, 3, 1, 2], scalars: [-2, 0.998, 0, 1, 0.5, -1])
        let img = ImageConversion.images(fromDecoded: x)[0]
        #expect(img.pixels == [0, 127, 191, 254, 255, 0])
    }
}

@Suite struct JobQueueTests {
    @Test func runsInArrivalOrderOneAtATime() async throws {
        let q = JobQueue()
        let log = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<5 {
                group.addTask { try await q.run { log.append(i); Thread.sleep(forTimeInterval: 0.01); log.append(-i) } }
                try await Task.sleep(nanoseconds: 2_000_000)
            }
            try await group.waitForAll()
        }
        #expect(log.values == [0, 0, 1, -1, 2, -2, 3, -3, 4, -4])
    }

    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var items = [Int]()
        func append(_ v: Int) { lock.lock(); items.append(v); lock.unlock() }
        var values: [Int] { lock.lock(); defer { lock.unlock() }; return items }
    }
}
