import Foundation
import Tensor

/// One CoTNet bottleneck in ultralytics' ResNetBlock layout: the 3x3 convolution `cv2` is replaced by the
/// official CoT block (`CotLayer`), preceded by a 3x3 stride-2 average pool (padding 1) when the block
/// downsamples, as JDAI-CV/CoTNet's `Bottleneck` does (its `avd`).
/// `out = ReLU(cv3(CotLayer(avd(cv1(x)))) + shortcut(x))`; cv1 is Conv 1x1 (SiLU), cv3 Conv 1x1 without
/// activation, shortcut Conv 1x1 stride s without activation when the shape changes.
/// Keys: `cv1.*`, `cv2.*` (CotLayer's keys), `cv3.*`, `shortcut.0.*`.
public struct CoTResNetBlock: UnaryModule {
    let cv1: Child<Conv>, cv3: Child<Conv>
    let cot: Child<CotLayer>
    let shortcut: Child<Conv>?
    public let stride: Int, c2: Int, c3: Int

    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int, e: Int, bnEps: Float = 1e-3) throws {
        c3 = e * c2
        self.c2 = c2
        stride = s
        let c3 = self.c3
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c2, k: 1, act: .silu) }
        cot = try Child(w, "cv2") { try CotLayer($0, channels: c2, kernel: 3, bnEps: bnEps) }
        cv3 = try Child(w, "cv3") { try Conv($0, c1: c2, c2: c3, k: 1, act: .identity) }
        shortcut = (s != 1 || c1 != c3) ? try Child(w, "shortcut.0") { try Conv($0, c1: c1, c2: c3, k: 1, s: s, act: .identity) } : nil
    }

    public var typeName: String { "ResNetBlock_CoT" }

    func pooledSize(_ n: Int) -> Int { stride > 1 ? (n + 2 - 3) / stride + 1 : n }

    /// The 3x3 average pool before the CoT block when the block strides (an nn.AvgPool2d in the reference), by thop's
    /// rule: one add per input element of every window (padding included) and one divide per output.
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        guard stride > 1 else { return 0 }
        let x = inputs[0], h = x[2], w = x[3]
        func windows(_ size: Int) -> Int {
            let out = (size + 2 - 3) / stride + 1
            return (0 ..< out).reduce(0) { acc, i in acc + max(min(i * stride - 1 + 3, size + 1) - max(i * stride - 1, -1), 0) }
        }
        return Double(x[0]) * 2 * Double(c2 * windows(h) * windows(w) + c2 * pooledSize(h) * pooledSize(w))
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = try cv1(x, ctx)
        if stride > 1 { y = avgPool2d(y, kernel: 3, stride: stride, padding: 1) }
        y = try cv3(cot(y, ctx), ctx)
        return relu(y + (try shortcut?(x, ctx) ?? x))
    }
}

/// ResNetLayer with CoTNet bottlenecks (`ResNetLayer_CoT`): n CoTResNetBlocks, the first with stride s.
public struct ResNetLayerCoT: UnaryModule {
    let blocks: [Child<CoTResNetBlock>]
    public let c1: Int

    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, n: Int = 1, e: Int = 4) throws {
        guard n > 0, s > 0, e > 0 else { throw ModuleInputError("ResNetLayer_CoT", "n, s and e must be positive") }
        self.c1 = c1
        blocks = try [Child](w, "layer", count: n) { j, b in
            try CoTResNetBlock(b, c1: j == 0 ? c1 : e * c2, c2: c2, s: j == 0 ? s : 1, e: e)
        }
    }

    public var typeName: String { "ResNetLayer_CoT" }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: c1, "ResNetLayer_CoT")
        var y = x
        for b in blocks { y = try b(y, ctx) }
        return y
    }
}
