import CKernels
import Foundation

// Element-wise arithmetic with NumPy broadcasting.

/// The broadcast shape of two shapes (NumPy rules: align at the right, 1 stretches).
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let r = Swift.max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0 ..< r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        check(da == db || da == 1 || db == 1, "broadcast: shapes \(a) and \(b) are incompatible")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides of `shape` when broadcast to `outShape` (0 for stretched dimensions).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let r = outShape.count
    var s = [Int](repeating: 0, count: r)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let o = i + (r - shape.count)
        s[o] = shape[i] == 1 ? 0 : acc
        acc *= shape[i]
    }
    return s
}

/// A binary element-wise operation as a type: the loops of `broadcastBinary` are specialised for it and inline
/// it (a closure there was called through a pointer for every element: 1.5 ns an element where the loop
/// runs at memory speed).
/// `kernelOp`: the operation's CK_BIN_* code in CKernels' vecops.c (AVX-512 and AVX2 loops), or -1 for none.
protocol BinaryElementOp {
    static func apply(_ x: Float, _ y: Float) -> Float
    static var kernelOp: Int32 { get }
}
extension BinaryElementOp { static var kernelOp: Int32 { -1 } }
enum AddOp: BinaryElementOp {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x + y }
    static var kernelOp: Int32 { CK_BIN_ADD }
}
enum SubOp: BinaryElementOp {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x - y }
    static var kernelOp: Int32 { CK_BIN_SUB }
}
enum MulOp: BinaryElementOp {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x * y }
    static var kernelOp: Int32 { CK_BIN_MUL }
}
enum DivOp: BinaryElementOp {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x / y }
    static var kernelOp: Int32 { CK_BIN_DIV }
}
/// NaN propagates, as in torch.maximum / torch.minimum.
/// Written as selects, not `||`, which compiled to branches (mispredicted on data that goes either way).
enum MaxOp: BinaryElementOp {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { let m = x > y ? x : y; return x != x ? x : (y != y ? y : m) }
    static var kernelOp: Int32 { CK_BIN_MAX }
}
enum MinOp: BinaryElementOp {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { let m = x < y ? x : y; return x != x ? x : (y != y ? y : m) }
    static var kernelOp: Int32 { CK_BIN_MIN }
}

/// d[i] = x[i * sx] op y[i * sy] for i < n (strides 0 or 1) by ck_binary of `kernels` (AVX-512 or AVX2).
@inline(__always)
func binaryKernel(_ kernels: KernelSet, _ op: Int32, _ x: UnsafePointer<Float>, _ sx: Int, _ y: UnsafePointer<Float>, _ sy: Int,
                  _ d: UnsafeMutablePointer<Float>, _ n: Int) {
    if kernels == .avx512 { ck_binary_avx512(op, x, sx, y, sy, d, n) } else { ck_binary_avx2(op, x, sx, y, sy, d, n) }
}

