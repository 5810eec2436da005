import Foundation
import Tensor

/// `C3`: cv1 -> n Bottlenecks, beside cv2, concatenated, cv3 (c_ = c2 * e hidden channels).
/// `C3k` is a C3 whose Bottlenecks have k x k kernels (`k`: 3 by default) and no expansion.
public struct C3: UnaryModule {
    let cv1: Child<Conv>, cv2: Child<Conv>, cv3: Child<Conv>
    let m: [Child<Bottleneck>]
    public let typeName: String

    public init(_ w: WeightScope, c1: Int, c2: Int, n: Int = 1, shortcut: Bool = true, g: Int = 1, e: Double = 0.5,
                k: (Int, Int) = (1, 3), typeName: String = "C3", act: Activation = .silu) throws {
        let c = Int(Double(c2) * e)
        self.typeName = typeName
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c, k: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: c1, c2: c, k: 1, act: act) }
        cv3 = try Child(w, "cv3") { try Conv($0, c1: 2 * c, c2: c2, k: 1, act: act) }
        m = try [Child](w, "m", count: n) { _, s in try Bottleneck(s, c1: c, c2: c, shortcut: shortcut, g: g, k: k, e: 1, act: act) }
    }

    /// ultralytics' `C3k(c1, c2, n, shortcut, g, e, k)`.
    public static func c3k(_ w: WeightScope, c1: Int, c2: Int, n: Int = 1, shortcut: Bool = true, g: Int = 1, e: Double = 0.5,
                           k: Int = 3, act: Activation = .silu) throws -> C3 {
        try C3(w, c1: c1, c2: c2, n: n, shortcut: shortcut, g: g, e: e, k: (k, k), typeName: "C3k", act: act)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = try cv1(x, ctx)
        for b in m { y = try b(y, ctx) }
        return try cv3(concat([y, try cv2(x, ctx)], axis: 1), ctx)
    }
}

/// `C3k2` (YOLO11, YOLO26): a C2f whose inner blocks are Bottlenecks (e 0.5), C3k blocks (`c3k`), or a Bottleneck
/// followed by a PSABlock (`attn`, YOLO26). parse_model forces c3k for the m, l and x scales.
enum C3k2 {
    /// `[c2, c3k, e, attn, g, shortcut]`, repeats n (args printed as [c1, c2, n, c3k, e, ...]).
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        var args = ctx.args
        if let s = ctx.scale, ["m", "l", "x"].contains(s) {
            // args[3:4] = [True] on [c1, c2, n, ...]: replaces c3k, or appends it when the row has none.
            if args.count >= 2 { args[1] = .bool(true) } else { args.append(.bool(true)) }
        }
        var row = ctx
        row.args = args
        let c3k = try row.bool(1, default: false), e = try row.double(2, default: 0.5), attn = try row.bool(3, default: false)
        let g = try row.int(4, default: 1, name: "g"), shortcut = try row.bool(5, default: true)
        let act = ctx.defaultActivation
        let layer = try C2f(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, e: e, act: act, typeName: "C3k2") { _, s, c in
            if attn {
                return Sequential([try Bottleneck(s.scope(0), c1: c, c2: c, shortcut: shortcut, g: g, act: act),
                                   try PSABlock(s.scope(1), c: c, attnRatio: 0.5, heads: max(c / 64, 1))])
            }
            if c3k { return try C3.c3k(s, c1: c, c2: c, n: 2, shortcut: shortcut, g: g, act: act) }
            return try Bottleneck(s, c1: c, c2: c, shortcut: shortcut, g: g, act: act)
        }
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + args.dropFirst())
    }
}
