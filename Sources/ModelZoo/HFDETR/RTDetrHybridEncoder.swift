import Foundation
import Tensor

// RT-DETR's hybrid encoder in transformers' layout (`RTDetrHybridEncoder`, models/rt_detr/modeling_rt_detr.py):
// AIFI (a transformer encoder on the coarsest map) and CCFM (a top-down FPN then a bottom-up PAN of CSP blocks).
// Zhao et al., "DETRs Beat YOLOs on Real-time Object Detection" (arXiv 2304.08069).

/// `RTDetrConvNormLayer`: Conv2d(bias=False, padding (k-1)/2) + BatchNorm2d (`conv`, `norm`) + activation, folded.
func rtDetrConvNorm(_ w: WeightScope, _ c1: Int, _ c2: Int, k: Int, s: Int, act: Activation, eps: Float) throws -> Conv {
    try Conv(w, c1: c1, c2: c2, k: k, s: s, p: (k - 1) / 2, act: act, eps: eps, keys: ("conv", "norm"),
             weightInit: .kaimingUniform(fanIn: c1 * k * k))
}

/// One `RTDetrEncoderLayer` (AIFI): multi-head self-attention with the 2-D sin-cos position embedding added to
/// queries and keys, then an FFN; post-norm (or pre-norm with normalize_before).
/// Input tokens [T, C] (one image) and the position embedding [T, C] (or none) -> [T, C].
/// Keys: `self_attn.{q,k,v}_proj`, `self_attn.out_proj`, `self_attn_layer_norm`, `fc1`, `fc2`, `final_layer_norm`.
/// Probe: `attention`, the weights per head [heads, T, T] on the map's grid.
public struct RTDetrEncoderLayer: Module {
    let selfAttn: Child<MultiheadAttention>
    let selfAttnLayerNorm: Child<LayerNorm>
    let fc1: Child<Linear>, fc2: Child<Linear>
    let finalLayerNorm: Child<LayerNorm>
    let act: Activation
    let normalizeBefore: Bool
    /// The map's grid, for the attention probe.
    var grid: GridSize?

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let d = c.encoderHiddenDim, std = c.initializerRange
        selfAttn = try Child(w, "self_attn") {
            try MultiheadAttention($0, embedDim: d, heads: c.encoderAttentionHeads, separateProjections: "RTDetrSelfAttention",
                                   weightInit: .normal(mean: 0, std: std))
        }
        selfAttnLayerNorm = try Child(w, "self_attn_layer_norm") { try LayerNorm($0, dim: d, eps: c.layerNormEps) }
        fc1 = try Child(w, "fc1") { try Linear($0, in: d, out: c.encoderFFNDim, weightInit: .normal(mean: 0, std: std), biasInit: .zeros) }
        fc2 = try Child(w, "fc2") { try Linear($0, in: c.encoderFFNDim, out: d, weightInit: .normal(mean: 0, std: std), biasInit: .zeros) }
        finalLayerNorm = try Child(w, "final_layer_norm") { try LayerNorm($0, dim: d, eps: c.layerNormEps) }
        act = c.encoderActivation
        normalizeBefore = c.normalizeBefore
    }

    /// inputs: tokens [T, C], and the position embedding [T, C] when there is one.
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        var x = inputs[0]
        var residual = x
        if normalizeBefore { x = try selfAttnLayerNorm(x, ctx) }
        let qk = inputs.count > 1 ? x + inputs[1] : x
        let attn = try selfAttn([qk, qk, x], ctx)
        if let g = grid, let weights = attn.extras["weights"] {
            ctx.probe("AIFI self-attention per head (query grid -> key grid)", .attention(weights, query: g, key: g), name: "attention")
        }
        x = residual + attn.main
        if !normalizeBefore { x = try selfAttnLayerNorm(x, ctx) }
        if normalizeBefore { x = try finalLayerNorm(x, ctx) }
        residual = x
        x = residual + (try fc2(act.apply(try fc1(x, ctx)), ctx))
        if !normalizeBefore { x = try finalLayerNorm(x, ctx) }
        return LayerOutput(x, extras: attn.extras)
    }
}

/// `RTDetrAIFILayer`: the map [N, C, H, W] flattened to H*W tokens, `layers.{j}` encoder layers, and back.
/// The position embedding is the 2-D sin-cos one of `AIFI` (row block first); transformers leaves it out in eval
/// when the config sets `eval_size`, and so does this.
public struct RTDetrAIFILayer: UnaryModule {
    let layers: [Child<RTDetrEncoderLayer>]
    let channels: Int
    let temperature: Float
    let usePosition: Bool
    public var typeName: String { "AIFI" }

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        layers = try [Child](w, "layers", count: c.encoderLayers) { _, s in try RTDetrEncoderLayer(s, c) }
        channels = c.encoderHiddenDim
        temperature = c.positionalEncodingTemperature
        usePosition = c.evalSize == nil
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: channels, "AIFI")
        guard x.shape[0] == 1 else { throw ModuleInputError("AIFI", "runs one image at a time, got a batch of \(x.shape[0])") }
        let h = x.shape[2], w = x.shape[3]
        var t = transpose(x.reshaped([channels, h * w]), 0, 1)                                  // [HW, C]
        let pos = usePosition ? [AIFI.positionEmbedding(height: h, width: w, channels: channels, temperature: temperature)] : []
        for l in layers {
            var m = l.module
            m.grid = GridSize(h, w)
            t = try ctx.call(m, key: l.key, [t] + pos).main
        }
        return transpose(t, 0, 1).reshaped([1, channels, h, w])
    }
}

