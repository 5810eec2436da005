import Foundation
import Tensor

/// Multi-scale deformable attention, the one implementation every family uses: ultralytics' `MSDeformAttn`
/// (RT-DETR's decoder), transformers' `DeformableDetrMultiscaleDeformableAttention`,
/// `RTDetrV2MultiscaleDeformableAttention` and `DFineMultiscaleDeformableAttention`.
///
/// Zhu et al., "Deformable DETR" (arXiv 2010.04159, eq. 2); Lv et al., "RT-DETRv2" (arXiv 2407.17140: per-level
/// point counts, discrete sampling); Peng et al., "D-FINE" (arXiv 2410.13842). Reference code: fundamentalvision
/// `ms_deform_attn.py`, ultralytics `nn/modules/transformer.py`, transformers `modeling_rt_detr_v2.py`
/// (`multi_scale_deformable_attention_v2`) and `modeling_d_fine.py`.
///
/// Each query looks at `P_l` points per head on level l instead of every key: `sampling_offsets`
/// (Linear d -> heads * sum(P_l) * 2) moves the points away from the query's reference, `attention_weights`
/// (Linear d -> heads * sum(P_l), softmax over all points of all levels per head) weighs them, and the values
/// (`value_proj`, when the module has one; D-FINE has none) are read there.
/// - 2-d reference points (x, y): `loc = ref + offset / (W_l, H_l)`;
/// - 4-d reference boxes (cx, cy, w, h): `loc = ref_xy + offset / P_l * ref_wh * offsetScale` (0.5 in
///   Deformable DETR and RT-DETR; RT-DETRv2 and D-FINE's `decoder_offset_scale`).
/// Reference points are [N, Q, r] (one per query) or [N, Q, L, r] (one per query and level, transformers' valid
/// ratios), r = 2 or 4.
/// Sampling: `bilinear` (grid_sample, align_corners false, zeros outside) or `discrete` (RT-DETRv2's: the nearest
/// cell, `int(loc * (W, H) + 0.5)` clamped into the map).
///
/// Default init (the references'): offsets weight 0, bias = head direction (cos, sin of 2*pi*h/heads over its
/// larger component) times (point index within its level + 1), so untrained points form rays around the reference;
/// attention weights 0 (uniform); value/output projections Xavier with zero bias.
///
/// Shapes: query [N, Q, d], reference [N, Q, (L,) 2 or 4], value [N, S, d] with S = sum H_l * W_l -> [N, Q, d].
/// Keys: `sampling_offsets`, `attention_weights`, `value_proj`, `output_proj` (`.weight`, `.bias`).
/// Probe: the sampling points of batch element 0 (reference points, locations [Q, heads, levels, maxP, 2] and
/// weights [Q, heads, levels, maxP]; with per-level counts a level's unused slots have weight 0 at the reference).
/// FLOPs: the linears are its children's (what thop counts); the sampling itself (per query, head and point:
/// 4 bilinear taps and one weighting per value channel) is counted only with `countsSampling` (Deformable DETR's
/// own table counts it, ultralytics' does not).
public struct MSDeformAttention: Module {
    public enum SamplingMethod: String, Sendable {
        /// Bilinear reads, zero outside the map (transformers' `decoder_method: "default"`).
        case bilinear = "default"
        /// The nearest cell, clamped into the map (RT-DETRv2's `"discrete"`).
        case discrete
    }

    /// What one call returns besides the output: where it sampled, with which weights.
    public struct Output: Sendable {
        /// [N, Q, d]
        public var output: Tensor
        /// [N, Q, heads, sum(P_l), 2] (x, y) in [0, 1]; [N, Q, heads, L, P, 2] when every level has P points.
        public var locations: Tensor
        /// [N, Q, heads, sum(P_l)] after the softmax; [N, Q, heads, L, P] when every level has P points.
        public var weights: Tensor
    }

    public let dModel: Int, heads: Int
    /// Points per level (`decoder_n_points` / `num_points_list`).
    public let pointsPerLevel: [Int]
    public let offsetScale: Float
    /// Per point (all levels in order): the factor of a 4-d reference's offsets, 1 / P_l, or the checkpoint's own
    /// `n_points_scale` / `num_points_scale` buffer when the module reads one.
    public let pointScale: [Float]
    public let method: SamplingMethod
    public let countsSampling: Bool
    public let typeName: String
    public let samplingOffsets: Child<Linear>
    public let attentionWeights: Child<Linear>
    public let valueProj: Child<Linear>?
    public let outputProj: Child<Linear>?

