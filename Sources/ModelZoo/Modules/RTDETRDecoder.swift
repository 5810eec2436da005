import Foundation
import Tensor

/// One layer of RT-DETR's decoder (ultralytics `DeformableTransformerDecoderLayer`): self-attention among the
/// queries (nn.MultiheadAttention, positions added to queries and keys), MSDeformAttn cross-attention into the
/// multi-scale features around each query's reference box, a ReLU FFN; post-norm after each.
/// Keys: `self_attn.*`, `norm1`, `cross_attn.*`, `norm2`, `linear1`, `linear2`, `norm3`.
public struct RTDETRDecoderLayer: Sendable {
    public let selfAttn: MultiheadAttention
    public let crossAttn: MSDeformAttn
    public let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
    public let linear1: Linear, linear2: Linear

    public init(_ w: WeightScope, hidden d: Int, heads: Int, ffn: Int, levels: Int, points: Int) throws {
        selfAttn = try MultiheadAttention(w.scope("self_attn"), embedDim: d, heads: heads)
        norm1 = try LayerNorm(w.scope("norm1"), dim: d)
        crossAttn = try MSDeformAttn(w.scope("cross_attn"), dModel: d, levels: levels, heads: heads, points: points)
        norm2 = try LayerNorm(w.scope("norm2"), dim: d)
        linear1 = try Linear(w.scope("linear1"), in: d, out: ffn)
        linear2 = try Linear(w.scope("linear2"), in: ffn, out: d)
        norm3 = try LayerNorm(w.scope("norm3"), dim: d)
    }

    public var parameterCount: Int {
        selfAttn.parameterCount + crossAttn.parameterCount + norm1.parameterCount + norm2.parameterCount
            + norm3.parameterCount + linear1.parameterCount + linear2.parameterCount
    }

    public func flops(queries q: Int, valueLength s: Int) -> Double {
        let d = selfAttn.embedDim
        return selfAttn.flops(queries: q, keys: q) + crossAttn.flops(queries: q, valueLength: s)
            + 3 * norm1.flops(elements: q * d) + linear1.flops(tokens: q) + linear2.flops(tokens: q)
    }

    /// embed [Q, d], reference boxes [Q, 4], values [S, d] (the features after this layer's `cross_attn.value_proj`),
    /// queryPos [Q, d] (one image) -> [Q, d].
    func forward(embed: Tensor, reference: Tensor, values: Tensor, shapes: [GridSize], queryPos: Tensor,
                 _ ctx: ForwardContext) throws -> Tensor {
        let qk = embed + queryPos
        let (attended, weights) = selfAttn.attend(query: qk, key: qk, value: embed)
        let q = embed.shape[0]
        ctx.probe("query self-attention per head [heads, Q, Q]", .attention(weights, query: GridSize(1, q), key: GridSize(1, q)), name: "self_attn")
        var x = norm1(embed + attended)
        let d = x.shape[1]
        let cross = try crossAttn.forward(query: (x + queryPos).reshaped([1, q, d]), reference: reference.reshaped([1, q, 4]),
                                          value: values.reshaped([1, values.shape[0], d]), levelShapes: shapes, ctx.child("cross_attn"),
                                          valueProjected: true)
        x = norm2(x + cross.reshaped([q, d]))
        return norm3(x + linear2(relu(linear1(x))))
    }
}

