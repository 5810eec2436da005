import Foundation
import Tensor

/// `RepConv` (as RT-DETR uses it, without the identity BN): 3x3 Conv+BN plus 1x1 Conv+BN, summed, then the
/// activation. Both branches are folded into one 3x3 conv at load time; it counts as the two branches it runs as
/// in the reference. `norm` and `eps` name the branches' batch norm and its epsilon (transformers' RepVggBlock:
/// `norm`, the config's batch_norm_eps).
func makeRepConv(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, g: Int = 1, act: Activation = .silu,
                 norm: String = "bn", eps: Float = 1e-3) throws -> Conv {
    let a = try Conv(w.scope("conv1"), c1: c1, c2: c2, k: 3, s: s, p: 1, g: g, act: .identity, eps: eps, keys: ("conv", norm))
    let b = try Conv(w.scope("conv2"), c1: c1, c2: c2, k: 1, s: s, p: 0, g: g, act: .identity, eps: eps, keys: ("conv", norm))
    // Pad the 1x1 kernel to 3x3 (its weight at the centre) and add.
    var wt = a.weight
    let per = c1 / g
    for o in 0 ..< c2 {
        for i in 0 ..< per { wt.data[(o * per + i) * 9 + 4] += b.weight.data[o * per + i] }
    }
    return Conv(folded: wt, bias: a.bias + b.bias, c1: c1, c2: c2, k: 3, s: s, p: 1, g: g, d: 1, act: act, branchKernels: [3, 1])
}

/// `RepC3`: cv1 -> n RepConvs, plus cv2, summed, then cv3 (identity when c_ == c2).
public struct RepC3: UnaryModule {
    let cv1: Child<Conv>, cv2: Child<Conv>, cv3: Child<Conv>?
    let m: [Child<Conv>]

    public init(_ w: WeightScope, c1: Int, c2: Int, n: Int = 3, e: Double = 1, act: Activation = .silu) throws {
        let c = Int(Double(c2) * e)
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c, k: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: c1, c2: c, k: 1, act: act) }
        m = try [Child](w, "m", count: n) { _, s in try makeRepConv(s, c1: c, c2: c) }
        cv3 = c != c2 ? try Child(w, "cv3") { try Conv($0, c1: c, c2: c2, k: 1, act: act) } : nil
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = try cv1(x, ctx)
        for b in m { y = try b(y, ctx) }
        y = y + (try cv2(x, ctx))
        return try cv3?(y, ctx) ?? y
    }

    /// `[c2, e]`, repeats n.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let e = try ctx.double(1, default: 1)
        let layer = try RepC3(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, e: e, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + ctx.args.dropFirst())
    }
}
