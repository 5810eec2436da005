import Foundation
import Tensor

// The convolutional blocks of ultralytics' YOLOv8 and RT-DETR configs (ultralytics/nn/modules/{conv,block}.py),
// with the reference's parameter names. Batch norms are folded into their convolutions when the weights load;
// parameter counts are the reference's (BN weight and bias included).

/// A one-input block: a `Layer` that also knows its output shape, usable as a top-level graph layer.
public protocol UnaryBlock: Layer, GraphLayer {
    func outputShape(inputShape: [Int]) -> [Int]
}

extension UnaryBlock {
    public func outputShape(inputShapes: [[Int]]) -> [Int] { outputShape(inputShape: inputShapes[0]) }
    public func flops(inputShapes: [[Int]]) -> Double { flops(inputShape: inputShapes[0]) }
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        LayerOutput(try forward(inputs[0], ctx))
    }
}

extension Activation {
    public func apply(_ x: Tensor) -> Tensor { applyActivation(self, x) }
}

/// Free function so the tensor ops are not shadowed by the enum's cases.
func applyActivation(_ a: Activation, _ x: Tensor) -> Tensor {
    switch a {
    case .identity: return x
    case .silu: return silu(x)
    case .relu: return relu(x)
    case .gelu: return gelu(x)
    case .sigmoid: return sigmoid(x)
    case .hardswish: return hardswish(x)
    case .leakyRelu(let s): return leakyRelu(x, slope: s)
    }
}

/// ultralytics' autopad: 'same' padding for odd kernels.
func autopad(_ k: Int, _ p: Int?, _ d: Int = 1) -> Int {
    if let p { return p }
    let ke = d > 1 ? d * (k - 1) + 1 : k
    return ke / 2
}

func convOut(_ n: Int, k: Int, s: Int, p: Int, d: Int) -> Int { (n + 2 * p - d * (k - 1) - 1) / s + 1 }

/// Conv2d(bias=False) + BatchNorm2d + activation (ultralytics `Conv`), BN folded at load time.
/// Keys: `conv.weight`, `bn.{weight,bias,running_mean,running_var}`.
public struct ConvBlock: UnaryBlock {
    public let c1: Int, c2: Int, k: Int, s: Int, p: Int, g: Int, d: Int
    public let act: Activation
    public let weight: Tensor
    public let bias: Tensor

    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, s: Int = 1, p: Int? = nil, g: Int = 1, d: Int = 1,
                act: Activation = .silu, eps: Float = 1e-3) throws {
        guard k >= 1, s >= 1, d >= 1, g >= 1, c1 % g == 0, c2 % g == 0 else {
            throw ModuleInputError("Conv", "kernel \(k), stride \(s), dilation \(d) and groups \(g) must be positive, and the groups must divide \(c1) -> \(c2) channels")
        }
        self.c1 = c1; self.c2 = c2; self.k = k; self.s = s; self.g = g; self.d = d
        self.p = autopad(k, p, d)
        self.act = act
        let cw = try w.tensor("conv.weight", shape: [c2, c1 / g, k, k], init: .kaimingUniform(fanIn: c1 / g * k * k))
        let bn = try BNParams(w.scope("bn"), c2)
        let f = foldBatchNorm(weight: cw, bias: nil, gamma: bn.gamma, beta: bn.beta, mean: bn.mean, variance: bn.variance, eps: eps)
        weight = f.weight
        bias = f.bias
    }

    /// A conv with an already folded weight and bias (e.g. RepConv's fused branches).
    init(folded weight: Tensor, bias: Tensor, c1: Int, c2: Int, k: Int, s: Int, p: Int, g: Int, d: Int, act: Activation) {
        self.c1 = c1; self.c2 = c2; self.k = k; self.s = s; self.p = p; self.g = g; self.d = d
        self.act = act
        self.weight = weight
        self.bias = bias
    }

    public var parameterCount: Int { c2 * (c1 / g) * k * k + 2 * c2 }
    public func outputShape(inputShape x: [Int]) -> [Int] {
        [x[0], c2, convOut(x[2], k: k, s: s, p: p, d: d), convOut(x[3], k: k, s: s, p: p, d: d)]
    }
    public func flops(inputShape: [Int]) -> Double {
        let o = outputShape(inputShape: inputShape)
        return convFlops(o, cinPerGroup: c1 / g, k: k) + batchNormFlops(o)
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        if let f = act.fused {
            return conv2d(x, weight: weight, bias: bias, stride: s, padding: p, dilation: d, groups: g, activation: f)
        }
        return act.apply(conv2d(x, weight: weight, bias: bias, stride: s, padding: p, dilation: d, groups: g))
    }
}

