import Foundation
import XCTest
@testable import ONNX
import Tensor

/// Whole exported models against onnxruntime (scripts/fixtures/gen_onnx_models.py).
final class ONNXModelTests: XCTestCase {
    /// A tiny YOLOv8 exported by ultralytics with dynamic=True: the symbolic height and width bind from a 64x96
    /// input, the export's shape arithmetic folds or runs, and output0 [1, 7, 126] equals onnxruntime's within
    /// 1e-4 of its largest value.
    func testTinyYOLOv8DynamicExportMatchesOnnxruntime() throws {
        let model = try ONNXModel.load(path: ONNXFixtures.path("yolov8-tiny-dynamic.onnx"))
        XCTAssertEqual(model.inputs.map(\.shapeDescription), ["[batch, 3, height, width]"])
        XCTAssertEqual(model.metadata["names"], "{0: 'person', 1: 'car', 2: 'dog'}")
        XCTAssertTrue(model.modulePaths.contains("model.22.dfl"))
        let goldens = try SafetensorsFile(path: ONNXFixtures.path("goldens.safetensors"))
        let images = try goldens.tensor("yolov8-tiny-dynamic.images")
        let want = try goldens.tensor("yolov8-tiny-dynamic.output0")
        let interpreter = try ONNXInterpreter(model: model)
        XCTAssertGreaterThan(interpreter.foldedNodeCount, 90, "the Constant nodes and what follows from them fold")
        var seen = 0, peak = 0, live = 0
        var liveNames = Set<String>()
        let out = try interpreter.run(["images": images]) { node, _, _ in
            seen += 1
            liveNames.formUnion(node.outputs)
            live = liveNames.count
            peak = Swift.max(peak, live)
            return true
        }
        XCTAssertEqual(seen, interpreter.runNodes.count)
        let got = try XCTUnwrap(out["output0"])
        XCTAssertEqual(got.shape, [1, 7, 126])
        var worst: Float = 0
        for (a, b) in zip(got.tensor.data, want.data) { worst = Swift.max(worst, Swift.abs(a - b)) }
        print("yolov8-tiny-dynamic output0: max abs diff \(worst) (max |value| \(want.maxAbs))")
        XCTAssertLessThanOrEqual(worst, 1e-4 * want.maxAbs)
    }

    /// An input of the wrong channel count is refused before anything runs, naming the input and its shape.
    func testWrongInputShapeIsRefused() throws {
        let model = try ONNXModel.load(path: ONNXFixtures.path("yolov8-tiny-dynamic.onnx"))
        let interpreter = try ONNXInterpreter(model: model)
        XCTAssertThrowsError(try interpreter.run(["images": Tensor(zeros: [1, 4, 64, 64])])) { e in
            XCTAssertTrue("\(e)".contains("input 'images' must be [batch, 3, height, width], got [1, 4, 64, 64]"), "\(e)")
        }
    }
}
