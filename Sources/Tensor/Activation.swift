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
/// Exact GELU: x * Phi(x) (torch's default, approximate="none"); written with erfc, which keeps its
/// precision in the negative tail where 1 + erf cancels.
public func gelu(_ x: Tensor) -> Tensor { mapParallel(x, cost: 16) { 0.5 * $0 * erfcf(-$0 * 0.70710678118654752) } }
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

public func softmax(_ x: Tensor, axis: Int) -> Tensor {
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
                    for r in rows {
                        let s = src + r * n, d = dst.base + r * n
                        let m = rowMax(s, n)
                        var total: Float = 0
                        if hasAVX2FMA {
                            for i in 0 ..< n { d[i] = s[i] - m }
                            if hasAVX512 { ck_exp_avx512(d, d, n) } else { ck_exp_avx2(d, d, n) }
                            total = rowSum(d, n, around: 0, squared: false)
                        } else {
                            for i in 0 ..< n { let e = expf(s[i] - m); d[i] = e; total += e }
                        }
                        let inv = 1 / total
                        for i in 0 ..< n { d[i] *= inv }
                    }
                }
            } else {
                Parallel.forEach(outer, cost: n * inner * 8) { blocks in
                    var m = [Float](repeating: 0, count: inner)
                    var total = [Float](repeating: 0, count: inner)
                    for o in blocks {
                        let s = src + o * n * inner, d = dst.base + o * n * inner
                        for j in 0 ..< inner { m[j] = -.infinity; total[j] = 0 }
                        for i in 0 ..< n { for j in 0 ..< inner where s[i * inner + j] > m[j] { m[j] = s[i * inner + j] } }
                        for i in 0 ..< n {
                            for j in 0 ..< inner {
                                let e = expf(s[i * inner + j] - m[j])
                                d[i * inner + j] = e
                                total[j] += e
                            }
                        }
                        for j in 0 ..< inner { total[j] = 1 / total[j] }
                        for i in 0 ..< n { for j in 0 ..< inner { d[i * inner + j] *= total[j] } }
                    }
                }
            }
        }
    }
}

/// Applies `f` to every element, split across cores (for element-wise maths without a kernel of its own:
/// erf, floor, softplus, ...). `cost` is a rough count of operations per element.
public func mapElements(_ x: Tensor, cost: Int = 8, _ f: @escaping @Sendable (Float) -> Float) -> Tensor {
    mapParallel(x, cost: cost, f)
}
