import Foundation
import Tensor
import XCTest
@testable import ModelZoo

/// The seed variants: the attention modules inside ultralytics graphs, against ultralytics with parse_model edited
/// as the tutorials edit it (scripts/fixtures/gen_variants.py).
final class VariantGoldenTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/modules")

    func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, tol: Float = 1e-3, file: StaticString = #filePath, line: UInt = #line) {
        guard a.shape == b.shape else { return XCTFail("\(what): shape \(a.shape), expected \(b.shape)", file: file, line: line) }
        let scale = max(b.data.reduce(Float(0)) { max($0, Swift.abs($1)) }, 1e-6)
        var worst: Float = 0, at = 0
        for i in 0 ..< a.count {
            let d = Swift.abs(a.data[i] - b.data[i])
            if !(d <= worst) { worst = d; at = i }
        }
        XCTAssert(worst <= tol * scale, "\(what): max abs error \(worst) (relative \(worst / scale)) at flat index \(at): \(a.data[at]) vs \(b.data[at])",
                  file: file, line: line)
    }

    func check(_ name: String) throws -> (UltralyticsModel, TraceSnapshot) {
        let path = Self.dir.appendingPathComponent("\(name).safetensors").path
        let file = try SafetensorsFile(path: path)
        let all = try file.allTensors()
        let store = WeightStore(.checkpoint(name: path, tensors: all.filter { $0.key.hasPrefix("model.") }))
        // The metadata holds the model dict as JSON, which is also YAML.
        let spec = try ModelSpec.parse(yaml: try XCTUnwrap(file.metadata["yaml"]), file: path)
        let model = try UltralyticsModel(name: name, spec: spec, weights: store)
        try store.finish()
        let images = try XCTUnwrap(all["images"])
        let trace = Trace()
        let out = try model.forward(images, trace: trace)
        let snap = trace.snapshot
        XCTAssertEqual(snap.steps.count, model.graph.nodes.count)
        for step in snap.steps {
            let ref = try XCTUnwrap(all["layers.\(step.index)"], "no layers.\(step.index)")
            assertClose(try XCTUnwrap(step.output), ref, "\(name) layers.\(step.index) (\(step.moduleType))")
        }
        assertClose(out.output, try XCTUnwrap(all["output"]), "\(name) output")
        let params = try JSONDecoder().decode([Int].self, from: Data(try XCTUnwrap(file.metadata["params"]).utf8))
        XCTAssertEqual(model.graph.nodes.map(\.params), params, "\(name): params per layer")
        let table = model.layerTable(inputSize: GridSize(images.shape[2], images.shape[3]))
        XCTAssertEqual(table.map(\.outputShape), snap.steps.map(\.outputShape), "\(name): predicted shapes")
        return (model, snap)
    }

    func testYOLOv8WithContextAggregation() throws {
        let (_, snap) = try check("variant-yolov8-ca-tiny")
        XCTAssertNotNil(snap.probes.first { $0.path == "model.10.context_weights" })
    }

    func testRTDETRWithEveryModule() throws {
        let (model, snap) = try check("variant-rtdetr-attn-tiny")
        let paths = Set(snap.probes.map(\.path))
        for p in ["model.1.nam.channel_weights", "model.4.channel_weights", "model.6.k2", "model.8.attention", "model.10.attention",
                  "model.11.gate", "model.12.decoder.layers.1.cross_attn", "model.12.decoder.layers.0.boxes"] {
            XCTAssert(paths.contains(p), "no probe \(p)")
        }
        XCTAssertEqual(model.family, "RT-DETR")
    }

    func testResNetWithCoTNetBottlenecks() throws {
        let (_, snap) = try check("variant-resnet-cot-tiny")
        XCTAssertNotNil(snap.probes.first { $0.path == "model.2.layer.0.cv2.k2" })
    }

    func testArgumentConventionErrors() throws {
        let yaml = """
        nc: 2
        backbone:
          - [-1, 1, Conv, [16, 3, 2]]
          - [-1, 1, CoTAttention, [32, 3]]
        head:
          - [-1, 1, NAMAttention, []]
        """
        let spec = try ModelSpec.parse(yaml: yaml, file: "bad-cot.yaml")
        XCTAssertThrowsError(try UltralyticsModel(name: "bad", spec: spec, weights: WeightStore(.initialise(seed: 0)))) { e in
            let text = String(describing: e)
            XCTAssert(text.contains("bad-cot.yaml") && text.contains("layer 1") && text.contains("CoTAttention"), text)
        }
        let ok = try ModelSpec.parse(yaml: yaml.replacingOccurrences(of: "[32, 3]", with: "[5]"), file: "k5.yaml")
        let m = try UltralyticsModel(name: "k5", spec: ok, weights: WeightStore(.initialise(seed: 0)))
        XCTAssertEqual(m.graph.nodes[1].arguments, [.int(16), .int(5)])
    }
}

/// Parameters and GFLOPs of the full-size seed variants against ultralytics (variants-reference.json).
final class VariantReferenceTests: XCTestCase {
    struct Ref: Decodable {
        let params: Int
        let gflops: Double
        let layer_params: [Int]
    }

    func check(_ id: String) throws {
        let data = try Data(contentsOf: VariantGoldenTests.dir.appendingPathComponent("variants-reference.json"))
        let ref = try XCTUnwrap(try JSONDecoder().decode([String: Ref].self, from: data)[id])
        let entry = try XCTUnwrap(try Catalogue.load().entry(id))
        let spec = try ModelSpec.load(path: Assets.url(entry.config).path)
        let model = try UltralyticsModel(name: id, spec: spec, scale: entry.scale, weights: WeightStore(.initialise(seed: 1)))
        let table = model.layerTable(inputSize: GridSize(640, 640))
        XCTAssertEqual(table.map(\.params), ref.layer_params, "\(id): params per layer")
        XCTAssertEqual(model.parameterCount, ref.params, "\(id): total params")
        let gflops = table.reduce(0) { $0 + $1.flops } / 1e9
        XCTAssertEqual(gflops, ref.gflops, accuracy: ref.gflops * 0.01, "\(id): GFLOPs at 640")
        print("VARIANT \(id) params \(model.parameterCount) (ultralytics \(ref.params)) GFLOPs \(String(format: "%.3f", gflops)) (ultralytics \(ref.gflops))")
    }

    func testYOLOv8nCA() throws { try check("yolov8n-ca") }
    func testYOLOv8sCA() throws { try check("yolov8s-ca") }
    func testRTDETRlCoT() throws { try check("rtdetr-l-cot") }
    func testRTDETRlNAM() throws { try check("rtdetr-l-nam") }
    func testRTDETRlHGNAM() throws { try check("rtdetr-l-hgnam") }
    func testRTDETRResNet50CoT() throws { try check("rtdetr-resnet50-cot") }
}
