import Foundation
import ZIPFoundation

/// The central directory of a zip archive held in memory (normally memory-mapped), validated against the
/// archive size so that every entry's data range is known to lie inside it.
///
/// Only what torch checkpoints use is needed: stored entries (read in place, without copying) and zip64 sizes.
/// Deflated entries are accepted; `ZipInflater` inflates them through ZIPFoundation once this directory has
/// vouched for their offsets and sizes.
struct ZipDirectory {
    struct Entry {
        let name: String
        /// 0 = stored, 8 = deflate.
        let method: UInt16
        let compressedSize: Int
        let uncompressedSize: Int
        /// Absolute offset of the entry's (possibly compressed) bytes.
        let dataOffset: Int
    }

    let file: String
    let entries: [String: Entry]

    private static let eocdSignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    private static let centralSignature: UInt32 = 0x0201_4b50
    private static let localSignature: UInt32 = 0x0403_4b50

    /// True when `data` starts like a zip archive (a local file header).
    static func looksLikeZip(_ data: Data) -> Bool {
        data.count >= 4 && data.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == UInt32(littleEndian: localSignature)
    }

    init(data: Data, file: String) throws {
        self.file = file
        entries = try data.withUnsafeBytes { raw in try Self.parse(Bytes(raw: raw, file: file)) }
    }

    /// Bounds-checked little-endian reads; every failure is a `badArchive` naming the file.
    private struct Bytes {
        let raw: UnsafeRawBufferPointer
        let file: String
        var count: Int { raw.count }

        func fail(_ reason: String) -> ModelFileError { .badArchive(file: file, reason: reason) }

        func u(_ offset: Int, _ width: Int) throws -> UInt64 {
            guard offset >= 0, width <= count, offset <= count - width else {
                throw fail("structure at offset \(offset) runs past the end of the archive (\(count) bytes)")
            }
            var v: UInt64 = 0
            for i in 0..<width { v |= UInt64(raw[offset + i]) << (8 * UInt64(i)) }
            return v
        }

        func int(_ offset: Int, _ width: Int) throws -> Int {
            let v = try u(offset, width)
            guard v <= UInt64(Int.max) else { throw fail("value \(v) at offset \(offset) is out of range") }
            return Int(v)
        }

        func slice(_ offset: Int, _ length: Int) throws -> UnsafeRawBufferPointer {
            guard offset >= 0, length >= 0, offset <= count - length else {
                throw fail("\(length) bytes at offset \(offset) run past the end of the archive")
            }
            return UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
        }
    }

    private static func parse(_ b: Bytes) throws -> [String: Entry] {
        // End of central directory: 22 bytes plus a comment of up to 65535 bytes, searched from the end.
        guard b.count >= 22 else { throw b.fail("too short to be a zip archive (\(b.count) bytes)") }
        var eocd = -1
        var at = b.count - 22
        let lowest = max(0, b.count - 22 - 65535)
        while at >= lowest {
            if try b.u(at, 4) == UInt64(eocdSignature), try b.int(at + 20, 2) == b.count - at - 22 { eocd = at; break }
            at -= 1
        }
        guard eocd >= 0 else { throw b.fail("no end-of-central-directory record (truncated?)") }
        var total = try b.int(eocd + 10, 2)
        var cdSize = try b.int(eocd + 12, 4)
        var cdOffset = try b.int(eocd + 16, 4)
        if total == 0xffff || cdSize == 0xffff_ffff || cdOffset == 0xffff_ffff {
            let locator = eocd - 20
            guard locator >= 0, try b.u(locator, 4) == UInt64(zip64LocatorSignature) else {
                throw b.fail("zip64 sizes without a zip64 locator")
            }
            let record = try b.int(locator + 8, 8)
            guard try b.u(record, 4) == UInt64(zip64EOCDSignature) else { throw b.fail("bad zip64 end record at \(record)") }
            total = try b.int(record + 32, 8)
            cdSize = try b.int(record + 40, 8)
            cdOffset = try b.int(record + 48, 8)
        }
        guard cdOffset <= b.count, cdSize <= b.count - cdOffset else {
            throw b.fail("central directory (\(cdSize) bytes at \(cdOffset)) lies outside the archive (\(b.count) bytes)")
        }
        guard total <= cdSize / 46 else { throw b.fail("\(total) entries cannot fit in a \(cdSize)-byte central directory") }

        var entries = [String: Entry]()
        var p = cdOffset
        for _ in 0..<total {
            let entry = try parseCentral(b, at: &p, end: cdOffset + cdSize)
            guard entries[entry.name] == nil else { throw b.fail("duplicate entry '\(entry.name)'") }
            entries[entry.name] = entry
        }
        return entries
    }

