import Foundation
import Tensor

/// A model built from an ultralytics YAML (YOLOv8, RT-DETR, or a user's own config with these modules):
/// the layers `model.{i}` run in order, each reading the outputs its `from` names.
public final class UltralyticsModel: DetectionModel {
    public let name: String
    public let graph: UltralyticsGraph
    public let classNames: [String]
    /// `endToEnd`: a Detect with one-to-one branches (YOLOv10's v10Detect, YOLO26's `end2end: True`), which answers
    /// with its top-k rows [1, k, 6] instead of boxes for NMS.
    public enum Head: Sendable { case detect, endToEnd, rtdetr, none }
    public let head: Head
    /// The model's max stride, as ultralytics' AutoBackend takes it: max(model.stride, 32), where the stride is the
    /// largest downsampling of the graph (256 / the smallest map of a 256x256 shape pass).
    public let maxStride: Int
    public let isUntrained: Bool
    /// The input shapes this model has passed `checkFits` at, with their per-layer FLOPs.
    private let fittedShapes = ShapeCache<[Double]>()

    /// Builds the graph from a spec; `weights` supplies the tensors (call `weights.finish()` afterwards for
    /// strict loading). `names` are the class names (defaults to COCO's when nc is 80, else "class{i}").
    public init(name: String, spec: ModelSpec, scale: String? = nil, weights: WeightStore,
                names: [String]? = nil, inputChannels: Int = 3) throws {
        self.name = name
        self.graph = try UltralyticsGraph(spec: spec, scale: scale, weights: weights, inputChannels: inputChannels)
        let nc = graph.nc
        if let names, names.count == nc {
            classNames = names
        } else if nc == cocoClassNames.count {
            classNames = cocoClassNames
        } else {
            classNames = (0 ..< nc).map { "class\($0)" }
        }
        switch graph.nodes.last?.module {
        case "Detect", "v10Detect":
            let d = graph.nodes.last.flatMap { ($0.layer as? AnyModule)?.base as? Detect ?? $0.layer as? Detect }
            head = d?.isEndToEnd == true ? .endToEnd : .detect
        case "RTDETRDecoder": head = .rtdetr
        default: head = .none
        }
        let probe = 256
        let smallest = (try? graph.shapes(inputShape: [1, graph.inputChannels, probe, probe]))?.nodes.compactMap { s -> Int? in
            s.output.count == 4 && s.output[2] > 0 ? min(s.output[2], s.output[3]) : nil
        }.min() ?? probe
        maxStride = max(32, probe / max(smallest, 1))
        isUntrained = weights.isDefaultInit
    }

    /// The family by the blocks and head the graph has: YOLOv10 (v10Detect, or C2fCIB/PSA), YOLO12 (A2C2f), YOLO26
    /// (an end-to-end Detect after YOLO11's blocks), YOLO11 (C3k2, C2PSA), else YOLOv8 for a Detect head.
    public var family: String {
        let modules = Set(graph.nodes.map(\.module))
        switch head {
        case .detect, .endToEnd:
            if modules.contains("v10Detect") || !modules.isDisjoint(with: ["C2fCIB", "PSA"]) { return "YOLOv10" }
            if modules.contains("A2C2f") { return "YOLO12" }
            if !modules.isDisjoint(with: ["C3k2", "C2PSA"]) { return head == .endToEnd ? "YOLO26" : "YOLO11" }
            return "YOLOv8"
        case .rtdetr: return "RT-DETR"
        case .none: return "Ultralytics"
        }
    }

    public var preprocessing: Preprocessing { head == .rtdetr ? .stretch : .letterbox }
    public var defaultInputSize: Int { 640 }
    public var inputSizeRule: InputSizeRule { .strideMultiple(maxStride) }
    public var postprocessDefaults: PostprocessOptions { .ultralytics }
    public var inputChannels: Int { graph.inputChannels }

    public var parameterCount: Int { graph.nodes.reduce(0) { $0 + $1.params } }

    /// The layer table from one shape pass (an input the model cannot take gives the rows up to where it fails).
    public func layerTable(inputSize: GridSize) -> [LayerRow] {
        let shapes = (try? graph.shapes(inputShape: [1, inputChannels, inputSize.height, inputSize.width]))?.nodes ?? []
        return zip(graph.nodes, shapes).map { node, s in
            LayerRow(index: node.index, from: node.from, repeats: node.repeats, params: node.params,
                     module: node.typeName, arguments: "[" + node.arguments.map(\.description).joined(separator: ", ") + "]",
                     flops: s.flops, outputShape: s.output, children: s.children)
        }
    }

