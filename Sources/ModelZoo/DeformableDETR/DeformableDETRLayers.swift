import Foundation
import Tensor

/// transformers' `_init_weights` for the Deformable DETR linears: normal(0, init_std 0.02) weight, zero bias.
func ddetrLinear(_ w: WeightScope, in i: Int, out o: Int, weightInit: WeightInit? = nil, biasInit: WeightInit? = nil) throws -> Linear {
    try Linear(w, in: i, out: o, weightInit: weightInit ?? .normal(mean: 0, std: 0.02), biasInit: biasInit ?? .zeros)
}

/// transformers' `DeformableDetrMLPPredictionHead` (the box head): the shared `MLP` (`layers.{i}`, ReLU between),
/// initialised as transformers does.
func ddetrPredictionHead(_ w: WeightScope, input: Int, hidden: Int, output: Int, layers n: Int) throws -> MLP {
    let init02: (WeightInit, WeightInit) = (.normal(mean: 0, std: 0.02), .zeros)
    return try MLP(w, input: input, hidden: hidden, output: output, layers: n, inits: Dictionary(uniqueKeysWithValues: (0 ..< n).map { ($0, init02) }))
}

/// max(x + y, 0) in place into x (the ResNet residual sum and its ReLU in one pass); shapes must match.
func ddetrAddReluInPlace(_ x: inout Tensor, _ y: Tensor) {
    precondition(x.shape == y.shape, "residual sum: \(x.shape) and \(y.shape)")
    if x.isShapeOnly { return }
    y.data.withUnsafeBufferPointer { q in
        x.data.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = Swift.max(p[i] + q[i], 0) }
        }
    }
}

/// The multi-scale deformable attention of the Deformable DETR layers: the shared one, counting its sampling, with
/// transformers' class name.
func ddetrDeformableAttention(_ w: WeightScope, dModel: Int, heads: Int, levels: Int, points: Int) throws -> MSDeformAttention {
    try MSDeformAttention(w, dModel: dModel, levels: levels, heads: heads, points: points, countsSampling: true,
                          typeName: "DeformableDetrMultiscaleDeformableAttention")
}

/// The position every encoder token carries: the sine embedding of its cell plus its level's row of `level_embed`
/// (transformers' `DeformableDetrSinePositionEmbedding` + `level_embed`). Input: the level shapes [L, 2]; output
/// [1, S, d] over the levels' tokens in order. Parameters: `level_embed` [L, d].
struct DDETRLevelEmbedding: Module {
    let levelEmbed: Tensor
    var typeName: String { "PositionEmbedding+LevelEmbed" }
    var ownParameterCount: Int { levelEmbed.count }

    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let grids = try levelGrids(inputs[0])
        let d = levelEmbed.shape[1]
        guard grids.count == levelEmbed.shape[0] else {
            throw ModuleInputError(ctx.path, "\(grids.count) levels for \(levelEmbed.shape[0]) rows of level_embed")
        }
        let s = grids.reduce(0) { $0 + $1.count }
        if Tensor.isInShapePass { return LayerOutput(Tensor(shapeOnly: [1, s, d])) }
        let pos = grids.enumerated().map { l, g in
            DDETRSinePositionEmbedding.flattened(height: g.height, width: g.width, features: d / 2) + slice(levelEmbed, axis: 0, range: l ..< l + 1)
        }
        return LayerOutput(concat(pos, axis: 0).reshaped([1, s, d]))
    }
}

