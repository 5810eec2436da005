import Foundation
import Tensor

// One module tree. A block is a struct that holds its children under their checkpoint keys (`Child` properties,
// found by reflection as mlx-swift finds `@ModuleInfo(key:)` properties), the parameters it holds itself, and a
// forward pass. Everything else is derived, nowhere written again per block:
// - parameter counts: the tree's sum (`parameterCount`);
// - output shapes and FLOPs: one shape pass (`Tensor.shapePass`), the forward pass itself run on shape-only
//   tensors, every child call recorded with its shapes (`CallRecorder`); FLOPs are the layer library's own counts
//   (`ownFlops`: conv, batch norm, linear, ... as FLOPS.md says) summed over the calls;
// - the layer table's sub-rows, and trace paths: the recorded calls, each under its dotted key path;
// - strict key checks: every child asks the weight store for its tensors under its key (`WeightScope`).

/// A block of a model: its children (`Child` properties), the parameters it holds itself, and a forward pass.
public protocol Module: Sendable {
    /// The reference implementation's class name ("Conv", "C2f", "Bottleneck"), as the layer table prints it.
    var typeName: String { get }
    /// Parameters this module holds itself, not its children's, as PyTorch counts them (a batch norm folded
    /// into its convolution still counts its weight and bias).
    var ownParameterCount: Int { get }
    /// FLOPs (multiply-adds counted as 2) of what this module computes itself in one call, not its children:
    /// the layer library's leaves, and a block whose own functional op the reference counter sees.
    func ownFlops(inputs: [[Int]], output: [Int]) -> Double
    /// The direct children under their keys (by default: reflection over the stored `Child`, `[Child]` and
    /// `Child?` properties, in declaration order).
    var children: [(key: String, module: any Module)] { get }
    /// The forward pass on the inputs its graph row names (one for most blocks).
    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput
}

extension Module {
    public var typeName: String { _typeName(type(of: self), qualified: false) }
    public var ownParameterCount: Int { 0 }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { 0 }

    public var children: [(key: String, module: any Module)] {
        var out: [(key: String, module: any Module)] = []
        for case let (_, value) in Mirror(reflecting: self).children {
            if let c = value as? any ChildSlot {
                out.append((c.key, c.anyModule))
            } else if let cs = value as? [any ChildSlot] {
                out += cs.map { ($0.key, $0.anyModule) }
            }
        }
        return out
    }

    /// Parameters of the whole subtree, as PyTorch's `sum(p.numel() for p in m.parameters())`.
    public var parameterCount: Int { children.reduce(ownParameterCount) { $0 + $1.module.parameterCount } }

    /// FLOPs of one call on inputs of these shapes, its children's included (one shape pass; 0 when the shapes do not fit).
    public func flops(inputShapes: [[Int]]) -> Double {
        (try? CallRecorder.measure(self, inputs: inputShapes, path: ""))?.calls.first?.flops ?? 0
    }

    /// FLOPs of one call on one input of this shape.
    public func flops(inputShape: [Int]) -> Double { flops(inputShapes: [inputShape]) }
}

/// A module with one input and one output (most blocks).
public protocol UnaryModule: Module {
    func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor
}

extension UnaryModule {
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        LayerOutput(try forward(inputs[0], ctx))
    }
}

/// What reflection finds of a `Child` without knowing its module type.
public protocol ChildSlot: Sendable {
    var key: String { get }
    var anyModule: any Module { get }
}

/// A child module under its checkpoint key (relative to its parent, e.g. `cv1` or `m.0`). Calling it runs the
/// module under the parent's path plus the key, recorded by the shape pass and the trace.
public struct Child<M: Module>: ChildSlot {
    public let key: String
    public let module: M

    public init(_ key: String, _ module: M) {
        self.key = key
        self.module = module
    }

    /// Builds the module from the weights under `key` of `w`.
    public init(_ w: WeightScope, _ key: String, _ make: (WeightScope) throws -> M) rethrows {
        self.key = key
        self.module = try make(w.scope(key))
    }

    public var anyModule: any Module { module }

    public func callAsFunction(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        try ctx.call(module, key: key, inputs)
    }
}

extension Child where M: UnaryModule {
    public func callAsFunction(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try ctx.call(module, key: key, [x]).main
    }
}

extension Array {
    /// Children `name.0`, `name.1`, ... built from the weights under those keys (an nn.ModuleList or nn.Sequential).
    public init<M: Module>(_ w: WeightScope, _ name: String, count: Int, _ make: (Int, WeightScope) throws -> M) rethrows
    where Element == Child<M> {
        self = try (0 ..< count).map { i in try Child(w, "\(name).\(i)") { try make(i, $0) } }
    }
}

/// A layer whose output has an empty dimension in a shape pass: the input is too small for its kernels and strides.
public struct EmptyOutputError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let module: String
    public let shape: [Int]
    public var description: String {
        "\(path) (\(module)): its output would be \(shape): the input is too small for the model's kernels and strides"
    }
}

/// A layer whose output in a shape pass holds more values than the pass allows (or a count that overflows).
public struct ShapePassTooLarge: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let shape: [Int]
    public var description: String { "\(path): its output \(shape) is larger than this machine can hold" }
}

