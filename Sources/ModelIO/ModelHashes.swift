import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The hashes A1111 shows and matches models by. All read the file in a streaming fashion (no mapping), so a
/// multi-GiB checkpoint costs one sequential pass and a 1 MiB buffer.
public enum ModelHashes {
    static let blockSize = 1 << 20

    /// Full-file SHA-256, lowercase hex.
    /// Matches: stable-diffusion-webui modules/hashes.py `calculate_sha256`
    public static func sha256(file path: String) throws -> String {
        try withOpenFile(path) { fd in try digest(fd, path: path, from: 0, limit: nil) }
    }

    /// The 10-hex "shorthash" of a checkpoint (shown as `name [shorthash]`).
    /// Matches: modules/sd_models.py `CheckpointInfo.calculate_shorthash`
    public static func shorthash(_ sha256: String) -> String { String(sha256.prefix(10)) }

    /// The legacy 8-hex model hash: SHA-256 of the 64 KiB at offset 1 MiB (of whatever part of it exists; a
    /// file shorter than 1 MiB hashes to the digest of no bytes).
    /// Matches: modules/sd_models.py `model_hash`
    public static func legacyModelHash(file path: String) throws -> String {
        try String(withOpenFile(path) { fd in try digest(fd, path: path, from: 0x100000, limit: 0x10000) }.prefix(8))
    }

    /// The kohya-ss "addnet" hash of a safetensors LoRA: SHA-256 of everything after the header (offset
    /// 8 + the little-endian length in the first 8 bytes). Like upstream this never validates the file: short
    /// length fields are read as they are and an offset past the end hashes no bytes.
    /// Matches: modules/hashes.py `addnet_hash_safetensors`
    public static func addnetHash(file path: String) throws -> String {
        try withOpenFile(path) { fd in
            var head = [UInt8](repeating: 0, count: 8)
            let got = try readFully(fd, into: &head, count: 8, at: 0, path: path)
            var n: UInt64 = 0
            for i in 0..<got { n |= UInt64(head[i]) << (8 * UInt64(i)) }
            let (offset, overflow) = n.addingReportingOverflow(8)
            let start = overflow || offset > UInt64(Int64.max) ? Int64.max : Int64(offset)
            return try digest(fd, path: path, from: start, limit: nil)
        }
    }

    /// The 12-hex form of an addnet (or LoRA sha256) hash, as used in `Lora hashes` infotext and lookups.
    /// Matches: extensions-builtin/Lora/network.py `NetworkOnDisk.set_hash`
    public static func addnetShortHash(_ hash: String) -> String { String(hash.prefix(12)) }

    // MARK: - plumbing

    private static func withOpenFile<R>(_ path: String, _ body: (Int32) throws -> R) throws -> R {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelFileError.unreadable(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        return try body(fd)
    }

    /// Reads up to `count` bytes at `offset` (fewer only at end of file); returns how many were read.
    private static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int64,
                                  path: String) throws -> Int {
        var done = 0
        while done < count {
            let r = pread(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if r < 0 {
                if errno == EINTR { continue }
                throw ModelFileError.unreadable(file: path, reason: String(cString: strerror(errno)))
            }
            if r == 0 { break }
            done += r
        }
        return done
    }

    private static func readFully(_ fd: Int32, into bytes: inout [UInt8], count: Int, at offset: Int64,
                                  path: String) throws -> Int {
        try bytes.withUnsafeMutableBytes { try readFully(fd, into: $0.baseAddress!, count: count, at: offset, path: path) }
    }

    /// SHA-256 of the bytes from `start` to end of file (or of at most `limit` of them), lowercase hex.
    private static func digest(_ fd: Int32, path: String, from start: Int64, limit: Int?) throws -> String {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 64)
        defer { buffer.deallocate() }
        var offset = start
        var remaining = limit ?? Int.max
        while remaining > 0 {
            let want = min(blockSize, remaining)
            let got = try readFully(fd, into: buffer, count: want, at: offset, path: path)
            if got == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: got))
            offset += Int64(got)
            remaining -= got
            if got < want { break }
        }
        return hex(hasher.finalize())
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