/// RTDETRDecoder: RT-DETR's head (ultralytics `ultralytics/nn/modules/head.py`).
///
/// Zhao et al., "DETRs Beat YOLOs on Real-time Object Detection" (arXiv 2304.08069).
///
/// 1. `input_proj.{i}`: 1x1 conv (no bias) + BN per input level to `hd` channels; flattened and concatenated
///    (levels x H*W tokens).
/// 2. Anchors at every cell centre, size 0.05 x 2^level, in logit space; anchors touching the border (any
///    coordinate outside (0.01, 0.99)) are invalid: their features are zeroed and their anchor is +inf.
/// 3. `enc_output` (Linear + LayerNorm), `enc_score_head`; the `nq` (300) tokens with the highest class score are
///    selected; their features are the initial queries and `enc_bbox_head(feature) + anchor` their reference
///    boxes (logits).
/// 4. `ndl` (6) decoder layers; before each, `query_pos_head` (MLP 4 -> 2hd -> hd) embeds the current boxes; after
///    each, `dec_bbox_head[l]` refines the boxes: `box = sigmoid(delta + logit(box))` (iterative refinement).
/// 5. Eval output [N, nq, 4 + nc]: the last layer's boxes (cx, cy, w, h normalised to [0, 1]) and
///    sigmoid(dec_score_head[last]).
///
/// Probes (under `<path>`): `enc_topk` the selected token indices, `enc_bboxes` the initial boxes [nq, 4],
/// `decoder.layers.{l}.cross_attn` sampling points of every query, `decoder.layers.{l}.self_attn` query
/// self-attention [heads, nq, nq], `decoder.layers.{l}.boxes` the boxes after layer l [nq, 4].
public struct RTDETRDecoder: Sendable {
    public let nc: Int, inputChannels: [Int], hidden: Int, queries: Int, heads: Int, points: Int
    public let inputProj: [Conv]
    public let layers: [RTDETRDecoderLayer]
    public let denoisingClassEmbed: Tensor
    public let queryPosHead: MLP
    public let encOutput: Linear, encNorm: LayerNorm
    public let encScoreHead: Linear
    public let encBBoxHead: MLP
    public let decScoreHead: [Linear]
    public let decBBoxHead: [MLP]
    /// Every layer's `cross_attn.value_proj` stacked ([layers * hd, hd] and [layers * hd]): the features are projected
    /// for all layers by one matrix product.
    let stackedValueProj: Linear

    /// ultralytics' signature: RTDETRDecoder(nc, ch, hd=256, nq=300, ndp=4, nh=8, ndl=6, d_ffn=1024). `bnEps` is the
    /// input projections' batch-norm eps: 1e-5 standalone, 1e-3 inside an ultralytics model (`initialize_weights`).
    public init(_ w: WeightScope, nc: Int = 80, channels: [Int], hidden hd: Int = 256, queries nq: Int = 300,
                points ndp: Int = 4, heads nh: Int = 8, layers ndl: Int = 6, ffn: Int = 1024, bnEps: Float = 1e-5) throws {
        guard !channels.isEmpty else { throw ModuleInputError("RTDETRDecoder", "needs at least one input level") }
        guard nc > 0, nq > 0, ndl > 0 else { throw ModuleInputError("RTDETRDecoder", "nc, nq and ndl must be positive") }
        self.nc = nc
        inputChannels = channels
        hidden = hd
        queries = nq
        heads = nh
        points = ndp
        inputProj = try channels.enumerated().map { i, c in
            try Conv(w.scope("input_proj").scope(i), c1: c, c2: hd, k: 1, act: .identity, eps: bnEps, keys: ("0", "1"),
                     weightInit: .xavierUniform(fanIn: c, fanOut: hd))
        }
        layers = try (0 ..< ndl).map { l in
            try RTDETRDecoderLayer(w.scope("decoder").scope("layers").scope(l), hidden: hd, heads: nh, ffn: ffn, levels: channels.count, points: ndp)
        }
        denoisingClassEmbed = try w.scope("denoising_class_embed").tensor("weight", shape: [nc, hd], init: .normal(mean: 0, std: 1))
        queryPosHead = try MLP(w.scope("query_pos_head"), input: 4, hidden: 2 * hd, output: hd, layers: 2, inits: [
            0: (.xavierUniform(fanIn: 4, fanOut: 2 * hd), .kaimingUniform(fanIn: 4)),
            1: (.xavierUniform(fanIn: 2 * hd, fanOut: hd), .kaimingUniform(fanIn: 2 * hd)),
        ])
        // bias_init_with_prob(0.01) / 80 * nc
        let biasCls = -Foundation.log((1 - 0.01) / 0.01) / 80 * Float(nc)
        encOutput = try Linear(w.scope("enc_output").scope("0"), in: hd, out: hd, weightInit: .xavierUniform(fanIn: hd, fanOut: hd))
        encNorm = try LayerNorm(w.scope("enc_output").scope("1"), dim: hd)
        encScoreHead = try Linear(w.scope("enc_score_head"), in: hd, out: nc, biasInit: .constant(biasCls))
        let zeroLast: [Int: (WeightInit, WeightInit)] = [2: (.zeros, .zeros)]
        encBBoxHead = try MLP(w.scope("enc_bbox_head"), input: hd, hidden: hd, output: 4, layers: 3, inits: zeroLast)
        decScoreHead = try (0 ..< ndl).map { try Linear(w.scope("dec_score_head").scope($0), in: hd, out: nc, biasInit: .constant(biasCls)) }
        decBBoxHead = try (0 ..< ndl).map { try MLP(w.scope("dec_bbox_head").scope($0), input: hd, hidden: hd, output: 4, layers: 3, inits: zeroLast) }
        stackedValueProj = Linear(weight: concat(layers.map { $0.crossAttn.valueProj.weight }, axis: 0),
                                        bias: concat(layers.map { $0.crossAttn.valueProj.bias! }, axis: 0))
    }

