import Foundation
import Tensor

/// `ResNetBlock`: 1x1 -> 3x3 (stride s) -> 1x1 (e * c2, no activation) plus the shortcut, then ReLU.
public struct ResNetBlock: UnaryModule {
    let cv1: Child<Conv>, cv2: Child<Conv>, cv3: Child<Conv>
    let shortcut: Child<Conv>?

    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, e: Int = 4, act: Activation = .silu) throws {
        let c3 = e * c2
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c2, k: 1, s: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: c2, c2: c2, k: 3, s: s, p: 1, act: act) }
        cv3 = try Child(w, "cv3") { try Conv($0, c1: c2, c2: c3, k: 1, act: .identity) }
        shortcut = (s != 1 || c1 != c3) ? try Child(w, "shortcut.0") { try Conv($0, c1: c1, c2: c3, k: 1, s: s, act: .identity) } : nil
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv3(cv2(cv1(x, ctx), ctx), ctx)
        var sum = y + (try shortcut?(x, ctx) ?? x)
        applyActivation(&sum, .relu)
        return sum
    }
}

/// `ResNetLayer`: the 7x7 stem + 3x3/2 max pool when `isFirst`, else n ResNetBlocks (the first with stride s).
public struct ResNetLayer: UnaryModule {
    let stem: Child<Conv>?
    let blocks: [Child<ResNetBlock>]

    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, isFirst: Bool = false, n: Int = 1, e: Int = 4, act: Activation = .silu) throws {
        if isFirst {
            stem = try Child(w, "layer.0") { try Conv($0, c1: c1, c2: c2, k: 7, s: 2, p: 3, act: act) }
            blocks = []
        } else {
            stem = nil
            blocks = try [Child](w, "layer", count: n) { j, sw in
                try ResNetBlock(sw, c1: j == 0 ? c1 : e * c2, c2: c2, s: j == 0 ? s : 1, e: e, act: act)
            }
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        if let stem { return maxPool2d(try stem(x, ctx), kernel: 3, stride: 2, padding: 1) }
        var y = x
        for b in blocks { y = try b(y, ctx) }
        return y
    }

    /// `[c1, c2, s, is_first, n, e]` as written; the output has e * c2 channels (c2 for the stem).
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c1 = try ctx.int(0, name: "c1"), c2 = try ctx.int(1, name: "c2"), s = try ctx.int(2, default: 1, name: "s")
        let first = try ctx.bool(3, default: false), n = try ctx.int(4, default: 1, name: "n"), e = try ctx.int(5, default: 4, name: "e")
        _ = try ctx.checked(first ? c2 : c2 * e, argument: 1, name: "c2")
        let layer = try ResNetLayer(ctx.weights, c1: c1, c2: c2, s: s, isFirst: first, n: n, e: e, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: first ? c2 : c2 * 4, arguments: ctx.args)
    }
}
