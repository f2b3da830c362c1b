import Foundation
import Testing
import TestSupport
@testable import ModelIO

/// fixtures/modelio/ckpt_expected.json, written by compat/reference/gen_modelio.py.
struct CheckpointExpectations: Decodable {
    struct Nested: Decodable { let keys: [String]; let dtypes: [String: String]; let metadata: [String: String] }
    struct Flat: Decodable { let keys: [String]; let metadata: [String: String] }
    let nested_p2: Nested
    let flat_p4: Flat
}

struct HostileCase: Decodable { let global: String; let marker: String }

@Suite struct PickleCheckpointTests {
    static func path(_ name: String) -> String { Fixtures.url("modelio/" + name).path }

    @Test func nestedStateDictMatchesTorch() throws {
        let expected: CheckpointExpectations = try Fixtures.json("modelio/ckpt_expected.json")
        let reference = try Fixtures.safetensors("modelio/ckpt_expected.safetensors")
        let ckpt = try PickleCheckpointFile(path: Self.path("nested_p2.ckpt"))
        // The inner "state_dict" is dropped as A1111 drops it; global_step/epoch come through as metadata.
        #expect(ckpt.keys == expected.nested_p2.keys)
        #expect(!ckpt.keys.contains { $0.hasPrefix("state_dict") })
        #expect(ckpt.metadata == expected.nested_p2.metadata)
        for key in ckpt.keys {
            #expect(ckpt.dtype(of: key)?.rawValue == expected.nested_p2.dtypes[key], "\(key)")
            let ours = try ckpt.tensor(key), theirs = try reference.tensor(key)
            #expect(ours.shape == theirs.shape, "\(key)")
            // Widening F16/BF16/I64 to F32 is exact, gathers copy: no tolerance.
            #expect(ours.scalars == theirs.scalars, "\(key)")
        }
    }

    @Test func rawBytesAreGatheredAndStayCompact() throws {
        let ckpt = try PickleCheckpointFile(path: Self.path("nested_p2.ckpt"))
        for key in ["half.weight", "half.transposed", "bf16.weight"] {
            let raw = try ckpt.rawBytes(key)
            let widened = try ckpt.tensor(key)
            #expect(raw.count == 2 * widened.count, "\(key)")
            let bits = raw.withUnsafeBytes { b in (0..<widened.count).map { b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) } }
            let decoded = ckpt.dtype(of: key) == .f16
                ? bits.map { Float(Float16(bitPattern: $0)) } : bits.map { Float(bitPattern: UInt32($0) << 16) }
            #expect(decoded == widened.scalars, "\(key)")
        }
        #expect(ckpt.layout(of: "half.transposed")?.stride == [1, 2])
        let strided = try ckpt.rawBytes("strided.weight")
        let floats = strided.withUnsafeBytes { b in (0..<9).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
        #expect(floats == (try ckpt.tensor("strided.weight")).scalars)
    }

    @Test func viewsKeepTheirLayout() throws {
        let ckpt = try PickleCheckpointFile(path: Self.path("nested_p2.ckpt"))
        #expect(ckpt.layout(of: "trans.weight")?.stride == [1, 5])
        #expect(ckpt.layout(of: "slice.weight")?.offset == 6)
        #expect(ckpt.layout(of: "strided.weight")?.offset == 7)
        #expect(ckpt.layout(of: "strided.weight")?.stride == [6, 2])
        #expect(ckpt.layout(of: "shared.b")?.offset == 4)
        #expect(ckpt.shape(of: "scalar") == [])
        #expect(ckpt.shape(of: "missing") == nil)
        #expect(throws: ModelFileError.missingKey(file: ckpt.path, key: "missing")) { try ckpt.tensor("missing") }
    }

