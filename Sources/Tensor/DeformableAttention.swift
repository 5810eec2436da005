import Foundation

// Multi-scale deformable attention (the sampling core of Deformable DETR's MSDeformAttn).

private func msdaCheck(_ value: Tensor, _ levelShapes: [(Int, Int)], _ loc: Tensor, _ weights: Tensor)
    -> (n: Int, s: Int, heads: Int, dim: Int, q: Int, levels: Int, points: Int) {
    guard check(value.rank == 4, "multiScaleDeformableAttention: value must be [N, S, heads, headDim], got \(value.shape)"),
          check(loc.rank == 6 && loc.shape[5] == 2,
                "multiScaleDeformableAttention: locations must be [N, Q, heads, levels, points, 2], got \(loc.shape)")
    else { return (1, 0, 1, 1, 1, 0, 0) }  // a shape pass goes on with an empty problem; the failure is reported
    let n = value.shape[0], s = value.shape[1], heads = value.shape[2], dim = value.shape[3]
    let q = loc.shape[1], levels = loc.shape[3], points = loc.shape[4]
    check(loc.shape[0] == n && loc.shape[2] == heads && levels == levelShapes.count,
                 "multiScaleDeformableAttention: locations \(loc.shape) do not match value \(value.shape) and \(levelShapes.count) levels")
    check(weights.shape == [n, q, heads, levels, points],
                 "multiScaleDeformableAttention: weights \(weights.shape) should be \([n, q, heads, levels, points])")
    check(levelShapes.reduce(0) { $0 + $1.0 * $1.1 } == s,
                 "multiScaleDeformableAttention: level shapes \(levelShapes) cover \(levelShapes.reduce(0) { $0 + $1.0 * $1.1 }) positions, value has \(s)")
    return (n, s, heads, dim, q, levels, points)
}

/// value [N, S, heads, headDim] (levels concatenated, S = sum of H_l * W_l), sampling locations
/// [N, Q, heads, levels, points, 2] as (x, y) in [0, 1], attention weights [N, Q, heads, levels, points]
/// -> [N, Q, heads * headDim]. Each point is a bilinear read of its level (zero outside), weighted and summed.
public func multiScaleDeformableAttention(value: Tensor, levelShapes: [(Int, Int)], samplingLocations: Tensor,
                                          attentionWeights: Tensor) -> Tensor {
    let (n, s, heads, dim, q, levels, points) = msdaCheck(value, levelShapes, samplingLocations, attentionWeights)
    var starts = [Int](), acc = 0
    for (h, w) in levelShapes { starts.append(acc); acc += h * w }
    let shapes = levelShapes.map { [$0.0, $0.1] }
    return Tensor(shape: [n, q, heads * dim]) { out in
        if out.count == 0 { return }
        out.initialize(repeating: 0)
        let dst = SharedPointer(out.baseAddress!)
        value.data.withUnsafeBufferPointer { vp in
            samplingLocations.data.withUnsafeBufferPointer { lp in
                attentionWeights.data.withUnsafeBufferPointer { wp in
                    let v = vp.baseAddress!, l = lp.baseAddress!, aw = wp.baseAddress!
                    let rowStride = heads * dim   // between neighbouring positions of the value
                    Parallel.forEach(n * q, cost: heads * levels * points * dim * 8) { range in
                        for nq in range {
                            let b = nq / q
                            for hd in 0 ..< heads {
                                let o = dst.base + nq * heads * dim + hd * dim
                                for lv in 0 ..< levels {
                                    let hl = shapes[lv][0], wl = shapes[lv][1]
                                    let base = v + (b * s + starts[lv]) * rowStride + hd * dim
                                    for pt in 0 ..< points {
                                        let idx = ((nq * heads + hd) * levels + lv) * points + pt
                                        let a = aw[idx]
                                        let t = BilinearTaps(x: l[idx * 2] * Float(wl) - 0.5, y: l[idx * 2 + 1] * Float(hl) - 0.5, h: hl, w: wl)
                                        let w00 = t.w00 * a, w01 = t.w01 * a, w10 = t.w10 * a, w11 = t.w11 * a
                                        let p00 = base + t.i00 * rowStride, p01 = base + t.i01 * rowStride
                                        let p10 = base + t.i10 * rowStride, p11 = base + t.i11 * rowStride
                                        for d in 0 ..< dim {
                                            o[d] += w00 * p00[d] + w01 * p01[d] + w10 * p10[d] + w11 * p11[d]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The same computation written the way ms_deform_attn_core_pytorch writes it (one grid_sample per level
/// on [N*heads, headDim, H_l, W_l], then a weighted sum): the reference for tests.
public func multiScaleDeformableAttentionReference(value: Tensor, levelShapes: [(Int, Int)], samplingLocations: Tensor,
                                                   attentionWeights: Tensor) -> Tensor {
    let (n, _, heads, dim, q, _, points) = msdaCheck(value, levelShapes, samplingLocations, attentionWeights)
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
