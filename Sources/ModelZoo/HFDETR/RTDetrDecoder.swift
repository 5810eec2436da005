import Foundation
import Tensor

// RT-DETR's decoder and query selection in transformers' layout (`RTDetrDecoder`, `RTDetrDecoderLayer`,
// `RTDetrModel`'s two-stage selection; models/rt_detr/modeling_rt_detr.py).

/// `RTDetrDecoderLayer` (RT-DETRv2's too) and `DFineDecoderLayer`: the shared `DETRDecoderLayer` with
/// RT-DETRv2's and D-FINE's attention options (per-level point counts, `decoder_offset_scale`, the `discrete` method,
/// the `n_points_scale` / `num_points_scale` buffer; D-FINE's without value or output projection) and D-FINE's gate.
func rtDetrDecoderLayer(_ w: WeightScope, _ c: RTDetrConfig) throws -> DETRDecoderLayer {
    let v2 = c.modelType == "rt_detr_v2", fine = c.isDFine
    let options = DETRDecoderLayer.Options(dModel: c.dModel, heads: c.decoderAttentionHeads, ffnDim: c.decoderFFNDim,
                                           activation: c.decoderActivation, layerNormEps: c.layerNormEps, initStd: c.initializerRange,
                                           selfAttentionType: "RTDetrSelfAttention", gated: fine,
                                           typeName: fine ? "DFineDecoderLayer" : "RTDetrDecoderLayer")
    return try DETRDecoderLayer(w, options) {
        try MSDeformAttention($0, dModel: c.dModel, heads: c.decoderAttentionHeads, pointsPerLevel: c.decoderPointsPerLevel,
                              offsetScale: v2 || fine ? c.decoderOffsetScale : 0.5, method: c.decoderMethod == "discrete" ? .discrete : .bilinear,
                              valueProjection: !fine, outputProjection: !fine,
                              pointsScaleKey: v2 ? "n_points_scale" : fine ? "num_points_scale" : nil,
                              typeName: fine ? "DFineMultiscaleDeformableAttention"
                                  : v2 ? "RTDetrV2MultiscaleDeformableAttention" : "RTDetrMultiscaleDeformableAttention")
    }
}

/// `RTDetrDecoder` with its heads: before each layer `query_pos_head` (MLP 4 -> 2d -> d) embeds the current boxes;
/// after it `bbox_embed.{l}` refines them, `box = sigmoid(delta + inverse_sigmoid(box))`, and `class_embed.{l}` scores
/// the queries. Inputs: target [Q, d], initial box logits [Q, 4], memory [S, d], level shapes [L, 2]; output the last layer's logits
/// [Q, C], extras `pred_boxes` [Q, 4], `boxes.{l}` and `logits.{l}` per layer.
/// Probes under `layers.{l}`: `boxes` the refined boxes after the layer [Q, 4], the layer's own probes.
public struct RTDetrDecoder: Module {
    let layers: [Child<DETRDecoderLayer>]
    let queryPosHead: Child<MLP>
    let classEmbed: [Child<Linear>]
    let bboxEmbed: [Child<MLP>]
    public var typeName: String { "RTDetrDecoder" }

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let d = c.dModel, n = c.decoderLayers
        layers = try [Child](w, "layers", count: n) { _, s in try rtDetrDecoderLayer(s, c) }
        queryPosHead = try Child(w, "query_pos_head") { try MLP($0, input: 4, hidden: 2 * d, output: d, layers: 2) }
        // transformers' init: class heads xavier with the prior-probability bias; the box heads' last layer zero.
        classEmbed = try [Child](w, "class_embed", count: n) { _, s in
            try Linear(s, in: d, out: c.numLabels, weightInit: .xavierUniform(fanIn: d, fanOut: c.numLabels), biasInit: .constant(c.priorBias))
        }
        bboxEmbed = try [Child](w, "bbox_embed", count: n) { _, s in
            try MLP(s, input: d, hidden: d, output: 4, layers: 3, inits: [2: (.zeros, .zeros)])
        }
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        var h = inputs[0], memory = inputs[2]
        var ref = sigmoid(inputs[1])
        var extras: [String: Tensor] = [:]
        var logits = h
        memory = memory.reshaped([memory.shape[0], memory.shape[1]])
        for (i, layer) in layers.enumerated() {
            try ctx.checkCancelled()
            let pos = try queryPosHead(ref, ctx)
            h = try layer([h, pos, ref, memory, inputs[3]], ctx).main
            let delta = try bboxEmbed[i](h, ctx)
            ref = sigmoid(delta + inverseSigmoid(ref))
            logits = try classEmbed[i](h, ctx)
            extras["boxes.\(i)"] = ref
            extras["logits.\(i)"] = logits
            ctx.child(layer.key).probe("decoder layer \(i): boxes after the layer",
                                       .refinedBoxes(RefinedBoxes(boxes: ref, layer: i, scores: sigmoid(max(logits, axis: 1)))), name: "boxes")
        }
        extras["pred_boxes"] = ref
        return LayerOutput(logits, extras: extras)
    }
}

