import CKernels
import Foundation

// Reductions along one axis: the tensor is viewed as [outer, n, inner].

/// A reduction as a type, so that `reduceAxis` is specialised for it and inlines `combine` (a closure captured by
/// the loops that run on the pool was called through a pointer for every element).
/// `kernelOp`: the CK_RED_* code of ck_reduce_rows / ck_reduce_cols (vecops.c) that computes `combine`.
protocol ReduceOp {
    static var initial: Float { get }
    static var kernelOp: Int32 { get }
    static func combine(_ acc: Float, _ v: Float) -> Float
    static func finish(_ acc: Float, _ n: Int) -> Float
}
enum SumReduce: ReduceOp {
    static var initial: Float { 0 }
    static var kernelOp: Int32 { CK_RED_SUM }
    @inline(__always) static func combine(_ acc: Float, _ v: Float) -> Float { acc + v }
    @inline(__always) static func finish(_ acc: Float, _ n: Int) -> Float { acc }
}
enum MeanReduce: ReduceOp {
    static var initial: Float { 0 }
    static var kernelOp: Int32 { CK_RED_SUM }
    @inline(__always) static func combine(_ acc: Float, _ v: Float) -> Float { acc + v }
    @inline(__always) static func finish(_ acc: Float, _ n: Int) -> Float { n == 0 ? .nan : acc / Float(n) }
}
/// NaN propagates, as in torch.amax / torch.amin; selects, not `||`, which compiled to branches (1.1 vs 0.11 ms for
/// the max of each row of 8400x80).
enum MaxReduce: ReduceOp {
    static var initial: Float { -.infinity }
    static var kernelOp: Int32 { CK_RED_MAX }
    @inline(__always) static func combine(_ acc: Float, _ v: Float) -> Float { let m = v > acc ? v : acc; return v != v ? v : m }
    @inline(__always) static func finish(_ acc: Float, _ n: Int) -> Float { acc }
}
enum MinReduce: ReduceOp {
    static var initial: Float { .infinity }
    static var kernelOp: Int32 { CK_RED_MIN }
    @inline(__always) static func combine(_ acc: Float, _ v: Float) -> Float { let m = v < acc ? v : acc; return v != v ? v : m }
    @inline(__always) static func finish(_ acc: Float, _ n: Int) -> Float { acc }
}

/// Rows of outer are split across cores. Along the last axis (inner 1) each row is folded in eight running values,
/// combined at the end: one value kept in memory made every element wait on the one before (8400x80 max 3.4 ms).
/// With the AVX-512 or AVX2 `kernels` (the active set unless a test chooses) the rows of a range go to
/// ck_reduce_rows in one call (inner 1) and each block of n x inner to ck_reduce_cols.
@inline(__always)
func reduceAxis<Op: ReduceOp>(_ x: Tensor, axis: Int, keepDims: Bool, _: Op.Type, kernels: KernelSet = .active) -> Tensor {
    let initial = Op.initial
    let a = x.normalizedAxis(axis)
    let n = x.shape[a]
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.shape[..<a].reduce(1, *)
    var shape = x.shape
    if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
    return Tensor(shape: shape) { out in
        guard let base = out.baseAddress else { return }
        let dst = SharedPointer(base)
        x.data.withUnsafeBufferPointer { p in
            let src = p.baseAddress
            Parallel.forEach(outer, cost: Swift.max(n * inner, 1)) { rows in
                if kernels != .portable, let src {
                    let d = dst.base + rows.lowerBound * inner, s = src + rows.lowerBound * n * inner
                    if inner == 1 {
                        if kernels == .avx512 { ck_reduce_rows_avx512(Op.kernelOp, s, rows.count, n, d) } else { ck_reduce_rows_avx2(Op.kernelOp, s, rows.count, n, d) }
                    } else {
                        for r in 0 ..< rows.count {
                            if kernels == .avx512 {
                                ck_reduce_cols_avx512(Op.kernelOp, s + r * n * inner, n, inner, d + r * inner)
                            } else {
                                ck_reduce_cols_avx2(Op.kernelOp, s + r * n * inner, n, inner, d + r * inner)
                            }
                        }
                    }
                    for j in 0 ..< rows.count * inner { d[j] = Op.finish(d[j], n) }
                    return
                }
                for o in rows {
                    let d = dst.base + o * inner
                    if inner == 1, let src {
                        let s = src + o * n
                        var v0 = initial, v1 = initial, v2 = initial, v3 = initial
                        var v4 = initial, v5 = initial, v6 = initial, v7 = initial
                        var i = 0
                        while i + 8 <= n {
                            v0 = Op.combine(v0, s[i]); v1 = Op.combine(v1, s[i + 1]); v2 = Op.combine(v2, s[i + 2])
                            v3 = Op.combine(v3, s[i + 3]); v4 = Op.combine(v4, s[i + 4]); v5 = Op.combine(v5, s[i + 5])
                            v6 = Op.combine(v6, s[i + 6]); v7 = Op.combine(v7, s[i + 7])
                            i += 8
                        }
                        var v = Op.combine(Op.combine(Op.combine(v0, v1), Op.combine(v2, v3)), Op.combine(Op.combine(v4, v5), Op.combine(v6, v7)))
                        while i < n { v = Op.combine(v, s[i]); i += 1 }
                        d[0] = Op.finish(v, n)
                        continue
                    }
                    for j in 0 ..< inner { d[j] = initial }
                    if n > 0, let src {
                        let s = src + o * n * inner
                        for i in 0 ..< n {
                            let row = s + i * inner
                            for j in 0 ..< inner { d[j] = Op.combine(d[j], row[j]) }
                        }
                    }
                    for j in 0 ..< inner { d[j] = Op.finish(d[j], n) }
                }
            }
        }
    }
}

