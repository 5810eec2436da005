import Foundation
import Tensor

// RT-DETR's ResNet-vd backbone in transformers' layout (`RTDetrResNetBackbone`, models/rt_detr/
// modeling_rt_detr_resnet.py; lyuwenyu/RT-DETR `presnet.py`). "vd": a three-conv deep stem, and shortcuts that
// average-pool 2x2 before their 1x1 conv instead of striding it. Every conv is Conv2d(bias=False) + BatchNorm2d
// (keys `convolution`, `normalization`), frozen in the detector (transformers' `RTDetrFrozenBatchNorm2d`: weight and
// bias are buffers, not parameters), folded into the conv at load time.

/// One `RTDetrResNetConvLayer` (or `RTDetrResNetShortCut` with no activation): conv + frozen BN (+ activation).
func rtDetrResNetConv(_ w: WeightScope, _ c1: Int, _ c2: Int, k: Int, s: Int = 1, act: Activation, frozen: Bool) throws -> Conv {
    // transformers' ResNet init: kaiming_normal_(fan_out, relu) for convs.
    try Conv(w, c1: c1, c2: c2, k: k, s: s, p: k / 2, act: act, eps: 1e-5, keys: ("convolution", "normalization"),
             weightInit: .normal(mean: 0, std: (2 / Float(c2 * k * k)).squareRoot()), frozenBatchNorm: frozen)
}

/// `RTDetrResNetEmbeddings`: three 3x3 convs (stride 2, 1, 1; widths E/2, E/2, E) then a 3x3/2 max pool.
/// [N, 3, H, W] -> [N, E, H/4, W/4]. Keys `embedder.{0,1,2}`.
public struct RTDetrResNetEmbeddings: UnaryModule {
    let embedder: [Child<Conv>]

    init(_ w: WeightScope, _ c: RTDetrResNetConfig, frozen: Bool) throws {
        let e = c.embeddingSize
        let dims = [(c.numChannels, e / 2, 2), (e / 2, e / 2, 1), (e / 2, e, 1)]
        embedder = try [Child](w, "embedder", count: 3) { i, s in
            try rtDetrResNetConv(s, dims[i].0, dims[i].1, k: 3, s: dims[i].2, act: c.hiddenAct, frozen: frozen)
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = x
        for c in embedder { y = try c(y, ctx) }
        return maxPool2d(y, kernel: 3, stride: 2, padding: 1)
    }
}

/// A residual layer: `RTDetrResNetBasicLayer` (two 3x3 convs) or `RTDetrResNetBottleNeckLayer` (1x1, 3x3, 1x1 with
/// a quarter of the output width inside), the shortcut added before the activation. The shortcut is the identity,
/// a 1x1 conv + BN (`shortcut`, strided), or a 2x2 average pool then a 1x1 conv + BN (`shortcut.1`, vd); a
/// bottleneck that downsamples without changing width pools only.
public struct RTDetrResNetLayer: UnaryModule {
    let layer: [Child<Conv>]
    let shortcut: Child<Conv>?
    let poolShortcut: Bool
    let act: Activation
    public let typeName: String