    @Test func protocol4FlatCheckpointWithNestedDictionary() throws {
        let expected: CheckpointExpectations = try Fixtures.json("modelio/ckpt_expected.json")
        let reference = try Fixtures.safetensors("modelio/ckpt_expected.safetensors")
        let ckpt = try PickleCheckpointFile(path: Self.path("flat_p4.ckpt"))
        #expect(ckpt.keys == expected.flat_p4.keys)
        #expect(ckpt.metadata == expected.flat_p4.metadata)
        for key in ckpt.keys { #expect(try ckpt.tensor(key) == reference.tensor(key), "\(key)") }
    }

    /// The layout of the original SD release files: the only globals besides tensors are the Lightning callback
    /// class (a dictionary key), numpy scalars/dtypes and `_codecs.encode`; they are inert and dropped.
    @Test func lightningTrainingCheckpoint() throws {
        let ckpt = try PickleCheckpointFile(path: Self.path("lightning.ckpt"))
        let reference = try Fixtures.safetensors("modelio/lightning_expected.safetensors")
        #expect(ckpt.keys == reference.keys)
        #expect(ckpt.metadata == ["epoch": "6", "global_step": "470000", "pytorch-lightning_version": "1.4.2"])
        #expect(ckpt.dtype(of: "model_ema.num_updates") == .i32)
        for key in ckpt.keys { #expect(try ckpt.tensor(key) == reference.tensor(key), "\(key)") }
    }

    @Test func openCheckpointChoosesByContent() throws {
        let ckpt = try openCheckpoint(path: Self.path("nested_p2.ckpt"))
        #expect(ckpt is PickleCheckpointFile)
        let st = try openCheckpoint(path: Self.path("values_f16.safetensors"))
        #expect(st is SafetensorsFile)
        #expect(st.dtype(of: "model.a.weight") == .f16)
        // Content wins over a misleading extension.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("modelio-open-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let renamed = dir.appendingPathComponent("model.safetensors")
        try FileManager.default.copyItem(atPath: Self.path("nested_p2.ckpt"), toPath: renamed.path)
        #expect(try openCheckpoint(path: renamed.path) is PickleCheckpointFile)
        let junk = dir.appendingPathComponent("notes.txt")
        try Data("hello".utf8).write(to: junk)
        #expect {
            try openCheckpoint(path: junk.path)
        } throws: { error in
            guard case let .unsupportedFormat(file, _) = error as? ModelFileError else { return false }
            return file == junk.path
        }
    }

    @Test func hostilePicklesAreRefusedAndRunNothing() throws {
        let cases: [String: HostileCase] = try Fixtures.json("modelio/hostile.json")
        #expect(cases.count == 4)
        for (file, hostile) in cases.sorted(by: { $0.key < $1.key }) {
            try? FileManager.default.removeItem(atPath: hostile.marker)
            let path = Self.path(file)
            #expect(throws: ModelFileError.forbiddenGlobal(file: path, global: hostile.global)) {
                try PickleCheckpointFile(path: path)
            }
            #expect(throws: ModelFileError.forbiddenGlobal(file: path, global: hostile.global)) {
                try openCheckpoint(path: path)
            }
            // The generator proved torch.load creates this marker; refusing means it is still absent.
            #expect(!FileManager.default.fileExists(atPath: hostile.marker), "\(file) ran its payload")
        }
    }

    @Test func impossibleTensorsNameTheirKey() throws {
        #expect {
            try PickleCheckpointFile(path: Self.path("bad_view.ckpt"))
        } throws: { error in
            guard case let .badTensor(_, key, reason) = error as? ModelFileError else { return false }
            return key == "w" && reason.contains("4-element storage")
        }
        #expect {
            try PickleCheckpointFile(path: Self.path("missing_storage.ckpt"))
        } throws: { error in
            guard case let .badTensor(_, key, reason) = error as? ModelFileError else { return false }
            return key == "w" && reason.contains("archive/data/7")
        }
        let complex = Self.path("complex_storage.ckpt")
        #expect(throws: ModelFileError.unsupportedDType(file: complex, key: "z", dtype: "torch.ComplexFloatStorage")) {
            try PickleCheckpointFile(path: complex)
        }
    }

    @Test func nonZipInputsAreRefused() throws {
        let legacy = Data([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e])
        #expect {
            try PickleCheckpointFile(data: legacy, name: "old.ckpt")
        } throws: { error in
            guard case .unsupportedFormat("old.ckpt", _) = error as? ModelFileError else { return false }
            return true
        }
        #expect(throws: ModelFileError.badArchive(file: "x.pt", reason: "not a zip archive")) {
            try PickleCheckpointFile(data: Data("not a zip".utf8), name: "x.pt")
        }
    }
}

/// The unpickler on hand-assembled opcode streams (no archive around them).
@Suite struct RestrictedUnpicklerTests {
    func load(_ bytes: [UInt8]) throws -> PickleValue {
        var u = RestrictedUnpickler(bytes: bytes, file: "t.pkl", semantics: TorchPickleSemantics(file: "t.pkl"))
        return try u.load()
    }

    @Test func containersAndScalars() throws {
        // {'a': [1, -2, 3.5, True, None], 'b': (b'xy', 70000)} in protocol 2 with memo PUT/GET of the list.
        var p: [UInt8] = [0x80, 0x02, 0x7d, 0x28]
        p += [0x58, 1, 0, 0, 0, 0x61] + [0x5d, 0x71, 0x00, 0x28, 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff]
        p += [0x47] + withUnsafeBytes(of: (3.5).bitPattern.bigEndian, Array.init) + [0x88, 0x4e, 0x65]
        p += [0x58, 1, 0, 0, 0, 0x62, 0x43, 2, 0x78, 0x79, 0x4a, 0x70, 0x11, 0x01, 0x00, 0x86]
        p += [0x58, 1, 0, 0, 0, 0x63, 0x68, 0x00, 0x75, 0x2e]
        guard case let .dict(d) = try load(p), case let .list(a)? = d["a"], case let .tuple(bt)? = d["b"],
              case let .list(c)? = d["c"] else {
            Issue.record("unexpected structure"); return
        }
        #expect(a === c)  // the memo hands back the same list
        #expect(a.items.count == 5)
        #expect(a.items[1].asInt == -2)
        let b = bt.items
        guard case let .float(f) = a.items[2], case .bool(true) = a.items[3], case .none = a.items[4],
              case let .bytes(xy) = b[0] else { Issue.record("unexpected items"); return }
        #expect(f == 3.5)
        #expect(xy == [0x78, 0x79])
        #expect(b[1].asInt == 70000)
    }

