import Foundation
import XCTest
@testable import ModelZoo
@testable import ONNX
import Tensor

/// An ultralytics ONNX export opened as a `DetectionModel`: its family, classes, layer rows grouped by module path,
/// a traced forward pass equal to onnxruntime's, and YOLO post-processing.
final class ONNXDetectionModelTests: XCTestCase {
    func testTinyYOLOv8OpensRunsAndTraces() throws {
        let net = try openModel(ONNXFixtures.path("yolov8-tiny-dynamic.onnx"))
        let model = try XCTUnwrap(net as? ONNXDetectionModel)
        XCTAssertEqual(net.family, "YOLOv8")
        XCTAssertEqual(net.classNames, ["person", "car", "dog"])
        XCTAssertEqual(net.inputSizeRule, .strideMultiple(32))
        XCTAssertEqual(net.defaultInputSize, 64)
        let rows = net.layerTable(inputSize: GridSize(64, 96))
        // Ultralytics' 23 layers are the rows (plus the unnamed nodes' row), in order, each with its nodes as children.
        let modelRows = rows.map(\.module).filter { $0.hasPrefix("model.") }
        XCTAssertEqual(modelRows, (0 ... 22).map { "model.\($0)" })
        XCTAssertEqual(rows.filter { $0.module.hasPrefix("model.") }.map(\.index), Array(0 ... 22), "ultralytics' layer numbers")
        let head = try XCTUnwrap(rows.first { $0.module == "model.22" })
        XCTAssertTrue(head.children.contains { $0.module == "dfl.Softmax Softmax" }, "\(head.children.map(\.module).prefix(40))")
        XCTAssertEqual(rows.reduce(0) { $0 + $1.params }, model.model.parameterCount - unusedParameters(model))

        // Shapes and FLOPs before any forward pass: model.0 is Conv(3 -> 8, k3, s2) + SiLU at 64x96 -> [1, 8, 32, 48],
        // 2 · 8·32·48 · 3·3·3 FLOPs; the head's row ends with output0's [1, 7, 126].
        let first = try XCTUnwrap(rows.first { $0.module == "model.0" })
        XCTAssertEqual(first.outputShape, [1, 8, 32, 48])
        XCTAssertEqual(first.flops, 2.0 * 8 * 32 * 48 * 27)
        XCTAssertEqual(first.children.map(\.module), ["conv.Conv Conv+SiLU"])
        XCTAssertEqual(first.children.first?.outputShape, [1, 8, 32, 48])
        XCTAssertEqual(rows.last { $0.module.hasPrefix("model.") }?.outputShape, [1, 7, 126])
        XCTAssertEqual(rows.reduce(0) { $0 + $1.flops }, rows.reduce(0) { r, row in r + row.children.reduce(0) { $0 + $1.flops } })
        let goldens = try SafetensorsFile(path: ONNXFixtures.path("goldens.safetensors"))
        let images = try goldens.tensor("yolov8-tiny-dynamic.images")
        let want = try goldens.tensor("yolov8-tiny-dynamic.output0")
        let trace = Trace()
        let out = try net.forward(images, trace: trace, postprocess: PostprocessOptions(confidence: 0.0, iou: 0.7, maxDetections: 300))
        var worst: Float = 0
        for (a, b) in zip(out.output.data, want.data) { worst = Swift.max(worst, Swift.abs(a - b)) }
        XCTAssertLessThanOrEqual(worst, 1e-4 * want.maxAbs)
        XCTAssertEqual(out.extras["output0"]?.shape, [1, 7, 126])
        // The trace: one step per row first (the explorer's row -> step), then one per node under its dotted path.
        let snap = trace.snapshot
        XCTAssertEqual(snap.steps.count, rows.count + model.interpreter.runNodes.count)
        // The explorer takes a row's first step with the row's index (TraceIndex): the row's own.
        for r in rows {
            let s = try XCTUnwrap(snap.steps.first { $0.index == r.index }, r.module)
            XCTAssertEqual(s.path, r.module)
        }
        XCTAssertTrue(snap.steps.contains { $0.path == "model.22.dfl.Softmax" && $0.moduleType == "Softmax" && $0.output != nil })
        XCTAssertEqual(snap.steps.first { $0.path == "model.0" }?.outputShape, [1, 8, 32, 48])
        // Post-processing: every anchor's best class above 0, class-aware NMS at 0.7, boxes inside or near the input.
        XCTAssertFalse(out.detections.isEmpty)
        XCTAssertLessThanOrEqual(out.detections.count, 126)
        for d in out.detections { XCTAssertTrue(["person", "car", "dog"].contains(d.className)) }
        let strict = net.detections(from: out, inputSize: GridSize(64, 96), options: PostprocessOptions(confidence: 0.99))
        XCTAssertTrue(strict.allSatisfy { $0.score > 0.99 })
    }

    /// Float initialisers no run node reads (folded into constants) are counted by the file, not by the rows.
    func unusedParameters(_ m: ONNXDetectionModel) -> Int {
        let read = Set(m.interpreter.runNodes.flatMap(\.inputs).map(ONNXInterpreter.sourceName))
        return m.model.initializers.values.filter { !read.contains($0.name) && [.float, .float16, .bfloat16, .double].contains($0.elementType) }
            .reduce(0) { $0 + $1.count }
    }

