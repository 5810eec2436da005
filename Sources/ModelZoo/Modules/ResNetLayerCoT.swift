import Foundation
import Tensor

/// One CoTNet bottleneck in ultralytics' ResNetBlock layout: the 3x3 convolution `cv2` is replaced by the
/// official CoT block (`CotLayer`), preceded by a 3x3 stride-2 average pool (padding 1) when the block
/// downsamples, as JDAI-CV/CoTNet's `Bottleneck` does (its `avd`).
/// `out = ReLU(cv3(CotLayer(avd(cv1(x)))) + shortcut(x))`; cv1 is Conv 1x1 (SiLU), cv3 Conv 1x1 without
/// activation, shortcut Conv 1x1 stride s without activation when the shape changes.
/// Keys: `cv1.*`, `cv2.*` (CotLayer's keys), `cv3.*`, `shortcut.0.*`.
public struct CoTResNetBlock: Sendable {
    public let cv1: ConvBNAct, cv3: ConvBNAct
    public let cot: CotLayer
    public let shortcut: ConvBNAct?
    public let stride: Int, c2: Int, c3: Int

    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int, e: Int, bnEps: Float = 1e-3) throws {
        c3 = e * c2
        self.c2 = c2
        stride = s
        cv1 = try ConvBNAct(w.scope("cv1"), in: c1, out: c2, kernel: 1, act: .silu)
        cot = try CotLayer(w.scope("cv2"), channels: c2, kernel: 3, bnEps: bnEps)
        cv3 = try ConvBNAct(w.scope("cv3"), in: c2, out: c3, kernel: 1, act: .identity)
        shortcut = (s != 1 || c1 != c3) ? try ConvBNAct(w.scope("shortcut").scope("0"), in: c1, out: c3, kernel: 1, stride: s, act: .identity) : nil
    }

    public var parameterCount: Int { cv1.parameterCount + cot.parameterCount + cv3.parameterCount + (shortcut?.parameterCount ?? 0) }

    func pooledSize(_ n: Int) -> Int { stride > 1 ? (n + 2 - 3) / stride + 1 : n }

    /// thop's average-pool rule: one add per input element of every window (padding included) and one divide per output.
    func poolFlops(channels c: Int, height h: Int, width w: Int) -> Double {
        guard stride > 1 else { return 0 }
        func windows(_ size: Int) -> Int {
            let out = (size + 2 - 3) / stride + 1
            return (0 ..< out).reduce(0) { acc, i in acc + max(min(i * stride - 1 + 3, size + 1) - max(i * stride - 1, -1), 0) }
        }
        let ho = pooledSize(h), wo = pooledSize(w)
        return 2 * Double(c * windows(h) * windows(w) + c * ho * wo)
    }

    public func flops(height h: Int, width w: Int) -> Double {
        let ho = pooledSize(h), wo = pooledSize(w)
        return cv1.flops(height: h, width: w) + poolFlops(channels: c2, height: h, width: w)
            + cot.flops(inputShape: [1, c2, ho, wo]) + cv3.flops(height: ho, width: wo)
            + (shortcut?.flops(height: h, width: w) ?? 0)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = cv1(x)
        if stride > 1 { y = avgPool2d(y, kernel: 3, stride: stride, padding: 1) }
        y = cv3(try cot.forward(y, ctx.child("cv2")))
        return relu(y + (shortcut.map { $0(x) } ?? x))
    }
}

/// ResNetLayer_CoT: ultralytics' `ResNetLayer` (args [c1, c2, s, is_first, n, e]) built from `CoTResNetBlock`s,
/// i.e. a CoTNet stage. The first block has stride s, the others 1; weights under `layer.{j}`. The stem form
/// (is_first) has no 3x3 bottleneck conv to replace and is refused: use `ResNetLayer` for it.
/// Shapes: [N, c1, H, W] -> [N, e*c2, H/s, W/s]. Probes: each CotLayer's, under `<path>.layer.{j}.cv2`.
public struct ResNetLayerCoT: Layer {
    public let blocks: [CoTResNetBlock]
    public let c1: Int

    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, n: Int = 1, e: Int = 4) throws {
        guard n > 0, s > 0, e > 0 else { throw ModuleInputError("ResNetLayer_CoT", "n, s and e must be positive") }
        self.c1 = c1
        blocks = try (0 ..< n).map { j in
            try CoTResNetBlock(w.scope("layer").scope(j), c1: j == 0 ? c1 : e * c2, c2: c2, s: j == 0 ? s : 1, e: e)
        }
    }

    public var parameterCount: Int { blocks.reduce(0) { $0 + $1.parameterCount } }
    public var outputChannels: Int { blocks[0].c3 }

    public func outputShape(_ s: [Int]) -> [Int] {
        [s[0], outputChannels, blocks[0].pooledSize(s[2]), blocks[0].pooledSize(s[3])]
    }

    public func flops(inputShape s: [Int]) -> Double {
        var h = s[2], w = s[3], total = 0.0
        for b in blocks {
            total += b.flops(height: h, width: w)
            h = b.pooledSize(h); w = b.pooledSize(w)
        }
        return Double(s[0]) * total
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: c1, "ResNetLayer_CoT")
        var y = x
        for (j, b) in blocks.enumerated() { y = try b.forward(y, ctx.child("layer").child(j)) }
        return y
    }
}
