import Foundation
import Tensor

/// YOLOv8's `Detect` head (legacy layout, as parse_model builds it for v8 configs): per level a box branch
/// cv2 (Conv 3x3, Conv 3x3, Conv2d 1x1 to 4*reg_max) and a class branch cv3 (Conv 3x3, Conv 3x3, Conv2d 1x1 to nc);
/// DFL turns each side's reg_max-bin distribution into a distance; anchors sit at cell centres (offset 0.5).
/// Eval output: [1, 4 + nc, anchors], boxes xywh in input pixels, sigmoid class scores.
public struct DetectHead: GraphLayer {
    public let nc: Int, regMax: Int
    public let channels: [Int]
    let box: [Chain], cls: [Chain]
    /// Per level, the first convs of both branches as one conv (box channels first): they read the same
    /// input, so one im2col and one wider gemm serve both; then the rest of each branch.
    let firstConvs: [ConvBlock]
    let boxRest: [Chain], clsRest: [Chain]
    /// DFL's fixed 1x1 conv weights (0, 1, ..., reg_max-1 in the reference), [reg_max].
    let dfl: [Float]
    let c2: Int, c3: Int
    /// Each level's stride, as DetectionModel measures it at build time (256 / level size: 8, 16, 32 for P3-P5).
    public var strides: [Float]

    public init(_ w: WeightScope, nc: Int, regMax: Int = 16, channels: [Int], act: Activation = .silu) throws {
        self.nc = nc; self.regMax = regMax; self.channels = channels
        let c2 = max(16, channels[0] / 4, regMax * 4), c3 = max(channels[0], min(nc, 100))
        self.c2 = c2; self.c3 = c3
        var box: [Chain] = [], cls: [Chain] = []
        for (i, x) in channels.enumerated() {
            // ultralytics' bias_init at strides 8, 16, 32, ...: box bias 2.0, class bias log(5 / nc / (640 / s)^2).
            let stride = Double(8 << i)
            let b = w.scope("cv2").scope(i), c = w.scope("cv3").scope(i)
            box.append(Chain(blocks: [
                try ConvBlock(b.scope(0), c1: x, c2: c2, k: 3, act: act),
                try ConvBlock(b.scope(1), c1: c2, c2: c2, k: 3, act: act),
                try PlainConv(b.scope(2), c1: c2, c2: 4 * regMax, k: 1, biasInit: .constant(2.0)),
            ]))
            let clsBias = Float(log(5 / Double(nc) / pow(640 / stride, 2)))
            cls.append(Chain(blocks: [
                try ConvBlock(c.scope(0), c1: x, c2: c3, k: 3, act: act),
                try ConvBlock(c.scope(1), c1: c3, c2: c3, k: 3, act: act),
                try PlainConv(c.scope(2), c1: c3, c2: nc, k: 1, biasInit: .constant(clsBias)),
            ]))
        }
        self.box = box; self.cls = cls
        firstConvs = zip(box, cls).map { b, c in
            let (cb, cc) = (b.blocks[0] as! ConvBlock, c.blocks[0] as! ConvBlock)
            return ConvBlock(folded: concat([cb.weight, cc.weight], axis: 0), bias: concat([cb.bias, cc.bias], axis: 0),
                             c1: cb.c1, c2: cb.c2 + cc.c2, k: cb.k, s: cb.s, p: cb.p, g: cb.g, d: cb.d, act: cb.act)
        }
        boxRest = box.map { Chain(blocks: Array($0.blocks.dropFirst())) }
        clsRest = cls.map { Chain(blocks: Array($0.blocks.dropFirst())) }
        strides = channels.indices.map { Float(8 << $0) }
        let arange = Tensor(shape: [1, regMax, 1, 1], data: (0 ..< regMax).map(Float.init))
        dfl = regMax > 1 ? try w.tensor("dfl.conv.weight", shape: [1, regMax, 1, 1], init: .value(arange)).data : []
    }

