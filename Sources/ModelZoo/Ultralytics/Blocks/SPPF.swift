import Foundation
import Tensor

/// `SPPF`: cv1 (c1/2), n chained max pools (k, stride 1), all concatenated, cv2; a residual when `shortcut`.
public struct SPPF: UnaryModule {
    let cv1: Child<Conv>, cv2: Child<Conv>
    let k: Int, n: Int, add: Bool

    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 5, n: Int = 3, shortcut: Bool = false, cv1Act: Activation, act: Activation = .silu) throws {
        let c = c1 / 2
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c, k: 1, act: cv1Act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: c * (n + 1), c2: c2, k: 1, act: act) }
        self.k = k; self.n = n
        add = shortcut && c1 == c2
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var ys = [try cv1(x, ctx)]
        for _ in 0 ..< n { ys.append(maxPool2d(ys[ys.count - 1], kernel: k, stride: 1, padding: k / 2)) }
        let y = try cv2.overChannels(of: ys, ctx)
        return add ? y + x : y
    }

    /// `[c2, k, n, shortcut]`; parse_model gives cv1 the default activation for legacy rows ([c1, c2, k] at most).
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let k = try ctx.int(1, default: 5, name: "k"), n = try ctx.int(2, default: 3, name: "n"), sc = try ctx.bool(3, default: false)
        let legacy = ctx.args.count <= 2
        let layer = try SPPF(ctx.weights, c1: ctx.c1, c2: c2, k: k, n: n, shortcut: sc,
                             cv1Act: legacy ? ctx.defaultActivation : .identity, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
    }
}
