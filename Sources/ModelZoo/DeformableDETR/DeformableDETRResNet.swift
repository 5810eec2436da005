import Foundation
import Tensor

/// A convolution followed by a frozen batch norm (transformers' `DeformableDetrFrozenBatchNorm2d`, eps 1e-5): the
/// shared `Conv` with `frozenBatchNorm` (folded at load time; its tensors are buffers, so only the convolution's
/// weight counts as a parameter and its FLOPs are the convolution's). transformers' ResNet init: kaiming normal,
/// fan_out, gain sqrt(2). `keys` name the convolution and the norm inside `w` (layouts differ).
func ddetrFrozenConv(_ w: WeightScope, keys: (conv: String, bn: String), in i: Int, out o: Int, kernel k: Int, stride: Int,
                     relu: Bool) throws -> Conv {
    try Conv(w, c1: i, c2: o, k: k, s: stride, p: k / 2, act: relu ? .relu : .identity, eps: 1e-5, keys: keys,
             weightInit: .normal(mean: 0, std: (2 / Float(o * k * k)).squareRoot()), frozenBatchNorm: true)
}

/// A ResNet residual block (transformers' ResNetBottleNeckLayer / ResNetBasicLayer; timm's Bottleneck / BasicBlock).
///
/// Bottleneck: 1x1 (in -> out/4), 3x3 (stride, unless `downsample_in_bottleneck` moves it to the 1x1), 1x1 (-> out);
/// a 1x1 projection shortcut when the shape changes; ReLU after the sum. Children under the checkpoint's keys:
/// `layer.{i}` and `shortcut` (transformers) or `conv{i}`/`bn{i}` and `downsample` (timm). FLOPs: the convolutions
/// and the residual sum (one per output value).
struct DDETRResNetBlock: UnaryModule {
    let convs: [Child<Conv>]
    let shortcut: Child<Conv>?
    let bottleneck: Bool

    init(scope: WeightScope, layout: DeformableDETRBackboneConfig.KeyLayout, bottleneck: Bool, in i: Int, out o: Int, stride: Int, strideInFirst: Bool) throws {
        self.bottleneck = bottleneck
        let needsShortcut = i != o || stride != 1
        func conv(_ idx: Int, in ci: Int, out co: Int, k: Int, s: Int, relu: Bool) throws -> Child<Conv> {
            switch layout {
            case .huggingFace:
                return try Child(scope, "layer.\(idx)") {
                    try ddetrFrozenConv($0, keys: ("convolution", "normalization"), in: ci, out: co, kernel: k, stride: s, relu: relu)
                }
            case .timm:
                return Child("conv\(idx + 1)", try ddetrFrozenConv(scope, keys: ("conv\(idx + 1)", "bn\(idx + 1)"), in: ci, out: co, kernel: k,
                                                                    stride: s, relu: relu))
            }
        }
        if bottleneck {
            let r = o / 4
            convs = [
                try conv(0, in: i, out: r, k: 1, s: strideInFirst ? stride : 1, relu: true),
                try conv(1, in: r, out: r, k: 3, s: strideInFirst ? 1 : stride, relu: true),
                try conv(2, in: r, out: o, k: 1, s: 1, relu: false),
            ]
        } else {
            convs = [try conv(0, in: i, out: o, k: 3, s: stride, relu: true), try conv(1, in: o, out: o, k: 3, s: 1, relu: false)]
        }
        if needsShortcut {
            switch layout {
            case .huggingFace:
                shortcut = try Child(scope, "shortcut") {
                    try ddetrFrozenConv($0, keys: ("convolution", "normalization"), in: i, out: o, kernel: 1, stride: stride, relu: false)
                }
            case .timm:
                shortcut = try Child(scope, "downsample") { try ddetrFrozenConv($0, keys: ("0", "1"), in: i, out: o, kernel: 1, stride: stride, relu: false) }
            }
        } else {
            shortcut = nil
        }
    }