    public var parameterCount: Int {
        inputProj.reduce(0) { $0 + $1.parameterCount } + layers.reduce(0) { $0 + $1.parameterCount } + denoisingClassEmbed.count
            + queryPosHead.parameterCount + encOutput.parameterCount + encNorm.parameterCount + encScoreHead.parameterCount
            + encBBoxHead.parameterCount + decScoreHead.reduce(0) { $0 + $1.parameterCount } + decBBoxHead.reduce(0) { $0 + $1.parameterCount }
    }

    /// FLOPs for inputs of the given NCHW shapes, as ultralytics' counter (thop) counts them in eval mode: the input
    /// projections (conv + BN), the encoder head over all tokens, the box MLPs and position MLP over the selected
    /// queries, the decoder layers (self-attention by the nn.MultiheadAttention rule; MSDeformAttn's linears, not its
    /// sampling), and only the last layer's score head (eval stops there).
    public func flops(inputShapes: [[Int]]) -> Double {
        var total = 0.0
        var s = 0
        for (i, shape) in inputShapes.enumerated() where i < inputProj.count {
            total += inputProj[i].flops(height: shape[2], width: shape[3])
            s += shape[2] * shape[3]
        }
        let q = min(queries, s)
        total += encOutput.flops(tokens: s) + encNorm.flops(elements: s * hidden) + encScoreHead.flops(tokens: s)
        total += encBBoxHead.flops(tokens: q)
        for (l, layer) in layers.enumerated() {
            total += queryPosHead.flops(tokens: q) + layer.flops(queries: q, valueLength: s) + decBBoxHead[l].flops(tokens: q)
        }
        total += decScoreHead[layers.count - 1].flops(tokens: q)
        let batch = Double(inputShapes.first?.first ?? 1)
        return batch * total
    }

    /// Anchors (logits, +inf where invalid) [S, 4] and the valid mask [S] for the level shapes.
    public static func anchors(shapes: [GridSize], gridSize: Float = 0.05, eps: Float = 0.01) -> (anchors: Tensor, valid: [Bool]) {
        var data: [Float] = []
        var valid: [Bool] = []
        for (i, s) in shapes.enumerated() {
            let wh = gridSize * Foundation.pow(2, Float(i))
            for y in 0 ..< s.height {
                for x in 0 ..< s.width {
                    let box = [(Float(x) + 0.5) / Float(s.width), (Float(y) + 0.5) / Float(s.height), wh, wh]
                    let ok = box.allSatisfy { $0 > eps && $0 < 1 - eps }
                    valid.append(ok)
                    data += box.map { ok ? Foundation.log($0 / (1 - $0)) : Float.infinity }
                }
            }
        }
        return (Tensor(shape: [valid.count, 4], data: data), valid)
    }

