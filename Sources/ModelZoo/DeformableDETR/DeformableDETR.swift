import Foundation
import Tensor

/// Deformable DETR (Zhu et al., arXiv 2010.04159) in the layout of Hugging Face transformers'
/// `DeformableDetrForObjectDetection`: a frozen-BN ResNet, multi-scale input projections with GroupNorm(32),
/// sine + level position embeddings, a deformable encoder over every pixel of every level, a decoder whose
/// queries attend to the encoder output around their reference points, and class / box heads; optionally
/// iterative box refinement and the two-stage variant.
///
/// Input [1, 3, H, W] (ImageNet-normalised RGB) -> `ModelOutput.output` [1, Q, 4 + classes] (cx, cy, w, h
/// normalised, then the sigmoid class scores), extras `logits` [1, Q, C], `pred_boxes` [1, Q, 4],
/// `encoder.last_hidden_state` [1, S, d], `decoder.last_hidden_state` [1, Q, d]; detections are the top 100 of
/// sigmoid(logits) over queries x classes (transformers' `post_process_object_detection`), boxes in input pixels.
///
/// Keys: exactly those of a transformers `model.safetensors` (`model.backbone.conv_encoder.model...`,
/// `model.input_proj.{l}.{0,1}`, `model.encoder.layers.{i}...`, `class_embed.{i}`, `bbox_embed.{i}.layers.{j}`...).
public final class DeformableDETR: DetectionModel, @unchecked Sendable {
    public let name: String
    public let config: DeformableDETRConfig
    public var family: String { "Deformable DETR" }
    public var classNames: [String] { config.classNames }
    public let preprocessing: Preprocessing
    /// The image's shortest edge after resizing (transformers' `size["shortest_edge"]`, 800).
    public let defaultInputSize: Int
    public var inputChannels: Int { config.backbone.numChannels }
    public let isUntrained: Bool
    /// transformers' image processor: shortest edge N, longest capped at N * 1333 / 800; any resulting size runs.
    public var inputSizeRule: InputSizeRule {
        if case .resizeNormalize(let size, let maxSize) = preprocessing { return .shortestEdge(size: size, maxSize: maxSize) }
        return .any
    }
    public var postprocessDefaults: PostprocessOptions { .transformersDETR }

    let backbone: DDETRResNetBackbone
    let inputProj: [DDETRInputProjection]
    let levelEmbedding: DDETRLevelEmbedding
    let encoderLayers: [DDETREncoderLayer]
    let queries: DDETRQueries
    let decoderLayers: [DDETRDecoderStep]
    let classHead: DDETRHead, boxHead: DDETRHead
    /// Whether the decoder refines its reference points with its box heads (with_box_refine).
    var refines: Bool { config.withBoxRefine }
    /// Each top-level step's FLOPs by input shape (a traced forward's steps show them).
    private let stepFlops = ShapeCache<[String: Double]>()

    /// Builds the model from `store` (a checkpoint, strict, or the seeded default init). Throws a `WeightError`
    /// naming every missing, unused or wrong-shape key.
    public convenience init(config c: DeformableDETRConfig, store: WeightStore, name: String = "deformable-detr",
                preprocessing: Preprocessing = .resizeNormalize(size: 800, maxSize: 1333), defaultInputSize: Int = 800) throws {
        try self.init(config: c, store: store, name: name, preprocessing: preprocessing, defaultInputSize: defaultInputSize, verify: true)
    }

    /// The model's structure with zero weights (no random draws, no key check): for parameter counts and layer
    /// tables without the cost of initialising tens of millions of weights.
    static func structure(config: DeformableDETRConfig) -> DeformableDETR {
        // An empty checkpoint hands out zeros for every key; `verify: false` skips the missing-key report.
        try! DeformableDETR(config: config, store: WeightStore(.checkpoint(name: "structure", tensors: [:])), name: "structure",
                            preprocessing: .resizeNormalize(size: 800, maxSize: 1333), defaultInputSize: 800, verify: false)
    }

