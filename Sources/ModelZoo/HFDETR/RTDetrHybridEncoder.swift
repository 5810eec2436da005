import Foundation
import Tensor

// RT-DETR's hybrid encoder in transformers' layout (`RTDetrHybridEncoder`, models/rt_detr/modeling_rt_detr.py):
// AIFI (a transformer encoder on the coarsest map) and CCFM (a top-down FPN then a bottom-up PAN of CSP blocks).
// Zhao et al., "DETRs Beat YOLOs on Real-time Object Detection" (arXiv 2304.08069).

/// `RTDetrConvNormLayer` / `DFineConvNormLayer`: Conv2d(bias=False, padding (k-1)/2, groups) + BatchNorm2d (`conv`,
/// `norm`) + activation, folded. Default init: PyTorch's (RT-DETR) or `std`'s normal (D-FINE's `_init_weights`).
func rtDetrConvNorm(_ w: WeightScope, _ c1: Int, _ c2: Int, k: Int, s: Int, g: Int = 1, act: Activation, eps: Float, std: Float? = nil) throws -> Conv {
    try Conv(w, c1: c1, c2: c2, k: k, s: s, p: (k - 1) / 2, g: g, act: act, eps: eps, keys: ("conv", "norm"),
             weightInit: std.map { .normal(mean: 0, std: $0) } ?? .kaimingUniform(fanIn: c1 / g * k * k))
}

extension RTDetrConfig {
    /// The conv init of the hybrid encoder's blocks: D-FINE's `_init_weights` draws normal(0, initializer_range).
    var convInitStd: Float? { isDFine ? initializerRange : nil }
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

/// `RTDetrCSPRepLayer` / `DFineCSPRepLayer`: conv1 -> `blocks` RepVGG blocks (3x3 + 1x1 conv-norm branches, summed,
/// activation; folded into one 3x3 conv), plus conv2, summed, then conv3 (identity when hidden == out).
/// [N, in, H, W] -> [N, out, H, W]; RT-DETR's hybrid encoder: in 2C, out C, 3 blocks, hidden_expansion.
public struct RTDetrCSPRepLayer: UnaryModule {
    let conv1: Child<Conv>, conv2: Child<Conv>
    let bottlenecks: [Child<Conv>]
    let conv3: Child<Conv>?
    public let typeName: String

    init(_ w: WeightScope, _ c: RTDetrConfig, blocks: Int = 3) throws {
        try self.init(w, c, in: 2 * c.encoderHiddenDim, out: c.encoderHiddenDim, blocks: blocks, expansion: c.hiddenExpansion)
    }

    init(_ w: WeightScope, _ c: RTDetrConfig, in cin: Int, out cout: Int, blocks: Int, expansion: Double) throws {
        let hidden = Int(Double(cout) * expansion), std = c.convInitStd
        conv1 = try Child(w, "conv1") { try rtDetrConvNorm($0, cin, hidden, k: 1, s: 1, act: c.activation, eps: c.batchNormEps, std: std) }
        conv2 = try Child(w, "conv2") { try rtDetrConvNorm($0, cin, hidden, k: 1, s: 1, act: c.activation, eps: c.batchNormEps, std: std) }
        bottlenecks = try [Child](w, "bottlenecks", count: blocks) { _, s in
            try makeRepConv(s, c1: hidden, c2: hidden, act: c.activation, norm: "norm", eps: c.batchNormEps)
        }
        conv3 = hidden != cout ? try Child(w, "conv3") { try rtDetrConvNorm($0, hidden, cout, k: 1, s: 1, act: c.activation, eps: c.batchNormEps, std: std) } : nil
        typeName = c.isDFine ? "DFineCSPRepLayer" : "RTDetrCSPRepLayer"
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var a = try conv1(x, ctx)
        for b in bottlenecks { a = try b(a, ctx) }
        let y = a + (try conv2(x, ctx))
        return try conv3.map { try $0(y, ctx) } ?? y
    }
}

/// D-FINE's `DFineRepNCSPELAN4` (the CCFM block of its hybrid encoder): conv1 (1x1, 2C -> 2C) split in two halves;
/// the second through csp_rep1 (C -> C4, `round(3 * depth_mult)` RepVGG blocks) and conv2 (3x3), then csp_rep2 and
/// conv3 (3x3); both halves and both branch outputs concatenated, conv4 (1x1 -> C). SiLU throughout (the block's
/// own default, whatever activation_function says; its CSP blocks use activation_function).
/// C4 = round(hidden_expansion * C // 2). [N, 2C, H, W] -> [N, C, H, W].
public struct DFineRepNCSPELAN4: UnaryModule {
    let conv1: Child<Conv>
    let cspRep1: Child<RTDetrCSPRepLayer>
    let conv2: Child<Conv>
    let cspRep2: Child<RTDetrCSPRepLayer>
    let conv3: Child<Conv>, conv4: Child<Conv>
    let half: Int
    public var typeName: String { "DFineRepNCSPELAN4" }

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let d = c.encoderHiddenDim, c4 = Int((c.hiddenExpansion * Double(d) / 2).rounded(.down)), std = c.convInitStd
        let eps = c.batchNormEps, n = c.elanBlocks
        conv1 = try Child(w, "conv1") { try rtDetrConvNorm($0, 2 * d, 2 * d, k: 1, s: 1, act: .silu, eps: eps, std: std) }
        cspRep1 = try Child(w, "csp_rep1") { try RTDetrCSPRepLayer($0, c, in: d, out: c4, blocks: n, expansion: 1) }
        conv2 = try Child(w, "conv2") { try rtDetrConvNorm($0, c4, c4, k: 3, s: 1, act: .silu, eps: eps, std: std) }
        cspRep2 = try Child(w, "csp_rep2") { try RTDetrCSPRepLayer($0, c, in: c4, out: c4, blocks: n, expansion: 1) }
        conv3 = try Child(w, "conv3") { try rtDetrConvNorm($0, c4, c4, k: 3, s: 1, act: .silu, eps: eps, std: std) }
        conv4 = try Child(w, "conv4") { try rtDetrConvNorm($0, 2 * d + 2 * c4, d, k: 1, s: 1, act: .silu, eps: eps, std: std) }
        half = d
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let parts = split(try conv1(x, ctx), sizes: [half, half], axis: 1)
        let b1 = try conv2(try cspRep1(parts[1], ctx), ctx)
        let b2 = try conv3(try cspRep2(b1, ctx), ctx)
        return try conv4(concat(parts + [b1, b2], axis: 1), ctx)
    }
}