    /// Total FLOPs (multiply-adds as 2) at an input size.
    public func totalFlops(inputSize: GridSize) -> Double {
        layerTable(inputSize: inputSize).reduce(0) { $0 + $1.flops }
    }

    public func forward(_ input: Tensor, trace: Trace?, postprocess: PostprocessOptions) throws -> ModelOutput {
        try validateInput(input.shape)
        // The shape pass first: an input whose layers do not fit together, or that does not fit the machine, is an
        // error before anything runs. It runs once per input shape (a whole pass of Swift bookkeeping: 7% of
        // yolo26n's forward at one thread, perf); its per-layer FLOPs serve the trace's steps.
        let flops = try fittedShapes.value(for: input.shape) {
            try graph.checkFits(inputShape: input.shape, parameters: parameterCount).nodes.map(\.flops)
        }
        let out = try graph.run(input, trace: trace, flops: flops)
        let output = ModelOutput(output: out.main, extras: out.extras, detections: [])
        let detections = self.detections(from: output, inputSize: GridSize(input.shape[2], input.shape[3]), options: postprocess)
        if let trace, trace.keepTensors, head != .none {
            trace.probe("detections", "detections after post-processing", .detections(detections))
        }
        return ModelOutput(output: out.main, extras: out.extras, detections: detections)
    }

    public func detections(from output: ModelOutput, inputSize: GridSize, options: PostprocessOptions) -> [Detection] {
        let o = options.filled(from: postprocessDefaults)
        switch head {
        case .detect: return Self.yoloPostprocess(output.output, classNames: classNames, confidence: o.confidence!, iou: o.iou!, maxDetections: o.maxDetections!)
        case .endToEnd: return Self.endToEndPostprocess(output.output, classNames: classNames, confidence: o.confidence!, maxDetections: o.maxDetections!)
        case .rtdetr: return Self.rtdetrPostprocess(output.output, classNames: classNames, inputSize: inputSize, confidence: o.confidence!, maxDetections: o.maxDetections!)
        case .none: return []
        }
    }

    /// YOLOv8: [1, 4+nc, anchors] (xywh in input pixels, sigmoid scores) -> the best class of each anchor when its
    /// score is above `confidence`, class-aware NMS at `iou`, at most `maxDetections`, as ultralytics'
    /// non_max_suppression (max_nms 30000).
    static func yoloPostprocess(_ y: Tensor, classNames: [String], confidence: Float, iou: Float, maxDetections: Int) -> [Detection] {
        guard y.rank == 3, y.shape[1] > 4 else { return [] }
        let nc = y.shape[1] - 4, a = y.shape[2]
        var cands: [Detection] = []
        // Each anchor's best class (the first on ties), class by class down the rows of scores: runs of anchors in a
        // row, not a stride of A floats between the classes of one anchor. The anchors are split across cores (one
        // thread's scan of nc x A scores was the longest serial section of yolov8n's forward at 2 threads, perf).
        var best = [Float](repeating: -1, count: a), bestClass = [Int32](repeating: 0, count: a)
        y.data.withUnsafeBufferPointer { p in
            best.withUnsafeMutableBufferPointer { b in
                bestClass.withUnsafeMutableBufferPointer { k in
                    Parallel.forEach(a, cost: nc) { anchors in
                        for c in 0 ..< nc {
                            let row = p.baseAddress! + (4 + c) * a
                            let ci = Int32(c)
                            for j in anchors {   // selects, not branches: a vector loop
                                let v = row[j], better = v > b[j]
                                b[j] = better ? v : b[j]; k[j] = better ? ci : k[j]
                            }
                        }
                    }
                }
            }
            for j in 0 ..< a where best[j] > confidence {
                let cls = Int(bestClass[j])
                let cx = p[j], cy = p[a + j], w = p[2 * a + j], h = p[3 * a + j]
                cands.append(Detection(classIndex: cls, className: classNames[cls], score: best[j],
                                       x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, source: j))
            }
        }
        return nonMaxSuppression(cands, iou: iou, maxDetections: maxDetections, maxCandidates: 30000)
    }

