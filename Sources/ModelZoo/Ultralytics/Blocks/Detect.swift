import Foundation
import Tensor

/// `DFL` (distribution focal loss integral): each box side's reg_max-bin distribution (softmax) to its expected
/// value, with the fixed 1x1 conv weights 0 ..< reg_max (`conv.weight`, counted as the reference counts it).
/// [1, 4 * reg_max, A] -> [1, 4, A].
public struct DFL: UnaryModule {
    let bins: [Float]

    init(_ w: WeightScope, regMax: Int) throws {
        let arange = Tensor(shape: [1, regMax, 1, 1], data: (0 ..< regMax).map(Float.init))
        bins = try w.tensor("conv.weight", shape: [1, regMax, 1, 1], init: .value(arange)).data
    }

    public var ownParameterCount: Int { bins.count }
    /// thop: its 1x1 conv from reg_max bins to 1, for each of the 4 sides and A anchors.
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { 2 * Double(output.reduce(1, *)) * Double(bins.count) }

    /// Each side's softmax over its bins and the expectation of the bin values, in one pass (softmaxExpectation).
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        softmaxExpectation(x.reshaped([x.shape[0], 4, bins.count, x.shape[2]]), axis: 2, weights: bins)
    }
}

/// YOLOv8's `Detect` head (as parse_model builds it for v8 configs): per level a box branch cv2 (Conv 3x3, Conv 3x3,
/// Conv2d 1x1 to 4*reg_max) and a class branch cv3 (Conv 3x3, Conv 3x3, Conv2d 1x1 to nc); DFL turns each side's
/// distribution into a distance (none when reg_max is 1); anchors sit at cell centres (offset 0.5).
/// Eval output: [1, 4 + nc, anchors], boxes xywh in input pixels, sigmoid class scores.
///
/// `end2end` (YOLO26, and YOLOv10's v10Detect) adds a one-to-one copy of both branches (`one2one_cv2`,
/// `one2one_cv3`), which the reference computes in every forward. This head then answers with the one-to-one
/// branch post-processed as ultralytics' `Detect.postprocess` does, no NMS: the top k = min(300, anchors) anchors by
/// their best class score, then the top k (anchor, class) pairs among them, as [1, k, 6] rows (x1, y1, x2, y2 in
/// input pixels, score, class). The one-to-many branch's decoded output [1, 4 + nc, anchors] (xywh) is the extra
/// `one2many`, computed only under a trace that keeps tensors (the unfused reference computes it; its fused eval
/// model and exports do not).
public struct Detect: Module {
    public let nc: Int, regMax: Int
    let cv2: [Child<Sequential>], cv3: [Child<Sequential>]
    let dfl: Child<DFL>?
    let one2oneCv2: [Child<Sequential>], one2oneCv3: [Child<Sequential>]
    /// Per level, the first convs of both branches as one conv (box channels first): they read the same input, so
    /// one im2col and one wider gemm serve both. The real forward pass uses them; the shape pass runs the children.
    let firstConvs: [Conv]
    /// Each level's stride, as DetectionModel measures it at build time (256 / level size: 8, 16, 32 for P3-P5).
    public var strides: [Float]
    /// The reference head's `max_det`: the one-to-one post-processing keeps min(maxDet, anchors) rows.
    public static let maxDet = 300

    /// True when the head has the one-to-one branches and answers with their top-k rows.
    public var isEndToEnd: Bool { !one2oneCv2.isEmpty }

