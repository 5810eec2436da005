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

/// Multi-head attention, no masks: `nn.MultiheadAttention` (`in_proj_weight` [3E, E], `in_proj_bias`,
/// `out_proj.weight`, `out_proj.bias`), or the transformers layout of separate projections (`q_proj`, `k_proj`,
/// `v_proj`, `out_proj` linears, e.g. `DeformableDetrSelfAttention`).
public struct MultiheadAttention: Module {
    public let embedDim: Int, heads: Int
    /// The packed projection (nn.MultiheadAttention), absent in the separate layout.
    public let inProjWeight: Tensor?, inProjBias: Tensor?
    public let qProj: Child<Linear>?, kProj: Child<Linear>?, vProj: Child<Linear>?
    public let outProj: Child<Linear>
    let name: String

    /// nn.MultiheadAttention's layout and init.
    public init(_ w: WeightScope, embedDim e: Int, heads: Int) throws {
        guard heads > 0, e % heads == 0 else { throw ModuleInputError("MultiheadAttention", "embed_dim (\(e)) must be divisible by num_heads (\(heads))") }
        embedDim = e
        self.heads = heads
        // torch: xavier_uniform_ on in_proj_weight (fan_in E, fan_out 3E), zero biases.
        inProjWeight = try w.tensor("in_proj_weight", shape: [3 * e, e], init: .xavierUniform(fanIn: e, fanOut: 3 * e))
        inProjBias = try w.tensor("in_proj_bias", shape: [3 * e], init: .zeros)
        qProj = nil; kProj = nil; vProj = nil
        outProj = try Child(w, "out_proj") { try Linear($0, in: e, out: e, weightInit: .kaimingUniform(fanIn: e), biasInit: .zeros) }
        name = "MultiheadAttention"
    }

    /// The separate-projection layout (`q_proj`, `k_proj`, `v_proj`, `out_proj`), each linear initialised by
    /// `weightInit` / `biasInit`; `typeName` the reference's class name.
    public init(_ w: WeightScope, embedDim e: Int, heads: Int, separateProjections typeName: String,
                weightInit: WeightInit, biasInit: WeightInit = .zeros) throws {
        guard heads > 0, e % heads == 0 else { throw ModuleInputError(typeName, "embed_dim (\(e)) must be divisible by num_heads (\(heads))") }
        embedDim = e
        self.heads = heads
        inProjWeight = nil; inProjBias = nil
        func proj(_ key: String) throws -> Child<Linear> {
            try Child(w, key) { try Linear($0, in: e, out: e, weightInit: weightInit, biasInit: biasInit) }
        }
        qProj = try proj("q_proj"); kProj = try proj("k_proj"); vProj = try proj("v_proj")
        outProj = try proj("out_proj")
        name = typeName
    }

    public var typeName: String { name }
    public var ownParameterCount: Int { (inProjWeight?.count ?? 0) + (inProjBias?.count ?? 0) }

    /// Inputs query [T, E], key [S, E], value [S, E] (one batch element); output [T, E], and `weights` [heads, T, S]
    /// in the extras.
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let (heads, att) = try attendHeads(query: inputs[0], key: inputs[1], value: inputs[2], ctx)
        return LayerOutput(try outProj(heads, ctx), extras: ["weights": att])
    }

    /// The heads' outputs before out_proj [T, E], and the weights [heads, T, S].
    func attendHeads(query: Tensor, key: Tensor, value: Tensor, _ ctx: ForwardContext) throws -> (Tensor, Tensor) {
        let e = embedDim, h = heads, d = e / h
        let t = query.shape[0], s = key.shape[0]
        let pq: Tensor, pk: Tensor, pv: Tensor
        if let qProj, let kProj, let vProj {
            pq = try qProj(query, ctx); pk = try kProj(key, ctx); pv = try vProj(value, ctx)
        } else {
            // The packed projection's rows read in place: query, key and value rows [E, E] each.
            let w = inProjWeight!, b = inProjBias
            pv = linear(value, weight: w, bias: b, outputs: 2 * e ..< 3 * e)
            if sameStorage(query, key) {
                // The query is the key (self-attention with positions added to both, AIFI's and RT-DETR's): one
                // [T, E] x [E, 2E] product, its halves cut apart.
                let both = linear(query, weight: w, bias: b, outputs: 0 ..< 2 * e)
                pq = slice(both, axis: 1, range: 0 ..< e); pk = slice(both, axis: 1, range: e ..< 2 * e)
            } else {
                pq = linear(query, weight: w, bias: b, outputs: 0 ..< e)
                pk = linear(key, weight: w, bias: b, outputs: e ..< 2 * e)
            }
        }
        // [T, E] -> [T, h, d] -> [h, T, d]
        let q = permute(pq.reshaped([t, h, d]), [1, 0, 2]) * (1 / Float(d).squareRoot())
        let k = permute(pk.reshaped([s, h, d]), [1, 0, 2])
        let v = permute(pv.reshaped([s, h, d]), [1, 0, 2])
        let att = softmax(matmul(q, k, transposeB: true), axis: -1)          // [h, T, S]
        return (permute(matmul(att, v), [1, 0, 2]).reshaped([t, e]), att)    // [T, E]
    }

    /// Packed layout: thop's nn.MultiheadAttention rule (the projections, QK^T and AV products, softmax) minus
    /// out_proj, which is its child's. Separate layout: the linears are children; the QK^T and AV products
    /// (2 x T x S x E each).
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double {
        if inProjWeight == nil { return 2 * 2 * Double(inputs[0][0] * inputs[1][0] * embedDim) }
        return flops(queries: inputs[0][0], keys: inputs[1][0]) - outProj.module.flops(tokens: inputs[0][0])
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

/// Whether two tensors of one shape hold the same values by sharing one buffer (one tensor passed twice).
private func sameStorage(_ a: Tensor, _ b: Tensor) -> Bool {
    guard a.shape == b.shape else { return false }
    return a.data.withUnsafeBufferPointer { pa in b.data.withUnsafeBufferPointer { pb in pa.baseAddress == pb.baseAddress } }
}
