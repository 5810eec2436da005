import Foundation
import Tensor

/// `HGBlock`: n chained Conv or LightConv (k x k, ReLU), all outputs concatenated with the input, squeeze (sc)
/// to c2/2 and excite (ec) to c2, with a residual when `shortcut` and c1 == c2.
/// `HGBlock_NAM` (seed 003's "HGBlock with NAM") is the same block with NAM channel attention (`nam`) on the
/// excited map, before the residual.
public struct HGBlock: UnaryModule {
    let m: [Child<AnyModule>]
    let sc: Child<Conv>, ec: Child<Conv>
    let nam: Child<NAM>?
    let add: Bool
    let c1: Int

    public init(_ w: WeightScope, c1: Int, cm: Int, c2: Int, k: Int = 3, n: Int = 6, lightconv: Bool = false,
                shortcut: Bool = false, act: Activation = .relu, withNAM: Bool = false) throws {
        guard c1 > 0, cm > 0, c2 > 1, n > 0, k > 0 else {
            throw ModuleInputError(withNAM ? "HGBlock_NAM" : "HGBlock", "channels, n and k must be positive (c1 \(c1), cm \(cm), c2 \(c2), n \(n), k \(k))")
        }
        self.c1 = c1
        m = try [Child](w, "m", count: n) { i, s in
            let cin = i == 0 ? c1 : cm
            return AnyModule(lightconv ? try LightConv(s, c1: cin, c2: cm, k: k, act: act) : try Conv(s, c1: cin, c2: cm, k: k, act: act))
        }
        sc = try Child(w, "sc") { try Conv($0, c1: c1 + n * cm, c2: c2 / 2, k: 1, act: act) }
        ec = try Child(w, "ec") { try Conv($0, c1: c2 / 2, c2: c2, k: 1, act: act) }
        // ultralytics' initialize_weights sets every BatchNorm2d's eps to 1e-3, NAM's included.
        nam = withNAM ? try Child(w, "nam") { try NAM($0, channels: c2, bnEps: 1e-3) } : nil
        add = shortcut && c1 == c2
    }

    public var typeName: String { nam == nil ? "HGBlock" : "HGBlock_NAM" }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: c1, typeName)
        var ys = [x]
        for b in m { ys.append(try b(ys[ys.count - 1], ctx)) }
        // No concat of all of them (rtdetr-l's first HGBlock: 352 channels at 160x160, 36 MB written and read again).
        var y = try ec(sc.overChannels(of: ys, ctx), ctx)
        if let nam { y = try nam(y, ctx) }
        return add ? y + x : y
    }

    /// `[cm, c2, k, lightconv, shortcut]`, n inserted at 4 as parse_model does (args = [c1, cm, c2, k, n, ...];
    /// with fewer than 4 it lands at the end). Channels are not width-scaled.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let a = try hgBlockArguments(ctx)
        let layer = try HGBlock(ctx.weights, c1: ctx.c1, cm: a.cm, c2: a.c2, k: a.k, n: a.n, lightconv: a.light, shortcut: a.shortcut)
        return BuiltLayer(layer, outputChannels: a.c2, arguments: a.printed)
    }

    /// `HGBlock_NAM` rows: HGBlock's arguments.
    static func buildNAM(_ ctx: BuildContext) throws -> BuiltLayer {
        let a = try hgBlockArguments(ctx)
        do {
            let layer = try HGBlock(ctx.weights, c1: ctx.c1, cm: a.cm, c2: a.c2, k: a.k, n: a.n, lightconv: a.light, shortcut: a.shortcut, withNAM: true)
            return BuiltLayer(layer, outputChannels: a.c2, arguments: a.printed)
        } catch let e as ModuleInputError {
            throw ctx.error(e.problem)
        }
    }
}

/// HGBlock's row as parse_model reads it (shared with HGBlock_NAM).
func hgBlockArguments(_ ctx: BuildContext) throws -> (cm: Int, c2: Int, k: Int, n: Int, light: Bool, shortcut: Bool, printed: [LayerArg]) {
    var full: [LayerArg] = [.int(ctx.c1)] + ctx.args
    full.insert(.int(ctx.repeats), at: min(4, full.count))
    func at(_ i: Int) -> LayerArg? { i < full.count ? full[i] : nil }
    guard let cm = at(1)?.intValue, let c2 = at(2)?.intValue else { throw ctx.error("needs [cm, c2, ...]") }
    _ = try (ctx.checked(cm, argument: 0, name: "cm"), ctx.checked(c2, argument: 1, name: "c2"))
    let k = try ctx.checked(at(3)?.intValue ?? 3, argument: 2, name: "k"), n = try ctx.checked(at(4)?.intValue ?? 6, argument: 3, name: "n")
    return (cm, c2, k, n, at(5)?.boolValue ?? false, at(6)?.boolValue ?? false, full)
}

/// `LightConv`: 1x1 Conv without activation, then a depth-wise k x k Conv with `act` (ReLU by default).
public struct LightConv: UnaryModule {
    let conv1: Child<Conv>, conv2: Child<Conv>

    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, act: Activation = .relu) throws {
        conv1 = try Child(w, "conv1") { try Conv($0, c1: c1, c2: c2, k: 1, act: .identity) }
        conv2 = try Child(w, "conv2") { try makeDWConv($0, c1: c2, c2: c2, k: k, act: act) }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try conv2(conv1(x, ctx), ctx) }

    /// Not one of parse_model's base modules: args go in unchanged (c1, c2, k) and the channel bookkeeping keeps
    /// c2 = ch[f], as ultralytics does.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c1 = try ctx.int(0, name: "c1"), c2 = try ctx.int(1, name: "c2"), k = try ctx.int(2, default: 1, name: "k")
        guard c1 == ctx.c1 else { throw ctx.error("c1 \(c1) does not match the input's \(ctx.c1) channels") }
        return BuiltLayer(try LightConv(ctx.weights, c1: c1, c2: c2, k: k), outputChannels: ctx.c1, arguments: ctx.args)
    }
}