    var typeName: String { bottleneck ? "ResNetBottleNeckLayer" : "ResNetBasicLayer" }
    func ownFlops(inputs: [[Int]], output: [Int]) -> Double { Double(output.reduce(1, *)) }

    func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = x
        for c in convs { y = try c(y, ctx) }
        let residual = try shortcut.map { try $0(x, ctx) } ?? x
        ddetrAddReluInPlace(&y, residual)
        return y
    }
}

/// The ResNet stem (transformers' `ResNetEmbeddings`): a 7x7/2 convolution with frozen BN and ReLU, then a 3x3/2
/// max pool. Child `embedder` (transformers) or `conv1`/`bn1` (timm).
struct DDETRResNetStem: UnaryModule {
    let conv: Child<Conv>

    init(config: DeformableDETRBackboneConfig, scope: WeightScope) throws {
        switch config.layout {
        case .huggingFace:
            conv = try Child(scope, "embedder.embedder") {
                try ddetrFrozenConv($0, keys: ("convolution", "normalization"), in: config.numChannels, out: config.embeddingSize, kernel: 7,
                                    stride: 2, relu: true)
            }
        case .timm:
            conv = Child("conv1", try ddetrFrozenConv(scope, keys: ("conv1", "bn1"), in: config.numChannels, out: config.embeddingSize,
                                                      kernel: 7, stride: 2, relu: true))
        }
    }

    var typeName: String { "ResNetEmbeddings" }

    func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        maxPool2d(try conv(x, ctx), kernel: 3, stride: 2, padding: 1)
    }
}

/// One ResNet stage: its blocks in order (`layers.{b}` in transformers, `{b}` under timm's `layer{s}`).
struct DDETRResNetStage: UnaryModule {
    let blocks: [Child<DDETRResNetBlock>]
    var typeName: String { "ResNetStage" }

    func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = x
        for b in blocks { y = try b(y, ctx) }
        return y
    }
}

/// The ResNet backbone of Deformable DETR with frozen batch norm: a 7x7/2 stem + 3x3/2 max pool, then the stages up
/// to the last one `config.outStages` names ([N, C_s, H/stride_s, W/stride_s]).
///
/// Keys under `model.backbone.conv_encoder.model` in either transformers' ResNet layout or timm's.
/// Reference: transformers `DeformableDetrConvEncoder`, `ResNetModel` (models/resnet/modeling_resnet.py).
struct DDETRResNetBackbone: Sendable {
    let config: DeformableDETRBackboneConfig
    let stem: DDETRResNetStem
    let stages: [DDETRResNetStage]

    init(config: DeformableDETRBackboneConfig, scope: WeightScope) throws {
        self.config = config
        stem = try DDETRResNetStem(config: config, scope: scope)
        var stages: [DDETRResNetStage] = []
        var inC = config.embeddingSize
        let lastStage = config.outStages.max() ?? config.depths.count
        for (s, depth) in config.depths.enumerated() where s < lastStage {
            let outC = config.hiddenSizes[s]
            let stride = s == 0 ? (config.downsampleInFirstStage ? 2 : 1) : 2
            let stageScope: WeightScope, prefix: String
            switch config.layout {
            case .huggingFace: stageScope = scope.scope("encoder").scope("stages").scope(s); prefix = "layers"
            case .timm: stageScope = scope.scope("layer\(s + 1)"); prefix = ""
            }
            let blocks = try (0 ..< depth).map { b in
                try Child(stageScope, prefix.isEmpty ? "\(b)" : "\(prefix).\(b)") {
                    try DDETRResNetBlock(scope: $0, layout: config.layout, bottleneck: config.layerType == "bottleneck",
                                         in: b == 0 ? inC : outC, out: outC, stride: b == 0 ? stride : 1,
                                         strideInFirst: config.downsampleInBottleneck)
                }
            }
            stages.append(DDETRResNetStage(blocks: blocks))
            inC = outC
        }
        self.stages = stages
    }

    var parameterCount: Int { stem.parameterCount + stages.reduce(0) { $0 + $1.parameterCount } }
}
