import Foundation
import Tensor

/// A `nn.Linear` (weight [out, in], bias [out]) read from `scope`; default init as transformers' `_init_weights`
/// (normal(0, init_std 0.02) weight, zero bias) unless given.
struct DDETRLinear: Sendable {
    let weight: Tensor
    let bias: Tensor
    let inFeatures: Int, outFeatures: Int

    init(scope: WeightScope, in i: Int, out o: Int, weightInit: WeightInit? = nil, biasInit: WeightInit? = nil) throws {
        weight = try scope.tensor("weight", shape: [o, i], init: weightInit ?? .normal(mean: 0, std: 0.02))
        bias = try scope.tensor("bias", shape: [o], init: biasInit ?? .zeros)
        inFeatures = i; outFeatures = o
    }

    var parameterCount: Int { inFeatures * outFeatures + outFeatures }
    func flops(rows: Int) -> Double { 2 * Double(rows * inFeatures * outFeatures) }
    func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

/// A `nn.LayerNorm(d)` (eps 1e-5), init ones and zeros.
struct DDETRLayerNorm: Sendable {
    let weight: Tensor
    let bias: Tensor
    init(scope: WeightScope, dim: Int) throws {
        weight = try scope.tensor("weight", shape: [dim], init: .ones)
        bias = try scope.tensor("bias", shape: [dim], init: .zeros)
    }
    var parameterCount: Int { 2 * weight.count }
    func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: 1e-5) }
}

/// The activation named by `activation_function`.
func ddetrActivate(_ x: inout Tensor, _ name: String) {
    switch name {
    case "gelu": x = gelu(x)
    case "silu": x = silu(x)
    default: ddetrReluInPlace(&x)
    }
}

/// transformers' `DeformableDetrMLP`: fc1 -> activation -> fc2 (the transformer layers' feed-forward block).
struct DDETRFeedForward: Sendable {
    let fc1: DDETRLinear, fc2: DDETRLinear
    let activation: String
    init(scope: WeightScope, dModel d: Int, ffn: Int, activation: String) throws {
        fc1 = try DDETRLinear(scope: scope.scope("fc1"), in: d, out: ffn)
        fc2 = try DDETRLinear(scope: scope.scope("fc2"), in: ffn, out: d)
        self.activation = activation
    }
    var parameterCount: Int { fc1.parameterCount + fc2.parameterCount }
    func flops(rows: Int) -> Double { fc1.flops(rows: rows) + fc2.flops(rows: rows) }
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = fc1(x)
        ddetrActivate(&h, activation)
        return fc2(h)
    }
}

/// transformers' `DeformableDetrMLPPredictionHead`: `layers.{i}` linears with ReLU between (the box head, 3 layers).
/// x [Q, in] -> [Q, out].
struct DDETRMLPPredictionHead: Sendable {
    let layers: [DDETRLinear]
    init(scope: WeightScope, input: Int, hidden: Int, output: Int, numLayers: Int) throws {
        var ls: [DDETRLinear] = []
        for i in 0 ..< numLayers {
            let inF = i == 0 ? input : hidden, outF = i == numLayers - 1 ? output : hidden
            ls.append(try DDETRLinear(scope: scope.scope("layers").scope(i), in: inF, out: outF))
        }
        layers = ls
    }
    var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }
    func flops(rows: Int) -> Double { layers.reduce(0) { $0 + $1.flops(rows: rows) } }
    func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        for (i, l) in layers.enumerated() {
            y = l(y)
            if i < layers.count - 1 { ddetrReluInPlace(&y) }
        }
        return y
    }
}

/// max(x, 0) in place (x is usually a fresh, uniquely owned result, so no copy is made).
func ddetrReluInPlace(_ x: inout Tensor) {
    x.data.withUnsafeMutableBufferPointer { p in
        for i in p.indices { p[i] = p[i] < 0 ? 0 : p[i] }
    }
}

/// max(x + y, 0) in place into x (the ResNet residual sum and its ReLU in one pass); shapes must match.
func ddetrAddReluInPlace(_ x: inout Tensor, _ y: Tensor) {
    precondition(x.shape == y.shape, "residual sum: \(x.shape) and \(y.shape)")
    y.data.withUnsafeBufferPointer { q in
        x.data.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = Swift.max(p[i] + q[i], 0) }
        }
    }
}
