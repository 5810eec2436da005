import Foundation
import Tensor

/// One built top-level layer: `model.{index}`.
public struct GraphNode: Sendable {
    public var index: Int
    /// `from` as written; `fromIsList` tells a one-element list from a plain integer.
    public var from: [Int]
    public var fromIsList: Bool
    /// Repeats after the depth gain (what ultralytics prints as n).
    public var repeats: Int
    /// YAML module name.
    public var module: String
    /// The type as ultralytics prints it.
    public var typeName: String
    public var arguments: [LayerArg]
    public var layer: any GraphLayer
    public var outputChannels: Int
    public var params: Int { layer.parameterCount }
}

/// `n` copies of a layer applied in sequence, as parse_model wraps a non-repeat module whose row has n > 1
/// (weights under `model.{i}.{j}`).
struct SequentialGraphLayer: GraphLayer {
    let layers: [any GraphLayer]
    var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }
    func outputShape(inputShapes: [[Int]]) -> [Int] {
        var s = inputShapes
        for l in layers { s = [l.outputShape(inputShapes: s)] }
        return s[0]
    }
    func flops(inputShapes: [[Int]]) -> Double {
        var s = inputShapes
        var total = 0.0
        for l in layers {
            total += l.flops(inputShapes: s)
            s = [l.outputShape(inputShapes: s)]
        }
        return total
    }
    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        var x = inputs
        var out = LayerOutput(inputs[0])
        for (j, l) in layers.enumerated() {
            out = try l.forward(x, ctx.child(j))
            x = [out.main]
        }
        return out
    }
}

/// The module types that parse_model scales by width and prints with their full type path.
let ultralyticsTypeNames: [String: String] = [
    "Conv": "ultralytics.nn.modules.conv.Conv",
    "DWConv": "ultralytics.nn.modules.conv.DWConv",
    "LightConv": "ultralytics.nn.modules.conv.LightConv",
    "RepConv": "ultralytics.nn.modules.conv.RepConv",
    "Concat": "ultralytics.nn.modules.conv.Concat",
    "Bottleneck": "ultralytics.nn.modules.block.Bottleneck",
    "C2f": "ultralytics.nn.modules.block.C2f",
    "SPPF": "ultralytics.nn.modules.block.SPPF",
    "HGStem": "ultralytics.nn.modules.block.HGStem",
    "HGBlock": "ultralytics.nn.modules.block.HGBlock",
    "RepC3": "ultralytics.nn.modules.block.RepC3",
    "ResNetLayer": "ultralytics.nn.modules.block.ResNetLayer",
    "Detect": "ultralytics.nn.modules.head.Detect",
    "RTDETRDecoder": "ultralytics.nn.modules.head.RTDETRDecoder",
    "AIFI": "ultralytics.nn.modules.transformer.AIFI",
    "nn.Upsample": "torch.nn.modules.upsampling.Upsample",
]

/// The graph parse_model builds from a spec: the layers, each layer's output channels and the save list.
public struct UltralyticsGraph: Sendable {
    /// The spec, with `scale` set to the scale the graph was built at (nil when the file has no scales).
    public var spec: ModelSpec
    public var nodes: [GraphNode]
    /// Indices whose outputs later layers read (parse_model's `save`).
    public var save: [Int]
    public var inputChannels: Int
    /// Class count (`nc`, 80 when the spec leaves it out) and the resolved multiples, as parse_model uses them.
    public var nc: Int
    public var depthMultiple: Double
    public var widthMultiple: Double
    public var maxChannels: Int

