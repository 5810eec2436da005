import Foundation
import Tensor

/// A grid size (rows, columns).
public struct GridSize: Sendable, Equatable, Hashable, Codable {
    public var height: Int
    public var width: Int
    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }
    public var count: Int { height * width }
}

/// One detection, with its box in the pixels of the original image (x1, y1, x2, y2).
public struct Detection: Sendable, Equatable, Codable {
    public var classIndex: Int
    public var className: String
    public var score: Float
    public var x1: Float, y1: Float, x2: Float, y2: Float
    /// Index of the query (DETR family) or anchor (YOLO) that produced it.
    public var source: Int

    public init(classIndex: Int, className: String, score: Float, x1: Float, y1: Float, x2: Float, y2: Float, source: Int) {
        self.classIndex = classIndex
        self.className = className
        self.score = score
        self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2
        self.source = source
    }
}

/// Deformable attention's sampling, for a set of queries:
/// - `referencePoints` [Q, 2] (x, y) or [Q, 4] (cx, cy, w, h), normalised to [0, 1] of the input;
/// - `locations` [Q, heads, levels, points, 2] (x, y), normalised to [0, 1];
/// - `weights` [Q, heads, levels, points], softmax over levels*points per head;
/// - `levelShapes`: each level's (H, W);
/// - `queryGrid`: for encoder (pixel) queries, each query's level and grid position; nil for decoder queries.
public struct SamplingPoints: Sendable {
    public var referencePoints: Tensor
    public var locations: Tensor
    public var weights: Tensor
    public var levelShapes: [GridSize]
    public var queryLevels: [GridSize]?

    public init(referencePoints: Tensor, locations: Tensor, weights: Tensor, levelShapes: [GridSize], queryLevels: [GridSize]? = nil) {
        self.referencePoints = referencePoints
        self.locations = locations
        self.weights = weights
        self.levelShapes = levelShapes
        self.queryLevels = queryLevels
    }

    public var queries: Int { locations.shape[0] }
    public var heads: Int { locations.shape[1] }
    public var levels: Int { locations.shape[2] }
    public var points: Int { locations.shape[3] }
}

/// The boxes a DETR decoder holds after one of its layers (box refinement), or before the first (`layer` -1: the
/// boxes the query selection starts from).
public struct RefinedBoxes: Sendable {
    /// [Q, 4] (cx, cy, w, h), normalised to [0, 1] of the model input.
    public var boxes: Tensor
    /// The decoder layer these boxes leave (0-based); -1 for the initial boxes.
    public var layer: Int
    /// [Q] each query's best-class probability from this layer's class head, when the layer has one.
    public var scores: Tensor?

    public init(boxes: Tensor, layer: Int, scores: Tensor? = nil) {
        self.boxes = boxes
        self.layer = layer
        self.scores = scores
    }
}

/// Which encoder tokens became decoder queries (two-stage DETRs: top-k over the encoder's class scores).
public struct QuerySelection: Sendable {
    /// [K] indices into the encoder tokens, the levels' grids flattened row by row and concatenated in order.
    public var indices: [Int]
    /// [K, 4] the selected tokens' initial boxes (cx, cy, w, h), normalised to [0, 1] of the model input.
    public var boxes: Tensor
    /// [K] the score each selected token was ranked by.
    public var scores: Tensor
    /// Each level's (H, W), in the order the tokens are concatenated.
    public var levelShapes: [GridSize]

    public init(indices: [Int], boxes: Tensor, scores: Tensor, levelShapes: [GridSize]) {
        self.indices = indices
        self.boxes = boxes
        self.scores = scores
        self.levelShapes = levelShapes
    }
}

/// D-FINE's fine-grained distribution refinement in one decoder layer: for every query, a distribution over bins
/// for each of the box's four edges; the edge moves by the expectation of the weighting function under it.
public struct EdgeDistributions: Sendable {
    /// [Q, 4, bins], each row a softmax over the bins; edges in the order left, top, right, bottom.
    public var probabilities: Tensor
    /// [bins] the weighting function W(n): the offset each bin stands for, before the layer scales it by the
    /// reference box's size.
    public var binValues: Tensor
    /// [Q, 4] (cx, cy, w, h) normalised, the boxes this layer leaves.
    public var boxes: Tensor
    /// The decoder layer (0-based).
    public var layer: Int

    public init(probabilities: Tensor, binValues: Tensor, boxes: Tensor, layer: Int) {
        self.probabilities = probabilities
        self.binValues = binValues
        self.boxes = boxes
        self.layer = layer
    }
}