    private static func parseCentral(_ b: Bytes, at p: inout Int, end: Int) throws -> Entry {
        guard p <= end - 46, try b.u(p, 4) == UInt64(centralSignature) else {
            throw b.fail("bad central directory header at offset \(p)")
        }
        let method = UInt16(try b.u(p + 10, 2))
        var compressed = try b.int(p + 20, 4)
        var uncompressed = try b.int(p + 24, 4)
        let nameLength = try b.int(p + 28, 2), extraLength = try b.int(p + 30, 2), commentLength = try b.int(p + 32, 2)
        var localOffset = try b.int(p + 42, 4)
        let nameBytes = try b.slice(p + 46, nameLength)
        guard let name = String(bytes: nameBytes, encoding: .utf8) else {
            throw b.fail("entry name at offset \(p + 46) is not UTF-8")
        }
        // Zip64 extended information: the 64-bit values present are those whose 32-bit field is saturated.
        var e = p + 46 + nameLength
        let extraEnd = e + extraLength
        guard extraEnd <= end else { throw b.fail("entry '\(name)' extra field runs past the central directory") }
        while e + 4 <= extraEnd {
            let id = try b.int(e, 2), size = try b.int(e + 2, 2)
            guard e + 4 + size <= extraEnd else { throw b.fail("entry '\(name)' has a malformed extra field") }
            if id == 0x0001 {
                var q = e + 4
                func next() throws -> Int {
                    guard q + 8 <= e + 4 + size else { throw b.fail("entry '\(name)' has a short zip64 extra field") }
                    defer { q += 8 }
                    return try b.int(q, 8)
                }
                if uncompressed == 0xffff_ffff { uncompressed = try next() }
                if compressed == 0xffff_ffff { compressed = try next() }
                if localOffset == 0xffff_ffff { localOffset = try next() }
            }
            e += 4 + size
        }
        p = extraEnd + commentLength
        guard p <= end else { throw b.fail("entry '\(name)' comment runs past the central directory") }

        guard try b.u(localOffset, 4) == UInt64(localSignature) else {
            throw b.fail("entry '\(name)': no local header at offset \(localOffset)")
        }
        let dataOffset = localOffset + 30 + (try b.int(localOffset + 26, 2)) + (try b.int(localOffset + 28, 2))
        guard dataOffset <= b.count, compressed <= b.count - dataOffset else {
            throw ModelFileError.truncated(file: b.file, key: name, needed: dataOffset + compressed, available: b.count)
        }
        switch method {
        case 0:
            guard compressed == uncompressed else {
                throw b.fail("stored entry '\(name)' has sizes \(compressed) and \(uncompressed)")
            }
        case 8: break
        default: throw b.fail("entry '\(name)' uses compression method \(method)")
        }
        return Entry(name: name, method: method, compressedSize: compressed, uncompressedSize: uncompressed,
                     dataOffset: dataOffset)
    }
}

/// Inflates deflated entries through ZIPFoundation, for archives `ZipDirectory` has already validated. The
/// ZIPFoundation archive is opened and indexed once, on first use; its file position is shared, so reads are
/// serialised.
final class ZipInflater: @unchecked Sendable {
    private let data: Data
    private let file: String
    private let lock = NSLock()
    private var archive: Archive?
    private var index: [String: ZIPFoundation.Entry] = [:]

    init(data: Data, file: String) {
        self.data = data
        self.file = file
    }

    /// The first `limit` bytes of `entry` inflated (all of it when shorter). Inflating past the declared size
    /// is an error, so a deflate bomb cannot grow beyond what the directory promised.
    func inflate(_ entry: ZipDirectory.Entry, limit: Int) throws -> Data {
        let fail = { (reason: String) in ModelFileError.badArchive(file: self.file, reason: "entry '\(entry.name)': \(reason)") }
        lock.lock()
        defer { lock.unlock() }
        if archive == nil {
            do { archive = try Archive(data: data, accessMode: .read) } catch { throw fail("\(error)") }
            for e in archive! where index[e.path] == nil { index[e.path] = e }
        }
        guard let archive, let zipEntry = index[entry.name] else { throw fail("not found when inflating") }
        var out = Data()
        out.reserveCapacity(min(limit, entry.uncompressedSize, 1 << 26))  // grows past 64 MiB only as data arrives
        struct Enough: Error {}
        do {
            _ = try archive.extract(zipEntry, skipCRC32: false) { chunk in
                guard out.count + chunk.count <= entry.uncompressedSize else {
                    throw fail("inflates past its declared \(entry.uncompressedSize) bytes")
                }
                out.append(chunk.prefix(limit - out.count))
                if out.count >= limit { throw Enough() }
            }
        } catch is Enough {
            return out
        } catch let error as ModelFileError {
            throw error
        } catch {
            throw fail("\(error)")
        }
        return out
    }
}
