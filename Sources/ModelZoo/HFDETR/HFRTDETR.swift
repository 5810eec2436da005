import Foundation
import Tensor

/// RT-DETR (Zhao et al., arXiv 2304.08069) in the layout of transformers' `RTDetrForObjectDetection`
/// (models/rt_detr/modeling_rt_detr.py): ResNet-vd backbone with frozen batch norms, `encoder_input_proj` (1x1 conv +
/// BN per level), the hybrid encoder (AIFI + CCFM), `decoder_input_proj` (+ strided extra levels), query selection
/// over every anchor, and the decoder with iterative box refinement.
///
/// Input [1, 3, H, W] (the image processor's output: RGB / 255, stretched to its size) -> `ModelOutput.output`
/// [1, Q, 4 + C] (boxes cx, cy, w, h normalised, then sigmoid class scores), extras `logits` [1, Q, C], `pred_boxes`
/// [1, Q, 4]; detections as `post_process_object_detection` (sigmoid top-k over queries x classes).
///
/// D-FINE (Peng et al., arXiv 2410.13842; transformers' `DFineForObjectDetection`, models/d_fine/modeling_d_fine.py)
/// is the same skeleton with its own parts: the HGNetV2 backbone, RepNCSPELAN4 / SCDown blocks in the hybrid encoder,
/// `decoder_input_proj` as identities when d_model equals the encoder's width (extra levels each from the coarsest
/// map), and its decoder (fine-grained distribution refinement, LQE).
///
/// Trace steps: `model.backbone.model`, `model.encoder_input_proj.{l}`, `model.encoder`, `model.decoder_input_proj.{l}`,
/// `model` (query selection), `model.decoder`. Probes: each backbone stage and encoder output as feature maps, AIFI
/// attention per head, the query selection (indices, boxes, per-level scores), each decoder layer's sampling points,
/// query self-attention and refined boxes.
public final class HFRTDETR: DetectionModel, @unchecked Sendable {
    public let name: String
    public let config: RTDetrConfig
    public var family: String { config.isDFine ? "D-FINE" : config.modelType == "rt_detr_v2" ? "RT-DETRv2" : "RT-DETR" }
    public var classNames: [String] { config.classNames }
    public let preprocessing: Preprocessing
    public let defaultInputSize: Int
    public var inputChannels: Int { config.numChannels }
    public let isUntrained: Bool
    public var inputSizeRule: InputSizeRule { .strideMultiple(config.featStrides.max() ?? 32) }
    public var postprocessDefaults: PostprocessOptions { PostprocessOptions(confidence: 0.5, iou: nil, maxDetections: config.numQueries) }

    /// RTDetrResNetBackbone or HGNetV2Backbone.
    let backbone: any Module
    let encoderInputProj: [Child<Conv>]
    let encoder: RTDetrHybridEncoder
    /// D-FINE's are identities (empty) when d_model equals decoder_in_channels[-1].
    let decoderInputProj: [Child<Conv>]
    let selection: RTDetrQuerySelection
    /// RTDetrDecoder or DFineDecoder.
    let decoder: any Module
    /// `denoising_class_embed` (training only; counted as transformers counts it).
    let denoisingParameters: Int
    /// Each top-level step's FLOPs by input shape (a traced forward's steps show them).
    private let stepFlops = ShapeCache<[String: Double]>()

    public init(config c: RTDetrConfig, store: WeightStore, name: String, preprocessing: Preprocessing = .stretch,
                defaultInputSize: Int = 640, verify: Bool = true) throws {
        self.name = name
        config = c
        self.preprocessing = preprocessing
        self.defaultInputSize = defaultInputSize
        isUntrained = store.isDefaultInit
        let m = store.root.scope("model")
        if let hg = c.hgnet {
            backbone = try HGNetV2Backbone(m.scope("backbone.model"), hg, frozen: c.freezeBackboneBatchNorms, std: c.initializerRange)
        } else {
            backbone = try RTDetrResNetBackbone(m.scope("backbone.model"), c.backbone, frozen: c.freezeBackboneBatchNorms)
        }
        encoderInputProj = try [Child](m, "encoder_input_proj", count: c.encoderInChannels.count) { i, s in
            try Conv(s, c1: c.encoderInChannels[i], c2: c.encoderHiddenDim, k: 1, act: .identity, eps: 1e-5, keys: ("0", "1"),
                     weightInit: .normal(mean: 0, std: c.initializerRange))
        }
        encoder = try RTDetrHybridEncoder(m.scope("encoder"), c)
        var inC = c.decoderInChannels.last!
        let identity = c.isDFine && c.dModel == inC
        decoderInputProj = identity ? [] : try [Child](m, "decoder_input_proj", count: c.numFeatureLevels) { i, s in
            if i < c.decoderInChannels.count {
                return try Conv(s, c1: c.decoderInChannels[i], c2: c.dModel, k: 1, act: .identity, eps: c.batchNormEps, keys: ("0", "1"),
                                weightInit: .normal(mean: 0, std: c.initializerRange))
            }
            defer { if !c.isDFine { inC = c.dModel } }   // D-FINE's extra levels all read the encoder's coarsest map
            return try Conv(s, c1: inC, c2: c.dModel, k: 3, s: 2, p: 1, act: .identity, eps: c.batchNormEps, keys: ("0", "1"),
                            weightInit: .normal(mean: 0, std: c.initializerRange))
        }
        selection = try RTDetrQuerySelection(m, c)
        decoder = c.isDFine ? try DFineDecoder(m.scope("decoder"), c) : try RTDetrDecoder(m.scope("decoder"), c)
        if c.numDenoising > 0 {
            let t = try m.tensor("denoising_class_embed.weight", shape: [c.numLabels + 1, c.dModel], init: .xavierUniform(fanIn: c.dModel, fanOut: c.numLabels + 1))
            denoisingParameters = t.count
        } else {
            denoisingParameters = 0
        }
        if verify { try store.finish() }
    }

