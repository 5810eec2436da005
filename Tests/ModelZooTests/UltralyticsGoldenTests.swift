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

    /// An end-to-end head's top-k rows [1, k, 6] (x1, y1, x2, y2, score, class): the same scores best first, and every
    /// row matched one-to-one by a reference row of the same class, score and box. Anchors whose scores tie exactly
    /// (common in the low tail of a random-weight model) come in any order, as torch's topk gives no order among
    /// ties; rows tied with the last kept score are compared by score alone (a tie at the cut may keep either anchor).
    func assertSameTopK(_ a: Tensor, _ b: Tensor, _ what: String, tol: Float = 1e-3) {
        guard a.shape == b.shape, a.rank == 3, a.shape[2] == 6 else { return assertClose(a, b, what, tol: tol) }
        let k = a.shape[1], scale = max(b.maxAbs, 1e-6)
        let sa = (0 ..< k).map { a.data[$0 * 6 + 4] }, sb = (0 ..< k).map { b.data[$0 * 6 + 4] }
        for i in 0 ..< k where abs(sa[i] - sb[i]) > 1e-5 { return XCTFail("\(what): score of rank \(i) is \(sa[i]), expected \(sb[i])") }
        var used = Set<Int>()
        for i in 0 ..< k where abs(sa[i] - sb[k - 1]) > 1e-6 {
            let match = (0 ..< k).first { j in
                !used.contains(j) && abs(sa[i] - sb[j]) <= 1e-5 && a.data[i * 6 + 5] == b.data[j * 6 + 5]
                    && (0 ..< 4).allSatisfy { abs(a.data[i * 6 + $0] - b.data[j * 6 + $0]) <= tol * scale }
            }
            guard let j = match else {
                return XCTFail("\(what): row \(i) \(Array(a.data[(i * 6) ..< (i * 6 + 6)])) has no reference row")
            }
            used.insert(j)
        }
    }

    /// The per-shape record of passed shape checks keeps what a check returned, never a check that threw, and starts
    /// over past its capacity.
    func testFittedShapesKeepsOnlyPassedChecks() throws {
        struct Refused: Error {}
        let cache = ShapeCache<[Double]>()
        var runs = 0
        XCTAssertThrowsError(try cache.value(for: [1, 3, 8, 8]) { runs += 1; throw Refused() })
        XCTAssertEqual(cache.value(for: [1, 3, 8, 8]) { runs += 1; return [1, 2] }, [1, 2])
        XCTAssertEqual(cache.value(for: [1, 3, 8, 8]) { runs += 1; return [3] }, [1, 2])
        XCTAssertEqual(runs, 2)
        for i in 0 ..< ShapeCache<[Double]>.capacity { _ = cache.value(for: [i]) { [Double(i)] } }
        XCTAssertEqual(cache.value(for: [1, 3, 8, 8]) { [4] }, [4], "past its capacity it starts over")
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
            if ["Detect", "v10Detect"].contains(step.moduleType) && ref.rank == 3 && ref.shape[2] == 6 {
                assertSameTopK(try XCTUnwrap(step.output), ref, "\(name) layers.\(step.index) (\(step.moduleType))")
            } else if permutable && step.moduleType == "RTDETRDecoder" {
                assertCloseUpToQueryOrder(try XCTUnwrap(step.output), ref, "\(name) layers.\(step.index) (\(step.moduleType))")
            } else {
                assertClose(try XCTUnwrap(step.output), ref, "\(name) layers.\(step.index) (\(step.moduleType))")
            }
        }
        // An end-to-end head's other (one-to-many) branch, as ultralytics decodes it.
        if let many = l.tensors["one2many"] {
            assertClose(try XCTUnwrap(out.extras["one2many"], "\(name): no one2many output"), many, "\(name) one2many")
            // Untraced, the end-to-end head skips its one-to-many branch and gives the same answer.
            let plain = try l.model.forward(images, trace: nil)
            XCTAssertNil(plain.extras["one2many"], "\(name): the untraced run computed the one-to-many branch")
            XCTAssertEqual(plain.output.shape, out.output.shape)
            XCTAssertEqual(plain.output.data, out.output.data, "\(name): untraced output differs")
            // Nor does a trace of shapes and times only (what `bench` times): only a trace that keeps tensors shows it.
            let timed = try l.model.forward(images, trace: Trace(keepTensors: false))
            XCTAssertNil(timed.extras["one2many"], "\(name): a shapes-only trace computed the one-to-many branch")
            XCTAssertEqual(timed.output.data, out.output.data, "\(name): output under a shapes-only trace differs")
        }
        if let ref = l.tensors["output"], ref.rank == 3, ref.shape[2] == 6 {
            assertSameTopK(out.output, ref, "\(name) output")
        } else if permutable {
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
        // The steps' FLOPs come from the shape pass the forward ran once for this input shape: each is its layer's
        // own count (a shape pass of that layer alone), and a second forward (the shape pass not run again) records
        // the same and answers the same.
        XCTAssertEqual(steps.map(\.flops), zip(l.model.graph.nodes, steps).map { l.model.graph.flops($0, inputShapes: $1.inputShapes) },
                       "\(name): FLOPs per step")
        let again = Trace(keepTensors: false)
        let second = try l.model.forward(images, trace: again)
        XCTAssertEqual(again.snapshot.steps.map(\.flops), steps.map(\.flops), "\(name): FLOPs per step, second run")
        XCTAssertEqual(second.output.data, out.output.data, "\(name): second run's output")
    }

    func testYOLOv8TinyMatchesUltralytics() throws { try check("yolov8-tiny") }
    func testHGNetBlocksMatchUltralytics() throws { try check("hgnet-tiny") }
    func testResNetLayersMatchUltralytics() throws { try check("resnet-tiny") }
    func testRTDETRTinyMatchesUltralytics() throws { try check("rtdetr-tiny") }
    func testYOLO11TinyMatchesUltralytics() throws { try check("yolo11-tiny") }
    /// C2PSA with two heads, C3k2's attention inner block (Bottleneck + PSABlock) and SCDown.
    func testPSABlocksMatchUltralytics() throws { try check("psa-tiny") }

    /// YOLOv10s at a tiny width: SCDown, C2fCIB with RepVGGDW (folded), PSA, v10Detect's one-to-one top-k and its
    /// one-to-many branch.
    func testYOLOv10TinyMatchesUltralytics() throws { try check("yolov10-tiny") }
    /// A2C2f with area attention (4 areas; 1 area with the residual gamma and MLP ratio 1.2) and with C3k blocks.
    func testAreaAttentionMatchesUltralytics() throws { try check("a2c2f-tiny") }
    /// YOLO26 at a tiny width: Detect with reg_max 1 and end2end (one-to-one top-k rows, one-to-many branch).
    func testYOLO26TinyMatchesUltralytics() throws { try check("yolo26-tiny") }

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