    /// `legacy` (v3/v5/v8/v9 heads): the class branch is Conv 3x3, Conv 3x3, Conv2d; otherwise (YOLOv10, YOLO11 and
    /// later) two (depth-wise 3x3 DWConv, 1x1 Conv) pairs, then the Conv2d.
    public init(_ w: WeightScope, nc: Int, regMax: Int = 16, channels: [Int], legacy: Bool = true, end2end: Bool = false,
                act: Activation = .silu) throws {
        self.nc = nc; self.regMax = regMax
        (cv2, cv3) = try Detect.branches(w, prefix: "", nc: nc, regMax: regMax, channels: channels, legacy: legacy, act: act)
        (one2oneCv2, one2oneCv3) = end2end
            ? try Detect.branches(w, prefix: "one2one_", nc: nc, regMax: regMax, channels: channels, legacy: legacy, act: act)
            : ([], [])
        firstConvs = !legacy ? [] : zip(cv2, cv3).map { b, c in
            let (cb, cc) = (b.module.layers[0].module.base as! Conv, c.module.layers[0].module.base as! Conv)
            return Conv(folded: concat([cb.weight, cc.weight], axis: 0), bias: concat([cb.bias, cc.bias], axis: 0),
                        c1: cb.c1, c2: cb.c2 + cc.c2, k: cb.k, s: cb.s, p: cb.p, g: cb.g, d: cb.d, act: cb.act)
        }
        dfl = regMax > 1 ? try Child(w, "dfl") { try DFL($0, regMax: regMax) } : nil
        strides = channels.indices.map { Float(8 << $0) }
    }

    /// The box branches (`{prefix}cv2.i`) and class branches (`{prefix}cv3.i`) of every level.
    static func branches(_ w: WeightScope, prefix: String, nc: Int, regMax: Int, channels: [Int], legacy: Bool,
                         act: Activation) throws -> ([Child<Sequential>], [Child<Sequential>]) {
        let c2 = max(16, channels[0] / 4, regMax * 4), c3 = max(channels[0], min(nc, 100))
        var box: [Child<Sequential>] = [], cls: [Child<Sequential>] = []
        for (i, x) in channels.enumerated() {
            // ultralytics' bias_init at strides 8, 16, 32, ...: box bias 2.0, class bias log(5 / nc / (640 / s)^2).
            let stride = Double(8 << i)
            let clsBias = Float(log(5 / Double(nc) / pow(640 / stride, 2)))
            box.append(try Child(w, "\(prefix)cv2.\(i)") { b in
                Sequential([try Conv(b.scope(0), c1: x, c2: c2, k: 3, act: act), try Conv(b.scope(1), c1: c2, c2: c2, k: 3, act: act),
                            try Conv2d(b.scope(2), c1: c2, c2: 4 * regMax, k: 1, biasInit: .constant(2.0))])
            })
            cls.append(try Child(w, "\(prefix)cv3.\(i)") { c in
                if legacy {
                    return Sequential([try Conv(c.scope(0), c1: x, c2: c3, k: 3, act: act), try Conv(c.scope(1), c1: c3, c2: c3, k: 3, act: act),
                                       try Conv2d(c.scope(2), c1: c3, c2: nc, k: 1, biasInit: .constant(clsBias))])
                }
                func pair(_ s: WeightScope, _ cin: Int) throws -> Sequential {
                    Sequential([try makeDWConv(s.scope(0), c1: cin, c2: cin, k: 3, act: act), try Conv(s.scope(1), c1: cin, c2: c3, k: 1, act: act)])
                }
                return Sequential([try pair(c.scope(0), x), try pair(c.scope(1), c3), try Conv2d(c.scope(2), c1: c3, c2: nc, k: 1, biasInit: .constant(clsBias))])
            })
        }
        return (box, cls)
    }

