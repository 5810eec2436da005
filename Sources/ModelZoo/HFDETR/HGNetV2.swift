import Foundation
import Tensor

// D-FINE's HGNetV2 backbone in transformers' layout (`HGNetV2Backbone`, models/hgnet_v2/modeling_hgnet_v2.py;
// PaddleDetection's PP-HGNetV2). Every conv is Conv2d(bias=False, padding (k-1)/2) + BatchNorm2d (keys
// `convolution`, `normalization`), frozen in the detector when `freeze_backbone_batch_norms` (D-FINE's
// `DFineFrozenBatchNorm2d`: buffers, not parameters), folded into the conv at load time; with
// `use_learnable_affine_block` a conv with an activation is followed by LAB, `scale * y + bias` (two scalars).

/// `HGNetV2Config` (`model_type` hgnet_v2): stem, then per stage a (depthwise, strided) downsample and blocks.
public struct HGNetV2Config: Sendable, Equatable {
    public var numChannels = 3
    public var hiddenAct: Activation = .relu
    public var stemChannels = [3, 32, 48]
    public var stemStrides = [2, 1, 1, 2, 1]
    public var stageInChannels = [48, 128, 512, 1024]
    public var stageMidChannels = [48, 96, 192, 384]
    public var stageOutChannels = [128, 512, 1024, 2048]
    public var stageNumBlocks = [1, 1, 3, 1]
    public var stageDownsample = [false, true, true, true]
    public var stageDownsampleStrides = [2, 2, 2, 2]
    public var stageLightBlock = [false, false, true, true]
    public var stageKernelSize = [3, 3, 5, 5]
    public var stageNumbOfLayers = [6, 6, 6, 6]
    public var useLearnableAffineBlock = false
    /// Backbone outputs: 0 = the stem, i = stage i (transformers' `out_indices` over stage_names).
    public var outIndices = [4]