extension UltralyticsGoldenTests {
    /// The family is the model's own, by its blocks and head; end-to-end heads are post-processed without NMS.
    func testFamiliesAndEndToEndHeads() throws {
        let expected = ["yolov8-tiny": ("YOLOv8", UltralyticsModel.Head.detect), "yolo11-tiny": ("YOLO11", .detect),
                        "yolov10-tiny": ("YOLOv10", .endToEnd), "a2c2f-tiny": ("YOLO12", .detect), "yolo26-tiny": ("YOLO26", .endToEnd)]
        for (name, (family, head)) in expected {
            let m = try load(name).model
            XCTAssertEqual(m.family, family, name)
            XCTAssertEqual(m.head, head, name)
        }
        // The rows [1, k, 6] (x1, y1, x2, y2, score, class), best first: those above the confidence, at most max_det.
        let l = try load("yolo26-tiny")
        let rows = try XCTUnwrap(l.tensors["output"])
        let k = rows.shape[1]
        XCTAssertEqual(k, min(Detect.maxDet, 8 * 12 + 4 * 6 + 2 * 3), "k = min(300, anchors) at 64x96")
        let scores = (0 ..< k).map { rows.data[$0 * 6 + 4] }
        XCTAssertEqual(scores, scores.sorted(by: >), "rows best first")
        let threshold = scores[k / 2]
        let dets = l.model.detections(from: ModelOutput(output: rows, extras: [:], detections: []), inputSize: GridSize(64, 96),
                                      options: PostprocessOptions(confidence: threshold, iou: 0.7, maxDetections: 300))
        XCTAssertEqual(dets.map(\.score), scores.filter { $0 > threshold })
        XCTAssertEqual(dets.first.map { [$0.x1, $0.y1, $0.x2, $0.y2, Float($0.classIndex)] }, Array(rows.data[0 ..< 4]) + [rows.data[5]])
        let capped = l.model.detections(from: ModelOutput(output: rows, extras: [:], detections: []), inputSize: GridSize(64, 96),
                                        options: PostprocessOptions(confidence: 0, iou: 0.7, maxDetections: 5))
        XCTAssertEqual(capped.count, 5)
    }