    public var parameterCount: Int {
        box.reduce(0) { $0 + $1.parameterCount } + cls.reduce(0) { $0 + $1.parameterCount } + dfl.count
    }

    public func outputShape(inputShapes: [[Int]]) -> [Int] {
        [inputShapes[0][0], 4 + nc, inputShapes.reduce(0) { $0 + $1[2] * $1[3] }]
    }

    public func flops(inputShapes: [[Int]]) -> Double {
        var f = 0.0
        for (i, s) in inputShapes.enumerated() { f += box[i].flops(inputShape: s) + cls[i].flops(inputShape: s) }
        let anchors = Double(inputShapes.reduce(0) { $0 + $1[2] * $1[3] })
        // DFL: a 1x1 conv from reg_max bins to 1, for each of the 4 sides.
        return f + 2 * anchors * 4 * Double(regMax)
    }

    /// Channels `range` of a [1, C, H, W] tensor.
    private func channels(_ t: Tensor, _ range: Range<Int>) -> Tensor {
        let plane = t.shape[2] * t.shape[3]
        return Tensor(shape: [1, range.count, t.shape[2], t.shape[3]], data: Array(t.data[range.lowerBound * plane ..< range.upperBound * plane]))
    }

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        guard inputs.count == box.count else {
            throw ModelBuildError(file: ctx.path, row: nil, problem: "Detect expects \(box.count) inputs, got \(inputs.count)")
        }
        var boxes: [Tensor] = [], scores: [Tensor] = []
        var anchors: [(x: Float, y: Float, stride: Float)] = []
        for (i, x) in inputs.enumerated() {
            let h = x.shape[2], w = x.shape[3]
            let both = try firstConvs[i].forward(x, ctx)
            let (b0, c0) = (channels(both, 0 ..< c2), channels(both, c2 ..< c2 + c3))
            boxes.append(try boxRest[i].forward(b0, ctx.child("cv2").child(i)).reshaped([4 * regMax, h * w]))
            scores.append(try clsRest[i].forward(c0, ctx.child("cv3").child(i)).reshaped([nc, h * w]))
            let s = strides[i]
            for yy in 0 ..< h { for xx in 0 ..< w { anchors.append((Float(xx) + 0.5, Float(yy) + 0.5, s)) } }
        }
        let a = anchors.count
        let boxCat = concat(boxes, axis: 1)    // [4*regMax, A]
        var clsCat = concat(scores, axis: 1)   // [nc, A]
        applyActivation(&clsCat, .sigmoid)
        var out = [Float](repeating: 0, count: (4 + nc) * a)
        boxCat.data.withUnsafeBufferPointer { bp in
            var dist = [Float](repeating: 0, count: 4)
            for j in 0 ..< a {
                for side in 0 ..< 4 {
                    if regMax > 1 {
                        // softmax over the bins, then the expectation with DFL's weights
                        var m = -Float.infinity
                        for k in 0 ..< regMax { m = max(m, bp[(side * regMax + k) * a + j]) }
                        var z: Float = 0, e: Float = 0
                        for k in 0 ..< regMax {
                            let v = expf(bp[(side * regMax + k) * a + j] - m)
                            z += v; e += v * dfl[k]
                        }
                        dist[side] = e / z
                    } else {
                        dist[side] = bp[side * a + j]
                    }
                }
                let an = anchors[j]
                let x1 = an.x - dist[0], y1 = an.y - dist[1], x2 = an.x + dist[2], y2 = an.y + dist[3]
                out[j] = (x1 + x2) / 2 * an.stride
                out[a + j] = (y1 + y2) / 2 * an.stride
                out[2 * a + j] = (x2 - x1) * an.stride
                out[3 * a + j] = (y2 - y1) * an.stride
            }
        }
        out.withUnsafeMutableBufferPointer { op in
            clsCat.data.withUnsafeBufferPointer { cp in
                for i in 0 ..< nc * a { op[4 * a + i] = cp[i] }
            }
        }
        return LayerOutput(Tensor(shape: [1, 4 + nc, a], data: out))
    }
}
