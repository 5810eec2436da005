import CKernels
import Foundation

/// Process-wide allocator settings for forward passes.
///
/// Every op returns a new tensor, so a forward pass allocates and frees activation buffers of several MB per
/// layer. With glibc's defaults most of them are served by fresh `mmap`s (or the heap top is trimmed after each
/// free), and every page of every new buffer is faulted in and zeroed by the kernel again (`bench rtdetr-l` at
/// 640x640, 5 runs: 741k page faults, 92k with these settings; 3% less CPU time on a quiet machine, 11% on a busy one). Keeping freed memory in the
/// heap (no trimming, mmap only for buffers above 32 MB, the heap grown in 64 MB steps) lets the next layer
/// reuse the pages already mapped.
public enum Allocator {
    /// Applies the settings once; later calls do nothing. Settings the user gave through glibc's
    /// `MALLOC_*_` environment variables are left alone.
    public static func tuneForInference() {
        _ = applied
    }

    /// The largest buffer (bytes) the tuned heap serves, glibc's ceiling for the mmap threshold on 64-bit. Larger
    /// ones are fresh mappings whose every page is faulted in and zeroed again on each pass, so a pass that can
    /// choose its buffers' sizes keeps them at most this big.
    public static let heapBlockBytes = 32 << 20

    private static let applied: Bool = {
        let env = ProcessInfo.processInfo.environment
        func setting(_ key: String, _ value: Int) -> Int { env[key] == nil ? value : -1 }
        return ck_malloc_tune(setting("MALLOC_MMAP_THRESHOLD_", heapBlockBytes), setting("MALLOC_TRIM_THRESHOLD_", 1 << 30),
                              setting("MALLOC_TOP_PAD_", 64 << 20)) == 1
    }()
}
