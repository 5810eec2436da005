import Foundation
import Tensor

/// `C2f`: cv1 to 2c channels, split in two, n inner blocks chained on the second half (Bottlenecks; C3k2's
/// C3k or Bottlenecks), every piece concatenated, cv2.
public struct C2f: UnaryModule {
    let c: Int
    let cv1: Child<Conv>, cv2: Child<Conv>
    let m: [Child<AnyModule>]
    public let typeName: String

    /// `inner` builds the i-th inner block (c -> c channels) from its weights.
    init(_ w: WeightScope, c1: Int, c2: Int, n: Int, e: Double, act: Activation, typeName: String = "C2f",
         inner: (Int, WeightScope, Int) throws -> any UnaryModule) throws {
        let c = Int(Double(c2) * e)
        self.c = c
        self.typeName = typeName
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: 2 * c, k: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: (2 + n) * c, c2: c2, k: 1, act: act) }
        m = try [Child](w, "m", count: n) { i, s in AnyModule(try inner(i, s, c)) }
    }

    public init(_ w: WeightScope, c1: Int, c2: Int, n: Int = 1, shortcut: Bool = false, g: Int = 1, e: Double = 0.5,
                act: Activation = .silu) throws {
        try self.init(w, c1: c1, c2: c2, n: n, e: e, act: act) { _, s, c in
            try Bottleneck(s, c1: c, c2: c, shortcut: shortcut, g: g, k: (3, 3), e: 1, act: act)
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv1(x, ctx)
        let conv = cv2.module
        guard let act = conv.act.fused, !m.isEmpty, ctx.recorder == nil else {
            var ys = chunk(y, 2, axis: 1)
            for b in m { ys.append(try b(ys[ys.count - 1], ctx)) }
            return try cv2(concat(ys, axis: 1), ctx)
        }
        // cv2 reads cv1's output and each inner block's output where they lie (no chunk, no concat copies).
        var last = slice(y, axis: 1, range: c ..< 2 * c)
        var parts: [(Tensor, Range<Int>)] = [(y, 0 ..< 2 * c)]
        for b in m {
            last = try b(last, ctx)
            parts.append((last, 0 ..< c))
        }
        return conv1x1(concatenating: parts, weight: conv.weight, bias: conv.bias, activation: act)
    }

    /// `[c2, shortcut, g, e]`, repeats n.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let sc = try ctx.bool(1, default: false), g = try ctx.int(2, default: 1, name: "g"), e = try ctx.double(3, default: 0.5)
        let layer = try C2f(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, shortcut: sc, g: g, e: e, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + ctx.args.dropFirst())
    }
}
