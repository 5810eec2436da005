import Foundation

// Reductions along one axis: the tensor is viewed as [outer, n, inner].

@inline(__always)
func reduceAxis(_ x: Tensor, axis: Int, keepDims: Bool, initial: Float,
                _ combine: (Float, Float) -> Float, finish: (Float, Int) -> Float) -> Tensor {
    let a = x.normalizedAxis(axis)
    let n = x.shape[a]
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.shape[..<a].reduce(1, *)
    var shape = x.shape
    if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
    return Tensor(shape: shape) { out in
        x.data.withUnsafeBufferPointer { p in
            for o in 0 ..< outer {
                let d = out.baseAddress! + o * inner
                for j in 0 ..< inner { d[j] = initial }
                if n > 0 {
                    let s = p.baseAddress! + o * n * inner
                    for i in 0 ..< n {
                        let row = s + i * inner
                        for j in 0 ..< inner { d[j] = combine(d[j], row[j]) }
                    }
                }
                for j in 0 ..< inner { d[j] = finish(d[j], n) }
            }
        }
    }
}

public func sum(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    reduceAxis(x, axis: axis, keepDims: keepDims, initial: 0, +, finish: { v, _ in v })
}

public func mean(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    reduceAxis(x, axis: axis, keepDims: keepDims, initial: 0, +, finish: { v, n in n == 0 ? .nan : v / Float(n) })
}

/// Maximum along `axis` (NaN propagates, as in torch.amax).
public func max(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    check(x.dim(axis) > 0, "max: empty axis \(axis) in shape \(x.shape)")
    return reduceAxis(x, axis: axis, keepDims: keepDims, initial: -.infinity,
                      { m, v in (v > m || v.isNaN) ? v : m }, finish: { v, _ in v })
}

/// Minimum along `axis` (NaN propagates, as in torch.amin).
public func min(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
    check(x.dim(axis) > 0, "min: empty axis \(axis) in shape \(x.shape)")
    return reduceAxis(x, axis: axis, keepDims: keepDims, initial: .infinity,
                      { m, v in (v < m || v.isNaN) ? v : m }, finish: { v, _ in v })
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
