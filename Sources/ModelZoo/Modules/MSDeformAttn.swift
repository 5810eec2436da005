import Foundation
import Tensor

/// Multi-scale deformable attention (MSDeformAttn), as RT-DETR's decoder and Deformable DETR use it.
///
/// Zhu et al., "Deformable DETR" (arXiv 2010.04159); ultralytics `ultralytics/nn/modules/transformer.py`
/// `MSDeformAttn` (key names), fundamentalvision/Deformable-DETR `ms_deform_attn.py`.
///
/// Each query looks at only `points` locations per head and level instead of every key: `sampling_offsets`
/// (Linear d -> heads*levels*points*2) moves the points away from the query's reference point,
/// `attention_weights` (Linear d -> heads*levels*points, softmax over levels*points per head) weighs them, and the
/// projected values (`value_proj`) are sampled bilinearly there (align_corners false, zero outside).
/// - 2-d reference points (x, y): `loc = ref + offset / (W_l, H_l)`;
/// - 4-d reference boxes (cx, cy, w, h): `loc = ref_xy + offset / points * ref_wh * 0.5`.
/// Default init (the reference's): offsets weight 0, bias = head direction (cos, sin of 2*pi*h/heads, scaled so
/// the larger component is 1) times (point + 1), so untrained points form rays around the reference point; attention
/// weights 0 (uniform); value/output projections Xavier with zero bias.
///
/// Shapes: query [N, Q, d], reference [N, Q, 2 or 4], value [N, S, d] with S = sum H_l*W_l -> [N, Q, d].
/// Keys: `sampling_offsets`, `attention_weights`, `value_proj`, `output_proj` (`.weight`, `.bias`).
/// Probe: sampling points (reference points, locations [Q, heads, levels, points, 2], weights, level shapes).
/// FLOPs: the four linears, as ultralytics' counter reports; the sampling itself (per query, head, level and
/// point: 4 bilinear taps and one weighting per value channel) is not in that count and is given by `samplingFlops`.
public struct MSDeformAttn: Sendable {
    public let dModel: Int, levels: Int, heads: Int, points: Int
    public let samplingOffsets: Linear, attentionWeights: Linear
    public let valueProj: Linear, outputProj: Linear

    public init(_ w: WeightScope, dModel d: Int = 256, levels: Int = 4, heads: Int = 8, points: Int = 4) throws {
        guard heads > 0, d % heads == 0 else { throw ModuleInputError("MSDeformAttn", "d_model (\(d)) must be divisible by n_heads (\(heads))") }
        guard levels > 0, points > 0 else { throw ModuleInputError("MSDeformAttn", "levels and points must be positive") }
        dModel = d
        self.levels = levels
        self.heads = heads
        self.points = points
        let nOff = heads * levels * points * 2
        samplingOffsets = try Linear(w.scope("sampling_offsets"), in: d, out: nOff, weightInit: .zeros,
                                       biasInit: .value(MSDeformAttn.gridInit(heads: heads, levels: levels, points: points)))
        attentionWeights = try Linear(w.scope("attention_weights"), in: d, out: heads * levels * points, weightInit: .zeros, biasInit: .zeros)
        valueProj = try Linear(w.scope("value_proj"), in: d, out: d, weightInit: .xavierUniform(fanIn: d, fanOut: d), biasInit: .zeros)
        outputProj = try Linear(w.scope("output_proj"), in: d, out: d, weightInit: .xavierUniform(fanIn: d, fanOut: d), biasInit: .zeros)
    }

