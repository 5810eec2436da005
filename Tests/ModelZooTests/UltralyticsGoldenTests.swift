import Foundation
import Tensor
import XCTest
@testable import ModelZoo

/// Equality with ultralytics: the fixtures (scripts/fixtures/gen_ultralytics.py) hold a small model's weights under
/// ultralytics' key names, an input, every top-level layer's output and the final output.
final class UltralyticsGoldenTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ultralytics")

    struct Loaded {
        let model: UltralyticsModel
        let file: SafetensorsFile
        let tensors: [String: Tensor]
    }

    func load(_ name: String, dir: URL = UltralyticsGoldenTests.dir) throws -> Loaded {
        let path = dir.appendingPathComponent("\(name).safetensors").path
        let file = try SafetensorsFile(path: path)
        let all = try file.allTensors()
        let weights = all.filter { $0.key.hasPrefix("model.") }
        let store = WeightStore(.checkpoint(name: path, tensors: weights))
        let spec = try ModelSpec.parse(yaml: try XCTUnwrap(file.metadata["yaml"]), file: path)
        let model = try UltralyticsModel(name: name, spec: spec, weights: store)
        try store.finish()
        return Loaded(model: model, file: file, tensors: all)
    }

    /// max |a - b| <= tol * max |b|, reporting the first offending element.
    func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, tol: Float = 1e-3, file: StaticString = #filePath, line: UInt = #line) {
        guard a.shape == b.shape else {
            XCTFail("\(what): shape \(a.shape), expected \(b.shape)", file: file, line: line)
            return
        }
        let scale = max(b.maxAbs, 1e-6)
        var worst: Float = 0, at = 0
        for i in 0 ..< a.count {
            let d = abs(a.data[i] - b.data[i])
            if d > worst { worst = d; at = i }
        }
        if ProcessInfo.processInfo.environment["GOLDEN_VERBOSE"] != nil { print("GOLDEN \(what) rel \(worst / scale)") }
        XCTAssertLessThanOrEqual(worst / scale, tol,
                                 "\(what): max abs error \(worst) (relative \(worst / scale)) at flat index \(at): \(a.data[at]) vs \(b.data[at])",
                                 file: file, line: line)
    }

    /// With random weights the encoder's query scores can tie to the last bits (e.g. -3.1844826 vs -3.1844828), so
    /// rounding differences may swap neighbouring queries in the top-k; `permutable` then compares the decoder output
    /// row by row after matching each row to its nearest reference row (a one-to-one matching is required).
    func assertCloseUpToQueryOrder(_ a: Tensor, _ b: Tensor, _ what: String, tol: Float = 1e-3) {
        guard a.shape == b.shape, a.rank == 3 else { return assertClose(a, b, what, tol: tol) }
        let q = a.shape[1], w = a.shape[2], scale = max(b.maxAbs, 1e-6)
        var used = Set<Int>(), worst: Float = 0
        for i in 0 ..< q {
            var best = -1, bestErr = Float.infinity
            for j in 0 ..< q where !used.contains(j) {
                var e: Float = 0
                for c in 0 ..< w { e = max(e, abs(a.data[i * w + c] - b.data[j * w + c])) }
                if e < bestErr { bestErr = e; best = j }
            }
            used.insert(best)
            worst = max(worst, bestErr)
        }
        XCTAssertLessThanOrEqual(worst / scale, tol, "\(what): rows differ by \(worst) after matching queries")
    }

    func check(_ name: String, dir: URL = UltralyticsGoldenTests.dir, permutable: Bool = false) throws {
        let l = try load(name, dir: dir)
        let images = try XCTUnwrap(l.tensors["images"])
        let trace = Trace(keepTensors: true)
        let out = try l.model.forward(images, trace: trace)
        let steps = trace.snapshot.steps
        XCTAssertEqual(steps.count, l.model.graph.nodes.count)
        for step in steps {
            let ref = try XCTUnwrap(l.tensors["layers.\(step.index)"], "no layers.\(step.index) in the fixture")
            if permutable && step.moduleType == "RTDETRDecoder" {
                assertCloseUpToQueryOrder(try XCTUnwrap(step.output), ref, "\(name) layers.\(step.index) (\(step.moduleType))")
            } else {
                assertClose(try XCTUnwrap(step.output), ref, "\(name) layers.\(step.index) (\(step.moduleType))")
            }
        }
        if permutable {
            assertCloseUpToQueryOrder(out.output, try XCTUnwrap(l.tensors["output"]), "\(name) output")
        } else {
            assertClose(out.output, try XCTUnwrap(l.tensors["output"]), "\(name) output")
        }
        // Parameters per layer as ultralytics counts them.
        let params = try JSONDecoder().decode([Int].self, from: Data(try XCTUnwrap(l.file.metadata["params"]).utf8))
        XCTAssertEqual(l.model.graph.nodes.map(\.params), params, "\(name): params per layer")
        // Shapes predicted without running agree with the run.
        let table = l.model.layerTable(inputSize: GridSize(images.shape[2], images.shape[3]))
        XCTAssertEqual(table.map(\.outputShape), steps.map(\.outputShape), "\(name): predicted shapes")
    }

    func testYOLOv8TinyMatchesUltralytics() throws { try check("yolov8-tiny") }
    func testHGNetBlocksMatchUltralytics() throws { try check("hgnet-tiny") }
    func testResNetLayersMatchUltralytics() throws { try check("resnet-tiny") }
    func testRTDETRTinyMatchesUltralytics() throws { try check("rtdetr-tiny") }
    func testYOLO11TinyMatchesUltralytics() throws { try check("yolo11-tiny") }
    /// C2PSA with two heads, C3k2's attention inner block (Bottleneck + PSABlock) and SCDown.
    func testPSABlocksMatchUltralytics() throws { try check("psa-tiny") }

    /// Full-size models at 320x320, generated on demand (`gen_ultralytics.py --full DIR`, too large to commit) and
    /// checked when ULTRALYTICS_FULL_FIXTURES names that directory.
    func testFullSizeModelsMatchUltralytics() throws {
        guard let d = ProcessInfo.processInfo.environment["ULTRALYTICS_FULL_FIXTURES"] else {
            throw XCTSkip("set ULTRALYTICS_FULL_FIXTURES to a directory made by gen_ultralytics.py --full")
        }
        let dir = URL(fileURLWithPath: d)
        for name in ["yolov8n", "rtdetr-l", "rtdetr-resnet50"]
        where FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(name).safetensors").path) {
            try check(name, dir: dir, permutable: true)
        }
    }

    func testStrictLoadingNamesBadKeys() throws {
        let path = Self.dir.appendingPathComponent("resnet-tiny.safetensors").path
        let file = try SafetensorsFile(path: path)
        var weights = try file.allTensors().filter { $0.key.hasPrefix("model.") }
        weights.removeValue(forKey: "model.1.layer.0.cv1.conv.weight")
        weights["model.9.extra"] = Tensor(zeros: [2])
        weights["model.0.layer.0.bn.weight"] = Tensor(zeros: [3])
        let store = WeightStore(.checkpoint(name: path, tensors: weights))
        let spec = try ModelSpec.parse(yaml: try XCTUnwrap(file.metadata["yaml"]), file: path)
        _ = try UltralyticsModel(name: "r", spec: spec, weights: store)
        XCTAssertThrowsError(try store.finish()) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("missing key 'model.1.layer.0.cv1.conv.weight'"), s)
            XCTAssertTrue(s.contains("unused key 'model.9.extra'"), s)
            XCTAssertTrue(s.contains("model.0.layer.0.bn.weight"), s)
            XCTAssertTrue(s.contains("resnet-tiny.safetensors"), s)
        }
    }
}