/// An affine batch norm as thop (and so ultralytics' GFLOPs) counts it: 2 ops to normalise and 2 for the affine
/// step per element, doubled like every thop count; we count it the same way so that totals agree.
func batchNormFlops(_ out: [Int]) -> Double { 8 * Double(out.reduce(1, *)) }

/// 2 * MACs of a convolution producing `out` (bias adds not counted, as thop).
func convFlops(_ out: [Int], cinPerGroup: Int, k: Int) -> Double {
    2 * Double(out.reduce(1, *)) * Double(cinPerGroup * k * k)
}

struct BNParams {
    let gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor
    init(_ w: WeightScope, _ c: Int) throws {
        gamma = try w.tensor("weight", shape: [c], init: .ones)
        beta = try w.tensor("bias", shape: [c], init: .zeros)
        mean = try w.tensor("running_mean", shape: [c], init: .zeros)
        variance = try w.tensor("running_var", shape: [c], init: .ones)
    }
}

/// A plain nn.Conv2d with bias (keys `weight`, `bias`).
public struct PlainConv: UnaryBlock {
    public let c1: Int, c2: Int, k: Int
    public let weight: Tensor, bias: Tensor?
    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, bias hasBias: Bool = true, biasInit: WeightInit? = nil) throws {
        self.c1 = c1; self.c2 = c2; self.k = k
        weight = try w.tensor("weight", shape: [c2, c1, k, k], init: .kaimingUniform(fanIn: c1 * k * k))
        bias = hasBias ? try w.tensor("bias", shape: [c2], init: biasInit ?? .kaimingUniform(fanIn: c1 * k * k)) : nil
    }
    public var parameterCount: Int { c2 * c1 * k * k + (bias == nil ? 0 : c2) }
    public func outputShape(inputShape x: [Int]) -> [Int] { [x[0], c2, x[2] - k + 1 + 2 * (k / 2), x[3] - k + 1 + 2 * (k / 2)] }
    public func flops(inputShape: [Int]) -> Double { convFlops(outputShape(inputShape: inputShape), cinPerGroup: c1, k: k) }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: 1, padding: k / 2)
    }
}

/// Depth-wise conv (ultralytics `DWConv`): Conv with groups = gcd(c1, c2).
public func makeDWConv(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, s: Int = 1, d: Int = 1, act: Activation = .silu) throws -> ConvBlock {
    try ConvBlock(w, c1: c1, c2: c2, k: k, s: s, g: gcd(c1, c2), d: d, act: act)
}

func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

/// Sequential composition of blocks (flops and shapes chained).
struct Chain: UnaryBlock {
    let blocks: [any UnaryBlock]
    var parameterCount: Int { blocks.reduce(0) { $0 + $1.parameterCount } }
    func outputShape(inputShape: [Int]) -> [Int] { blocks.reduce(inputShape) { $1.outputShape(inputShape: $0) } }
    func flops(inputShape: [Int]) -> Double {
        var s = inputShape, f = 0.0
        for b in blocks { f += b.flops(inputShape: s); s = b.outputShape(inputShape: s) }
        return f
    }
    func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = x
        for b in blocks { y = try b.forward(y, ctx) }
        return y
    }
}

/// `LightConv`: 1x1 Conv without activation, then a depth-wise k x k Conv with `act` (ReLU by default).
public struct LightConv: UnaryBlock {
    let conv1: ConvBlock, conv2: ConvBlock
    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, act: Activation = .relu) throws {
        conv1 = try ConvBlock(w.scope("conv1"), c1: c1, c2: c2, k: 1, act: .identity)
        conv2 = try makeDWConv(w.scope("conv2"), c1: c2, c2: c2, k: k, act: act)
    }
    public var parameterCount: Int { conv1.parameterCount + conv2.parameterCount }
    public func outputShape(inputShape: [Int]) -> [Int] { conv2.outputShape(inputShape: conv1.outputShape(inputShape: inputShape)) }
    public func flops(inputShape: [Int]) -> Double {
        conv1.flops(inputShape: inputShape) + conv2.flops(inputShape: conv1.outputShape(inputShape: inputShape))
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try conv2.forward(conv1.forward(x, ctx), ctx)
    }
}

