import Foundation
import CKernels

// `detr-tui bench ops`: the machine's sgemm rate next to the conv shapes RT-DETR-l and YOLOv8s run.

/// One distinct convolution of a model at 640x640 and how often the model runs it.
public struct ConvShape: Sendable, Codable, Equatable {
    public var model: String
    public var cin: Int, cout: Int, kh: Int, kw: Int, stride: Int, padding: Int, dilation: Int, groups: Int
    public var h: Int, w: Int
    public var count: Int

    public init(_ model: String, cin: Int, cout: Int, k: (Int, Int), stride: Int, padding: Int, dilation: Int,
                groups: Int, h: Int, w: Int, count: Int) {
        self.model = model
        self.cin = cin; self.cout = cout; kh = k.0; kw = k.1
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
        self.h = h; self.w = w; self.count = count
    }

    public var outH: Int { (h + 2 * padding - dilation * (kh - 1) - 1) / stride + 1 }
    public var outW: Int { (w + 2 * padding - dilation * (kw - 1) - 1) / stride + 1 }
    public var isDepthwise: Bool { groups > 1 && groups == cin }
    /// Multiply-adds counted as two operations.
    public var flops: Double { 2 * Double(cout * (cin / groups) * kh * kw) * Double(outH * outW) }
    public var label: String {
        "\(cin)->\(cout) k\(kh == kw ? "\(kh)" : "\(kh)x\(kw)") s\(stride)\(groups > 1 ? " g\(groups)" : "") \(h)x\(w)"
    }
}

