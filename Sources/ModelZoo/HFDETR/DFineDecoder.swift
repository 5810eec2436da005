import Foundation
import Tensor

// D-FINE's decoder in transformers' layout (`DFineDecoder`, `DFineGate`, `DFineLQE`, `DFineIntegral`,
// `weighting_function`, `distance2bbox`; models/d_fine/modeling_d_fine.py). Peng et al., "D-FINE: Redefine
// Regression Task in DETRs as Fine-grained Distribution Refinement" (arXiv 2410.13842), Peterande/D-FINE.

/// `DFineGate`: gates = sigmoid(`gate`([residual, hidden])) split in two, LayerNorm (`norm`) of
/// gate1 * residual + gate2 * hidden. Inputs residual [Q, d], hidden [Q, d] -> [Q, d]. Default init: the gate's weight
/// and bias zero (both gates 0.5).
public struct DFineGate: Module {
    let gate: Child<Linear>
    let norm: Child<LayerNorm>
    public var typeName: String { "DFineGate" }

    init(_ w: WeightScope, dModel d: Int, eps: Float) throws {
        gate = try Child(w, "gate") { try Linear($0, in: 2 * d, out: 2 * d, weightInit: .zeros, biasInit: .zeros) }
        norm = try Child(w, "norm") { try LayerNorm($0, dim: d, eps: eps) }
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let residual = inputs[0], hidden = inputs[1], d = residual.shape[1]
        let gates = sigmoid(try gate(concat([residual, hidden], axis: 1), ctx))             // [Q, 2d]
        let g = split(gates, sizes: [d, d], axis: 1)
        return LayerOutput(try norm(g[0] * residual + g[1] * hidden, ctx))
    }
}

/// `DFineLQE`, the localisation quality estimate: per edge the `top_prob_values` largest bin probabilities and
/// their mean, [Q, 4 * (k + 1)], through `reg_conf` (an MLP, ReLU between, last layer zero at init), added to the
/// class scores. Inputs scores [Q, C], corner logits [Q, 4 * bins] -> [Q, C].
public struct DFineLQE: Module {
    let regConf: Child<MLP>
    let topValues: Int, bins: Int
    public var typeName: String { "DFineLQE" }

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let k = c.topProbValues, n = c.lqeLayers, std = c.initializerRange
        var inits: [Int: (WeightInit, WeightInit)] = Dictionary(uniqueKeysWithValues: (0 ..< n).map { ($0, (WeightInit.normal(mean: 0, std: std), WeightInit.zeros)) })
        inits[n - 1] = (.zeros, .zeros)
        regConf = try Child(w, "reg_conf") { try MLP($0, input: 4 * (k + 1), hidden: c.lqeHiddenDim, output: 1, layers: n, inits: inits) }
        topValues = k
        bins = c.maxNumBins + 1
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let scores = inputs[0], q = inputs[1].shape[0]
        let prob = softmax(inputs[1].reshaped([q, 4, bins]), axis: -1)
        return LayerOutput(scores + (try regConf(DFineLQE.statistics(prob, k: topValues), ctx)))
    }

    /// The statistics [Q, 4 * (k + 1)] of the distributions [Q, 4, bins]: each edge's k largest probabilities and their mean.
    static func statistics(_ prob: Tensor, k: Int) -> Tensor {
        let top = topK(prob, k: k, axis: -1).values                                              // [Q, 4, k]
        return concat([top, mean(top, axis: -1, keepDims: true)], axis: -1).reshaped([prob.shape[0], 4 * (k + 1)])
    }
}

/// D-FINE's weighting function W(n) over max_num_bins + 1 bins (`weighting_function`): symmetric around 0 at the
/// middle bin, growing as step^i - 1 with step = (up * reg_scale + 1)^(2 / (bins - 2)), the outer bins
/// -+2 * up * reg_scale. Computed in float32 as transformers does.
public func dFineWeightingFunction(maxNumBins b: Int, up: Float, regScale: Float) -> Tensor {
    let ub1 = Swift.abs(up) * Swift.abs(regScale), ub2 = ub1 * 2
    let step = powf(ub1 + 1, 2 / Float(b - 2))
    var v: [Float] = [-ub2]
    for i in stride(from: b / 2 - 1, to: 0, by: -1) { v.append(-powf(step, Float(i)) + 1) }
    v.append(0)
    for i in 1 ..< b / 2 { v.append(powf(step, Float(i)) - 1) }
    v.append(ub2)
    return Tensor(shape: [b + 1], data: v)
}

