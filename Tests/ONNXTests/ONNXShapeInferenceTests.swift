import Foundation
import XCTest
@testable import ModelZoo
@testable import ONNX
import Tensor

/// Static shape inference (ONNXInterpreter.inferShapes): every run node's output shapes before any run, equal to
/// what a real run makes on every whole-model golden and at odd sizes; data-dependent shapes are "?", not guessed.
final class ONNXShapeInferenceTests: XCTestCase {
    /// Runs `interpreter` on a seeded image of `shape` and compares each node's every output shape with the
    /// inferred one; returns the number of shapes compared.
    @discardableResult
    func assertShapesAgree(_ interpreter: ONNXInterpreter, input: String, shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let inferred = try interpreter.inferShapes([input: shape])
        XCTAssertEqual(inferred.unknown.count, 0, "\(inferred.unknown.prefix(3))", file: file, line: line)
        var compared = 0, k = 0
        let x = Tensor(shape: shape, data: (0 ..< shape.reduce(1, *)).map { Float(($0 * 7919) % 255) / 255 })
        _ = try interpreter.run([input: x]) { node, outs, _ in
            let want = outs.map(\.shape)
            let got = inferred.nodeOutputs[k].prefix(want.count).map { $0 ?? [-1] }
            XCTAssertEqual(got, want, "\(node.opType) '\(node.name)' at \(shape)", file: file, line: line)
            compared += want.count
            k += 1
            return true
        }
        XCTAssertEqual(k, inferred.nodeOutputs.count, file: file, line: line)
        return compared
    }

    /// The committed exports: the dynamic YOLOv8 at its golden 64x96 and at odd stride multiples (tall, wide,
    /// square), the static ones at their own size.
    func testShapesAgreeWithARunOnEveryWholeModelGolden() throws {
        let dynamic = try ONNXInterpreter(model: try ONNXModel.load(path: ONNXFixtures.path("yolov8-tiny-dynamic.onnx")))
        for (h, w) in [(64, 96), (96, 64), (32, 224), (160, 96), (32, 32)] {
            try assertShapesAgree(dynamic, input: "images", shape: [1, 3, h, w])
        }
        for (name, input, shape) in [("yolo11-tiny", "images", [1, 3, 64, 64]), ("yolov8-simam-tiny", "images", [1, 3, 64, 64]),
                                     ("deformable-detr-tiny", "pixel_values", [1, 3, 128, 128]), ("rtdetr-tiny", "images", [1, 3, 64, 96]),
                                     ("two-grids-tiny", "images", [1, 3, 32, 32])] {
            let interpreter = try ONNXInterpreter(model: try ONNXModel.load(path: ONNXFixtures.path("\(name).onnx")))
            let n = try assertShapesAgree(interpreter, input: input, shape: shape)
            XCTAssertGreaterThan(n, 10, name)
        }
    }

    /// The full-size exports of `gen_onnx_models.py --full` (git-ignored; skipped when absent): yolov8n and rtdetr-l,
    /// static exports at 640.
    func testShapesAgreeOnFullSizeExports() throws {
        guard FileManager.default.fileExists(atPath: ONNXFixtures.path("full/rtdetr-l.onnx")) else { throw XCTSkip("full-size exports not generated") }
        for name in ["yolov8n", "rtdetr-l"] {
            let interpreter = try ONNXInterpreter(model: try ONNXModel.load(path: ONNXFixtures.path("full/\(name).onnx")))
            try assertShapesAgree(interpreter, input: "images", shape: [1, 3, 640, 640])
        }
    }