    /// An end-to-end head's rows [1, k, 6] (x1, y1, x2, y2 in input pixels, score, class), best first: the rows whose
    /// score is above `confidence`, at most `maxDetections`, as ultralytics' non_max_suppression does for end-to-end
    /// models (no NMS).
    /// With `normalisedCentres`, the rows' boxes are (cx, cy, w, h) normalised to that input size instead, as
    /// ultralytics' RTDETRDecoder.postprocess writes them into an export.
    static func endToEndPostprocess(_ y: Tensor, classNames: [String], confidence: Float, maxDetections: Int,
                                    normalisedCentres inputSize: GridSize? = nil) -> [Detection] {
        guard y.rank == 3, y.shape[2] == 6 else { return [] }
        var out: [Detection] = []
        for i in 0 ..< y.shape[1] where out.count < maxDetections {
            var r = Array(y.data[(i * 6) ..< (i * 6 + 6)])
            let cls = Int(r[5])
            guard r[4] > confidence, classNames.indices.contains(cls) else { continue }
            if let s = inputSize {
                let W = Float(s.width), H = Float(s.height)
                let (cx, cy, w, h) = (r[0] * W, r[1] * H, r[2] * W, r[3] * H)
                r[0] = cx - w / 2; r[1] = cy - h / 2; r[2] = cx + w / 2; r[3] = cy + h / 2
            }
            out.append(Detection(classIndex: cls, className: classNames[cls], score: r[4], x1: r[0], y1: r[1], x2: r[2], y2: r[3], source: i))
        }
        return out
    }

    /// RT-DETR: [1, queries, 4+nc] (cxcywh normalised, sigmoid scores) -> the top `queries` (query, class) pairs by
    /// score, as ultralytics' RTDETRDecoder.postprocess, kept when above `confidence`, at most `maxDetections`
    /// (RTDETRPredictor.postprocess); no NMS.
    static func rtdetrPostprocess(_ y: Tensor, classNames: [String], inputSize: GridSize, confidence: Float, maxDetections: Int) -> [Detection] {
        guard y.rank == 3, y.shape[2] > 4 else { return [] }
        let W = Float(inputSize.width), H = Float(inputSize.height)
        let nc = y.shape[2] - 4
        return rtdetrTopK(y).filter { $0.score > confidence }.prefix(maxDetections).map { t in
            let base = t.query * (4 + nc)
            let cx = y.data[base] * W, cy = y.data[base + 1] * H, w = y.data[base + 2] * W, h = y.data[base + 3] * H
            return Detection(classIndex: t.cls, className: classNames[t.cls], score: t.score,
                             x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, source: t.query)
        }
    }
}

/// The k = min(queries, queries * nc) best (query, class) pairs of an RT-DETR output [1, queries, 4 + nc], best first
/// (ties by lower flat index), as ultralytics' RTDETRDecoder.postprocess selects them.
public func rtdetrTopK(_ y: Tensor) -> [(query: Int, cls: Int, score: Float)] {
    let q = y.shape[1], nc = y.shape[2] - 4
    guard q * nc > 0 else { return [] }
    // The scores in flat (query, class) order, then topK's partial selection of the best k (a sorted buffer of k
    // entries, ties by lower index, NaN as the largest as in torch.topk) instead of a sort of all q x nc pairs
    // (rtdetr-l: 24,000 pairs sorted by one thread after every forward).
    let scores = Tensor(shape: [q * nc]) { s in
        y.data.withUnsafeBufferPointer { p in
            for i in 0 ..< q { (s.baseAddress! + i * nc).update(from: p.baseAddress! + i * (4 + nc) + 4, count: nc) }
        }
    }
    let best = topK(scores, k: min(q, q * nc))
    return best.indices.data.indices.map { t in
        let flat = Int(best.indices.data[t])
        return (flat / nc, flat % nc, best.values.data[t])
    }
}

/// Greedy NMS per class, highest score first (torchvision's batched_nms semantics: boxes of different classes never
/// suppress each other); keeps at most `maxDetections`.
public func nonMaxSuppression(_ dets: [Detection], iou threshold: Float, maxDetections: Int, maxCandidates: Int = .max) -> [Detection] {
    let sorted = Array(dets.sorted { $0.score > $1.score }.prefix(maxCandidates))
    var kept: [Detection] = []
    var suppressed = [Bool](repeating: false, count: sorted.count)
    for i in sorted.indices where !suppressed[i] {
        let a = sorted[i]
        kept.append(a)
        if kept.count >= maxDetections { break }
        for j in (i + 1) ..< sorted.count where !suppressed[j] && sorted[j].classIndex == a.classIndex {
            if boxIoU(a, sorted[j]) > threshold { suppressed[j] = true }
        }
    }
    return kept
}

func boxIoU(_ a: Detection, _ b: Detection) -> Float {
    let iw = max(0, min(a.x2, b.x2) - max(a.x1, b.x1)), ih = max(0, min(a.y2, b.y2) - max(a.y1, b.y1))
    let inter = iw * ih
    let ua = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return ua > 0 ? inter / ua : 0
}

/// The 80 COCO class names, in ultralytics' order.
public let cocoClassNames: [String] = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]
