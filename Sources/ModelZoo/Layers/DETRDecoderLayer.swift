import Foundation
import Tensor

/// The decoder layer of the deformable DETRs, one module for transformers' `DeformableDetrDecoderLayer`,
/// `RTDetrDecoderLayer` (RT-DETRv2's too) and `DFineDecoderLayer`, which differ only in their options:
/// self-attention among the queries (positions added to queries and keys; separate q/k/v/out projections), post-norm;
/// multi-scale deformable cross-attention into the encoder's levels around each query's reference (`encoder_attn`,
/// built by the caller), then post-norm (`encoder_attn_layer_norm`) or D-FINE's gate (`gateway`: sigmoid gates over
/// [residual, attention], LayerNorm of their weighted sum); the feed-forward `fc1`, activation, `fc2`, residual,
/// post-norm `final_layer_norm` (D-FINE clamps to the float16 range before it).
///
/// Inputs: hidden [(1,) Q, d], query position [(1,) Q, d], references [(1,) Q, 2 or 4] (points or cx, cy, w, h in
/// [0, 1]), memory [(1,) S, d], level shapes [L, 2] as (H, W) rows. Output: the hidden state in the input's shape, with
/// the cross-attention's `sampling_locations` and `attention_weights` in the extras.
/// Probes: `self_attn` [heads, Q, Q] on the layer; `encoder_attn` (the sampling points, the attention's own).
/// Keys (as saved): `self_attn.{q,k,v,out}_proj`, `self_attn_layer_norm`, `encoder_attn.*`, `encoder_attn_layer_norm` or
/// `gateway.{gate,norm}`, `fc1`, `fc2`, `final_layer_norm`.
public struct DETRDecoderLayer: Module {
    /// What tells the layers of the three families apart.
    struct Options {
        var dModel: Int, heads: Int, ffnDim: Int
        var activation: Activation
        var layerNormEps: Float = 1e-5
        /// The standard deviation of the linears' normal init (transformers' init_std / initializer_range).
        var initStd: Float
        /// transformers' class name of the self-attention ("DeformableDetrSelfAttention", ...).
        var selfAttentionType: String
        /// D-FINE: the gate after the cross-attention, and the clamp before the last norm.
        var gated = false
        var typeName: String
    }

    let selfAttn: Child<MultiheadAttention>
    let selfAttnLayerNorm: Child<LayerNorm>
    let encoderAttn: Child<MSDeformAttention>
    let encoderAttnLayerNorm: Child<LayerNorm>?
    let gateway: Child<DFineGate>?
    let fc1: Child<Linear>, fc2: Child<Linear>
    let finalLayerNorm: Child<LayerNorm>
    let act: Activation
    let clampsBeforeNorm: Bool
    public let typeName: String

    /// The layer under `w`, its cross-attention made by `attention` under `encoder_attn`.
    init(_ w: WeightScope, _ o: Options, attention: (WeightScope) throws -> MSDeformAttention) throws {
        let d = o.dModel, eps = o.layerNormEps
        func linear(_ s: WeightScope, _ i: Int, _ out: Int) throws -> Linear {
            try Linear(s, in: i, out: out, weightInit: .normal(mean: 0, std: o.initStd), biasInit: .zeros)
        }
        selfAttn = try Child(w, "self_attn") {
            try MultiheadAttention($0, embedDim: d, heads: o.heads, separateProjections: o.selfAttentionType,
                                   weightInit: .normal(mean: 0, std: o.initStd))
        }
        selfAttnLayerNorm = try Child(w, "self_attn_layer_norm") { try LayerNorm($0, dim: d, eps: eps) }
        encoderAttn = try Child(w, "encoder_attn", attention)
        encoderAttnLayerNorm = o.gated ? nil : try Child(w, "encoder_attn_layer_norm") { try LayerNorm($0, dim: d, eps: eps) }
        gateway = o.gated ? try Child(w, "gateway") { try DFineGate($0, dModel: d, eps: eps) } : nil
        clampsBeforeNorm = o.gated
        fc1 = try Child(w, "fc1") { try linear($0, d, o.ffnDim) }
        fc2 = try Child(w, "fc2") { try linear($0, o.ffnDim, d) }
        finalLayerNorm = try Child(w, "final_layer_norm") { try LayerNorm($0, dim: d, eps: eps) }
        act = o.activation
        typeName = o.typeName
    }

    var attention: MSDeformAttention { encoderAttn.module }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        guard inputs.count == 5 else { throw ModuleInputError(ctx.path, "takes hidden, query position, references, memory and level shapes") }
        let shapes = try levelGrids(inputs[4])
        let d = inputs[0].shape.last ?? 0, r = inputs[2].shape.last ?? 0
        guard d > 0, r > 0 else { throw ModuleInputError(ctx.path, "hidden \(inputs[0].shape) and references \(inputs[2].shape) need a last dimension") }
        let q = inputs[0].shape.reduce(1, *) / d, s = inputs[3].shape.reduce(1, *) / d
        let h = inputs[0].reshaped([q, d]), pos = inputs[1].reshaped([q, d])
        let qk = h + pos
        let sa = try selfAttn([qk, qk, h], ctx)
        if let weights = sa.extras["weights"] {
            ctx.probe("query self-attention per head [heads, Q, Q]", .attention(weights, query: GridSize(1, q), key: GridSize(1, q)), name: "self_attn")
        }
        var x = try selfAttnLayerNorm(h + sa.main, ctx)
        let cross = try encoderAttn(query: (x + pos).reshaped([1, q, d]), reference: inputs[2].reshaped([1, q, r]),
                                    value: inputs[3].reshaped([1, s, d]), levelShapes: shapes, ctx)
        if let gateway {
            x = try gateway([x, cross.output.reshaped([q, d])], ctx).main
        } else if let encoderAttnLayerNorm {
            x = try encoderAttnLayerNorm(x + cross.output.reshaped([q, d]), ctx)
        }
        let ffn = x + (try fc2(act.apply(try fc1(x, ctx)), ctx))
        x = try finalLayerNorm(clampsBeforeNorm ? clamp(ffn, min: -65504, max: 65504) : ffn, ctx)
        return LayerOutput(x.reshaped(inputs[0].shape), extras: ["sampling_locations": cross.locations, "attention_weights": cross.weights])
    }
}

/// Level shapes as the [L, 2] tensor of (H, W) rows the deformable DETR modules take among their inputs (so that a
/// module's call carries them, in the forward and in the shape pass alike).
func levelShapesTensor(_ shapes: [GridSize]) -> Tensor {
    Tensor(shape: [shapes.count, 2], data: shapes.flatMap { [Float($0.height), Float($0.width)] })
}

/// The level shapes back from that tensor (an error, not a crash, when a caller passed something else).
func levelGrids(_ t: Tensor) throws -> [GridSize] {
    guard !t.isShapeOnly, t.rank == 2, t.shape[1] == 2, t.count == t.data.count else {
        throw ModuleInputError("level shapes", "expected an [L, 2] tensor of (H, W) rows with its values, got \(t.shape)\(t.isShapeOnly ? " (shape only)" : "")")
    }
    return (0 ..< t.shape[0]).map { GridSize(Int(t.data[2 * $0]), Int(t.data[2 * $0 + 1])) }
}
