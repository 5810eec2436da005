import Foundation
import Tensor

/// One Deformable DETR encoder layer (transformers' `DeformableDetrEncoderLayer`): multi-scale deformable
/// self-attention of every pixel of every level (its reference point is itself), add & `self_attn_layer_norm`,
/// feed-forward `fc1`, `fc2`, add & `final_layer_norm` (post-norm).
///
/// x [S, d], pos [S, d] (sine + level embedding), reference [S, 2] -> [S, d] and the sampling of every query.
struct DDETREncoderLayer: Sendable {
    let selfAttn: DDETRMultiscaleDeformableAttention
    let selfAttnLayerNorm: DDETRLayerNorm
    let mlp: DDETRFeedForward
    let finalLayerNorm: DDETRLayerNorm

    init(scope: WeightScope, config c: DeformableDETRConfig) throws {
        selfAttn = try DDETRMultiscaleDeformableAttention(scope: scope.scope("self_attn"), dModel: c.dModel, heads: c.encoderHeads,
                                                 levels: c.numFeatureLevels, points: c.encoderPoints)
        selfAttnLayerNorm = try DDETRLayerNorm(scope: scope.scope("self_attn_layer_norm"), dim: c.dModel)
        mlp = try DDETRFeedForward(scope: scope, dModel: c.dModel, ffn: c.encoderFFNDim, activation: c.activation)
        finalLayerNorm = try DDETRLayerNorm(scope: scope.scope("final_layer_norm"), dim: c.dModel)
    }

    var parameterCount: Int {
        selfAttn.parameterCount + selfAttnLayerNorm.parameterCount + mlp.parameterCount + finalLayerNorm.parameterCount
    }

    func flops(tokens s: Int) -> Double {
        selfAttn.flops(queries: s, values: s) + mlp.flops(rows: s) + Double(s * selfAttn.dModel) * 2 * 2 // residual sums
    }

    func forward(_ x: Tensor, pos: Tensor, reference: Tensor, levelShapes: [(Int, Int)]) -> (Tensor, DDETRMultiscaleDeformableAttention.Output) {
        let attn = selfAttn.forward(query: x + pos, input: x, reference: reference, levelShapes: levelShapes)
        var h = selfAttnLayerNorm(x + attn.output)
        h = finalLayerNorm(h + mlp(h))
        return (h, attn)
    }
}