    /// xs: one [N, C_i, H_i, W_i] map per level -> [N, nq, 4 + nc].
    public func forward(_ xs: [Tensor], _ ctx: ForwardContext) throws -> Tensor {
        guard xs.count == inputProj.count else {
            throw ModuleInputError("RTDETRDecoder", "expects \(inputProj.count) feature maps, got \(xs.count)")
        }
        for (i, x) in xs.enumerated() {
            guard x.rank == 4, x.shape[1] == inputChannels[i], x.shape[0] == xs[0].shape[0] else {
                throw ModuleInputError("RTDETRDecoder", "input \(i) must be [N, \(inputChannels[i]), H, W], got \(x.shape)")
            }
        }
        let n = xs[0].shape[0], d = hidden
        let shapes = xs.map { GridSize($0.shape[2], $0.shape[3]) }
        let projected = zip(inputProj, xs).map { p, x in p(x) }
        var outs: [Tensor] = []
        for b in 0 ..< n {
            // [C, H, W] per level -> [S, d]
            let feats = concat(projected.map { permute(slice($0, axis: 0, range: b ..< b + 1).reshaped([d, -1]), [1, 0]) }, axis: 0)
            outs.append(try decode(feats: feats, shapes: shapes, b == 0 ? ctx : ForwardContext(trace: nil, path: ctx.path)))
            try ctx.checkCancelled()
        }
        return concat(outs, axis: 0)
    }

    func decode(feats: Tensor, shapes: [GridSize], _ ctx: ForwardContext) throws -> Tensor {
        let s = feats.shape[0], d = hidden
        let (anchors, valid) = RTDETRDecoder.anchors(shapes: shapes)
        let mask = Tensor(shape: [s, 1], data: valid.map { $0 ? 1 : 0 })
        let features = encNorm(encOutput(feats * mask))                           // [S, d]
        let encScores = encScoreHead(features)                                     // [S, nc]
        let k = min(queries, s)
        let best = max(encScores, axis: 1)                                         // [S]
        let topIdx = topK(best, k: k).indices.data.map { Int($0) }
        let topFeatures = indexSelect(features, axis: 0, indices: topIdx)          // [k, d]
        let topAnchors = indexSelect(anchors, axis: 0, indices: topIdx)            // [k, 4]
        var reference = sigmoid(encBBoxHead(topFeatures) + topAnchors)            // boxes in [0, 1]
        ctx.probe("encoder top-k token indices (levels concatenated)", .tensor(Tensor(shape: [k], data: topIdx.map(Float.init))), name: "enc_topk")
        ctx.probe("initial reference boxes (cx, cy, w, h)", .tensor(reference), name: "enc_bboxes")
        let allValues = stackedValueProj(feats)                                    // [S, layers * d]
        var embed = topFeatures
        var scores = Tensor(zeros: [k, nc])
        let dctx = ctx.child("decoder").child("layers")
        for (l, layer) in layers.enumerated() {
            let lctx = dctx.child(l)
            let pos = queryPosHead(reference)
            let values = slice(allValues, axis: 1, range: l * d ..< (l + 1) * d)
            embed = try layer.forward(embed: embed, reference: reference, values: values, shapes: shapes, queryPos: pos, lctx)
            reference = sigmoid(decBBoxHead[l](embed) + inverseSigmoid(reference))
            lctx.probe("boxes after layer \(l) (cx, cy, w, h)", .tensor(reference), name: "boxes")
            if l == layers.count - 1 { scores = sigmoid(decScoreHead[l](embed)) }
            try ctx.checkCancelled()
        }
        return concat([reference, scores], axis: 1).reshaped([1, k, 4 + nc])
    }
}
