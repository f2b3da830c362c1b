import Foundation

/// A `torch.save` checkpoint (`.ckpt`, `.pt`, `.pth`, `.bin`): a zip archive holding `<name>/data.pkl` and one
/// `<name>/data/<key>` entry per storage.
///
/// The pickle is read by `RestrictedUnpickler` with `TorchPickleSemantics`: only tensor rebuilds, storages,
/// containers and a few inert classes are understood; any other global (`os.system`, `builtins.eval`, …) is
/// refused by name and nothing is ever executed. Every tensor's view (offset, sizes, strides) is checked against
/// its storage and the storage against its archive entry at open; tensor data is read lazily, in place from the
/// memory-mapped archive for stored entries.
public final class PickleCheckpointFile: CheckpointFile, @unchecked Sendable {
    /// Upper bound on `data.pkl` (real SD checkpoints have a few hundred KiB).
    public static let maxPickleBytes = 256 << 20

    struct Record {
        let dtype: DType
        let shape: [Int]
        let stride: [Int]
        let offset: Int
        let count: Int
        /// Storage elements from 0 that the view touches (last index + 1), 0 when empty.
        let span: Int
        let contiguous: Bool
        let entry: ZipDirectory.Entry
    }

    public let path: String
    public let keys: [String]
    /// Top-level scalar values of the checkpoint object (e.g. `global_step`), as text.
    public let metadata: [String: String]
    private let records: [String: Record]
    private let data: Data
    private let inflater: ZipInflater

    public convenience init(path: String) throws {
        try self.init(data: MappedFile.map(path: path), name: path)
    }

    /// Parses an in-memory checkpoint image; `name` is used in error messages.
    public init(data: Data, name: String) throws {
        path = name
        self.data = data
        let inflater = ZipInflater(data: data, file: name)
        self.inflater = inflater
        guard ZipDirectory.looksLikeZip(data) else {
            if data.first == 0x80 {
                throw ModelFileError.unsupportedFormat(file: name,
                    reason: "legacy (pre-1.6) torch serialization; re-save it with a current torch or as safetensors")
            }
            throw ModelFileError.badArchive(file: name, reason: "not a zip archive")
        }
        let directory = try ZipDirectory(data: data, file: name)
        let pickles = directory.entries.keys.filter {
            $0.hasSuffix("/data.pkl") && $0.split(separator: "/", omittingEmptySubsequences: false).count == 2
        }
        guard pickles.count == 1, let pickleName = pickles.first else {
            throw ModelFileError.badArchive(file: name,
                reason: pickles.isEmpty ? "no <name>/data.pkl entry" : "several data.pkl entries: \(pickles.sorted())")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = directory.entries[prefix + "byteorder"] {
            let text = String(decoding: try Self.bytes(of: order, in: data, inflater: inflater, limit: 16), as: UTF8.self)
            guard text.trimmingCharacters(in: .whitespacesAndNewlines) == "little" else {
                throw ModelFileError.unsupportedFormat(file: name, reason: "byte order '\(text.prefix(16))' (only little-endian)")
            }
        }
        let pickleEntry = directory.entries[pickleName]!
        guard pickleEntry.uncompressedSize <= Self.maxPickleBytes else {
            throw ModelFileError.badPickle(file: name,
                reason: "\(pickleName) is \(pickleEntry.uncompressedSize) bytes (limit \(Self.maxPickleBytes))")
        }
        let pickleBytes = try Self.bytes(of: pickleEntry, in: data, inflater: inflater, limit: Self.maxPickleBytes)
        let collected = try RestrictedUnpickler.withUnpickled(
            bytes: pickleBytes, file: name, semantics: TorchPickleSemantics(file: name)) { root in
            try collectCheckpoint(root, file: name)
        }

        var records = [String: Record]()
        for (key, t) in collected.tensors {
            records[key] = try Self.validate(key: key, tensor: t, entries: directory.entries, prefix: prefix, file: name)
        }
        self.records = records
        self.keys = records.keys.sorted()
        self.metadata = collected.metadata
    }

    private static func validate(key: String, tensor t: TorchTensor, entries: [String: ZipDirectory.Entry],
                                 prefix: String, file: String) throws -> Record {
        func bad(_ reason: String) -> ModelFileError { .badTensor(file: file, key: key, reason: reason) }
        guard let known = TorchPickleSemantics.storageTypes[t.storage.typeName], let dtype = known else {
            throw ModelFileError.unsupportedDType(file: file, key: key, dtype: t.storage.typeName)
        }
        guard t.shape.count == t.stride.count, t.shape.count <= 64 else {
            throw bad("sizes \(t.shape) and strides \(t.stride) do not match")
        }
        guard t.offset >= 0, t.shape.allSatisfy({ $0 >= 0 }), t.stride.allSatisfy({ $0 >= 0 }) else {
            throw bad("negative offset, size or stride (offset \(t.offset), sizes \(t.shape), strides \(t.stride))")
        }
        guard let count = elementCount(t.shape) else { throw bad("sizes \(t.shape) overflow") }
        var span = 0
        if count > 0 {
            var last = t.offset
            for (size, stride) in zip(t.shape, t.stride) {
                let (step, o1) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, o2) = last.addingReportingOverflow(step)
                guard !o1, !o2 else { throw bad("view extent overflows") }
                last = sum
            }
            span = last + 1
        }
        guard span <= t.storage.count else {
            throw bad("view (offset \(t.offset), sizes \(t.shape), strides \(t.stride)) reaches element \(span - 1) "
                      + "of a \(t.storage.count)-element storage")
        }
        let entryName = prefix + "data/" + t.storage.key
        guard let entry = entries[entryName] else { throw bad("its storage entry '\(entryName)' is missing") }
        let (storageBytes, overflow) = t.storage.count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, storageBytes <= entry.uncompressedSize else {
            throw ModelFileError.truncated(file: file, key: "\(key) (\(entryName))",
                                           needed: overflow ? Int.max : storageBytes, available: entry.uncompressedSize)
        }
        var contiguous = true
        var expected = 1
        for (size, stride) in zip(t.shape, t.stride).reversed() where size != 1 {
            if stride != expected { contiguous = false; break }
            expected *= size
        }
        return Record(dtype: dtype, shape: t.shape, stride: t.stride, offset: t.offset, count: count, span: span,
                      contiguous: contiguous, entry: entry)
    }