    func testNamesMetadata() {
        XCTAssertEqual(ONNXDetectionModel.parseNames("{0: 'person', 1: \"it's\", 2: 'a, b: c'}"), ["person", "it's", "a, b: c"])
        XCTAssertEqual(ONNXDetectionModel.parseNames("{1: 'x'}"), [])
        XCTAssertEqual(ONNXDetectionModel.parseNames("garbage"), [])
    }

    func testWeightsOptionIsRefused() {
        XCTAssertThrowsError(try openModel(ONNXFixtures.path("yolov8-tiny-dynamic.onnx"), weights: "w.pt")) { e in
            XCTAssertTrue("\(e)".contains("carries its own weights"), "\(e)")
        }
    }

    /// A static export takes its own size: a requested size becomes the export's (with a warning that says so), and
    /// an image letterboxed at it fits the export (smaller sides are padded up, as ultralytics' LetterBox pads).
    func testStaticExportTakesItsOwnSize() throws {
        let net = try openModel(ONNXFixtures.path("yolov8-simam-tiny.onnx"))
        XCTAssertEqual(net.inputSizeRule, .fixed(GridSize(64, 64), stride: 32))
        XCTAssertEqual(net.checkInputSize(200), CheckedInputSize(size: 64, warning: "this export takes 64x64 (width x height) inputs only: using 64, not 200"))
        XCTAssertNil(net.checkInputSize(64).warning)
        let image = try ImageIO.load(path: ONNXFixtures.directory.appendingPathComponent("../predict/coffee.png").path)
        let prepared = Preprocess.prepare(image, for: net, size: 200)
        XCTAssertLessThanOrEqual(prepared.tensor.shape[2], 64)
        XCTAssertEqual(prepared.tensor.shape[3], 64)
        XCTAssertNoThrow(try net.validateInput(prepared.tensor.shape))
        XCTAssertNotNil(net.inputSizeRule.problem(height: 96, width: 64))
    }

    /// Exports whose graph ends in post-processed rows [1, k, 6] give the rows above the threshold as detections:
    /// YOLO26's end-to-end head (x1, y1, x2, y2 in input pixels) and ultralytics 8.4's RT-DETR (normalised cx, cy, w, h),
    /// each checked against onnxruntime's rows.
    func testPostprocessedRowsBecomeDetections() throws {
        let goldens = try SafetensorsFile(path: ONNXFixtures.path("goldens.safetensors"))
        for (name, size, normalised) in [("yolo26-tiny", GridSize(64, 64), false), ("rtdetr-tiny", GridSize(64, 96), true)] {
            let net = try openModel(ONNXFixtures.path(name + ".onnx"))
            let model = try XCTUnwrap(net as? ONNXDetectionModel)
            XCTAssertEqual(model.head, normalised ? .rtdetr : .endToEnd, name)
            let rows = try goldens.tensor(name + ".output0")
            // A threshold between the 3rd and 4th best score keeps exactly three rows.
            let conf = (rows.data[2 * 6 + 4] + rows.data[3 * 6 + 4]) / 2
            XCTAssertGreaterThan(rows.data[2 * 6 + 4], rows.data[3 * 6 + 4], "\(name): distinct scores around the threshold")
            let out = try net.forward(try goldens.tensor(name + ".images"), trace: nil, postprocess: PostprocessOptions(confidence: conf))
            XCTAssertEqual(out.detections.count, 3, name)
            for (i, d) in out.detections.enumerated() {
                let r = Array(rows.data[i * 6 ..< i * 6 + 6])
                var want = [r[0], r[1], r[2], r[3]]
                if normalised {
                    let W = Float(size.width), H = Float(size.height)
                    let (cx, cy, w, h) = (r[0] * W, r[1] * H, r[2] * W, r[3] * H)
                    want = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
                }
                XCTAssertEqual(d.classIndex, Int(r[5]), name)
                XCTAssertEqual(d.className, ["person", "car", "dog"][Int(r[5])], name)
                XCTAssertEqual(d.score, r[4], accuracy: 1e-4, name)
                for (a, b) in zip([d.x1, d.y1, d.x2, d.y2], want) { XCTAssertEqual(a, b, accuracy: 1e-3 * Swift.max(1, abs(b)), name) }
            }
        }
        // Two classes make raw RT-DETR scores 6 wide too: rows are told apart by whole class indices, best first.
        let raw = Tensor(shape: [1, 2, 6], data: [0.5, 0.5, 0.2, 0.2, 0.3, 0.9, 0.4, 0.4, 0.1, 0.1, 0.8, 0.1])
        let rows = Tensor(shape: [1, 2, 6], data: [0.5, 0.5, 0.2, 0.2, 0.9, 1, 0.4, 0.4, 0.1, 0.1, 0.8, 0])
        XCTAssertFalse(ONNXDetectionModel.holdsRTDETRRows(raw, classes: 2))
        XCTAssertTrue(ONNXDetectionModel.holdsRTDETRRows(rows, classes: 2))
        XCTAssertTrue(ONNXDetectionModel.holdsRTDETRRows(rows, classes: 3))
    }
}
