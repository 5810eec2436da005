import Foundation
import Tensor

/// A convolution followed by a frozen batch norm (transformers' `DeformableDetrFrozenBatchNorm2d`, eps 1e-5),
/// folded into one convolution with a bias at load time; an optional ReLU.
///
/// x [N, I, H, W] -> [N, O, H/stride, W/stride]. Parameters as transformers counts them: the conv weight only
/// (a frozen batch norm's tensors are buffers).
struct DDETRFrozenConvBN: Sendable {
    let weight: Tensor
    let bias: Tensor
    let stride: Int
    let padding: Int
    let applyRelu: Bool
    let inChannels: Int, outChannels: Int, kernel: Int

    /// `conv` and `bn` are the scopes of the convolution and its batch norm (key names differ by layout).
    init(conv: WeightScope, convName: String, bn: WeightScope, in i: Int, out o: Int, kernel k: Int, stride: Int, relu: Bool) throws {
        // transformers' ResNet init: kaiming normal, fan_out, gain sqrt(2); frozen BN: 1, 0, 0, 1.
        let std = (2 / Float(o * k * k)).squareRoot()
        let w = try conv.tensor(convName, shape: [o, i, k, k], init: .normal(mean: 0, std: std))
        let gamma = try bn.tensor("weight", shape: [o], init: .ones)
        let beta = try bn.tensor("bias", shape: [o], init: .zeros)
        let mean = try bn.tensor("running_mean", shape: [o], init: .zeros)
        let variance = try bn.tensor("running_var", shape: [o], init: .ones)
        let folded = foldBatchNorm(weight: w, bias: nil, gamma: gamma, beta: beta, mean: mean, variance: variance, eps: 1e-5)
        weight = folded.weight
        bias = folded.bias
        self.stride = stride
        padding = k / 2
        applyRelu = relu
        inChannels = i; outChannels = o; kernel = k
    }

    var parameterCount: Int { outChannels * inChannels * kernel * kernel }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    func flops(_ h: Int, _ w: Int) -> Double {
        let (ho, wo) = outputSize(h, w)
        return 2 * Double(outChannels * inChannels * kernel * kernel) * Double(ho * wo)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var y = conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
        if applyRelu { ddetrReluInPlace(&y) }
        return y
    }
}

/// A ResNet residual block (transformers' ResNetBottleNeckLayer / ResNetBasicLayer; timm's Bottleneck / BasicBlock).
///
/// Bottleneck: 1x1 (in -> out/4), 3x3 (stride, unless `downsample_in_bottleneck` moves it to the 1x1), 1x1 (-> out);
/// a 1x1 projection shortcut when the shape changes; ReLU after the sum.
struct DDETRResNetBlock: Sendable {
    let convs: [DDETRFrozenConvBN]
    let shortcut: DDETRFrozenConvBN?

    init(scope: WeightScope, layout: DeformableDETRBackboneConfig.KeyLayout, bottleneck: Bool, in i: Int, out o: Int, stride: Int, strideInFirst: Bool) throws {
        let needsShortcut = i != o || stride != 1
        func conv(_ idx: Int, in ci: Int, out co: Int, k: Int, s: Int, relu: Bool) throws -> DDETRFrozenConvBN {
            switch layout {
            case .huggingFace:
                let l = scope.scope("layer").scope(idx)
                return try DDETRFrozenConvBN(conv: l.scope("convolution"), convName: "weight", bn: l.scope("normalization"),
                                    in: ci, out: co, kernel: k, stride: s, relu: relu)
            case .timm:
                return try DDETRFrozenConvBN(conv: scope, convName: "conv\(idx + 1).weight", bn: scope.scope("bn\(idx + 1)"),
                                    in: ci, out: co, kernel: k, stride: s, relu: relu)
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
                let s = scope.scope("shortcut")
                shortcut = try DDETRFrozenConvBN(conv: s.scope("convolution"), convName: "weight", bn: s.scope("normalization"),
                                        in: i, out: o, kernel: 1, stride: stride, relu: false)
            case .timm:
                let s = scope.scope("downsample")
                shortcut = try DDETRFrozenConvBN(conv: s.scope("0"), convName: "weight", bn: s.scope("1"), in: i, out: o, kernel: 1, stride: stride, relu: false)
            }
        } else {
            shortcut = nil
        }
    }