/// D-FINE's `DFineSCDown`: a 1x1 conv then a depthwise kxk strided conv, no activations. [N, C, H, W] -> [N, C, H/s, W/s].
public struct DFineSCDown: UnaryModule {
    let conv1: Child<Conv>, conv2: Child<Conv>
    public var typeName: String { "DFineSCDown" }

    init(_ w: WeightScope, _ c: RTDetrConfig, kernel k: Int, stride s: Int) throws {
        let d = c.encoderHiddenDim, std = c.convInitStd
        conv1 = try Child(w, "conv1") { try rtDetrConvNorm($0, d, d, k: 1, s: 1, act: .identity, eps: c.batchNormEps, std: std) }
        conv2 = try Child(w, "conv2") { try rtDetrConvNorm($0, d, d, k: k, s: s, g: d, act: .identity, eps: c.batchNormEps, std: std) }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try conv2(try conv1(x, ctx), ctx) }
}

/// `RTDetrHybridEncoder` / `DFineHybridEncoder`: AIFI on the maps `encode_proj_layers` names (`encoder.{i}` in the
/// saved file), then CCFM: top-down, `lateral_convs.{i}` (1x1; D-FINE's without activation) on the coarser map, 2x
/// nearest upsampling, concat with the finer map, `fpn_blocks.{i}`; bottom-up, `downsample_convs.{i}` (3x3/2; D-FINE's
/// SCDown), concat, `pan_blocks.{i}` (CSPRep blocks; D-FINE's RepNCSPELAN4).
/// Inputs: the projected backbone maps, finest first, each [1, C, H_l, W_l]; outputs the same shapes (main: the
/// coarsest, extras "0", "1", ... all of them).
public struct RTDetrHybridEncoder: Module {
    let aifi: [Child<RTDetrAIFILayer>]
    let lateralConvs: [Child<Conv>]
    let fpnBlocks: [Child<AnyModule>]
    let downsampleConvs: [Child<AnyModule>]
    let panBlocks: [Child<AnyModule>]
    let encodeProjLayers: [Int]
    public let typeName: String

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let d = c.encoderHiddenDim, stages = c.encoderInChannels.count - 1, fine = c.isDFine
        aifi = c.encoderLayers > 0 ? try [Child](w, "encoder", count: c.encodeProjLayers.count) { _, s in try RTDetrAIFILayer(s, c) } : []
        lateralConvs = try [Child](w, "lateral_convs", count: stages) { _, s in
            try rtDetrConvNorm(s, d, d, k: 1, s: 1, act: fine ? .identity : c.activation, eps: c.batchNormEps, std: c.convInitStd)
        }
        func block(_ s: WeightScope) throws -> AnyModule {
            fine ? AnyModule(try DFineRepNCSPELAN4(s, c)) : AnyModule(try RTDetrCSPRepLayer(s, c))
        }
        fpnBlocks = try [Child](w, "fpn_blocks", count: stages) { _, s in try block(s) }
        downsampleConvs = try [Child](w, "downsample_convs", count: stages) { _, s in
            fine ? AnyModule(try DFineSCDown(s, c, kernel: 3, stride: 2))
                 : AnyModule(try rtDetrConvNorm(s, d, d, k: 3, s: 2, act: c.activation, eps: c.batchNormEps))
        }
        panBlocks = try [Child](w, "pan_blocks", count: stages) { _, s in try block(s) }
        encodeProjLayers = c.encodeProjLayers
        typeName = fine ? "DFineHybridEncoder" : "RTDetrHybridEncoder"
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
                throw ModuleInputError(ctx.path + " (\(typeName))", "the upsampled map \(up.shape) does not match the finer map \(lower.shape): the input's sides must be multiples of the largest stride")
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