/// `Bottleneck`: cv1 (k0) -> cv2 (k1, groups g), with a residual when `shortcut` and c1 == c2.
public struct Bottleneck: UnaryBlock {
    let cv1: ConvBlock, cv2: ConvBlock
    let add: Bool
    public init(_ w: WeightScope, c1: Int, c2: Int, shortcut: Bool = true, g: Int = 1, k: (Int, Int) = (3, 3), e: Double = 0.5,
                act: Activation = .silu) throws {
        let c = Int(Double(c2) * e)
        cv1 = try ConvBlock(w.scope("cv1"), c1: c1, c2: c, k: k.0, act: act)
        cv2 = try ConvBlock(w.scope("cv2"), c1: c, c2: c2, k: k.1, g: g, act: act)
        add = shortcut && c1 == c2
    }
    public var parameterCount: Int { cv1.parameterCount + cv2.parameterCount }
    public func outputShape(inputShape: [Int]) -> [Int] { cv2.outputShape(inputShape: cv1.outputShape(inputShape: inputShape)) }
    public func flops(inputShape: [Int]) -> Double {
        cv1.flops(inputShape: inputShape) + cv2.flops(inputShape: cv1.outputShape(inputShape: inputShape))
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv2.forward(cv1.forward(x, ctx), ctx)
        return add ? x + y : y
    }
}

/// `C2f`: cv1 to 2c channels, split in two, n Bottlenecks chained on the second half, all concatenated, cv2.
public struct C2f: UnaryBlock {
    let c: Int, c2: Int
    let cv1: ConvBlock, cv2: ConvBlock
    let m: [Bottleneck]
    public init(_ w: WeightScope, c1: Int, c2: Int, n: Int = 1, shortcut: Bool = false, g: Int = 1, e: Double = 0.5,
                act: Activation = .silu) throws {
        c = Int(Double(c2) * e)
        self.c2 = c2
        cv1 = try ConvBlock(w.scope("cv1"), c1: c1, c2: 2 * c, k: 1, act: act)
        cv2 = try ConvBlock(w.scope("cv2"), c1: (2 + n) * c, c2: c2, k: 1, act: act)
        let c = self.c
        m = try (0 ..< n).map { try Bottleneck(w.scope("m").scope($0), c1: c, c2: c, shortcut: shortcut, g: g, k: (3, 3), e: 1, act: act) }
    }
    public var parameterCount: Int { cv1.parameterCount + cv2.parameterCount + m.reduce(0) { $0 + $1.parameterCount } }
    public func outputShape(inputShape x: [Int]) -> [Int] { [x[0], c2, x[2], x[3]] }
    public func flops(inputShape x: [Int]) -> Double {
        let half = [x[0], c, x[2], x[3]]
        return cv1.flops(inputShape: x) + m.reduce(0) { $0 + $1.flops(inputShape: half) }
            + cv2.flops(inputShape: [x[0], (2 + m.count) * c, x[2], x[3]])
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv1.forward(x, ctx)
        guard let act = cv2.act.fused, !m.isEmpty else {
            var ys = chunk(y, 2, axis: 1)
            for b in m { ys.append(try b.forward(ys[ys.count - 1], ctx)) }
            return try cv2.forward(concat(ys, axis: 1), ctx)
        }
        // cv2 reads cv1's output and each bottleneck's output where they lie (no chunk, no concat copies).
        var last = slice(y, axis: 1, range: c ..< 2 * c)
        var parts: [(Tensor, Range<Int>)] = [(y, 0 ..< 2 * c)]
        for b in m {
            last = try b.forward(last, ctx)
            parts.append((last, 0 ..< c))
        }
        return conv1x1(concatenating: parts, weight: cv2.weight, bias: cv2.bias, activation: act)
    }
}

/// `SPPF`: cv1 (c1/2), three chained max pools (k, stride 1), concatenated, cv2.
public struct SPPF: UnaryBlock {
    let cv1: ConvBlock, cv2: ConvBlock
    let k: Int, n: Int, add: Bool, c2: Int
    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 5, n: Int = 3, shortcut: Bool = false, cv1Act: Activation, act: Activation = .silu) throws {
        let c = c1 / 2
        cv1 = try ConvBlock(w.scope("cv1"), c1: c1, c2: c, k: 1, act: cv1Act)
        cv2 = try ConvBlock(w.scope("cv2"), c1: c * (n + 1), c2: c2, k: 1, act: act)
        self.k = k; self.n = n; self.c2 = c2
        add = shortcut && c1 == c2
    }
    public var parameterCount: Int { cv1.parameterCount + cv2.parameterCount }
    public func outputShape(inputShape x: [Int]) -> [Int] { [x[0], c2, x[2], x[3]] }
    public func flops(inputShape x: [Int]) -> Double {
        cv1.flops(inputShape: x) + cv2.flops(inputShape: [x[0], cv1.c2 * (n + 1), x[2], x[3]])
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var ys = [try cv1.forward(x, ctx)]
        for _ in 0 ..< n { ys.append(maxPool2d(ys[ys.count - 1], kernel: k, stride: 1, padding: k / 2)) }
        let y = try cv2.forward(concat(ys, axis: 1), ctx)
        return add ? y + x : y
    }
}