    /// One pair of branches on every level: box distributions [1, 4*reg_max, A] and sigmoid class scores [1, nc, A].
    func run(_ inputs: [Tensor], box: [Child<Sequential>], cls: [Child<Sequential>], fused: [Conv],
             _ ctx: ForwardContext) throws -> (boxes: Tensor, scores: Tensor) {
        var boxes: [Tensor] = [], scores: [Tensor] = []
        for (i, x) in inputs.enumerated() {
            let plane = x.shape[2] * x.shape[3]
            if ctx.recorder != nil || fused.isEmpty {
                boxes.append(try box[i](x, ctx).reshaped([1, 4 * regMax, plane]))
                scores.append(try cls[i](x, ctx).reshaped([1, nc, plane]))
                continue
            }
            let both = try fused[i].forward(x, ctx)
            let c2 = box[i].module.layers[0].module.base as! Conv
            for (branch, range, out) in [(box[i], 0 ..< c2.c2, 4 * regMax), (cls[i], c2.c2 ..< both.shape[1], nc)] {
                let bctx = ctx.child(branch.key)
                var y = slice(both, axis: 1, range: range)
                for l in branch.module.layers.dropFirst() { y = try l(y, bctx) }
                if out == nc { scores.append(y.reshaped([1, nc, plane])) } else { boxes.append(y.reshaped([1, out, plane])) }
            }
        }
        var clsCat = concat(scores, axis: 2)   // [1, nc, A]
        applyActivation(&clsCat, .sigmoid)
        return (concat(boxes, axis: 2), clsCat)
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        guard inputs.count == cv2.count else {
            throw ModuleInputError(ctx.path.isEmpty ? "Detect" : "\(ctx.path) (Detect)", "expects \(cv2.count) inputs, got \(inputs.count)")
        }
        // A repeated head (n > 1 in a YAML) would be handed the first copy's boxes and scores.
        guard inputs.allSatisfy({ $0.rank == 4 }) else {
            throw ModuleInputError(ctx.path.isEmpty ? "Detect" : "\(ctx.path) (Detect)", "takes feature maps [N, C, H, W], got \(inputs.map(\.shape))")
        }
        var anchors: [(x: Float, y: Float, stride: Float)] = []
        if !Tensor.isInShapePass {
            for (i, x) in inputs.enumerated() {
                for yy in 0 ..< x.shape[2] { for xx in 0 ..< x.shape[3] { anchors.append((Float(xx) + 0.5, Float(yy) + 0.5, strides[i])) } }
            }
        }
        guard isEndToEnd else {
            let many = try run(inputs, box: cv2, cls: cv3, fused: firstConvs, ctx)
            // DFL: [1, 4, A] distances to the left, top, right, bottom.
            return LayerOutput(decode(try dfl?(many.boxes, ctx) ?? many.boxes, many.scores, anchors: anchors, xywh: true))
        }
        // The one-to-many branch, which ultralytics' unfused forward computes beside the one-to-one answer: run when a
        // trace keeps tensors (the explorer and dumps show it as `one2many`) or the shape pass counts it; skipped
        // otherwise, as the fused eval model (Detect.fuse() drops it) and an exported graph skip it. A trace of shapes
        // and times only (`bench`) does not need it.
        let many = ctx.trace?.keepTensors == true || ctx.recorder != nil
            ? try run(inputs, box: cv2, cls: cv3, fused: firstConvs, ctx) : nil
        let one = try run(inputs, box: one2oneCv2, cls: one2oneCv3, fused: [], ctx)
        let y = decode(try dfl?(one.boxes, ctx) ?? one.boxes, one.scores, anchors: anchors, xywh: false)
        let k = min(Detect.maxDet, y.shape[2])
        if Tensor.isInShapePass { return LayerOutput(Tensor(shapeOnly: [1, k, 6])) }
        // The one-to-many branch as a plain Detect answers (its DFL run outside the recorded calls: the reference
        // decodes only the branch it selects).
        guard let many else { return LayerOutput(Detect.postprocess(y, nc: nc, k: k)) }
        let manyDecoded = decode(try dfl.map { try $0.module.forward(many.boxes, ctx) } ?? many.boxes, many.scores, anchors: anchors, xywh: true)
        return LayerOutput(Detect.postprocess(y, nc: nc, k: k), extras: ["one2many": manyDecoded])
    }