    /// Parameters as transformers counts them (`sum(p.numel() for p in model.parameters())`; frozen batch norms are buffers).
    public var parameterCount: Int {
        backbone.parameterCount + encoderInputProj.reduce(0) { $0 + $1.module.parameterCount } + encoder.parameterCount
            + decoderInputProj.reduce(0) { $0 + $1.module.parameterCount } + selection.parameterCount + decoder.parameterCount
            + denoisingParameters
    }

    /// What one forward pass leaves: the decoder's output and the intermediate maps.
    struct Pass {
        var logits: Tensor, boxes: Tensor
        var extras: [String: Tensor]
    }

    /// The forward pass (and, inside `Tensor.shapePass` with a recorder, the shape pass): each top-level module run
    /// under its checkpoint path and recorded as a trace step.
    func run(_ input: Tensor, trace: Trace?, recorder: CallRecorder? = nil) throws -> Pass {
        let root = ForwardContext(trace: trace, path: "", recorder: recorder)
        trace?.expectedSteps = 4 + encoderInputProj.count + decoderInputProj.count
        // Each step's FLOPs from one shape pass of the whole model (its modules take the level shapes as values), once
        // per input shape.
        let flops = trace == nil || recorder != nil ? [:] : stepFlops.value(for: input.shape) { TraceSteps.flops(shapePass(inputShape: input.shape)) }
        var step = TraceSteps(root: root, flops: flops)
        var extras: [String: Tensor] = [:]
        func featureProbe(_ path: String, _ label: String, _ t: Tensor) {
            guard t.rank == 4, t.shape[0] == 1 else { return }
            root.child(path).probe(label, .featureMap(t.reshaped(Array(t.shape.dropFirst()))))
        }

        let bb = try step("model.backbone.model", backbone, [input])
        let feats = bb.numbered
        for (i, f) in feats.enumerated() {
            extras["backbone.feature_maps.\(i)"] = f
            featureProbe("model.backbone.model.out.\(i)", "backbone output \(i) (stride \(config.featStrides[min(i, config.featStrides.count - 1)]))", f)
        }
        var proj: [Tensor] = []
        for (i, p) in encoderInputProj.enumerated() {
            let y = try step("model.encoder_input_proj.\(i)", p.module, [feats[i]], type: "Conv2d+BatchNorm2d").main
            extras["encoder.input_proj.\(i)"] = y
            proj.append(y)
        }
        let enc = try step("model.encoder", encoder, proj).numbered
        for (i, e) in enc.enumerated() {
            extras["encoder.last_hidden_state.\(i)"] = e
            featureProbe("model.encoder.out.\(i)", "hybrid encoder output \(i)", e)
        }
        var sources: [Tensor] = []
        for i in 0 ..< config.numFeatureLevels {
            // RT-DETR chains its extra levels; D-FINE reads each from the encoder's coarsest map.
            let src = i < enc.count ? enc[i] : (i == enc.count || config.isDFine ? enc[enc.count - 1] : sources[sources.count - 1])
            guard i < decoderInputProj.count else { sources.append(src); continue }
            sources.append(try step("model.decoder_input_proj.\(i)", decoderInputProj[i].module, [src], type: "Conv2d+BatchNorm2d").main)
        }
        let shapes = sources.map { GridSize($0.shape[2], $0.shape[3]) }
        let d = config.dModel
        // [1, d, H, W] per level -> [S, d]
        let flat = concat(sources.map { transpose($0.reshaped([d, $0.shape[2] * $0.shape[3]]), 0, 1) }, axis: 0)
        let shapeRows = levelShapesTensor(shapes)
        let chosen = try step("model", selection, [flat, shapeRows], type: "RTDetrQuerySelection")
        for k in ["reference_logits", "indices", "enc_outputs_class", "enc_outputs_coord_logits"] { extras[k] = chosen.extras[k] }
        let out = try step("model.decoder", decoder, [chosen.main, chosen.extras["reference_logits"]!, flat, shapeRows])
        for (k, v) in out.extras { extras["decoder." + k] = v }
        return Pass(logits: out.main, boxes: out.extras["pred_boxes"]!, extras: extras)
    }

