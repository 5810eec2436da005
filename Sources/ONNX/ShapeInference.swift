import Foundation
import Tensor

/// The shapes of every value of a graph at given input shapes, found without running the heavy ops.
///
/// The run nodes are walked in order. A node whose inputs are all known small values (the shape arithmetic:
/// Shape, Gather, Concat, Cast, Range of known bounds, ...) runs through its implementation, as constant folding
/// runs it, so its value is known to the nodes after it. Every other node gets its output shapes from a per-op rule
/// over its inputs' shapes, attributes and known values (a Reshape's target, a Slice's starts, a Resize's scales).
/// When a rule needs a value that depends on the image's data (a TopK's K or a Reshape's target computed from
/// image values), the node's shapes are unknown, and so are those of every node that reads them: `unknown` names
/// the first such node of each chain, nothing is guessed.
public struct ONNXShapes: Sendable {
    /// Each run node's output shapes, in the node's output order (nil: not known before a run).
    public var nodeOutputs: [[[Int]?]]
    /// The shape of every value whose shape is known, by name.
    public var shapes: [String: [Int]]
    /// The run nodes whose output shapes depend on data, each with the reason (the node itself, or the input it
    /// reads from an unknown node).
    public var unknown: [Int: String]
}

/// A node whose output shape depends on data that only a run computes.
struct ONNXShapeUnknown: Error {
    var reason: String
}

extension ONNXInterpreter {
    /// The shapes of every run node's outputs when the graph's inputs have `inputShapes` (by input name).
    /// Throws when the shapes do not fit the declared inputs, as a run would.
    public func inferShapes(_ inputShapes: [String: [Int]]) throws -> ONNXShapes {
        var shapes: [String: [Int]] = [:]
        var values: [String: ONNXValue] = [:]
        for info in model.inputs {
            guard let s = inputShapes[info.name] else {
                throw ONNXRunError(file: model.file, problem: "input '\(info.name)' \(info.shapeDescription) was not given")
            }
            shapes[info.name] = s
        }
        _ = try bindShapes(shapes)
        var nodeOutputs: [[[Int]?]] = []
        var unknown: [Int: String] = [:]
        /// The node that made each value whose shape is unknown.
        var unknownSource: [String: String] = [:]
        let opset = model.opset
        for (k, n) in runNodes.enumerated() {
            var inShapes: [[Int]?] = [], inValues: [ONNXValue?] = []
            var missing: String? = nil
            for name in n.inputs {
                if name.isEmpty { inShapes.append(nil); inValues.append(nil); continue }
                let c = constant(name)
                let v = values[name] ?? c
                inValues.append(v)
                let s = shapes[name] ?? c?.shape
                if s == nil, missing == nil { missing = unknownSource[name] ?? name }
                inShapes.append(s)
            }
            var outs: [[Int]?]
            if let missing {
                outs = n.outputs.map { _ in nil }
                unknown[k] = "reads a value shaped by \(missing)"
            } else {
                do {
                    outs = try ONNXInterpreter.knownOutputs(n, opset: opset, shapes: inShapes, values: inValues, into: &values)
                } catch let e as ONNXShapeUnknown {
                    outs = n.outputs.map { _ in nil }
                    unknown[k] = e.reason
                } catch let e as ONNXNodeError {
                    throw ONNXRunError(file: model.file, problem: e.description)
                }
            }
            for (i, name) in n.outputs.enumerated() where !name.isEmpty {
                if i < outs.count, let s = outs[i] { shapes[name] = s } else { unknownSource[name] = "\(n.opType) '\(n.name)'" }
            }
            nodeOutputs.append(outs)
        }
        return ONNXShapes(nodeOutputs: nodeOutputs, shapes: shapes, unknown: unknown)
    }

    /// One node's output shapes: run when every input is a known value small enough to fold, else by its rule.
    static func knownOutputs(_ n: ONNXNode, opset: Int, shapes: [[Int]?], values: [ONNXValue?],
                             into known: inout [String: ONNXValue]) throws -> [[Int]?] {
        let present = zip(n.inputs, values).filter { !$0.0.isEmpty }
        if !present.isEmpty, present.allSatisfy({ $0.1 != nil }),
           present.reduce(0, { $0 + $1.1!.tensor.count }) <= ONNXOpContext.foldLimit,
           n.opType != "RandomNormal", n.opType != "RandomUniform" {
            do {
                let outs = try execute(n, inputs: values, opset: opset, folding: true)
                for (name, v) in zip(n.outputs, outs) where !name.isEmpty { known[name] = v }
                return outs.map(\.shape)
            } catch is ONNXFoldDeferred {}
        }
        let ctx = ONNXOpContext(node: n, opset: opset, inputs: values)
        let outs = try ONNXShapeRules.outputShapes(ctx, shapes: shapes)
        // As a run checks every output: no negative dimension, nothing past the tensor budget.
        for case let shape? in outs { try ctx.checkSize(shape) }
        // Shape and Size know their value from the shape alone (the start of every shape subgraph).
        if n.opType == "Shape" || n.opType == "Size", let s = shapes.first ?? nil, let name = n.outputs.first, !name.isEmpty {
            known[name] = n.opType == "Size" ? ONNXValue(Tensor(scalar: Float(s.reduce(1, *))), .int64)
                : ONNXValue.ints(try ShapeOps.shapeSlice(ctx, s))
        }
        return outs
    }
}

