import Foundation
import Tensor

/// `nn.Linear` (`weight` [out, in], `bias` [out]) on the last dim. thop: tokens x out x in multiply-adds.
public struct Linear: UnaryModule {
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
    public var ownParameterCount: Int { weight.count + (bias?.count ?? 0) }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { flops(tokens: output.reduce(1, *) / max(outFeatures, 1)) }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { self(x) }
    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
    public func flops(tokens: Int) -> Double { 2 * Double(tokens * outFeatures * inFeatures) }
}

/// ultralytics' `MLP`: `layers.{i}` linears with ReLU between them.
public struct MLP: UnaryModule {
    public let layers: [Child<Linear>]

    public init(_ w: WeightScope, input: Int, hidden: Int, output: Int, layers n: Int,
                inits: [Int: (WeightInit, WeightInit)] = [:]) throws {
        let dims = [input] + [Int](repeating: hidden, count: n - 1) + [output]
        layers = try [Child](w, "layers", count: n) { i, s in
            let (wi, bi) = inits[i] ?? (.kaimingUniform(fanIn: dims[i]), .kaimingUniform(fanIn: dims[i]))
            return try Linear(s, in: dims[i], out: dims[i + 1], weightInit: wi, biasInit: bi)
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        var y = x
        for (i, l) in layers.enumerated() {
            y = try l(y, ctx)
            if i < layers.count - 1 { y = relu(y) }
        }
        return y
    }
    /// The same, outside the module tree (for the modules that state their own counts).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        for (i, l) in layers.enumerated() {
            y = l.module(y)
            if i < layers.count - 1 { y = relu(y) }
        }
        return y
    }
    public func flops(tokens: Int) -> Double { layers.reduce(0) { $0 + $1.module.flops(tokens: tokens) } }
}

/// `nn.MultiheadAttention` (`in_proj_weight` [3E, E], `in_proj_bias`, `out_proj.weight`, `out_proj.bias`), no masks.
public struct MultiheadAttention: Module {
    public let embedDim: Int, heads: Int
    public let inProjWeight: Tensor, inProjBias: Tensor
    public let outProj: Child<Linear>

    public init(_ w: WeightScope, embedDim e: Int, heads: Int) throws {
        embedDim = e
        self.heads = heads
        // torch: xavier_uniform_ on in_proj_weight (fan_in E, fan_out 3E), zero biases.
        inProjWeight = try w.tensor("in_proj_weight", shape: [3 * e, e], init: .xavierUniform(fanIn: e, fanOut: 3 * e))
        inProjBias = try w.tensor("in_proj_bias", shape: [3 * e], init: .zeros)
        outProj = try Child(w, "out_proj") { try Linear($0, in: e, out: e, weightInit: .kaimingUniform(fanIn: e), biasInit: .zeros) }
    }

    /// transformers' layout of the same attention (`RTDetrSelfAttention`, DETR's attention): separate `q_proj`,
    /// `k_proj`, `v_proj` linears (packed here into the one in-projection) and `out_proj`; `weightInit` for the four
    /// weights (transformers: normal with the config's initializer_range), zero biases.
    public init(_ w: WeightScope, embedDim e: Int, heads: Int, separateProjections weightInit: WeightInit) throws {
        embedDim = e
        self.heads = heads
        let parts = try ["q_proj", "k_proj", "v_proj"].map { k in
            (try w.tensor(k + ".weight", shape: [e, e], init: weightInit), try w.tensor(k + ".bias", shape: [e], init: .zeros))
        }
        inProjWeight = concat(parts.map(\.0), axis: 0)
        inProjBias = concat(parts.map(\.1), axis: 0)
        outProj = try Child(w, "out_proj") { try Linear($0, in: e, out: e, weightInit: weightInit, biasInit: .zeros) }
    }

    public var typeName: String { "MultiheadAttention" }
    public var ownParameterCount: Int { inProjWeight.count + inProjBias.count }

    /// Inputs query [T, E], key [S, E], value [S, E] (one batch element); output [T, E], and `weights` [heads, T, S]
    /// in the extras.
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let (heads, att) = attendHeads(query: inputs[0], key: inputs[1], value: inputs[2])
        return LayerOutput(try outProj(heads, ctx), extras: ["weights": att])
    }

    /// query [T, E], key [S, E], value [S, E] (one batch element) -> (output [T, E], weights [heads, T, S]).
    public func attend(query: Tensor, key: Tensor, value: Tensor) -> (Tensor, Tensor) {
        let (heads, att) = attendHeads(query: query, key: key, value: value)
        return (outProj.module(heads), att)
    }

    /// The heads' outputs before out_proj [T, E], and the weights [heads, T, S].
    func attendHeads(query: Tensor, key: Tensor, value: Tensor) -> (Tensor, Tensor) {
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
        return (permute(matmul(att, v), [1, 0, 2]).reshaped([t, e]), att)    // [T, E]
    }

    /// thop's nn.MultiheadAttention rule (the projections, QK^T and AV products, softmax) minus out_proj, which is
    /// its child's.
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        flops(queries: inputs[0][0], keys: inputs[1][0]) - outProj.module.flops(tokens: inputs[0][0])
    }

    /// thop's nn.MultiheadAttention rule for T queries and S keys (one batch element), out_proj included.
    public func flops(queries t: Int, keys s: Int) -> Double {
        let e = Double(embedDim), td = Double(t), sd = Double(s)
        let projections = e * (2 * td * e + sd * (2 * e))
        let attention = 2 * td * sd * e
        let soft = Double(heads) * td * (3 * sd - 1)
        return 2 * (projections + attention + soft)
    }
}