    init(config c: DeformableDETRConfig, store: WeightStore, name: String, preprocessing: Preprocessing, defaultInputSize: Int, verify: Bool) throws {
        self.name = name
        self.config = c
        self.preprocessing = preprocessing
        self.defaultInputSize = defaultInputSize
        isUntrained = store.isDefaultInit
        let root = store.root
        let model = root.scope("model")
        let d = c.dModel
        backbone = try DDETRResNetBackbone(config: c.backbone, scope: model.scope("backbone").scope("conv_encoder").scope("model"))

        // Input projections: one per backbone output, then 3x3/2 convs for the extra levels.
        var projs: [DDETRInputProjection] = []
        let outC = c.backbone.outChannels
        if c.numFeatureLevels > 1 {
            for (l, ch) in outC.enumerated() {
                projs.append(try DDETRInputProjection(scope: model.scope("input_proj").scope(l), in: ch, out: d, downsample: false))
            }
            var inC = outC.last!
            for l in outC.count ..< c.numFeatureLevels {
                projs.append(try DDETRInputProjection(scope: model.scope("input_proj").scope(l), in: inC, out: d, downsample: true))
                inC = d
            }
        } else {
            projs.append(try DDETRInputProjection(scope: model.scope("input_proj").scope(0), in: outC.last!, out: d, downsample: false))
        }
        inputProj = projs
        levelEmbedding = DDETRLevelEmbedding(levelEmbed: try model.tensor("level_embed", shape: [c.numFeatureLevels, d], init: .normal(mean: 0, std: 1)))
        // Built in the reference's order of parameters (the seeded default init draws them in this order).
        var queries = try DDETRQueries(model, c)
        encoderLayers = try (0 ..< c.encoderLayers).map { try DDETREncoderLayer(scope: model.scope("encoder").scope("layers").scope($0), config: c) }
        let layers = try (0 ..< c.decoderLayers).map { try ddetrDecoderLayer(model.scope("decoder").scope("layers").scope($0), c) }

        // Heads, tied as transformers ties them (the saved file holds only the source of each tie):
        //   plain:      class_embed.i = class_embed.0,                bbox_embed.i = bbox_embed.0
        //   box refine: class_embed.i = class_embed.0,                bbox_embed.i = model.decoder.bbox_embed.i
        //   two-stage:  class_embed.i = model.decoder.class_embed.i,  bbox_embed.i = model.decoder.bbox_embed.i
        // A checkpoint that stores a head under its own name (older transformers) is read under that name.
        let numPred = c.twoStage ? c.decoderLayers + 1 : c.decoderLayers
        func resolve(_ own: String, _ canonical: String, probe: String) throws -> WeightScope {
            if own != canonical, store.has(own + "." + probe) {
                if store.has(canonical + "." + probe) { try DeformableDETR.touch(store, prefix: canonical) }
                return DeformableDETR.scope(root, own)
            }
            return DeformableDETR.scope(root, canonical)
        }
        var classEmbed: [Linear] = [], bboxEmbed: [MLP] = []
        for i in 0 ..< numPred {
            let classCanon = c.twoStage ? "model.decoder.class_embed.\(i)" : "class_embed.0"
            let boxCanon = (c.withBoxRefine || c.twoStage) ? "model.decoder.bbox_embed.\(i)" : "bbox_embed.0"
            let cs = try resolve("class_embed.\(i)", classCanon, probe: "weight")
            let bs = try resolve("bbox_embed.\(i)", boxCanon, probe: "layers.0.weight")
            classEmbed.append(try ddetrLinear(cs, in: d, out: c.numLabels))
            bboxEmbed.append(try ddetrPredictionHead(bs, input: d, hidden: d, output: 4, layers: 3))
        }
        if c.twoStage { (queries.proposalClass, queries.proposalBox) = (classEmbed[c.decoderLayers], bboxEmbed[c.decoderLayers]) }
        self.queries = queries
        let refines = c.withBoxRefine
        decoderLayers = layers.enumerated().map { i, layer in
            DDETRDecoderStep(layer: layer, refineBox: refines ? bboxEmbed[i] : nil, scoreHead: refines ? classEmbed[i] : nil, index: i)
        }
        // Each tied group counted once, as `model.parameters()` counts them.
        let classParams = classEmbed[0].parameterCount * (c.twoStage ? numPred : 1)
        let boxParams = bboxEmbed[0].parameterCount * (c.withBoxRefine || c.twoStage ? numPred : 1)
        classHead = DDETRHead(head: classEmbed[c.decoderLayers - 1], ownParameterCount: classParams, typeName: "Linear")
        boxHead = DDETRHead(head: bboxEmbed[c.decoderLayers - 1], ownParameterCount: boxParams, typeName: "MLPPredictionHead")
        if verify { try store.finish() }
    }