/// The output-shape rule of each supported op (what its implementation in Ops/ would make, from shapes only).
enum ONNXShapeRules {
    static let sameShape: Set<String> = [
        "Sqrt", "Exp", "Log", "Neg", "Abs", "Erf", "Tanh", "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos",
        "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Gelu", "Softplus", "Mish", "Elu", "Clip",
        "Not", "Cast", "Identity", "Dropout", "Softmax", "LogSoftmax", "LayerNormalization", "BatchNormalization",
        "InstanceNormalization", "CumSum", "ScatterND",
    ]
    static let broadcasting: Set<String> = [
        "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Min", "Max", "Equal", "Greater", "Less", "GreaterOrEqual",
        "LessOrEqual", "And", "Or", "Xor", "Where",
    ]

    static func outputShapes(_ ctx: ONNXOpContext, shapes: [[Int]?]) throws -> [[Int]?] {
        let n = ctx.node
        func s(_ i: Int) throws -> [Int] {
            guard i < shapes.count, let v = shapes[i] else { throw ctx.fail("input \(i) is required") }
            return v
        }
        /// Input `i`'s value when the node has that input; a value only a run computes is data-dependent.
        func value(_ i: Int, _ what: String) throws -> ONNXValue? {
            guard i < n.inputs.count, !n.inputs[i].isEmpty else { return nil }
            guard let v = ctx.inputs[i] else {
                throw ONNXShapeUnknown(reason: "its \(what) (input '\(n.inputs[i])') is computed from the image's values")
            }
            return v
        }
        func required(_ i: Int, _ what: String) throws -> ONNXValue {
            guard let v = try value(i, what) else { throw ctx.fail("input \(i) (\(what)) is required") }
            return v
        }
        if sameShape.contains(n.opType) {
            let x = try s(0)
            return n.outputs.map { _ in x }
        }
        if broadcasting.contains(n.opType) {
            var acc = try s(0)
            for i in 1 ..< shapes.count where i < n.inputs.count && !n.inputs[i].isEmpty {
                acc = try ElementwiseOps.broadcastShape(ctx, acc, try s(i))
            }
            return [acc]
        }
        switch n.opType {
        case "Conv":
            return [try NNOps.convGeometry(ctx, x: try s(0), w: try s(1)).output]
        case "ConvTranspose":
            return [try ConvTransposeOp.outputShape(ctx, x: try s(0), w: try s(1))]
        case "Gemm":
            let a = try s(0), b = try s(1)
            guard a.count == 2, b.count == 2 else { throw ctx.fail("A \(a) and B \(b) must be matrices") }
            let ta = try ctx.int("transA", default: 0) != 0, tb = try ctx.int("transB", default: 0) != 0
            return [[ta ? a[1] : a[0], tb ? b[0] : b[1]]]
        case "MatMul" where n.fusedLinear:
            let x = try s(0), w = try s(1)
            guard !x.isEmpty, w.count == 2, x[x.count - 1] == w[1] else { throw ctx.fail("inner dimensions differ: \(x) x \(w)ᵀ") }
            return [Array(x.dropLast()) + [w[0]]]
        case "MatMul":
            var a = try s(0), b = try s(1)
            guard !a.isEmpty, !b.isEmpty else { throw ctx.fail("operands must not be scalars: \(a) x \(b)") }
            let vecA = a.count == 1, vecB = b.count == 1
            if vecA { a = [1] + a }
            if vecB { b = b + [1] }
            guard a[a.count - 1] == b[b.count - 2] else { throw ctx.fail("inner dimensions differ: \(a) x \(b)") }
            var y = try ElementwiseOps.broadcastShape(ctx, Array(a.dropLast(2)), Array(b.dropLast(2))) + [a[a.count - 2], b[b.count - 1]]
            if vecA { y.remove(at: y.count - 2) }
            if vecB { y.removeLast() }
            return [y]
        case "Einsum":
            let ranks = try (0 ..< shapes.count).map { try s($0) }
            return [try EinsumOp.outputShape(ctx, shapes: ranks)]
        case "MaxPool", "AveragePool":
            return [try NNOps.poolGeometry(ctx, shape: try s(0)).output]
        case "GlobalAveragePool", "GlobalMaxPool":
            let x = try s(0)
            guard x.count >= 3 else { throw ctx.fail("input must be [N, C, ...], got \(x)") }
            return [[x[0], x[1]] + [Int](repeating: 1, count: x.count - 2)]
        case "Resize":
            let x = try s(0)
            var scales: [Float]? = nil, sizes: [Int]? = nil
            if ctx.opset < 11 {
                scales = try required(1, "scales").tensor.data
            } else {
                if let v = try value(2, "scales"), v.tensor.count > 0 { scales = v.tensor.data }
                if let v = try value(3, "sizes"), v.tensor.count > 0 { sizes = v.integers }
            }
            return [try NNOps.resizeShape(ctx, x: x, scales: scales, sizes: sizes)]
        case "GridSample":
            let x = try s(0), g = try s(1)
            guard x.count == 4, g.count == 4 else { throw ctx.fail("input \(x) and grid \(g) must be [N, C, H, W] and [N, Ho, Wo, 2]") }
            return [[x[0], x[1], g[1], g[2]]]
        case "Reshape":
            let x = try s(0)
            return [try ShapeOps.reshapeTarget(ctx, x, spec: try required(1, "target shape").integers)]
        case "Flatten":
            let x = try s(0)
            return [try ShapeOps.flattenShape(ctx, x)]
        case "Squeeze":
            if ctx.opset >= 13 { _ = try value(1, "axes") }
            return [try ShapeOps.squeezeShape(ctx, try s(0))]
        case "Unsqueeze":
            if ctx.opset >= 13 { _ = try value(1, "axes") }
            return [try ShapeOps.unsqueezeShape(ctx, try s(0))]
        case "Transpose":
            return [try ShapeOps.transposePerm(ctx, rank: try s(0).count).map { try s(0)[$0] }]
        case "Concat":
            return [try ShapeOps.concatShape(ctx, try (0 ..< shapes.count).map { try s($0) })]
        case "Split":
            if ctx.opset >= 13 { _ = try value(1, "split") }
            let x = try s(0)
            let (axis, sizes) = try ShapeOps.splitSizes(ctx, x)
            return sizes.map { var y = x; y[axis] = $0; return y }
        case "Slice":
            if ctx.opset >= 10 {
                for (i, what) in [(1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")] { _ = try value(i, what) }
            }
            return [try ShapeOps.sliceShape(ctx, try s(0))]
        case "Gather":
            let x = try s(0), ind = try s(1)
            let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.count)
            return [Array(x[..<axis]) + ind + Array(x[(axis + 1)...])]
        case "GatherElements":
            return [try s(1)]
        case "Expand":
            return [try ElementwiseOps.broadcastShape(ctx, try s(0), try required(1, "shape").integers)]
        case "Tile":
            return [try ShapeOps.tileShape(ctx, try s(0), repeats: try required(1, "repeats").integers)]
        case "Shape":
            return [[try ShapeOps.shapeSlice(ctx, try s(0)).count]]
        case "Size":
            return [[]]
        case "ConstantOfShape":
            return [try required(0, "shape").integers]
        case "Range":
            _ = try required(0, "start"); _ = try required(1, "limit"); _ = try required(2, "delta")
            throw ONNXShapeUnknown(reason: "its length depends on values computed from the image")
        case "Pad":
            let x = try s(0)
            if ctx.opset >= 11 { _ = try required(1, "pads") }
            if ctx.opset >= 18 { _ = try value(3, "axes") }
            return [try ShapeOps.padShape(ctx, x)]
        case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin":
            let from = n.opType == "ReduceSum" ? 13 : 18
            if ctx.opset >= from { _ = try value(1, "axes") }
            return [try ReduceOps.reduceShape(ctx, try s(0), axesFromInput: from)]
        case "ArgMax":
            var x = try s(0)
            let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.count)
            if try ctx.int("keepdims", default: 1) != 0 { x[axis] = 1 } else { x.remove(at: axis) }
            return [x]
        case "TopK":
            var x = try s(0)
            let k = ctx.opset < 10 ? try ctx.int("k", default: 0) : try required(1, "K").integers.first ?? 0
            let axis = try ctx.axis(try ctx.int("axis", default: -1), rank: x.count)
            x[axis] = k
            return [x, x]
        case "Constant":
            return try ONNXInterpreter.execute(n, inputs: [], opset: ctx.opset).map(\.shape)
        default:
            throw ONNXShapeUnknown(reason: "no shape rule for \(n.opType)")
        }
    }
}
