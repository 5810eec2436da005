import Foundation
import XCTest
@testable import ONNX
import Tensor

/// Fixture paths of the ONNX tests.
enum ONNXFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/onnx").standardized
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

/// Every single-op model of Tests/Fixtures/onnx/ops against onnxruntime's output
/// (scripts/fixtures/gen_onnx_ops.py: odd shapes, broadcasting, attribute variants).
final class ONNXOpTests: XCTestCase {
    func testEveryOpMatchesOnnxruntime() throws {
        let goldens = try SafetensorsFile(path: ONNXFixtures.path("ops.safetensors"))
        let dir = ONNXFixtures.directory.appendingPathComponent("ops")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".onnx") }.sorted()
        XCTAssertGreaterThan(files.count, 90)
        var ops = Set<String>()
        for f in files {
            let name = String(f.dropLast(5))
            let model = try ONNXModel.load(path: dir.appendingPathComponent(f).path)
            ops.formUnion(model.nodes.map(\.opType))
            let interpreter = try ONNXInterpreter(model: model)
            var inputs: [String: Tensor] = [:]
            for i in model.inputs { inputs[i.name] = try goldens.tensor("\(name).in.\(i.name)") }
            let outputs = try interpreter.run(inputs)
            for o in model.outputs {
                let want = try goldens.tensor("\(name).out.\(o.name)")
                let got = try XCTUnwrap(outputs[o.name], "\(name): no output \(o.name)")
                XCTAssertEqual(got.shape, want.shape, "\(name).\(o.name)")
                guard got.shape == want.shape else { continue }
                let tol = 1e-5 + 1e-5 * want.maxAbs
                var worst: Float = 0
                for (a, b) in zip(got.tensor.data, want.data) { worst = Swift.max(worst, Swift.abs(a - b)) }
                XCTAssertLessThanOrEqual(worst, tol, "\(name).\(o.name): max abs diff \(worst)")
            }
        }
        // Every registered op but a few simple ones has a golden case.
        let untested = Set(ONNXOps.supported).subtracting(ops)
        XCTAssertTrue(untested.isSubset(of: ["Identity", "Dropout", "Constant", "Size", "Mish", "Elu",
                                             "GreaterOrEqual", "LessOrEqual", "GlobalMaxPool"]),
                      "ops without a golden case: \(untested.sorted())")
    }

    /// A node the registry lacks: the error names the op, its node, the opset and the supported ops.
    func testUnsupportedOpIsNamed() throws {
        let model = try ONNXModel(data: ONNXBuilder.model(nodes: [.init(op: "NonMaxSuppression", name: "/model.22/NMS", inputs: ["x"], outputs: ["y"])],
                                                          inputs: [("x", [1, 4])], outputs: ["y"], opset: 17),
                                  file: "nms.onnx", directory: nil)
        XCTAssertThrowsError(try ONNXInterpreter(model: model)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("nms.onnx") && s.contains("NonMaxSuppression") && s.contains("/model.22/NMS") && s.contains("opset 17")
                          && s.contains("Conv") && s.contains("Softmax"), s)
        }
    }

    /// A bad shape at run time is a thrown error naming the node, never a stop.
    func testBadShapeAtRunTimeIsAnError() throws {
        let model = try ONNXModel(data: ONNXBuilder.model(nodes: [.init(op: "Add", name: "/m/Add", inputs: ["a", "b"], outputs: ["y"])],
                                                          inputs: [("a", [2, 3]), ("b", [-1, -1])], outputs: ["y"], opset: 18),
                                  file: "add.onnx", directory: nil)
        let interpreter = try ONNXInterpreter(model: model)
        XCTAssertThrowsError(try interpreter.run(["a": Tensor(zeros: [2, 3]), "b": Tensor(zeros: [4, 3])])) { e in
            XCTAssertTrue("\(e)".contains("/m/Add") && "\(e)".contains("[2, 3]") && "\(e)".contains("[4, 3]"), "\(e)")
        }
        // The declared fixed dims are checked too, and a symbolic dim binds from the input.
        XCTAssertThrowsError(try interpreter.run(["a": Tensor(zeros: [2, 4]), "b": Tensor(zeros: [2, 4])])) { e in
            XCTAssertTrue("\(e)".contains("input 'a' must be [2, 3]"), "\(e)")
        }
        XCTAssertEqual(try interpreter.run(["a": Tensor(zeros: [2, 3]), "b": Tensor(repeating: 1, shape: [1, 3])])["y"]?.tensor.data, [Float](repeating: 1, count: 6))
    }
}

/// Constant folding makes only small constants when a model is opened.
final class ONNXFoldingTests: XCTestCase {
    /// Found by fuzz-onnx (a timeout): a ConstantOfShape of a huge shape from a 16-byte initialiser was built while
    /// the interpreter folded constants. Large outputs are now left to run time; opening is quick and the node runs.
    func testLargeConstantIsLeftToRunTime() throws {
        let model = try ONNXModel.load(path: ONNXFixtures.path("hostile/fuzz-timeout-constantofshape.onnx"))
        let interpreter = try ONNXInterpreter(model: model)
        XCTAssertEqual(interpreter.runNodes.map(\.opType), ["ConstantOfShape"])
        XCTAssertEqual(interpreter.foldedNodeCount, 0)
        // Found by fuzz-onnx (out of memory): a Range of 1.4 billion values from three scalar initialisers was folded
        // when the interpreter was made. It is left to run time too.
        let range = try ONNXInterpreter(model: try ONNXModel.load(path: ONNXFixtures.path("hostile/fuzz-oom-range-fold.onnx")))
        XCTAssertEqual(range.runNodes.map(\.opType), ["Range"])
        XCTAssertEqual(range.foldedNodeCount, 0)
        // A small one folds.
        var shape = Onnx_TensorProto()
        shape.name = "s"; shape.dataType = 7; shape.dims = [2]; shape.int64Data = [3, 4]
        let small = try ONNXModel(data: ONNXBuilder.model(nodes: [.init(op: "ConstantOfShape", name: "/c/ConstantOfShape", inputs: ["s"], outputs: ["y"])],
                                                          inputs: [], outputs: ["y"], initializers: [shape]), file: "small.onnx", directory: nil)
        let folded = try ONNXInterpreter(model: small)
        XCTAssertEqual(folded.foldedNodeCount, 1)
        XCTAssertEqual(try folded.run([:])["y"]?.shape, [3, 4])
    }
}