    /// Distances [1, 4, A] and scores [1, nc, A] -> [1, 4 + nc, A]: boxes in input pixels (xywh, or x1y1x2y2 for the
    /// end-to-end branch, as dist2bbox), then the scores.
    func decode(_ dist: Tensor, _ scores: Tensor, anchors: [(x: Float, y: Float, stride: Float)], xywh: Bool) -> Tensor {
        let a = dist.shape[2]
        let boxes = Tensor(shape: [1, 4, a]) { out in
            dist.data.withUnsafeBufferPointer { d in
                for j in 0 ..< a {
                    let an = anchors[j]
                    let x1 = an.x - d[j], y1 = an.y - d[a + j], x2 = an.x + d[2 * a + j], y2 = an.y + d[3 * a + j]
                    if xywh {
                        out[j] = (x1 + x2) / 2 * an.stride
                        out[a + j] = (y1 + y2) / 2 * an.stride
                        out[2 * a + j] = (x2 - x1) * an.stride
                        out[3 * a + j] = (y2 - y1) * an.stride
                    } else {
                        out[j] = x1 * an.stride; out[a + j] = y1 * an.stride
                        out[2 * a + j] = x2 * an.stride; out[3 * a + j] = y2 * an.stride
                    }
                }
            }
        }
        // The scores after the boxes: concat copies them on every core (one thread's copy of nc x A floats was a
        // serial section of every forward).
        return concat([boxes, scores], axis: 1)
    }

    /// ultralytics' `Detect.postprocess` on [1, 4 + nc, A] (boxes x1y1x2y2): the k anchors with the best top class
    /// score, then the k best (anchor, class) pairs among them, best first (ties by lower index, as a stable sort; NaN
    /// counts as the largest score, as torch.topk): [1, k, 6] rows of x1, y1, x2, y2, score, class.
    /// Both selections are `topK`'s partial ones (a sorted buffer of the best k), not sorts of all A anchors and all
    /// k x nc pairs.
    static func postprocess(_ y: Tensor, nc: Int, k: Int) -> Tensor {
        let a = y.shape[2]
        return y.data.withUnsafeBufferPointer { p -> Tensor in
            var best = [Float](repeating: -.infinity, count: a)
            best.withUnsafeMutableBufferPointer { b in
                for c in 0 ..< nc {
                    // `v > best ? v : best` (a NaN score leaves the best as it was): a vector max over the anchors.
                    for j in 0 ..< a { let v = p[(4 + c) * a + j]; b[j] = v > b[j] ? v : b[j] }
                }
            }
            let anchors = topK(Tensor(shape: [a], data: best), k: k).indices.data.map { Int($0) }
            // The pairs of the chosen anchors in rank order: pair r * nc + c is anchor anchors[r], class c.
            var pairScores = [Float](repeating: 0, count: k * nc)
            for (r, j) in anchors.enumerated() { for c in 0 ..< nc { pairScores[r * nc + c] = p[(4 + c) * a + j] } }
            let pairs = topK(Tensor(shape: [k * nc], data: pairScores), k: k)
            var out = [Float](repeating: 0, count: k * 6)
            for i in 0 ..< k {
                let flat = Int(pairs.indices.data[i]), j = anchors[flat / nc]
                for b in 0 ..< 4 { out[i * 6 + b] = p[b * a + j] }
                out[i * 6 + 4] = pairs.values.data[i]
                out[i * 6 + 5] = Float(flat % nc)
            }
            return Tensor(shape: [1, k, 6], data: out)
        }
    }

    /// `[nc]`; reg_max from the YAML (16 unless it says otherwise), `end2end` from the YAML; the inputs' channels
    /// from `from`.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let nc = try ctx.int(0, default: ctx.nc, name: "nc")
        let layer = try Detect(ctx.weights, nc: nc, regMax: ctx.regMax, channels: ctx.inputChannels, legacy: ctx.legacy,
                               end2end: ctx.end2end, act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: 4 + nc,
                          arguments: ctx.args + [.int(ctx.regMax), ctx.end2endArgument, .list(ctx.inputChannels.map { .int($0) })])
    }

    /// `v10Detect` (YOLOv10) `[nc]`: a Detect with reg_max 16, always end-to-end, whose class branches are the light
    /// depth-wise ones (as YOLO11's) whatever the rows before it.
    static func buildV10(_ ctx: BuildContext) throws -> BuiltLayer {
        let nc = try ctx.int(0, default: ctx.nc, name: "nc")
        let layer = try Detect(ctx.weights, nc: nc, regMax: 16, channels: ctx.inputChannels, legacy: false, end2end: true,
                               act: ctx.defaultActivation)
        return BuiltLayer(layer, outputChannels: 4 + nc, arguments: ctx.args + [.list(ctx.inputChannels.map { .int($0) })])
    }
}