    public var levels: Int { pointsPerLevel.count }
    /// Points per head over all levels.
    public var totalPoints: Int { pointsPerLevel.reduce(0, +) }
    /// The same count on every level (the common case, whose outputs keep a level axis).
    public var uniformPoints: Int? { pointsPerLevel.allSatisfy { $0 == pointsPerLevel[0] } ? pointsPerLevel[0] : nil }

    /// The same number of points on every level (ultralytics' and Deformable DETR's `n_points`).
    public init(_ w: WeightScope, dModel d: Int = 256, levels: Int = 4, heads: Int = 8, points: Int = 4,
                offsetScale: Float = 0.5, method: SamplingMethod = .bilinear, valueProjection: Bool = true,
                outputProjection: Bool = true, countsSampling: Bool = false, pointsScaleKey: String? = nil,
                typeName: String = "MSDeformAttn") throws {
        guard levels > 0 else { throw ModuleInputError(typeName, "the level count must be positive, got \(levels)") }
        try self.init(w, dModel: d, heads: heads, pointsPerLevel: [Int](repeating: points, count: levels), offsetScale: offsetScale,
                      method: method, valueProjection: valueProjection, outputProjection: outputProjection,
                      countsSampling: countsSampling, pointsScaleKey: pointsScaleKey, typeName: typeName)
    }

    /// Per-level point counts (RT-DETRv2's list `decoder_n_points`, D-FINE's `num_points_list`). `pointsScaleKey`:
    /// the key of transformers' persistent buffer of 1 / P_l per point (`n_points_scale` in RT-DETRv2,
    /// `num_points_scale` in D-FINE), read when the weights have it (it is no parameter).
    public init(_ w: WeightScope, dModel d: Int = 256, heads: Int = 8, pointsPerLevel: [Int], offsetScale: Float = 0.5,
                method: SamplingMethod = .bilinear, valueProjection: Bool = true, outputProjection: Bool = true,
                countsSampling: Bool = false, pointsScaleKey: String? = nil, typeName: String = "MSDeformAttn") throws {
        guard heads > 0, d > 0, d % heads == 0 else { throw ModuleInputError(typeName, "d_model (\(d)) must be divisible by n_heads (\(heads))") }
        guard !pointsPerLevel.isEmpty, pointsPerLevel.allSatisfy({ $0 > 0 }) else {
            throw ModuleInputError(typeName, "every level needs a positive point count, got \(pointsPerLevel)")
        }
        dModel = d
        self.heads = heads
        self.pointsPerLevel = pointsPerLevel
        self.offsetScale = offsetScale
        self.method = method
        self.countsSampling = countsSampling
        self.typeName = typeName
        let n = heads * pointsPerLevel.reduce(0, +)
        let scale = pointsPerLevel.flatMap { [Float](repeating: 1 / Float($0), count: $0) }
        if let key = pointsScaleKey, w.has(key) {
            pointScale = try w.tensor(key, shape: [scale.count], init: .value(Tensor(shape: [scale.count], data: scale))).data
        } else {
            pointScale = scale
        }
        let grid = MSDeformAttention.gridInit(heads: heads, pointsPerLevel: pointsPerLevel)
        samplingOffsets = try Child(w, "sampling_offsets") { try Linear($0, in: d, out: 2 * n, weightInit: .zeros, biasInit: .value(grid)) }
        attentionWeights = try Child(w, "attention_weights") { try Linear($0, in: d, out: n, weightInit: .zeros, biasInit: .zeros) }
        let xavier = WeightInit.xavierUniform(fanIn: d, fanOut: d)
        valueProj = valueProjection ? try Child(w, "value_proj") { try Linear($0, in: d, out: d, weightInit: xavier, biasInit: .zeros) } : nil
        outputProj = outputProjection ? try Child(w, "output_proj") { try Linear($0, in: d, out: d, weightInit: xavier, biasInit: .zeros) } : nil
    }

