import Foundation
import Tensor

/// Multi-scale deformable attention (Zhu et al., Deformable DETR, arXiv 2010.04159, eq. 2), in the layout of
/// transformers' `DeformableDetrMultiscaleDeformableAttention`: `value_proj`, `sampling_offsets`,
/// `attention_weights`, `output_proj`.
///
/// query [Q, d] (position embedding already added), input [S, d] (the flattened levels), reference points [Q, 2]
/// (x, y) or [Q, 4] (cx, cy, w, h), normalised -> output [Q, d], plus the sampling locations
/// [1, Q, heads, levels, points, 2] and softmaxed weights [1, Q, heads, levels, points].
///
/// Locations: 2-d references: ref + offset / (W_l, H_l); 4-d: ref_xy + offset / points * ref_wh * 0.5.
/// Default init (transformers' `_init_weights`): offsets weight 0, bias the per-head grid direction
/// (cos, sin of 2*pi*h/heads over its largest component) times point index + 1; attention weights 0;
/// value/output projections xavier uniform with zero bias.
struct DDETRMultiscaleDeformableAttention: Sendable {
    let dModel: Int, heads: Int, levels: Int, points: Int
    let samplingOffsetsWeight: Tensor, samplingOffsetsBias: Tensor
    let attentionWeightsWeight: Tensor, attentionWeightsBias: Tensor
    let valueProjWeight: Tensor, valueProjBias: Tensor
    let outputProjWeight: Tensor, outputProjBias: Tensor

    init(scope: WeightScope, dModel d: Int, heads h: Int, levels l: Int, points p: Int) throws {
        dModel = d; heads = h; levels = l; points = p
        let so = scope.scope("sampling_offsets"), aw = scope.scope("attention_weights")
        let vp = scope.scope("value_proj"), op = scope.scope("output_proj")
        samplingOffsetsWeight = try so.tensor("weight", shape: [h * l * p * 2, d], init: .zeros)
        samplingOffsetsBias = try so.tensor("bias", shape: [h * l * p * 2], init: .value(DDETRMultiscaleDeformableAttention.gridInit(heads: h, levels: l, points: p)))
        attentionWeightsWeight = try aw.tensor("weight", shape: [h * l * p, d], init: .zeros)
        attentionWeightsBias = try aw.tensor("bias", shape: [h * l * p], init: .zeros)
        valueProjWeight = try vp.tensor("weight", shape: [d, d], init: .xavierUniform(fanIn: d, fanOut: d))
        valueProjBias = try vp.tensor("bias", shape: [d], init: .zeros)
        outputProjWeight = try op.tensor("weight", shape: [d, d], init: .xavierUniform(fanIn: d, fanOut: d))
        outputProjBias = try op.tensor("bias", shape: [d], init: .zeros)
    }

    /// The sampling offsets bias of transformers' init: [heads, levels, points, 2] flattened.
    static func gridInit(heads: Int, levels: Int, points: Int) -> Tensor {
        var out: [Float] = []
        out.reserveCapacity(heads * levels * points * 2)
        for h in 0 ..< heads {
            // The angle is computed in float32 like torch (arange(h) * (2*pi/heads)).
            let theta = Float(h) * Float(2.0 * Double.pi / Double(heads))
            let c = Foundation.cos(theta), s = Foundation.sin(theta)
            let m = Swift.max(Swift.abs(c), Swift.abs(s))
            for _ in 0 ..< levels {
                for p in 0 ..< points {
                    out.append(c / m * Float(p + 1))
                    out.append(s / m * Float(p + 1))
                }
            }
        }
        return Tensor(shape: [heads * levels * points * 2], data: out)
    }

    var parameterCount: Int {
        let d = dModel, n = heads * levels * points
        return (2 * n * d + 2 * n) + (n * d + n) + 2 * (d * d + d)
    }

    /// FLOPs for `queries` queries over `values` value positions: the four linears, the softmax (ignored), and the
    /// sampling: per query, head, level and point a bilinear interpolation (4 multiply-adds a channel) and its
    /// weighting (1 multiply-add a channel).
    func flops(queries: Int, values: Int) -> Double {
        let d = Double(dModel), n = Double(heads * levels * points), q = Double(queries)
        let linears = 2 * q * d * (3 * n) + 2 * Double(values) * d * d + 2 * q * d * d
        let sampling = q * n * Double(dModel / heads) * 10
        return linears + sampling
    }

    struct Output {
        var output: Tensor            // [Q, d]
        var locations: Tensor         // [1, Q, heads, levels, points, 2]
        var weights: Tensor           // [1, Q, heads, levels, points]
    }

    /// - query: [Q, d] with the position embedding added; input: [S, d]; reference: [Q, 2] or [Q, 4] (shared by all
    ///   levels: a single unpadded image has valid ratios of 1).
    func forward(query: Tensor, input: Tensor, reference: Tensor, levelShapes: [(Int, Int)]) -> Output {
        let q = query.shape[0], s = input.shape[0], hd = dModel / heads
        // value [S, d] -> [1, S, heads, hd]
        let value = linear(input, weight: valueProjWeight, bias: valueProjBias).reshaped([1, s, heads, hd])
        let offsets = linear(query, weight: samplingOffsetsWeight, bias: samplingOffsetsBias) // [Q, heads*L*P*2]
        // [Q, heads, L*P] softmax per head -> [1, Q, heads, L, P]
        let logits = linear(query, weight: attentionWeightsWeight, bias: attentionWeightsBias).reshaped([q, heads, levels * points])
        let weights = softmax(logits, axis: -1).reshaped([1, q, heads, levels, points])
        let locations = DDETRMultiscaleDeformableAttention.samplingLocations(
            offsets: offsets, reference: reference, heads: heads, levels: levels, points: points, levelShapes: levelShapes)
        let sampled = multiScaleDeformableAttention(value: value, levelShapes: levelShapes, samplingLocations: locations, attentionWeights: weights)
        let out = linear(sampled.reshaped([q, dModel]), weight: outputProjWeight, bias: outputProjBias)
        return Output(output: out, locations: locations, weights: weights)
    }

    /// Sampling locations [1, Q, heads, levels, points, 2] from offsets [Q, heads*levels*points*2] and references
    /// [Q, 2] or [Q, 4], in transformers' order of operations.
    static func samplingLocations(offsets: Tensor, reference: Tensor, heads: Int, levels: Int, points: Int, levelShapes: [(Int, Int)]) -> Tensor {
        let q = reference.shape[0], rc = reference.shape[1]
        precondition(rc == 2 || rc == 4, "reference points must have 2 or 4 coordinates, got \(reference.shape)")
        let per = heads * levels * points * 2
        let widths = levelShapes.map { Float($0.1) }, heights = levelShapes.map { Float($0.0) }
        let pts = Float(points)
        return Tensor(shape: [1, q, heads, levels, points, 2]) { out in
            offsets.data.withUnsafeBufferPointer { off in
                reference.data.withUnsafeBufferPointer { ref in
                    for i in 0 ..< q {
                        let r = i * rc
                        let rx = ref[r], ry = ref[r + 1]
                        var o = i * per
                        for _ in 0 ..< heads {
                            for l in 0 ..< levels {
                                for _ in 0 ..< points {
                                    if rc == 2 {
                                        out[o] = rx + off[o] / widths[l]
                                        out[o + 1] = ry + off[o + 1] / heights[l]
                                    } else {
                                        let rw = ref[r + 2], rh = ref[r + 3]
                                        out[o] = rx + off[o] / pts * rw * 0.5
                                        out[o + 1] = ry + off[o + 1] / pts * rh * 0.5
                                    }
                                    o += 2
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