    /// A TopK whose K is computed from the image's values: its shapes and every dependant's are unknown before a
    /// run, the reason names it, and the layer table shows "?" for those rows with no shape, never a guess.
    func testDataDependentShapesAreUnknownNotGuessed() throws {
        let nodes = [
            ONNXBuilder.Node(op: "Relu", name: "/model.0/Relu", inputs: ["x"], outputs: ["r"]),
            ONNXBuilder.Node(op: "ReduceMax", name: "/model.1/ReduceMax", inputs: ["r"], outputs: ["k"]),
            ONNXBuilder.Node(op: "TopK", name: "/model.1/TopK", inputs: ["r", "k"], outputs: ["v", "i"]),
            ONNXBuilder.Node(op: "Sigmoid", name: "/model.2/Sigmoid", inputs: ["v"], outputs: ["y"]),
        ]
        let data = ONNXBuilder.model(nodes: nodes, inputs: [("x", [1, 1, 2, 4])], outputs: ["y"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("topk-\(UUID().uuidString).onnx").path
        try data.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let model = try ONNXDetectionModel(path: file)
        let shapes = try model.interpreter.inferShapes(["x": [1, 1, 2, 4]])
        XCTAssertEqual(shapes.nodeOutputs.map { $0.first ?? nil }, [[1, 1, 2, 4], [1, 1, 1, 1], nil, nil])
        XCTAssertTrue(shapes.unknown[2]?.contains("K") == true, "\(shapes.unknown)")
        XCTAssertTrue(shapes.unknown[3]?.contains("TopK") == true, "\(shapes.unknown)")
        // A run makes K from the data: 3 here.
        let x = Tensor(shape: [1, 1, 2, 4], data: [0.5, 3, 1, 2, 0, 0.25, 2.5, 1.5])
        let out = try model.interpreter.run(["x": x])
        XCTAssertEqual(out["y"]?.shape, [1, 1, 2, 3])
        let rows = model.layerTable(inputSize: GridSize(2, 4))
        XCTAssertEqual(rows.map(\.module), ["model.0", "model.1", "model.2"])
        XCTAssertEqual(rows[0].outputShape, [1, 1, 2, 4])
        XCTAssertEqual(rows[1].outputShape, [], "unknown: no shape shown")
        XCTAssertTrue(rows[1].arguments.contains("? 1 shape known only after a run"), rows[1].arguments)
        XCTAssertEqual(rows[1].children.map(\.module), ["ReduceMax ReduceMax", "TopK TopK ?"])
        XCTAssertEqual(rows[2].children.map(\.module), ["Sigmoid Sigmoid ?"])
        XCTAssertTrue(rows[2].children[0].arguments.contains("TopK '/model.1/TopK'"), rows[2].children[0].arguments)
    }

    /// Found by fuzz-onnx: an AveragePool with one stride ([41725] for two spatial axes) trapped in the pooling shape
    /// rule, which read strides[1]; opening the file in the explorer or `info` crashed. The rule and the op now check
    /// the node with one function and refuse it with the same message; so do Conv's.
    func testPoolAndConvShapeRulesCheckTheNodeAsTheOpsDo() throws {
        let path = ONNXFixtures.path("hostile/fuzz-crash-pool-shape-rule.onnx")
        let model = try ONNXDetectionModel(path: path)
        XCTAssertThrowsError(try model.interpreter.inferShapes(["x": [1, 2, 11, 7]])) { XCTAssertTrue("\($0)".contains("strides [41725] must be two positive numbers"), "\($0)") }
        XCTAssertThrowsError(try model.interpreter.run(["x": Tensor(repeating: 1, shape: [1, 2, 11, 7])])) {
            XCTAssertTrue("\($0)".contains("strides [41725] must be two positive numbers"), "\($0)")
        }
        let rows = model.layerTable(inputSize: GridSize(11, 7))
        XCTAssertEqual(rows.map(\.outputShape), [[]], "the row, with no shape")
        XCTAssertTrue(rows[0].arguments.contains("no shapes at 7x11:") && rows[0].arguments.contains("strides [41725]"), rows[0].arguments)
        // A Conv whose kernel is larger than its padded input: refused by both, no negative output size.
        var weight = Onnx_TensorProto()
        weight.name = "w"; weight.dataType = 1; weight.dims = [1, 1, 5, 5]; weight.floatData = [Float](repeating: 1, count: 25)
        let data = ONNXBuilder.model(nodes: [.init(op: "Conv", name: "/model.0/Conv", inputs: ["x", "w"], outputs: ["y"])],
                                     inputs: [("x", [1, 1, 3, 3])], outputs: ["y"], initializers: [weight])
        let interpreter = try ONNXInterpreter(model: try ONNXModel(data: data, file: "conv.onnx", directory: nil))
        for attempt in [{ _ = try interpreter.inferShapes(["x": [1, 1, 3, 3]]) }, { _ = try interpreter.run(["x": Tensor(repeating: 1, shape: [1, 1, 3, 3])]) }] {
            XCTAssertThrowsError(try attempt()) { XCTAssertTrue("\($0)".contains("is larger than the padded input"), "\($0)") }
        }
        // A Tile whose repeats multiply past 64 bits: an error from the rule and the op, not an overflow trap.
        var repeats = Onnx_TensorProto()
        repeats.name = "r"; repeats.dataType = 7; repeats.dims = [4]; repeats.int64Data = [1, 1, 1 << 62, 1]
        let tileData = ONNXBuilder.model(nodes: [.init(op: "Tile", name: "/model.0/Tile", inputs: ["x", "r"], outputs: ["y"])],
                                         inputs: [("x", [1, 1, 3, 3])], outputs: ["y"], initializers: [repeats])
        let tile = try ONNXInterpreter(model: try ONNXModel(data: tileData, file: "tile.onnx", directory: nil))
        for attempt in [{ _ = try tile.inferShapes(["x": [1, 1, 3, 3]]) }, { _ = try tile.run(["x": Tensor(repeating: 1, shape: [1, 1, 3, 3])]) }] {
            XCTAssertThrowsError(try attempt()) { XCTAssertTrue("\($0)".contains("overflow"), "\($0)") }
        }
    }

    /// The table's FLOPs come from the inferred shapes: rtdetr-tiny's Convs and MatMuls at 64x96 sum to the FLOPs
    /// counted from a real run's shapes.
    func testFLOPsFromInferredShapesEqualThoseOfARun() throws {
        let model = try XCTUnwrap(try openModel(ONNXFixtures.path("rtdetr-tiny.onnx")) as? ONNXDetectionModel)
        let rows = model.layerTable(inputSize: GridSize(64, 96))
        var shapes: [String: [Int]] = [:]
        for (name, i) in model.model.initializers { shapes[name] = i.dims }
        var fromRun = 0.0
        _ = try model.interpreter.run(["images": Tensor(zeros: [1, 3, 64, 96])]) { node, outs, _ in
            for (name, v) in zip(node.outputs, outs) where !name.isEmpty { shapes[name] = v.shape }
            fromRun += ONNXDetectionModel.flops(node, output: outs[0].shape) { shapes[$0] }
            return true
        }
        XCTAssertGreaterThan(fromRun, 1e6)
        XCTAssertEqual(rows.reduce(0) { $0 + $1.flops }, fromRun)
        XCTAssertEqual(rows.first { $0.module == "model.6" }?.outputShape, [1, 32, 2, 3], "AIFI on the 2x3 stride-32 map")
        // A traced run's row steps carry the rows' FLOPs (what `bench` sums and divides by the time).
        let trace = Trace()
        _ = try model.forward(Tensor(zeros: [1, 3, 64, 96]), trace: trace, postprocess: PostprocessOptions())
        let rowSteps = Set(rows.map(\.module))
        XCTAssertEqual(trace.snapshot.steps.filter { rowSteps.contains($0.path) }.reduce(0) { $0 + $1.flops }, fromRun)
    }
}