/// What a probe holds, typed by how the explorer draws it.
public enum ProbeData: Sendable {
    /// [C, H, W] activations.
    case featureMap(Tensor)
    /// Dense attention [heads, Q, K] from a query grid to a key grid.
    case attention(Tensor, query: GridSize, key: GridSize)
    /// A context or gate map [C, H, W] (C may be 1); `signed` picks a diverging colormap.
    case contextMap(Tensor, signed: Bool)
    /// Per-channel weights [C] (a bar chart).
    case channelWeights(Tensor)
    /// Spatial weights [H, W].
    case spatialWeights(Tensor)
    /// Deformable sampling points.
    case sampling(SamplingPoints)
    /// Final detections; `inputSize` is the model input (H, W) the boxes were predicted in.
    case detections([Detection])
    /// A decoder's boxes after one layer.
    case refinedBoxes(RefinedBoxes)
    /// The encoder tokens chosen as decoder queries.
    case querySelection(QuerySelection)
    /// D-FINE's per-edge distributions in one decoder layer.
    case edgeDistributions(EdgeDistributions)
    /// Any other tensor worth keeping in a dump (e.g. refined reference boxes).
    case tensor(Tensor)
}

/// A named thing a module recorded under its dotted path, e.g. `model.28.decoder.layers.0.cross_attn`.
public struct Probe: Sendable {
    public var path: String
    /// What it is, in words ("static context k1", "channel weights |gamma|/sum").
    public var label: String
    public var data: ProbeData

    public init(path: String, label: String, data: ProbeData) {
        self.path = path
        self.label = label
        self.data = data
    }
}

/// One executed top-level layer (or sub-module when the model records them).
public struct TraceStep: Sendable {
    public var index: Int
    public var path: String
    public var moduleType: String
    public var inputShapes: [[Int]]
    public var outputShape: [Int]
    /// The output (its first tensor when a layer returns several), batch dim included.
    public var output: Tensor?
    public var params: Int
    public var flops: Double
    public var seconds: Double

    public init(index: Int, path: String, moduleType: String, inputShapes: [[Int]], outputShape: [Int],
                output: Tensor?, params: Int, flops: Double, seconds: Double) {
        self.index = index
        self.path = path
        self.moduleType = moduleType
        self.inputShapes = inputShapes
        self.outputShape = outputShape
        self.output = output
        self.params = params
        self.flops = flops
        self.seconds = seconds
    }
}

/// What a forward pass records: the steps in order and the probes modules left.
///
/// A forward pass is single-threaded at the level of modules (ops may use several threads inside), so a
/// `Trace` is filled by one thread and then handed over as a value snapshot (`TraceSnapshot`).
public final class Trace: @unchecked Sendable {
    /// Whether to keep tensors (outputs and probes). Off, a trace records only shapes and times.
    public let keepTensors: Bool
    /// Called after each recorded step with (steps done, steps expected); for progress bars.
    public var progress: (@Sendable (Int, Int) -> Void)?
    public var expectedSteps: Int = 0
    public private(set) var steps: [TraceStep] = []
    public private(set) var probes: [Probe] = []
    private let lock = NSLock()
    /// Set from another thread to stop the forward pass at the next step.
    private var cancelled = false

    public init(keepTensors: Bool = true) { self.keepTensors = keepTensors }

    public func record(_ step: TraceStep) {
        lock.lock()
        var s = step
        if !keepTensors { s.output = nil }
        steps.append(s)
        let n = steps.count
        lock.unlock()
        progress?(n, expectedSteps)
    }

    public func probe(_ path: String, _ label: String, _ data: @autoclosure () -> ProbeData) {
        guard keepTensors else { return }
        let p = Probe(path: path, label: label, data: data())
        lock.lock()
        probes.append(p)
        lock.unlock()
    }

    public func cancel() {
        lock.lock(); cancelled = true; lock.unlock()
    }

    public var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    public var snapshot: TraceSnapshot {
        lock.lock(); defer { lock.unlock() }
        return TraceSnapshot(steps: steps, probes: probes)
    }
}

/// Thrown by a forward pass that noticed `Trace.cancel()`.
public struct CancelledError: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "the forward pass was cancelled" }
}

/// An immutable copy of a finished trace.
public struct TraceSnapshot: Sendable {
    public var steps: [TraceStep]
    public var probes: [Probe]