    /// A2C2f's area attention is recorded per area and head: softmax rows over the positions of the query's own area
    /// (a strip of the map).
    func testAreaAttentionProbesPerArea() throws {
        let l = try load("a2c2f-tiny")
        let images = try XCTUnwrap(l.tensors["images"])      // 32x64: layer 2 runs on the 8x16 map, 4 areas of 2 rows
        let trace = Trace(keepTensors: true)
        _ = try l.model.forward(images, trace: trace)
        let probes = trace.snapshot.probes(under: "model.2.m.0.0.attn")
        XCTAssertEqual(probes.map(\.path), (0 ..< 4).map { "model.2.m.0.0.attn.area\($0)" })
        for p in probes {
            guard case .attention(let a, let q, let k) = p.data else { return XCTFail("\(p.path) is not attention") }
            XCTAssertEqual(q, GridSize(2, 16))
            XCTAssertEqual(k, GridSize(2, 16))
            XCTAssertEqual(a.shape, [1, 32, 32], "one head (32 hidden channels / 32), 32 positions per area")
            for r in 0 ..< 32 { XCTAssertEqual(a.data[(r * 32) ..< (r * 32 + 32)].reduce(0, +), 1, accuracy: 1e-4) }
        }
        // One area (the whole 4x8 map) and two heads in layer 4.
        let whole = trace.snapshot.probes(under: "model.4.m.0.1.attn")
        XCTAssertEqual(whole.count, 1)
        if case .attention(let a, let q, _)? = whole.first?.data {
            XCTAssertEqual(a.shape, [2, 32, 32])
            XCTAssertEqual(q, GridSize(4, 8))
        } else { XCTFail("no attention probe in model.4") }
    }
}

extension UltralyticsGoldenTests {
    /// A YOLO26 checkpoint as ultralytics 8.4's trainer saves it (fp16 EMA, then strip_optimizer) opens from the file
    /// alone and its detections on a non-square image equal ultralytics' `predict(..., nms=False)` (the one-to-one
    /// head's top-k rows above the confidence, in image pixels; gen_ultralytics.py checkpoint).
    func testYOLO26CheckpointPredictEqualsUltralytics() throws {
        let golden = try SafetensorsFile(path: Self.dir.appendingPathComponent("yolo26-tiny.predict.safetensors").path)
        let imgsz = try XCTUnwrap(Int(golden.metadata["imgsz"] ?? "")), conf = try XCTUnwrap(Float(golden.metadata["conf"] ?? ""))
        let model = try XCTUnwrap(try openModel(Self.dir.appendingPathComponent("yolo26-tiny.pt").path) as? UltralyticsModel)
        XCTAssertFalse(model.isUntrained)
        XCTAssertEqual(model.family, "YOLO26")
        XCTAssertEqual(model.classNames, ["red", "green", "blue"])
        let picture = try ImageIO.load(path: PredictGoldenTests.dir.appendingPathComponent("wide.png").path)
        let prepared = Preprocess.prepare(picture, for: model, size: imgsz)
        let out = try model.forward(prepared.tensor, trace: nil, postprocess: PostprocessOptions(confidence: conf))
        let expected = try golden.tensor("wide.detections")
        XCTAssertEqual(out.detections.count, expected.shape[0])
        var worstBox: Float = 0, worstScore: Float = 0
        for (i, d) in out.detections.prefix(expected.shape[0]).enumerated() {
            let e = Array(expected.data[(i * 6) ..< (i * 6 + 6)])
            let (x1, y1) = prepared.transform.toImage(x: d.x1, y: d.y1), (x2, y2) = prepared.transform.toImage(x: d.x2, y: d.y2)
            XCTAssertEqual(Float(d.classIndex), e[5], "detection \(i) class")
            worstScore = max(worstScore, abs(d.score - e[4]))
            worstBox = max(worstBox, zip([x1, y1, x2, y2], e[0 ..< 4]).map { abs($0 - $1) }.max()!)
        }
        print("CHECKPOINT yolo26-tiny: \(out.detections.count) detections, scores within \(worstScore), boxes within \(worstBox) px")
        XCTAssertLessThanOrEqual(worstScore, 1e-4)
        XCTAssertLessThanOrEqual(worstBox, 0.05)
    }
}
