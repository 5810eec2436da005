import Foundation
import Tensor

/// `Attention` (YOLO11's position-sensitive attention, also YOLOv10's PSA): qkv 1x1 Conv to heads x (2 key_dim +
/// head_dim) channels, softmax(q^T k * key_dim^-0.5) over the H*W positions per head, v weighted by it, plus a
/// depth-wise 3x3 positional encoding of v (pe), then proj. [1, C, H, W] -> [1, C, H, W].
/// Records the attention weights [heads, H*W, H*W] (query grid -> key grid).
public struct Attention: UnaryModule {
    let qkv: Child<Conv>, proj: Child<Conv>, pe: Child<Conv>
    let heads: Int, headDim: Int, keyDim: Int

    public init(_ w: WeightScope, dim: Int, heads: Int = 8, attnRatio: Double = 0.5) throws {
        guard heads >= 1, dim % heads == 0 else {
            throw ModuleInputError("Attention", "\(dim) channels do not split into \(heads) heads")
        }
        self.heads = heads
        headDim = dim / heads
        keyDim = Int(Double(headDim) * attnRatio)
        let h = dim + 2 * keyDim * heads
        qkv = try Child(w, "qkv") { try Conv($0, c1: dim, c2: h, k: 1, act: .identity) }
        proj = try Child(w, "proj") { try Conv($0, c1: dim, c2: dim, k: 1, act: .identity) }
        pe = try Child(w, "pe") { try Conv($0, c1: dim, c2: dim, k: 3, s: 1, g: dim, act: .identity) }
    }

    /// Its two matrix products (q^T k and v attn^T), which the reference counter counts: 2 x heads x N^2 x
    /// (key_dim + head_dim) for N = H*W positions. Its convolutions are its children's.
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        let n = Double(output[2] * output[3])
        return 2 * Double(heads) * n * n * Double(keyDim + headDim)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let c = x.shape[1], h = x.shape[2], w = x.shape[3], n = h * w
        let t = try qkv(x, ctx).reshaped([heads, 2 * keyDim + headDim, n])
        let q = slice(t, axis: 1, range: 0 ..< keyDim), k = slice(t, axis: 1, range: keyDim ..< 2 * keyDim)
        let v = slice(t, axis: 1, range: 2 * keyDim ..< 2 * keyDim + headDim)     // [heads, head_dim, N]
        let scale = 1 / Float(keyDim).squareRoot()
        let attn = softmax(matmul(q * scale, k, transposeA: true), axis: -1)       // [heads, N (query), N (key)]
        ctx.probe("attention weights: softmax(q^T k / sqrt(\(keyDim))) over the \(h)x\(w) positions, per head",
                  .attention(attn, query: GridSize(h, w), key: GridSize(h, w)))
        let y = matmul(v, attn, transposeB: true).reshaped([1, c, h, w])
        return try proj(y + (try pe(v.reshaped([1, c, h, w]), ctx)), ctx)
    }
}

/// `PSABlock`: x + Attention(x), then x + FFN(x) (1x1 Conv to 2c, 1x1 Conv back without activation); no residuals
/// when `shortcut` is false.
public struct PSABlock: UnaryModule {
    let attn: Child<Attention>
    let ffn: Child<Sequential>
    let add: Bool

    public init(_ w: WeightScope, c: Int, attnRatio: Double = 0.5, heads: Int = 4, shortcut: Bool = true) throws {
        attn = try Child(w, "attn") { try Attention($0, dim: c, heads: heads, attnRatio: attnRatio) }
        ffn = try Child(w, "ffn") { f in
            Sequential([try Conv(f.scope(0), c1: c, c2: 2 * c, k: 1), try Conv(f.scope(1), c1: 2 * c, c2: c, k: 1, act: .identity)])
        }
        add = shortcut
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let a = try attn(x, ctx)
        let y = add ? x + a : a
        let f = try ffn(y, ctx)
        return add ? y + f : f
    }
}

/// `C2PSA` (YOLO11): cv1 to 2c channels, split; n PSABlocks on the second half; concatenated; cv2 back to c1.
public struct C2PSA: UnaryModule {
    let c: Int
    let cv1: Child<Conv>, cv2: Child<Conv>
    let m: [Child<PSABlock>]

    public init(_ w: WeightScope, c1: Int, c2: Int, n: Int = 1, e: Double = 0.5, act: Activation = .silu) throws {
        guard c1 == c2 else { throw ModuleInputError("C2PSA", "keeps its channels: c1 \(c1) must equal c2 \(c2)") }
        let c = Int(Double(c1) * e)
        self.c = c
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: 2 * c, k: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: 2 * c, c2: c1, k: 1, act: act) }
        m = try [Child](w, "m", count: n) { _, s in try PSABlock(s, c: c, attnRatio: 0.5, heads: max(c / 64, 1)) }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv1(x, ctx)
        var b = slice(y, axis: 1, range: c ..< 2 * c)
        for block in m { b = try block(b, ctx) }
        return try cv2(concat([slice(y, axis: 1, range: 0 ..< c), b], axis: 1), ctx)
    }

    /// `[c2, e]`, repeats n.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let e = try ctx.double(1, default: 0.5)
        let layer = try C2PSA(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, e: e, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + ctx.args.dropFirst())
    }
}

/// `SCDown` (YOLOv10): a 1x1 Conv to c2, then a depth-wise k x k Conv with stride s and no activation.
public struct SCDown: UnaryModule {
    let cv1: Child<Conv>, cv2: Child<Conv>

    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int, s: Int, act: Activation = .silu) throws {
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: c2, k: 1, s: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: c2, c2: c2, k: k, s: s, g: c2, act: .identity) }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try cv2(cv1(x, ctx), ctx) }

    /// `[c2, k, s]`.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let k = try ctx.int(1, name: "k"), s = try ctx.int(2, name: "s")
        let layer = try SCDown(ctx.weights, c1: ctx.c1, c2: c2, k: k, s: s, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
    }
}