    static func scope(_ root: WeightScope, _ dotted: String) -> WeightScope {
        dotted.split(separator: ".").reduce(root) { $0.scope(String($1)) }
    }

    /// Marks every checkpoint key under `prefix` as read (a duplicate of a tied head).
    static func touch(_ store: WeightStore, prefix: String) throws {
        guard case .checkpoint(_, let tensors) = store.source else { return }
        for (k, t) in tensors where k.hasPrefix(prefix + ".") { _ = try store.tensor(k, shape: t.shape, init: .zeros) }
    }

    // MARK: - Shapes

    /// Each level's (H, W) for an input (h, w).
    public func levelShapes(inputHeight h: Int, inputWidth w: Int) -> [(Int, Int)] {
        guard let calls = shapePass(inputShape: [1, inputChannels, h, w])?.calls else { return [] }
        return calls.filter { $0.depth == 0 && $0.path.hasPrefix("input_proj.") && $0.output.count == 4 }.map { ($0.output[2], $0.output[3]) }
    }

    // MARK: - Forward

    /// What one forward pass leaves.
    struct Pass {
        var logits: Tensor, boxes: Tensor
        var memory: Tensor, hidden: Tensor
    }

    /// The forward pass (and, inside `Tensor.shapePass` with a recorder, the shape pass): each step a module of the
    /// tree, run under its path and recorded as a trace step, with its FLOPs from one shape pass of the whole model.
    func run(_ input: Tensor, trace: Trace?, recorder: CallRecorder? = nil) throws -> Pass {
        let c = config, d = c.dModel
        let root = ForwardContext(trace: trace, path: "", recorder: recorder)
        trace?.expectedSteps = 1 + backbone.stages.count + inputProj.count + 1 + encoderLayers.count + 1 + decoderLayers.count + 2
        let flops = trace == nil || recorder != nil ? [:] : stepFlops.value(for: input.shape) { TraceSteps.flops(shapePass(inputShape: input.shape)) }
        var step = TraceSteps(root: root, flops: flops)

        // 1. Backbone: stem, then the stages; keep the outputs of the stages feeding the projections.
        var x = try step("backbone.embedder", backbone.stem, [input]).main
        var features: [Tensor] = []
        for (s, stage) in backbone.stages.enumerated() {
            x = try step("backbone.stages.\(s)", stage, [x]).main
            if c.backbone.outStages.contains(s + 1) { features.append(x) }
        }

        // 2. Input projections (+ the extra stride-2 levels).
        var sources: [Tensor] = []
        for (l, proj) in inputProj.enumerated() {
            let src = l < features.count ? features[l] : (l == features.count ? features.last! : sources.last!)
            sources.append(try step("input_proj.\(l)", proj, [src]).main)
        }
        let grids = sources.map { GridSize($0.shape[2], $0.shape[3]) }
        let shapes = levelShapesTensor(grids)

        // 3. Flatten levels: tokens [S, d]; position = sine + level embedding; reference points = pixel centres.
        var memory = concat(sources.map { transpose($0.reshaped([d, $0.shape[2] * $0.shape[3]]), 0, 1) }, axis: 0)  // [S, d]
        let s = memory.shape[0]
        let pos = try step("level_embed", levelEmbedding, [shapes]).main                            // [1, S, d]
        let encoderReference = Tensor.isInShapePass ? Tensor(shapeOnly: [s, 2]) : DeformableDETR.encoderReferencePoints(grids)

        // 4. Encoder.
        for (i, layer) in encoderLayers.enumerated() {
            let out = try step("encoder.layers.\(i)", layer, [memory.reshaped([1, s, d]), pos, encoderReference.reshaped([1, s, 2]), shapes])
            memory = out.main.reshaped([s, d])
        }
        if let trace, trace.keepTensors {
            var start = 0
            for (l, g) in grids.enumerated() {
                let part = slice(memory, axis: 0, range: start ..< start + g.count)                 // [HW, d]
                root.probe("encoder output, level \(l) (\(g.height)x\(g.width))", .featureMap(transpose(part, 0, 1).reshaped([d, g.height, g.width])),
                           name: "encoder.output.\(l)")
                start += g.count
            }
        }

        // 5. Decoder queries: learned (query_position_embeddings split into query_pos and target) or two-stage proposals.
        if c.twoStage, c.twoStageNumProposals > s {
            throw FileFormatError(file: name, problem: "two_stage_num_proposals \(c.twoStageNumProposals) exceeds the \(s) encoder tokens of a \(input.shape[3])x\(input.shape[2]) input: use a larger input")
        }
        let chosen = try step(c.twoStage ? "two_stage" : "reference_points", queries, [memory.reshaped([1, s, d]), shapes])
        var reference = chosen.main.reshaped(Array(chosen.main.shape.dropFirst()))                 // [Q, 2 or 4]
        let queryPos = chosen.extras["query_pos"]!.reshaped([1, c.queries, d])

        // 6. Decoder, refining the reference points layer by layer when with_box_refine.
        var hidden = chosen.extras["target"]!.reshaped([1, c.queries, d])
        var lastReference = reference
        let memory3 = memory.reshaped([1, s, d])
        for (i, layer) in decoderLayers.enumerated() {
            let out = try step("decoder.layers.\(i)", layer, [hidden, queryPos, reference.reshaped([1] + reference.shape), memory3, shapes])
            hidden = out.main
            lastReference = reference
            if let refined = out.extras["reference"] { reference = refined }
        }

        // 7. Heads on the last layer: its reference is the one the last layer sampled around.
        let logits = try step("class_embed", classHead, [hidden]).main                            // [1, Q, C]
        let boxes = try step("bbox_embed", boxHead, [hidden, lastReference.reshaped([1] + lastReference.shape)]).main   // [1, Q, 4]
        return Pass(logits: logits, boxes: boxes, memory: memory3, hidden: hidden)
    }