    /// The reference's grid init of the sampling-offset bias, [heads * levels * points * 2].
    public static func gridInit(heads: Int, levels: Int, points: Int) -> Tensor {
        var data: [Float] = []
        data.reserveCapacity(heads * levels * points * 2)
        for h in 0 ..< heads {
            let theta = Float(h) * (2 * Float.pi / Float(heads))
            let cx = Foundation.cos(theta), cy = Foundation.sin(theta)
            let m = max(Swift.abs(cx), Swift.abs(cy))
            for _ in 0 ..< levels {
                for p in 0 ..< points {
                    data.append(cx / m * Float(p + 1))
                    data.append(cy / m * Float(p + 1))
                }
            }
        }
        return Tensor(shape: [data.count], data: data)
    }

    public var parameterCount: Int {
        samplingOffsets.parameterCount + attentionWeights.parameterCount + valueProj.parameterCount + outputProj.parameterCount
    }

    /// thop's count: the four linears (value_proj over S tokens, the others over Q).
    public func flops(queries q: Int, valueLength s: Int) -> Double {
        valueProj.flops(tokens: s) + samplingOffsets.flops(tokens: q) + attentionWeights.flops(tokens: q) + outputProj.flops(tokens: q)
    }

    /// The sampling ignored by thop: 2 x Q x heads x levels x points x headDim x (4 taps + 1 weighting).
    public func samplingFlops(queries q: Int) -> Double {
        2 * Double(q * heads * levels * points * (dModel / heads) * 5)
    }

    /// Runs the attention; records the sampling points of batch element 0 under `ctx` (or its child `probeName`).
    /// `valueProjected`: `value` already went through `value_proj` (RT-DETR's decoder projects the features for all
    /// its layers in one product).
    public func forward(query: Tensor, reference: Tensor, value: Tensor, levelShapes: [GridSize], _ ctx: ForwardContext,
                        queryLevels: [GridSize]? = nil, probeName: String? = nil, valueProjected: Bool = false) throws -> Tensor {
        guard query.rank == 3, query.shape[2] == dModel else { throw ModuleInputError("MSDeformAttn", "query must be [N, Q, \(dModel)], got \(query.shape)") }
        guard value.rank == 3, value.shape[2] == dModel, value.shape[0] == query.shape[0] else {
            throw ModuleInputError("MSDeformAttn", "value must be [N, S, \(dModel)], got \(value.shape)")
        }
        guard levelShapes.count == levels else { throw ModuleInputError("MSDeformAttn", "expects \(levels) levels, got \(levelShapes.count)") }
        let total = levelShapes.reduce(0) { $0 + $1.count }
        guard total == value.shape[1] else {
            throw ModuleInputError("MSDeformAttn", "value length \(value.shape[1]) does not match the level shapes (sum H*W = \(total))")
        }
        let n = query.shape[0], q = query.shape[1], r = reference.shape.last ?? 0
        guard reference.rank == 3, reference.shape[0] == n, reference.shape[1] == q, r == 2 || r == 4 else {
            throw ModuleInputError("MSDeformAttn", "reference points must be [N, Q, 2] or [N, Q, 4], got \(reference.shape)")
        }
        let h = heads, l = levels, p = points, dh = dModel / heads
        let v = (valueProjected ? value : valueProj(value)).reshaped([n, value.shape[1], h, dh])
        let offsets = samplingOffsets(query).reshaped([n, q, h, l, p, 2])
        let weights = softmax(attentionWeights(query).reshaped([n, q, h, l * p]), axis: -1).reshaped([n, q, h, l, p])
        let locations: Tensor
        if r == 2 {
            // offset / (W_l, H_l) per level
            var norm: [Float] = []
            for s in levelShapes { norm += [1 / Float(s.width), 1 / Float(s.height)] }
            let normaliser = Tensor(shape: [1, 1, 1, l, 1, 2], data: norm)
            locations = reference.reshaped([n, q, 1, 1, 1, 2]) + offsets * normaliser
        } else {
            let xy = slice(reference, axis: 2, range: 0 ..< 2).reshaped([n, q, 1, 1, 1, 2])
            let wh = slice(reference, axis: 2, range: 2 ..< 4).reshaped([n, q, 1, 1, 1, 2])
            locations = xy + offsets * wh * (0.5 / Float(p))
        }
        let out = multiScaleDeformableAttention(value: v, levelShapes: levelShapes.map { ($0.height, $0.width) },
                                                samplingLocations: locations, attentionWeights: weights)
        if ctx.trace != nil {
            ctx.probe("sampling points", .sampling(SamplingPoints(
                referencePoints: unbatched(slice(reference, axis: 0, range: 0 ..< 1)),
                locations: unbatched(slice(locations, axis: 0, range: 0 ..< 1)),
                weights: unbatched(slice(weights, axis: 0, range: 0 ..< 1)),
                levelShapes: levelShapes, queryLevels: queryLevels)), name: probeName)
        }
        return outputProj(out)
    }
}