/// Applies `Op` to broadcast pairs. Dimensions are merged where both operands stay contiguous, so the
/// inner loop is as long as possible; the common cases (same shape, a scalar, a per-channel vector)
/// become one or two plain loops. Large outputs are split across cores by outer rows. Add, subtract, multiply, divide,
/// maximum and minimum run on the vector loops of `kernels` (the active set unless a test chooses) wherever the
/// inner run reads each operand contiguously or as one number: same shapes, a scalar, a row or a per-channel vector.
@inline(__always)
func broadcastBinary<Op: BinaryElementOp>(_ a: Tensor, _ b: Tensor, _: Op.Type, kernels: KernelSet = .active) -> Tensor {
    let useKernel = kernels != .portable && Op.kernelOp >= 0
    // Same shapes, or one operand a single number (its stride 0): one flat loop split across cores.
    let scalarA = a.count == 1 && a.rank <= b.rank, scalarB = b.count == 1 && b.rank <= a.rank
    if a.shape == b.shape || (scalarB && a.count > 0) || (scalarA && b.count > 0) {
        return Tensor(shape: scalarB ? a.shape : b.shape) { out in
            guard let o = out.baseAddress else { return }
            let d = SharedPointer(o)
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    let x = ConstPointer(pa.baseAddress!), y = ConstPointer(pb.baseAddress!)
                    Parallel.forEach(out.count, cost: 2) { r in
                        if useKernel {
                            let lo = r.lowerBound
                            binaryKernel(kernels, Op.kernelOp, x.base + (scalarA ? 0 : lo), scalarA ? 0 : 1,
                                         y.base + (scalarB ? 0 : lo), scalarB ? 0 : 1, d.base + lo, r.count)
                        } else if scalarB {
                            let v = y.base[0]
                            for i in r { d.base[i] = Op.apply(x.base[i], v) }
                        } else if scalarA {
                            let v = x.base[0]
                            for i in r { d.base[i] = Op.apply(v, y.base[i]) }
                        } else {
                            for i in r { d.base[i] = Op.apply(x.base[i], y.base[i]) }
                        }
                    }
                }
            }
        }
    }
    let shape = broadcastShape(a.shape, b.shape)
    let sa0 = broadcastStrides(a.shape, to: shape)
    let sb0 = broadcastStrides(b.shape, to: shape)
    // Drop size-1 dimensions, then merge neighbours whose strides chain.
    var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []
    for i in 0 ..< shape.count where shape[i] != 1 {
        if let last = dims.last, sa.last! == sa0[i] * shape[i], sb.last! == sb0[i] * shape[i] {
            dims[dims.count - 1] = last * shape[i]
            sa[sa.count - 1] = sa0[i]
            sb[sb.count - 1] = sb0[i]
        } else {
            dims.append(shape[i]); sa.append(sa0[i]); sb.append(sb0[i])
        }
    }
    return Tensor(shape: shape) { out in
        if out.count == 0 { return }
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                if dims.isEmpty {
                    out[0] = Op.apply(pa[0], pb[0])
                    return
                }
                let r = dims.count
                let inner = dims[r - 1], ia = sa[r - 1], ib = sb[r - 1]
                let outer = out.count / inner
                // The vector loops for inner runs of eight or more that read each operand in place or as one number.
                let rowKernel = useKernel && inner >= 8 && (ia == 0 || ia == 1) && (ib == 0 || ib == 1)
                let x = ConstPointer(pa.baseAddress!), y = ConstPointer(pb.baseAddress!), d = SharedPointer(out.baseAddress!)
                Parallel.forEach(outer, cost: inner * 2) { rows in
                    // Multi-index and offsets of the first outer row of this range.
                    var idx = [Int](repeating: 0, count: r)
                    var offA = 0, offB = 0, rest = rows.lowerBound
                    for q in stride(from: r - 2, through: 0, by: -1) {
                        idx[q] = rest % dims[q]; rest /= dims[q]
                        offA += idx[q] * sa[q]; offB += idx[q] * sb[q]
                    }
                    var o = rows.lowerBound * inner
                    for _ in rows {
                        if rowKernel {
                            binaryKernel(kernels, Op.kernelOp, x.base + offA, ia, y.base + offB, ib, d.base + o, inner)
                            o += inner
                        } else {
                            var ja = offA, jb = offB
                            for _ in 0 ..< inner {
                                d.base[o] = Op.apply(x.base[ja], y.base[jb])
                                o += 1; ja += ia; jb += ib
                            }
                        }
                        var q = r - 2
                        while q >= 0 {
                            idx[q] += 1
                            offA += sa[q]; offB += sb[q]
                            if idx[q] < dims[q] { break }
                            offA -= sa[q] * dims[q]; offB -= sb[q] * dims[q]
                            idx[q] = 0
                            q -= 1
                        }
                    }
                }
            }
        }
    }
}

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, AddOp.self) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, SubOp.self) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, MulOp.self) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, DivOp.self) }

    public static func + (a: Tensor, s: Float) -> Tensor { broadcastBinary(a, Tensor(scalar: s), AddOp.self) }
    public static func - (a: Tensor, s: Float) -> Tensor { broadcastBinary(a, Tensor(scalar: s), SubOp.self) }
    public static func * (a: Tensor, s: Float) -> Tensor { broadcastBinary(a, Tensor(scalar: s), MulOp.self) }
    public static func / (a: Tensor, s: Float) -> Tensor { broadcastBinary(a, Tensor(scalar: s), DivOp.self) }

    public static func + (s: Float, a: Tensor) -> Tensor { broadcastBinary(Tensor(scalar: s), a, AddOp.self) }
    public static func - (s: Float, a: Tensor) -> Tensor { broadcastBinary(Tensor(scalar: s), a, SubOp.self) }
    public static func * (s: Float, a: Tensor) -> Tensor { broadcastBinary(Tensor(scalar: s), a, MulOp.self) }
    public static func / (s: Float, a: Tensor) -> Tensor { broadcastBinary(Tensor(scalar: s), a, DivOp.self) }

    /// -1 * x, not 0 - x, so that -(+0) is -0 as in torch.neg.
    public static prefix func - (a: Tensor) -> Tensor { broadcastBinary(Tensor(scalar: -1), a, MulOp.self) }
}

