import Foundation
import Tensor

/// A value flowing through the graph: the engine's Float32 tensor and the ONNX element type it stands for.
/// Integer and boolean values (shapes, indices, masks) are held as whole Float32 numbers, exact up to 2^24.
public struct ONNXValue: Sendable {
    public var tensor: Tensor
    public var type: ONNXElementType

    public init(_ tensor: Tensor, _ type: ONNXElementType = .float) {
        self.tensor = tensor
        self.type = type
    }

    /// A one-dimensional int64 value.
    public static func ints(_ values: [Int]) -> ONNXValue {
        ONNXValue(Tensor(shape: [values.count], data: values.map { Float($0) }), .int64)
    }

    public var shape: [Int] { tensor.shape }

    /// The values as whole numbers (shapes, axes, indices), clamped to ±2^62.
    public var integers: [Int] { tensor.data.map { ONNXInitializer.clampedInt($0) } }
}

/// An error running a node: names the node, its op and what was wrong with its inputs or attributes.
public struct ONNXNodeError: Error, CustomStringConvertible, Sendable {
    public var node: String
    public var op: String
    public var problem: String

    public init(node: String, op: String, problem: String) {
        self.node = node
        self.op = op
        self.problem = problem
    }

    public var description: String { "node '\(node)' (\(op)): \(problem)" }
}

/// What an op implementation sees: its node, the opset and its input values (nil for omitted optional inputs).
public struct ONNXOpContext {
    public let node: ONNXNode
    public let opset: Int
    public let inputs: [ONNXValue?]
    /// True while the interpreter folds constants: an output larger than `foldLimit` values is left to run time.
    public var folding = false
    /// The largest output (in values) constant folding makes: shape arithmetic is small, and a large constant
    /// made from a small file is computed when the graph runs, not when it is opened.
    public static let foldLimit = 1 << 22

    public func fail(_ problem: String) -> ONNXNodeError { ONNXNodeError(node: node.name, op: node.opType, problem: problem) }

    /// Input `i`, which the op requires.
    public func input(_ i: Int) throws -> ONNXValue {
        guard i < inputs.count, let v = inputs[i] else { throw fail("input \(i) is required") }
        return v
    }

    public func tensor(_ i: Int) throws -> Tensor { try input(i).tensor }

    /// Input `i` when given.
    public func optional(_ i: Int) -> ONNXValue? { i < inputs.count ? inputs[i] : nil }

    public func int(_ name: String) throws -> Int? {
        switch node.attributes[name] {
        case nil: return nil
        case .int(let v)?: return v
        default: throw fail("attribute '\(name)' must be an int")
        }
    }

    public func int(_ name: String, default d: Int) throws -> Int { try int(name) ?? d }

    public func float(_ name: String, default d: Float) throws -> Float {
        switch node.attributes[name] {
        case nil: return d
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        default: throw fail("attribute '\(name)' must be a float")
        }
    }

    public func ints(_ name: String) throws -> [Int]? {
        switch node.attributes[name] {
        case nil: return nil
        case .ints(let v)?: return v
        case .int(let v)?: return [v]
        default: throw fail("attribute '\(name)' must be a list of ints")
        }
    }

    public func floats(_ name: String) throws -> [Float]? {
        switch node.attributes[name] {
        case nil: return nil
        case .floats(let v)?: return v
        case .float(let v)?: return [v]
        default: throw fail("attribute '\(name)' must be a list of floats")
        }
    }

    public func string(_ name: String, default d: String) throws -> String {
        switch node.attributes[name] {
        case nil: return d
        case .string(let v)?: return v
        default: throw fail("attribute '\(name)' must be a string")
        }
    }

    /// An axis attribute or input normalised into 0..<rank.
    public func axis(_ a: Int, rank: Int, what: String = "axis") throws -> Int {
        let n = a < 0 ? a + rank : a
        guard n >= 0, n < Swift.max(rank, 1) else { throw fail("\(what) \(a) is out of range for rank \(rank)") }
        return n
    }

    /// Refuses an output shape whose element count overflows or exceeds the per-tensor budget.
    public func checkSize(_ shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("output shape \(shape) has a negative dimension") }
        guard let n = Budget.product(shape), n <= Budget.tensorBytes / 4 else {
            throw fail("output shape \(shape) is larger than \(Budget.describe(bytes: Budget.tensorBytes)) as Float32")
        }
        if folding, n > ONNXOpContext.foldLimit { throw ONNXFoldDeferred() }
    }
}

