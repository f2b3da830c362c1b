import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory-maps a whole regular file read-only and hands it out as a `Data` that unmaps itself when released.
///
/// The mapping is private and read-only, so the only hazard left is the file shrinking underneath it (then a
/// read past the new end faults); model folders are not rewritten in place while being served.
public enum MappedFile {
    static func map(path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelFileError.unreadable(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ModelFileError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ModelFileError.unreadable(file: path, reason: "not a regular file")
        }
        let size = Int(st.st_size)
        if size == 0 { return Data() }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw ModelFileError.unreadable(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        return Data(bytesNoCopy: base, count: size, deallocator: .custom { pointer, count in
            munmap(pointer, count)
        })
    }

    /// Modification time as Python's `os.path.getmtime` computes it (seconds + nanoseconds * 1e-9).
    public static func modificationTime(path: String) throws -> Double {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ModelFileError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        #if canImport(Darwin)
        let spec = st.st_mtimespec
        #else
        let spec = st.st_mtim
        #endif
        return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
    }
}
