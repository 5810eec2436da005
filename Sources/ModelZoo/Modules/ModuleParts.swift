import Foundation
import Tensor

// Small building blocks the attention modules are made of, each loading its parameters under PyTorch's own
// key names (`weight`, `bias`, `running_mean`, `running_var`, `in_proj_weight`, ...).
//
// Parameters are counted as PyTorch does (`sum(p.numel() for p in m.parameters())`): batch-norm weight and bias
// count, running statistics do not; MSDeformAttn's and RTDETRDecoder's every tensor counts (the decoder's
// `denoising_class_embed` too, though eval never uses it).
//
// FLOPs follow the counter whose figures ultralytics prints (thop, as ultralytics calls it) so that a model's
// total agrees with `model.info()`; a multiply-add is one op there and every function here returns 2 x ops:
// - convolution: output elements x (Cin / groups) x k x k (bias not counted); linear: tokens x out x in;
// - batch / layer / group norm: 2 x elements, doubled when affine (4 x elements);
// - nn.MultiheadAttention (AIFI, the decoder's self-attention): the q/k/v and output projections, the two
//   attention products QK^T and AV (2 x T x S x E), and the softmax, T x heads x (3S - 1);
// - a bare matrix product (ContextAggregation's v @ softmax(k), AIFI's position-embedding outer products):
//   output elements x contracted length;
// - MSDeformAttn: its four linears only. The bilinear sampling and weighting (per query, head, level and point:
//   4 taps + 1 weight per value channel) is a functional op that counter does not see, so it is not in the
//   totals; `MSDeformAttn.samplingFlops` gives it (2 x Q x heads x levels x points x headDim x 5);
// - CotLayer's local aggregation (the reference's custom CUDA op) likewise is not counted (it would be
//   C x H x W x k*k multiply-adds); F.softmax, element-wise products, sigmoid, ReLU, GELU, SiLU: 0;
// - average pooling (CoTNet's 3x3/2 before the CoT block): one add per input element of every window, padding
//   included, and one divide per output.
// The golden tests check each module's count against the counter's own figure for the same module and input.

/// Inference batch norm over dim 1 (`weight`, `bias`, `running_mean`, `running_var`), PyTorch defaults when
/// initialised (1, 0, 0, 1).
public struct BatchNorm2dParams: Sendable {
    public let gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor
    public let eps: Float
    public var channels: Int { gamma.count }

    public init(_ w: WeightScope, channels c: Int, eps: Float = 1e-5) throws {
        gamma = try w.tensor("weight", shape: [c], init: .ones)
        beta = try w.tensor("bias", shape: [c], init: .zeros)
        mean = try w.tensor("running_mean", shape: [c], init: .zeros)
        variance = try w.tensor("running_var", shape: [c], init: .ones)
        self.eps = eps
    }

    public var parameterCount: Int { 2 * channels }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        batchNorm(x, gamma: gamma, beta: beta, mean: mean, variance: variance, eps: eps)
    }
    /// thop: 4 x elements (affine).
    public func flops(elements: Int) -> Double { 2 * 4 * Double(elements) }
}

/// A plain `nn.Conv2d` (`weight` [O, I/g, k, k], optional `bias`).
public struct Conv2dParams: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int, groups: Int

    public init(_ w: WeightScope, in cin: Int, out cout: Int, kernel k: Int, stride: Int = 1, padding: Int? = nil,
                groups: Int = 1, bias: Bool, weightInit: WeightInit? = nil, biasInit: WeightInit? = nil) throws {
        guard k >= 1, stride >= 1, groups >= 1, cin % groups == 0, cout % groups == 0 else {
            throw ModuleInputError("Conv2d", "kernel \(k), stride \(stride) and groups \(groups) must be positive, and the groups must divide \(cin) -> \(cout) channels")
        }
        let fanIn = cin / groups * k * k
        weight = try w.tensor("weight", shape: [cout, cin / groups, k, k], init: weightInit ?? .kaimingUniform(fanIn: fanIn))
        self.bias = bias ? try w.tensor("bias", shape: [cout], init: biasInit ?? .kaimingUniform(fanIn: fanIn)) : nil
        self.stride = stride
        self.padding = padding ?? k / 2
        self.groups = groups
    }

    public var outChannels: Int { weight.shape[0] }
    public var kernel: Int { weight.shape[2] }
    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, groups: groups)
    }
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }
    /// thop: output elements x (Cin/groups) x k x k, as FLOPs (x2).
    public func flops(height h: Int, width w: Int) -> Double {
        let (ho, wo) = outputSize(h, w)
        return 2 * Double(outChannels * ho * wo) * Double(weight.shape[1] * kernel * kernel)
    }
}

