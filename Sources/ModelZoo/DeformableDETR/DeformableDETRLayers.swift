import Foundation
import Tensor

/// transformers' `_init_weights` for the Deformable DETR linears: normal(0, init_std 0.02) weight, zero bias.
func ddetrLinear(_ w: WeightScope, in i: Int, out o: Int, weightInit: WeightInit? = nil, biasInit: WeightInit? = nil) throws -> Linear {
    try Linear(w, in: i, out: o, weightInit: weightInit ?? .normal(mean: 0, std: 0.02), biasInit: biasInit ?? .zeros)
}

/// transformers' `DeformableDetrMLPPredictionHead` (the box head): the shared `MLP` (`layers.{i}`, ReLU between),
/// initialised as transformers does.
func ddetrPredictionHead(_ w: WeightScope, input: Int, hidden: Int, output: Int, layers n: Int) throws -> MLP {
    let init02: (WeightInit, WeightInit) = (.normal(mean: 0, std: 0.02), .zeros)
    return try MLP(w, input: input, hidden: hidden, output: output, layers: n, inits: Dictionary(uniqueKeysWithValues: (0 ..< n).map { ($0, init02) }))
}

/// max(x + y, 0) in place into x (the ResNet residual sum and its ReLU in one pass); shapes must match.
func ddetrAddReluInPlace(_ x: inout Tensor, _ y: Tensor) {
    precondition(x.shape == y.shape, "residual sum: \(x.shape) and \(y.shape)")
    if x.isShapeOnly { return }
    y.data.withUnsafeBufferPointer { q in
        x.data.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = Swift.max(p[i] + q[i], 0) }
        }
    }
}

/// The multi-scale deformable attention of the Deformable DETR layers: the shared one, counting its sampling, with
/// transformers' class name.
func ddetrDeformableAttention(_ w: WeightScope, dModel: Int, heads: Int, levels: Int, points: Int) throws -> MSDeformAttention {
    try MSDeformAttention(w, dModel: dModel, levels: levels, heads: heads, points: points, countsSampling: true,
                          typeName: "DeformableDetrMultiscaleDeformableAttention")
}