    /// The first `limit` bytes of `entry` (all of it when shorter): a copy for stored entries, inflated otherwise.
    private static func bytes(of entry: ZipDirectory.Entry, in data: Data, inflater: ZipInflater, limit: Int) throws -> [UInt8] {
        if entry.method == 0 {
            let start = data.startIndex + entry.dataOffset
            return [UInt8](data[start..<(start + min(limit, entry.compressedSize))])
        }
        return [UInt8](try inflater.inflate(entry, limit: limit))
    }

    // MARK: - TensorSource

    public func shape(of key: String) -> [Int]? { records[key]?.shape }

    public func dtype(of key: String) -> DType? { records[key]?.dtype }

    /// Storage layout of `key`: element offset and strides (for callers that want to know it was a view).
    public func layout(of key: String) -> (offset: Int, stride: [Int])? {
        records[key].map { ($0.offset, $0.stride) }
    }

    public func tensor(_ key: String) throws -> Tensor {
        guard let r = records[key] else { throw ModelFileError.missingKey(file: path, key: key) }
        if r.count == 0 { return Tensor(zeros: r.shape) }
        let size = r.dtype.byteSize
        return try withStorage(r, key: key) { storage in
            Tensor(uninitialized: r.shape) { out in
                let dst = out.baseAddress!
                if r.contiguous {
                    widen(storage + r.offset * size, dtype: r.dtype, count: r.count, into: dst)
                } else {
                    Self.forEachElement(r) { o, src in widen(storage + src * size, dtype: r.dtype, count: 1, into: dst + o) }
                }
            }
        }
    }

    /// The stored little-endian bytes of `key` in row-major order (views are gathered), e.g. to keep F16/BF16
    /// weights compact instead of widening them.
    public func rawBytes(_ key: String) throws -> Data {
        guard let r = records[key] else { throw ModelFileError.missingKey(file: path, key: key) }
        let size = r.dtype.byteSize
        if r.count == 0 { return Data() }
        return try withStorage(r, key: key) { storage in
            if r.contiguous { return Data(bytes: storage + r.offset * size, count: r.count * size) }
            var out = Data(count: r.count * size)
            out.withUnsafeMutableBytes { raw in
                let dst = raw.baseAddress!
                Self.forEachElement(r) { o, src in (dst + o * size).copyMemory(from: storage + src * size, byteCount: size) }
            }
            return out
        }
    }

    /// Calls `body` with the start of `r`'s storage, which holds at least `r.span` elements: in place for stored
    /// entries, inflated (up to the span) for deflated ones.
    private func withStorage<T>(_ r: Record, key: String, _ body: (UnsafeRawPointer) throws -> T) throws -> T {
        if r.entry.method == 0 {
            return try data.withUnsafeBytes { raw in try body(raw.baseAddress! + r.entry.dataOffset) }
        }
        let needed = r.span * r.dtype.byteSize
        let inflated = try inflater.inflate(r.entry, limit: needed)
        guard inflated.count >= needed else {
            throw ModelFileError.truncated(file: path, key: "\(key) (\(r.entry.name))", needed: needed, available: inflated.count)
        }
        return try inflated.withUnsafeBytes { try body($0.baseAddress!) }
    }

    /// Visits a non-contiguous view in row-major output order: `body(outputIndex, storageIndex)`, with an
    /// odometer over all but the last dimension.
    private static func forEachElement(_ r: Record, _ body: (Int, Int) -> Void) {
        let rank = r.shape.count
        let inner = r.shape[rank - 1], innerStride = r.stride[rank - 1]
        var index = [Int](repeating: 0, count: rank - 1)
        var o = 0
        while o < r.count {
            var src = r.offset
            for d in 0..<(rank - 1) { src += index[d] * r.stride[d] }
            for j in 0..<inner {
                body(o, src + j * innerStride)
                o += 1
            }
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < r.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }
}