    /// One shape pass of the whole model at an input shape: every module call with its shapes and FLOPs (nil when
    /// the input does not fit the model).
    func shapePass(inputShape: [Int]) -> CallRecorder? {
        let recorder = CallRecorder()
        guard (try? Tensor.shapePass({ try run(Tensor(shapeOnly: inputShape), trace: nil, recorder: recorder) })) != nil else { return nil }
        return recorder
    }

    public func forward(_ input: Tensor, trace: Trace?, postprocess: PostprocessOptions) throws -> ModelOutput {
        try validateInput(input.shape)
        let inH = input.shape[2], inW = input.shape[3]
        guard inH >= 32, inW >= 32 else {
            throw FileFormatError(file: name, problem: "input \(inW)x\(inH) is too small (at least 32x32)")
        }
        let pass = try run(input, trace: trace)
        var output = ModelOutput(
            output: concat([pass.boxes, sigmoid(pass.logits)], axis: 2),
            extras: ["logits": pass.logits, "pred_boxes": pass.boxes, "encoder.last_hidden_state": pass.memory,
                     "decoder.last_hidden_state": pass.hidden],
            detections: [])
        let o = postprocess.filled(from: postprocessDefaults)
        output.detections = detections(from: output, inputSize: GridSize(inH, inW), options: o)
        ForwardContext(trace: trace, path: "").probe(
            String(format: "detections: top %d of sigmoid(logits) over queries x classes, score above %.2f", o.maxDetections!, o.confidence!),
            .detections(output.detections), name: "detections")
        return output
    }

