import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide allocator settings for forward passes.
///
/// Every op returns a new tensor, so a forward pass allocates and frees activation buffers of several MB per
/// layer. With glibc's defaults most of them are served by fresh `mmap`s (or the heap top is trimmed after each
/// free), and every page of every new buffer is faulted in and zeroed by the kernel again: rtdetr-l at 640x640
/// took about 150k page faults per forward pass. Keeping freed memory in the heap (no trimming, mmap only for
/// buffers above 32 MB, the heap grown in 64 MB steps) lets the next layer reuse the pages already mapped.
public enum Allocator {
    /// Applies the settings once; later calls do nothing. Settings the user gave through glibc's
    /// `MALLOC_*_` environment variables are left alone.
    public static func tuneForInference() {
        _ = applied
    }

    private static let applied: Bool = {
        #if canImport(Glibc)
        let env = ProcessInfo.processInfo.environment
        if env["MALLOC_MMAP_THRESHOLD_"] == nil { _ = mallopt(M_MMAP_THRESHOLD, 32 << 20) }
        if env["MALLOC_TRIM_THRESHOLD_"] == nil { _ = mallopt(M_TRIM_THRESHOLD, 1 << 30) }
        if env["MALLOC_TOP_PAD_"] == nil { _ = mallopt(M_TOP_PAD, 64 << 20) }
        return true
        #else
        return false
        #endif
    }()
}