    @Test func malformedStreamsThrow() {
        let cases: [[UInt8]] = [
            [],                                   // no STOP
            [0x80, 0x02, 0x2e],                   // STOP on an empty stack
            [0x80, 0x09, 0x4e, 0x2e],             // protocol 9
            [0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e], // string longer than the stream
            [0x68, 0x05, 0x2e],                   // memo read before write
            [0x61, 0x2e],                         // APPEND with nothing
            [0x4e, 0x4e, 0x2e],                   // leftover item at STOP
            [0x82, 0x01, 0x2e],                   // EXT1
            [0x97, 0x2e],                         // NEXT_BUFFER
            [0x28, 0x4e, 0x30, 0x30, 0x2e],       // POP across a MARK
            [0xff],                               // unknown opcode
        ]
        for bytes in cases {
            #expect(throws: ModelFileError.self, "\(bytes)") { try load(bytes) }
        }
    }

    /// Unpickles and collects as a checkpoint does (including the iterative teardown).
    func collect(_ bytes: [UInt8]) throws -> CollectedCheckpoint {
        try RestrictedUnpickler.withUnpickled(bytes: bytes, file: "t.pkl", semantics: TorchPickleSemantics(file: "t.pkl")) {
            try collectCheckpoint($0, file: "t.pkl")
        }
    }

    static func u32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(v).littleEndian, Array.init) }

    @Test func deepNestingIsReleasedWithoutRecursion() throws {
        // A million nested 1-tuples (2 MB of TUPLE1): an ordinary release would recurse a million times.
        let deepTuple: [UInt8] = [0x80, 0x02, 0x4e] + [UInt8](repeating: 0x85, count: 1_000_000) + [0x2e]
        #expect(throws: ModelFileError.badPickle(file: "t.pkl", reason: "checkpoint holds a tuple, not a dictionary")) {
            try collect(deepTuple)
        }
        // {'a': L0} where L(i+1) is appended to L(i) through the memo, 300k levels, constant stack.
        var chain: [UInt8] = [0x80, 0x02, 0x7d, 0x58, 1, 0, 0, 0, 0x61, 0x5d, 0x72] + Self.u32(0)
        for level in 1..<300_000 {
            chain += [0x6a] + Self.u32(level - 1) + [0x5d, 0x72] + Self.u32(level) + [0x61, 0x30]
        }
        chain += [0x73, 0x2e]
        #expect {
            try collect(chain)
        } throws: { error in
            guard case let .badPickle(_, reason) = error as? ModelFileError else { return false }
            return reason.contains("deeper than 32")
        }
    }

    @Test func sharedAndCyclicContainersAreWalkedOnce() throws {
        // T(i) = (T(i-1), T(i-1)) for 30 levels: 2^30 paths, 30 distinct tuples; {'x': T30}.
        var shared: [UInt8] = [0x80, 0x02, 0x7d, 0x58, 1, 0, 0, 0, 0x78, 0x29]
        for _ in 0..<30 { shared += [0x32, 0x86] }
        shared += [0x73, 0x2e]
        let clock = ContinuousClock()
        var collected: CollectedCheckpoint?
        let elapsed = try clock.measure { collected = try collect(shared) }
        #expect(collected?.tensors.isEmpty == true)
        #expect(elapsed < .seconds(5))
        // A list that contains itself: {'c': L, 'n': 5} with L = [L] (MARK, key, list, memo, append itself, ...).
        let cyclic: [UInt8] = [0x80, 0x02, 0x7d, 0x28, 0x58, 1, 0, 0, 0, 0x63, 0x5d, 0x71, 0x00, 0x68, 0x00,
                               0x61, 0x58, 1, 0, 0, 0, 0x6e, 0x4b, 0x05, 0x75, 0x2e]
        #expect(try collect(cyclic).metadata == ["n": "5"])
    }

    @Test func globalsAreCheckedAtLookupNotAtCall() {
        // GLOBAL 'subprocess Popen' alone (never called) is already refused.
        let bytes = Array("csubprocess\nPopen\n.".utf8)
        #expect(throws: ModelFileError.forbiddenGlobal(file: "t.pkl", global: "subprocess.Popen")) { try load(bytes) }
        // Instantiating an unknown class (NEWOBJ) is refused at the class name.
        let newobj = Array("c__main__\nEvil\n)\u{81}.".unicodeScalars.map { UInt8($0.value) })
        #expect(throws: ModelFileError.forbiddenGlobal(file: "t.pkl", global: "__main__.Evil")) { try load(newobj) }
        // An allowed global used as a callable it is not (a dtype) is refused too.
        let call = Array("ctorch\nfloat32\n)R.".utf8)
        #expect(throws: ModelFileError.self) { try load(call) }
    }
}
