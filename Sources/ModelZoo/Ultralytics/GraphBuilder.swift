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
    public var layer: any Module
    public var outputChannels: Int
    /// The module tree's parameter count (computed once, at build).
    public var params: Int
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
    "C3k2": "ultralytics.nn.modules.block.C3k2",
    "C2PSA": "ultralytics.nn.modules.block.C2PSA",
    "SCDown": "ultralytics.nn.modules.block.SCDown",
    "C2fCIB": "ultralytics.nn.modules.block.C2fCIB",
    "PSA": "ultralytics.nn.modules.block.PSA",
    "v10Detect": "ultralytics.nn.modules.head.v10Detect",
    "A2C2f": "ultralytics.nn.modules.block.A2C2f",
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
                             regMax: spec.regMax, activation: spec.activation,
                             legacy: !rows[..<i].contains { ["C3k2", "A2C2f", "C2fCIB"].contains($0.module) },
                             end2endValue: spec.end2end, weights: scope, file: spec.source)
            }
            var built: BuiltLayer
            do {
                built = try builder(context(modelScope.scope(i)))
                if n > 1 && !UltralyticsRegistry.handlesRepeats(row.module) {
                    // An nn.Sequential passes one tensor along: a module of several inputs cannot be repeated.
                    guard row.from.count == 1 else {
                        throw ModelBuildError(file: spec.source, row: i, problem: "\(row.module) takes \(row.from.count) inputs, so it cannot be repeated (n = \(row.repeats))")
                    }
                    // parse_model: nn.Sequential(*(m(*args) for _ in range(n)))
                    var layers: [any Module] = []
                    for j in 0 ..< n { layers.append(try builder(context(modelScope.scope(i).scope(j))).layer) }
                    built.layer = Sequential(layers)
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
                                   arguments: built.printedArguments, layer: built.layer, outputChannels: built.outputChannels,
                                   params: built.layer.parameterCount))
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
        if let last = nodes.last, var head = (last.layer as? AnyModule)?.base as? Detect ?? last.layer as? Detect {
            let shapes = try self.shapes(inputShape: [1, inputChannels, 256, 256])
            head.strides = shapes.nodes[last.index].inputs.map { Float(256 / max($0[2], 1)) }
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

    /// Runs the layers in order on `input`, each reading the outputs its `from` names, under the paths `model.{i}`:
    /// the forward pass, and (on a shape-only input inside `Tensor.shapePass`, with a recorder) the shape pass.
    /// Each top-level layer is recorded in `trace` as a step, with its output as a feature-map probe; `flops`: each
    /// layer's FLOPs at this input shape when the caller has them from a shape pass (`checkFits`), else every traced
    /// step runs a shape pass of its layer to count them.
    func run(_ input: Tensor, trace: Trace?, recorder: CallRecorder? = nil, flops layerFlops: [Double]? = nil) throws -> LayerOutput {
        trace?.expectedSteps = nodes.count
        let saved = Set(save)
        let keep = trace?.keepTensors ?? false
        let layerFlops = layerFlops?.count == nodes.count ? layerFlops : nil
        var ys: [Tensor?] = []
        ys.reserveCapacity(nodes.count)
        var x = input
        var extras: [String: Tensor] = [:]
        for (position, node) in nodes.enumerated() {
            let ctx = ForwardContext(trace: trace, path: "model.\(node.index)", recorder: recorder)
            try ctx.checkCancelled()
            var inputs: [Tensor]
            if node.from == [-1] && !node.fromIsList {
                inputs = [x]
            } else {
                inputs = []
                for f in node.from {
                    if f == -1 { inputs.append(x); continue }
                    let j = f < 0 ? ys.count + f : f
                    guard j >= 0, j < ys.count, let t = ys[j] else {
                        throw ModelBuildError(file: spec.source, row: node.index, problem: "input from layer \(f) is not available")
                    }
                    inputs.append(t)
                }
            }
            // Every block of a model YAML reads feature maps; a head's output ([1, 4 + nc, A] boxes and scores) fed on
            // is the YAML's mistake (ultralytics fails there too), named here before a block reads its dimensions.
            if let bad = inputs.firstIndex(where: { $0.rank != 4 }) {
                let f = node.from.count == inputs.count ? node.from[bad] : -1
                throw ModelBuildError(file: spec.source, row: node.index,
                                      problem: "\(node.module) takes feature maps [N, C, H, W], but its input from layer \(f) is \(inputs[bad].shape) (a head's output?)")
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let out = try ctx.call(node.layer, key: nil, inputs)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            x = out.main
            for (k, v) in out.extras { extras[k] = v }
            ys.append(saved.contains(node.index) || keep || recorder != nil ? x : nil)
            if let trace {
                let shapes = inputs.map(\.shape)
                trace.record(TraceStep(index: node.index, path: ctx.path, moduleType: node.module, inputShapes: shapes,
                                       outputShape: x.shape, output: x, params: node.params,
                                       flops: layerFlops.map { $0[position] } ?? flops(node, inputShapes: shapes),
                                       seconds: seconds))
                if x.rank == 4 {
                    let fm = x.reshaped(Array(x.shape.dropFirst()))
                    ctx.probe("output feature map", .featureMap(fm))
                }
            }
        }
        return LayerOutput(x, extras: extras)
    }

    /// The FLOPs of one layer for inputs of these shapes, from a shape pass of that layer alone.
    func flops(_ node: GraphNode, inputShapes: [[Int]]) -> Double {
        (try? CallRecorder.measure(node.layer, inputs: inputShapes, path: "model.\(node.index)"))?.calls.first?.flops ?? 0
    }

    /// What the shape pass measures of the graph at one input shape: each layer's input and output shapes, FLOPs
    /// and recorded sub-module calls, without computing anything.
    public struct Shapes: Sendable {
        public struct Node: Sendable {
            public var inputs: [[Int]]
            public var output: [Int]
            public var flops: Double
            /// The sub-module rows (the layer table's expansion of this row).
            public var children: [LayerRow]
        }
        public var nodes: [Node]
        /// Every layer's output together, in values (what a traced forward pass keeps).
        public var values: Int
    }

    /// The shape pass at `inputShape` (NCHW). Throws `EmptyOutputError` when a layer's output would be empty (the
    /// input is too small for its kernels and strides), `ShapePassTooLarge` when an output's size passes `limit`
    /// values, and a layer's own error when its inputs do not fit together (Concat).
    public func shapes(inputShape: [Int], limit: Int = Budget.modelBytes / MemoryLayout<Float>.size) throws -> Shapes {
        let recorder = CallRecorder(limit: limit)
        _ = try Tensor.shapePass { try run(Tensor(shapeOnly: inputShape), trace: nil, recorder: recorder) }
        let top = recorder.calls.indices.filter { recorder.calls[$0].depth == 0 }
        let nodes = top.map { i in
            let c = recorder.calls[i]
            return Shapes.Node(inputs: c.inputs, output: c.output, flops: c.flops, children: recorder.rows(under: i))
        }
        let values = nodes.reduce(0) { $0 + (Budget.product($1.output) ?? 0) }
        return Shapes(nodes: nodes, values: values)
    }

    /// Throws when the parameters plus every layer's output at `inputShape` (Float32) pass `Budget.modelBytes`, or
    /// when a layer's output would be empty, naming the file, the sizes and the machine's memory. Returns the shape
    /// pass it ran.
    @discardableResult
    public func checkFits(inputShape: [Int], parameters: Int) throws -> Shapes {
        let budget = max(Budget.modelBytes / MemoryLayout<Float>.size - parameters, 0)
        let size = inputShape.dropFirst(2).map(String.init).joined(separator: "x")
        func tooLarge(_ at: String) -> ModelBuildError {
            ModelBuildError(file: spec.source, row: nil, problem: "the model does not fit this machine: \(parameters) parameters and its activations at \(size) (\(at)) need more than \(Budget.describe(bytes: Budget.modelBytes)) (half of the \(Budget.describe(bytes: Budget.physicalMemoryBytes)) of memory)")
        }
        guard let n = Budget.product(inputShape), n <= budget else { throw tooLarge("the input") }
        do {
            let s = try shapes(inputShape: inputShape, limit: budget)
            guard s.values <= budget - n else { throw tooLarge("all layers together") }
            return s
        } catch let e as EmptyOutputError {
            throw ModelBuildError(file: spec.source, row: layerIndex(e.path), problem: "at \(size) \(e.path) (\(e.module)) would output \(e.shape): the input is too small for the model's kernels and strides")
        } catch let e as ShapePassTooLarge {
            throw tooLarge("past \(e.path)")
        } catch let e as ModuleInputError {
            throw ModelBuildError(file: spec.source, row: layerIndex(String(e.module.split(separator: " ").first ?? "")),
                                  problem: "at \(size) \(e.description)")
        }
    }

    /// The layer index of a path `model.{i}...`.
    func layerIndex(_ path: String) -> Int? {
        let parts = path.split(separator: ".")
        return parts.count >= 2 && parts[0] == "model" ? Int(parts[1]) : nil
    }
}

extension ModelSpec {
    /// `nc`, or ultralytics' default of 80 classes.
    var classCount: Int { nc ?? 80 }
    /// `reg_max` (DFL bins), or ultralytics' default of 16.
    var regMax: Int { raw["reg_max"]?.intValue ?? 16 }
    /// `end2end` (YOLO26: the head's one-to-one branches), nil when the file has none.
    var end2end: Bool? {
        switch raw["end2end"] {
        case .bool(let b)?: return b
        case .int(let i)?: return i != 0
        default: return nil
        }
    }
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
                "C2fPSA", "C2fCIB", "C2PSA", "A2C2f", "HGBlock", "HGBlock_NAM", "HGBlockNAM"]).union(extraRepeatModules)
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