public func sum(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    reduceAxis(x, axis: axis, keepDims: keepDims, SumReduce.self)
}

public func mean(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    reduceAxis(x, axis: axis, keepDims: keepDims, MeanReduce.self)
}

/// Maximum along `axis` (NaN propagates, as in torch.amax).
public func max(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    check(x.dim(axis) > 0, "max: empty axis \(axis) in shape \(x.shape)")
    return reduceAxis(x, axis: axis, keepDims: keepDims, MaxReduce.self)
}

/// Minimum along `axis` (NaN propagates, as in torch.amin).
public func min(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    check(x.dim(axis) > 0, "min: empty axis \(axis) in shape \(x.shape)")
    return reduceAxis(x, axis: axis, keepDims: keepDims, MinReduce.self)
}

/// Index of the largest value along `axis` (the first one on ties), as Float values.
public func argmax(_ x: Tensor, axis: Int) -> Tensor {
    let a = x.normalizedAxis(axis)
    let n = x.shape[a]
    check(n > 0, "argmax: empty axis \(axis) in shape \(x.shape)")
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.shape[..<a].reduce(1, *)
    var shape = x.shape
    shape.remove(at: a)
    return Tensor(shape: shape) { out in
        x.data.withUnsafeBufferPointer { p in
            var best = [Float](repeating: 0, count: inner)
            for o in 0 ..< outer {
                let s = p.baseAddress! + o * n * inner
                let d = out.baseAddress! + o * inner
                for j in 0 ..< inner { best[j] = s[j]; d[j] = 0 }
                for i in 1 ..< Swift.max(n, 1) {
                    let row = s + i * inner
                    for j in 0 ..< inner where row[j] > best[j] || (row[j].isNaN && !best[j].isNaN) {
                        best[j] = row[j]; d[j] = Float(i)
                    }
                }
            }
        }
    }
}

/// Running sums along `axis` (torch.cumsum); `exclusive` leaves each element out of its own sum, `reverse`
/// sums from the end.
public func cumulativeSum(_ x: Tensor, axis: Int, exclusive: Bool = false, reverse: Bool = false) -> Tensor {
    let a = x.normalizedAxis(axis)
    let n = x.shape[a]
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.shape[..<a].reduce(1, *)
    return Tensor(shape: x.shape) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { p in
            for o in 0 ..< outer {
                for j in 0 ..< inner {
                    var acc: Float = 0
                    for step in 0 ..< n {
                        let i = reverse ? n - 1 - step : step
                        let at = (o * n + i) * inner + j
                        if exclusive { out[at] = acc; acc += p[at] } else { acc += p[at]; out[at] = acc }
                    }
                }
            }
        }
    }
}
