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
    let levelEmbed: Tensor
    let queryPositionEmbeddings: Tensor?
    let referencePoints: Linear?
    let encOutput: Linear?, encOutputNorm: LayerNorm?
    let posTrans: Linear?, posTransNorm: LayerNorm?
    let encoderLayers: [DDETREncoderLayer]
    let decoderLayers: [DETRDecoderLayer]
    /// The heads per prediction (decoder layers, + 1 for the two-stage proposals), tied as transformers ties them.
    let classEmbed: [Linear]
    let bboxEmbed: [MLP]
    /// Whether the decoder refines its reference points with `bboxEmbed` (with_box_refine).
    var refines: Bool { config.withBoxRefine }

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
        levelEmbed = try model.tensor("level_embed", shape: [c.numFeatureLevels, d], init: .normal(mean: 0, std: 1))

        if c.twoStage {
            queryPositionEmbeddings = nil
            referencePoints = nil
            encOutput = try ddetrLinear(model.scope("enc_output"), in: d, out: d)
            encOutputNorm = try LayerNorm(model.scope("enc_output_norm"), dim: d)
            posTrans = try ddetrLinear(model.scope("pos_trans"), in: 2 * d, out: 2 * d)
            posTransNorm = try LayerNorm(model.scope("pos_trans_norm"), dim: 2 * d)
        } else {
            queryPositionEmbeddings = try model.tensor("query_position_embeddings.weight", shape: [c.numQueries, 2 * d], init: .normal(mean: 0, std: 0.02))
            referencePoints = try ddetrLinear(model.scope("reference_points"), in: d, out: 2,
                                              weightInit: .xavierUniform(fanIn: d, fanOut: 2), biasInit: .zeros)
            encOutput = nil; encOutputNorm = nil; posTrans = nil; posTransNorm = nil
        }
        encoderLayers = try (0 ..< c.encoderLayers).map { try DDETREncoderLayer(scope: model.scope("encoder").scope("layers").scope($0), config: c) }
        decoderLayers = try (0 ..< c.decoderLayers).map { try ddetrDecoderLayer(model.scope("decoder").scope("layers").scope($0), c) }

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
        var classes: [Linear] = [], boxes: [MLP] = []
        for i in 0 ..< numPred {
            let classCanon = c.twoStage ? "model.decoder.class_embed.\(i)" : "class_embed.0"
            let boxCanon = (c.withBoxRefine || c.twoStage) ? "model.decoder.bbox_embed.\(i)" : "bbox_embed.0"
            let cs = try resolve("class_embed.\(i)", classCanon, probe: "weight")
            let bs = try resolve("bbox_embed.\(i)", boxCanon, probe: "layers.0.weight")
            classes.append(try ddetrLinear(cs, in: d, out: c.numLabels))
            boxes.append(try ddetrPredictionHead(bs, input: d, hidden: d, output: 4, layers: 3))
        }
        classEmbed = classes
        bboxEmbed = boxes
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
        var (sh, sw) = backbone.stem.outputSize(h, w)
        var stageShapes: [(Int, Int)] = []
        for stage in backbone.stages {
            for b in stage.blocks {
                for conv in b.module.convs { (sh, sw) = conv.module.outputSize(sh, sw) }
            }
            stageShapes.append((sh, sw))
        }
        var shapes = config.backbone.outStages.map { stageShapes[$0 - 1] }
        if config.numFeatureLevels > 1 {
            while shapes.count < config.numFeatureLevels {
                let (a, b) = shapes.last!
                shapes.append(inputProj[shapes.count].outputSize(a, b))
            }
        }
        return shapes
    }

    // MARK: - Forward

    public func forward(_ input: Tensor, trace: Trace?, postprocess: PostprocessOptions) throws -> ModelOutput {
        try validateInput(input.shape)
        let c = config, d = c.dModel
        let inH = input.shape[2], inW = input.shape[3]
        guard inH >= 32, inW >= 32 else {
            throw FileFormatError(file: name, problem: "input \(inW)x\(inH) is too small (at least 32x32)")
        }
        let ctx = ForwardContext(trace: trace, path: "")
        trace?.expectedSteps = 1 + backbone.stages.count + inputProj.count + 1 + encoderLayers.count + 1 + decoderLayers.count + 2
        var stepIndex = 0
        func record(_ path: String, _ type: String, _ inputs: [[Int]], _ out: Tensor, params: Int, flops: Double, since t0: DispatchTime) {
            guard let trace else { return }
            let secs = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
            trace.record(TraceStep(index: stepIndex, path: path, moduleType: type, inputShapes: inputs, outputShape: out.shape,
                                   output: trace.keepTensors ? out : nil, params: params, flops: flops, seconds: secs))
            stepIndex += 1
        }
        /// Runs a module of the tree as the step `path` and records it: params from the tree, FLOPs from a shape pass
        /// of it at these inputs.
        func step(_ m: any Module, _ path: String, _ inputs: [Tensor], type: String? = nil, extraFlops: Double = 0) throws -> LayerOutput {
            try ctx.checkCancelled()
            let t0 = DispatchTime.now()
            let out = try ForwardContext(trace: trace, path: path).call(m, key: nil, inputs)
            if trace != nil {
                let secs = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
                let flops = DeformableDETR.measure(m, path: path, inputs.map(DeformableDETR.shapeOf)).flops + extraFlops
                trace!.record(TraceStep(index: stepIndex, path: path, moduleType: type ?? m.typeName, inputShapes: inputs.map(\.shape),
                                        outputShape: out.main.shape, output: trace!.keepTensors ? out.main : nil, params: m.parameterCount,
                                        flops: flops, seconds: secs))
                stepIndex += 1
            }
            return out
        }

        // 1. Backbone: stem, then the stages; keep the outputs of the stages feeding the projections.
        var x = try step(backbone.stem, "backbone.embedder", [input]).main
        var features: [Tensor] = []
        for (s, stage) in backbone.stages.enumerated() {
            x = try step(stage, "backbone.stages.\(s)", [x]).main
            if c.backbone.outStages.contains(s + 1) { features.append(x) }
        }

        // 2. Input projections (+ the extra stride-2 levels).
        var sources: [Tensor] = []
        for (l, proj) in inputProj.enumerated() {
            let src = l < features.count ? features[l] : (l == features.count ? features.last! : sources.last!)
            sources.append(try step(proj, "input_proj.\(l)", [src]).main)
        }
        let levelShapes = sources.map { ($0.shape[2], $0.shape[3]) }
        let grids = levelShapes.map { GridSize($0.0, $0.1) }

        // 3. Flatten levels: tokens [S, d]; position = sine + level embedding; reference points = pixel centres.
        var t0 = DispatchTime.now()
        var tokens: [Tensor] = [], pos: [Tensor] = []
        for (l, src) in sources.enumerated() {
            let (h, w) = levelShapes[l]
            tokens.append(transpose(src.reshaped([d, h * w]), 0, 1))                       // [HW, d]
            let sine = DDETRSinePositionEmbedding.flattened(height: h, width: w, features: d / 2)
            pos.append(sine + slice(levelEmbed, axis: 0, range: l ..< l + 1))              // [HW, d]
        }
        var memory = concat(tokens, axis: 0)                                                // [S, d]
        let posFlat = concat(pos, axis: 0)
        let s = memory.shape[0]
        // The layer table's level_embed row: the position + level embedding every encoder query carries.
        record("level_embed", "PositionEmbedding+LevelEmbed", levelShapes.map { [1, d, $0.0, $0.1] }, posFlat.reshaped([1, s, d]),
               params: levelEmbed.count, flops: 0, since: t0)
        let encoderReference = DeformableDETR.encoderReferencePoints(levelShapes)          // [S, 2]
        let shapesTensor = levelShapesTensor(grids)

        // 4. Encoder.
        for (i, layer) in encoderLayers.enumerated() {
            let out = try step(layer, "encoder.layers.\(i)", [memory.reshaped([1, s, d]), posFlat.reshaped([1, s, d]),
                                                              encoderReference.reshaped([1, s, 2]), shapesTensor])
            memory = out.main.reshaped([s, d])
            let loc = out.extras["sampling_locations"]!, wts = out.extras["attention_weights"]!
            ctx.child("encoder.layers.\(i)").probe("encoder layer \(i): deformable self-attention sampling of every pixel query",
                .sampling(SamplingPoints(referencePoints: encoderReference, locations: loc.reshaped(Array(loc.shape.dropFirst())),
                                         weights: wts.reshaped(Array(wts.shape.dropFirst())), levelShapes: grids, queryLevels: grids)))
        }
        if let trace, trace.keepTensors {
            var start = 0
            for (l, (h, w)) in levelShapes.enumerated() {
                let part = slice(memory, axis: 0, range: start ..< start + h * w)          // [HW, d]
                ctx.probe("encoder output, level \(l) (\(h)x\(w))", .featureMap(transpose(part, 0, 1).reshaped([d, h, w])), name: "encoder.output.\(l)")
                start += h * w
            }
        }

        // 5. Decoder queries: learned (query_position_embeddings split into query_pos and target) or two-stage proposals.
        try ctx.checkCancelled()
        t0 = DispatchTime.now()
        var queryPos: Tensor, target: Tensor, reference: Tensor
        var initialScores: Tensor?
        let q = c.queries
        if c.twoStage {
            let (proposalLogits, oq) = twoStageProposalInputs(memory: memory, levelShapes: levelShapes)
            let encClass = classEmbed[c.decoderLayers](oq)                                  // [S, C]
            let coordLogits = bboxEmbed[c.decoderLayers](oq) + proposalLogits               // [S, 4]
            let objectness = slice(encClass, axis: 1, range: 0 ..< 1).reshaped([s])
            let k = min(c.twoStageNumProposals, s)
            guard k == q else {
                throw FileFormatError(file: name, problem: "two_stage_num_proposals \(q) exceeds the \(s) encoder tokens at input \(inW)x\(inH)")
            }
            let top = topK(objectness, k: k)
            let idx = top.indices.data.map { Int($0) }
            let topLogits = indexSelect(coordLogits, axis: 0, indices: idx)                 // [K, 4]
            reference = sigmoid(topLogits)
            initialScores = sigmoid(top.values)
            let posOut = posTransNorm!(posTrans!(DDETRSinePositionEmbedding.proposals(topLogits, features: d / 2)))  // [K, 2d]
            queryPos = slice(posOut, axis: 1, range: 0 ..< d)
            target = slice(posOut, axis: 1, range: d ..< 2 * d)
            if let trace, trace.keepTensors {
                ctx.probe("two-stage proposals: the top-\(k) encoder tokens by objectness",
                          .querySelection(QuerySelection(indices: idx, boxes: reference, scores: initialScores!, levelShapes: grids)),
                          name: "two_stage.query_selection")
                let obj = sigmoid(objectness)
                var start = 0
                for (l, (h, w)) in levelShapes.enumerated() {
                    ctx.probe("two-stage objectness, level \(l)", .spatialWeights(slice(obj, axis: 0, range: start ..< start + h * w).reshaped([h, w])),
                              name: "two_stage.objectness.\(l)")
                    start += h * w
                }
            }
            record("two_stage", "TwoStageProposals", [[1, s, d]], reference.reshaped([1, k, 4]),
                   params: twoStageParameters, flops: twoStageFlops(tokens: s, proposals: k), since: t0)
        } else {
            let qe = queryPositionEmbeddings!
            queryPos = slice(qe, axis: 1, range: 0 ..< d)
            target = slice(qe, axis: 1, range: d ..< 2 * d)
            reference = sigmoid(referencePoints!(queryPos))                                 // [Q, 2]
            record("reference_points", "Linear+sigmoid", [[q, d]], reference.reshaped([1, q, 2]),
                   params: qe.count + referencePoints!.parameterCount, flops: referencePoints!.flops(inputShape: [q, d]), since: t0)
        }
        ctx.probe(c.twoStage ? "initial reference boxes: the two-stage proposals (cx, cy, w, h)" : "initial reference points: learned, one per query (x, y)",
                  .refinedBoxes(RefinedBoxes(boxes: reference, layer: -1, scores: initialScores)),
                  name: c.twoStage ? "two_stage.init_reference_points" : "reference_points.init")

        // 6. Decoder, refining the reference points layer by layer when with_box_refine.
        var hidden = target
        var lastReference = reference
        let memory3 = memory.reshaped([1, s, d]), queryPos3 = queryPos.reshaped([1, q, d])
        for (i, layer) in decoderLayers.enumerated() {
            let out = try step(layer, "decoder.layers.\(i)", [hidden.reshaped([1, q, d]), queryPos3, reference.reshaped([1] + reference.shape),
                                                              memory3, shapesTensor],
                               extraFlops: refines ? bboxEmbed[i].flops(inputShape: [q, d]) : 0)
            hidden = out.main.reshaped([q, d])
            let lctx = ctx.child("decoder.layers.\(i)")
            let loc = out.extras["sampling_locations"]!, wts = out.extras["attention_weights"]!
            lctx.probe("decoder layer \(i): cross-attention sampling of each query",
                .sampling(SamplingPoints(referencePoints: reference, locations: loc.reshaped(Array(loc.shape.dropFirst())),
                                         weights: wts.reshaped(Array(wts.shape.dropFirst())), levelShapes: grids)))
            lastReference = reference
            if refines {
                let delta = bboxEmbed[i](hidden)                                            // [Q, 4]
                reference = DeformableDETR.refine(reference: reference, delta: delta)
                // The layer's best-class score from its own class head (with box refinement every layer has one).
                lctx.probe("decoder layer \(i): refined reference boxes",
                           .refinedBoxes(RefinedBoxes(boxes: reference, layer: i, scores: sigmoid(max(classEmbed[i](hidden), axis: 1)))), name: "boxes")
            }
        }

        // 7. Heads on the last layer: its reference is the one the last layer sampled around.
        try ctx.checkCancelled()
        t0 = DispatchTime.now()
        let last = c.decoderLayers - 1
        let logits = classEmbed[last](hidden)                                               // [Q, C]
        record("class_embed", "Linear", [[1, q, d]], logits.reshaped([1, q, c.numLabels]), params: uniqueClassParameters,
               flops: classEmbed[last].flops(inputShape: [q, d]), since: t0)
        t0 = DispatchTime.now()
        let predBoxes = DeformableDETR.boxes(delta: bboxEmbed[last](hidden), reference: lastReference)   // [Q, 4]
        record("bbox_embed", "MLPPredictionHead", [[1, q, d]], predBoxes.reshaped([1, q, 4]), params: uniqueBoxParameters,
               flops: bboxEmbed[last].flops(inputShape: [q, d]), since: t0)

        let scores = sigmoid(logits)
        var output = ModelOutput(
            output: concat([predBoxes, scores], axis: 1).reshaped([1, q, 4 + c.numLabels]),
            extras: [
                "logits": logits.reshaped([1, q, c.numLabels]),
                "pred_boxes": predBoxes.reshaped([1, q, 4]),
                "encoder.last_hidden_state": memory.reshaped([1, s, d]),
                "decoder.last_hidden_state": hidden.reshaped([1, q, d]),
            ],
            detections: [])
        let o = postprocess.filled(from: postprocessDefaults)
        output.detections = detections(from: output, inputSize: GridSize(inH, inW), options: o)
        ctx.probe(String(format: "detections: top %d of sigmoid(logits) over queries x classes, score above %.2f", o.maxDetections!, o.confidence!),
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
    static func encoderReferencePoints(_ shapes: [(Int, Int)]) -> Tensor {
        var out: [Float] = []
        out.reserveCapacity(shapes.reduce(0) { $0 + $1.0 * $1.1 } * 2)
        for (h, w) in shapes {
            for y in 0 ..< h {
                for x in 0 ..< w {
                    out.append((Float(x) + 0.5) / Float(w))
                    out.append((Float(y) + 0.5) / Float(h))
                }
            }
        }
        return Tensor(shape: [out.count / 2, 2], data: out)
    }

    /// Two-stage inputs (transformers' `gen_encoder_output_proposals`): per-pixel proposals
    /// (centre, 0.05 * 2^level wide and high) as logits, +inf where a coordinate is outside (0.01, 0.99); the
    /// object queries `enc_output_norm(enc_output(memory))` with invalid rows zeroed first.
    func twoStageProposalInputs(memory: Tensor, levelShapes: [(Int, Int)]) -> (Tensor, Tensor) {
        let s = memory.shape[0], d = config.dModel
        var props = [Float](repeating: 0, count: s * 4)
        var valid = [Bool](repeating: true, count: s)
        var n = 0
        for (l, (h, w)) in levelShapes.enumerated() {
            let wh = Float(0.05) * Float(Foundation.pow(2.0, Double(l)))
            for y in 0 ..< h {
                for x in 0 ..< w {
                    let p = [(Float(x) + 0.5) / Float(w), (Float(y) + 0.5) / Float(h), wh, wh]
                    valid[n] = p.allSatisfy { $0 > 0.01 && $0 < 0.99 }
                    for j in 0 ..< 4 { props[n * 4 + j] = valid[n] ? Foundation.log(p[j] / (1 - p[j])) : Float.infinity }
                    n += 1
                }
            }
        }
        var masked = memory
        masked.data.withUnsafeMutableBufferPointer { m in
            for i in 0 ..< s where !valid[i] { for j in 0 ..< d { m[i * d + j] = 0 } }
        }
        let oq = encOutputNorm!(encOutput!(masked))
        return (Tensor(shape: [s, 4], data: props), oq)
    }

    /// One refinement step: 4-d references: sigmoid(delta + inverse_sigmoid(ref)); 2-d: the centre is refined and
    /// the size taken from delta -> [Q, 4].
    static func refine(reference: Tensor, delta: Tensor) -> Tensor {
        if reference.shape[1] == 4 { return sigmoid(delta + inverseSigmoid(reference)) }
        let q = reference.shape[0]
        let inv = inverseSigmoid(reference)
        var t = delta
        for i in 0 ..< q {
            t.data[i * 4] += inv.data[i * 2]
            t.data[i * 4 + 1] += inv.data[i * 2 + 1]
        }
        return sigmoid(t)
    }

    /// Boxes from the head's delta and the layer's reference (transformers' `DeformableDetrForObjectDetection`).
    static func boxes(delta: Tensor, reference: Tensor) -> Tensor { refine(reference: reference, delta: delta) }

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

    /// Parameters of the class heads, each tied group counted once (as `model.parameters()` does).
    var uniqueClassParameters: Int {
        let per = classEmbed.first?.parameterCount ?? 0
        return config.twoStage ? per * classEmbed.count : per
    }

    var uniqueBoxParameters: Int {
        let per = bboxEmbed.first?.parameterCount ?? 0
        return (config.withBoxRefine || config.twoStage) ? per * bboxEmbed.count : per
    }

    /// Parameters as transformers counts them (`sum(p.numel() for p in model.parameters())`: frozen batch norms
    /// are buffers, tied heads count once).
    public var parameterCount: Int {
        var n = backbone.parameterCount + inputProj.reduce(0) { $0 + $1.parameterCount } + levelEmbed.count
        n += encoderLayers.reduce(0) { $0 + $1.parameterCount } + decoderLayers.reduce(0) { $0 + $1.parameterCount }
        if let qe = queryPositionEmbeddings { n += qe.count }
        if let r = referencePoints { n += r.parameterCount }
        if config.twoStage { n += twoStageParameters }
        return n + uniqueClassParameters + uniqueBoxParameters
    }

    var twoStageParameters: Int {
        guard let encOutput, let encOutputNorm, let posTrans, let posTransNorm else { return 0 }
        return encOutput.parameterCount + encOutputNorm.parameterCount + posTrans.parameterCount + posTransNorm.parameterCount
    }

    /// The two-stage proposals: enc_output + its norm and the proposal heads over every token, pos_trans + its norm
    /// over the selected proposals.
    func twoStageFlops(tokens s: Int, proposals k: Int) -> Double {
        guard let encOutput, let encOutputNorm, let posTrans, let posTransNorm else { return 0 }
        let d = config.dModel
        return encOutput.flops(inputShape: [s, d]) + encOutputNorm.flops(inputShape: [s, d]) + posTrans.flops(inputShape: [k, 2 * d])
            + posTransNorm.flops(inputShape: [k, 2 * d]) + bboxEmbed[config.decoderLayers].flops(inputShape: [s, d])
            + classEmbed[config.decoderLayers].flops(inputShape: [s, d])
    }

    /// A tensor of `t`'s shape for a shape pass: shape-only, but the level-shapes input ([L, 2], read by the layers)
    /// kept with its values.
    static func shapeOf(_ t: Tensor) -> Tensor {
        t.rank == 2 && t.shape[1] == 2 && t.count <= 16 ? t : Tensor(shapeOnly: t.shape)
    }

    /// FLOPs, output shape and sub-rows of one module on these inputs (shape-only, see `shapeOf`), from a shape pass
    /// of it alone under `path`.
    static func measure(_ m: any Module, path: String, _ inputs: [Tensor]) -> (flops: Double, output: [Int], rows: [LayerRow]) {
        let recorder = CallRecorder()
        let ctx = ForwardContext(trace: nil, path: path, recorder: recorder)
        guard (try? Tensor.shapePass({ try ctx.call(m, key: nil, inputs) })) != nil, let call = recorder.calls.first else { return (0, [], []) }
        return (call.flops, call.output, recorder.rows(under: 0))
    }

    public func layerTable(inputSize: GridSize) -> [LayerRow] {
        let c = config, d = c.dModel
        var rows: [LayerRow] = []
        func add(_ module: String, _ args: String, params: Int, flops: Double, shape: [Int], children: [LayerRow] = []) {
            rows.append(LayerRow(index: rows.count, from: [-1], repeats: 1, params: params, module: module, arguments: args,
                                 flops: flops, outputShape: shape, children: children))
        }
        /// A row measured by the shape pass: FLOPs, output shape and sub-rows from the tree.
        @discardableResult
        func add(_ module: String, _ args: String, _ m: any Module, _ inputs: [Tensor], extraFlops: Double = 0) -> [Int] {
            let r = DeformableDETR.measure(m, path: module, inputs)
            add(module, args, params: m.parameterCount, flops: r.flops + extraFlops, shape: r.output, children: r.rows)
            return r.output
        }
        var x = add("backbone.embedder", "ResNetEmbeddings conv7x7/2 \(c.backbone.embeddingSize) + maxpool3x3/2", backbone.stem,
                    [Tensor(shapeOnly: [1, c.backbone.numChannels, inputSize.height, inputSize.width])])
        var stageOutputs: [[Int]] = []
        for (s, stage) in backbone.stages.enumerated() {
            x = add("backbone.stages.\(s)", "ResNetStage \(c.backbone.hiddenSizes[s]) x\(stage.blocks.count)", stage, [Tensor(shapeOnly: x)])
            stageOutputs.append(x)
        }
        let shapes = levelShapes(inputHeight: inputSize.height, inputWidth: inputSize.width)
        let outs = c.backbone.outStages.map { stageOutputs[$0 - 1] }
        var last: [Int] = []
        for (l, proj) in inputProj.enumerated() {
            let src = l < outs.count ? outs[l] : (l == outs.count ? outs.last! : last)
            last = add("input_proj.\(l)", "Conv2d(\(proj.inChannels), \(d), k\(proj.kernel), s\(proj.stride)) + GroupNorm(32)", proj, [Tensor(shapeOnly: src)])
        }
        let s = shapes.reduce(0) { $0 + $1.0 * $1.1 }
        let levels = levelShapesTensor(shapes.map { GridSize($0.0, $0.1) })
        add("level_embed", "sine position + level embedding [\(c.numFeatureLevels), \(d)]", params: levelEmbed.count, flops: 0, shape: [1, s, d])
        for (i, layer) in encoderLayers.enumerated() {
            let a = layer.attention
            add("encoder.layers.\(i)", "MSDeformAttn(d \(d), heads \(a.heads), levels \(a.levels), points \(a.pointsPerLevel[0])) + FFN \(c.encoderFFNDim)",
                layer, [Tensor(shapeOnly: [1, s, d]), Tensor(shapeOnly: [1, s, d]), Tensor(shapeOnly: [1, s, 2]), levels])
        }
        let q = c.queries
        if c.twoStage {
            add("two_stage", "enc_output + norm, per-pixel proposals, top-\(q), pos_trans + norm", params: twoStageParameters,
                flops: twoStageFlops(tokens: s, proposals: q), shape: [1, q, 4])
        } else {
            add("reference_points", "query_position_embeddings [\(q), \(2 * d)] + Linear(\(d), 2) + sigmoid",
                params: queryPositionEmbeddings!.count + referencePoints!.parameterCount, flops: referencePoints!.flops(inputShape: [q, d]), shape: [1, q, 2])
        }
        let refDims = c.twoStage ? 4 : 2
        for (i, layer) in decoderLayers.enumerated() {
            let a = layer.attention
            add("decoder.layers.\(i)", "self-attn(heads \(c.decoderHeads)) + MSDeformAttn(points \(a.pointsPerLevel[0])) + FFN \(c.decoderFFNDim)\(refines ? " + box refine" : "")",
                layer, [Tensor(shapeOnly: [1, q, d]), Tensor(shapeOnly: [1, q, d]), Tensor(shapeOnly: [1, q, refines && i > 0 ? 4 : refDims]),
                        Tensor(shapeOnly: [1, s, d]), levels],
                extraFlops: refines ? bboxEmbed[i].flops(inputShape: [q, d]) : 0)
        }
        add("class_embed", "Linear(\(d), \(c.numLabels))\(classEmbed.count > 1 && c.twoStage ? " x\(classEmbed.count)" : "")", params: uniqueClassParameters,
            flops: classEmbed[c.decoderLayers - 1].flops(inputShape: [q, d]), shape: [1, q, c.numLabels])
        add("bbox_embed", "MLP(\(d), \(d), 4, 3 layers)\((c.withBoxRefine || c.twoStage) ? " x\(bboxEmbed.count)" : "")", params: uniqueBoxParameters,
            flops: bboxEmbed[c.decoderLayers - 1].flops(inputShape: [q, d]), shape: [1, q, 4])
        return rows
    }
}