    /// One shape pass of the whole model at an input shape: every module call with its shapes and FLOPs (nil when
    /// the input does not fit the model).
    func shapePass(inputShape: [Int]) -> CallRecorder? {
        let recorder = CallRecorder()
        guard (try? Tensor.shapePass({ try run(Tensor(shapeOnly: inputShape), trace: nil, recorder: recorder) })) != nil else { return nil }
        return recorder
    }

    public func layerTable(inputSize: GridSize) -> [LayerRow] {
        guard let recorder = shapePass(inputShape: [1, inputChannels, inputSize.height, inputSize.width]) else { return [] }
        var rows: [LayerRow] = []
        for (i, c) in recorder.calls.enumerated() where c.depth == 0 {
            let name = c.path == "model" ? "model (query selection)" : c.path
            rows.append(LayerRow(index: rows.count, from: [-1], repeats: 1, params: c.parameters, module: name + " " + c.typeName, arguments: "",
                                 flops: c.flops, outputShape: c.output, children: recorder.rows(under: i)))
        }
        if denoisingParameters > 0 {
            // Counted by transformers, used only in training (contrastive denoising queries).
            rows.append(LayerRow(index: rows.count, from: [], repeats: 1, params: denoisingParameters,
                                 module: "model.denoising_class_embed Embedding", arguments: "training only", flops: 0, outputShape: []))
        }
        return rows
    }

    public func forward(_ input: Tensor, trace: Trace?, postprocess: PostprocessOptions) throws -> ModelOutput {
        try validateInput(input.shape)
        let pass = try run(input, trace: trace)
        let q = config.numQueries, c = config.numLabels
        let logits = pass.logits.reshaped([1, q, c]), boxes = pass.boxes.reshaped([1, q, 4])
        var extras = pass.extras
        extras["logits"] = logits
        extras["pred_boxes"] = boxes
        let output = ModelOutput(output: concat([boxes, sigmoid(logits)], axis: 2), extras: extras, detections: [])
        let dets = detections(from: output, inputSize: GridSize(input.shape[2], input.shape[3]), options: postprocess)
        if let trace, trace.keepTensors { trace.probe("detections", "detections after post-processing", .detections(dets)) }
        return ModelOutput(output: output.output, extras: extras, detections: dets)
    }

    public func detections(from output: ModelOutput, inputSize: GridSize, options: PostprocessOptions) -> [Detection] {
        let o = options.filled(from: postprocessDefaults)
        guard let logits = output.extras["logits"], let boxes = output.extras["pred_boxes"] else { return [] }
        return HFRTDETR.postprocess(logits: logits, boxes: boxes, classNames: classNames, inputSize: inputSize,
                                    threshold: o.confidence!, topK: o.maxDetections!)
    }

    /// transformers' `post_process_object_detection` (use_focal_loss): sigmoid of the logits [1, Q, C], the top
    /// `topK` (at most Q) over queries x classes, boxes (cx, cy, w, h) to corners in input pixels; scores above
    /// `threshold` kept (strictly), in descending order.
    public static func postprocess(logits: Tensor, boxes: Tensor, classNames: [String], inputSize: GridSize,
                                   threshold: Float, topK: Int) -> [Detection] {
        let q = logits.shape[1], c = logits.shape[2]
        let scores = sigmoid(logits.reshaped([q * c]))
        let k = Swift.min(Swift.max(topK, 0), q)
        guard k > 0 else { return [] }
        let top = Tensor_topK(scores, k)
        let b = boxes.reshaped([q, 4]).data
        let iw = Float(inputSize.width), ih = Float(inputSize.height)
        var out: [Detection] = []
        for (score, flat) in top where score > threshold {
            let qi = flat / c, ci = flat % c
            let cx = b[qi * 4], cy = b[qi * 4 + 1], w = b[qi * 4 + 2], h = b[qi * 4 + 3]
            out.append(Detection(classIndex: ci, className: ci < classNames.count ? classNames[ci] : "class \(ci)", score: score,
                                 x1: (cx - w / 2) * iw, y1: (cy - h / 2) * ih, x2: (cx + w / 2) * iw, y2: (cy + h / 2) * ih, source: qi))
        }
        return out
    }
}

/// The `k` largest values of a vector with their indices, in descending order (ties: the lower index first).
func Tensor_topK(_ x: Tensor, _ k: Int) -> [(Float, Int)] {
    let t = topK(x, k: k)
    return zip(t.values.data, t.indices.data).map { ($0, Int($1)) }
}
