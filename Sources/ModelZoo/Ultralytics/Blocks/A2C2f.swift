import Foundation
import Tensor

/// `AAttn` (YOLO12's area attention): qkv 1x1 Conv to 3 x heads x head_dim channels (per head: q, k, v), the H*W
/// positions in raster order cut into `area` equal runs (horizontal strips when H divides), softmax(q^T k /
/// sqrt(head_dim)) within each area per head, v weighted by it, plus a depth-wise 7x7 positional encoding of v (pe),
/// then proj. [1, C, H, W] -> [1, C, H, W]. Records the attention weights of each area [heads, n, n] (n = H*W / area).
public struct AAttn: UnaryModule {
    let qkv: Child<Conv>, proj: Child<Conv>, pe: Child<Conv>
    let heads: Int, headDim: Int, area: Int

    public init(_ w: WeightScope, dim: Int, heads: Int, area: Int = 1) throws {
        guard heads >= 1, dim / heads >= 1 else { throw ModuleInputError("AAttn", "\(dim) channels do not split into \(heads) heads") }
        self.heads = heads
        headDim = dim / heads
        self.area = max(area, 1)
        let all = headDim * heads
        qkv = try Child(w, "qkv") { try Conv($0, c1: dim, c2: 3 * all, k: 1, act: .identity) }
        proj = try Child(w, "proj") { try Conv($0, c1: all, c2: dim, k: 1, act: .identity) }
        pe = try Child(w, "pe") { try Conv($0, c1: all, c2: all, k: 7, s: 1, p: 3, g: all, act: .identity) }
    }

    /// Its two matrix products per area (q^T k and v attn^T), as the reference counter counts `@`:
    /// 2 x area x heads x n^2 x 2 head_dim for n = H*W / area positions per area.
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        let n = Double(output[2] * output[3] / area)
        return 2 * Double(area * heads) * n * n * Double(2 * headDim)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let h = x.shape[2], w = x.shape[3], big = h * w, all = heads * headDim
        guard big % area == 0 else {
            throw ModuleInputError(ctx.path.isEmpty ? "AAttn" : "\(ctx.path) (AAttn)",
                                   "its \(h)x\(w) map has \(big) positions, which do not split into \(area) equal areas")
        }
        let n = big / area
        let t = try qkv(x, ctx).reshaped([3 * all, big])
        let scale = 1 / Float(headDim).squareRoot()
        // An area is a run of n positions in raster order: a strip of n / W rows when W divides n.
        let grid = n % w == 0 ? GridSize(n / w, w) : GridSize(1, n)
        var outs: [Tensor] = [], vs: [Tensor] = []
        for a in 0 ..< area {
            let part = (area == 1 ? t : slice(t, axis: 1, range: a * n ..< (a + 1) * n)).reshaped([heads, 3 * headDim, n])
            let q = slice(part, axis: 1, range: 0 ..< headDim), k = slice(part, axis: 1, range: headDim ..< 2 * headDim)
            let v = slice(part, axis: 1, range: 2 * headDim ..< 3 * headDim)            // [heads, head_dim, n]
            let attn = softmax(matmul(q * scale, k, transposeA: true), axis: -1)        // [heads, n (query), n (key)]
            ctx.probe("area attention: area \(a + 1) of \(area) (\(grid.height)x\(grid.width) positions), softmax(q^T k / sqrt(\(headDim))) per head",
                      .attention(attn, query: grid, key: grid), name: area == 1 ? nil : "area\(a)")
            outs.append(matmul(v, attn, transposeB: true).reshaped([all, n]))
            vs.append(v.reshaped([all, n]))
        }
        let y = (area == 1 ? outs[0] : concat(outs, axis: 1)).reshaped([1, all, h, w])
        let v = (area == 1 ? vs[0] : concat(vs, axis: 1)).reshaped([1, all, h, w])
        return try proj(y + (try pe(v, ctx)), ctx)
    }
}