    init(_ w: WeightScope, _ c: RTDetrResNetConfig, in cin: Int, out cout: Int, stride: Int, firstOfStage: Bool, frozen: Bool) throws {
        act = c.hiddenAct
        if c.layerType == "bottleneck" {
            typeName = "RTDetrResNetBottleNeckLayer"
            let apply = cin != cout || stride != 1
            let mid = cout / 4
            let s1 = c.downsampleInBottleneck ? stride : 1, s2 = c.downsampleInBottleneck ? 1 : stride
            // The inner convs use ReLU whatever hidden_act says (RTDetrResNetConvLayer's default), as transformers builds them.
            let dims = [(cin, mid, 1, s1, Activation.relu), (mid, mid, 3, s2, .relu), (mid, cout, 1, 1, .identity)]
            layer = try [Child](w, "layer", count: 3) { i, s in
                try rtDetrResNetConv(s, dims[i].0, dims[i].1, k: dims[i].2, s: dims[i].3, act: dims[i].4, frozen: frozen)
            }
            poolShortcut = stride == 2
            if stride == 2 {
                shortcut = apply ? try Child(w, "shortcut.1") { try rtDetrResNetConv($0, cin, cout, k: 1, act: .identity, frozen: frozen) } : nil
            } else {
                shortcut = apply ? try Child(w, "shortcut") { try rtDetrResNetConv($0, cin, cout, k: 1, s: stride, act: .identity, frozen: frozen) } : nil
            }
        } else {
            typeName = "RTDetrResNetBasicLayer"
            let apply = firstOfStage
            layer = try [Child](w, "layer", count: 2) { i, s in
                i == 0 ? try rtDetrResNetConv(s, cin, cout, k: 3, s: stride, act: .relu, frozen: frozen)
                       : try rtDetrResNetConv(s, cout, cout, k: 3, act: .identity, frozen: frozen)
            }
            if cin != cout {
                poolShortcut = apply
                shortcut = apply ? try Child(w, "shortcut.1") { try rtDetrResNetConv($0, cin, cout, k: 1, act: .identity, frozen: frozen) } : nil
            } else {
                poolShortcut = false
                shortcut = apply ? try Child(w, "shortcut") { try rtDetrResNetConv($0, cin, cout, k: 1, s: stride, act: .identity, frozen: frozen) } : nil
            }
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = x
        for c in layer { y = try c(y, ctx) }
        var residual = poolShortcut ? avgPool2d(x, kernel: 2, stride: 2, ceilMode: true) : x
        if let shortcut { residual = try shortcut(residual, ctx) }
        guard residual.shape == y.shape else {
            throw ModuleInputError(ctx.path + " (\(typeName))", "the shortcut's \(residual.shape) does not match the residual branch's \(y.shape)")
        }
        return act.apply(y + residual)
    }
}

/// `RTDetrResNetStage`: `layers.{i}`, the first one strided (2, or 1 for the first stage unless
/// downsample_in_first_stage).
public struct RTDetrResNetStage: UnaryModule {
    let layers: [Child<RTDetrResNetLayer>]

    init(_ w: WeightScope, _ c: RTDetrResNetConfig, in cin: Int, out cout: Int, stride: Int, depth: Int, frozen: Bool) throws {
        layers = try [Child](w, "layers", count: depth) { i, s in
            try RTDetrResNetLayer(s, c, in: i == 0 ? cin : cout, out: cout, stride: i == 0 ? stride : 1, firstOfStage: i == 0, frozen: frozen)
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = x
        for l in layers { y = try l(y, ctx) }
        return y
    }
}

/// `RTDetrResNetBackbone`: the stem (`embedder`) and `encoder.stages.{i}`; outputs the stages `out_indices` names.
/// [N, 3, H, W] -> the maps at strides 8, 16, 32 (for out_indices [2, 3, 4]), main output the last.
/// Params: transformers' count with frozen batch norms (the norms' weight and bias are buffers).
public struct RTDetrResNetBackbone: Module {
    let embedder: Child<RTDetrResNetEmbeddings>
    let stages: [Child<RTDetrResNetStage>]
    let outIndices: [Int]
    public var typeName: String { "RTDetrResNetBackbone" }

    init(_ w: WeightScope, _ c: RTDetrResNetConfig, frozen: Bool) throws {
        embedder = try Child(w, "embedder") { try RTDetrResNetEmbeddings($0, c, frozen: frozen) }
        let ins = [c.embeddingSize] + c.hiddenSizes.dropLast()
        stages = try [Child](w, "encoder.stages", count: c.depths.count) { i, s in
            try RTDetrResNetStage(s, c, in: ins[i], out: c.hiddenSizes[i], stride: i == 0 && !c.downsampleInFirstStage ? 1 : 2,
                                  depth: c.depths[i], frozen: frozen)
        }
        outIndices = c.outIndices
    }

    /// Input [N, 3, H, W]; main output the last feature map, extras "0", "1", ... every output map in order.
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        try stagedBackboneOutput(try embedder(inputs[0], ctx), stages, outIndices: outIndices, ctx)
    }
}

/// A transformers backbone's forward after its stem: the stages in turn, keeping the maps `outIndices` names (0 the
/// stem, i the i-th stage); the main output is the last kept map, extras "0", "1", ... every kept map in order.
func stagedBackboneOutput<Stage: UnaryModule>(_ stem: Tensor, _ stages: [Child<Stage>], outIndices: [Int], _ ctx: ForwardContext) throws -> LayerOutput {
    var y = stem
    var outs: [Tensor] = outIndices.contains(0) ? [y] : []
    for (i, s) in stages.enumerated() {
        y = try s(y, ctx)
        if outIndices.contains(i + 1) { outs.append(y) }
    }
    return LayerOutput(outs.last ?? y, extras: Dictionary(uniqueKeysWithValues: outs.enumerated().map { (String($0), $1) }))
}

extension LayerOutput {
    /// The extras "0", "1", ... in order (a module with several feature maps out).
    var numbered: [Tensor] {
        var out: [Tensor] = []
        while let t = extras[String(out.count)] { out.append(t) }
        return out
    }
}
