import Foundation
import Tensor

/// Zero padding of one row at the bottom and one column at the right (F.pad(x, [0, 1, 0, 1])).
func padRightBottom(_ x: Tensor) -> Tensor { padConstant(x, before: [0, 0, 0, 0], after: [0, 0, 1, 1]) }

/// `HGStem` (PPHGNetV2 stem), ReLU throughout: stem1 (3x3/2), then a 2x2 conv pair and a 2x2 max pool side by
/// side on the padded map, concatenated, stem3 (3x3/2) and stem4 (1x1).
public struct HGStem: UnaryModule {
    let stem1: Child<Conv>, stem2a: Child<Conv>, stem2b: Child<Conv>, stem3: Child<Conv>, stem4: Child<Conv>

    public init(_ w: WeightScope, c1: Int, cm: Int, c2: Int) throws {
        stem1 = try Child(w, "stem1") { try Conv($0, c1: c1, c2: cm, k: 3, s: 2, act: .relu) }
        stem2a = try Child(w, "stem2a") { try Conv($0, c1: cm, c2: cm / 2, k: 2, s: 1, p: 0, act: .relu) }
        stem2b = try Child(w, "stem2b") { try Conv($0, c1: cm / 2, c2: cm, k: 2, s: 1, p: 0, act: .relu) }
        stem3 = try Child(w, "stem3") { try Conv($0, c1: cm * 2, c2: cm, k: 3, s: 2, act: .relu) }
        stem4 = try Child(w, "stem4") { try Conv($0, c1: cm, c2: c2, k: 1, s: 1, act: .relu) }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let a = padRightBottom(try stem1(x, ctx))
        let b = try stem2b(padRightBottom(try stem2a(a, ctx)), ctx)
        let p = maxPool2d(a, kernel: 2, stride: 1, padding: 0, ceilMode: true)
        return try stem4(stem3(concat([p, b], axis: 1), ctx), ctx)
    }

    /// `[cm, c2]` (not width-scaled).
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let cm = try ctx.int(0, name: "cm"), c2 = try ctx.int(1, name: "c2")
        return BuiltLayer(try HGStem(ctx.weights, c1: ctx.c1, cm: cm, c2: c2), outputChannels: c2,
                          arguments: [.int(ctx.c1), .int(cm), .int(c2)] + ctx.args.dropFirst(2))
    }
}