public enum OpsBenchmark {
    /// The distinct conv2d shapes of RT-DETR-l and YOLOv8s on a 1x3x640x640 input, with how many times
    /// each runs in one forward pass. Extracted from the ultralytics configs (rtdetr-l.yaml, yolov8s.yaml)
    /// by scripts/bench/conv_shapes.py.
    public static let convShapes: [ConvShape] = [
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 5),
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 20, w: 20, count: 3),
    ConvShape("rtdetr-l", cin: 384, cout: 384, k: (5, 5), stride: 1, padding: 2, dilation: 1, groups: 384, h: 20, w: 20, count: 6),
    ConvShape("rtdetr-l", cin: 384, cout: 384, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 5),
    ConvShape("rtdetr-l", cin: 512, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 2),
    ConvShape("rtdetr-l", cin: 1024, cout: 384, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("rtdetr-l", cin: 1024, cout: 2048, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("rtdetr-l", cin: 2048, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("rtdetr-l", cin: 3328, cout: 1024, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("rtdetr-l", cin: 192, cout: 192, k: (5, 5), stride: 1, padding: 2, dilation: 1, groups: 192, h: 40, w: 40, count: 18),
    ConvShape("rtdetr-l", cin: 192, cout: 192, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 15),
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 6),
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 8),
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("rtdetr-l", cin: 512, cout: 192, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("rtdetr-l", cin: 512, cout: 1024, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 3),
    ConvShape("rtdetr-l", cin: 512, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 4),
    ConvShape("rtdetr-l", cin: 1024, cout: 192, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 2),
    ConvShape("rtdetr-l", cin: 1024, cout: 1024, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1024, h: 40, w: 40, count: 1),
    ConvShape("rtdetr-l", cin: 1024, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("rtdetr-l", cin: 1664, cout: 512, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("rtdetr-l", cin: 2176, cout: 512, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 2),
    ConvShape("rtdetr-l", cin: 96, cout: 96, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 5),
    ConvShape("rtdetr-l", cin: 128, cout: 96, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("rtdetr-l", cin: 256, cout: 512, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 3),
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 4),
    ConvShape("rtdetr-l", cin: 256, cout: 256, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("rtdetr-l", cin: 512, cout: 512, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 512, h: 80, w: 80, count: 1),
    ConvShape("rtdetr-l", cin: 512, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 3),
    ConvShape("rtdetr-l", cin: 704, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("rtdetr-l", cin: 32, cout: 48, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 160, w: 160, count: 1),
    ConvShape("rtdetr-l", cin: 48, cout: 48, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 160, w: 160, count: 6),
    ConvShape("rtdetr-l", cin: 64, cout: 128, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 160, w: 160, count: 1),
    ConvShape("rtdetr-l", cin: 128, cout: 128, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 128, h: 160, w: 160, count: 1),
    ConvShape("rtdetr-l", cin: 336, cout: 64, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 160, w: 160, count: 1),
    ConvShape("rtdetr-l", cin: 64, cout: 32, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 320, w: 320, count: 1),
    ConvShape("rtdetr-l", cin: 16, cout: 32, k: (2, 2), stride: 1, padding: 0, dilation: 1, groups: 1, h: 321, w: 321, count: 1),
    ConvShape("rtdetr-l", cin: 32, cout: 16, k: (2, 2), stride: 1, padding: 0, dilation: 1, groups: 1, h: 321, w: 321, count: 1),
    ConvShape("rtdetr-l", cin: 3, cout: 32, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 640, w: 640, count: 1),
    ConvShape("yolov8s", cin: 16, cout: 1, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 4, w: 8400, count: 1),
    ConvShape("yolov8s", cin: 64, cout: 64, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 64, cout: 64, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 128, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 80, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 256, cout: 256, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 20, w: 20, count: 4),
    ConvShape("yolov8s", cin: 512, cout: 512, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 512, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 512, cout: 64, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 512, cout: 128, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 768, cout: 512, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 3),
    ConvShape("yolov8s", cin: 1024, cout: 512, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 20, w: 20, count: 1),
    ConvShape("yolov8s", cin: 64, cout: 64, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 64, cout: 64, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 128, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 9),
    ConvShape("yolov8s", cin: 128, cout: 80, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 256, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 256, cout: 512, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 256, cout: 256, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 256, cout: 64, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 256, cout: 128, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 384, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 3),
    ConvShape("yolov8s", cin: 512, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 768, cout: 256, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 40, w: 40, count: 1),
    ConvShape("yolov8s", cin: 64, cout: 64, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 7),
    ConvShape("yolov8s", cin: 64, cout: 64, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 128, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 256, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 128, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 64, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 128, cout: 128, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 80, w: 80, count: 2),
    ConvShape("yolov8s", cin: 128, cout: 80, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 192, cout: 128, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 256, cout: 128, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 384, cout: 128, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 80, w: 80, count: 1),
    ConvShape("yolov8s", cin: 32, cout: 32, k: (3, 3), stride: 1, padding: 1, dilation: 1, groups: 1, h: 160, w: 160, count: 2),
    ConvShape("yolov8s", cin: 64, cout: 64, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 160, w: 160, count: 1),
    ConvShape("yolov8s", cin: 64, cout: 128, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 160, w: 160, count: 1),
    ConvShape("yolov8s", cin: 96, cout: 64, k: (1, 1), stride: 1, padding: 0, dilation: 1, groups: 1, h: 160, w: 160, count: 1),
    ConvShape("yolov8s", cin: 32, cout: 64, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 320, w: 320, count: 1),
    ConvShape("yolov8s", cin: 3, cout: 32, k: (3, 3), stride: 2, padding: 1, dilation: 1, groups: 1, h: 640, w: 640, count: 1),
    ]

    public struct Row: Sendable, Codable {
        public var model: String
        public var shape: String
        public var count: Int
        public var depthwise: Bool
        public var gflops: Double
        /// Wall time of one call (best of the rounds).
        public var ms: Double
        public var gflopsPerSecond: Double
        public var percentOfSgemm: Double
        /// Bytes the conv must move at least (input, weights and output, once each) per second of wall time.
        public var gbPerSecond: Double
        /// The conv's memory floor: the wall time of reading its input and weights and writing its output once
        /// each, with no arithmetic, on all cores, timed as the conv is (best of the rounds). What the conv would
        /// take if its arithmetic were free; no kernel for the shape gets much below it on this machine.
        public var floorMs: Double
        /// The share of the sgemm rate the conv would reach at its memory floor.
        public var percentOfSgemmAtFloor: Double
        /// For depthwise convs: (share of the model's conv time) / (share of its conv FLOPs). Only when every
        /// shape of the model was measured.
        public var costRatio: Double?
        /// The cost ratio the depthwise conv would have at its memory floor (the rest of the model as measured).
        public var costRatioAtFloor: Double?
    }

    public struct ModelSummary: Sendable, Codable {
        public var model: String
        public var convGflops: Double
        public var convMs: Double
        public var gflopsPerSecond: Double
        public var percentOfSgemm: Double
        public var depthwiseFlopShare: Double
        public var depthwiseTimeShare: Double
    }

    /// One vector op (element-wise, norm, softmax, reduction, depthwise conv) timed on every kernel set this process
    /// may run, side by side in the same rounds.
    public struct VectorOpRow: Sendable, Codable {
        public var op: String
        /// Wall time of one call (best of the rounds), by kernel set ("AVX-512", "AVX2", "portable").
        public var ms: [String: Double]
    }

    public struct Report: Sendable, Codable {
        /// OpenBLAS 1024^3 sgemm on all cores, wall clock.
        public var sgemmGflopsPerSecond: Double
        /// The same 1024^3 product through the engine's own `matmul`.
        public var matmulGflopsPerSecond: Double
        public var sgemmSize: Int
        public var cores: Int
        public var runs: Int
        public var loadAverage: Double?
        /// The processor, its vector features, the OpenBLAS core and the engine's kernels.
        public var machine: MachineReport
        public var rows: [Row]
        public var models: [ModelSummary]
        /// The vector ops (those matching the filter), each on every kernel set.
        public var vectorOps: [VectorOpRow]
    }

    /// A vector op of the models at 640x640, run on a given kernel set; `elements`: the floats it writes (for the
    /// repeat count of a sample).
    struct VectorOp {
        var label: String
        var elements: Int
        var run: (KernelSet) -> Void
    }

    /// The element-wise, norm, softmax and reduction shapes RT-DETR-l's AIFI and decoder, the YOLOs' attention blocks
    /// and their post-processing run, and the depthwise convs of yolo11n (Detect's DWConvs, C2PSA's positional conv)
    /// and RT-DETR-l (the 5x5 and stride-2 3x3 ones).
    static func vectorOps() -> [VectorOp] {
        var ops: [VectorOp] = []
        func binary(_ label: String, _ sa: [Int], _ sb: [Int], _ f: @escaping (Tensor, Tensor, KernelSet) -> Tensor) {
            let a = randomTensor(sa, seed: UInt64(ops.count) + 300), b = randomTensor(sb, seed: UInt64(ops.count) + 400)
            ops.append(VectorOp(label: label, elements: broadcastShape(sa, sb).reduce(1, *)) { _ = f(a, b, $0) })
        }
        binary("add [8400,256] + [8400,256]", [8400, 256], [8400, 256]) { broadcastBinary($0, $1, AddOp.self, kernels: $2) }
        binary("add [8400,256] + [256]", [8400, 256], [256]) { broadcastBinary($0, $1, AddOp.self, kernels: $2) }
        binary("mul [1,256,80,80] * [1,256,1,1]", [1, 256, 80, 80], [1, 256, 1, 1]) { broadcastBinary($0, $1, MulOp.self, kernels: $2) }
        binary("mul [1,64,160,160] * scalar", [1, 64, 160, 160], [1]) { broadcastBinary($0, $1, MulOp.self, kernels: $2) }
        binary("maximum [300,256] [300,256]", [300, 256], [300, 256]) { broadcastBinary($0, $1, MaxOp.self, kernels: $2) }
        binary("relu [1,256,40,40]", [1, 256, 40, 40], [1]) { a, _, k in broadcastBinary(a, Tensor(scalar: 0), MaxKeepNaNOp.self, kernels: k) }
        for (rows, d) in [(8400, 256), (400, 256), (300, 256)] {
            let x = randomTensor([rows, d], seed: 500), w = randomTensor([d], seed: 501), b = randomTensor([d], seed: 502)
            ops.append(VectorOp(label: "layer norm [\(rows),\(d)]", elements: rows * d) { _ = layerNorm(x, weight: w, bias: b, eps: 1e-5, kernels: $0) })
        }
        for shape in [[8, 400, 400], [8, 300, 300], [2, 400, 400], [8400, 80]] {
            let x = randomTensor(shape, seed: 600)
            ops.append(VectorOp(label: "softmax [\(shape.map(String.init).joined(separator: ","))] last axis", elements: x.count) { _ = softmax(x, axis: -1, kernels: $0) })
        }
        do {
            let scores = randomTensor([8400, 80], seed: 700), planes = randomTensor([1, 256, 6400], seed: 701)
            let cols = randomTensor([80, 8400], seed: 702)
            ops.append(VectorOp(label: "max [8400,80] axis 1", elements: 8400) { _ = reduceAxis(scores, axis: 1, keepDims: false, MaxReduce.self, kernels: $0) })
            ops.append(VectorOp(label: "mean [1,256,6400] axis 2", elements: 256 * 64) { _ = reduceAxis(planes, axis: 2, keepDims: false, MeanReduce.self, kernels: $0) })
            ops.append(VectorOp(label: "sum [80,8400] axis 0", elements: 8400 * 8) { _ = reduceAxis(cols, axis: 0, keepDims: false, SumReduce.self, kernels: $0) })
        }
        do {
            let x = randomTensor([1, 64, 160, 160], seed: 800), c = randomTensor([64], seed: 801)
            let v = Tensor(shape: [64], data: c.data.map { Swift.abs($0) + 0.1 })
            ops.append(VectorOp(label: "batch norm [1,64,160,160]", elements: x.count) {
                _ = batchNorm(x, gamma: c, beta: c, mean: c, variance: v, eps: 1e-5, kernels: $0)
            })
            let g = randomTensor([1, 256, 80, 80], seed: 802), w = randomTensor([256], seed: 803)
            ops.append(VectorOp(label: "group norm [1,256,80,80] 32 groups", elements: g.count) {
                _ = groupNorm(g, groups: 32, weight: w, bias: w, eps: 1e-5, kernels: $0)
            })
        }
        // Depthwise convs with SiLU (Conv's activation), on each kernel set.
        for (c, k, s, hw) in [(64, 3, 1, 80), (80, 3, 1, 80), (128, 3, 1, 40), (256, 3, 1, 20), (128, 3, 1, 20),
                              (192, 5, 1, 40), (384, 5, 1, 20), (512, 3, 2, 80), (1024, 3, 2, 40), (128, 3, 2, 160)] {
            let x = randomTensor([1, c, hw, hw], seed: 900), wt = randomTensor([c, 1, k, k], seed: 901), b = randomTensor([c], seed: 902)
            let p = ConvProblem(x, wt, b, (s, s), (k / 2, k / 2), (1, 1), c)
            let out = Tensor(zeros: [1, c, p.g.outH, p.g.outW])
            let o = SharedPointer(UnsafeMutablePointer(mutating: out.data.withUnsafeBufferPointer { $0.baseAddress! }))
            ops.append(VectorOp(label: "depthwise \(c) k\(k) s\(s) \(hw)x\(hw) silu", elements: out.count) { set in
                withExtendedLifetime(out) {
                    x.data.withUnsafeBufferPointer { xp in
                        wt.data.withUnsafeBufferPointer { wp in
                            b.data.withUnsafeBufferPointer { bp in
                                depthwiseConv(p, x: xp.baseAddress!, w: wp.baseAddress!, bias: bp.baseAddress!, activation: .silu,
                                              out: o.base, kernels: set)
                            }
                        }
                    }
                }
            })
        }
        return ops
    }

    /// The vector ops whose label contains `filter` (all for nil or "").
    static func vectorOps(matching filter: String?) -> [VectorOp] {
        let all = vectorOps()
        guard let filter, !filter.isEmpty else { return all }
        return all.filter { $0.label.contains(filter) }
    }

    /// Whether `filter` selects anything: a conv shape or a vector op.
    public static func selectsAnything(_ filter: String?) -> Bool {
        !shapes(matching: filter).isEmpty || !vectorOps(matching: filter).isEmpty
    }

    static func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        return Tensor(shape: shape) { buf in
            for i in 0 ..< buf.count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                buf[i] = Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
            }
        }
    }

    /// One timed thing of the benchmark: `sample` runs it once and returns the seconds it took.
    struct Probe {
        var label: String
        var sample: () -> Double
    }

    static func timed(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// An n x n x n single-precision gemm through OpenBLAS with its own threads on every core (the machine's rate).
    static func sgemmProbe(size n: Int) -> Probe {
        let a = randomTensor([n, n], seed: 1), b = randomTensor([n, n], seed: 2)
        let c = Tensor(zeros: [n, n])
        func run() {
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    c.data.withUnsafeBufferPointer { pc in
                        sgemmThreaded(m: n, n: n, k: n, a: pa.baseAddress!, b: pb.baseAddress!,
                                      c: UnsafeMutablePointer(mutating: pc.baseAddress!))
                    }
                }
            }
        }
        withBlasThreads(Parallel.cores) { run() }   // the first call starts the BLAS threads
        return Probe(label: "sgemm \(n)^3") {
            let t = withBlasThreads(Parallel.cores) { timed(run) }
            // OpenBLAS's threads spin (sched_yield) for about 0.1 s after a product before they sleep; a conv
            // timed meanwhile would share the cores with them.
            usleep(200_000)
            return t
        }
    }

    /// Reading `inputs` once each and writing `outputCount` floats once, split across all cores (ck_stream): a
    /// conv's memory floor when given its input and weights.
    static func stream(_ inputs: [Tensor], outputCount: Int, into out: SharedPointer) {
        let parts = Parallel.cores
        Parallel.forEach(parts, cost: Parallel.threshold) { range in
            for part in range {
                for (i, t) in inputs.enumerated() {
                    t.data.withUnsafeBufferPointer { buf in
                        let lo = buf.count * part / parts, hi = buf.count * (part + 1) / parts
                        let o0 = i == 0 ? outputCount * part / parts : 0, o1 = i == 0 ? outputCount * (part + 1) / parts : 0
                        _ = ck_stream(buf.baseAddress! + lo, hi - lo, out.base + o0, o1 - o0, hasAVX2FMA ? 1 : 0)
                    }
                }
            }
        }
    }

    /// The shapes whose model or label contains `filter` (all of them for nil or "").
    public static func shapes(matching filter: String?) -> [ConvShape] {
        guard let filter, !filter.isEmpty else { return convShapes }
        return convShapes.filter { $0.model.contains(filter) || $0.label.contains(filter) }
    }

    /// Times every shape (optionally those whose model or label contains `filter`) in `runs` rounds: each round
    /// takes one sample of the sgemm, the engine's matmul and every shape and its floor in turn, and each keeps its
    /// best sample. Spreading every measurement over the whole run, instead of taking a shape's samples back to
    /// back, keeps a few seconds of load from another tenant of a shared machine from landing on some shapes and
    /// not on the reference rates.
    public static func run(runs: Int = 3, filter: String? = nil, machine: MachineReport = .current(),
                           progress: ((String) -> Void)? = nil) -> Report {
        let shapes = self.shapes(matching: filter)
        let n = 1024
        let gemmFlops = 2 * Double(n * n * n)
        var probes = [sgemmProbe(size: n)]
        do {
            let a = randomTensor([n, n], seed: 1), b = randomTensor([n, n], seed: 2)
            _ = matmul(a, b)
            probes.append(Probe(label: "matmul \(n)^3") { timed { _ = matmul(a, b) } })
        }
        var reps: [Int] = [], bytes: [Double] = []
        for (i, s) in shapes.enumerated() {
            let x = randomTensor([1, s.cin, s.h, s.w], seed: UInt64(i) + 10)
            let w = randomTensor([s.cout, s.cin / s.groups, s.kh, s.kw], seed: UInt64(i) + 1000)
            let b = randomTensor([s.cout], seed: UInt64(i) + 2000)
            let conv = {
                _ = conv2d(x, weight: w, bias: b, stride: (s.stride, s.stride), padding: (s.padding, s.padding),
                           dilation: (s.dilation, s.dilation), groups: s.groups)
            }
            conv()
            // Small shapes repeat inside one sample (about 0.05 GFLOP per sample). Each sample starts with one
            // untimed call, so that every shape is timed with its input and weights in cache as far as they fit,
            // as a model's previous layer leaves them (the other probes of the round evict them in between;
            // before, only the shapes that repeat were timed warm, and the large maps from memory).
            let r = Swift.max(1, Int(5e7 / Swift.max(s.flops, 1)))
            reps.append(r)
            let outCount = s.cout * s.outH * s.outW
            bytes.append(4 * Double(x.count + w.count + b.count + outCount))
            probes.append(Probe(label: "\(s.model) \(s.label)") {
                conv()
                return timed { for _ in 0 ..< r { conv() } }
            })
            // The floor right after the conv, in the same way: one untimed pass, then r timed ones.
            let sink = Tensor(zeros: [outCount])
            let out = SharedPointer(UnsafeMutablePointer(mutating: sink.data.withUnsafeBufferPointer { $0.baseAddress! }))
            probes.append(Probe(label: "\(s.model) \(s.label) floor") {
                withExtendedLifetime(sink) {
                    stream([x, w, b], outputCount: outCount, into: out)
                    return timed { for _ in 0 ..< r { stream([x, w, b], outputCount: outCount, into: out) } }
                }
            })
        }
        // Every vector op on every kernel set this process may run, one sample each per round, the sets in turn and
        // starting with the next one each round; every sample after one untimed call, so each set finds the operands
        // where the one before left them (the first set of a fixed order was timed with them colder: 2x on the large
        // element-wise ops).
        let sets = KernelSet.allCases.filter(\.isEnabled)
        let vops = vectorOps(matching: filter)
        let convProbes = probes.count
        for op in vops {
            let r = Swift.max(1, 2_000_000 / Swift.max(op.elements, 1))
            for set in sets {
                op.run(set)
                probes.append(Probe(label: "\(op.label) (\(set.rawValue))") {
                    op.run(set)
                    return timed { for _ in 0 ..< r { op.run(set) } } / Double(r)
                })
            }
        }
        var best = [Double](repeating: .infinity, count: probes.count)
        for round in 0 ..< Swift.max(1, runs) {
            for i in 0 ..< probes.count {
                // the vector ops' sets rotated by the round
                let j = i < convProbes ? i
                    : convProbes + (i - convProbes) / sets.count * sets.count + ((i - convProbes) % sets.count + round) % sets.count
                progress?("[round \(round + 1)/\(Swift.max(1, runs))] \(probes[j].label)")
                best[j] = Swift.min(best[j], probes[j].sample())
            }
        }
        let rate = gemmFlops / best[0] / 1e9, ownRate = gemmFlops / best[1] / 1e9
        var rows: [Row] = []
        for (i, s) in shapes.enumerated() {
            let t = best[2 + 2 * i] / Double(reps[i]), floor = best[3 + 2 * i] / Double(reps[i]), gf = s.flops / 1e9
            rows.append(Row(model: s.model, shape: s.label, count: s.count, depthwise: s.isDepthwise, gflops: gf,
                            ms: t * 1e3, gflopsPerSecond: gf / t, percentOfSgemm: 100 * gf / t / rate,
                            gbPerSecond: bytes[i] / t / 1e9, floorMs: floor * 1e3,
                            percentOfSgemmAtFloor: 100 * gf / floor / rate, costRatio: nil, costRatioAtFloor: nil))
        }
        var models: [ModelSummary] = []
        for model in Array(Set(rows.map(\.model))).sorted() {
            let idx = rows.indices.filter { rows[$0].model == model }
            let flops = idx.reduce(0.0) { $0 + rows[$1].gflops * Double(rows[$1].count) }
            let time = idx.reduce(0.0) { $0 + rows[$1].ms * Double(rows[$1].count) }
            var dwFlops = 0.0, dwTime = 0.0
            let complete = idx.count == convShapes.filter { $0.model == model }.count
            for i in idx where rows[i].depthwise {
                let flopShare = rows[i].gflops * Double(rows[i].count) / flops
                let timeShare = rows[i].ms * Double(rows[i].count) / time
                if complete {
                    rows[i].costRatio = timeShare / flopShare
                    let atFloor = rows[i].floorMs * Double(rows[i].count)
                    rows[i].costRatioAtFloor = atFloor / (time - rows[i].ms * Double(rows[i].count) + atFloor) / flopShare
                }
                dwFlops += flopShare; dwTime += timeShare
            }
            let r = flops / (time / 1e3)
            models.append(ModelSummary(model: model, convGflops: flops, convMs: time, gflopsPerSecond: r,
                                       percentOfSgemm: 100 * r / rate, depthwiseFlopShare: dwFlops, depthwiseTimeShare: dwTime))
        }
        var vectorRows: [VectorOpRow] = []
        for (i, op) in vops.enumerated() {
            var ms: [String: Double] = [:]
            for (k, set) in sets.enumerated() { ms[set.rawValue] = best[convProbes + i * sets.count + k] * 1e3 }
            vectorRows.append(VectorOpRow(op: op.label, ms: ms))
        }
        return Report(sgemmGflopsPerSecond: rate, matmulGflopsPerSecond: ownRate,
                      sgemmSize: 1024, cores: Parallel.cores, runs: runs, loadAverage: loadAverage(), machine: machine,
                      rows: rows, models: models, vectorOps: vectorRows)
    }

    /// The 1-minute load average, where the system reports it.
    static func loadAverage() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let first = text.split(separator: " ").first else { return nil }
        return Double(first)
    }

    /// The report as a text table.
    public static func format(_ r: Report) -> String {
        func f(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            s.count >= n ? s : (left ? s + String(repeating: " ", count: n - s.count) : String(repeating: " ", count: n - s.count) + s)
        }
        var lines = r.machine.lines
        lines.append("sgemm \(r.sgemmSize)^3: \(f(r.sgemmGflopsPerSecond, 1)) GFLOP/s on \(r.cores) OpenBLAS threads "
            + "(\(r.machine.blasCore)); "
            + "engine matmul \(r.sgemmSize)^3: \(f(r.matmulGflopsPerSecond, 1)) GFLOP/s")
        lines.append("best of \(r.runs) rounds" + (r.loadAverage.map { "; load average \(f($0, 2)) on \(r.cores) cores" } ?? ""))
        lines.append("")
        lines.append(pad("model", 9, left: true) + pad("conv", 27, left: true) + pad("x", 3) + pad("GFLOPs", 7)
            + pad("ms", 8) + pad("GFLOP/s", 8) + pad("%sgemm", 7) + pad("GB/s", 7) + pad("floor", 7) + pad("at most", 8)
            + pad("dw cost", 8) + pad("at least", 9))
        for row in r.rows {
            lines.append(pad(row.model, 9, left: true) + pad(row.shape, 27, left: true) + pad("\(row.count)", 3)
                + pad(f(row.gflops, 3), 7) + pad(f(row.ms, 2), 8) + pad(f(row.gflopsPerSecond, 1), 8)
                + pad(f(row.percentOfSgemm, 0) + "%", 7) + pad(f(row.gbPerSecond, 1), 7) + pad(f(row.floorMs, 3), 7)
                + pad(row.depthwise ? "" : row.percentOfSgemmAtFloor >= 1000 ? ">999%" : f(row.percentOfSgemmAtFloor, 0) + "%", 8)
                + pad(row.costRatio.map { f($0, 2) + "x" } ?? "", 8) + pad(row.costRatioAtFloor.map { f($0, 2) + "x" } ?? "", 9))
        }
        lines.append("")
        for m in r.models {
            lines.append("\(m.model): all convs (x count) \(f(m.convGflops, 1)) GFLOPs in \(f(m.convMs, 1)) ms = "
                + "\(f(m.gflopsPerSecond, 1)) GFLOP/s = \(f(m.percentOfSgemm, 0))% of sgemm; "
                + "depthwise: \(f(100 * m.depthwiseFlopShare, 1))% of FLOPs, \(f(100 * m.depthwiseTimeShare, 1))% of time")
        }
        let general = r.rows.filter { !$0.depthwise }, slow = general.filter { $0.percentOfSgemm < 60 }
        if !general.isEmpty {
            lines.append("general convs at 60% of sgemm or more: \(general.count - slow.count) of \(general.count)"
                + (slow.isEmpty ? "" : "; under:"))
            for row in slow {
                lines.append("  \(row.model) \(row.shape): \(f(row.percentOfSgemm, 0))% (at most \(f(row.percentOfSgemmAtFloor, 0))%)")
            }
        }
        let rated = r.rows.filter { $0.costRatio != nil }, costly = rated.filter { $0.costRatio! > 3 }
        if !rated.isEmpty {
            lines.append("depthwise convs at 3x their FLOP share or less: \(rated.count - costly.count) of \(rated.count)"
                + (costly.isEmpty ? "" : "; over:"))
            for row in costly {
                lines.append("  \(row.model) \(row.shape): \(f(row.costRatio!, 2))x (at least \(f(row.costRatioAtFloor!, 2))x)")
            }
        }
        if !r.vectorOps.isEmpty {
            let sets = KernelSet.allCases.map(\.rawValue).filter { s in r.vectorOps.contains { $0.ms[s] != nil } }
            lines.append("")
            lines.append(pad("vector op (ms, best of rounds)", 42, left: true) + sets.map { pad($0, 10) }.joined()
                + (sets.count > 1 ? pad("\(sets[sets.count - 1]) / \(sets[0])", 22) : ""))
            for row in r.vectorOps {
                let first = row.ms[sets[0]] ?? .nan, last = row.ms[sets[sets.count - 1]] ?? .nan
                lines.append(pad(row.op, 42, left: true) + sets.map { pad(row.ms[$0].map { f($0, 3) } ?? "", 10) }.joined()
                    + (sets.count > 1 ? pad(f(last / first, 2) + "x", 22) : ""))
            }
            lines.append("")
        }
        lines.append("GB/s: input, weights and output (each once) per second of the conv.")
        lines.append("floor: ms to read the input and weights and write the output once, with no arithmetic, timed as "
            + "the conv is")
        lines.append("  (the conv's memory floor on this machine); at most: the %sgemm the conv would reach at its floor.")
        lines.append("dw cost: a depthwise conv's share of its model's conv time over its share of the FLOPs "
            + "(goal <= 3x); at least: that at its floor.")
        return lines.joined(separator: "\n")
    }
}
