import CKernels
import Foundation

// Multi-scale deformable attention (the sampling core of Deformable DETR's MSDeformAttn).

/// The problem's sizes; `ld` and `c0`: a value row's length and where the heads' channels start in it.
private func msdaCheck(_ value: Tensor, _ levelShapes: [(Int, Int)], _ loc: Tensor, _ weights: Tensor, columns: Range<Int>?)
    -> (n: Int, s: Int, heads: Int, dim: Int, q: Int, levels: Int, points: Int, ld: Int, c0: Int) {
    let empty = (1, 0, 1, 1, 1, 0, 0, 1, 0)  // a shape pass goes on with an empty problem; the failure is reported
    guard check(loc.rank == 6 && loc.shape[5] == 2,
                "multiScaleDeformableAttention: locations must be [N, Q, heads, levels, points, 2], got \(loc.shape)")
    else { return empty }
    let n: Int, s: Int, heads: Int, dim: Int, ld: Int, c0: Int
    if let columns {
        guard check(value.rank == 3, "multiScaleDeformableAttention: value with columns must be [N, S, C], got \(value.shape)"),
              check(columns.lowerBound >= 0 && columns.upperBound <= value.shape[2] && loc.shape[2] > 0 && columns.count % loc.shape[2] == 0,
                    "multiScaleDeformableAttention: columns \(columns) of value \(value.shape) do not hold \(loc.shape[2]) heads")
        else { return empty }
        (n, s, heads, dim, ld, c0) = (value.shape[0], value.shape[1], loc.shape[2], columns.count / loc.shape[2], value.shape[2], columns.lowerBound)
    } else {
        guard check(value.rank == 4, "multiScaleDeformableAttention: value must be [N, S, heads, headDim], got \(value.shape)")
        else { return empty }
        (n, s, heads, dim) = (value.shape[0], value.shape[1], value.shape[2], value.shape[3])
        (ld, c0) = (heads * dim, 0)
    }
    let q = loc.shape[1], levels = loc.shape[3], points = loc.shape[4]
    check(loc.shape[0] == n && loc.shape[2] == heads && levels == levelShapes.count,
                 "multiScaleDeformableAttention: locations \(loc.shape) do not match value \(value.shape) and \(levelShapes.count) levels")
    check(weights.shape == [n, q, heads, levels, points],
                 "multiScaleDeformableAttention: weights \(weights.shape) should be \([n, q, heads, levels, points])")
    check(levelShapes.reduce(0) { $0 + $1.0 * $1.1 } == s,
                 "multiScaleDeformableAttention: level shapes \(levelShapes) cover \(levelShapes.reduce(0) { $0 + $1.0 * $1.1 }) positions, value has \(s)")
    return (n, s, heads, dim, q, levels, points, ld, c0)
}

