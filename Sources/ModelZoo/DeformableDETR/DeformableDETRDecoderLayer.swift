import Foundation
import Tensor

/// One Deformable DETR decoder layer (transformers' `DeformableDetrDecoderLayer`): the shared `DETRDecoderLayer`
/// with transformers' init (normal 0.02) and the config's activation, its cross-attention counting its sampling.
/// The feed-forward keys of a saved file are `fc1`, `fc2` (in memory transformers calls them `mlp.fc1`, `mlp.fc2`).
func ddetrDecoderLayer(_ w: WeightScope, _ c: DeformableDETRConfig) throws -> DETRDecoderLayer {
    let options = DETRDecoderLayer.Options(dModel: c.dModel, heads: c.decoderHeads, ffnDim: c.decoderFFNDim,
                                           activation: Activation(huggingFaceName: c.activation) ?? .relu,  // relu, gelu, silu only
                                           initStd: 0.02, selfAttentionType: "DeformableDetrSelfAttention",
                                           typeName: "DeformableDetrDecoderLayer")
    return try DETRDecoderLayer(w, options) {
        try ddetrDeformableAttention($0, dModel: c.dModel, heads: c.decoderHeads, levels: c.numFeatureLevels, points: c.decoderPoints)
    }
}