/// `ABlock` (YOLO12): x + AAttn(x), then x + MLP(x) (1x1 Conv to dim x mlp_ratio, 1x1 Conv back without activation).
public struct ABlock: UnaryModule {
    let attn: Child<AAttn>
    let mlp: Child<Sequential>

    public init(_ w: WeightScope, dim: Int, heads: Int, mlpRatio: Double = 1.2, area: Int = 1) throws {
        attn = try Child(w, "attn") { try AAttn($0, dim: dim, heads: heads, area: area) }
        let hidden = Int(Double(dim) * mlpRatio)
        mlp = try Child(w, "mlp") { s in
            Sequential([try Conv(s.scope(0), c1: dim, c2: hidden, k: 1), try Conv(s.scope(1), c1: hidden, c2: dim, k: 1, act: .identity)])
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = x + (try attn(x, ctx))
        return y + (try mlp(y, ctx))
    }
}

/// `A2C2f` (YOLO12): cv1 to c_ = c2 x e channels, n inner blocks chained (two ABlocks with c_ / 32 heads when `a2`,
/// else a C3k), every piece concatenated, cv2; with `a2` and `residual`, x + gamma * y (gamma per channel).
public struct A2C2f: UnaryModule {
    let cv1: Child<Conv>, cv2: Child<Conv>
    let m: [Child<AnyModule>]
    let gamma: Tensor?

    public init(_ w: WeightScope, c1: Int, c2: Int, n: Int = 1, a2: Bool = true, area: Int = 1, residual: Bool = false,
                mlpRatio: Double = 2, e: Double = 0.5, g: Int = 1, shortcut: Bool = true, act: Activation = .silu) throws {
        let c = Int(Double(c2) * e)
        guard c % 32 == 0 else { throw ModuleInputError("A2C2f", "its hidden channels (\(c)) must be a multiple of 32") }
        guard !(a2 && residual) || c1 == c2 else {
            throw ModuleInputError("A2C2f", "a residual A2C2f keeps its channels: c1 \(c1) must equal c2 \(c2)")
        }
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c, k: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: (1 + n) * c, c2: c2, k: 1, act: act) }
        m = try [Child](w, "m", count: n) { _, s in
            if a2 {
                return AnyModule(Sequential(try (0 ..< 2).map { try ABlock(s.scope($0), dim: c, heads: c / 32, mlpRatio: mlpRatio, area: area) }))
            }
            return AnyModule(try C3.c3k(s, c1: c, c2: c, n: 2, shortcut: shortcut, g: g, act: act))
        }
        gamma = a2 && residual ? try w.tensor("gamma", shape: [c2], init: .constant(0.01)) : nil
    }

    public var ownParameterCount: Int { gamma?.count ?? 0 }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var ys = [try cv1(x, ctx)]
        for b in m { ys.append(try b(ys[ys.count - 1], ctx)) }
        let y = try cv2(concat(ys, axis: 1), ctx)
        guard let gamma else { return y }
        return x + gamma.reshaped([1, gamma.count, 1, 1]) * y
    }

    /// `[c2, a2, area, residual, mlp_ratio, e, g, shortcut]`, repeats n; parse_model appends residual True and
    /// mlp_ratio 1.2 for the l and x scales.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        var row = ctx
        if let s = ctx.scale, ["l", "x"].contains(s) { row.args += [.bool(true), .float(1.2)] }
        let a2 = try row.bool(1, default: true), area = try row.int(2, default: 1, name: "area")
        let residual = try row.bool(3, default: false), mlp = try row.double(4, default: 2)
        let e = try row.double(5, default: 0.5), g = try row.int(6, default: 1, name: "g"), shortcut = try row.bool(7, default: true)
        let layer = try A2C2f(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, a2: a2, area: area, residual: residual, mlpRatio: mlp,
                              e: e, g: g, shortcut: shortcut, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + row.args.dropFirst())
    }
}
