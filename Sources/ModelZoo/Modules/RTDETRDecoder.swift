import Foundation
import Tensor

/// One layer of RT-DETR's decoder (ultralytics `DeformableTransformerDecoderLayer`): self-attention among the
/// queries (nn.MultiheadAttention, positions added to queries and keys), MSDeformAttn cross-attention into the
/// multi-scale features around each query's reference box, a ReLU FFN; post-norm after each.
/// Keys: `self_attn.*`, `norm1`, `cross_attn.*`, `norm2`, `linear1`, `linear2`, `norm3`.
/// Inputs (one image): embed [Q, d], reference boxes [Q, 4], values [S, d] (the features after this layer's
/// `cross_attn.value_proj`: the decoder projects them for all layers at once; see `Call` for reading them in place
/// from the stacked product), queryPos [Q, d] -> [Q, d].
public struct RTDETRDecoderLayer: Module {
    let selfAttn: Child<MultiheadAttention>
    let norm1: Child<LayerNorm>
    let crossAttn: Child<MSDeformAttention>
    let norm2: Child<LayerNorm>
    let linear1: Child<Linear>, linear2: Child<Linear>
    let norm3: Child<LayerNorm>

    public init(_ w: WeightScope, hidden d: Int, heads: Int, ffn: Int, levels: Int, points: Int) throws {
        selfAttn = try Child(w, "self_attn") { try MultiheadAttention($0, embedDim: d, heads: heads) }
        norm1 = try Child(w, "norm1") { try LayerNorm($0, dim: d) }
        crossAttn = try Child(w, "cross_attn") { try MSDeformAttention($0, dModel: d, levels: levels, heads: heads, points: points) }
        norm2 = try Child(w, "norm2") { try LayerNorm($0, dim: d) }
        linear1 = try Child(w, "linear1") { try Linear($0, in: d, out: ffn) }
        linear2 = try Child(w, "linear2") { try Linear($0, in: ffn, out: d) }
        norm3 = try Child(w, "norm3") { try LayerNorm($0, dim: d) }
    }

    public var typeName: String { "DeformableTransformerDecoderLayer" }

    /// The layer's `cross_attn.value_proj` (its weights join the decoder's stacked projection).
    var valueProj: Linear { crossAttn.module.valueProj!.module }