    /// transformers' `post_process_object_detection` on `output.output` (boxes, then sigmoid scores): the top
    /// `maxDetections` (top_k, 100) of the scores over queries x classes, kept when above `confidence` (0.5).
    public func detections(from output: ModelOutput, inputSize: GridSize, options: PostprocessOptions) -> [Detection] {
        let y = output.output
        guard y.rank == 3, y.shape[2] > 4 else { return [] }
        let o = options.filled(from: postprocessDefaults)
        let q = y.shape[1], nc = y.shape[2] - 4
        let rows = y.reshaped([q, 4 + nc])
        let boxes = slice(rows, axis: 1, range: 0 ..< 4), scores = slice(rows, axis: 1, range: 4 ..< 4 + nc)
        return DeformableDETR.postProcess(probabilities: scores, boxes: boxes, width: Float(inputSize.width), height: Float(inputSize.height),
                                          classNames: config.classNames, count: o.maxDetections!).filter { $0.score > o.confidence! }
    }

    /// Pixel-centre reference points of every level's tokens: ((x + 0.5) / W, (y + 0.5) / H) -> [S, 2].
    static func encoderReferencePoints(_ shapes: [GridSize]) -> Tensor {
        var out: [Float] = []
        out.reserveCapacity(shapes.reduce(0) { $0 + $1.count } * 2)
        for g in shapes {
            for y in 0 ..< g.height {
                for x in 0 ..< g.width {
                    out.append((Float(x) + 0.5) / Float(g.width))
                    out.append((Float(y) + 0.5) / Float(g.height))
                }
            }
        }
        return Tensor(shape: [out.count / 2, 2], data: out)
    }

    /// One refinement step: 4-d references: sigmoid(delta + inverse_sigmoid(ref)); 2-d: the centre is refined and
    /// the size taken from delta -> [Q, 4].
    static func refine(reference: Tensor, delta: Tensor) -> Tensor {
        if reference.shape[1] == 4 { return sigmoid(delta + inverseSigmoid(reference)) }
        if Tensor.isInShapePass { return Tensor(shapeOnly: delta.shape) }
        let q = reference.shape[0]
        let inv = inverseSigmoid(reference)
        var t = delta
        for i in 0 ..< q {
            t.data[i * 4] += inv.data[i * 2]
            t.data[i * 4 + 1] += inv.data[i * 2 + 1]
        }
        return sigmoid(t)
    }

    /// transformers' `post_process_object_detection` before its threshold: the top `count` of the class
    /// probabilities [Q, C] (sigmoid(logits)) over queries x classes, boxes (cx, cy, w, h) -> corners in pixels of a
    /// `width` x `height` input.
    static func postProcess(probabilities: Tensor, boxes: Tensor, width: Float, height: Float, classNames: [String], count: Int) -> [Detection] {
        let nc = probabilities.shape[1]
        let prob = probabilities.reshaped([probabilities.count])
        let k = min(count, prob.count)
        let top = topK(prob, k: k)
        var out: [Detection] = []
        out.reserveCapacity(k)
        for j in 0 ..< k {
            let flat = Int(top.indices.data[j])
            let qi = flat / nc, ci = flat % nc
            let cx = boxes.data[qi * 4], cy = boxes.data[qi * 4 + 1], bw = boxes.data[qi * 4 + 2], bh = boxes.data[qi * 4 + 3]
            out.append(Detection(classIndex: ci, className: ci < classNames.count ? classNames[ci] : "class \(ci)",
                                 score: top.values.data[j],
                                 x1: (cx - 0.5 * bw) * width, y1: (cy - 0.5 * bh) * height,
                                 x2: (cx + 0.5 * bw) * width, y2: (cy + 0.5 * bh) * height, source: qi))
        }
        return out
    }

