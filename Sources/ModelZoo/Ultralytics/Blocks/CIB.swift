import Foundation
import Tensor

/// `RepVGGDW` (YOLOv10): a depth-wise 7x7 Conv and a depth-wise 3x3 Conv (both with batch norm, no activation) on the
/// same input, summed, then SiLU. The two branches are folded into one 7x7 depth-wise convolution when the weights
/// load (the 3x3 kernel padded to 7x7, as ultralytics' `RepVGGDW.fuse`); parameters and FLOPs count both branches,
/// as the reference runs them. Keys: `conv.conv.weight`, `conv.bn.*`, `conv1.conv.weight`, `conv1.bn.*`.
public struct RepVGGDW: UnaryModule {
    let dim: Int
    let weight: Tensor, bias: Tensor

    public init(_ w: WeightScope, dim: Int) throws {
        self.dim = dim
        let big = try Conv(w.scope("conv"), c1: dim, c2: dim, k: 7, s: 1, p: 3, g: dim, act: .identity)
        let small = try Conv(w.scope("conv1"), c1: dim, c2: dim, k: 3, s: 1, p: 1, g: dim, act: .identity)
        var fused = big.weight.data
        small.weight.data.withUnsafeBufferPointer { s in
            for c in 0 ..< dim {
                for y in 0 ..< 3 { for x in 0 ..< 3 { fused[c * 49 + (y + 2) * 7 + x + 2] += s[c * 9 + y * 3 + x] } }
            }
        }
        weight = Tensor(shape: [dim, 1, 7, 7], data: fused)
        bias = big.bias + small.bias
    }

    /// Both branches: each a depth-wise conv with its batch norm's weight and bias.
    public var ownParameterCount: Int { dim * (49 + 2) + dim * (9 + 2) }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        convFlops(output, cinPerGroup: 1, k: 7) + convFlops(output, cinPerGroup: 1, k: 3) + 2 * batchNormFlops(output)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: 1, padding: 3, dilation: 1, groups: dim, activation: .silu)
    }
}

/// `CIB` (YOLOv10's compact inverted block): cv1 = depth-wise 3x3 Conv, 1x1 Conv to 2c_, depth-wise 3x3 Conv (or
/// RepVGGDW when `lk`), 1x1 Conv to c2, depth-wise 3x3 Conv; a residual when `shortcut` and c1 == c2.
public struct CIB: UnaryModule {
    let cv1: Child<Sequential>
    let add: Bool

    public init(_ w: WeightScope, c1: Int, c2: Int, shortcut: Bool = true, e: Double = 0.5, lk: Bool = false,
                act: Activation = .silu) throws {
        let c = Int(Double(c2) * e)
        cv1 = try Child(w, "cv1") { s in
            Sequential([
                try makeDWConv(s.scope(0), c1: c1, c2: c1, k: 3, act: act),
                try Conv(s.scope(1), c1: c1, c2: 2 * c, k: 1, act: act),
                lk ? try RepVGGDW(s.scope(2), dim: 2 * c) : try makeDWConv(s.scope(2), c1: 2 * c, c2: 2 * c, k: 3, act: act),
                try Conv(s.scope(3), c1: 2 * c, c2: c2, k: 1, act: act),
                try makeDWConv(s.scope(4), c1: c2, c2: c2, k: 3, act: act),
            ])
        }
        add = shortcut && c1 == c2
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv1(x, ctx)
        return add ? x + y : y
    }
}

/// `C2fCIB` (YOLOv10): a C2f whose inner blocks are CIBs (e 1.0, large-kernel RepVGGDW when `lk`).
enum C2fCIB {
    /// `[c2, shortcut, lk, g, e]`, repeats n (args printed as [c1, c2, n, shortcut, lk, ...]).
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let shortcut = try ctx.bool(1, default: false), lk = try ctx.bool(2, default: false)
        _ = try ctx.int(3, default: 1, name: "g")   // C2f's own Bottlenecks take g; the CIBs that replace them do not
        let e = try ctx.double(4, default: 0.5)
        let act = ctx.defaultActivation
        let layer = try C2f(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, e: e, act: act, typeName: "C2fCIB") { _, s, c in
            try CIB(s, c1: c, c2: c, shortcut: shortcut, e: 1, lk: lk, act: act)
        }
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + ctx.args.dropFirst())
    }
}

/// `PSA` (YOLOv10): cv1 to 2c channels, split; the second half through x + Attention(x) and x + FFN(x) (a PSABlock
/// whose `attn` and `ffn` sit on the PSA itself); concatenated; cv2 back to c1.
public struct PSA: UnaryModule {
    let c: Int
    let cv1: Child<Conv>, cv2: Child<Conv>
    /// Its `attn` and `ffn` children are the PSA's own (keys `attn.*`, `ffn.*`).
    let block: PSABlock

    public init(_ w: WeightScope, c1: Int, c2: Int, e: Double = 0.5, act: Activation = .silu) throws {
        guard c1 == c2 else { throw ModuleInputError("PSA", "keeps its channels: c1 \(c1) must equal c2 \(c2)") }
        let c = Int(Double(c1) * e)
        self.c = c
        cv1 = try Child(w, "cv1") { try Conv($0, c1: c1, c2: 2 * c, k: 1, act: act) }
        cv2 = try Child(w, "cv2") { try Conv($0, c1: 2 * c, c2: c1, k: 1, act: act) }
        block = try PSABlock(w, c: c, attnRatio: 0.5, heads: max(c / 64, 1))
    }

    public var children: [(key: String, module: any Module)] {
        [(cv1.key, cv1.module)] + block.children + [(cv2.key, cv2.module)]
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv1(x, ctx)
        let b = try block.forward(slice(y, axis: 1, range: c ..< 2 * c), ctx)
        return try cv2(concat([slice(y, axis: 1, range: 0 ..< c), b], axis: 1), ctx)
    }

    /// `[c2, e]`.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let e = try ctx.double(1, default: 0.5)
        let layer = try PSA(ctx.weights, c1: ctx.c1, c2: c2, e: e, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
    }
}