/// value [N, S, heads, headDim] (levels concatenated, S = sum of H_l * W_l), sampling locations
/// [N, Q, heads, levels, points, 2] as (x, y) in [0, 1], attention weights [N, Q, heads, levels, points]
/// -> [N, Q, heads * headDim]. Each point is a bilinear read of its level (zero outside), weighted and summed.
/// With `columns`, value is [N, S, C] and the heads' channels are those columns of each row (several attentions'
/// values side by side, read in place).
/// Runs the C kernels of msda.c (`kernels`: AVX-512, AVX2 or portable; the active set unless a test asks for
/// another one it may run), split across cores by queries.
public func multiScaleDeformableAttention(value: Tensor, levelShapes: [(Int, Int)], samplingLocations: Tensor,
                                          attentionWeights: Tensor, columns: Range<Int>? = nil,
                                          kernels: KernelSet = .active) -> Tensor {
    let (n, s, heads, dim, q, levels, points, ld, c0) = msdaCheck(value, levelShapes, samplingLocations, attentionWeights,
                                                                  columns: columns)
    precondition(kernels.isEnabled, "multiScaleDeformableAttention: the \(kernels.rawValue) kernels are not enabled here")
    var starts = [Int](), acc = 0
    for (h, w) in levelShapes { starts.append(acc); acc += h * w }
    let shapes = levelShapes.flatMap { [$0.0, $0.1] }
    return Tensor(shape: [n, q, heads * dim]) { out in
        if out.count == 0 { return }
        if s == 0 || levels == 0 || points == 0 { out.initialize(repeating: 0); return }
        let dst = SharedPointer(out.baseAddress!)
        value.data.withUnsafeBufferPointer { vp in
            samplingLocations.data.withUnsafeBufferPointer { lp in
                attentionWeights.data.withUnsafeBufferPointer { wp in
                    shapes.withUnsafeBufferPointer { sp in
                        starts.withUnsafeBufferPointer { stp in
                            let v = ConstPointer(vp.baseAddress!), l = ConstPointer(lp.baseAddress!), aw = ConstPointer(wp.baseAddress!)
                            let shp = ConstLongs(sp.baseAddress!), stt = ConstLongs(stp.baseAddress!)
                            let perImage = heads * levels * points
                            // one (query, head) costs levels * points taps of 4 reads of dim floats
                            Parallel.forEach(n * q, cost: perImage * (dim + 8) * 4) { range in
                                var b = range.lowerBound / q
                                var i = range.lowerBound
                                while i < range.upperBound {
                                    let q0 = i - b * q, q1 = Swift.min(q, range.upperBound - b * q)
                                    var p = ck_msda_problem(value: v.base + b * s * ld + c0, ld: ld, heads: heads, dh: dim,
                                                            levels: levels, points: points, shapes: shp.base, starts: stt.base,
                                                            loc: l.base + b * q * perImage * 2, weight: aw.base + b * q * perImage,
                                                            out: dst.base + b * q * heads * dim, ldo: heads * dim)
                                    switch kernels {
                                    case .avx512: ck_msda_avx512(&p, q0, q1)
                                    case .avx2: ck_msda_avx2(&p, q0, q1)
                                    case .portable: ck_msda_portable(&p, q0, q1)
                                    }
                                    i = (b + 1) * q
                                    b += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A pointer to C longs shared with the workers of a parallel loop (read only).
private struct ConstLongs: @unchecked Sendable {
    let base: UnsafePointer<Int>
    init(_ base: UnsafePointer<Int>) { self.base = base }
}

/// The same computation written the way ms_deform_attn_core_pytorch writes it (one grid_sample per level
/// on [N*heads, headDim, H_l, W_l], then a weighted sum): the reference for tests.
public func multiScaleDeformableAttentionReference(value: Tensor, levelShapes: [(Int, Int)], samplingLocations: Tensor,
                                                   attentionWeights: Tensor) -> Tensor {
    let (n, _, heads, dim, q, _, points, _, _) = msdaCheck(value, levelShapes, samplingLocations, attentionWeights, columns: nil)
    let perLevel = split(value, sizes: levelShapes.map { $0.0 * $0.1 }, axis: 1)
    let grids = samplingLocations * 2 - 1
    var outSum = Tensor(zeros: [n * heads, dim, q])
    for (lv, (h, w)) in levelShapes.enumerated() {
        // [N, HW, heads, D] -> [N, heads, D, HW] -> [N*heads, D, H, W]
        let v = permute(perLevel[lv], [0, 2, 3, 1]).reshaped([n * heads, dim, h, w])
        // [N, Q, heads, P, 2] -> [N, heads, Q, P, 2] -> [N*heads, Q, P, 2]
        let g = permute(slice(grids, axis: 3, range: lv ..< lv + 1).reshaped([n, q, heads, points, 2]), [0, 2, 1, 3, 4])
            .reshaped([n * heads, q, points, 2])
        let sampled = gridSample(v, grid: g)   // [N*heads, D, Q, P]
        let wts = permute(slice(attentionWeights, axis: 3, range: lv ..< lv + 1).reshaped([n, q, heads, points]), [0, 2, 1, 3])
            .reshaped([n * heads, 1, q, points])
        outSum = outSum + sum(sampled * wts, axis: 3)
    }
    // [N*heads, D, Q] -> [N, heads*D, Q] -> [N, Q, heads*D]
    return transpose(outSum.reshaped([n, heads * dim, q]), 1, 2)
}
