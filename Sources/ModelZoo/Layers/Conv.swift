import Foundation
import Tensor

// The convolution leaves of the module tree, shared by every family: ultralytics' `Conv` (Conv2d + BatchNorm2d +
// activation, the batch norm folded into the convolution when the weights load) and a plain `nn.Conv2d`.

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

/// An affine batch norm as thop (and so ultralytics' GFLOPs) counts it: 2 ops to normalise and 2 for the affine
/// step per element, doubled like every thop count; we count it the same way so that totals agree.
func batchNormFlops(_ out: [Int]) -> Double { 8 * Double(out.reduce(1, *)) }

/// 2 * MACs of a convolution producing `out` (bias adds not counted, as thop).
func convFlops(_ out: [Int], cinPerGroup: Int, k: Int) -> Double {
    2 * Double(out.reduce(1, *)) * Double(cinPerGroup * k * k)
}

func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

/// Conv2d(bias=False) + BatchNorm2d + activation (ultralytics `Conv`), the batch norm folded at load time.
/// Keys: `conv.weight`, `bn.{weight,bias,running_mean,running_var}`. Counts as the reference runs it: the
/// convolution and its batch norm (weights and FLOPs), whatever is folded.
public struct Conv: UnaryModule {
    public let c1: Int, c2: Int, k: Int, s: Int, p: Int, g: Int, d: Int
    public let act: Activation
    public let weight: Tensor
    public let bias: Tensor
    /// Branches folded into this one conv (RepConv's 3x3 and 1x1): each counts its own weights, FLOPs and BN.
    let branchKernels: [Int]
    /// The convolution's own bias, when it has one (counted as a parameter, folded with the batch norm's).
    let convBiasCount: Int
    /// A frozen batch norm (torchvision's / transformers' FrozenBatchNorm2d): its tensors are buffers, so neither
    /// its weights nor its FLOPs count.
    let frozenBatchNorm: Bool

    /// `keys` name the convolution and the batch norm (`conv`/`bn` in ultralytics' Conv, `0`/`1` in an
    /// nn.Sequential(Conv2d, BatchNorm2d, ...)); `convBias` when the convolution has its own bias; `eps` the batch
    /// norm's (1e-3 in ultralytics models, whose `initialize_weights` sets it; PyTorch's default 1e-5 elsewhere);
    /// `frozenBatchNorm` for a FrozenBatchNorm2d (no parameters, not counted).
    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, s: Int = 1, p: Int? = nil, g: Int = 1, d: Int = 1,
                act: Activation = .silu, eps: Float = 1e-3, keys: (conv: String, bn: String) = ("conv", "bn"),
                convBias: Bool = false, weightInit: WeightInit? = nil, frozenBatchNorm: Bool = false) throws {
        guard k >= 1, s >= 1, d >= 1, g >= 1, c1 % g == 0, c2 % g == 0 else {
            throw ModuleInputError("Conv", "kernel \(k), stride \(s), dilation \(d) and groups \(g) must be positive, and the groups must divide \(c1) -> \(c2) channels")
        }
        self.c1 = c1; self.c2 = c2; self.k = k; self.s = s; self.g = g; self.d = d
        self.p = autopad(k, p, d)
        self.act = act
        let fanIn = c1 / g * k * k
        let cw = try w.tensor(keys.conv + ".weight", shape: [c2, c1 / g, k, k], init: weightInit ?? .kaimingUniform(fanIn: fanIn))
        let cb = convBias ? try w.tensor(keys.conv + ".bias", shape: [c2], init: .kaimingUniform(fanIn: fanIn)) : nil
        let bn = try BatchNorm2d(w.scope(keys.bn), channels: c2, eps: eps)
        let f = foldBatchNorm(weight: cw, bias: cb, gamma: bn.gamma, beta: bn.beta, mean: bn.mean, variance: bn.variance, eps: eps)
        weight = f.weight
        bias = f.bias
        branchKernels = [k]
        convBiasCount = convBias ? c2 : 0
        self.frozenBatchNorm = frozenBatchNorm
    }

    /// A conv with an already folded weight and bias: `branchKernels` are the kernels of the reference's branches
    /// that were summed into it (RepConv: [3, 1]), or the kernel alone.
    init(folded weight: Tensor, bias: Tensor, c1: Int, c2: Int, k: Int, s: Int, p: Int, g: Int, d: Int, act: Activation,
         branchKernels: [Int]? = nil) {
        self.c1 = c1; self.c2 = c2; self.k = k; self.s = s; self.p = p; self.g = g; self.d = d
        self.act = act
        self.weight = weight
        self.bias = bias
        self.branchKernels = branchKernels ?? [k]
        self.convBiasCount = 0
        self.frozenBatchNorm = false
    }

    public var typeName: String { branchKernels.count > 1 ? "RepConv" : "Conv" }
    /// The output's (height, width) for an input of h x w.
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * p - d * (k - 1) - 1) / s + 1, (w + 2 * p - d * (k - 1) - 1) / s + 1)
    }
    /// FLOPs for an input of h x w (for the modules that state their own counts).
    public func flops(height h: Int, width w: Int) -> Double {
        let (ho, wo) = outputSize(h, w)
        return ownFlops(inputs: [], output: [c2, ho, wo])
    }
    public var ownParameterCount: Int {
        branchKernels.reduce(convBiasCount) { $0 + c2 * (c1 / g) * $1 * $1 + (frozenBatchNorm ? 0 : 2 * c2) }
    }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        branchKernels.reduce(0) { $0 + convFlops(output, cinPerGroup: c1 / g, k: $1) + (frozenBatchNorm ? 0 : batchNormFlops(output)) }
    }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { self(x) }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let f = act.fused {
            return conv2d(x, weight: weight, bias: bias, stride: s, padding: p, dilation: d, groups: g, activation: f)
        }
        return act.apply(conv2d(x, weight: weight, bias: bias, stride: s, padding: p, dilation: d, groups: g))
    }
}