/// Zero padding of one row at the bottom and one column at the right (F.pad(x, [0, 1, 0, 1])).
func padRightBottom(_ x: Tensor) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    return Tensor(shape: [n, c, h + 1, w + 1]) { out in
        x.data.withUnsafeBufferPointer { src in
            for pl in 0 ..< n * c {
                let s = pl * h * w, d = pl * (h + 1) * (w + 1)
                for i in 0 ..< h {
                    for j in 0 ..< w { out[d + i * (w + 1) + j] = src[s + i * w + j] }
                    out[d + i * (w + 1) + w] = 0
                }
                for j in 0 ... w { out[d + h * (w + 1) + j] = 0 }
            }
        }
    }
}

/// `HGStem` (PPHGNetV2 stem), ReLU throughout.
public struct HGStem: UnaryBlock {
    let stem1: ConvBlock, stem2a: ConvBlock, stem2b: ConvBlock, stem3: ConvBlock, stem4: ConvBlock
    public init(_ w: WeightScope, c1: Int, cm: Int, c2: Int) throws {
        stem1 = try ConvBlock(w.scope("stem1"), c1: c1, c2: cm, k: 3, s: 2, act: .relu)
        stem2a = try ConvBlock(w.scope("stem2a"), c1: cm, c2: cm / 2, k: 2, s: 1, p: 0, act: .relu)
        stem2b = try ConvBlock(w.scope("stem2b"), c1: cm / 2, c2: cm, k: 2, s: 1, p: 0, act: .relu)
        stem3 = try ConvBlock(w.scope("stem3"), c1: cm * 2, c2: cm, k: 3, s: 2, act: .relu)
        stem4 = try ConvBlock(w.scope("stem4"), c1: cm, c2: c2, k: 1, s: 1, act: .relu)
    }
    public var parameterCount: Int { [stem1, stem2a, stem2b, stem3, stem4].reduce(0) { $0 + $1.parameterCount } }
    public func outputShape(inputShape x: [Int]) -> [Int] {
        stem4.outputShape(inputShape: stem3.outputShape(inputShape: stem1.outputShape(inputShape: x)))
    }
    public func flops(inputShape x: [Int]) -> Double {
        let s1 = stem1.outputShape(inputShape: x)
        let padded = [s1[0], s1[1], s1[2] + 1, s1[3] + 1]
        let a = stem2a.outputShape(inputShape: padded)
        let s3 = stem3.outputShape(inputShape: [s1[0], 2 * s1[1], s1[2], s1[3]])
        return stem1.flops(inputShape: x) + stem2a.flops(inputShape: padded)
            + stem2b.flops(inputShape: [a[0], a[1], a[2] + 1, a[3] + 1])
            + stem3.flops(inputShape: [s1[0], 2 * s1[1], s1[2], s1[3]]) + stem4.flops(inputShape: s3)
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let a = padRightBottom(try stem1.forward(x, ctx))
        let b = try stem2b.forward(padRightBottom(try stem2a.forward(a, ctx)), ctx)
        let p = maxPool2d(a, kernel: 2, stride: 1, padding: 0, ceilMode: true)
        return try stem4.forward(stem3.forward(concat([p, b], axis: 1), ctx), ctx)
    }
}

