#if canImport(Glibc)
import Glibc
#endif

/// Process-wide allocator setting for inference.
///
/// Every network op returns a fresh tensor; at SD sizes many are above glibc's mmap threshold (32 MiB at most),
/// so each is a new mapping whose pages the kernel faults in and zeroes, then unmaps on free: ~14 million page
/// faults and ~15 % of the CPU time of a 512² UNet step + VAE decode. Serving heap memory only (no mmap) and never
/// trimming lets freed tensors be reused in place. The cost: the process keeps its peak heap (which the next
/// generation of the same size needs again).
public enum AllocatorPolicy {
    /// Call once at start-up, before loading models. Does nothing where the allocator is not glibc's.
    public static func reuseFreedMemory() {
        #if canImport(Glibc)
        // <malloc.h> is not part of the Glibc module: look `mallopt` up in the process and use its constants
        // (glibc malloc.h: M_TRIM_THRESHOLD −1, M_MMAP_MAX −4).
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "mallopt") else { return }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-4, 0)
        _ = mallopt(-1, Int32.max)
        #endif
    }
}
