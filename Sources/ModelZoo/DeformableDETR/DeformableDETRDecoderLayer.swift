import Foundation
import Tensor

/// One Deformable DETR decoder layer (transformers' `DeformableDetrDecoderLayer`): query self-attention
/// (`self_attn`, q = k = x + query_pos, separate q/k/v/out projections) + `self_attn_layer_norm`; multi-scale
/// deformable cross-attention into the encoder output around each query's reference point (`encoder_attn`) +
/// `encoder_attn_layer_norm`; `fc1`, `fc2` + `final_layer_norm` (the key names of a saved file; in memory
/// transformers calls them `mlp.fc1`, `mlp.fc2`).
///
/// Inputs x [1, Q, d], queryPos [1, Q, d], reference [1, Q, 2 or 4], memory [1, S, d], level shapes [L, 2] ->
/// [1, Q, d]; extras: the self-attention `self_attention` [heads, Q, Q] and the cross-attention's
/// `sampling_locations` and `attention_weights`.
struct DDETRDecoderLayer: DDETRFeedForwardLayer {
    let selfAttn: Child<MultiheadAttention>
    let selfAttnLayerNorm: Child<LayerNorm>
    let encoderAttn: Child<MSDeformAttention>
    let encoderAttnLayerNorm: Child<LayerNorm>
    let fc1: Child<Linear>, fc2: Child<Linear>
    let finalLayerNorm: Child<LayerNorm>
    let activation: Activation

    init(scope w: WeightScope, config c: DeformableDETRConfig) throws {
        selfAttn = try Child(w, "self_attn") {
            try MultiheadAttention($0, embedDim: c.dModel, heads: c.decoderHeads, separateProjections: "DeformableDetrSelfAttention",
                                   weightInit: .normal(mean: 0, std: 0.02))
        }
        selfAttnLayerNorm = try Child(w, "self_attn_layer_norm") { try LayerNorm($0, dim: c.dModel) }
        encoderAttn = try Child(w, "encoder_attn") {
            try ddetrDeformableAttention($0, dModel: c.dModel, heads: c.decoderHeads, levels: c.numFeatureLevels, points: c.decoderPoints)
        }
        encoderAttnLayerNorm = try Child(w, "encoder_attn_layer_norm") { try LayerNorm($0, dim: c.dModel) }
        (fc1, fc2, finalLayerNorm) = try Self.feedForward(w, dModel: c.dModel, ffn: c.decoderFFNDim)
        activation = Activation(huggingFaceName: c.activation) ?? .relu  // the config admits relu, gelu, silu only
    }

    var typeName: String { "DeformableDetrDecoderLayer" }
    var attention: MSDeformAttention { encoderAttn.module }

    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let x = inputs[0], queryPos = inputs[1], reference = inputs[2], memory = inputs[3]
        let shapes = ddetrLevelShapes(inputs[4]).map { GridSize($0.0, $0.1) }
        let q = x.shape[1], d = x.shape[2]
        let x2 = x.reshaped([q, d]), qk = x2 + queryPos.reshaped([q, d])
        let sa = try selfAttn([qk, qk, x2], ctx)
        var h = try selfAttnLayerNorm(x2 + sa.main, ctx).reshaped([1, q, d])
        let cross = try encoderAttn(query: h + queryPos, reference: reference, value: memory, levelShapes: shapes, ctx)
        h = try feedForward(encoderAttnLayerNorm(h + cross.output, ctx), ctx)
        var extras = ["sampling_locations": cross.locations, "attention_weights": cross.weights]
        if let w = sa.extras["weights"] { extras["self_attention"] = w }
        return LayerOutput(h, extras: extras)
    }
}