/// MSDeformAttn run alone on one feature map, as the module catalogue entry shows it: the map [1, d, H, W] and
/// `levels - 1` 2x average-pooled copies form the value pyramid; every pixel of every level is a query (its own
/// feature, no position embedding) with its pixel centre as 2-d reference point, as in Deformable DETR's encoder.
/// Output: the attended features of the finest level, [N, d, H, W]. Keys as `MSDeformAttn`. Probe: the sampling
/// points of every pixel query under `<path>.sampling` (queries ordered level by level, row-major).
public struct MSDeformAttnLayer: Layer {
    public let attn: MSDeformAttn

    public init(_ w: WeightScope, dModel d: Int = 256, levels: Int = 4, heads: Int = 8, points: Int = 4) throws {
        attn = try MSDeformAttn(w, dModel: d, levels: levels, heads: heads, points: points)
    }

    public var parameterCount: Int { attn.parameterCount }

    func levelShapes(_ h: Int, _ w: Int) -> [GridSize] {
        var shapes = [GridSize(h, w)]
        while shapes.count < attn.levels {
            let last = shapes[shapes.count - 1]
            shapes.append(GridSize(max(last.height / 2, 1), max(last.width / 2, 1)))
        }
        return shapes
    }

    public func flops(inputShape s: [Int]) -> Double {
        let total = levelShapes(s[2], s[3]).reduce(0) { $0 + $1.count }
        return Double(s[0]) * attn.flops(queries: total, valueLength: total)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: attn.dModel, "MSDeformAttn")
        let n = x.shape[0], d = attn.dModel
        let shapes = levelShapes(x.shape[2], x.shape[3])
        let minSide = 1 << (attn.levels - 1)
        guard x.shape[2] >= minSide, x.shape[3] >= minSide else {
            throw ModuleInputError("MSDeformAttn", "a \(attn.levels)-level pyramid needs a map of at least \(minSide)x\(minSide), got \(x.shape[2])x\(x.shape[3])")
        }
        var maps = [x]
        for _ in shapes.dropFirst() { maps.append(avgPool2d(maps[maps.count - 1], kernel: 2, stride: 2)) }
        // [N, d, H, W] -> [N, H*W, d], levels concatenated
        let value = concat(maps.map { permute($0.reshaped([n, d, -1]), [0, 2, 1]) }, axis: 1)
        var refs: [Float] = []
        for s in shapes {
            for yy in 0 ..< s.height { for xx in 0 ..< s.width { refs += [(Float(xx) + 0.5) / Float(s.width), (Float(yy) + 0.5) / Float(s.height)] } }
        }
        let total = refs.count / 2
        let reference = concat([Tensor](repeating: Tensor(shape: [1, total, 2], data: refs), count: n), axis: 0)
        let out = try attn.forward(query: value, reference: reference, value: value, levelShapes: shapes, ctx, queryLevels: shapes,
                                   probeName: "sampling")
        let first = slice(out, axis: 1, range: 0 ..< shapes[0].count)                 // [N, HW, d]
        return permute(first, [0, 2, 1]).reshaped([n, d, shapes[0].height, shapes[0].width])
    }
}
