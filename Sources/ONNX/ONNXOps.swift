import Foundation
import Tensor

/// The op registry: ONNX op type -> implementation over the engine's Tensor ops. Adding an op is one entry here
/// (and its function in the family file: Ops/Elementwise, Ops/NN, Ops/ShapeOps, Ops/Reduce).
public enum ONNXOps {
    public static let registry: [String: ONNXOpImplementation] = [
        // Element-wise arithmetic and maths (Ops/ElementwiseOps.swift)
        "Add": ElementwiseOps.add, "Sub": ElementwiseOps.sub, "Mul": ElementwiseOps.mul, "Div": ElementwiseOps.div,
        "Pow": ElementwiseOps.pow, "Mod": ElementwiseOps.mod,
        "Sqrt": ElementwiseOps.sqrt, "Exp": ElementwiseOps.exp, "Log": ElementwiseOps.log, "Neg": ElementwiseOps.neg,
        "Abs": ElementwiseOps.abs, "Erf": ElementwiseOps.erf, "Tanh": ElementwiseOps.tanh, "Reciprocal": ElementwiseOps.reciprocal,
        "Floor": ElementwiseOps.floor, "Ceil": ElementwiseOps.ceil, "Round": ElementwiseOps.round,
        "Sin": ElementwiseOps.sin, "Cos": ElementwiseOps.cos,
        "Relu": ElementwiseOps.relu, "Sigmoid": ElementwiseOps.sigmoid, "HardSigmoid": ElementwiseOps.hardSigmoid,
        "HardSwish": ElementwiseOps.hardSwish, "LeakyRelu": ElementwiseOps.leakyRelu, "Gelu": ElementwiseOps.gelu,
        "Softplus": ElementwiseOps.softplus, "Mish": ElementwiseOps.mish, "Elu": ElementwiseOps.elu,
        "Clip": ElementwiseOps.clip, "Min": ElementwiseOps.min, "Max": ElementwiseOps.max,
        "Equal": ElementwiseOps.equal, "Greater": ElementwiseOps.greater, "Less": ElementwiseOps.less,
        "GreaterOrEqual": ElementwiseOps.greaterOrEqual, "LessOrEqual": ElementwiseOps.lessOrEqual,
        "Not": ElementwiseOps.not, "And": ElementwiseOps.and, "Or": ElementwiseOps.or, "Xor": ElementwiseOps.xor,
        "Where": ElementwiseOps.where, "Cast": ElementwiseOps.cast, "Identity": ElementwiseOps.identity,
        "Dropout": ElementwiseOps.identity,
        // Neural-network layers (Ops/NNOps.swift)
        "Conv": NNOps.conv, "BatchNormalization": NNOps.batchNormalization, "Gemm": NNOps.gemm, "MatMul": NNOps.matMul,
        "Softmax": NNOps.softmax, "LogSoftmax": NNOps.logSoftmax, "LayerNormalization": NNOps.layerNormalization,
        "MaxPool": NNOps.maxPool, "AveragePool": NNOps.averagePool, "GlobalAveragePool": NNOps.globalAveragePool,
        "GlobalMaxPool": NNOps.globalMaxPool, "Resize": NNOps.resize, "GridSample": NNOps.gridSample,
        "ConvTranspose": ConvTransposeOp.convTranspose, "Einsum": EinsumOp.einsum,
        "InstanceNormalization": NNOps.instanceNormalization,
        // Shapes and indexing (Ops/ShapeOps.swift)
        "Reshape": ShapeOps.reshape, "Flatten": ShapeOps.flatten, "Squeeze": ShapeOps.squeeze, "Unsqueeze": ShapeOps.unsqueeze,
        "Transpose": ShapeOps.transpose, "Concat": ShapeOps.concat, "Split": ShapeOps.split, "Slice": ShapeOps.slice,
        "Gather": ShapeOps.gather, "GatherElements": ShapeOps.gatherElements, "Expand": ShapeOps.expand, "Tile": ShapeOps.tile,
        "Shape": ShapeOps.shape, "Size": ShapeOps.size, "ConstantOfShape": ShapeOps.constantOfShape, "Range": ShapeOps.range,
        "Constant": ShapeOps.constant, "Pad": ShapeOps.pad, "ScatterND": ShapeOps.scatterND,
        // Reductions, ordering and scans (Ops/ReduceOps.swift)
        "ReduceSum": ReduceOps.reduceSum, "ReduceMean": ReduceOps.reduceMean, "ReduceMax": ReduceOps.reduceMax,
        "ReduceMin": ReduceOps.reduceMin, "ArgMax": ReduceOps.argMax, "TopK": ReduceOps.topK, "CumSum": ReduceOps.cumSum,
    ]

    /// The supported op types, sorted (for messages).
    public static var supported: [String] { registry.keys.sorted() }

    /// Checks that `node` has an implementation (default domain, known op type); the error names the op, its node,
    /// the opset and lists what is supported.
    @discardableResult
    public static func implementation(for node: ONNXNode, opset: Int, file: String) throws -> ONNXOpImplementation {
        let domain = node.domain
        guard domain.isEmpty || domain == "ai.onnx", let impl = registry[node.opType] else {
            let op = domain.isEmpty || domain == "ai.onnx" ? node.opType : "\(domain).\(node.opType)"
            throw ONNXRunError(file: file, problem: "op \(op) of node '\(node.name)' (opset \(opset)) is not supported; supported ops: \(supported.joined(separator: ", "))")
        }
        return impl
    }
}