/// The decoder's queries and their initial references. Learned (`query_position_embeddings` [Q, 2d], split into the
/// query position and the target; `reference_points`, Linear(d, 2) + sigmoid, of the position) or, two-stage, the
/// proposals of transformers' `gen_encoder_output_proposals`: per-pixel anchors (centre, 0.05 * 2^level wide and high,
/// as logits; +inf outside (0.01, 0.99), their memory zeroed), `enc_output_norm(enc_output(memory))`, the last
/// class head's first logit as objectness, the top K tokens' boxes (last box head + anchor) as references, and
/// `pos_trans_norm(pos_trans(sine(boxes)))` split into the query position and the target.
/// Inputs: memory [1, S, d], level shapes [L, 2]. Output: the references [1, Q, 2 or 4]; extras `query_pos`,
/// `target` [Q, d] (two-stage: `scores` [K] too).
struct DDETRQueries: Module {
    let queryPositionEmbeddings: Tensor?
    let referencePoints: Child<Linear>?
    let encOutput: Child<Linear>?, encOutputNorm: Child<LayerNorm>?
    let posTrans: Child<Linear>?, posTransNorm: Child<LayerNorm>?
    /// Two-stage: the heads that score and box every token (`class_embed`/`bbox_embed` at index decoder_layers, set
    /// once the heads are built). Called, not children: they are tied to the decoder's heads and count with them.
    var proposalClass: Linear? = nil, proposalBox: MLP? = nil
    let dModel: Int, queries: Int
    var twoStage: Bool { queryPositionEmbeddings == nil }
    var typeName: String { twoStage ? "TwoStageProposals" : "Linear+sigmoid" }
    var ownParameterCount: Int { queryPositionEmbeddings?.count ?? 0 }

    init(_ model: WeightScope, _ c: DeformableDETRConfig) throws {
        let d = c.dModel
        dModel = d
        queries = c.queries
        if c.twoStage {
            queryPositionEmbeddings = nil
            referencePoints = nil
            encOutput = try Child(model, "enc_output") { try ddetrLinear($0, in: d, out: d) }
            encOutputNorm = try Child(model, "enc_output_norm") { try LayerNorm($0, dim: d) }
            posTrans = try Child(model, "pos_trans") { try ddetrLinear($0, in: 2 * d, out: 2 * d) }
            posTransNorm = try Child(model, "pos_trans_norm") { try LayerNorm($0, dim: 2 * d) }
        } else {
            queryPositionEmbeddings = try model.tensor("query_position_embeddings.weight", shape: [c.numQueries, 2 * d], init: .normal(mean: 0, std: 0.02))
            referencePoints = try Child(model, "reference_points") {
                try ddetrLinear($0, in: d, out: 2, weightInit: .xavierUniform(fanIn: d, fanOut: 2), biasInit: .zeros)
            }
            encOutput = nil; encOutputNorm = nil; posTrans = nil; posTransNorm = nil
        }
    }

    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let d = dModel, grids = try levelGrids(inputs[1])
        if let qe = queryPositionEmbeddings, let referencePoints {
            let queryPos = slice(qe, axis: 1, range: 0 ..< d), target = slice(qe, axis: 1, range: d ..< 2 * d)
            let reference = sigmoid(try referencePoints(queryPos, ctx))                              // [Q, 2]
            ctx.probe("initial reference points: learned, one per query (x, y)", .refinedBoxes(RefinedBoxes(boxes: reference, layer: -1, scores: nil)),
                      name: "init")
            return LayerOutput(reference.reshaped([1, queries, 2]), extras: ["query_pos": queryPos, "target": target])
        }
        guard let encOutput, let encOutputNorm, let posTrans, let posTransNorm, let proposalClass, let proposalBox else {
            throw ModuleInputError(ctx.path, "the two-stage proposals lack their layers")
        }
        let s = inputs[0].count / d, k = queries
        guard k <= s else { throw ModuleInputError(ctx.path, "two_stage_num_proposals \(k) exceeds the \(s) encoder tokens") }
        let (anchors, valid) = RTDetrQuerySelection.anchors(grids, invalid: .infinity)
        let objectQueries = try encOutputNorm(try encOutput(inputs[0].reshaped([s, d]) * valid, ctx), ctx)
        let classes = try ctx.call(proposalClass, key: "class_embed", [objectQueries]).main           // [S, C]
        let coordLogits = try ctx.call(proposalBox, key: "bbox_embed", [objectQueries]).main + anchors  // [S, 4]
        let objectness = slice(classes, axis: 1, range: 0 ..< 1).reshaped([s])
        let idx: [Int], topValues: Tensor
        if Tensor.isInShapePass {
            (idx, topValues) = (Array(0 ..< k), Tensor(shapeOnly: [k]))
        } else {
            let top = topK(objectness, k: k)
            (idx, topValues) = (top.indices.data.map { Int($0) }, top.values)
        }
        let topLogits = indexSelect(coordLogits, axis: 0, indices: idx)                               // [K, 4]
        let reference = sigmoid(topLogits), scores = sigmoid(topValues)
        let embedded = Tensor.isInShapePass ? Tensor(shapeOnly: [k, 2 * d]) : DDETRSinePositionEmbedding.proposals(topLogits, features: d / 2)
        let posOut = try posTransNorm(try posTrans(embedded, ctx), ctx)                               // [K, 2d]
        if ctx.trace?.keepTensors == true {
            ctx.probe("two-stage proposals: the top-\(k) encoder tokens by objectness",
                      .querySelection(QuerySelection(indices: idx, boxes: reference, scores: scores, levelShapes: grids)), name: "query_selection")
            let obj = sigmoid(objectness)
            var start = 0
            for (l, g) in grids.enumerated() {
                ctx.probe("two-stage objectness, level \(l)", .spatialWeights(slice(obj, axis: 0, range: start ..< start + g.count).reshaped([g.height, g.width])),
                          name: "objectness.\(l)")
                start += g.count
            }
            ctx.probe("initial reference boxes: the two-stage proposals (cx, cy, w, h)",
                      .refinedBoxes(RefinedBoxes(boxes: reference, layer: -1, scores: scores)), name: "init_reference_points")
        }
        return LayerOutput(reference.reshaped([1, k, 4]), extras: ["query_pos": slice(posOut, axis: 1, range: 0 ..< d),
                                                                  "target": slice(posOut, axis: 1, range: d ..< 2 * d), "scores": scores])
    }
}