    /// Builds every row as ultralytics' parse_model does, asking `weights` for each layer's tensors under `model.{i}`.
    /// `scale` picks a scale (else the spec's own `scale`, else its first); unknown modules are errors naming
    /// the file, the row and the registry's known modules.
    public init(spec unresolved: ModelSpec, scale: String? = nil, weights: WeightStore, inputChannels: Int = 3) throws {
        let resolved = try unresolved.resolvedScale(scale)
        var spec = unresolved
        spec.scale = resolved.name
        self.spec = spec
        let nc = spec.classCount, depthMultiple = resolved.depth, widthMultiple = resolved.width
        // parse_model ignores a top-level max_channels; only a scale's third entry limits channels.
        let maxChannels = spec.scales.isEmpty ? Int.max : resolved.maxChannels
        self.nc = nc
        self.depthMultiple = depthMultiple
        self.widthMultiple = widthMultiple
        self.maxChannels = maxChannels
        self.inputChannels = inputChannels
        guard (1 ... 256).contains(spec.regMax) else {
            throw FileFormatError(file: spec.source, problem: "reg_max must be a whole number in 1...256, found \(spec.raw["reg_max"].map(\.description) ?? "?")")
        }
        var ch: [Int] = [inputChannels]
        var nodes: [GraphNode] = []
        var save: Set<Int> = []
        let rows = spec.layers
        let modelScope = weights.root.scope("model")
        for (i, row) in rows.enumerated() {
            guard let builder = UltralyticsRegistry.builder(row.module) else {
                throw ModelBuildError(file: spec.source, row: i,
                                      problem: "unknown module '\(row.module)'; known modules: \(UltralyticsRegistry.knownModules.joined(separator: ", "))")
            }
            var inCh: [Int] = []
            for f in row.from {
                let j = f < 0 ? ch.count + f : f
                guard j >= 0, j < ch.count, f < i else {
                    throw ModelBuildError(file: spec.source, row: i, problem: "'from' \(f) does not name an earlier layer")
                }
                inCh.append(ch[j])
            }
            // A Concat sums its inputs' channels: every layer's input is checked before anything is built from it.
            if let c = inCh.first(where: { $0 > ModelSpec.Limits.channels }) {
                throw ModelBuildError(file: spec.source, row: i, problem: "\(row.module): its input has \(c) channels, more than the \(ModelSpec.Limits.channels) this tool builds")
            }
            let args = row.args.map { Self.substitute($0, spec: spec) }
            let n = row.repeats > 1 ? max(Int((Double(row.repeats) * depthMultiple).rounded(.toNearestOrEven)), 1) : row.repeats
            guard n <= ModelSpec.Limits.repeats else {
                throw ModelBuildError(file: spec.source, row: i, problem: "\(row.module): \(row.repeats) repeats are \(n) after the depth multiple, more than the \(ModelSpec.Limits.repeats) this tool builds")
            }
            func context(_ scope: WeightScope) -> BuildContext {
                BuildContext(index: i, from: row.from, inputChannels: inCh, repeats: n, rawRepeats: row.repeats,
                             module: row.module, args: args, nc: nc, depthMultiple: depthMultiple,
                             widthMultiple: widthMultiple, maxChannels: maxChannels, scale: spec.scale,
                             regMax: spec.regMax, activation: spec.activation, weights: scope, file: spec.source)
            }
            var built: BuiltLayer
            do {
                built = try builder(context(modelScope.scope(i)))
                if n > 1 && !UltralyticsRegistry.handlesRepeats(row.module) {
                    // parse_model: nn.Sequential(*(m(*args) for _ in range(n)))
                    var layers: [any GraphLayer] = []
                    for j in 0 ..< n { layers.append(try builder(context(modelScope.scope(i).scope(j))).layer) }
                    built.layer = SequentialGraphLayer(layers: layers)
                }
            } catch let e as WeightBudgetError {
                throw ModelBuildError(file: spec.source, row: i, problem: "\(row.module): \(e.description)")
            } catch let e as ModuleInputError {
                throw ModelBuildError(file: spec.source, row: i, problem: "\(row.module): \(e.description)")
            }
            guard built.outputChannels <= ModelSpec.Limits.channels else {
                throw ModelBuildError(file: spec.source, row: i, problem: "\(row.module): \(built.outputChannels) output channels, more than the \(ModelSpec.Limits.channels) this tool builds")
            }
            nodes.append(GraphNode(index: i, from: row.from, fromIsList: row.fromIsList, repeats: n, module: row.module,
                                   typeName: built.typeName ?? ultralyticsTypeNames[row.module] ?? row.module,
                                   arguments: built.printedArguments, layer: built.layer, outputChannels: built.outputChannels))
            for f in row.from where f != -1 { save.insert(((f % i) + i) % i) }
            if i == 0 { ch = [] }
            ch.append(built.outputChannels)
        }
        self.nodes = nodes
        self.save = save.sorted()
        // Sized before any activation exists: at ultralytics' default 640x640 (which also bounds the 256x256
        // stride pass below, so no shape computation can overflow).
        try self.checkFits(inputShape: [1, inputChannels, 640, 640], parameters: weights.requestedElements)
        // DetectionModel measures the head's strides with a 256x256 forward pass: 256 / each input's height.
        if let last = nodes.last, var head = last.layer as? DetectHead {
            let shapes = self.shapes(inputShape: [1, inputChannels, 256, 256])
            head.strides = shapes[last.index].inputs.map { Float(256 / max($0[2], 1)) }
            self.nodes[last.index].layer = head
        }
    }

    /// parse_model's substitution of names in args: `nc`, `reg_max` and the file's other scalar keys become
    /// their values; an unresolved name stays a string. (Python literals were evaluated when the spec was parsed.)
    static func substitute(_ a: LayerArg, spec: ModelSpec) -> LayerArg {
        switch a {
        case .identifier(let s), .string(let s):
            if s == "nc" { return .int(spec.classCount) }
            if s == "reg_max" { return .int(spec.regMax) }
            if s != "activation", let v = spec.raw[s], v.listValue == nil, v.mapEntries == nil { return LayerArg(v) }
            return .string(s)
        case .list(let xs): return .list(xs.map { substitute($0, spec: spec) })
        default: return a
        }
    }

