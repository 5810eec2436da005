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

/// The feed-forward end of a Deformable DETR encoder or decoder layer (transformers' `DeformableDetrMLP` and the
/// layer's final norm): `final_layer_norm(h + fc2(act(fc1(h))))`, its linears and norm children of the layer.
protocol DDETRFeedForwardLayer: Module {
    var fc1: Child<Linear> { get }
    var fc2: Child<Linear> { get }
    var finalLayerNorm: Child<LayerNorm> { get }
    var activation: Activation { get }
}

extension DDETRFeedForwardLayer {
    /// The children `fc1`, `fc2` (d -> ffn -> d) and `final_layer_norm` under `w`.
    static func feedForward(_ w: WeightScope, dModel d: Int, ffn: Int) throws -> (Child<Linear>, Child<Linear>, Child<LayerNorm>) {
        (try Child(w, "fc1") { try ddetrLinear($0, in: d, out: ffn) }, try Child(w, "fc2") { try ddetrLinear($0, in: ffn, out: d) },
         try Child(w, "final_layer_norm") { try LayerNorm($0, dim: d) })
    }

    func feedForward(_ h: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try finalLayerNorm(h + fc2(activation.apply(fc1(h, ctx)), ctx), ctx)
    }
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

/// Level shapes as the [L, 2] tensor of (H, W) rows the Deformable DETR layers take among their inputs.
func ddetrLevelShapes(_ shapes: [(Int, Int)]) -> Tensor {
    Tensor(shape: [shapes.count, 2], data: shapes.flatMap { [Float($0.0), Float($0.1)] })
}

/// The level shapes back from that tensor.
func ddetrLevelShapes(_ t: Tensor) -> [(Int, Int)] {
    (0 ..< t.shape[0]).map { (Int(t.data[2 * $0]), Int(t.data[2 * $0 + 1])) }
}

/// The multi-scale deformable attention of the Deformable DETR layers: the shared one, counting its sampling, with
/// transformers' class name.
func ddetrDeformableAttention(_ w: WeightScope, dModel: Int, heads: Int, levels: Int, points: Int) throws -> MSDeformAttention {
    try MSDeformAttention(w, dModel: dModel, levels: levels, heads: heads, points: points, countsSampling: true,
                          typeName: "DeformableDetrMultiscaleDeformableAttention")
}
