import Foundation

// Moving values around: concat, split, chunk, slice, permute, transpose, gather, indexSelect, topK.

/// Concatenates along `axis`; every other dimension must agree.
public func concat(_ xs: [Tensor], axis: Int) -> Tensor {
    guard check(!xs.isEmpty, "concat: no tensors") else { return .failedShape(rank: 1) }
    let first = xs[0]
    let a = first.normalizedAxis(axis)
    var shape = first.shape
    var total = 0
    for t in xs {
        guard check(t.rank == first.rank, "concat: rank of \(t.shape) differs from \(first.shape)") else { return .failedShape(rank: first.rank) }
        for d in 0 ..< t.rank where d != a {
            check(t.shape[d] == first.shape[d], "concat: shape \(t.shape) does not match \(first.shape) off axis \(a)")
        }
        total += t.shape[a]
    }
    shape[a] = total
    let inner = first.shape[(a + 1)...].reduce(1, *)
    let outer = first.shape[..<a].reduce(1, *)
    return Tensor(shape: shape) { out in
        guard let dst = out.baseAddress else { return }
        // Each input's block of each outer row.
        let rowOut = total * inner
        var blocks: [CopyBlock] = []
        blocks.reserveCapacity(xs.count * outer)
        var offset = 0
        for (i, t) in xs.enumerated() {
            let block = t.shape[a] * inner
            for o in 0 ..< outer { blocks.append(CopyBlock(source: i, from: o * block, to: o * rowOut + offset, count: block)) }
            offset += block
        }
        withBaseAddresses(xs) { copyBlocks(blocks, from: $0, to: dst) }
    }
}

/// A run of floats to copy: `count` values from offset `from` of source `source` to offset `to` of the destination.
struct CopyBlock {
    var source: Int, from: Int, to: Int, count: Int
}

/// Copies the blocks on every core, each block cut into pieces of at most 64K floats (the channel concatenations
/// of large maps, e.g. HGStem's 64x320x320, and the channel slices of C2f's and Detect's inputs were one thread's
/// memcpy while the other core waited). The blocks must not overlap in the destination.
func copyBlocks(_ blocks: [CopyBlock], from sources: [UnsafePointer<Float>], to dst: UnsafeMutablePointer<Float>) {
    let piece = 1 << 16
    let total = blocks.reduce(0) { $0 + $1.count }
    var pieces = blocks
    if blocks.contains(where: { $0.count > piece }) {
        pieces = []
        for b in blocks {
            for start in stride(from: 0, to: b.count, by: piece) {
                pieces.append(CopyBlock(source: b.source, from: b.from + start, to: b.to + start, count: Swift.min(piece, b.count - start)))
            }
        }
    }
    let d = SharedPointer(dst), src = sources.map(ConstPointer.init)
    Parallel.forEach(pieces.count, cost: total / Swift.max(pieces.count, 1)) { range in
        for j in range {
            let p = pieces[j]
            (d.base + p.to).update(from: src[p.source].base + p.from, count: p.count)
        }
    }
}

/// Runs `body` with the base address of each tensor's values (a valid pointer even for an empty tensor), all alive
/// for the call.
func withBaseAddresses<R>(_ xs: [Tensor], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func from(_ i: Int, _ bases: [UnsafePointer<Float>]) -> R {
        if i == xs.count { return body(bases) }
        return xs[i].data.withUnsafeBufferPointer { p in
            from(i + 1, bases + [p.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!])
        }
    }
    return from(0, [])
}

/// A contiguous range of indices along `axis`.
public func slice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor {
    let a = x.normalizedAxis(axis)
    check(range.lowerBound >= 0 && range.upperBound <= x.shape[a],
                 "slice: range \(range) out of bounds for axis \(a) of \(x.shape)")
    var shape = x.shape
    shape[a] = range.count
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.shape[..<a].reduce(1, *)
    let rowIn = x.shape[a] * inner, block = range.count * inner
    return Tensor(shape: shape) { out in
        guard let dst = out.baseAddress else { return }
        let blocks = (0 ..< outer).map { CopyBlock(source: 0, from: $0 * rowIn + range.lowerBound * inner, to: $0 * block, count: block) }
        withBaseAddresses([x]) { copyBlocks(blocks, from: $0, to: dst) }
    }
}