/// Element-wise maximum with broadcasting (NaN propagates, as in torch.maximum).
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { broadcastBinary(a, b, MaxOp.self) }

/// Element-wise minimum with broadcasting (NaN propagates, as in torch.minimum).
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { broadcastBinary(a, b, MinOp.self) }

/// Clamps every element into [min, max] (torch.clamp; NaN stays NaN).
public func clamp(_ x: Tensor, min lo: Float, max hi: Float) -> Tensor {
    mapParallel(x, cost: 1) { v in v.isNaN ? v : (v < lo ? lo : (v > hi ? hi : v)) }
}

// Ops the ONNX interpreter needs beyond the layers' own: powers, comparisons, a ternary select and a broadcast
// copy. Comparisons give 1 or 0 as Float32 (ONNX's bool).

enum PowOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { y == 2 ? x * x : powf(x, y) } }
enum EqualOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x == y ? 1 : 0 } }
enum GreaterOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x > y ? 1 : 0 } }
enum LessOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x < y ? 1 : 0 } }
enum AndOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x != 0 && y != 0 ? 1 : 0 } }
enum OrOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x != 0 || y != 0 ? 1 : 0 } }
enum XorOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { (x != 0) != (y != 0) ? 1 : 0 } }
enum ModOp: BinaryElementOp {
    /// The sign of the divisor, as Python's % and ONNX Mod with fmod = 0.
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float {
        let r = fmodf(x, y)
        return r != 0 && (r < 0) != (y < 0) ? r + y : r
    }
}
enum FmodOp: BinaryElementOp { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { fmodf(x, y) } }

/// Element-wise power with broadcasting (torch.pow).
public func power(_ a: Tensor, _ b: Tensor) -> Tensor { broadcastBinary(a, b, PowOp.self) }

/// A comparison or logical operation of two tensors.
public enum ElementComparison: Sendable { case equal, greater, less, and, or, xor }

/// 1 where the comparison holds, else 0, with broadcasting.
public func compare(_ a: Tensor, _ b: Tensor, _ kind: ElementComparison) -> Tensor {
    switch kind {
    case .equal: return broadcastBinary(a, b, EqualOp.self)
    case .greater: return broadcastBinary(a, b, GreaterOp.self)
    case .less: return broadcastBinary(a, b, LessOp.self)
    case .and: return broadcastBinary(a, b, AndOp.self)
    case .or: return broadcastBinary(a, b, OrOp.self)
    case .xor: return broadcastBinary(a, b, XorOp.self)
    }
}

/// The remainder of a / b with broadcasting: the sign of b (Python's %) or, with `truncated`, of a (C's fmod).
public func remainder(_ a: Tensor, _ b: Tensor, truncated: Bool) -> Tensor {
    truncated ? broadcastBinary(a, b, FmodOp.self) : broadcastBinary(a, b, ModOp.self)
}

/// `x` copied to `shape` by NumPy broadcasting (numpy.broadcast_to, materialised); `shape` must be x's shape
/// broadcast with itself.
public func broadcast(_ x: Tensor, to shape: [Int]) -> Tensor {
    check(broadcastShape(x.shape, shape) == shape, "broadcast: \(x.shape) does not broadcast to \(shape)")
    if x.shape == shape { return x }
    let s = broadcastStrides(x.shape, to: shape)
    let r = shape.count
    return Tensor(shape: shape) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { p in
            var idx = [Int](repeating: 0, count: r)
            var off = 0
            for o in 0 ..< out.count {
                out[o] = p[off]
                var q = r - 1
                while q >= 0 {
                    idx[q] += 1; off += s[q]
                    if idx[q] < shape[q] { break }
                    off -= s[q] * shape[q]; idx[q] = 0
                    q -= 1
                }
            }
        }
    }
}

/// `a` where `condition` is non-zero, else `b`, all three broadcast together (torch.where).
public func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = broadcastShape(broadcastShape(condition.shape, a.shape), b.shape)
    let c = broadcast(condition, to: shape), x = broadcast(a, to: shape), y = broadcast(b, to: shape)
    return Tensor(shape: shape) { out in
        for i in 0 ..< out.count { out[i] = c.data[i] != 0 ? x.data[i] : y.data[i] }
    }
}