    public init(steps: [TraceStep], probes: [Probe]) {
        self.steps = steps
        self.probes = probes
    }

    /// Probes recorded under `path` or below it.
    public func probes(under path: String) -> [Probe] {
        probes.filter { $0.path == path || $0.path.hasPrefix(path + ".") }
    }
}

extension ProbeData {
    /// The tensors a dump writes for this probe, keyed by suffix ("" = the probe's own path), batch dim added
    /// where the reference has one (sampling tensors become [1, Q, heads, levels, points, ...]).
    public var dumpTensors: [String: Tensor] {
        func batched(_ t: Tensor) -> Tensor { t.reshaped([1] + t.shape) }
        switch self {
        case .featureMap(let t), .contextMap(let t, _), .channelWeights(let t), .spatialWeights(let t), .tensor(let t):
            return ["": t]
        case .attention(let t, _, _):
            return ["": t]
        case .sampling(let s):
            return [
                "reference_points": batched(s.referencePoints),
                "sampling_locations": batched(s.locations),
                "attention_weights": batched(s.weights),
            ]
        case .detections(let ds):
            guard !ds.isEmpty else { return [:] }
            var rows: [Float] = []
            for d in ds { rows += [d.x1, d.y1, d.x2, d.y2, d.score, Float(d.classIndex)] }
            return ["": Tensor(shape: [ds.count, 6], data: rows)]
        case .refinedBoxes(let r):
            var out = ["": r.boxes]
            if let s = r.scores { out["scores"] = s }
            return out
        case .querySelection(let q):
            return ["indices": Tensor(shape: [q.indices.count], data: q.indices.map(Float.init)), "boxes": q.boxes, "scores": q.scores]
        case .edgeDistributions(let e):
            return ["": e.probabilities, "boxes": e.boxes]
        }
    }
}

extension TraceSnapshot {
    /// Every probe's tensors under its dotted path (`path` or `path.suffix`).
    public var probeTensors: [String: Tensor] {
        var out: [String: Tensor] = [:]
        for p in probes {
            for (suffix, t) in p.data.dumpTensors {
                out[suffix.isEmpty ? p.path : p.path + "." + suffix] = t
            }
        }
        return out
    }
}

/// What a model computed once per input shape (the outcome of a shape pass: the graph and the machine's memory do not
/// change, so neither does it), for the last few shapes: a run over images of many sizes starts over.
final class ShapeCache<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var byShape: [[Int]: Value] = [:]
    static var capacity: Int { 8 }

    /// The value kept for `shape`, or `make`'s, kept when it returns (a shape whose `make` throws is tried again).
    func value(for shape: [Int], _ make: () throws -> Value) rethrows -> Value {
        lock.lock()
        let known = byShape[shape]
        lock.unlock()
        if let known { return known }
        let value = try make()
        lock.lock()
        if byShape.count >= Self.capacity { byShape.removeAll() }
        byShape[shape] = value
        lock.unlock()
        return value
    }
}

/// A model's top-level modules run as the steps of a trace (the Hugging Face DETRs): each under its path through the
/// root context (so a shape pass's recorder sees it), after a cancellation check, timed and recorded with its FLOPs
/// from the model's shape pass (`flops`, by path; empty when nothing is traced).
struct TraceSteps {
    let root: ForwardContext
    let flops: [String: Double]
    private var index = 0

    init(root: ForwardContext, flops: [String: Double]) {
        self.root = root
        self.flops = flops
    }

    /// Runs `module` as the step `path` (`type`: the name the layer table shows, the module's type by default).
    mutating func callAsFunction(_ path: String, _ module: any Module, _ inputs: [Tensor], type: String? = nil) throws -> LayerOutput {
        try root.checkCancelled()
        let t0 = DispatchTime.now().uptimeNanoseconds
        let out = try root.call(module, key: path, inputs)
        if let trace = root.trace {
            let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            trace.record(TraceStep(index: index, path: path, moduleType: type ?? module.typeName, inputShapes: inputs.map(\.shape),
                                   outputShape: out.main.shape, output: trace.keepTensors ? out.main : nil,
                                   params: module.parameterCount, flops: flops[path] ?? 0, seconds: secs))
        }
        index += 1
        return out
    }

    /// Each top-level step's FLOPs from a shape pass's calls, by path.
    static func flops(_ recorder: CallRecorder?) -> [String: Double] {
        var out: [String: Double] = [:]
        for call in recorder?.calls ?? [] where call.depth == 0 { out[call.path] = call.flops }
        return out
    }
}