/// A decoder layer as a step of the model: the layer (its children are the step's) and, with box refinement, the
/// refinement of the references by the layer's box head after it (`reference` in the extras; the `boxes` probe,
/// scored by the layer's class head). The heads are called, not children: they count with the heads.
struct DDETRDecoderStep: Module {
    let layer: DETRDecoderLayer
    let refineBox: MLP?, scoreHead: Linear?
    let index: Int
    var typeName: String { layer.typeName }
    var children: [(key: String, module: any Module)] { layer.children }
    var attention: MSDeformAttention { layer.attention }

    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        var out = try layer.forward(inputs, ctx)
        guard let refineBox else { return out }
        let d = out.main.shape.last!, q = out.main.count / d, r = inputs[2].shape.last!
        let hidden = out.main.reshaped([q, d])
        let delta = try ctx.call(refineBox, key: "bbox_embed", [hidden]).main                        // [Q, 4]
        let reference = DeformableDETR.refine(reference: inputs[2].reshaped([q, r]), delta: delta)
        out.extras["reference"] = reference
        if ctx.trace?.keepTensors == true, let scoreHead {
            ctx.probe("decoder layer \(index): refined reference boxes",
                      .refinedBoxes(RefinedBoxes(boxes: reference, layer: index, scores: sigmoid(max(scoreHead(hidden), axis: 1)))), name: "boxes")
        }
        return out
    }
}

/// A prediction head on the last decoder layer's output [1, Q, d]: `class_embed` (logits [1, Q, C]) or, with the
/// references [1, Q, 2 or 4] as a second input, `bbox_embed` (boxes [1, Q, 4] around them). Its parameters are those
/// of every head tied with it, each tied group once (`model.parameters()`).
struct DDETRHead: Module {
    let head: any Module
    let ownParameterCount: Int
    let typeName: String
    var children: [(key: String, module: any Module)] { [] }
    func ownFlops(inputs: [[Int]], output: [Int]) -> Double { head.ownFlops(inputs: Array(inputs.prefix(1)), output: output) }

    func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let y = try head.forward([inputs[0]], ctx).main
        guard inputs.count == 2 else { return LayerOutput(y) }
        let q = y.count / 4
        return LayerOutput(DeformableDETR.refine(reference: inputs[1].reshaped([q, inputs[1].shape.last!]), delta: y.reshaped([q, 4])).reshaped([1, q, 4]))
    }
}