/// `distance2bbox`: each edge of the reference box (cx, cy, w, h) [Q, 4] moved by its distance [Q, 4] (left, top,
/// right, bottom, in units of the box's size / reg_scale, from half the box) -> (cx, cy, w, h) [Q, 4].
public func dFineDistanceToBox(_ points: Tensor, _ distance: Tensor, regScale: Float) -> Tensor {
    let q = points.shape[0], rs = Swift.abs(regScale)
    return Tensor(shape: [q, 4]) { out in
        let p = points.data, d = distance.data
        for i in 0 ..< q {
            let cx = p[4 * i], cy = p[4 * i + 1], w = p[4 * i + 2], h = p[4 * i + 3]
            let x1 = cx - (0.5 * rs + d[4 * i]) * (w / rs), y1 = cy - (0.5 * rs + d[4 * i + 1]) * (h / rs)
            let x2 = cx + (0.5 * rs + d[4 * i + 2]) * (w / rs), y2 = cy + (0.5 * rs + d[4 * i + 3]) * (h / rs)
            out[4 * i] = (x1 + x2) / 2
            out[4 * i + 1] = (y1 + y2) / 2
            out[4 * i + 2] = x2 - x1
            out[4 * i + 3] = y2 - y1
        }
    }
}

/// `DFineDecoder` with its heads, eval mode (eval_idx the last layer). Before each layer `query_pos_head` embeds the
/// current boxes (clamped to [-10, 10]); after layer 0 `pre_bbox_head` refines the selected boxes once into the
/// initial boxes every later layer measures from; after layer i `bbox_embed.{i}` gives each edge's distribution
/// logits over max_num_bins + 1 bins (added to the previous layer's: fine-grained distribution refinement, on the
/// hidden state plus the previous layer's), whose expectation under W(n) moves the initial box's edges
/// (`distance2bbox`); at the last layer `class_embed` scores the queries and `lqe_layers` adds the quality estimate.
/// Inputs: target [Q, d], initial box logits [Q, 4], memory [S, d], level shapes [L, 2]. Output the logits [Q, C],
/// extras `pred_boxes` [Q, 4], per layer `boxes.{l}` [Q, 4] and `corners.{l}` [Q, 4 * bins], `initial_boxes` [Q, 4].
/// Probes under `layers.{l}`: `distributions` (the edge distributions, W(n), the boxes), `boxes` (refined boxes with
/// each query's best-class probability of that layer's class head and LQE), the layer's own probes.
/// Own parameters: `reg_scale` and `up` (transformers' non-trainable nn.Parameters, counted by parameters()).
public struct DFineDecoder: Module {
    let layers: [Child<DETRDecoderLayer>]
    let queryPosHead: Child<MLP>
    let preBboxHead: Child<MLP>
    let classEmbed: [Child<Linear>]
    let bboxEmbed: [Child<MLP>]
    let lqeLayers: [Child<DFineLQE>]
    let regScale: Float, up: Float
    let bins: Int
    let evalIdx: Int
    /// W(n) [bins].
    let project: Tensor
    public var typeName: String { "DFineDecoder" }
    public var ownParameterCount: Int { 2 }