/// `HGBlock`: n chained Conv or LightConv (k x k, ReLU), all outputs concatenated with the input, squeeze (sc)
/// to c2/2 and excite (ec) to c2, with a residual when `shortcut` and c1 == c2.
public struct HGBlock: UnaryBlock {
    let m: [any UnaryBlock]
    let sc: ConvBlock, ec: ConvBlock
    let add: Bool
    let c1: Int, cm: Int, c2: Int
    public init(_ w: WeightScope, c1: Int, cm: Int, c2: Int, k: Int = 3, n: Int = 6, lightconv: Bool = false,
                shortcut: Bool = false, act: Activation = .relu) throws {
        self.c1 = c1; self.cm = cm; self.c2 = c2
        m = try (0 ..< n).map { i -> any UnaryBlock in
            let cin = i == 0 ? c1 : cm
            return lightconv ? try LightConv(w.scope("m").scope(i), c1: cin, c2: cm, k: k, act: act)
                : try ConvBlock(w.scope("m").scope(i), c1: cin, c2: cm, k: k, act: act)
        }
        sc = try ConvBlock(w.scope("sc"), c1: c1 + n * cm, c2: c2 / 2, k: 1, act: act)
        ec = try ConvBlock(w.scope("ec"), c1: c2 / 2, c2: c2, k: 1, act: act)
        add = shortcut && c1 == c2
    }
    public var parameterCount: Int { m.reduce(0) { $0 + $1.parameterCount } + sc.parameterCount + ec.parameterCount }
    public func outputShape(inputShape x: [Int]) -> [Int] { [x[0], c2, x[2], x[3]] }
    public func flops(inputShape x: [Int]) -> Double {
        var s = x, f = 0.0
        for b in m { f += b.flops(inputShape: s); s = b.outputShape(inputShape: s) }
        return f + sc.flops(inputShape: [x[0], c1 + m.count * cm, x[2], x[3]]) + ec.flops(inputShape: [x[0], c2 / 2, x[2], x[3]])
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var ys = [x]
        for b in m { ys.append(try b.forward(ys[ys.count - 1], ctx)) }
        let y = try ec.forward(sc.forward(concat(ys, axis: 1), ctx), ctx)
        return add ? y + x : y
    }
}

/// `RepConv` (as RT-DETR uses it, without the identity BN): 3x3 Conv+BN plus 1x1 Conv+BN, summed, SiLU.
/// Both branches are folded into one 3x3 conv at load time.
public struct RepConv: UnaryBlock {
    let fused: ConvBlock
    let c1: Int, c2: Int
    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, g: Int = 1, act: Activation = .silu) throws {
        self.c1 = c1; self.c2 = c2
        let a = try ConvBlock(w.scope("conv1"), c1: c1, c2: c2, k: 3, s: s, p: 1, g: g, act: .identity)
        let b = try ConvBlock(w.scope("conv2"), c1: c1, c2: c2, k: 1, s: s, p: 0, g: g, act: .identity)
        // Pad the 1x1 kernel to 3x3 (its weight at the centre) and add.
        var wt = a.weight
        let per = (c1 / g)
        for o in 0 ..< c2 {
            for i in 0 ..< per { wt.data[(o * per + i) * 9 + 4] += b.weight.data[o * per + i] }
        }
        fused = ConvBlock(folded: wt, bias: a.bias + b.bias, c1: c1, c2: c2, k: 3, s: s, p: 1, g: g, d: 1, act: act)
    }
    public var parameterCount: Int { (c2 * (c1 / fused.g) * 9 + 2 * c2) + (c2 * (c1 / fused.g) + 2 * c2) }
    public func outputShape(inputShape: [Int]) -> [Int] { fused.outputShape(inputShape: inputShape) }
    /// Counted as the two unfused branches (3x3 + 1x1), as the reference runs them.
    public func flops(inputShape: [Int]) -> Double {
        let o = fused.outputShape(inputShape: inputShape)
        return convFlops(o, cinPerGroup: c1 / fused.g, k: 3) + convFlops(o, cinPerGroup: c1 / fused.g, k: 1) + 2 * batchNormFlops(o)
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try fused.forward(x, ctx) }
}

