import CKernels
import Foundation

// Activations and unary maths. Large tensors are split across cores.

@inline(__always)
func mapParallel(_ x: Tensor, cost: Int = 8, _ f: @escaping @Sendable (Float) -> Float) -> Tensor {
    Tensor(shape: x.shape) { out in
        let dst = SharedPointer(out.baseAddress ?? UnsafeMutablePointer(bitPattern: 16)!)
        x.data.withUnsafeBufferPointer { p in
            let src = p.baseAddress
            Parallel.forEach(out.count, cost: cost) { r in
                guard let src else { return }
                for i in r { dst.base[i] = f(src[i]) }
            }
        }
    }
}

/// A C vector kernel over the whole tensor, split across cores.
@inline(__always)
func mapKernel(_ x: Tensor, _ kernel: @escaping @Sendable (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) -> Tensor {
    Tensor(shape: x.shape) { out in
        guard let o = out.baseAddress else { return }
        let dst = SharedPointer(o)
        x.data.withUnsafeBufferPointer { p in
            let src = ConstPointer(p.baseAddress!)
            Parallel.forEach((out.count + 63) / 64, cost: 64 * 4) { blocks in
                let lo = blocks.lowerBound * 64, hi = Swift.min(blocks.upperBound * 64, out.count)
                kernel(dst.base + lo, src.base + lo, hi - lo)
            }
        }
    }
}

@inline(__always) func sigmoidScalar(_ v: Float) -> Float { 1 / (1 + expf(-v)) }

/// Applies `act` to `t` in place, split across cores (for a tensor just made, such as a sum; a shared
/// buffer is copied first, as any mutation of a Tensor).
public func applyActivation(_ t: inout Tensor, _ act: ConvActivation) {
    if act == .identity || t.isShapeOnly { return }
    let n = t.count
    t.data.withUnsafeMutableBufferPointer { buf in
        guard let base = buf.baseAddress else { return }
        let d = SharedPointer(base)
        Parallel.forEach((n + 1023) / 1024, cost: 1024 * 8) { blocks in
            let lo = blocks.lowerBound * 1024, hi = Swift.min(blocks.upperBound * 1024, n)
            biasActivate(d.base + lo, hi - lo, 0, act)
        }
    }
}

public func relu(_ x: Tensor) -> Tensor { broadcastBinary(x, Tensor(scalar: 0), MaxKeepNaNOp.self) }

/// max(x, y) with a NaN x kept (ReLU as max(x, 0)): one comparison, false for a NaN x, so a select and no branch.
enum MaxKeepNaNOp: BinaryElementOp {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { y > x ? y : x }
    static var kernelOp: Int32 { CK_BIN_MAX_KEEP_X }
}
public func leakyRelu(_ x: Tensor, slope: Float) -> Tensor { mapParallel(x, cost: 1) { $0 >= 0 ? $0 : $0 * slope } }
public func sigmoid(_ x: Tensor) -> Tensor {
    hasAVX512 ? mapKernel(x) { ck_sigmoid_avx512($0, $1, $2) }
        : hasAVX2FMA ? mapKernel(x) { ck_sigmoid_avx2($0, $1, $2) } : mapParallel(x) { sigmoidScalar($0) }
}
public func silu(_ x: Tensor) -> Tensor {
    hasAVX512 ? mapKernel(x) { ck_silu_avx512($0, $1, $2) }
        : hasAVX2FMA ? mapKernel(x) { ck_silu_avx2($0, $1, $2) } : mapParallel(x) { $0 * sigmoidScalar($0) }
}
/// Exact GELU: x * Phi(x) (torch's default, approximate="none"). AVX-512 and AVX2: ck_gelu (a polynomial for
/// |x| <= 1, exp(-x^2/2) times a fit of erfcx beyond, within a few ulp); portable: erfc, which keeps its precision in
/// the negative tail where 1 + erf cancels.
public func gelu(_ x: Tensor) -> Tensor { gelu(x, kernels: .active) }

/// gelu(_:) on `kernels` (the active set unless a test chooses).
func gelu(_ x: Tensor, kernels: KernelSet) -> Tensor {
    switch kernels {
    case .avx512: mapKernel(x) { ck_gelu_avx512($0, $1, $2) }
    case .avx2: mapKernel(x) { ck_gelu_avx2($0, $1, $2) }
    case .portable: mapParallel(x, cost: 16) { 0.5 * $0 * erfcf(-$0 * 0.70710678118654752) }
    }
}
/// x * relu6(x + 3) / 6.
public func hardswish(_ x: Tensor) -> Tensor {
    mapParallel(x, cost: 1) { v in v * Swift.min(Swift.max(v + 3, 0), 6) / 6 }
}
public func tanh(_ x: Tensor) -> Tensor { mapParallel(x) { tanhf($0) } }
public func exp(_ x: Tensor) -> Tensor {
    hasAVX512 ? mapKernel(x) { ck_exp_avx512($0, $1, $2) }
        : hasAVX2FMA ? mapKernel(x) { ck_exp_avx2($0, $1, $2) } : mapParallel(x) { expf($0) }
}
public func log(_ x: Tensor) -> Tensor { mapParallel(x) { logf($0) } }
public func abs(_ x: Tensor) -> Tensor { mapParallel(x, cost: 1) { Swift.abs($0) } }
public func sqrt(_ x: Tensor) -> Tensor { mapParallel(x, cost: 2) { sqrtf($0) } }

/// The inverse of the sigmoid as DETR-family code writes it: clamp to [0, 1], then
/// log(max(x, eps) / max(1 - x, eps)).
public func inverseSigmoid(_ x: Tensor, eps: Float = 1e-5) -> Tensor {
    mapParallel(x) { v in
        let c = Swift.min(Swift.max(v, 0), 1)
        return logf(Swift.max(c, eps) / Swift.max(1 - c, eps))
    }
}

/// Softmax along `axis` (max-subtracted, like torch.softmax).
/// The largest of p[0 ..< n] (NaNs aside, -inf for none), eight lanes at a time.
@inline(__always)
func rowMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var best = SIMD8<Float>(repeating: -.infinity)
    let raw = UnsafeRawPointer(p)
    var i = 0
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        best.replace(with: v, where: v .> best)
        i += 8
    }
    var m = best.max()
    while i < n { if p[i] > m { m = p[i] }; i += 1 }
    return m
}

