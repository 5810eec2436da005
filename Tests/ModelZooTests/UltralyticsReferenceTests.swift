import Foundation
import XCTest
@testable import ModelZoo

/// Parameters per layer equal to ultralytics' counts and GFLOPs within 1% of ultralytics' get_flops at 640, for the
/// full-size catalogue models (reference.json is written by scripts/fixtures/gen_ultralytics.py ... reference).
final class UltralyticsReferenceTests: XCTestCase {
    struct Ref: Decodable {
        let params: Int
        let layer_params: [Int]
        let gflops_640: Double
    }

    static let refs: [String: Ref] = {
        let url = UltralyticsGoldenTests.dir.appendingPathComponent("reference.json")
        guard let data = try? Data(contentsOf: url) else { return [:] }
        return (try? JSONDecoder().decode([String: Ref].self, from: data)) ?? [:]
    }()

    func check(_ id: String, yaml: String, scale: String?) throws {
        let ref = try XCTUnwrap(Self.refs[id], "reference.json has no \(id)")
        let spec = try ModelSpec.load(path: Assets.url("models/\(yaml)").path)
        for m in Set(spec.layers.map(\.module)) where UltralyticsRegistry.builder(m) == nil {
            throw XCTSkip("\(id): module \(m) is not registered yet")
        }
        let model = try UltralyticsModel(name: id, spec: spec, scale: scale, weights: WeightStore(.initialise(seed: 1)))
        let table = model.layerTable(inputSize: GridSize(640, 640))
        XCTAssertEqual(table.map(\.params), ref.layer_params, "\(id): params per layer")
        XCTAssertEqual(model.parameterCount, ref.params, "\(id): total params")
        let gflops = table.reduce(0) { $0 + $1.flops } / 1e9
        XCTAssertEqual(gflops, ref.gflops_640, accuracy: ref.gflops_640 * 0.01, "\(id): GFLOPs at 640")
        print("REFERENCE \(id) params \(model.parameterCount) (ultralytics \(ref.params)) GFLOPs \(String(format: "%.3f", gflops)) (ultralytics \(ref.gflops_640))")
    }

    func testYOLOv8n() throws { try check("yolov8n", yaml: "yolov8.yaml", scale: "n") }
    /// Every YOLO11 scale (m, l and x force C3k inner blocks).
    func testYOLO11() throws {
        for s in ["n", "s", "m", "l", "x"] { try check("yolo11\(s)", yaml: "yolo11.yaml", scale: s) }
    }
    /// Every YOLOv10 scale (one YAML each).
    func testYOLOv10() throws {
        for s in ["n", "s", "m", "b", "l", "x"] { try check("yolov10\(s)", yaml: "yolov10\(s).yaml", scale: s) }
    }
    /// Every YOLO12 scale (l and x add A2C2f's residual and MLP ratio 1.2).
    func testYOLO12() throws {
        for s in ["n", "s", "m", "l", "x"] { try check("yolo12\(s)", yaml: "yolo12.yaml", scale: s) }
    }
    /// Every YOLO26 scale (reg_max 1, end2end: both branches counted).
    func testYOLO26() throws {
        for s in ["n", "s", "m", "l", "x"] { try check("yolo26\(s)", yaml: "yolo26.yaml", scale: s) }
    }
    func testYOLOv8s() throws { try check("yolov8s", yaml: "yolov8.yaml", scale: "s") }
    func testRTDETRl() throws { try check("rtdetr-l", yaml: "rtdetr-l.yaml", scale: nil) }
    func testRTDETRResNet50() throws { try check("rtdetr-resnet50", yaml: "rtdetr-resnet50.yaml", scale: nil) }
}

extension UltralyticsReferenceTests {
    /// Layer rows expand into their sub-modules (key names, params adding up to the row's).
    func testLayerRowsExpandIntoSubmodules() throws {
        let spec = try ModelSpec.load(path: Assets.url("models/yolov8.yaml").path)
        let model = try UltralyticsModel(name: "yolov8n", spec: spec, scale: "n", weights: WeightStore(.initialise(seed: 1)))
        let table = model.layerTable(inputSize: GridSize(320, 320))
        XCTAssertEqual(table[2].children.map(\.module), ["cv1 Conv", "m.0 Bottleneck", "cv2 Conv"])
        XCTAssertEqual(table[2].children[1].children.map(\.module), ["cv1 Conv", "cv2 Conv"])
        // Detect: cv2.i and cv3.i (each an nn.Sequential of Conv, Conv, Conv2d) level by level, then DFL.
        XCTAssertEqual(table[22].children.map(\.module), ["cv2.0 Sequential", "cv3.0 Sequential", "cv2.1 Sequential", "cv3.1 Sequential",
                                                         "cv2.2 Sequential", "cv3.2 Sequential", "dfl DFL"])
        XCTAssertEqual(table[22].children[0].children.map(\.module), ["0 Conv", "1 Conv", "2 Conv2d"])
        for row in table where !row.children.isEmpty {
            XCTAssertEqual(row.children.reduce(0) { $0 + $1.params }, row.params, "layer \(row.index)")
            XCTAssertEqual(row.children.reduce(0) { $0 + $1.flops }, row.flops, accuracy: row.flops * 1e-12, "layer \(row.index)")
        }
        XCTAssertEqual(table[2].children[0].outputShape, [1, 32, 80, 80])
    }
}