/// `RepC3`: cv1 -> n RepConvs, plus cv2, summed, then cv3 (identity when c_ == c2).
public struct RepC3: UnaryBlock {
    let cv1: ConvBlock, cv2: ConvBlock, cv3: ConvBlock?
    let m: [RepConv]
    let c: Int, c2: Int
    public init(_ w: WeightScope, c1: Int, c2: Int, n: Int = 3, e: Double = 1, act: Activation = .silu) throws {
        let c = Int(Double(c2) * e)
        self.c = c; self.c2 = c2
        cv1 = try ConvBlock(w.scope("cv1"), c1: c1, c2: c, k: 1, act: act)
        cv2 = try ConvBlock(w.scope("cv2"), c1: c1, c2: c, k: 1, act: act)
        m = try (0 ..< n).map { try RepConv(w.scope("m").scope($0), c1: c, c2: c) }
        cv3 = c != c2 ? try ConvBlock(w.scope("cv3"), c1: c, c2: c2, k: 1, act: act) : nil
    }
    public var parameterCount: Int {
        cv1.parameterCount + cv2.parameterCount + (cv3?.parameterCount ?? 0) + m.reduce(0) { $0 + $1.parameterCount }
    }
    public func outputShape(inputShape x: [Int]) -> [Int] { [x[0], c2, x[2], x[3]] }
    public func flops(inputShape x: [Int]) -> Double {
        let mid = [x[0], c, x[2], x[3]]
        return cv1.flops(inputShape: x) + cv2.flops(inputShape: x) + m.reduce(0) { $0 + $1.flops(inputShape: mid) }
            + (cv3?.flops(inputShape: mid) ?? 0)
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = try cv1.forward(x, ctx)
        for b in m { y = try b.forward(y, ctx) }
        y = y + (try cv2.forward(x, ctx))
        return try cv3?.forward(y, ctx) ?? y
    }
}

/// `ResNetBottleneck`: 1x1 -> 3x3 (stride s) -> 1x1 (e * c2, no activation) plus the shortcut, then ReLU.
public struct ResNetBottleneck: UnaryBlock {
    let cv1: ConvBlock, cv2: ConvBlock, cv3: ConvBlock
    let shortcut: ConvBlock?
    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, e: Int = 4, act: Activation = .silu) throws {
        let c3 = e * c2
        cv1 = try ConvBlock(w.scope("cv1"), c1: c1, c2: c2, k: 1, s: 1, act: act)
        cv2 = try ConvBlock(w.scope("cv2"), c1: c2, c2: c2, k: 3, s: s, p: 1, act: act)
        cv3 = try ConvBlock(w.scope("cv3"), c1: c2, c2: c3, k: 1, act: .identity)
        shortcut = (s != 1 || c1 != c3) ? try ConvBlock(w.scope("shortcut").scope(0), c1: c1, c2: c3, k: 1, s: s, act: .identity) : nil
    }
    public var parameterCount: Int {
        cv1.parameterCount + cv2.parameterCount + cv3.parameterCount + (shortcut?.parameterCount ?? 0)
    }
    public func outputShape(inputShape x: [Int]) -> [Int] {
        cv3.outputShape(inputShape: cv2.outputShape(inputShape: cv1.outputShape(inputShape: x)))
    }
    public func flops(inputShape x: [Int]) -> Double {
        let a = cv1.outputShape(inputShape: x), b = cv2.outputShape(inputShape: a)
        return cv1.flops(inputShape: x) + cv2.flops(inputShape: a) + cv3.flops(inputShape: b) + (shortcut?.flops(inputShape: x) ?? 0)
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        let y = try cv3.forward(cv2.forward(cv1.forward(x, ctx), ctx), ctx)
        var sum = y + (try shortcut?.forward(x, ctx) ?? x)
        applyActivation(&sum, .relu)
        return sum
    }
}

/// `ResNetLayer`: the 7x7 stem + 3x3/2 max pool when `isFirst`, else n ResNetBlocks (the first with stride s).
public struct ResNetLayer: UnaryBlock {
    let stem: ConvBlock?
    let blocks: [ResNetBottleneck]
    public init(_ w: WeightScope, c1: Int, c2: Int, s: Int = 1, isFirst: Bool = false, n: Int = 1, e: Int = 4, act: Activation = .silu) throws {
        if isFirst {
            stem = try ConvBlock(w.scope("layer").scope(0), c1: c1, c2: c2, k: 7, s: 2, p: 3, act: act)
            blocks = []
        } else {
            stem = nil
            blocks = try (0 ..< n).map { j in
                try ResNetBottleneck(w.scope("layer").scope(j), c1: j == 0 ? c1 : e * c2, c2: c2, s: j == 0 ? s : 1, e: e, act: act)
            }
        }
    }
    public var parameterCount: Int { (stem?.parameterCount ?? 0) + blocks.reduce(0) { $0 + $1.parameterCount } }
    public func outputShape(inputShape x: [Int]) -> [Int] {
        if let stem {
            let a = stem.outputShape(inputShape: x)
            return [a[0], a[1], (a[2] + 2 - 3) / 2 + 1, (a[3] + 2 - 3) / 2 + 1]
        }
        return blocks.reduce(x) { $1.outputShape(inputShape: $0) }
    }
    public func flops(inputShape x: [Int]) -> Double {
        if let stem { return stem.flops(inputShape: x) }
        var s = x, f = 0.0
        for b in blocks { f += b.flops(inputShape: s); s = b.outputShape(inputShape: s) }
        return f
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        if let stem { return maxPool2d(try stem.forward(x, ctx), kernel: 3, stride: 2, padding: 1) }
        var y = x
        for b in blocks { y = try b.forward(y, ctx) }
        return y
    }
}

