import Foundation
import Tensor

/// One Deformable DETR encoder layer (transformers' `DeformableDetrEncoderLayer`): multi-scale deformable
/// self-attention of every pixel of every level (its reference point is itself), add & `self_attn_layer_norm`,
/// feed-forward `fc1`, `fc2`, add & `final_layer_norm` (post-norm).
///
/// Inputs x [1, S, d], pos [1, S, d] (sine + level embedding), reference [1, S, 2], level shapes [L, 2] (H, W rows)
/// -> [1, S, d], with the sampling of every query in the extras (`sampling_locations`, `attention_weights`) and, as
/// the attention's probe, under `<path>.self_attn` (the layer table's sub-row).
/// FLOPs: its children's (the attention's linears and sampling, the FFN linears, the layer norms) and its own two
/// residual sums.
struct DDETREncoderLayer: Module {
    let selfAttn: Child<MSDeformAttention>
    let selfAttnLayerNorm: Child<LayerNorm>
    let fc1: Child<Linear>, fc2: Child<Linear>
    let finalLayerNorm: Child<LayerNorm>
    let activation: Activation

    init(scope w: WeightScope, config c: DeformableDETRConfig) throws {
        selfAttn = try Child(w, "self_attn") {
            try ddetrDeformableAttention($0, dModel: c.dModel, heads: c.encoderHeads, levels: c.numFeatureLevels, points: c.encoderPoints)
        }
        selfAttnLayerNorm = try Child(w, "self_attn_layer_norm") { try LayerNorm($0, dim: c.dModel) }
        fc1 = try Child(w, "fc1") { try ddetrLinear($0, in: c.dModel, out: c.encoderFFNDim) }
        fc2 = try Child(w, "fc2") { try ddetrLinear($0, in: c.encoderFFNDim, out: c.dModel) }
        finalLayerNorm = try Child(w, "final_layer_norm") { try LayerNorm($0, dim: c.dModel) }
        activation = Activation(huggingFaceName: c.activation) ?? .relu  // the config admits relu, gelu, silu only
    }

    var typeName: String { "DeformableDetrEncoderLayer" }
    var attention: MSDeformAttention { selfAttn.module }

    func ownFlops(inputs: [[Int]], output: [Int]) -> Double { 2 * 2 * Double(output.reduce(1, *)) }

    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let x = inputs[0], pos = inputs[1], reference = inputs[2]
        let shapes = try levelGrids(inputs[3])
        let attn = try selfAttn(query: x + pos, reference: reference, value: x, levelShapes: shapes, ctx, queryLevels: shapes)
        let h = try selfAttnLayerNorm(x + attn.output, ctx)
        let out = try finalLayerNorm(h + fc2(activation.apply(fc1(h, ctx)), ctx), ctx)
        return LayerOutput(out, extras: ["sampling_locations": attn.locations, "attention_weights": attn.weights])
    }
}
