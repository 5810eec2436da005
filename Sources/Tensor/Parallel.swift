import CKernels
import Foundation

/// Work splitting shared by the ops.
///
/// `parallelFor` runs `body` over `0..<count` in contiguous chunks on all cores, but only when
/// the total amount of work (`count * costPerItem`, roughly in float operations) is large enough
/// to pay for the dispatch. Small jobs run inline on the calling thread.
public enum Parallel {
    /// Number of worker chunks to use: every processor this process may run on (its affinity mask), or
    /// DETR_TUI_THREADS when set, or what `setThreads` chose (decided in one place, ck_pool_threads).
    public static var cores: Int { Int(ck_pool_threads()) }

    /// Makes parallel loops (and the OpenBLAS rate of `bench ops`) use `n` threads; call before the first
    /// parallel loop. Returns false for n < 1 or when the thread pool already started with fewer threads.
    @discardableResult
    public static func setThreads(_ n: Int) -> Bool {
        n >= 1 && ck_pool_set_threads(Int32(Swift.min(n, 64))) == 1
    }

    /// Below this much work (float ops) the loop runs on the calling thread.
    static let threshold = 1 << 15

    /// `body` over contiguous, disjoint ranges of `0..<count`, on all cores when `count * costPerItem` float operations
    /// pay for it, else inline; `body` must only write what its range owns.
    @inline(__always)
    public static func forEach(_ count: Int, cost costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let work = count &* Swift.max(1, costPerItem)
        let chunks = Swift.min(count, cores)
        if chunks <= 1 || work < threshold {
            body(0 ..< count)
            return
        }
        // Chunks run on the CKernels pool (workers that stay awake between the loops of a forward pass);
        // they touch disjoint index ranges.
        withoutActuallyEscaping(body) { escapable in
            var job = Job(count: count, chunks: chunks, body: escapable)
            withUnsafeMutablePointer(to: &job) { ptr in
                ck_pool_run(chunks, { ctx, c in
                    let job = ctx!.assumingMemoryBound(to: Job.self)
                    let lo = job.pointee.count * c / job.pointee.chunks
                    let hi = job.pointee.count * (c + 1) / job.pointee.chunks
                    if lo < hi { job.pointee.body(lo ..< hi) }
                }, ptr)
            }
        }
    }

    /// One parallel loop as the pool's C callback sees it.
    private struct Job {
        let count: Int
        let chunks: Int
        let body: (Range<Int>) -> Void
    }
}

/// A mutable pointer that may be captured by the concurrent closures of `Parallel.forEach`.
/// Every use writes disjoint ranges from different workers.
struct SharedPointer: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    init(_ base: UnsafeMutablePointer<Float>) { self.base = base }
}

/// A read-only pointer that may be captured by the concurrent closures of `Parallel.forEach`.
struct ConstPointer: @unchecked Sendable {
    let base: UnsafePointer<Float>
    init(_ base: UnsafePointer<Float>) { self.base = base }
}

/// Read-only (Int, Int) pairs for concurrent closures.
struct ConstPairs: @unchecked Sendable {
    let base: UnsafePointer<(Int, Int)>
    init(_ base: UnsafePointer<(Int, Int)>) { self.base = base }
}

/// A shape/argument check that stays in -Ounchecked builds (where `precondition` is compiled out):
/// a programming error stops with its message instead of reading out of bounds.
@inline(__always)
@discardableResult
func check(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Bool {
    if condition { return true }
    // In a shape pass the first failed check is kept for the module tree to report (Tensor.shapePassProblem) and
    // the check answers false: an op whose later arithmetic relies on it (a rank before reading a dimension) returns
    // at once with `Tensor.failedShape`; nothing is computed there.
    if ck_shape_pass() != 0 {
        ck_shape_pass_fail(message())
        return false
    }
    fatalError(message(), file: file, line: line)
}