public func softmax(_ x: Tensor, axis: Int) -> Tensor { softmax(x, axis: axis, kernels: .active) }

/// softmax(_:axis:) on `kernels`: along the last axis ck_softmax_rows (AVX-512, AVX2) or the Swift loop (portable);
/// down columns softmaxColumnBlocks.
func softmax(_ x: Tensor, axis: Int, kernels: KernelSet) -> Tensor {
    if x.count == 0 { return x }
    let a = x.normalizedAxis(axis)
    let n = x.shape[a]
    let inner = x.shape[(a + 1)...].reduce(1, *)
    let outer = x.count / (n * inner)
    return Tensor(shape: x.shape) { out in
        let dst = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { p in
            let src = p.baseAddress!
            if inner == 1 {
                Parallel.forEach(outer, cost: n * 8) { rows in
                    if kernels != .portable {
                        let s = src + rows.lowerBound * n, d = dst.base + rows.lowerBound * n
                        if kernels == .avx512 { ck_softmax_rows_avx512(s, rows.count, n, d) } else { ck_softmax_rows_avx2(s, rows.count, n, d) }
                        return
                    }
                    for r in rows {
                        let s = src + r * n, d = dst.base + r * n
                        let m = rowMax(s, n)
                        var total: Float = 0
                        for i in 0 ..< n { let e = expf(s[i] - m); d[i] = e; total += e }
                        let inv = 1 / total
                        for i in 0 ..< n { d[i] *= inv }
                    }
                }
            } else {
                softmaxColumnBlocks(src, n: n, inner: inner, outer: outer, weights: nil, into: dst, kernels: kernels)
            }
        }
    }
}