    /// Inputs: embed [Q, d], reference boxes [Q, 4], values [S, d] (projected), queryPos [Q, d], and the level
    /// shapes as a [L, 2] tensor of (H, W) rows.
    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        try forward(inputs, valueColumns: nil, ctx)
    }

    /// The layer reading its values as `valueColumns` of a wider [S, C] input (every layer's projected values side by
    /// side), in place: one call of the layer as a module of the tree.
    struct Call: Module {
        let base: RTDETRDecoderLayer
        let valueColumns: Range<Int>?

        var typeName: String { base.typeName }
        var ownParameterCount: Int { base.ownParameterCount }
        func ownFlops(inputs: [[Int]], output: [Int]) -> Double { base.ownFlops(inputs: inputs, output: output) }
        var children: [(key: String, module: any Module)] { base.children }
        func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
            try base.forward(inputs, valueColumns: valueColumns, ctx)
        }
    }

    func forward(_ inputs: [Tensor], valueColumns: Range<Int>?, _ ctx: ForwardContext) throws -> LayerOutput {
        let embed = inputs[0], reference = inputs[1], values = inputs[2], queryPos = inputs[3]
        let sd = inputs[4].data
        let shapes = (0 ..< inputs[4].shape[0]).map { GridSize(Int(sd[2 * $0]), Int(sd[2 * $0 + 1])) }
        let qk = embed + queryPos
        let att = try selfAttn([qk, qk, embed], ctx)
        let q = embed.shape[0]
        if let weights = att.extras["weights"] {
            ctx.probe("query self-attention per head [heads, Q, Q]", .attention(weights, query: GridSize(1, q), key: GridSize(1, q)), name: "self_attn")
        }
        var x = try norm1(embed + att.main, ctx)
        let d = x.shape[1]
        let cross = try crossAttn(query: (x + queryPos).reshaped([1, q, d]), reference: reference.reshaped([1, q, 4]),
                                  value: values.reshaped([1] + values.shape), levelShapes: shapes, ctx, valueProjected: true,
                                  valueColumns: valueColumns)
        x = try norm2(x + cross.output.reshaped([q, d]), ctx)
        return LayerOutput(try norm3(x + linear2(relu(linear1(x, ctx)), ctx), ctx))
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
/// Probes (under `<path>`): `query_selection` the selected tokens (indices, initial boxes, scores), `enc_bboxes` the
/// initial boxes [nq, 4] (refined boxes of layer -1),
/// `decoder.layers.{l}.cross_attn` sampling points of every query, `decoder.layers.{l}.self_attn` query
/// self-attention [heads, nq, nq], `decoder.layers.{l}.boxes` the boxes after layer l [nq, 4].
/// Params, output shape and FLOPs from the module tree and the shape pass: ultralytics' counter (thop, eval mode)
/// sees the input projections (conv + BN), the encoder head over all tokens, the box MLPs and position MLP over
/// the selected queries, the decoder layers (self-attention by the nn.MultiheadAttention rule, MSDeformAttn's
/// linears, not its sampling) and only the last layer's score head (eval stops there), exactly the calls made.
public struct RTDETRDecoder: Module {
    public let nc: Int, inputChannels: [Int], hidden: Int, queries: Int, heads: Int, points: Int
    let inputProj: [Child<Conv>]
    let layers: [Child<RTDETRDecoderLayer>]
    /// `denoising_class_embed.weight` [nc, hd] (an nn.Embedding used only in training; counted, as PyTorch does).
    public let denoisingClassEmbed: Tensor
    let queryPosHead: Child<MLP>
    let encOutput: Child<Linear>, encNorm: Child<LayerNorm>
    let encScoreHead: Child<Linear>
    let encBBoxHead: Child<MLP>
    let decScoreHead: [Child<Linear>]
    let decBBoxHead: [Child<MLP>]
    /// Every layer's `cross_attn.value_proj` stacked ([layers * hd, hd] and [layers * hd]): the features are projected
    /// for several layers by one matrix product (the shape pass still records each layer's value_proj), whose columns
    /// each layer reads in place. As many layers share a product as keep it within `valueBlockBytes`, the heap's largest block (three at
    /// 640x640: [8400, 768]); the six side by side, 52 MB, were a fresh mapping faulted in on every pass (most of
    /// rtdetr-l's page faults).
    let stackedValueProj: Linear
    /// The byte limit of one value product (a test sets a smaller one to split the layers into groups at small sizes).
    var valueBlockBytes = Allocator.heapBlockBytes

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
        inputProj = try [Child](w, "input_proj", count: channels.count) { i, s in
            try Conv(s, c1: channels[i], c2: hd, k: 1, act: .identity, eps: bnEps, keys: ("0", "1"),
                     weightInit: .xavierUniform(fanIn: channels[i], fanOut: hd))
        }
        layers = try [Child](w, "decoder.layers", count: ndl) { _, s in
            try RTDETRDecoderLayer(s, hidden: hd, heads: nh, ffn: ffn, levels: channels.count, points: ndp)
        }
        denoisingClassEmbed = try w.scope("denoising_class_embed").tensor("weight", shape: [nc, hd], init: .normal(mean: 0, std: 1))
        queryPosHead = try Child(w, "query_pos_head") {
            try MLP($0, input: 4, hidden: 2 * hd, output: hd, layers: 2, inits: [
                0: (.xavierUniform(fanIn: 4, fanOut: 2 * hd), .kaimingUniform(fanIn: 4)),
                1: (.xavierUniform(fanIn: 2 * hd, fanOut: hd), .kaimingUniform(fanIn: 2 * hd)),
            ])
        }
        // bias_init_with_prob(0.01) / 80 * nc
        let biasCls = -Foundation.log((1 - 0.01) / 0.01) / 80 * Float(nc)
        encOutput = try Child(w, "enc_output.0") { try Linear($0, in: hd, out: hd, weightInit: .xavierUniform(fanIn: hd, fanOut: hd)) }
        encNorm = try Child(w, "enc_output.1") { try LayerNorm($0, dim: hd) }
        encScoreHead = try Child(w, "enc_score_head") { try Linear($0, in: hd, out: nc, biasInit: .constant(biasCls)) }
        let zeroLast: [Int: (WeightInit, WeightInit)] = [2: (.zeros, .zeros)]
        encBBoxHead = try Child(w, "enc_bbox_head") { try MLP($0, input: hd, hidden: hd, output: 4, layers: 3, inits: zeroLast) }
        decScoreHead = try [Child](w, "dec_score_head", count: ndl) { _, s in try Linear(s, in: hd, out: nc, biasInit: .constant(biasCls)) }
        decBBoxHead = try [Child](w, "dec_bbox_head", count: ndl) { _, s in
            try MLP(s, input: hd, hidden: hd, output: 4, layers: 3, inits: zeroLast)
        }
        stackedValueProj = Linear(weight: concat(layers.map { $0.module.valueProj.weight }, axis: 0),
                                  bias: concat(layers.map { $0.module.valueProj.bias! }, axis: 0))
    }

    public var ownParameterCount: Int { denoisingClassEmbed.count }

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
    public func forward(_ xs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let name = ctx.path.isEmpty ? "RTDETRDecoder" : "\(ctx.path) (RTDETRDecoder)"
        guard xs.count == inputProj.count else {
            throw ModuleInputError(name, "expects \(inputProj.count) feature maps, got \(xs.count)")
        }
        for (i, x) in xs.enumerated() {
            guard x.rank == 4, x.shape[1] == inputChannels[i], x.shape[0] == xs[0].shape[0] else {
                throw ModuleInputError(name, "input \(i) must be [N, \(inputChannels[i]), H, W], got \(x.shape)")
            }
        }
        let n = xs[0].shape[0], d = hidden
        let shapes = xs.map { GridSize($0.shape[2], $0.shape[3]) }
        let projected = try zip(inputProj, xs).map { p, x in try p(x, ctx) }
        var outs: [Tensor] = []
        for b in 0 ..< n {
            // [C, H, W] per level -> [S, d]
            let feats = concat(projected.map { permute(slice($0, axis: 0, range: b ..< b + 1).reshaped([d, -1]), [1, 0]) }, axis: 0)
            // Only the first image is traced; the shape pass records every image's calls.
            outs.append(try decode(feats: feats, shapes: shapes, b == 0 ? ctx : ForwardContext(trace: nil, path: ctx.path, recorder: ctx.recorder)))
            try ctx.checkCancelled()
        }
        return LayerOutput(n == 1 ? outs[0] : concat(outs, axis: 0))
    }

    func decode(feats: Tensor, shapes: [GridSize], _ ctx: ForwardContext) throws -> Tensor {
        let s = feats.shape[0], d = hidden
        let shapePass = Tensor.isInShapePass
        let (anchors, valid) = shapePass ? (Tensor(shapeOnly: [s, 4]), []) : RTDETRDecoder.anchors(shapes: shapes)
        let masked = shapePass ? feats : feats * Tensor(shape: [s, 1], data: valid.map { $0 ? 1 : 0 })
        let features = try encNorm(encOutput(masked, ctx), ctx)                  // [S, d]
        let encScores = try encScoreHead(features, ctx)                            // [S, nc]
        let k = min(queries, s)
        // The k tokens of highest class score (any k in a shape pass: only their count matters there).
        let best = shapePass ? Tensor(shapeOnly: [s]) : max(encScores, axis: 1)   // [S] each token's best class logit
        let topIdx = shapePass ? Array(0 ..< k) : topK(best, k: k).indices.data.map { Int($0) }
        let topFeatures = indexSelect(features, axis: 0, indices: topIdx)          // [k, d]
        let topAnchors = shapePass ? Tensor(shapeOnly: [k, 4]) : indexSelect(anchors, axis: 0, indices: topIdx)  // [k, 4]
        var reference = sigmoid(try encBBoxHead(topFeatures, ctx) + topAnchors)   // boxes in [0, 1]
        let traced = ctx.trace?.keepTensors == true
        if traced {
            let chosen = sigmoid(indexSelect(best, axis: 0, indices: topIdx))
            ctx.probe("query selection: the top-\(k) encoder tokens",
                      .querySelection(QuerySelection(indices: topIdx, boxes: reference, scores: chosen, levelShapes: shapes)), name: "query_selection")
            ctx.probe("initial boxes of the \(k) queries", .refinedBoxes(RefinedBoxes(boxes: reference, layer: -1, scores: chosen)), name: "enc_bboxes")
        }
        // Layers per value product: as many as fit the heap's largest block, at least one.
        let group = max(1, min(layers.count, valueBlockBytes / max(1, s * d * MemoryLayout<Float>.size)))
        var values = Tensor(shapeOnly: [s, d])                                       // [S, group * d] outside a shape pass
        let levelShapes = Tensor(shape: [shapes.count, 2], data: shapes.flatMap { [Float($0.height), Float($0.width)] })
        var embed = topFeatures
        var scores = Tensor(zeros: [k, nc])
        for (l, layer) in layers.enumerated() {
            let pos = try queryPosHead(reference, ctx)
            // Layer l reads its columns of the stacked product in place (the shape pass records [S, d] values, as the
            // reference passes them).
            if !shapePass && l % group == 0 {
                let w = stackedValueProj.weight, b = stackedValueProj.bias
                values = linear(feats, weight: w, bias: b, outputs: l * d ..< min(l + group, layers.count) * d)
            }
            let column = l % group * d
            let call = RTDETRDecoderLayer.Call(base: layer.module, valueColumns: shapePass ? nil : column ..< column + d)
            embed = try ctx.call(call, key: layer.key, [embed, reference, values, pos, levelShapes]).main
            let lctx = ctx.child(layer.key)
            reference = sigmoid(try decBBoxHead[l](embed, ctx) + inverseSigmoid(reference))
            if l == layers.count - 1 { scores = sigmoid(try decScoreHead[l](embed, ctx)) }
            if traced {
                // Every layer's best-class score for the view (eval runs only the last score head: the others outside
                // the module tree, so the counted calls stay ultralytics').
                let layerScores = l == layers.count - 1 ? scores : sigmoid(decScoreHead[l].module(embed))
                lctx.probe("decoder layer \(l): boxes after the layer",
                           .refinedBoxes(RefinedBoxes(boxes: reference, layer: l, scores: max(layerScores, axis: 1))), name: "boxes")
            }
            try ctx.checkCancelled()
        }
        return concat([reference, scores], axis: 1).reshaped([1, k, 4 + nc])
    }
}
