import Foundation
import Tensor

/// ultralytics' `initialize_weights` sets the eps of every nn.BatchNorm2d in a model to 1e-3, the modules'
/// own included, so modules built into an ultralytics graph use it.
let ultralyticsBNEps: Float = 1e-3

extension UltralyticsRegistry {
    /// Builders for the attention modules, with the argument conventions of ultralytics and of the tutorials
    /// that graft these modules (each tutorial edits parse_model so the module receives its input channels):
    ///
    /// | YAML row                                              | built as                                      |
    /// |-------------------------------------------------------|-----------------------------------------------|
    /// | `[-1, 1, AIFI, [cm, heads]]`                          | AIFI(c1 = ch[f], cm = 2048, heads = 8)        |
    /// | `[[a, b, c], 1, RTDETRDecoder, [nc, hd, nq, ndp, nh, ndl, d_ffn]]` | RTDETRDecoder(nc, [ch[a], ch[b], ch[c]], ...) |
    /// | `[-1, 1, CoTAttention, [k]]` or `[c, k]`              | CoTAttention(c1, k = 3); out c1               |
    /// | `[-1, 1, CotLayer, [k]]` or `[c, k]`                  | CotLayer(c1, k = 3); out c1                   |
    /// | `[-1, 1, ContextAggregation, [r]]`                    | ContextAggregation(c1, reduction r = 1)       |
    /// | `[-1, 1, NAMAttention, []]` (also `NAM`)              | NAM(c1)                                       |
    /// | `[-1, n, HGBlock_NAM, [cm, c2, k, light, shortcut]]`  | as HGBlock, NAM on its output                 |
    /// | `[-1, 1, MSDeformAttn, [levels, heads, points]]`      | MSDeformAttnLayer(d = c1, 4, 8, 4)            |
    /// | `[-1, 1, ResNetLayer_CoT, [c1, c2, s, False, n, e]]`  | ResNetLayer with CotLayer bottlenecks; out e*c2 |
    ///
    /// A leading channel argument (`[c, k]`, as in tutorials whose parse_model does `c1, c2 = ch[f], args[0]`)
    /// is width-scaled like any output channel count and must equal the input channels: these modules keep
    /// the channel count.
    static func registerAttentionModules(into r: UltralyticsRegistry) {
        @Sendable func ints(_ ctx: BuildContext) throws -> [Int] {
            try ctx.args.indices.map { try ctx.int($0) }
        }
        /// (kernel) or (channels, kernel) -> kernel; checks the channels.
        @Sendable func kernelArg(_ ctx: BuildContext) throws -> Int {
            let a = try ints(ctx)
            switch a.count {
            case 0: return 3
            case 1: return try ctx.checked(a[0], argument: 0, name: "k")
            default:
                let c = ctx.scaledChannels(a[0])
                guard c == ctx.c1 else {
                    throw ctx.error("keeps its channel count: the first argument (\(a[0]), \(c) after width scaling) must equal the input channels \(ctx.c1)")
                }
                return try ctx.checked(a[1], argument: 1, name: "k")
            }
        }
        @Sendable func wrap(_ error: Error, _ ctx: BuildContext) -> Error {
            if let e = error as? ModuleInputError { return ctx.error(e.problem) }
            return error
        }

        r.add("AIFI") { ctx in
            let cm = try ctx.int(0, default: 2048, name: "cm"), heads = try ctx.int(1, default: 8, name: "num_heads")
            do {
                let m = try AIFI(ctx.weights, channels: ctx.c1, hidden: cm, heads: heads)
                return BuiltLayer(m, outputChannels: ctx.c1, arguments: [.int(ctx.c1)] + ctx.args,
                                  typeName: "ultralytics.nn.modules.transformer.AIFI")
            } catch { throw wrap(error, ctx) }
        }
        r.add("RTDETRDecoder") { ctx in
            let nc = try ctx.int(0, default: ctx.nc, name: "nc")
            let hd = try ctx.int(1, default: 256, name: "hd"), nq = try ctx.int(2, default: 300, name: "nq")
            let ndp = try ctx.int(3, default: 4, name: "ndp"), nh = try ctx.int(4, default: 8, name: "nh")
            let ndl = try ctx.int(5, default: 6, name: "ndl"), ffn = try ctx.int(6, default: 1024, name: "d_ffn")
            do {
                let d = try RTDETRDecoder(ctx.weights, nc: nc, channels: ctx.inputChannels, hidden: hd, queries: nq,
                                          points: ndp, heads: nh, layers: ndl, ffn: ffn, bnEps: ultralyticsBNEps)
                var printed = ctx.args.isEmpty ? [LayerArg.int(nc)] : ctx.args
                printed.insert(.list(ctx.inputChannels.map { .int($0) }), at: 1)
                return BuiltLayer(d, outputChannels: 4 + nc, arguments: printed,
                                  typeName: "ultralytics.nn.modules.head.RTDETRDecoder")
            } catch { throw wrap(error, ctx) }
        }
        r.add("CoTAttention") { ctx in
            let k = try kernelArg(ctx)
            do {
                return BuiltLayer(try CoTAttention(ctx.weights, channels: ctx.c1, kernel: k, bnEps: ultralyticsBNEps),
                                  outputChannels: ctx.c1, arguments: [.int(ctx.c1), .int(k)])
            } catch { throw wrap(error, ctx) }
        }
        r.add("CotLayer") { ctx in
            let k = try kernelArg(ctx)
            do {
                return BuiltLayer(try CotLayer(ctx.weights, channels: ctx.c1, kernel: k, bnEps: ultralyticsBNEps),
                                  outputChannels: ctx.c1, arguments: [.int(ctx.c1), .int(k)])
            } catch { throw wrap(error, ctx) }
        }
        r.add("ContextAggregation") { ctx in
            let a = try ints(ctx)
            let red = a.first ?? 1
            guard red > 0 else { throw ctx.error("reduction must be positive, got \(red)") }
            return BuiltLayer(try ContextAggregation(ctx.weights, channels: ctx.c1, reduction: red),
                              outputChannels: ctx.c1, arguments: [.int(ctx.c1), .int(red)])
        }
        let nam: Builder = { ctx in
            BuiltLayer(try NAM(ctx.weights, channels: ctx.c1, bnEps: ultralyticsBNEps), outputChannels: ctx.c1, arguments: [.int(ctx.c1)])
        }
        r.add("NAMAttention", nam)
        r.add("NAM", nam)
        r.add("ResNetLayer_CoT") { ctx in
            // parse_model's ResNetLayer handling: args as written [c1, c2, s, is_first, n, e]; c2 out = e * c2.
            let c1 = try ctx.int(0, name: "c1"), c2 = try ctx.int(1, name: "c2"), s = try ctx.int(2, default: 1, name: "s")
            let first = try ctx.bool(3, default: false), n = try ctx.int(4, default: 1, name: "n"), e = try ctx.int(5, default: 4, name: "e")
            _ = try ctx.checked(c2 * e, argument: 1, name: "c2")
            guard !first else { throw ctx.error("the stem (is_first True) has no 3x3 bottleneck conv to replace; use ResNetLayer for it") }
            guard c1 == ctx.c1 else { throw ctx.error("c1 (\(c1)) does not match the input channels (\(ctx.c1))") }
            do {
                let m = try ResNetLayerCoT(ctx.weights, c1: c1, c2: c2, s: s, n: n, e: e)
                return BuiltLayer(m, outputChannels: e * c2, arguments: ctx.args)
            } catch { throw wrap(error, ctx) }
        }
        r.add("CoTResNetLayer") { ctx in try UltralyticsRegistry.builder("ResNetLayer_CoT")!(ctx) }
        r.add("HGBlock_NAM", HGBlock.buildNAM)
        r.add("HGBlockNAM", HGBlock.buildNAM)
        r.add("MSDeformAttn") { ctx in
            let levels = try ctx.int(0, default: 4, name: "n_levels"), heads = try ctx.int(1, default: 8, name: "n_heads")
            let points = try ctx.int(2, default: 4, name: "n_points")
            do {
                let m = try MSDeformAttnLayer(ctx.weights, dModel: ctx.c1, levels: levels, heads: heads, points: points)
                return BuiltLayer(m, outputChannels: ctx.c1, arguments: [.int(ctx.c1), .int(levels), .int(heads), .int(points)])
            } catch { throw wrap(error, ctx) }
        }
    }
}