    /// What the shape pass says of a model at one input size.
    public enum Sizing: Equatable, Sendable {
        /// Every layer's output together holds this many values (what a traced forward pass keeps).
        case fits(values: Int)
        /// The running total passed the limit at this layer (no later shape was computed from a huge one).
        case tooLarge(layer: Int)
        /// This layer's output has an empty dimension (the input is too small for its kernels and strides).
        case empty(layer: Int, shape: [Int])
    }

    /// Sizes the model's activations for an input of `inputShape` from the shape pass, stopping at the first
    /// layer whose output is empty or takes the total past `limit`.
    public func sizing(inputShape: [Int], limit: Int) -> Sizing {
        guard var total = Budget.product(inputShape), total <= limit else { return .tooLarge(layer: 0) }
        var outs: [[Int]] = []
        var prev = inputShape
        for node in nodes {
            let ins: [[Int]] = (node.from == [-1] && !node.fromIsList) ? [prev]
                : node.from.map { $0 == -1 ? prev : outs[$0 < 0 ? outs.count + $0 : $0] }
            let o = node.layer.outputShape(inputShapes: ins)
            if o.contains(where: { $0 < 1 }) { return .empty(layer: node.index, shape: o) }
            guard let n = Budget.product(o), case let (t, false) = total.addingReportingOverflow(n), t <= limit else {
                return .tooLarge(layer: node.index)
            }
            total = t
            outs.append(o)
            prev = o
        }
        return .fits(values: total)
    }

    /// Throws when the parameters plus every layer's output at `inputShape` (Float32) pass `Budget.modelBytes`, or
    /// when a layer's output would be empty, naming the file, the sizes and the machine's memory.
    public func checkFits(inputShape: [Int], parameters: Int) throws {
        let budget = Budget.modelBytes / MemoryLayout<Float>.size
        let size = inputShape.dropFirst(2).map(String.init).joined(separator: "x")
        switch sizing(inputShape: inputShape, limit: max(budget - parameters, 0)) {
        case .fits: return
        case .tooLarge(let layer):
            throw ModelBuildError(file: spec.source, row: nil, problem: "the model does not fit this machine: \(parameters) parameters and its activations at \(size) (past layer \(layer)) need more than \(Budget.describe(bytes: Budget.modelBytes)) (half of the \(Budget.describe(bytes: Budget.physicalMemoryBytes)) of memory)")
        case .empty(let layer, let shape):
            throw ModelBuildError(file: spec.source, row: layer, problem: "at \(size) this layer's output would be \(shape): the input is too small for the model's kernels and strides")
        }
    }

    /// Input shapes of each layer and its output shape, for an input of `inputShape` (NCHW), without running anything.
    public func shapes(inputShape: [Int]) -> [(inputs: [[Int]], output: [Int])] {
        var outs: [[Int]] = []
        var result: [(inputs: [[Int]], output: [Int])] = []
        var prev = inputShape
        for node in nodes {
            let ins: [[Int]] = (node.from == [-1] && !node.fromIsList) ? [prev]
                : node.from.map { $0 == -1 ? prev : outs[$0 < 0 ? outs.count + $0 : $0] }
            let o = node.layer.outputShape(inputShapes: ins)
            result.append((ins, o))
            outs.append(o)
            prev = o
        }
        return result
    }
}

extension ModelSpec {
    /// `nc`, or ultralytics' default of 80 classes.
    var classCount: Int { nc ?? 80 }
    /// `reg_max` (DFL bins), or ultralytics' default of 16.
    var regMax: Int { raw["reg_max"]?.intValue ?? 16 }
}

extension UltralyticsRegistry {
    /// Modules that take the repeat count as an argument (parse_model's `repeat_modules`, HGBlock and the
    /// ones registered with `handlesRepeats: true`); any other module with n > 1 becomes a Sequential of n copies.
    static func handlesRepeats(_ name: String) -> Bool {
        repeatModules.contains(name)
    }

    private static let repeatLock = NSLock()
    nonisolated(unsafe) private static var extraRepeatModules: Set<String> = []

    static var repeatModules: Set<String> {
        repeatLock.lock(); defer { repeatLock.unlock() }
        return Set(["BottleneckCSP", "C1", "C2", "C2f", "C3k2", "C2fAttn", "C3", "C3TR", "C3Ghost", "C3x", "RepC3",
                "C2fPSA", "C2fCIB", "C2PSA", "A2C2f", "HGBlock"]).union(extraRepeatModules)
    }

    /// Registers a builder for a module that consumes `ctx.repeats` itself (it is not wrapped in a Sequential).
    public static func register(_ name: String, handlesRepeats: Bool, _ builder: @escaping Builder) {
        if handlesRepeats {
            repeatLock.lock()
            extraRepeatModules.insert(name)
            repeatLock.unlock()
        }
        register(name, builder)
    }
}