    init(_ r: HFConfigReader) throws {
        let p = "backbone_config."
        numChannels = try r.int("num_channels", numChannels)
        hiddenAct = try r.activation("hidden_act", "relu")
        stemChannels = try r.ints("stem_channels", stemChannels)
        stemStrides = try r.ints("stem_strides", stemStrides)
        stageInChannels = try r.ints("stage_in_channels", stageInChannels)
        stageMidChannels = try r.ints("stage_mid_channels", stageMidChannels)
        stageOutChannels = try r.ints("stage_out_channels", stageOutChannels)
        stageNumBlocks = try r.ints("stage_num_blocks", stageNumBlocks)
        stageDownsample = try bools(r, "stage_downsample", stageDownsample)
        stageDownsampleStrides = try r.ints("stage_downsample_strides", stageDownsampleStrides)
        stageLightBlock = try bools(r, "stage_light_block", stageLightBlock)
        stageKernelSize = try r.ints("stage_kernel_size", stageKernelSize)
        stageNumbOfLayers = try r.ints("stage_numb_of_layers", stageNumbOfLayers)
        useLearnableAffineBlock = try r.bool("use_learnable_affine_block", false)
        let n = stageInChannels.count
        let lists: [(String, Int)] = [("stage_mid_channels", stageMidChannels.count), ("stage_out_channels", stageOutChannels.count),
                                      ("stage_num_blocks", stageNumBlocks.count), ("stage_downsample", stageDownsample.count),
                                      ("stage_downsample_strides", stageDownsampleStrides.count), ("stage_light_block", stageLightBlock.count),
                                      ("stage_kernel_size", stageKernelSize.count), ("stage_numb_of_layers", stageNumbOfLayers.count)]
        for (name, count) in lists where count != n {
            throw r.problem(p + name, "has \(count) entries, but stage_in_channels has \(n): every stage list must have one entry per stage")
        }
        guard n > 0, stemChannels.count == 3, stemStrides.count == 5, stemChannels.allSatisfy({ $0 > 0 }), stemStrides.allSatisfy({ $0 > 0 }) else {
            throw r.problem(p + "stem_channels", "(\(stemChannels)) must be 3 positive widths and stem_strides (\(stemStrides)) 5 positive strides, with at least one stage")
        }
        guard stemChannels[0] == numChannels else {
            throw r.problem(p + "stem_channels", "starts with \(stemChannels[0]) input channels, but num_channels is \(numChannels)")
        }
        guard stemChannels[1] % 2 == 0 else { throw r.problem(p + "stem_channels", "(\(stemChannels)): the middle width must be even (the stem halves it)") }
        for i in 0 ..< n {
            guard stageNumBlocks[i] >= 1, stageNumbOfLayers[i] >= 1, stageKernelSize[i] >= 1, stageDownsampleStrides[i] >= 1,
                  stageMidChannels[i] > 0, stageOutChannels[i] > 1, stageInChannels[i] > 0 else {
                throw r.problem(p + "stage_num_blocks", "stage \(i): blocks, layers, kernel size, stride and widths must be positive")
            }
            let expected = i == 0 ? stemChannels[2] : stageOutChannels[i - 1]
            guard stageInChannels[i] == expected else {
                throw r.problem(p + "stage_in_channels", "(\(stageInChannels)): stage \(i) takes \(stageInChannels[i]) channels, but what comes before it gives \(expected)")
            }
        }
        // transformers names the stages after `depths` and gives the detector's input projections the widths
        // ([embedding_size] + hidden_sizes)[out_indices]: they must be the widths the stage lists build.
        let hiddenSizes = try r.ints("hidden_sizes", [256, 512, 1024, 2048]), depths = try r.ints("depths", [3, 4, 6, 3])
        guard depths.count == n, hiddenSizes.count == n else {
            throw r.problem(p + "depths", "(\(depths.count) entries) and hidden_sizes (\(hiddenSizes.count)) must have one entry per stage (\(n))")
        }
        let embeddingSize = try r.int("embedding_size", 64)
        let stages = ["stem"] + (1 ... n).map { "stage\($0)" }
        if let names = r.value["out_features"]?.listValue?.compactMap(\.stringValue), !names.isEmpty {
            outIndices = try names.map { name in
                guard let i = stages.firstIndex(of: name) else { throw r.problem(p + "out_features", "names '\(name)' (known: \(stages.joined(separator: ", ")))") }
                return i
            }
        } else {
            outIndices = try r.ints("out_indices", [n])
        }
        guard !outIndices.isEmpty, outIndices.allSatisfy({ $0 >= 0 && $0 <= n }) else {
            throw r.problem(p + "out_indices", "(\(outIndices)) must name the stem (0) or stages 1...\(n)")
        }
        let declared = ([embeddingSize] + hiddenSizes), built = [stemChannels[2]] + stageOutChannels
        for i in outIndices where declared[i] != built[i] {
            throw r.problem(p + (i == 0 ? "embedding_size" : "hidden_sizes"), "gives output \(i) \(declared[i]) channels, but the stage lists build \(built[i]): transformers sizes the detector's input projections by hidden_sizes")
        }
    }

    private func bools(_ r: HFConfigReader, _ key: String, _ def: [Bool]) throws -> [Bool] {
        guard let v = r.value[key], !v.isNull else { return def }
        guard let xs = v.listValue else { throw r.problem("backbone_config." + key, "must be a list of true/false, got \(v)") }
        return try xs.map { x in
            if case .bool(let b) = x { return b }
            throw r.problem("backbone_config." + key, "must be a list of true/false, got \(v)")
        }
    }

    /// The channels of each output (`out_indices`).
    public var outChannels: [Int] { outIndices.map { $0 == 0 ? stemChannels[2] : stageOutChannels[$0 - 1] } }
}

/// `HGNetV2ConvLayer`: conv + BN (frozen or not) + activation, then LAB (`lab.scale`, `lab.bias`) when the layer
/// has an activation and the config uses LAB. A leaf of the tree: the folded conv and LAB's two scalars.
public struct HGNetV2ConvLayer: UnaryModule {
    let conv: Conv
    /// LAB's (scale, bias), or nil.
    let lab: (scale: Float, bias: Float)?
    public var typeName: String { "HGNetV2ConvLayer" }