/// Splits along `axis` into pieces of the given sizes (which must add up to the dimension).
public func split(_ x: Tensor, sizes: [Int], axis: Int) -> [Tensor] {
    let a = x.normalizedAxis(axis)
    check(sizes.reduce(0, +) == x.shape[a], "split: sizes \(sizes) do not add up to \(x.shape[a]) (axis \(a) of \(x.shape))")
    var start = 0
    return sizes.map { s in
        defer { start += s }
        return slice(x, axis: a, range: start ..< start + s)
    }
}

/// torch.chunk: pieces of ceil(n / parts) along `axis`, the last possibly smaller (so there may be
/// fewer than `parts` pieces).
public func chunk(_ x: Tensor, _ parts: Int, axis: Int) -> [Tensor] {
    guard check(parts > 0, "chunk: parts must be positive") else { return [.failedShape(rank: Swift.max(x.rank, 1))] }
    let n = x.dim(axis)
    let size = Swift.max(1, (n + parts - 1) / parts)
    var sizes: [Int] = []
    var left = n
    while left > 0 { sizes.append(Swift.min(size, left)); left -= size }
    if sizes.isEmpty { sizes = [0] }
    return split(x, sizes: sizes, axis: axis)
}

/// Reorders the dimensions (output dimension i is input dimension dims[i]); the result is contiguous.
public func permute(_ x: Tensor, _ dims: [Int]) -> Tensor {
    let r = x.rank
    let d = dims.map { $0 < 0 ? $0 + r : $0 }
    guard check(d.count == r && Set(d).count == r && d.allSatisfy { $0 >= 0 && $0 < r },
                "permute: \(dims) is not a permutation of \(r) dimensions") else { return .failedShape(rank: r) }
    let shape = d.map { x.shape[$0] }
    if d == Array(0 ..< r) { return x }
    let inStrides = x.strides
    // Merge output dims that are also adjacent (in order) in the input.
    var sizes: [Int] = [], strides: [Int] = []
    for i in 0 ..< r where shape[i] != 1 {
        let s = inStrides[d[i]]
        if let last = strides.last, last == s * shape[i] {
            sizes[sizes.count - 1] *= shape[i]; strides[strides.count - 1] = s
        } else {
            sizes.append(shape[i]); strides.append(s)
        }
    }
    return Tensor(shape: shape) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { p in
            let src = p.baseAddress!
            let k = sizes.count
            if k == 0 { out[0] = src[0]; return }
            let inner = sizes[k - 1], si = strides[k - 1]
            if k == 2 && strides[0] == 1 {
                // A plain transpose ([C, HW] -> [HW, C] and the like): 32 x 32 tiles, so that both the reads down a
                // column and the writes along a row stay in cache (column by column, every read was a new line:
                // 256x6400 2.4-2.7 ms).
                let rows = sizes[0], from = ConstPointer(src), to = SharedPointer(out.baseAddress!)
                Parallel.forEach((rows + 31) / 32, cost: 32 * inner) { blocks in
                    for rb in blocks {
                        let r0 = rb * 32, r1 = Swift.min(rows, r0 + 32)
                        for c0 in stride(from: 0, to: inner, by: 32) {
                            let c1 = Swift.min(inner, c0 + 32)
                            for r in r0 ..< r1 {
                                let o = to.base + r * inner, i = from.base + r
                                for c in c0 ..< c1 { o[c] = i[c * si] }
                            }
                        }
                    }
                }
                return
            }
            let outer = out.count / inner
            var idx = [Int](repeating: 0, count: k)
            var off = 0, o = 0
            for _ in 0 ..< outer {
                var j = off
                if si == 1 {
                    (out.baseAddress! + o).update(from: src + j, count: inner)
                    o += inner
                } else {
                    for _ in 0 ..< inner { out[o] = src[j]; o += 1; j += si }
                }
                var q = k - 2
                while q >= 0 {
                    idx[q] += 1; off += strides[q]
                    if idx[q] < sizes[q] { break }
                    off -= strides[q] * sizes[q]; idx[q] = 0
                    q -= 1
                }
            }
        }
    }
}