/// `Concat` along a dimension (1 = channels).
public struct ConcatLayer: GraphLayer {
    public let dimension: Int
    public var parameterCount: Int { 0 }
    public func outputShape(inputShapes: [[Int]]) -> [Int] {
        var s = inputShapes[0]
        let d = dimension < 0 ? s.count + dimension : dimension
        s[d] = inputShapes.reduce(0) { $0 + $1[d] }
        return s
    }
    public func flops(inputShapes: [[Int]]) -> Double { 0 }
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        LayerOutput(concat(inputs, axis: dimension))
    }
}

/// `nn.Upsample(scale_factor=s, mode="nearest")`.
public struct UpsampleLayer: UnaryBlock {
    public let scale: Int
    public var parameterCount: Int { 0 }
    public func outputShape(inputShape x: [Int]) -> [Int] { [x[0], x[1], x[2] * scale, x[3] * scale] }
    public func flops(inputShape: [Int]) -> Double { 0 }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { upsampleNearest(x, scale: scale) }
}

extension UltralyticsRegistry {
    /// The built-in blocks, with parse_model's argument handling for each.
    static func registerBlocks(into r: UltralyticsRegistry) {
        // Base modules: c2 = make_divisible(min(args[0], max_channels) * width, 8); args = [c1, c2, *args[1:]].
        r.add("Conv") { ctx in
            let c2 = try ctx.outputChannels(0)
            let k = try ctx.int(1, default: 1, name: "k"), s = try ctx.int(2, default: 1, name: "s")
            let p = try ctx.optionalInt(3, name: "p"), g = try ctx.int(4, default: 1, name: "g"), d = try ctx.int(5, default: 1, name: "d")
            let act = try ctx.activationArg(6)
            let layer = try ConvBlock(ctx.weights, c1: ctx.c1, c2: c2, k: k, s: s, p: p, g: g, d: d, act: act)
            return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
        }
        r.add("DWConv") { ctx in
            let c2 = try ctx.outputChannels(0)
            let k = try ctx.int(1, default: 1, name: "k"), s = try ctx.int(2, default: 1, name: "s"), d = try ctx.int(3, default: 1, name: "d")
            let act = try ctx.activationArg(4)
            let layer = try makeDWConv(ctx.weights, c1: ctx.c1, c2: c2, k: k, s: s, d: d, act: act)
            return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
        }
        r.add("Bottleneck") { ctx in
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
        r.add("C2f") { ctx in
            let c2 = try ctx.outputChannels(0)
            let sc = try ctx.bool(1, default: false), g = try ctx.int(2, default: 1, name: "g"), e = try ctx.double(3, default: 0.5)
            let layer = try C2f(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, shortcut: sc, g: g, e: e, act: ctx.defaultActivation)
            return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + ctx.args.dropFirst())
        }
        r.add("SPPF") { ctx in
            let c2 = try ctx.outputChannels(0)
            let k = try ctx.int(1, default: 5, name: "k"), n = try ctx.int(2, default: 3, name: "n"), sc = try ctx.bool(3, default: false)
            // parse_model gives cv1 the default activation for legacy rows ([c1, c2, k] at most).
            let legacy = ctx.args.count <= 2
            let layer = try SPPF(ctx.weights, c1: ctx.c1, c2: c2, k: k, n: n, shortcut: sc,
                             cv1Act: legacy ? ctx.defaultActivation : .identity, act: ctx.defaultActivation)
            return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
        }
        r.add("RepC3") { ctx in
            let c2 = try ctx.outputChannels(0)
            let e = try ctx.double(1, default: 1)
            let layer = try RepC3(ctx.weights, c1: ctx.c1, c2: c2, n: ctx.repeats, e: e, act: ctx.defaultActivation)
            return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2), .int(ctx.repeats)] + ctx.args.dropFirst())
        }
        r.add("HGStem") { ctx in
            let cm = try ctx.int(0, name: "cm"), c2 = try ctx.int(1, name: "c2")
            return BuiltLayer(try HGStem(ctx.weights, c1: ctx.c1, cm: cm, c2: c2), outputChannels: c2,
                              arguments: [.int(ctx.c1), .int(cm), .int(c2)] + ctx.args.dropFirst(2))
        }
        r.add("HGBlock") { ctx in
            // args = [c1, cm, c2, *rest]; args.insert(4, n): with fewer than 4 it lands at the end.
            var full: [LayerArg] = [.int(ctx.c1)] + ctx.args
            full.insert(.int(ctx.repeats), at: min(4, full.count))
            func at(_ i: Int) -> LayerArg? { i < full.count ? full[i] : nil }
            guard let cm = at(1)?.intValue, let c2 = at(2)?.intValue else { throw ctx.error("needs [cm, c2, ...]") }
            _ = try (ctx.checked(cm, argument: 0, name: "cm"), ctx.checked(c2, argument: 1, name: "c2"))
            let k = try ctx.checked(at(3)?.intValue ?? 3, argument: 2, name: "k"), n = try ctx.checked(at(4)?.intValue ?? 6, argument: 3, name: "n")
            let light = at(5)?.boolValue ?? false, sc = at(6)?.boolValue ?? false
            let layer = try HGBlock(ctx.weights, c1: ctx.c1, cm: cm, c2: c2, k: k, n: n, lightconv: light, shortcut: sc)
            return BuiltLayer(layer, outputChannels: c2, arguments: full)
        }
        r.add("LightConv") { ctx in
            // Not one of parse_model's base modules: args go in unchanged (c1, c2, k) and the channel
            // bookkeeping keeps c2 = ch[f], as ultralytics does.
            let c1 = try ctx.int(0, name: "c1"), c2 = try ctx.int(1, name: "c2"), k = try ctx.int(2, default: 1, name: "k")
            guard c1 == ctx.c1 else { throw ctx.error("c1 \(c1) does not match the input's \(ctx.c1) channels") }
            return BuiltLayer(try LightConv(ctx.weights, c1: c1, c2: c2, k: k), outputChannels: ctx.c1, arguments: ctx.args)
        }
        r.add("ResNetLayer") { ctx in
            let c1 = try ctx.int(0, name: "c1"), c2 = try ctx.int(1, name: "c2"), s = try ctx.int(2, default: 1, name: "s")
            let first = try ctx.bool(3, default: false), n = try ctx.int(4, default: 1, name: "n"), e = try ctx.int(5, default: 4, name: "e")
            _ = try ctx.checked(first ? c2 : c2 * e, argument: 1, name: "c2")
            let layer = try ResNetLayer(ctx.weights, c1: c1, c2: c2, s: s, isFirst: first, n: n, e: e, act: ctx.defaultActivation)
            return BuiltLayer(layer, outputChannels: first ? c2 : c2 * 4, arguments: ctx.args)
        }
        r.add("Concat") { ctx in
            let d = try ctx.int(0, default: 1, name: "dimension", range: -4 ... 3)
            return BuiltLayer(ConcatLayer(dimension: d), outputChannels: ctx.inputChannels.reduce(0, +), arguments: ctx.args)
        }
        r.add("nn.Upsample") { ctx in
            guard let a = ctx.arg(1), let s = a.doubleValue, s >= 1, s == s.rounded() else {
                throw ctx.error("only an integer scale_factor is supported (args [None, scale, 'nearest'])")
            }
            guard s <= Double(ModelSpec.Limits.kernel) else {
                throw ctx.error("scale_factor \(ConfigValue.format(s)) is more than the \(ModelSpec.Limits.kernel) this tool accepts")
            }
            if let mode = ctx.arg(2), mode != .string("nearest") { throw ctx.error("only mode 'nearest' is supported, got \(mode)") }
            return BuiltLayer(UpsampleLayer(scale: Int(s)), outputChannels: ctx.c1, arguments: ctx.args)
        }
        r.add("Upsample") { ctx in try UltralyticsRegistry.builder("nn.Upsample")!(ctx) }
        r.add("Detect") { ctx in
            let nc = try ctx.int(0, default: ctx.nc, name: "nc")
            let layer = try DetectHead(ctx.weights, nc: nc, regMax: ctx.regMax, channels: ctx.inputChannels, act: ctx.defaultActivation)
            return BuiltLayer(layer, outputChannels: 4 + nc,
                              arguments: ctx.args + [.int(ctx.regMax), .bool(false), .list(ctx.inputChannels.map { .int($0) })])
        }
    }
}
