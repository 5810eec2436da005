import Foundation
import ONNX
import Tensor

/// An ONNX export run by the engine's interpreter, as a `DetectionModel`.
///
/// An ultralytics export (metadata `task` detect, `head` Detect or RTDETRDecoder, `names`, `stride`, `imgsz`) post-
/// processes as its family does: YOLO's [1, 4+nc, anchors] with NMS, RT-DETR's [1, queries, 4+nc] by top-k. Any
/// other graph runs and shows its nodes, without detections.
///
/// The layer table groups nodes by the top-level module of their exported names (`/model.10/m/m.0/attn/Softmax` is
/// in row `model.10`); each row's children are its nodes. A traced run records, per row, a step with the row's
/// output (its last node's) followed by a step per node under the node's dotted path
/// (`model.10.m.0.attn.Softmax`), each node's output kept while the trace's share of memory lasts.
public final class ONNXDetectionModel: DetectionModel, @unchecked Sendable {
    public let name: String
    public let file: String
    public let model: ONNXModel
    let interpreter: ONNXInterpreter
    public let classNames: [String]
    /// `endToEnd`: an NMS-free YOLO head (YOLOv10, YOLO26 exported with `nms=False`) whose graph ends in its own
    /// top-k rows [1, k, 6].
    public enum Head: Sendable { case yolo, endToEnd, rtdetr, none }
    public let head: Head
    let inputName: String
    public let inputChannels: Int
    /// The export's fixed input height and width, when it has them (a static export).
    let fixedSize: GridSize?
    let stride: Int
    public let defaultInputSize: Int
    /// Row of each run node and the rows themselves (group path, node positions in run order).
    let groups: [(path: String, nodes: [Int])]
    let groupOfNode: [Int]
    /// Each row's index in the layer table and the trace.
    let rowIndex: [Int]

    public convenience init(path: String) throws {
        try self.init(model: ONNXModel.load(path: path), path: path)
    }