    var parameterCount: Int { convs.reduce(0) { $0 + $1.parameterCount } + (shortcut?.parameterCount ?? 0) }

    func flops(_ h: Int, _ w: Int) -> (Double, Int, Int) {
        var f = 0.0, hh = h, ww = w
        for c in convs {
            f += c.flops(hh, ww)
            (hh, ww) = c.outputSize(hh, ww)
        }
        if let s = shortcut { f += s.flops(h, w) }
        f += Double((convs.last?.outChannels ?? 0) * hh * ww) // the residual sum
        return (f, hh, ww)
    }

    func forward(_ x: Tensor) -> Tensor {
        var y = x
        for c in convs.dropLast() { y = c(y) }
        let residual = shortcut.map { $0(x) } ?? x
        let last = convs[convs.count - 1]
        var out = conv2d(y, weight: last.weight, bias: last.bias, stride: last.stride, padding: last.padding)
        ddetrAddReluInPlace(&out, residual)
        return out
    }
}

/// The ResNet backbone of Deformable DETR with frozen batch norm: a 7x7/2 stem + 3x3/2 max pool, then four stages.
/// Returns the outputs of `config.outStages` ([N, C_s, H/stride_s, W/stride_s]).
///
/// Keys under `model.backbone.conv_encoder.model` in either transformers' ResNet layout or timm's.
/// Reference: transformers `DeformableDetrConvEncoder`, `ResNetModel` (models/resnet/modeling_resnet.py).
struct DDETRResNetBackbone: Sendable {
    let config: DeformableDETRBackboneConfig
    let stem: DDETRFrozenConvBN
    let stages: [[DDETRResNetBlock]]

    init(config: DeformableDETRBackboneConfig, scope: WeightScope) throws {
        self.config = config
        switch config.layout {
        case .huggingFace:
            let e = scope.scope("embedder").scope("embedder")
            stem = try DDETRFrozenConvBN(conv: e.scope("convolution"), convName: "weight", bn: e.scope("normalization"),
                                in: config.numChannels, out: config.embeddingSize, kernel: 7, stride: 2, relu: true)
        case .timm:
            stem = try DDETRFrozenConvBN(conv: scope, convName: "conv1.weight", bn: scope.scope("bn1"),
                                in: config.numChannels, out: config.embeddingSize, kernel: 7, stride: 2, relu: true)
        }
        var stages: [[DDETRResNetBlock]] = []
        var inC = config.embeddingSize
        let lastStage = config.outStages.max() ?? config.depths.count
        for (s, depth) in config.depths.enumerated() where s < lastStage {
            let outC = config.hiddenSizes[s]
            let stride = s == 0 ? (config.downsampleInFirstStage ? 2 : 1) : 2
            var blocks: [DDETRResNetBlock] = []
            for b in 0 ..< depth {
                let bs: WeightScope
                switch config.layout {
                case .huggingFace: bs = scope.scope("encoder").scope("stages").scope(s).scope("layers").scope(b)
                case .timm: bs = scope.scope("layer\(s + 1)").scope(b)
                }
                blocks.append(try DDETRResNetBlock(scope: bs, layout: config.layout, bottleneck: config.layerType == "bottleneck",
                                          in: b == 0 ? inC : outC, out: outC, stride: b == 0 ? stride : 1,
                                          strideInFirst: config.downsampleInBottleneck))
            }
            stages.append(blocks)
            inC = outC
        }
        self.stages = stages
    }

    var stemParameters: Int { stem.parameterCount }
    func stageParameters(_ s: Int) -> Int { stages[s].reduce(0) { $0 + $1.parameterCount } }
    var parameterCount: Int { stemParameters + (0 ..< stages.count).reduce(0) { $0 + stageParameters($1) } }

    /// Spatial size after the stem (conv + max pool) for an input (h, w).
    func stemOutput(_ h: Int, _ w: Int) -> (Int, Int) {
        let (a, b) = stem.outputSize(h, w)
        return ((a + 2 - 3) / 2 + 1, (b + 2 - 3) / 2 + 1)
    }
}