    init(_ w: WeightScope, _ c1: Int, _ c2: Int, k: Int, s: Int = 1, g: Int = 1, act: Activation?, lab useLab: Bool, frozen: Bool,
         std: Float) throws {
        conv = try Conv(w, c1: c1, c2: c2, k: k, s: s, p: (k - 1) / 2, g: g, act: act ?? .identity, eps: 1e-5,
                        keys: ("convolution", "normalization"), weightInit: .normal(mean: 0, std: std), frozenBatchNorm: frozen)
        if act != nil && useLab {
            lab = (try w.tensor("lab.scale", shape: [1], init: .ones).data[0], try w.tensor("lab.bias", shape: [1], init: .zeros).data[0])
        } else {
            lab = nil
        }
    }

    public var ownParameterCount: Int { conv.ownParameterCount + (lab == nil ? 0 : 2) }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { conv.ownFlops(inputs: inputs, output: output) }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = conv(x)
        guard let lab else { return y }
        return y * lab.scale + lab.bias
    }
}

/// `HGNetV2Embeddings`: stem1 (3x3), then on the map padded by one row and column a 2x2 conv pair (stem2a, stem2b)
/// beside a 2x2 max pool (stride 1, ceil mode), concatenated, stem3 (3x3) and stem4 (1x1); strides `stem_strides`.
public struct HGNetV2Embeddings: UnaryModule {
    let stem1: Child<HGNetV2ConvLayer>, stem2a: Child<HGNetV2ConvLayer>, stem2b: Child<HGNetV2ConvLayer>
    let stem3: Child<HGNetV2ConvLayer>, stem4: Child<HGNetV2ConvLayer>

    init(_ w: WeightScope, _ c: HGNetV2Config, frozen: Bool, std: Float) throws {
        let ch = c.stemChannels, st = c.stemStrides, a = c.hiddenAct, lab = c.useLearnableAffineBlock
        func layer(_ key: String, _ c1: Int, _ c2: Int, _ k: Int, _ s: Int) throws -> Child<HGNetV2ConvLayer> {
            try Child(w, key) { try HGNetV2ConvLayer($0, c1, c2, k: k, s: s, act: a, lab: lab, frozen: frozen, std: std) }
        }
        stem1 = try layer("stem1", ch[0], ch[1], 3, st[0])
        stem2a = try layer("stem2a", ch[1], ch[1] / 2, 2, st[1])
        stem2b = try layer("stem2b", ch[1] / 2, ch[1], 2, st[2])
        stem3 = try layer("stem3", ch[1] * 2, ch[1], 3, st[3])
        stem4 = try layer("stem4", ch[1], ch[2], 1, st[4])
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let e = padRightBottom(try stem1(x, ctx))
        let b = try stem2b(padRightBottom(try stem2a(e, ctx)), ctx)
        let p = maxPool2d(e, kernel: 2, stride: 1, padding: 0, ceilMode: true)
        guard p.shape == b.shape || Tensor.isInShapePass && p.shape.count == b.shape.count else {
            throw ModuleInputError(ctx.path + " (HGNetV2Embeddings)", "the pooled map \(p.shape) and the conv pair's \(b.shape) differ: stem_strides[1...2] must be 1")
        }
        return try stem4(stem3(concat([p, b], axis: 1), ctx), ctx)
    }
}

/// `HGNetV2BasicLayer`: `layers.{i}` (a kxk conv, or a light block: 1x1 conv without activation then a depthwise
/// kxk conv, keys `conv1`, `conv2`), the input and every layer's output concatenated, squeezed to out/2 and excited to
/// out (`aggregation.0`, `aggregation.1`, 1x1, ReLU), plus the input when residual.
public struct HGNetV2BasicLayer: UnaryModule {
    let layers: [Child<AnyModule>]
    let aggregation: [Child<HGNetV2ConvLayer>]
    let residual: Bool
    public var typeName: String { "HGNetV2BasicLayer" }

    init(_ w: WeightScope, in cin: Int, mid: Int, out cout: Int, layers n: Int, kernel k: Int, residual: Bool, light: Bool,
         lab: Bool, frozen: Bool, std: Float) throws {
        layers = try [Child](w, "layers", count: n) { i, s in
            let c1 = i == 0 ? cin : mid
            if light {
                return AnyModule(try HGNetV2ConvLayerLight(s, c1, mid, k: k, lab: lab, frozen: frozen, std: std))
            }
            return AnyModule(try HGNetV2ConvLayer(s, c1, mid, k: k, act: .relu, lab: lab, frozen: frozen, std: std))
        }
        let total = cin + n * mid
        aggregation = try [Child](w, "aggregation", count: 2) { i, s in
            try HGNetV2ConvLayer(s, i == 0 ? total : cout / 2, i == 0 ? cout / 2 : cout, k: 1, act: .relu, lab: lab, frozen: frozen, std: std)
        }
        self.residual = residual
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var outs = [x]
        var y = x
        for l in layers {
            y = try l(y, ctx)
            outs.append(y)
        }
        y = try aggregation[1](try aggregation[0](concat(outs, axis: 1), ctx), ctx)
        return residual ? y + x : y
    }
}

