import Foundation
import Tensor

/// One Deformable DETR decoder layer (transformers' `DeformableDetrDecoderLayer`): query self-attention
/// (`self_attn`, q = k = x + query_pos) + `self_attn_layer_norm`; multi-scale deformable cross-attention into the
/// encoder output around each query's reference point (`encoder_attn`) + `encoder_attn_layer_norm`; `fc1`, `fc2` +
/// `final_layer_norm` (the key names of a saved file; in memory transformers calls them `mlp.fc1`, `mlp.fc2`).
///
/// x [Q, d], queryPos [Q, d], reference [Q, 2] or [Q, 4], memory [S, d] -> [Q, d], the self-attention
/// [heads, Q, Q] and the cross-attention sampling.
struct DDETRDecoderLayer: Sendable {
    let selfAttn: DDETRSelfAttention
    let selfAttnLayerNorm: DDETRLayerNorm
    let encoderAttn: DDETRMultiscaleDeformableAttention
    let encoderAttnLayerNorm: DDETRLayerNorm
    let mlp: DDETRFeedForward
    let finalLayerNorm: DDETRLayerNorm

    init(scope: WeightScope, config c: DeformableDETRConfig) throws {
        selfAttn = try DDETRSelfAttention(scope: scope.scope("self_attn"), dModel: c.dModel, heads: c.decoderHeads)
        selfAttnLayerNorm = try DDETRLayerNorm(scope: scope.scope("self_attn_layer_norm"), dim: c.dModel)
        encoderAttn = try DDETRMultiscaleDeformableAttention(scope: scope.scope("encoder_attn"), dModel: c.dModel, heads: c.decoderHeads,
                                                    levels: c.numFeatureLevels, points: c.decoderPoints)
        encoderAttnLayerNorm = try DDETRLayerNorm(scope: scope.scope("encoder_attn_layer_norm"), dim: c.dModel)
        mlp = try DDETRFeedForward(scope: scope, dModel: c.dModel, ffn: c.decoderFFNDim, activation: c.activation)
        finalLayerNorm = try DDETRLayerNorm(scope: scope.scope("final_layer_norm"), dim: c.dModel)
    }

    var parameterCount: Int {
        selfAttn.parameterCount + selfAttnLayerNorm.parameterCount + encoderAttn.parameterCount
            + encoderAttnLayerNorm.parameterCount + mlp.parameterCount + finalLayerNorm.parameterCount
    }

    func flops(queries q: Int, tokens s: Int) -> Double {
        selfAttn.flops(queries: q) + encoderAttn.flops(queries: q, values: s) + mlp.flops(rows: q)
    }

    struct Output {
        var hidden: Tensor
        var selfAttention: Tensor
        var cross: DDETRMultiscaleDeformableAttention.Output
    }

    func forward(_ x: Tensor, queryPos: Tensor, reference: Tensor, memory: Tensor, levelShapes: [(Int, Int)]) -> Output {
        let (sa, weights) = selfAttn.forward(x, pos: queryPos)
        var h = selfAttnLayerNorm(x + sa)
        let cross = encoderAttn.forward(query: h + queryPos, input: memory, reference: reference, levelShapes: levelShapes)
        h = encoderAttnLayerNorm(h + cross.output)
        h = finalLayerNorm(h + mlp(h))
        return Output(hidden: h, selfAttention: weights, cross: cross)
    }
}