    init(_ w: WeightScope, _ c: RTDetrConfig) throws {
        let d = c.dModel, n = c.decoderLayers, std = c.initializerRange
        let normal = { (layers: Int) in
            Dictionary(uniqueKeysWithValues: (0 ..< layers).map { ($0, (WeightInit.normal(mean: 0, std: std), WeightInit.zeros)) })
        }
        layers = try [Child](w, "layers", count: n) { _, s in try rtDetrDecoderLayer(s, c) }
        queryPosHead = try Child(w, "query_pos_head") { try MLP($0, input: 4, hidden: 2 * d, output: d, layers: 2, inits: normal(2)) }
        preBboxHead = try Child(w, "pre_bbox_head") { try MLP($0, input: d, hidden: d, output: 4, layers: 3, inits: normal(3)) }
        classEmbed = try [Child](w, "class_embed", count: n) { _, s in
            try Linear(s, in: d, out: c.numLabels, weightInit: .xavierUniform(fanIn: d, fanOut: c.numLabels), biasInit: .constant(c.priorBias))
        }
        var boxInits = normal(3)
        boxInits[2] = (.zeros, .zeros)
        bins = c.maxNumBins + 1
        bboxEmbed = try [Child](w, "bbox_embed", count: n) { [bins] _, s in
            try MLP(s, input: d, hidden: d, output: 4 * bins, layers: 3, inits: boxInits)
        }
        lqeLayers = try [Child](w, "lqe_layers", count: n) { _, s in try DFineLQE(s, c) }
        regScale = try w.tensor("reg_scale", shape: [1], init: .constant(c.regScale)).data[0]
        up = try w.tensor("up", shape: [1], init: .constant(c.up)).data[0]
        guard regScale != 0, up != 0 else {
            throw ModuleInputError(w.key("reg_scale"), "reg_scale (\(regScale)) and up (\(up)) in the weights must be non-zero")
        }
        evalIdx = c.evalIdx
        project = dFineWeightingFunction(maxNumBins: c.maxNumBins, up: up, regScale: regScale)
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        var h = inputs[0]
        let memory = inputs[2].reshaped([inputs[2].shape[0], inputs[2].shape[1]])
        let q = h.shape[0]
        var ref = sigmoid(inputs[1])
        var initial = ref
        var previousHidden: Tensor? = nil, corners: Tensor? = nil
        var extras: [String: Tensor] = [:]
        var logits = h
        let keep = ctx.trace?.keepTensors == true
        for (i, layer) in layers.enumerated() {
            try ctx.checkCancelled()
            let pos = clamp(try queryPosHead(ref, ctx), min: -10, max: 10)
            h = try layer([h, pos, ref, memory, inputs[3]], ctx).main
            if i == 0 {
                initial = sigmoid(try preBboxHead(h, ctx) + inverseSigmoid(ref))
                extras["initial_boxes"] = initial
            }
            let delta = try bboxEmbed[i](previousHidden.map { h + $0 } ?? h, ctx)                // [Q, 4 * bins]
            let c = corners.map { delta + $0 } ?? delta
            let prob = softmax(c.reshaped([q, 4, bins]), axis: -1)                                 // [Q, 4, bins]
            let distance = linear(prob.reshaped([q * 4, bins]), weight: project.reshaped([1, bins]), bias: nil).reshaped([q, 4])
            ref = dFineDistanceToBox(initial, distance, regScale: regScale)
            corners = c
            previousHidden = h
            extras["boxes.\(i)"] = ref
            extras["corners.\(i)"] = c
            var scores: Tensor? = nil
            if i == evalIdx {
                logits = try lqeLayers[i]([try classEmbed[i](h, ctx), c], ctx).main
                extras["logits.\(i)"] = logits
                scores = logits
            } else if keep {
                // Transformers scores only the last layer in eval; the probe shows every layer's own heads (outside the tree).
                let cls = classEmbed[i].module(h)
                let lqe = lqeLayers[i].module
                scores = cls + lqe.regConf.module(DFineLQE.statistics(prob, k: lqe.topValues))
            }
            if keep {
                let p = ctx.child(layer.key)
                p.probe("decoder layer \(i): each query's edge distributions (left, top, right, bottom) over W(n)",
                        .edgeDistributions(EdgeDistributions(probabilities: prob, binValues: project, boxes: ref, layer: i)), name: "distributions")
                p.probe("decoder layer \(i): refined boxes (cx, cy, w, h) after the layer",
                        .refinedBoxes(RefinedBoxes(boxes: ref, layer: i, scores: scores.map { max(sigmoid($0), axis: 1) })), name: "boxes")
            }
        }
        extras["pred_boxes"] = ref
        return LayerOutput(logits, extras: extras)
    }
}