/// An op implementation: the node's outputs from its inputs.
public typealias ONNXOpImplementation = @Sendable (ONNXOpContext) throws -> [ONNXValue]

/// An error before a run: an input of the wrong shape or an op this interpreter does not implement.
public struct ONNXRunError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var problem: String
    public var description: String { "\(file): \(problem)" }
}

/// Runs an `ONNXModel`'s graph on the engine's tensor ops.
///
/// Ops come from `ONNXOps.registry`; nodes run in the model's topological order. Nodes whose inputs are all
/// constants (initialisers, Constant nodes and what follows only from them: the shape arithmetic of an export)
/// are evaluated once when the interpreter is made, not on every run. A run binds the symbolic dims of the
/// declared inputs from the given tensors and frees every intermediate as soon as no later node needs it.
public final class ONNXInterpreter: @unchecked Sendable {
    public let model: ONNXModel
    /// Values known without any input: initialisers (converted on first use) and folded nodes' outputs.
    private var constants: [String: ONNXValue] = [:]
    /// Nodes left to run for each input, in order.
    public let runNodes: [ONNXNode]
    /// For each run node, the values whose last reader it is (freed after it runs).
    private let frees: [[String]]
    /// Names of folded nodes (their outputs are constants).
    public let foldedNodeCount: Int

    /// `fuse`: Conv -> Sigmoid -> Mul(conv, sigmoid) (SiLU, as ultralytics exports it) runs as one Conv with the
    /// engine's fused SiLU; Conv -> Relu and Conv -> Sigmoid likewise. The fused node keeps the Conv's name and takes
    /// the last node's output, so the intermediate values are not seen.
    public init(model: ONNXModel, fuse: Bool = true) throws {
        self.model = model
        let opset = model.opset
        // Every op must be known before anything runs.
        for n in model.nodes {
            try ONNXOps.implementation(for: n, opset: opset, file: model.file)
        }
        var constants: [String: ONNXValue] = [:]
        func constant(_ name: String) throws -> ONNXValue? {
            if let v = constants[name] { return v }
            guard let i = model.initializers[name] else { return nil }
            let v = ONNXValue(try i.tensor(), i.elementType == .double || i.elementType == .float16 || i.elementType == .bfloat16 ? .float : i.elementType)
            constants[name] = v
            return v
        }
        var run: [ONNXNode] = []
        var folded = 0
        for n in model.nodes {
            var inputs: [ONNXValue?] = []
            var allConstant = true
            for name in n.inputs {
                if name.isEmpty { inputs.append(nil); continue }
                if let v = try constant(name) { inputs.append(v) } else { allConstant = false; break }
            }
            // Folding is for small shape arithmetic: a node that makes a large tensor from constants (a weight
            // transform) runs once too, which is the same saving.
            if allConstant, n.opType != "RandomNormal", n.opType != "RandomUniform" {
                do {
                    let outs = try ONNXInterpreter.execute(n, inputs: inputs, opset: opset, folding: true)
                    for (name, v) in zip(n.outputs, outs) where !name.isEmpty { constants[name] = v }
                    folded += 1
                    continue
                } catch is ONNXFoldDeferred {}
            }
            run.append(n)
        }
        if fuse {
            run = ONNXInterpreter.fuseActivations(run, keep: Set(model.outputs.map(\.name)))
            run = try ONNXInterpreter.fuseLinear(run, keep: Set(model.outputs.map(\.name))) { try constant($0) } add: { constants[$0] = $1 }
        }
        // Initialisers that only folded nodes read need not stay converted.
        var needed = Set(model.outputs.map(\.name))
        for n in run { for i in n.inputs where !i.isEmpty { needed.insert(i) } }
        for k in Array(constants.keys) where !needed.contains(k) { constants[k] = nil }
        for name in needed where constants[name] == nil { _ = try constant(name) }
        self.constants = constants
        self.runNodes = run
        self.foldedNodeCount = folded
        // Last reader of each non-constant value.
        var last: [String: Int] = [:]
        for (k, n) in run.enumerated() { for i in n.inputs where !i.isEmpty && constants[i] == nil { last[i] = k } }
        let keep = Set(model.outputs.map(\.name))
        var frees = [[String]](repeating: [], count: run.count)
        for (name, k) in last where !keep.contains(name) { frees[k].append(name) }
        // Outputs nothing reads go as soon as their node has run (and its observer has seen them).
        for (k, n) in run.enumerated() {
            for o in n.outputs where !o.isEmpty && last[o] == nil && !keep.contains(o) { frees[k].append(o) }
        }
        self.frees = frees
    }