/// `RTDetrCSPRepLayer`: conv1 -> 3 RepVGG blocks (3x3 + 1x1 conv-norm branches, summed, activation; folded into one
/// 3x3 conv), plus conv2, summed, then conv3 (identity when hidden == out). [N, 2C, H, W] -> [N, C, H, W].
public struct RTDetrCSPRepLayer: UnaryModule {
    let conv1: Child<Conv>, conv2: Child<Conv>
    let bottlenecks: [Child<Conv>]
    let conv3: Child<Conv>?

    init(_ w: WeightScope, _ c: RTDetrConfig, blocks: Int = 3) throws {
        let cin = 2 * c.encoderHiddenDim, cout = c.encoderHiddenDim, hidden = Int(Double(cout) * c.hiddenExpansion)
        conv1 = try Child(w, "conv1") { try rtDetrConvNorm($0, cin, hidden, k: 1, s: 1, act: c.activation, eps: c.batchNormEps) }
        conv2 = try Child(w, "conv2") { try rtDetrConvNorm($0, cin, hidden, k: 1, s: 1, act: c.activation, eps: c.batchNormEps) }
        bottlenecks = try [Child](w, "bottlenecks", count: blocks) { _, s in
            try makeRepConv(s, c1: hidden, c2: hidden, act: c.activation, norm: "norm", eps: c.batchNormEps)
        }
        conv3 = hidden != cout ? try Child(w, "conv3") { try rtDetrConvNorm($0, hidden, cout, k: 1, s: 1, act: c.activation, eps: c.batchNormEps) } : nil
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var a = try conv1(x, ctx)
        for b in bottlenecks { a = try b(a, ctx) }
        let y = a + (try conv2(x, ctx))
        return try conv3.map { try $0(y, ctx) } ?? y
    }
}

/// `RTDetrHybridEncoder`: AIFI on the maps `encode_proj_layers` names (`encoder.{i}` in the saved file), then CCFM:
/// top-down, `lateral_convs.{i}` (1x1) on the coarser map, 2x nearest upsampling, concat with the finer map,
/// `fpn_blocks.{i}`; bottom-up, `downsample_convs.{i}` (3x3/2), concat, `pan_blocks.{i}`.
/// Inputs: the projected backbone maps, finest first, each [1, C, H_l, W_l]; outputs the same shapes (main: the
/// coarsest, extras "0", "1", ... all of them).
public struct RTDetrHybridEncoder: Module {
    let aifi: [Child<RTDetrAIFILayer>]
    let lateralConvs: [Child<Conv>]
    let fpnBlocks: [Child<RTDetrCSPRepLayer>]
    let downsampleConvs: [Child<Conv>]
    let panBlocks: [Child<RTDetrCSPRepLayer>]
    let encodeProjLayers: [Int]
    public var typeName: String { "RTDetrHybridEncoder" }

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let d = c.encoderHiddenDim, stages = c.encoderInChannels.count - 1
        aifi = c.encoderLayers > 0 ? try [Child](w, "encoder", count: c.encodeProjLayers.count) { _, s in try RTDetrAIFILayer(s, c) } : []
        lateralConvs = try [Child](w, "lateral_convs", count: stages) { _, s in
            try rtDetrConvNorm(s, d, d, k: 1, s: 1, act: c.activation, eps: c.batchNormEps)
        }
        fpnBlocks = try [Child](w, "fpn_blocks", count: stages) { _, s in try RTDetrCSPRepLayer(s, c) }
        downsampleConvs = try [Child](w, "downsample_convs", count: stages) { _, s in
            try rtDetrConvNorm(s, d, d, k: 3, s: 2, act: c.activation, eps: c.batchNormEps)
        }
        panBlocks = try [Child](w, "pan_blocks", count: stages) { _, s in try RTDetrCSPRepLayer(s, c) }
        encodeProjLayers = c.encodeProjLayers
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        var maps = inputs
        for (i, l) in encodeProjLayers.enumerated() where i < aifi.count { maps[l] = try aifi[i](maps[l], ctx) }
        let n = lateralConvs.count
        var fpn = [maps[n]]
        for i in 0 ..< n {
            let top = try lateralConvs[i](fpn[fpn.count - 1], ctx)
            fpn[fpn.count - 1] = top
            let lower = maps[n - i - 1]
            let up = upsampleNearest(top, scale: 2)
            guard up.shape[2] == lower.shape[2], up.shape[3] == lower.shape[3] else {
                throw ModuleInputError(ctx.path + " (RTDetrHybridEncoder)", "the upsampled map \(up.shape) does not match the finer map \(lower.shape): the input's sides must be multiples of the largest stride")
            }
            fpn.append(try fpnBlocks[i](concat([up, lower], axis: 1), ctx))
        }
        fpn.reverse()
        var pan = [fpn[0]]
        for i in 0 ..< n {
            let down = try downsampleConvs[i](pan[pan.count - 1], ctx)
            pan.append(try panBlocks[i](concat([down, fpn[i + 1]], axis: 1), ctx))
        }
        return LayerOutput(pan[pan.count - 1], extras: Dictionary(uniqueKeysWithValues: pan.enumerated().map { (String($0), $1) }))
    }
}