/// Swaps two dimensions (materialised).
public func transpose(_ x: Tensor, _ a: Int, _ b: Int) -> Tensor {
    var dims = Array(0 ..< x.rank)
    dims.swapAt(x.normalizedAxis(a), x.normalizedAxis(b))
    return permute(x, dims)
}

/// torch.gather: out[..., i, ...] = x[..., indices[..., i, ...], ...] along `axis`; the output has the
/// shape of `indices`, whose other dimensions may be smaller than x's.
public func gather(_ x: Tensor, axis: Int, indices: Tensor) -> Tensor {
    let a = x.normalizedAxis(axis)
    guard check(indices.rank == x.rank, "gather: indices rank \(indices.rank) differs from input rank \(x.rank)")
    else { return .failedShape(rank: indices.rank) }
    for d in 0 ..< x.rank where d != a {
        check(indices.shape[d] <= x.shape[d], "gather: indices shape \(indices.shape) exceeds input \(x.shape) at dim \(d)")
    }
    let xs = x.strides
    let r = x.rank
    return Tensor(shape: indices.shape) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { p in
            indices.data.withUnsafeBufferPointer { ip in
                var idx = [Int](repeating: 0, count: r)
                for o in 0 ..< out.count {
                    let k = Int(ip[o])
                    check(k >= 0 && k < x.shape[a], "gather: index \(k) out of range for axis \(a) of \(x.shape)")
                    var off = 0
                    for d in 0 ..< r { off += (d == a ? k : idx[d]) * xs[d] }
                    out[o] = p[off]
                    var d = r - 1
                    while d >= 0 {
                        idx[d] += 1
                        if idx[d] < indices.shape[d] { break }
                        idx[d] = 0; d -= 1
                    }
                }
            }
        }
    }
}

/// torch.index_select: the given positions along `axis`, in the given order.
public func indexSelect(_ x: Tensor, axis: Int, indices: [Int]) -> Tensor {
    let a = x.normalizedAxis(axis)
    let n = x.shape[a]
    var shape = x.shape
    shape[a] = indices.count
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.shape[..<a].reduce(1, *)
    for k in indices { check(k >= 0 && k < n, "indexSelect: index \(k) out of range for axis \(a) of \(x.shape)") }
    return Tensor(shape: shape) { out in
        x.data.withUnsafeBufferPointer { p in
            var o = 0
            for b in 0 ..< outer {
                for k in indices {
                    (out.baseAddress! + o).update(from: p.baseAddress! + (b * n + k) * inner, count: inner)
                    o += inner
                }
            }
        }
    }
}