/// RT-DETR's query selection (`RTDetrModel.forward`, two-stage): anchors at every cell of every level (size 0.05 x
/// 2^level, logit space; cells with a coordinate outside (0.01, 0.99) invalid: their memory zeroed, their anchor the
/// largest float), `enc_output` (Linear + LayerNorm), `enc_score_head`, `enc_bbox_head` + anchor; the num_queries
/// tokens with the highest best-class score become the queries (their `enc_output` features, or the learned
/// `weight_embedding` with learn_initial_query) and their boxes the initial references (logits).
/// Inputs: memory [S, d], level shapes [L, 2]. Output: target [Q, d]; extras `reference_logits` [Q, 4], `indices` [Q] (into S),
/// `enc_outputs_class` [S, C], `enc_outputs_coord_logits` [S, 4].
public struct RTDetrQuerySelection: Module {
    let encOutput: Child<Linear>
    let encOutputNorm: Child<LayerNorm>
    let encScoreHead: Child<Linear>
    let encBBoxHead: Child<MLP>
    let weightEmbedding: Tensor?
    let queries: Int
    let anchorImageSize: (Int, Int)?
    let featStrides: [Int]
    public var typeName: String { "RTDetrQuerySelection" }
    public var ownParameterCount: Int { weightEmbedding?.count ?? 0 }

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let d = c.dModel, std = c.initializerRange
        encOutput = try Child(w, "enc_output.0") { try Linear($0, in: d, out: d, weightInit: .normal(mean: 0, std: std), biasInit: .zeros) }
        encOutputNorm = try Child(w, "enc_output.1") { try LayerNorm($0, dim: d, eps: c.layerNormEps) }
        encScoreHead = try Child(w, "enc_score_head") {
            try Linear($0, in: d, out: c.numLabels, weightInit: .xavierUniform(fanIn: d, fanOut: c.numLabels), biasInit: .constant(c.priorBias))
        }
        encBBoxHead = try Child(w, "enc_bbox_head") {
            try MLP($0, input: d, hidden: d, output: 4, layers: 3,
                    inits: Dictionary(uniqueKeysWithValues: (0 ..< 3).map { ($0, (WeightInit.normal(mean: 0, std: std), WeightInit.zeros)) }))
        }
        weightEmbedding = c.learnInitialQuery
            ? try w.tensor("weight_embedding.weight", shape: [c.numQueries, d], init: .xavierUniform(fanIn: d, fanOut: c.numQueries)) : nil
        queries = c.numQueries
        anchorImageSize = c.anchorImageSize
        featStrides = c.featStrides
    }

    /// Anchors [S, 4] (logits; invalid ones `invalid`: RT-DETR's the largest float, Deformable DETR's +inf) and the
    /// valid mask [S, 1] for these level shapes.
    public static func anchors(_ shapes: [GridSize], gridSize: Float = 0.05, invalid: Float = .greatestFiniteMagnitude) -> (Tensor, Tensor) {
        var a: [Float] = [], valid: [Float] = []
        for (l, s) in shapes.enumerated() {
            let wh = gridSize * Float(1 << l)
            for y in 0 ..< s.height {
                for x in 0 ..< s.width {
                    let box = [(Float(x) + 0.5) / Float(s.width), (Float(y) + 0.5) / Float(s.height), wh, wh]
                    let ok = box.allSatisfy { $0 > 0.01 && $0 < 0.99 }
                    valid.append(ok ? 1 : 0)
                    a += box.map { ok ? Foundation.log($0 / (1 - $0)) : invalid }
                }
            }
        }
        return (Tensor(shape: [valid.count, 4], data: a), Tensor(shape: [valid.count, 1], data: valid))
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let source = inputs[0], levelShapes = try levelGrids(inputs[1])
        let s = source.shape[0]
        var shapes = levelShapes
        if let (ih, iw) = anchorImageSize {
            shapes = featStrides.map { GridSize(ih / $0, iw / $0) }
            while shapes.count < levelShapes.count { shapes.append(levelShapes[shapes.count]) }
            guard shapes == levelShapes else {
                throw ModuleInputError(ctx.path, "anchor_image_size \(ih)x\(iw) gives levels \(shapes.map { "\($0.height)x\($0.width)" }) but the input gives \(levelShapes.map { "\($0.height)x\($0.width)" }): run at \(iw)x\(ih)")
            }
        }
        guard queries <= s else {
            throw ModuleInputError(ctx.path, "num_queries (\(queries)) is more than the \(s) encoder tokens of this input: use a larger input")
        }
        let (anchors, valid) = RTDetrQuerySelection.anchors(shapes)
        let memory = source * valid
        let out = try encOutputNorm(try encOutput(memory, ctx), ctx)
        let cls = try encScoreHead(out, ctx)                                                  // [S, C]
        let coord = try encBBoxHead(out, ctx) + anchors                                       // [S, 4]
        let idx: [Int]
        if Tensor.isInShapePass {
            idx = Array(0 ..< queries)
        } else {
            idx = topK(max(cls, axis: 1), k: queries).indices.data.map { Int($0) }
        }
        let refLogits = indexSelect(coord, axis: 0, indices: idx)                              // [Q, 4]
        let target = weightEmbedding ?? indexSelect(out, axis: 0, indices: idx)                // [Q, d]
        let indices = Tensor(shape: [idx.count], data: idx.map(Float.init))
        if ctx.trace?.keepTensors == true {
            let score = sigmoid(max(cls, axis: 1))
            let initial = sigmoid(refLogits), chosenScores = indexSelect(score, axis: 0, indices: idx)
            ctx.probe("query selection: the top-\(queries) encoder tokens", .querySelection(
                QuerySelection(indices: idx, boxes: initial, scores: chosenScores, levelShapes: shapes)), name: "query_selection")
            ctx.probe("initial boxes of the \(queries) queries", .refinedBoxes(RefinedBoxes(boxes: initial, layer: -1, scores: chosenScores)),
                      name: "boxes")
            var start = 0
            for (l, g) in shapes.enumerated() {
                ctx.probe("encoder best-class score, level \(l)", .spatialWeights(slice(score, axis: 0, range: start ..< start + g.count).reshaped([g.height, g.width])),
                          name: "scores.\(l)")
                start += g.count
            }
        }
        return LayerOutput(target, extras: ["reference_logits": refLogits, "indices": indices, "enc_outputs_class": cls,
                                            "enc_outputs_coord_logits": coord])
    }
}