    // MARK: - Parameters and layer table

    /// Parameters as transformers counts them (`sum(p.numel() for p in model.parameters())`: frozen batch norms
    /// are buffers, tied heads count once).
    public var parameterCount: Int {
        backbone.parameterCount + inputProj.reduce(0) { $0 + $1.parameterCount } + levelEmbedding.parameterCount
            + encoderLayers.reduce(0) { $0 + $1.parameterCount } + queries.parameterCount
            + decoderLayers.reduce(0) { $0 + $1.parameterCount } + classHead.parameterCount + boxHead.parameterCount
    }

    /// One row per step, from one shape pass of the model: FLOPs, output shape and sub-rows from the tree.
    public func layerTable(inputSize: GridSize) -> [LayerRow] {
        guard let recorder = shapePass(inputShape: [1, inputChannels, inputSize.height, inputSize.width]) else { return [] }
        let c = config, d = c.dModel
        func arguments(_ path: String) -> String {
            let parts = path.split(separator: ".")
            let i = parts.count > 1 ? Int(parts[parts.count - 1]) ?? 0 : 0
            switch parts.first.map(String.init) ?? "" {
            case "backbone" where path == "backbone.embedder": return "ResNetEmbeddings conv7x7/2 \(c.backbone.embeddingSize) + maxpool3x3/2"
            case "backbone": return "ResNetStage \(c.backbone.hiddenSizes[i]) x\(backbone.stages[i].blocks.count)"
            case "input_proj":
                let p = inputProj[i]
                return "Conv2d(\(p.inChannels), \(d), k\(p.kernel), s\(p.stride)) + GroupNorm(32)"
            case "level_embed": return "sine position + level embedding [\(c.numFeatureLevels), \(d)]"
            case "encoder":
                let a = encoderLayers[i].attention
                return "MSDeformAttn(d \(d), heads \(a.heads), levels \(a.levels), points \(a.pointsPerLevel[0])) + FFN \(c.encoderFFNDim)"
            case "two_stage": return "enc_output + norm, per-pixel proposals, top-\(c.queries), pos_trans + norm"
            case "reference_points": return "query_position_embeddings [\(c.queries), \(2 * d)] + Linear(\(d), 2) + sigmoid"
            case "decoder":
                return "self-attn(heads \(c.decoderHeads)) + MSDeformAttn(points \(decoderLayers[i].attention.pointsPerLevel[0])) + FFN \(c.decoderFFNDim)"
                    + (refines ? " + box refine" : "")
            case "class_embed": return "Linear(\(d), \(c.numLabels))" + (c.twoStage ? " x\(c.decoderLayers + 1)" : "")
            case "bbox_embed": return "MLP(\(d), \(d), 4, 3 layers)" + (c.withBoxRefine || c.twoStage ? " x\(c.twoStage ? c.decoderLayers + 1 : c.decoderLayers)" : "")
            default: return ""
            }
        }
        var rows: [LayerRow] = []
        for (i, call) in recorder.calls.enumerated() where call.depth == 0 {
            rows.append(LayerRow(index: rows.count, from: [-1], repeats: 1, params: call.parameters, module: call.path, arguments: arguments(call.path),
                                 flops: call.flops, outputShape: call.output, children: recorder.rows(under: i)))
        }
        return rows
    }
}