extension UltralyticsGoldenTests {
    /// RT-DETR post-processing selects the same (query, class, score) pairs as ultralytics' decoder top-k.
    func testRTDETRTopKMatchesUltralytics() throws {
        let l = try load("rtdetr-tiny")
        let ref = try XCTUnwrap(l.tensors["postprocessed"])   // [1, k, 6]: cx, cy, w, h, score, class
        let y = try XCTUnwrap(l.tensors["output"])
        let mine = rtdetrTopK(y)
        XCTAssertEqual(mine.count, ref.shape[1])
        for (i, t) in mine.enumerated() {
            let row = Array(ref.data[(i * 6) ..< (i * 6 + 6)])
            XCTAssertEqual(t.score, row[4], accuracy: 1e-5, "rank \(i) score")
            XCTAssertEqual(Float(t.cls), row[5], "rank \(i) class")
            let nc = y.shape[2] - 4
            for j in 0 ..< 4 { XCTAssertEqual(y.data[t.query * (4 + nc) + j], row[j], accuracy: 1e-5, "rank \(i) box \(j)") }
        }
    }

    /// YOLOv8 post-processing: confidence filter, then class-aware NMS.
    func testNMSIsClassAware() {
        func det(_ c: Int, _ s: Float, _ x: Float) -> Detection {
            Detection(classIndex: c, className: "c\(c)", score: s, x1: x, y1: 0, x2: x + 10, y2: 10, source: 0)
        }
        let kept = nonMaxSuppression([det(0, 0.9, 0), det(0, 0.8, 1), det(1, 0.7, 1), det(0, 0.6, 50)], iou: 0.7, maxDetections: 300)
        XCTAssertEqual(kept.map(\.score), [0.9, 0.7, 0.6])
        XCTAssertEqual(nonMaxSuppression([det(0, 0.9, 0), det(0, 0.6, 50)], iou: 0.7, maxDetections: 1).count, 1)
    }
}