/// The expectation of `weights` (one per entry of `axis`) under softmax along `axis`: sum_i softmax(x)_i weights[i],
/// the axis removed from the shape. What YOLO's DFL computes from each box side's bin logits (weights 0 ..< reg_max),
/// in one pass over them, without writing the probabilities out.
public func softmaxExpectation(_ x: Tensor, axis: Int, weights: [Float]) -> Tensor {
    guard check(x.rank > 0, "softmaxExpectation: a scalar has no axis \(axis)") else { return .failedShape(rank: 0) }
    let a = x.normalizedAxis(axis)
    var shape = x.shape
    let n = shape.remove(at: a)
    guard check(weights.count == n, "softmaxExpectation: \(weights.count) weights for axis \(axis) of \(x.shape)")
    else { return .failedShape(rank: shape.count) }
    return Tensor(shape: shape) { out in
        if out.count == 0 { return }
        let inner = x.shape[(a + 1)...].reduce(1, *), outer = out.count / inner
        x.data.withUnsafeBufferPointer { p in
            weights.withUnsafeBufferPointer { w in
                softmaxColumnBlocks(p.baseAddress!, n: n, inner: inner, outer: outer, weights: ConstPointer(w.baseAddress!),
                                    into: SharedPointer(out.baseAddress!))
            }
        }
    }
}

/// Softmax down the columns of `outer` blocks of n x inner floats (rows `inner` apart), or with `weights` each column's
/// expectation (block o's into dst + o * inner), split across cores in runs of columns.
func softmaxColumnBlocks(_ src: UnsafePointer<Float>, n: Int, inner: Int, outer: Int, weights: ConstPointer?,
                         into dst: SharedPointer, kernels: KernelSet = .active) {
    let run = 256, runs = (inner + run - 1) / run
    let s = ConstPointer(src)
    Parallel.forEach(outer * runs, cost: n * Swift.min(inner, run) * 12) { items in
        for item in items {
            let o = item / runs, j0 = item % runs * run, j1 = Swift.min(inner, j0 + run)
            softmaxColumns(s.base + o * n * inner, n: n, ld: inner, columns: j0 ..< j1, weights: weights?.base,
                           into: dst.base + o * (weights == nil ? n * inner : inner), kernels: kernels)
        }
    }
}

/// Softmax down columns `columns` of the n rows of `s` (`ld` floats apart) into `d` (same layout), or with `weights`
/// only each column's expectation sum_i softmax_i weights[i], into d[j]: by ck_softmax_cols of `kernels` (the active
/// set unless a test chooses), or portably.
func softmaxColumns(_ s: UnsafePointer<Float>, n: Int, ld: Int, columns: Range<Int>, weights: UnsafePointer<Float>?,
                    into d: UnsafeMutablePointer<Float>, kernels: KernelSet = .active) {
    switch kernels {
    case .avx512: ck_softmax_cols_avx512(s, n, ld, columns.lowerBound, columns.upperBound, weights, d)
    case .avx2: ck_softmax_cols_avx2(s, n, ld, columns.lowerBound, columns.upperBound, weights, d)
    case .portable:
        for j in columns {
            var m = -Float.infinity
            for i in 0 ..< n { m = Swift.max(m, s[i * ld + j]) }
            var total: Float = 0, expectation: Float = 0
            for i in 0 ..< n {
                let e = expf(s[i * ld + j] - m)
                total += e
                if let weights { expectation += e * weights[i] } else { d[i * ld + j] = e }
            }
            if weights != nil { d[j] = expectation / total; continue }
            let inv = 1 / total
            for i in 0 ..< n { d[i * ld + j] *= inv }
        }
    }
}

/// Applies `f` to every element, split across cores (for element-wise maths without a kernel of its own:
/// erf, floor, softplus, ...). `cost` is a rough count of operations per element.
public func mapElements(_ x: Tensor, cost: Int = 8, _ f: @escaping @Sendable (Float) -> Float) -> Tensor {
    mapParallel(x, cost: cost, f)
}