/// `nn.Conv2d(bias=False)` followed by `nn.BatchNorm2d`, folded into one convolution at load time.
/// `convKey`/`bnKey` name the two children (`conv`/`bn` in ultralytics' Conv, `0`/`1` in an nn.Sequential).
public struct FoldedConvBN: Sendable {
    public let conv: Conv2dParams
    public let folded: (weight: Tensor, bias: Tensor)
    let bnParams: Int

    public init(_ w: WeightScope, convKey: String, bnKey: String, in cin: Int, out cout: Int, kernel k: Int,
                stride: Int = 1, groups: Int = 1, convBias: Bool = false, bnEps: Float = 1e-5, weightInit: WeightInit? = nil) throws {
        conv = try Conv2dParams(w.scope(convKey), in: cin, out: cout, kernel: k, stride: stride, groups: groups, bias: convBias, weightInit: weightInit)
        let bn = try BatchNorm2dParams(w.scope(bnKey), channels: cout, eps: bnEps)
        folded = foldBatchNorm(weight: conv.weight, bias: conv.bias, gamma: bn.gamma, beta: bn.beta, mean: bn.mean,
                               variance: bn.variance, eps: bn.eps)
        bnParams = bn.parameterCount
    }

    public var parameterCount: Int { conv.parameterCount + bnParams }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: folded.weight, bias: folded.bias, stride: conv.stride, padding: conv.padding, groups: conv.groups)
    }
    /// Conv plus the (unfolded) batch norm as thop counts them.
    public func flops(height h: Int, width w: Int) -> Double {
        let (ho, wo) = conv.outputSize(h, w)
        return conv.flops(height: h, width: w) + 2 * 4 * Double(conv.outChannels * ho * wo)
    }
}

/// `nn.Linear` (`weight` [out, in], `bias` [out]).
public struct LinearParams: Sendable {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ w: WeightScope, in fin: Int, out fout: Int, bias: Bool = true,
                weightInit: WeightInit? = nil, biasInit: WeightInit? = nil) throws {
        weight = try w.tensor("weight", shape: [fout, fin], init: weightInit ?? .kaimingUniform(fanIn: fin))
        self.bias = bias ? try w.tensor("bias", shape: [fout], init: biasInit ?? .kaimingUniform(fanIn: fin)) : nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }
    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }
    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
    /// thop: tokens x out x in MACs.
    public func flops(tokens: Int) -> Double { 2 * Double(tokens * outFeatures * inFeatures) }
}

/// `nn.LayerNorm` over the last dim (`weight`, `bias`, eps 1e-5).
public struct LayerNormParams: Sendable {
    public let weight: Tensor, bias: Tensor
    public let eps: Float
    public init(_ w: WeightScope, dim: Int, eps: Float = 1e-5) throws {
        weight = try w.tensor("weight", shape: [dim], init: .ones)
        bias = try w.tensor("bias", shape: [dim], init: .zeros)
        self.eps = eps
    }
    public var parameterCount: Int { weight.count + bias.count }
    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
    public func flops(elements: Int) -> Double { 2 * 4 * Double(elements) }
}

/// ultralytics' `MLP`: `layers.{i}` linears with ReLU between them.
public struct MLPParams: Sendable {
    public let layers: [LinearParams]
    public init(_ w: WeightScope, input: Int, hidden: Int, output: Int, layers n: Int,
                inits: [Int: (WeightInit, WeightInit)] = [:]) throws {
        let dims = [input] + [Int](repeating: hidden, count: n - 1) + [output]
        layers = try (0 ..< n).map { i in
            let s = w.scope("layers").scope(i)
            let (wi, bi) = inits[i] ?? (.kaimingUniform(fanIn: dims[i]), .kaimingUniform(fanIn: dims[i]))
            return try LinearParams(s, in: dims[i], out: dims[i + 1], weightInit: wi, biasInit: bi)
        }
    }
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        for (i, l) in layers.enumerated() {
            y = l(y)
            if i < layers.count - 1 { y = relu(y) }
        }
        return y
    }
    public func flops(tokens: Int) -> Double { layers.reduce(0) { $0 + $1.flops(tokens: tokens) } }
}

/// `nn.MultiheadAttention` (`in_proj_weight` [3E, E], `in_proj_bias`, `out_proj.weight`, `out_proj.bias`), no masks.
public struct MultiheadAttentionParams: Sendable {
    public let embedDim: Int, heads: Int
    public let inProjWeight: Tensor, inProjBias: Tensor
    public let outProj: LinearParams

