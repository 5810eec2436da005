import Foundation
import Tensor

/// `Bottleneck`: cv1 (k0) -> cv2 (k1, groups g), with a residual when `shortcut` and c1 == c2.
public struct Bottleneck: UnaryModule {
    let cv1: Child<Conv>, cv2: Child<Conv>
    let add: Bool

    public init(_ w: WeightScope, c1: Int, c2: Int, shortcut: Bool = true, g: Int = 1, k: (Int, Int) = (3, 3), e: Double = 0.5,
                act: Activation = .silu) throws {
        let c = Int(Double(c2) * e)
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c, k: k.0, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: c, c2: c2, k: k.1, g: g, act: act) }
        add = shortcut && c1 == c2
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv2(cv1(x, ctx), ctx)
        return add ? x + y : y
    }

    /// `[c2, shortcut, g, [k0, k1], e]`.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let sc = try ctx.bool(1, default: true), g = try ctx.int(2, default: 1, name: "g")
        var k = (3, 3)
        if let a = ctx.arg(3), case .list(let ks) = a, ks.count == 2, let k0 = ks[0].intValue, let k1 = ks[1].intValue {
            k = (try ctx.checked(k0, argument: 3, name: "k"), try ctx.checked(k1, argument: 3, name: "k"))
        }
        let e = try ctx.double(4, default: 0.5)
        let layer = try Bottleneck(ctx.weights, c1: ctx.c1, c2: c2, shortcut: sc, g: g, k: k, e: e, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
    }
}