    /// The detector of a loaded graph (`path` names it in messages and gives the row names' file).
    init(model: ONNXModel, path: String) throws {
        self.model = model
        self.file = path
        name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        interpreter = try ONNXInterpreter(model: model)
        guard model.inputs.count == 1, let input = model.inputs.first else {
            throw FileFormatError(file: path, problem: "the graph takes \(model.inputs.count) inputs (\(model.inputs.map(\.name).joined(separator: ", "))); only single-image models run here")
        }
        guard let dims = input.dims, dims.count == 4 else {
            throw FileFormatError(file: path, problem: "input '\(input.name)' is \(input.shapeDescription), not an image batch [N, C, H, W]")
        }
        inputName = input.name
        if case .value(let c) = dims[1] { inputChannels = c } else { inputChannels = 3 }
        if case .value(let h) = dims[2], case .value(let w) = dims[3] { fixedSize = GridSize(h, w) } else { fixedSize = nil }
        let meta = model.metadata
        stride = meta["stride"].flatMap { Int($0) }.map { Swift.max($0, 32) } ?? 32
        let names = meta["names"].map(ONNXDetectionModel.parseNames) ?? []
        let outDims = model.outputs.first?.dims
        func dim(_ i: Int) -> Int? {
            guard let d = outDims, i < d.count, case .value(let v) = d[i] else { return nil }
            return v
        }
        switch meta["head"] {
        case "Detect", "v10Detect": head = meta["end2end"] == "True" ? .endToEnd : .yolo
        case "RTDETRDecoder": head = .rtdetr
        default:
            if !names.isEmpty, dim(1) == names.count + 4 { head = .yolo } else if !names.isEmpty, dim(2) == names.count + 4 { head = .rtdetr } else { head = .none }
        }
        let nc = head == .yolo ? dim(1).map { $0 - 4 } : head == .rtdetr && dim(2) != 6 ? dim(2).map { $0 - 4 } : nil
        if !names.isEmpty {
            classNames = names
        } else if let nc, nc > 0 {
            classNames = nc == cocoClassNames.count ? cocoClassNames : (0 ..< nc).map { "class\($0)" }
        } else {
            classNames = []
        }
        let imgsz = meta["imgsz"].map { $0.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) } } ?? []
        defaultInputSize = fixedSize.map { Swift.max($0.height, $0.width) } ?? imgsz.max() ?? 640
        // Rows: the top-level module of each node's path ("model.10"), in the order the graph reaches them.
        var index: [String: Int] = [:]
        var groups: [(path: String, nodes: [Int])] = []
        var of: [Int] = []
        let paths = ONNXDetectionModel.rowPaths(interpreter.runNodes.map(\.modulePath),
                                                heavy: interpreter.runNodes.map { ["Conv", "ConvTranspose", "MatMul", "Gemm", "Einsum"].contains($0.opType) })
        for (k, g) in paths.enumerated() {
            if index[g] == nil { index[g] = groups.count; groups.append((g, [])) }
            groups[index[g]!].nodes.append(k)
            of.append(index[g]!)
        }
        self.groups = groups
        groupOfNode = of
        // Row numbers: ultralytics' layer number for `model.N` (as `info` numbers native models), the rest after them.
        let numbered = groups.map { g -> Int? in
            g.path.hasPrefix("model.") ? Int(g.path.dropFirst("model.".count)) : nil
        }
        var next = (numbered.compactMap { $0 }.max() ?? -1) + 1
        var seen = Set<Int>()
        rowIndex = numbered.map { n in
            if let n, seen.insert(n).inserted { return n }
            defer { next += 1 }
            return next
        }
    }

    /// The row a module path belongs to: `model.N` for ultralytics' layers, else its first component ("graph" for
    /// nodes outside any module).
    static func rowPath(_ modulePath: String) -> String {
        let parts = modulePath.split(separator: ".")
        guard let first = parts.first else { return "graph" }
        if parts.count >= 2, first == "model" || first == "module" { return "\(first).\(parts[1])" }
        return String(first)
    }

    /// The row of each node: `rowPath`, then a row holding more than half of a large graph's `heavy` nodes (convs and
    /// matrix products; a wrapper such as torch.onnx's export of `Wrapper(model)`, all under `model.model`) split by
    /// its next path component, until no row does (`model.model.backbone`, `model.model.encoder`, ...).
    static func rowPaths(_ modulePaths: [String], heavy: [Bool]) -> [String] {
        var rows = modulePaths.map(rowPath)
        let n = heavy.filter { $0 }.count
        guard n >= 20 else { return rows }
        for _ in 0 ..< 8 {
            var counts: [String: Int] = [:]
            for (r, h) in zip(rows, heavy) where h { counts[r, default: 0] += 1 }
            guard let (big, c) = counts.max(by: { $0.value < $1.value }), c * 2 > n else { break }
            var changed = false
            for (k, m) in modulePaths.enumerated() where rows[k] == big && m.hasPrefix(big + ".") {
                let next = m.dropFirst(big.count + 1).split(separator: ".").first.map(String.init) ?? ""
                if !next.isEmpty { rows[k] = big + "." + next; changed = true }
            }
            // One child holding all of them is one more level of the same wrapper: go on; nothing below: stop.
            if !changed { break }
        }
        return rows
    }

    /// The dotted trace path of a node: its module path and its own name ("model.10.m.0.attn.Softmax").
    static func nodePath(_ n: ONNXNode) -> String {
        let leaf = n.name.split(separator: "/").last.map(String.init) ?? n.name
        let m = n.modulePath
        return (m.isEmpty ? "graph" : m) + "." + leaf.replacingOccurrences(of: ".", with: "_")
    }

    /// The op type, with the activation a Conv runs fused ("Conv+SiLU").
    static func typeName(_ n: ONNXNode) -> String {
        if n.fusedLinear { return n.opType + "+Add" }
        switch n.fusedActivation {
        case .silu?: return n.opType + "+SiLU"
        case .relu?: return n.opType + "+Relu"
        case .sigmoid?: return n.opType + "+Sigmoid"
        case .identity?, nil: return n.opType
        }
    }

    /// Class names from ultralytics' `names` metadata, a Python dict literal ("{0: 'person', 1: 'car'}"), in key order.
    static func parseNames(_ s: String) -> [String] {
        var out: [(Int, String)] = []
        var chars = Array(s)[...]
        while let colon = chars.firstIndex(of: ":") {
            let key = Int(String(chars[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "{, \n")))
            chars = chars[(colon + 1)...].drop { $0 == " " }
            guard let q = chars.first, q == "'" || q == "\"" else { break }
            var value = "", i = chars.index(after: chars.startIndex), escaped = false
            while i < chars.endIndex {
                let c = chars[i]
                if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == q { break } else { value.append(c) }
                i += 1
            }
            guard let key, i < chars.endIndex else { break }
            out.append((key, value))
            chars = chars[(i + 1)...]
        }
        let sorted = out.sorted { $0.0 < $1.0 }
        return sorted.enumerated().allSatisfy({ $0.offset == $0.element.0 }) ? sorted.map(\.1) : []
    }

    public var family: String {
        switch head {
        case .yolo: return "YOLOv8"
        case .endToEnd: return "YOLO (end-to-end)"
        case .rtdetr: return "RT-DETR"
        case .none: return "ONNX"
        }
    }
    public var isUntrained: Bool { false }
    public var preprocessing: Preprocessing { head == .rtdetr ? .stretch : .letterbox }
    public var inputSizeRule: InputSizeRule { fixedSize.map { .fixed($0, stride: stride) } ?? .strideMultiple(stride) }
    public var postprocessDefaults: PostprocessOptions { .ultralytics }

    /// [1, C, H, W]; a static export takes its own size, or (letterboxed YOLO inputs) anything up to it, which is
    /// padded to it as ultralytics' LetterBox pads.
    public func validateInput(_ shape: [Int]) throws {
        guard shape.count == 4, shape[0] == 1, shape[1] == inputChannels else {
            throw ModuleInputError(name, "the input must be [1, \(inputChannels), H, W], got \(shape)")
        }
        if let f = fixedSize {
            let fits = preprocessing == .letterbox ? shape[2] <= f.height && shape[3] <= f.width : shape[2] == f.height && shape[3] == f.width
            guard fits else {
                throw ModuleInputError(name, "this export takes \(f.width)x\(f.height) (width x height) inputs, got \(shape[3])x\(shape[2]): use --imgsz \(Swift.max(f.height, f.width))")
            }
        } else if let p = inputSizeRule.problem(height: shape[2], width: shape[3]) {
            throw ModuleInputError(name, p)
        }
    }

    /// What the layer table shows of one run node at an input size: its first output's shape and its FLOPs, nil
    /// when the shape depends on data only a run computes (`unknown` says which node made it so).
    struct NodeStats: Sendable {
        var shape: [Int]?
        var flops: Double?
        var unknown: String?
    }

    /// The graph at one input size, before any run: every value's shape from static shape inference
    /// (ONNXInterpreter.inferShapes), each node's stats, and the grids token values trace back to.
    struct Analysis: Sendable {
        var shapes: ONNXShapes
        var stats: [NodeStats]
        var grids: ONNXGridAxes.Table
    }
    private var analysisCache: [GridSize: Analysis] = [:]
    private let statsLock = NSLock()

    /// The graph's analysis at `inputSize` (a static export at its own size), cached per size; nil when the size
    /// does not fit the graph. No op runs on image data: shapes come from per-op rules and the folded shape
    /// arithmetic. FLOPs count multiply-adds as 2 for Conv (with its fused activation), ConvTranspose, MatMul and
    /// Gemm, and 0 for the other ops, as the native tables count layers.
    func analysis(inputSize: GridSize) -> Analysis? {
        let size = fixedSize ?? inputSize
        statsLock.lock()
        if let a = analysisCache[size] { statsLock.unlock(); return a }
        statsLock.unlock()
        guard let shapes = try? interpreter.inferShapes([inputName: [1, inputChannels, size.height, size.width]]) else { return nil }
        var all: [String: [Int]] = shapes.shapes
        for (name, i) in model.initializers where all[name] == nil { all[name] = i.dims }
        let stats = interpreter.runNodes.enumerated().map { k, node -> NodeStats in
            guard let y = shapes.nodeOutputs[k].first ?? nil else { return NodeStats(shape: nil, flops: nil, unknown: shapes.unknown[k]) }
            return NodeStats(shape: y, flops: ONNXDetectionModel.flops(node, output: y) { all[$0] }, unknown: nil)
        }
        let a = Analysis(shapes: shapes, stats: stats, grids: ONNXGridAxes.trace(interpreter, shapes: shapes))
        statsLock.lock()
        analysisCache[size] = a
        statsLock.unlock()
        return a
    }

    /// Every run node's stats at `inputSize` (see `analysis`).
    func nodeStats(inputSize: GridSize) -> [NodeStats]? { analysis(inputSize: inputSize)?.stats }

    /// A node's FLOPs from its output shape and its inputs' shapes (`shape` of an input name, nil when unknown).
    static func flops(_ n: ONNXNode, output y: [Int], shape: (String) -> [Int]?) -> Double {
        func input(_ i: Int) -> [Int]? { i < n.inputs.count && !n.inputs[i].isEmpty ? shape(n.inputs[i]) : nil }
        let count = Double(y.reduce(1, *))
        switch n.opType {
        case "Conv":
            // Each output value: C/g · kernel multiply-adds (the weight's dims after the first).
            guard let w = input(1), w.count >= 3 else { return 0 }
            return 2 * count * Double(w.dropFirst().reduce(1, *))
        case "ConvTranspose":
            // Each input value meets M/g · kernel weights.
            guard let x = input(0), let w = input(1), w.count >= 3 else { return 0 }
            return 2 * Double(x.reduce(1, *)) * Double(w.dropFirst().reduce(1, *))
        case "MatMul":
            guard let a = input(0) ?? input(1).map({ Array($0.dropLast()) }), let k = a.last else { return 0 }
            return 2 * count * Double(k)
        case "Gemm":
            guard let a = input(0), a.count == 2 else { return 0 }
            var transA = false
            if case .int(let v)? = n.attributes["transA"] { transA = v != 0 }
            return 2 * count * Double(transA ? a[0] : a[1])
        default:
            return 0
        }
    }

    public func layerTable(inputSize: GridSize) -> [LayerRow] {
        let nodes = interpreter.runNodes
        let stats = nodeStats(inputSize: inputSize)
        // When the graph does not fit the size, the first row says why (the run would stop with the same error).
        var problem: String? = nil
        if stats == nil {
            let size = fixedSize ?? inputSize
            do { _ = try interpreter.inferShapes([inputName: [1, inputChannels, size.height, size.width]]) } catch {
                problem = "no shapes at \(size.width)x\(size.height): \(error)"
            }
        }
        return groups.enumerated().map { i, g in
            var ops: [String: Int] = [:]
            var params = 0
            var counted = Set<String>()
            var flops = 0.0
            var unknown: [String] = []
            let children = g.nodes.enumerated().map { j, k -> LayerRow in
                let n = nodes[k]
                ops[n.opType, default: 0] += 1
                var p = 0
                for input in n.inputs.map(ONNXInterpreter.sourceName) {
                    if let w = model.initializers[input], [.float, .float16, .bfloat16, .double].contains(w.elementType) {
                        p += w.count
                        if counted.insert(input).inserted { params += w.count }
                    }
                }
                let full = ONNXDetectionModel.nodePath(n)
                let relative = full.hasPrefix(g.path + ".") ? String(full.dropFirst(g.path.count + 1)) : full
                let s = stats?[k]
                flops += s?.flops ?? 0
                // A shape only a run knows is shown as "?", never guessed.
                var module = relative + " " + ONNXDetectionModel.typeName(n)
                if let why = s?.unknown {
                    module += " ?"
                    unknown.append(why)
                }
                return LayerRow(index: j, from: [], repeats: 1, params: p, module: module,
                                arguments: s?.unknown.map { "shape after a run: \($0)" } ?? "", flops: s?.flops ?? 0,
                                outputShape: s?.shape ?? [])
            }
            var summary = ops.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { $0.value > 1 ? "\($0.key)x\($0.value)" : $0.key }.joined(separator: " ")
            if let first = unknown.first {
                summary += " · ? \(unknown.count) shape\(unknown.count == 1 ? "" : "s") known only after a run (\(first))"
            }
            if i == 0, let problem { summary += " · " + problem }
            let shape = g.nodes.last.flatMap { stats?[$0].shape } ?? []
            return LayerRow(index: rowIndex[i], from: [-1], repeats: 1, params: params, module: g.path, arguments: summary,
                            flops: flops, outputShape: shape, children: children)
        }
    }

    public func forward(_ input: Tensor, trace: Trace?, postprocess: PostprocessOptions) throws -> ModelOutput {
        try validateInput(input.shape)
        // A letterboxed input smaller than a static export's size is padded to it, centred, with 114/255.
        var x = input
        var offset = (top: 0, left: 0)
        if let f = fixedSize, input.shape[2] != f.height || input.shape[3] != f.width {
            let dh = f.height - input.shape[2], dw = f.width - input.shape[3]
            offset = (dh / 2, dw / 2)
            x = padConstant(input, before: [0, 0, dh / 2, dw / 2], after: [0, 0, dh - dh / 2, dw - dw / 2], value: 114.0 / 255.0)
        }
        let outputs: [String: ONNXValue]
        do {
            outputs = try runTraced(x, trace: trace)
        } catch is ONNXCancelled {
            throw CancelledError()
        }
        return try finish(outputs, input: x, offset: offset, trace: trace, postprocess: postprocess)
    }

    /// Runs the graph, recording each row's step and its nodes' steps into `trace`.
    func runTraced(_ x: Tensor, trace: Trace?) throws -> [String: ONNXValue] {
        let nodes = interpreter.runNodes
        var last = [Int](repeating: -1, count: groups.count)
        for (k, g) in groupOfNode.enumerated() { last[g] = k }
        trace?.expectedSteps = nodes.count + groups.count
        var pending: [[TraceStep]] = Array(repeating: [], count: groups.count)
        var seconds = [Double](repeating: 0, count: groups.count)
        var keptBytes = 0, tokenBytes = 0
        let keepBudget = Budget.physicalMemoryBytes / 8
        var position = 0
        let graph = trace == nil ? nil : analysis(inputSize: GridSize(x.shape[2], x.shape[3]))
        let probes = trace.map { $0.keepTensors } == true ? ONNXProbes(nodes: nodes, grids: graph?.grids ?? [:]) : nil
        // Each row's FLOPs (the sum of its nodes', from the inferred shapes) on its step, as native rows carry theirs.
        var rowFlops = [Double](repeating: 0, count: groups.count)
        for (k, g) in groupOfNode.enumerated() { rowFlops[g] += graph?.stats[k].flops ?? 0 }
        let outputs = try interpreter.run([inputName: x]) { node, outs, time in
            defer { position += 1 }
            guard let trace else { return true }
            if trace.isCancelled { return false }
            probes?.observe(node, outs, path: ONNXDetectionModel.nodePath(node), trace: trace)
            let k = position, g = self.groupOfNode[k]
            let y = outs.first?.tensor
            // A sub-module's token output (its last node's, e.g. an encoder layer's norm) traced to a grid: a map too.
            if let y, last[g] != k, k + 1 < nodes.count, nodes[k + 1].modulePath != node.modulePath,
               let probes, probes.traced[node.outputs.first ?? ""] != nil, tokenBytes + y.count * 4 <= keepBudget / 4,
               let (map, how) = probes.tokenMap(y, name: node.outputs.first ?? ""), !how.hasPrefix("grid matched") {
                tokenBytes += y.count * 4
                trace.probe(ONNXDetectionModel.nodePath(node), "tokens laid back onto their \(map.shape[1])x\(map.shape[2]) grid (\(how))", .featureMap(map))
            }
            var kept: Tensor? = nil
            if let y, trace.keepTensors, keptBytes + y.count * 4 <= keepBudget {
                kept = y
                keptBytes += y.count * 4
            }
            seconds[g] += time
            pending[g].append(TraceStep(index: self.rowIndex[g], path: ONNXDetectionModel.nodePath(node), moduleType: ONNXDetectionModel.typeName(node),
                                        inputShapes: [], outputShape: y?.shape ?? [], output: kept, params: 0, flops: 0, seconds: time))
            if last[g] == k {
                let path = self.groups[g].path
                trace.record(TraceStep(index: self.rowIndex[g], path: path, moduleType: path, inputShapes: [], outputShape: y?.shape ?? [],
                                       output: y, params: 0, flops: rowFlops[g], seconds: seconds[g]))
                if let y, y.rank == 4, y.shape[0] == 1 {
                    trace.probe(path, "output feature map", .featureMap(y.reshaped(Array(y.shape.dropFirst()))))
                } else if let y, let (map, how) = probes?.tokenMap(y, name: node.outputs.first ?? "") {
                    trace.probe(path, "output tokens laid back onto their \(map.shape[1])x\(map.shape[2]) grid (\(how))", .featureMap(map))
                }
                for s in pending[g] { trace.record(s) }
                pending[g] = []
            }
            return true
        }
        if let trace { probes?.finish(trace) }
        return outputs
    }

    /// The graph outputs as a `ModelOutput` (the first output main, every output also under its name) with detections
    /// moved back by the padding `offset`.
    func finish(_ outputs: [String: ONNXValue], input x: Tensor, offset: (top: Int, left: Int), trace: Trace?,
                postprocess: PostprocessOptions) throws -> ModelOutput {
        guard let first = model.outputs.first, let main = outputs[first.name] else {
            throw FileFormatError(file: file, problem: "the graph produced no output")
        }
        var extras: [String: Tensor] = [:]
        for o in model.outputs.dropFirst() { if let v = outputs[o.name] { extras[o.name] = v.tensor } }
        extras[first.name] = main.tensor
        let result = ModelOutput(output: main.tensor, extras: extras, detections: [])
        var dets = detections(from: result, inputSize: GridSize(x.shape[2], x.shape[3]), options: postprocess)
        if offset != (0, 0) {
            let dy = Float(offset.top), dx = Float(offset.left)
            dets = dets.map { d in
                var d = d
                d.x1 -= dx; d.x2 -= dx; d.y1 -= dy; d.y2 -= dy
                return d
            }
        }
        if let trace, trace.keepTensors, head != .none {
            trace.probe(groups.last?.path ?? "graph", "detections after post-processing", .detections(dets))
        }
        return ModelOutput(output: main.tensor, extras: extras, detections: dets)
    }

    /// Whether an RT-DETR export's output [1, k, 6] holds post-processed rows (cx, cy, w, h, score, class) rather than
    /// raw [1, queries, 4 + nc] scores: by the shape, and for 2 classes (where both are 6 wide) by the rows themselves:
    /// whole class indices and scores best first.
    static func holdsRTDETRRows(_ y: Tensor, classes: Int) -> Bool {
        guard y.rank == 3, y.shape[2] == 6 else { return false }
        guard classes == 2 else { return true }
        let k = y.shape[1]
        return (0 ..< k).allSatisfy { i in
            let c = y.data[i * 6 + 5]
            return (c == 0 || c == 1) && (i == 0 || y.data[i * 6 + 4] <= y.data[(i - 1) * 6 + 4])
        }
    }

    public func detections(from output: ModelOutput, inputSize: GridSize, options: PostprocessOptions) -> [Detection] {
        let o = options.filled(from: postprocessDefaults)
        let y = output.output
        switch head {
        case .yolo:
            // [1, 4+nc, anchors]: xywh in input pixels and class scores, as ultralytics' Detect exports it.
            guard y.rank == 3, y.shape[1] == 4 + classNames.count else { return [] }
            return UltralyticsModel.yoloPostprocess(y, classNames: classNames, confidence: o.confidence!, iou: o.iou!, maxDetections: o.maxDetections!)
        case .endToEnd:
            // [1, k, 6]: x1, y1, x2, y2 in input pixels, score, class; best first.
            return UltralyticsModel.endToEndPostprocess(y, classNames: classNames, confidence: o.confidence!, maxDetections: o.maxDetections!)
        case .rtdetr:
            guard y.rank == 3 else { return [] }
            if Self.holdsRTDETRRows(y, classes: classNames.count) {
                // [1, k, 6]: ultralytics 8.4's export runs RTDETRDecoder.postprocess in the graph (normalised cxcywh,
                // score, class; best first).
                return UltralyticsModel.endToEndPostprocess(y, classNames: classNames, confidence: o.confidence!, maxDetections: o.maxDetections!,
                                                            normalisedCentres: inputSize)
            }
            // [1, queries, 4+nc]: normalised cxcywh and class scores, as RTDETRDecoder exported it before.
            guard y.shape[2] == 4 + classNames.count else { return [] }
            return UltralyticsModel.rtdetrPostprocess(y, classNames: classNames, inputSize: inputSize, confidence: o.confidence!,
                                                      maxDetections: o.maxDetections!)
        case .none:
            return []
        }
    }
}