    public init(_ w: WeightScope, embedDim e: Int, heads: Int) throws {
        embedDim = e
        self.heads = heads
        // torch: xavier_uniform_ on in_proj_weight (fan_in E, fan_out 3E), zero biases.
        inProjWeight = try w.tensor("in_proj_weight", shape: [3 * e, e], init: .xavierUniform(fanIn: e, fanOut: 3 * e))
        inProjBias = try w.tensor("in_proj_bias", shape: [3 * e], init: .zeros)
        outProj = try LinearParams(w.scope("out_proj"), in: e, out: e, weightInit: .kaimingUniform(fanIn: e), biasInit: .zeros)
    }

    public var parameterCount: Int { inProjWeight.count + inProjBias.count + outProj.parameterCount }

    /// query [T, E], key [S, E], value [S, E] (one batch element) -> (output [T, E], weights [heads, T, S]).
    public func attend(query: Tensor, key: Tensor, value: Tensor) -> (Tensor, Tensor) {
        let e = embedDim, h = heads, d = e / h
        let t = query.shape[0], s = key.shape[0]
        let wq = slice(inProjWeight, axis: 0, range: 0 ..< e), wk = slice(inProjWeight, axis: 0, range: e ..< 2 * e)
        let wv = slice(inProjWeight, axis: 0, range: 2 * e ..< 3 * e)
        let bq = slice(inProjBias, axis: 0, range: 0 ..< e), bk = slice(inProjBias, axis: 0, range: e ..< 2 * e)
        let bv = slice(inProjBias, axis: 0, range: 2 * e ..< 3 * e)
        // [T, E] -> [T, h, d] -> [h, T, d]
        let q = permute(linear(query, weight: wq, bias: bq).reshaped([t, h, d]), [1, 0, 2]) * (1 / Float(d).squareRoot())
        let k = permute(linear(key, weight: wk, bias: bk).reshaped([s, h, d]), [1, 0, 2])
        let v = permute(linear(value, weight: wv, bias: bv).reshaped([s, h, d]), [1, 0, 2])
        let att = softmax(matmul(q, k, transposeB: true), axis: -1)          // [h, T, S]
        let ctx = permute(matmul(att, v), [1, 0, 2]).reshaped([t, e])        // [T, E]
        return (outProj(ctx), att)
    }

    /// thop's nn.MultiheadAttention rule for T queries and S keys (one batch element).
    public func flops(queries t: Int, keys s: Int) -> Double {
        let e = Double(embedDim), td = Double(t), sd = Double(s)
        let projections = e * (2 * td * e + sd * (2 * e))
        let attention = 2 * td * sd * e
        let soft = Double(heads) * td * (3 * sd - 1)
        return 2 * (projections + attention + soft)
    }
}

/// ultralytics' `Conv`: Conv2d(bias=False) + BatchNorm2d(eps 1e-3) + activation, folded.
public struct ConvBNAct: Sendable {
    public let unit: FoldedConvBN
    public let act: Activation

    public init(_ w: WeightScope, in cin: Int, out cout: Int, kernel k: Int = 1, stride s: Int = 1, groups g: Int = 1, act: Activation = .silu) throws {
        unit = try FoldedConvBN(w, convKey: "conv", bnKey: "bn", in: cin, out: cout, kernel: k, stride: s, groups: g, bnEps: 1e-3)
        self.act = act
    }
    public var parameterCount: Int { unit.parameterCount }
    public func callAsFunction(_ x: Tensor) -> Tensor { act.apply(unit(x)) }
    public func flops(height h: Int, width w: Int) -> Double { unit.flops(height: h, width: w) }
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) { unit.conv.outputSize(h, w) }
}

/// Drops a leading batch dim of 1 for probes ([1, ...] -> [...]).
func unbatched(_ t: Tensor) -> Tensor {
    t.shape.first == 1 ? t.reshaped(Array(t.shape.dropFirst())) : t
}

/// A shape error a module raises on an input it cannot take (never a crash).
public struct ModuleInputError: Error, CustomStringConvertible, Sendable {
    public let module: String
    public let problem: String
    public init(_ module: String, _ problem: String) {
        self.module = module
        self.problem = problem
    }
    public var description: String { "\(module): \(problem)" }
}

func expectNCHW(_ x: Tensor, channels: Int, _ name: String) throws {
    guard x.rank == 4 else { throw ModuleInputError(name, "expects an NCHW tensor, got shape \(x.shape)") }
    guard x.shape[1] == channels else {
        throw ModuleInputError(name, "expects \(channels) input channels, got \(x.shape[1]) (shape \(x.shape))")
    }
}