/// Depth-wise conv (ultralytics `DWConv`): Conv with groups = gcd(c1, c2).
public func makeDWConv(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, s: Int = 1, d: Int = 1, act: Activation = .silu) throws -> Conv {
    try Conv(w, c1: c1, c2: c2, k: k, s: s, g: gcd(c1, c2), d: d, act: act)
}

/// A plain `nn.Conv2d` (keys `weight` and, with a bias, `bias`); 'same' padding for odd kernels unless given.
public struct Conv2d: UnaryModule {
    public let c1: Int, c2: Int, k: Int, stride: Int, padding: Int, groups: Int
    public let weight: Tensor, bias: Tensor?

    public init(_ w: WeightScope, c1: Int, c2: Int, k: Int = 1, stride: Int = 1, padding: Int? = nil, groups: Int = 1,
                bias hasBias: Bool = true, weightInit: WeightInit? = nil, biasInit: WeightInit? = nil) throws {
        guard k >= 1, stride >= 1, groups >= 1, c1 % groups == 0, c2 % groups == 0 else {
            throw ModuleInputError("Conv2d", "kernel \(k), stride \(stride) and groups \(groups) must be positive, and the groups must divide \(c1) -> \(c2) channels")
        }
        self.c1 = c1; self.c2 = c2; self.k = k; self.stride = stride; self.padding = padding ?? k / 2; self.groups = groups
        let fanIn = c1 / groups * k * k
        weight = try w.tensor("weight", shape: [c2, c1 / groups, k, k], init: weightInit ?? .kaimingUniform(fanIn: fanIn))
        bias = hasBias ? try w.tensor("bias", shape: [c2], init: biasInit ?? .kaimingUniform(fanIn: fanIn)) : nil
    }

    public var ownParameterCount: Int { weight.count + (bias?.count ?? 0) }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { convFlops(output, cinPerGroup: c1 / groups, k: k) }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { self(x) }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, groups: groups)
    }
    /// The output's (height, width) for an input of h x w.
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - k) / stride + 1, (w + 2 * padding - k) / stride + 1)
    }
    /// FLOPs for an input of h x w (for the modules that state their own counts).
    public func flops(height h: Int, width w: Int) -> Double {
        let (ho, wo) = outputSize(h, w)
        return convFlops([c2, ho, wo], cinPerGroup: c1 / groups, k: k)
    }
}

extension Conv {
    /// An ultralytics YAML row `[c2, k, s, p, g, d, act]` (c2 width-scaled, args printed as [c1, c2, ...]).
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let k = try ctx.int(1, default: 1, name: "k"), s = try ctx.int(2, default: 1, name: "s")
        let p = try ctx.optionalInt(3, name: "p"), g = try ctx.int(4, default: 1, name: "g"), d = try ctx.int(5, default: 1, name: "d")
        let act = try ctx.activationArg(6)
        let layer = try Conv(ctx.weights, c1: ctx.c1, c2: c2, k: k, s: s, p: p, g: g, d: d, act: act)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
    }

    /// `DWConv` rows `[c2, k, s, d, act]`.
    static func buildDW(_ ctx: BuildContext) throws -> BuiltLayer {
        let c2 = try ctx.outputChannels(0)
        let k = try ctx.int(1, default: 1, name: "k"), s = try ctx.int(2, default: 1, name: "s"), d = try ctx.int(3, default: 1, name: "d")
        let act = try ctx.activationArg(4)
        let layer = try makeDWConv(ctx.weights, c1: ctx.c1, c2: c2, k: k, s: s, d: d, act: act)
        return BuiltLayer(layer, outputChannels: c2, arguments: [.int(ctx.c1), .int(c2)] + ctx.args.dropFirst())
    }
}