    /// Conv followed by its activation, when nothing else reads the Conv's output (or the Sigmoid's): one node.
    static func fuseActivations(_ nodes: [ONNXNode], keep: Set<String>) -> [ONNXNode] {
        var readers: [String: [Int]] = [:]
        for (k, n) in nodes.enumerated() { for i in n.inputs where !i.isEmpty { readers[i, default: []].append(k) } }
        var dropped = Set<Int>()
        var out = nodes
        for (k, n) in nodes.enumerated() where n.opType == "Conv" && n.domain.isEmpty && n.outputs.count == 1 {
            let y = n.outputs[0]
            guard !keep.contains(y), let users = readers[y] else { continue }
            if users.count == 1, nodes[users[0]].inputs.count == 1, ["Relu", "Sigmoid"].contains(nodes[users[0]].opType) {
                let a = nodes[users[0]]
                out[k].fusedActivation = a.opType == "Relu" ? .relu : .sigmoid
                out[k].outputs = a.outputs
                out[k].fusedNodes.append(a.name)
                dropped.insert(users[0])
                continue
            }
            guard users.count == 2 else { continue }
            let (u, v) = (nodes[users[0]], nodes[users[1]])
            let (sig, mul, si, mi) = u.opType == "Sigmoid" ? (u, v, users[0], users[1]) : (v, u, users[1], users[0])
            guard sig.opType == "Sigmoid", mul.opType == "Mul", sig.outputs.count == 1, !keep.contains(sig.outputs[0]),
                  readers[sig.outputs[0]] == [mi], Set(mul.inputs) == [y, sig.outputs[0]] else { continue }
            out[k].fusedActivation = .silu
            out[k].outputs = mul.outputs
            out[k].fusedNodes += [sig.name, mul.name]
            dropped.formUnion([si, mi])
        }
        return out.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// A value known without any input (an initialiser a run node reads, or a folded node's output), or nil.
    public func constant(_ name: String) -> ONNXValue? { constants[name] }

    /// MatMul(x, W) -> Add(·, b) with W a constant [K, N] matrix and b a constant of N values, when nothing else
    /// reads the product: one node running the engine's linear (the bias written first and the product added onto
    /// it in the same pass), reading Wᵀ [N, K], made once here under the name "W#T" (`add`s it to the constants).
    static func fuseLinear(_ nodes: [ONNXNode], keep: Set<String>, constant: (String) throws -> ONNXValue?,
                           add: (String, ONNXValue) -> Void) throws -> [ONNXNode] {
        var readers: [String: [Int]] = [:]
        for (k, n) in nodes.enumerated() { for i in n.inputs where !i.isEmpty { readers[i, default: []].append(k) } }
        var dropped = Set<Int>()
        var out = nodes
        var transposed: [String: String] = [:]
        for (k, n) in nodes.enumerated() where n.opType == "MatMul" && n.domain.isEmpty && n.inputs.count == 2 && n.outputs.count == 1 {
            let y = n.outputs[0]
            guard !keep.contains(y), let users = readers[y], users.count == 1, !dropped.contains(users[0]) else { continue }
            let a = nodes[users[0]]
            guard a.opType == "Add", a.domain.isEmpty, a.inputs.count == 2, a.outputs.count == 1, a.inputs.contains(y) else { continue }
            let biasName = a.inputs[0] == y ? a.inputs[1] : a.inputs[0]
            guard biasName != y, let w = try constant(n.inputs[1]), w.type == .float, w.shape.count == 2,
                  let b = try constant(biasName), b.type == .float, b.shape.last == w.shape[1], b.tensor.count == w.shape[1] else { continue }
            let name: String
            if let t = transposed[n.inputs[1]] { name = t } else {
                name = n.inputs[1] + "#T"
                add(name, ONNXValue(permute(w.tensor, [1, 0])))
                transposed[n.inputs[1]] = name
            }
            out[k].inputs = [n.inputs[0], name, biasName]
            out[k].outputs = a.outputs
            out[k].fusedNodes.append(a.name)
            out[k].fusedLinear = true
            dropped.insert(users[0])
        }
        return out.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// The initialiser a run node's input stands for: "W" for the transposed "W#T" of a fused MatMul+Add.
    public static func sourceName(of input: String) -> String { input.hasSuffix("#T") ? String(input.dropLast(2)) : input }

    /// Runs one node through the registry, checking what it returns.
    static func execute(_ n: ONNXNode, inputs: [ONNXValue?], opset: Int, folding: Bool = false) throws -> [ONNXValue] {
        let impl = ONNXOps.registry[n.opType]!
        var ctx = ONNXOpContext(node: n, opset: opset, inputs: inputs)
        ctx.folding = folding
        let outs = try impl(ctx)
        guard outs.count >= n.outputs.filter({ !$0.isEmpty }).count || outs.count >= n.outputs.count else {
            throw ctx.fail("produced \(outs.count) outputs for \(n.outputs.count) declared")
        }
        return outs
    }

    /// Checks `tensors` against the declared inputs and binds symbolic dims ("height" takes the value it has in
    /// the first input that names it; a second input must agree).
    public func bindInputs(_ tensors: [String: Tensor]) throws -> [String: Int] {
        try bindShapes(tensors.mapValues(\.shape))
    }

    /// `bindInputs` from the inputs' shapes alone.
    public func bindShapes(_ shapes: [String: [Int]]) throws -> [String: Int] {
        var bound: [String: Int] = [:]
        for info in model.inputs {
            guard let shape = shapes[info.name] else {
                throw ONNXRunError(file: model.file, problem: "input '\(info.name)' \(info.shapeDescription) was not given")
            }
            guard let dims = info.dims else { continue }
            guard dims.count == shape.count else {
                throw ONNXRunError(file: model.file, problem: "input '\(info.name)' must be \(info.shapeDescription), got \(shape)")
            }
            for (d, n) in zip(dims, shape) {
                switch d {
                case .value(let v) where v != n:
                    throw ONNXRunError(file: model.file, problem: "input '\(info.name)' must be \(info.shapeDescription), got \(shape)")
                case .symbol(let s):
                    if let b = bound[s], b != n {
                        throw ONNXRunError(file: model.file, problem: "input '\(info.name)' has \(s) = \(n), another input bound it to \(b)")
                    }
                    bound[s] = n
                default: break
                }
            }
        }
        return bound
    }

    /// Runs the graph. `observe` sees each node's outputs right after it runs (with the seconds it took), before
    /// any of them is freed; it returns false to stop the run (a cancel). Returns the graph outputs by name.
    public func run(_ tensors: [String: Tensor],
                    observe: ((ONNXNode, [ONNXValue], Double) throws -> Bool)? = nil) throws -> [String: ONNXValue] {
        _ = try bindInputs(tensors)
        var values: [String: ONNXValue] = [:]
        for info in model.inputs {
            let type = info.elementType ?? .float
            values[info.name] = ONNXValue(tensors[info.name]!, type == .double || type == .float16 ? .float : type)
        }
        let opset = model.opset
        for (k, n) in runNodes.enumerated() {
            var inputs: [ONNXValue?] = []
            inputs.reserveCapacity(n.inputs.count)
            for name in n.inputs {
                if name.isEmpty { inputs.append(nil) } else { inputs.append(values[name] ?? constants[name]) }
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let outs = try ONNXInterpreter.execute(n, inputs: inputs, opset: opset)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            for (name, v) in zip(n.outputs, outs) where !name.isEmpty { values[name] = v }
            if let observe, try !observe(n, outs, seconds) { throw ONNXCancelled() }
            for name in frees[k] { values[name] = nil }
        }
        var out: [String: ONNXValue] = [:]
        for o in model.outputs { out[o.name] = values[o.name] ?? constants[o.name] }
        return out
    }
}

/// A constant too large to fold: its node runs with the graph instead.
struct ONNXFoldDeferred: Error {}

/// A run stopped by its observer.
public struct ONNXCancelled: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "the run was cancelled" }
}
