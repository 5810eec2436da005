import Foundation

/// Weights rearranged for a kernel (Winograd's transformed kernels U, the conv panels' rows packed in fours), made
/// once per weight buffer and layout instead of on every call: a model's convs run with the same weight tensors
/// pass after pass, and the rearrangement was a pass over every weight per forward (Winograd's transform 2.3% of
/// yolov8n's profile at 640 on AMD Zen 5).
///
/// An entry is found by the address and length of the weights' storage and holds a copy of the array itself, so
/// that storage cannot be freed (and its address reused by other weights) while the entry lives, nor changed
/// (a Swift array's storage that is shared is copied before any write). Entries past `budget` bytes of
/// rearranged weights are dropped, least recently used first; a caller keeps the `PackedWeights` it got, so an
/// entry dropped meanwhile stays valid for it.
final class WeightCache: @unchecked Sendable {
    /// The rearranged floats, freed when the last holder lets go.
    final class PackedWeights: @unchecked Sendable {
        let base: UnsafeMutablePointer<Float>
        let count: Int
        fileprivate let source: [Float]
        fileprivate var lastUse: UInt64 = 0

        fileprivate init(count: Int, source: [Float]) {
            base = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
            self.count = count
            self.source = source
        }

        deinit { base.deallocate() }

        /// `count` floats filled by `make`, outside any cache (for callers without the weights' array).
        static func unshared(count: Int, make: (UnsafeMutablePointer<Float>) -> Void) -> PackedWeights {
            let made = PackedWeights(count: count, source: [])
            make(made.base)
            return made
        }
    }

    /// Which rearrangement: the kernel's layout and whatever else the floats depend on besides the weights.
    struct Layout: Hashable, Sendable {
        var name: String
        var dims: [Int]
    }

    private struct Key: Hashable {
        var address: UInt
        var count: Int
        var layout: Layout
    }

    /// The engine's cache: DETR_TUI_WEIGHT_CACHE_MB (default 256; 0 turns it off).
    static let shared = WeightCache(budget: {
        let mb = ProcessInfo.processInfo.environment["DETR_TUI_WEIGHT_CACHE_MB"].flatMap { Int($0) } ?? 256
        return Swift.max(0, mb) << 20
    }())

    let budget: Int
    private let lock = NSLock()
    private var entries: [Key: PackedWeights] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0

    init(budget: Int) { self.budget = budget }

    /// The floats of `layout` made from `weights` by `make` (given a buffer of `count` floats to fill): from the cache
    /// when these weights were rearranged so before, else made now (and kept when they fit the budget).
    func packed(_ weights: [Float], layout: Layout, count: Int,
                make: (UnsafeMutablePointer<Float>) -> Void) -> PackedWeights {
        let address = weights.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let key = Key(address: address, count: weights.count, layout: layout)
        lock.lock()
        clock += 1
        if let hit = entries[key], hit.count == count {
            hit.lastUse = clock
            lock.unlock()
            return hit
        }
        lock.unlock()
        let made = PackedWeights(count: count, source: weights)
        make(made.base)
        let size = count * MemoryLayout<Float>.stride
        if size > budget || address == 0 { return made }
        lock.lock()
        defer { lock.unlock() }
        if let old = entries[key] { bytes -= old.count * MemoryLayout<Float>.stride }
        entries[key] = made
        bytes += size
        made.lastUse = clock
        while bytes > budget, let victim = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            entries[victim.key] = nil
            bytes -= victim.value.count * MemoryLayout<Float>.stride
        }
        return made
    }

    /// How many entries and bytes the cache holds (for tests).
    var contents: (entries: Int, bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (entries.count, bytes)
    }
}