    /// The references' grid init of the sampling-offset bias, [heads * sum(P_l) * 2]: head h's direction (the angle
    /// computed in float32 as torch does, `arange(h) * (2 pi / heads)`) over its larger component, times the point's
    /// index within its level + 1.
    public static func gridInit(heads: Int, pointsPerLevel: [Int]) -> Tensor {
        var data: [Float] = []
        data.reserveCapacity(heads * pointsPerLevel.reduce(0, +) * 2)
        for h in 0 ..< heads {
            let theta = Float(h) * Float(2.0 * Double.pi / Double(heads))
            let c = Foundation.cos(theta), s = Foundation.sin(theta)
            let m = Swift.max(Swift.abs(c), Swift.abs(s))
            for points in pointsPerLevel {
                for p in 0 ..< points {
                    data.append(c / m * Float(p + 1))
                    data.append(s / m * Float(p + 1))
                }
            }
        }
        return Tensor(shape: [data.count], data: data)
    }

    /// The sampling's FLOPs for Q queries: 2 x Q x heads x sum(P_l) x headDim x (4 taps + 1 weighting).
    public func samplingFlops(queries q: Int) -> Double {
        2 * Double(q * heads * totalPoints * (dModel / heads) * 5)
    }

    /// FLOPs of one call (its linears, and the sampling with `countsSampling`), from a shape pass.
    public func flops(queryShape: [Int], referenceShape: [Int], valueShape: [Int], levelShapes: [GridSize]) -> Double {
        Call(base: self, levelShapes: levelShapes).flops(inputShapes: [queryShape, referenceShape, valueShape])
    }

    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        countsSampling ? samplingFlops(queries: output.dropLast().reduce(1, *)) : 0
    }

    /// Inputs query [N, Q, d], reference [N, Q, (L,) 2 or 4], value [N, S, d] and the level shapes [L, 2] as (H, W)
    /// rows; outputs [N, Q, d] with `sampling_locations` and `attention_weights` in the extras.
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        guard inputs.count == 4, inputs[3].rank == 2, inputs[3].shape[1] == 2, !inputs[3].isShapeOnly else {
            throw ModuleInputError(typeName, "takes query, reference points, value and the level shapes [L, 2]")
        }
        let s = inputs[3].data
        let shapes = (0 ..< inputs[3].shape[0]).map { GridSize(Int(s[2 * $0]), Int(s[2 * $0 + 1])) }
        return try Call(base: self, levelShapes: shapes).forward(Array(inputs.prefix(3)), ctx)
    }

    /// One call with its level shapes and options, as a module of the tree (so the shape pass records it).
    struct Call: Module {
        let base: MSDeformAttention
        let levelShapes: [GridSize]
        var valueProjected = false
        var valueColumns: Range<Int>? = nil
        var queryLevels: [GridSize]? = nil
        var probeName: String? = nil
        var recordsProbe = true

        var typeName: String { base.typeName }
        var ownParameterCount: Int { base.ownParameterCount }
        func ownFlops(inputs: [[Int]], output: [Int]) -> Double { base.ownFlops(inputs: inputs, output: output) }
        var children: [(key: String, module: any Module)] { base.children }
        func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
            let o = try base.attend(query: inputs[0], reference: inputs[1], value: inputs[2], levelShapes: levelShapes, ctx,
                                    valueProjected: valueProjected, valueColumns: valueColumns, queryLevels: queryLevels,
                                    probeName: probeName, recordsProbe: recordsProbe)
            return LayerOutput(o.output, extras: ["sampling_locations": o.locations, "attention_weights": o.weights])
        }
    }

    /// Runs the attention in `ctx` as this module's own context (its linears recorded as its children; no call of its
    /// own is recorded: `Child<MSDeformAttention>`'s call does that). Records the sampling points of batch element 0
    /// under `ctx` (or its child `probeName`) unless `recordsProbe` is false (a caller that records them its own way).
    /// `valueProjected`: `value` already went through `value_proj` (RT-DETR's
    /// decoder projects the features for all its layers in one product); in a shape pass `value_proj` is still
    /// recorded on the value's shape, as the reference runs it. `valueColumns` (with `valueProjected`): value is
    /// [N, S, C] holding several layers' projected values side by side and this call's are these `dModel` columns,
    /// read in place.
    public func attend(query: Tensor, reference: Tensor, value: Tensor, levelShapes: [GridSize], _ ctx: ForwardContext,
                       valueProjected: Bool = false, valueColumns: Range<Int>? = nil, queryLevels: [GridSize]? = nil,
                       probeName: String? = nil, recordsProbe: Bool = true) throws -> Output {
        guard query.rank == 3, query.shape[2] == dModel else { throw ModuleInputError(typeName, "query must be [N, Q, \(dModel)], got \(query.shape)") }
        let columns = valueProjected ? valueColumns : nil
        guard value.rank == 3, value.shape[0] == query.shape[0],
              columns.map({ $0.count == dModel && $0.lowerBound >= 0 && $0.upperBound <= value.shape[2] }) ?? (value.shape[2] == dModel) else {
            throw ModuleInputError(typeName, "value must be [N, S, \(dModel)]\(columns.map { " (columns \($0) of [N, S, C])" } ?? ""), got \(value.shape)")
        }
        guard levelShapes.count == levels else { throw ModuleInputError(typeName, "expects \(levels) levels, got \(levelShapes.count)") }
        guard levelShapes.allSatisfy({ $0.height > 0 && $0.width > 0 }) else {
            throw ModuleInputError(typeName, "level shapes must be positive, got \(levelShapes.map { "\($0.height)x\($0.width)" })")
        }
        let total = levelShapes.reduce(0) { $0 + $1.count }
        guard total == value.shape[1] else {
            throw ModuleInputError(typeName, "value length \(value.shape[1]) does not match the level shapes (sum H*W = \(total))")
        }
        let n = query.shape[0], q = query.shape[1], r = reference.shape.last ?? 0
        guard reference.shape.count >= 3, reference.shape[0] == n, reference.shape[1] == q, r == 2 || r == 4,
              reference.rank == 3 || (reference.rank == 4 && reference.shape[2] == levels) else {
            throw ModuleInputError(typeName, "reference points must be [N, Q, 2 or 4] or [N, Q, \(levels), 2 or 4], got \(reference.shape)")
        }
        if valueProjected && valueProj != nil && Tensor.isInShapePass {
            _ = try valueProj!(columns == nil ? value : Tensor(shapeOnly: [n, total, dModel]), ctx)
        }
        let projected = valueProjected ? value : try valueProj.map { try $0(value, ctx) } ?? value
        let h = heads, tp = totalPoints, dh = dModel / heads
        // [N, S, d] -> [N, S, h, dh]; columns of a wider value are read in place by the bilinear kernel, cut out for the others
        let inPlace = columns != nil && method == .bilinear && uniformPoints != nil
        let v = inPlace ? projected : (columns.map { slice(projected, axis: 2, range: $0) } ?? projected).reshaped([n, total, h, dh])
        let offsets = try samplingOffsets(query, ctx)                                           // [N, Q, h * tp * 2]
        let weights = softmax(try attentionWeights(query, ctx).reshaped([n, q, h, tp]), axis: -1) // [N, Q, h, tp]
        let locations = samplingLocations(offsets: offsets, reference: reference, levelShapes: levelShapes)  // [N, Q, h, tp, 2]
        var sampled = sample(value: v, levelShapes: levelShapes, locations: locations, weights: weights,
                             columns: inPlace ? columns : nil)                                            // [N, Q, d]
        if let outputProj { sampled = try outputProj(sampled, ctx) }
        var out = Output(output: sampled, locations: locations, weights: weights)
        if let p = uniformPoints {
            out.locations = locations.reshaped([n, q, h, levels, p, 2])
            out.weights = weights.reshaped([n, q, h, levels, p])
        }
        if recordsProbe && ctx.trace != nil && !Tensor.isInShapePass {
            // Batch element 0 (one image: the tensors themselves, their storage shared with the outputs).
            func first(_ t: Tensor) -> Tensor { n == 1 ? t.reshaped(Array(t.shape.dropFirst())) : unbatched(slice(t, axis: 0, range: 0 ..< 1)) }
            let ref0 = first(reference)
            let (l0, w0) = probeLayout(locations: first(locations), weights: first(weights), reference: ref0)
            ctx.probe("sampling points", .sampling(SamplingPoints(
                referencePoints: ref0.rank == 3 ? slice(ref0, axis: 1, range: 0 ..< 1).reshaped([q, r]) : ref0,
                locations: l0, weights: w0, levelShapes: levelShapes, queryLevels: queryLevels)), name: probeName)
        }
        return out
    }

    /// Sampling locations [N, Q, heads, sum(P_l), 2] from offsets [N, Q, heads * sum(P_l) * 2], in the references'
    /// order of operations (2-d: ref + off / (W, H); 4-d: ref_xy + off * (1 / P_l) * ref_wh * offsetScale).
    func samplingLocations(offsets: Tensor, reference: Tensor, levelShapes: [GridSize]) -> Tensor {
        let n = reference.shape[0], q = reference.shape[1], rc = reference.shape.last!
        let perLevel = reference.rank == 4
        let h = heads, tp = totalPoints
        var levelOf: [Int] = []
        for (l, p) in pointsPerLevel.enumerated() { levelOf += [Int](repeating: l, count: p) }
        let factor = pointScale
        let widths = levelShapes.map { Float($0.width) }, heights = levelShapes.map { Float($0.height) }
        let scale = offsetScale
        return Tensor(shape: [n, q, h, tp, 2]) { out in
            offsets.data.withUnsafeBufferPointer { off in
                reference.data.withUnsafeBufferPointer { ref in
                    var o = 0
                    for i in 0 ..< n * q {
                        for _ in 0 ..< h {
                            for k in 0 ..< tp {
                                let l = levelOf[k]
                                let r = perLevel ? (i * levels + l) * rc : i * rc
                                if rc == 2 {
                                    out[o] = ref[r] + off[o] / widths[l]
                                    out[o + 1] = ref[r + 1] + off[o + 1] / heights[l]
                                } else {
                                    out[o] = ref[r] + off[o] * factor[k] * ref[r + 2] * scale
                                    out[o + 1] = ref[r + 1] + off[o + 1] * factor[k] * ref[r + 3] * scale
                                }
                                o += 2
                            }
                        }
                    }
                }
            }
        }
    }

    /// The weighted reads: value [N, S, heads, headDim] (or [N, S, C] and its `columns`: bilinear sampling with the
    /// same points on every level only), locations [N, Q, heads, sum(P_l), 2], weights [N, Q, heads, sum(P_l)] -> [N, Q, d].
    func sample(value v: Tensor, levelShapes: [GridSize], locations: Tensor, weights: Tensor, columns: Range<Int>? = nil) -> Tensor {
        let n = v.shape[0], q = locations.shape[1], h = heads
        let shapes = levelShapes.map { ($0.height, $0.width) }
        if method == .discrete { return MSDeformAttention.discreteSample(value: v, levelShapes: shapes, locations: locations, weights: weights, pointsPerLevel: pointsPerLevel) }
        if let p = uniformPoints {
            return multiScaleDeformableAttention(value: v, levelShapes: shapes, samplingLocations: locations.reshaped([n, q, h, levels, p, 2]),
                                                 attentionWeights: weights.reshaped([n, q, h, levels, p]), columns: columns)
        }
        // Levels of different point counts: one kernel call per level on its own values, summed.
        var sum: Tensor? = nil
        var token = 0, point = 0
        for (l, p) in pointsPerLevel.enumerated() {
            let hw = shapes[l].0 * shapes[l].1
            let vl = slice(v, axis: 1, range: token ..< token + hw)
            let loc = slice(locations, axis: 3, range: point ..< point + p).reshaped([n, q, h, 1, p, 2])
            let wl = slice(weights, axis: 3, range: point ..< point + p).reshaped([n, q, h, 1, p])
            let part = multiScaleDeformableAttention(value: vl, levelShapes: [shapes[l]], samplingLocations: loc, attentionWeights: wl)
            sum = sum.map { $0 + part } ?? part
            token += hw
            point += p
        }
        return sum!
    }

    /// RT-DETRv2's discrete sampling: each point reads the cell `(int(x * W + 0.5), int(y * H + 0.5))` (truncated
    /// toward zero as torch's `.to(int64)`, then clamped into the map), weighted and summed.
    static func discreteSample(value v: Tensor, levelShapes: [(Int, Int)], locations: Tensor, weights: Tensor,
                               pointsPerLevel: [Int]) -> Tensor {
        let n = v.shape[0], s = v.shape[1], h = v.shape[2], dh = v.shape[3], q = locations.shape[1]
        let tp = pointsPerLevel.reduce(0, +)
        var levelOf: [Int] = [], starts: [Int] = []
        var acc = 0
        for (l, p) in pointsPerLevel.enumerated() { levelOf += [Int](repeating: l, count: p) }
        for (hh, ww) in levelShapes { starts.append(acc); acc += hh * ww }
        return Tensor(shape: [n, q, h * dh]) { out in
            out.initialize(repeating: 0)
            v.data.withUnsafeBufferPointer { vp in
                locations.data.withUnsafeBufferPointer { lp in
                    weights.data.withUnsafeBufferPointer { wp in
                        for b in 0 ..< n {
                            for i in 0 ..< q {
                                for head in 0 ..< h {
                                    let dst = ((b * q + i) * h + head) * dh
                                    for k in 0 ..< tp {
                                        let l = levelOf[k], (hl, wl) = levelShapes[l]
                                        let e = ((b * q + i) * h + head) * tp + k
                                        func cell(_ t: Float, _ size: Int) -> Int {
                                            let c = t * Float(size) + 0.5
                                            let trunc = c.isFinite ? Int(Swift.max(Swift.min(c, Float(size)), -1)) : 0
                                            return Swift.min(Swift.max(trunc, 0), size - 1)
                                        }
                                        let x = cell(lp[2 * e], wl), y = cell(lp[2 * e + 1], hl)
                                        let src = ((b * s + starts[l] + y * wl + x) * h + head) * dh
                                        let wgt = wp[e]
                                        for c in 0 ..< dh { out[dst + c] += wgt * vp[src + c] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The probe's [Q, heads, L, maxP, 2] locations and [Q, heads, L, maxP] weights from [Q, heads, sum(P_l), 2] and
    /// [Q, heads, sum(P_l)]; a level's unused slots (per-level counts) sit at the reference point with weight 0.
    func probeLayout(locations: Tensor, weights: Tensor, reference: Tensor) -> (Tensor, Tensor) {
        let q = locations.shape[0], h = heads, l = levels
        if let p = uniformPoints { return (locations.reshaped([q, h, l, p, 2]), weights.reshaped([q, h, l, p])) }
        let mp = pointsPerLevel.max()!, tp = totalPoints, rc = reference.shape.last!
        var loc = [Float](repeating: 0, count: q * h * l * mp * 2), wt = [Float](repeating: 0, count: q * h * l * mp)
        for i in 0 ..< q {
            for head in 0 ..< h {
                var k = 0
                for (lv, p) in pointsPerLevel.enumerated() {
                    let r = reference.rank == 3 ? (i * l + lv) * rc : i * rc
                    for j in 0 ..< mp {
                        let dst = ((i * h + head) * l + lv) * mp + j
                        if j < p {
                            let src = (i * h + head) * tp + k + j
                            loc[2 * dst] = locations.data[2 * src]
                            loc[2 * dst + 1] = locations.data[2 * src + 1]
                            wt[dst] = weights.data[src]
                        } else {
                            loc[2 * dst] = reference.data[r]
                            loc[2 * dst + 1] = reference.data[r + 1]
                        }
                    }
                    k += p
                }
            }
        }
        return (Tensor(shape: [q, h, l, mp, 2], data: loc), Tensor(shape: [q, h, l, mp], data: wt))
    }
}

extension Child where M == MSDeformAttention {
    /// Runs the attention as this child (recorded by the shape pass with its linears as sub-rows): query [N, Q, d],
    /// reference [N, Q, (L,) 2 or 4], value [N, S, d] over `levelShapes` -> output [N, Q, d], locations, weights.
    /// See `MSDeformAttention.attend` for `valueProjected`, `valueColumns`, `queryLevels` (the probe's) and `probeName`.
    public func callAsFunction(query: Tensor, reference: Tensor, value: Tensor, levelShapes: [GridSize], _ ctx: ForwardContext,
                               valueProjected: Bool = false, valueColumns: Range<Int>? = nil, queryLevels: [GridSize]? = nil,
                               probeName: String? = nil, recordsProbe: Bool = true) throws -> MSDeformAttention.Output {
        let call = MSDeformAttention.Call(base: module, levelShapes: levelShapes, valueProjected: valueProjected,
                                          valueColumns: valueColumns, queryLevels: queryLevels, probeName: probeName,
                                          recordsProbe: recordsProbe)
        let out = try ctx.call(call, key: key, [query, reference, value])
        return MSDeformAttention.Output(output: out.main, locations: out.extras["sampling_locations"]!,
                                        weights: out.extras["attention_weights"]!)
    }
}