/// The k largest (or smallest) values along `axis`, sorted, with their indices as Float values.
/// Equal values keep their original order (lowest index first).
public func topK(_ x: Tensor, k: Int, axis: Int = -1, largest: Bool = true) -> (values: Tensor, indices: Tensor) {
    let a = x.normalizedAxis(axis)
    let n = x.shape[a]
    check(k >= 0 && k <= n, "topK: k = \(k) out of range for axis \(a) of \(x.shape)")
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.shape[..<a].reduce(1, *)
    var shape = x.shape
    shape[a] = k
    var values = [Float](repeating: 0, count: outer * k * inner)
    var indices = [Float](repeating: 0, count: outer * k * inner)
    x.data.withUnsafeBufferPointer { p in
        var order = [Int](repeating: 0, count: n)
        var column = [Float](repeating: 0, count: n)
        for o in 0 ..< outer {
            for j in 0 ..< inner {
                for i in 0 ..< n { column[i] = p[(o * n + i) * inner + j]; order[i] = i }
                // NaN counts as the largest value, as in torch.
                let before: (Int, Int) -> Bool = largest
                    ? { l, r in
                        let u = column[l], v = column[r]
                        if u.isNaN || v.isNaN { return u.isNaN && !v.isNaN ? true : (u.isNaN == v.isNaN && l < r) }
                        return u > v || (u == v && l < r) }
                    : { l, r in
                        let u = column[l], v = column[r]
                        if u.isNaN || v.isNaN { return !u.isNaN && v.isNaN ? true : (u.isNaN == v.isNaN && l < r) }
                        return u < v || (u == v && l < r) }
                if k < n / 4 {
                    // Partial selection: keep a sorted buffer of the best k.
                    var best: [Int] = []
                    best.reserveCapacity(k + 1)
                    for i in 0 ..< n {
                        if best.count == k, let last = best.last, !before(i, last) { continue }
                        var lo = 0, hi = best.count
                        while lo < hi { let m = (lo + hi) / 2; if before(best[m], i) { lo = m + 1 } else { hi = m } }
                        best.insert(i, at: lo)
                        if best.count > k { best.removeLast() }
                    }
                    for (t, i) in best.enumerated() { order[t] = i }
                } else {
                    order.sort(by: before)
                }
                for t in 0 ..< k {
                    let dst = (o * k + t) * inner + j
                    values[dst] = column[order[t]]
                    indices[dst] = Float(order[t])
                }
            }
        }
    }
    return (Tensor(shape: shape, data: values), Tensor(shape: shape, data: indices))
}

/// Pads every dimension with a constant: `before[d]` values ahead of dimension d and `after[d]` behind it
/// (torch.nn.functional.pad, mode "constant", non-negative pads).
public func padConstant(_ x: Tensor, before: [Int], after: [Int], value: Float = 0) -> Tensor {
    guard check(before.count == x.rank && after.count == x.rank && (before + after).allSatisfy { $0 >= 0 },
                "padConstant: pads \(before) / \(after) for shape \(x.shape)") else { return .failedShape(rank: x.rank) }
    let shape = (0 ..< x.rank).map { x.shape[$0] + before[$0] + after[$0] }
    let r = x.rank
    if r == 0 || x.count == 0 { return Tensor(repeating: value, shape: shape) }
    // Each output row (all dimensions but the last) is written once, the rows split across cores: the pad value,
    // or the pad value around one input row.
    let inner = x.shape[r - 1], outInner = shape[r - 1]
    var rowStride = [Int](repeating: 1, count: r - 1)   // input rows per step of each leading dimension
    for d in stride(from: r - 3, through: 0, by: -1) { rowStride[d] = rowStride[d + 1] * x.shape[d + 1] }
    return Tensor(shape: shape) { out in
        guard let base = out.baseAddress else { return }
        let o = SharedPointer(base)
        x.data.withUnsafeBufferPointer { p in
            let src = ConstPointer(p.baseAddress!)
            Parallel.forEach(out.count / outInner, cost: outInner) { rows in
                for row in rows {
                    let dst = o.base + row * outInner
                    var rest = row, from = 0, inside = true
                    for d in stride(from: r - 2, through: 0, by: -1) {
                        let i = rest % shape[d] - before[d]
                        rest /= shape[d]
                        if i < 0 || i >= x.shape[d] { inside = false; break }
                        from += i * rowStride[d]
                    }
                    guard inside else { dst.update(repeating: value, count: outInner); continue }
                    dst.update(repeating: value, count: before[r - 1])
                    (dst + before[r - 1]).update(from: src.base + from * inner, count: inner)
                    (dst + before[r - 1] + inner).update(repeating: value, count: after[r - 1])
                }
            }
        }
    }
}