/// The calls of a forward pass, module by module, with their shapes and FLOPs: what the shape pass measures.
public final class CallRecorder: @unchecked Sendable {
    public struct Call: Sendable {
        public var path: String
        /// 0 for the top-level call the recorder was started with, 1 for its children, ...
        public var depth: Int
        public var typeName: String
        public var parameters: Int
        public var inputs: [[Int]]
        public var output: [Int]
        /// FLOPs of the call, its children's included.
        public var flops: Double
    }

    public private(set) var calls: [Call] = []
    private var open: [Int] = []
    /// The most values one output may hold in a shape pass (`ShapePassTooLarge` past it).
    public let limit: Int

    public init(limit: Int = .max) { self.limit = limit }

    func begin(path: String, module: any Module, inputs: [[Int]]) -> Int {
        calls.append(Call(path: path, depth: open.count, typeName: module.typeName, parameters: module.parameterCount,
                          inputs: inputs, output: [], flops: 0))
        open.append(calls.count - 1)
        return calls.count - 1
    }

    func end(_ i: Int, output: [Int], ownFlops: Double) {
        open.removeLast()
        calls[i].output = output
        calls[i].flops += ownFlops
        if let parent = open.last { calls[parent].flops += calls[i].flops }
    }

    /// The calls below the one at `index` (its whole subtree), as layer-table rows nested by depth.
    public func rows(under index: Int) -> [LayerRow] {
        let base = calls[index].depth
        var i = index + 1
        func level(_ depth: Int, under parent: String) -> [LayerRow] {
            var rows: [LayerRow] = []
            let prefix = parent + "."
            while i < calls.count, calls[i].depth >= depth, calls[i].depth > base {
                let c = calls[i]
                i += 1
                let sub = level(c.depth + 1, under: c.path)
                let name = c.path.hasPrefix(prefix) ? String(c.path.dropFirst(prefix.count)) : c.path
                rows.append(LayerRow(index: rows.count, from: [], repeats: 1, params: c.parameters, module: name + " " + c.typeName,
                                     arguments: "", flops: c.flops, outputShape: c.output, children: sub))
            }
            return rows
        }
        return level(base + 1, under: calls[index].path)
    }
}

extension CallRecorder {
    /// One shape pass of `module` alone on inputs of these shapes, under `path`: its first call is the module's own
    /// (FLOPs, output shape), the rest its sub-modules'.
    public static func measure(_ module: any Module, inputs: [[Int]], path: String) throws -> CallRecorder {
        let recorder = CallRecorder()
        let ctx = ForwardContext(trace: nil, path: path, recorder: recorder)
        _ = try Tensor.shapePass { try ctx.call(module, key: nil, inputs.map { Tensor(shapeOnly: $0) }) }
        return recorder
    }
}

extension ForwardContext {
    /// Runs `module` as the child `key` of this context's module: under the child's path, recorded by the shape
    /// pass's recorder (shapes and FLOPs) when there is one. In a shape pass an output with an empty dimension
    /// stops the pass with `EmptyOutputError`, naming the child.
    public func call(_ module: any Module, key: String?, _ inputs: [Tensor]) throws -> LayerOutput {
        let ctx = key.map { child($0) } ?? self
        guard let recorder else { return try module.forward(inputs, ctx) }
        let shapes = inputs.map(\.shape)
        let i = recorder.begin(path: ctx.path, module: module, inputs: shapes)
        let out = try module.forward(inputs, ctx)
        let o = out.main.shape
        recorder.end(i, output: o, ownFlops: module.ownFlops(inputs: shapes, output: o))
        if out.main.isShapeOnly {
            if let problem = Tensor.shapePassProblem { throw ModuleInputError("\(ctx.path) (\(module.typeName))", problem) }
            if o.contains(where: { $0 < 1 }) { throw EmptyOutputError(path: ctx.path, module: module.typeName, shape: o) }
            guard let n = Budget.product(o), n <= recorder.limit else { throw ShapePassTooLarge(path: ctx.path, shape: o) }
        }
        return out
    }
}

/// Modules applied in sequence, children `0`, `1`, ... (an nn.Sequential), e.g. parse_model's wrapping of a row
/// with n > 1 of a block that does not take a repeat count.
public struct Sequential: Module {
    let layers: [Child<AnyModule>]

    public init(_ layers: [any Module]) {
        self.layers = layers.enumerated().map { Child(String($0), AnyModule($1)) }
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        var out = LayerOutput(inputs[0])
        var x = inputs
        for l in layers {
            out = try l(x, ctx)
            x = [out.main]
        }
        return out
    }
}

extension Sequential: UnaryModule {
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try forward([x], ctx).main }
}

/// A module of any type as a child (its own type name, parameters, FLOPs and children).
public struct AnyModule: Module {
    public let base: any Module
    public init(_ base: any Module) { self.base = (base as? AnyModule)?.base ?? base }
    public var typeName: String { base.typeName }
    public var ownParameterCount: Int { base.ownParameterCount }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { base.ownFlops(inputs: inputs, output: output) }
    public var children: [(key: String, module: any Module)] { base.children }
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput { try base.forward(inputs, ctx) }
}

extension AnyModule: UnaryModule {
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try base.forward([x], ctx).main }
}