/// `HGNetV2ConvLayerLight`: a 1x1 conv (no activation, no LAB) then a depthwise kxk conv (ReLU, LAB).
public struct HGNetV2ConvLayerLight: UnaryModule {
    let conv1: Child<HGNetV2ConvLayer>, conv2: Child<HGNetV2ConvLayer>
    public var typeName: String { "HGNetV2ConvLayerLight" }

    init(_ w: WeightScope, _ c1: Int, _ c2: Int, k: Int, lab: Bool, frozen: Bool, std: Float) throws {
        conv1 = try Child(w, "conv1") { try HGNetV2ConvLayer($0, c1, c2, k: 1, act: nil, lab: lab, frozen: frozen, std: std) }
        conv2 = try Child(w, "conv2") { try HGNetV2ConvLayer($0, c2, c2, k: k, g: c2, act: .relu, lab: lab, frozen: frozen, std: std) }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try conv2(try conv1(x, ctx), ctx) }
}

/// `HGNetV2Stage`: a depthwise 3x3 strided conv without activation (`downsample`, when the stage downsamples),
/// then `blocks.{i}` (the first without residual).
public struct HGNetV2Stage: UnaryModule {
    let downsample: Child<HGNetV2ConvLayer>?
    let blocks: [Child<HGNetV2BasicLayer>]
    public var typeName: String { "HGNetV2Stage" }

    init(_ w: WeightScope, _ c: HGNetV2Config, stage i: Int, frozen: Bool, std: Float) throws {
        let cin = c.stageInChannels[i], cout = c.stageOutChannels[i]
        downsample = c.stageDownsample[i]
            ? try Child(w, "downsample") {
                try HGNetV2ConvLayer($0, cin, cin, k: 3, s: c.stageDownsampleStrides[i], g: cin, act: nil, lab: false, frozen: frozen, std: std)
            } : nil
        blocks = try [Child](w, "blocks", count: c.stageNumBlocks[i]) { b, s in
            try HGNetV2BasicLayer(s, in: b == 0 ? cin : cout, mid: c.stageMidChannels[i], out: cout, layers: c.stageNumbOfLayers[i],
                                  kernel: c.stageKernelSize[i], residual: b != 0, light: c.stageLightBlock[i],
                                  lab: c.useLearnableAffineBlock, frozen: frozen, std: std)
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = try downsample.map { try $0(x, ctx) } ?? x
        for b in blocks { y = try b(y, ctx) }
        return y
    }
}

/// `HGNetV2Backbone`: the stem (`embedder`) and `encoder.stages.{i}`; outputs the maps `out_indices` names
/// (main output the last, extras "0", "1", ... every output in order). Params as transformers counts them (frozen
/// batch norms are buffers). Default init: transformers' (convs normal(0, initializer_range), BN 1/0/0/1, LAB 1/0).
public struct HGNetV2Backbone: Module {
    let embedder: Child<HGNetV2Embeddings>
    let stages: [Child<HGNetV2Stage>]
    let outIndices: [Int]
    public var typeName: String { "HGNetV2Backbone" }

    init(_ w: WeightScope, _ c: HGNetV2Config, frozen: Bool, std: Float) throws {
        embedder = try Child(w, "embedder") { try HGNetV2Embeddings($0, c, frozen: frozen, std: std) }
        stages = try [Child](w, "encoder.stages", count: c.stageInChannels.count) { i, s in try HGNetV2Stage(s, c, stage: i, frozen: frozen, std: std) }
        outIndices = c.outIndices
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        try stagedBackboneOutput(try embedder(inputs[0], ctx), stages, outIndices: outIndices, ctx)
    }
}
