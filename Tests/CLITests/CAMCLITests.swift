import Foundation
import XCTest
import ModelZoo
import Tensor
@testable import Explorer

/// `detr-tui render --what cam` end to end on the trained tiny YOLOv8 of Tests/Fixtures/predict: the CAM equals
/// pytorch-grad-cam's EigenCAM of the same layer (scripts/fixtures/gen_cam.py), per box on request, as a PNG of the
/// input's size, and a layer without a feature map is refused with what it holds.
final class CAMCLITests: XCTestCase {
    let model = "Tests/Fixtures/predict/yolo.pt"
    let common = ["--image", "Tests/Fixtures/predict/wide.png", "--imgsz", "160"]

    func json(_ args: [String]) throws -> [String: Any] {
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
    }

    func testCAMJSONEqualsPytorchGradCAM() throws {
        let golden = try SafetensorsFile(path: "Tests/Fixtures/cam/golden.safetensors")
        for layer in [15, 21] {
            let obj = try json(["render", model] + common + ["--layer", "\(layer)", "--what", "cam", "--format", "json"])
            XCTAssertEqual(obj["what"] as? String, "cam")
            XCTAssertEqual(obj["method"] as? String, "EigenCAM")
            let want = try golden.tensor("yolo.wide.\(layer).cam")
            XCTAssertEqual(obj["size"] as? [Int], want.shape)
            let values = try XCTUnwrap(obj["values"] as? [[Double]]).flatMap { $0 }.map(Float.init)
            XCTAssertEqual(values.count, want.count)
            let d = zip(values, want.data).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(d, 2e-3, "layer \(layer): the CLI's CAM differs from pytorch-grad-cam's by \(d)")
            let explained = try XCTUnwrap(obj["explained_variance"] as? Double)
            XCTAssertTrue(explained > 0 && explained <= 1, "\(explained)")
        }
    }

    func testActivationSignIsLAPACKsOrItsMirror() throws {
        let args = ["render", model] + common + ["--layer", "2", "--what", "cam", "--format", "json"]
        let lapack = try json(args)
        let corrected = try json(args + ["--cam-sign", "activations"])
        XCTAssertEqual(lapack["sign"] as? String, "lapack")
        XCTAssertEqual(corrected["sign"] as? String, "activations")
        let p = try XCTUnwrap(lapack["projection"] as? [[Double]]).flatMap { $0 }
        let q = try XCTUnwrap(corrected["projection"] as? [[Double]]).flatMap { $0 }
        // Layer 2's LAPACK sign puts the rectangles below zero (min -6.0, max 0.88 in the golden): corrected, the map
        // flips (two runs of the model agree to rounding, not bit for bit).
        XCTAssertEqual(p.count, q.count)
        XCTAssertLessThan(zip(p, q).map { abs($0 + $1) }.max() ?? 1, 1e-4, "layer 2's map is mirrored by the correction")
        XCTAssertGreaterThan(q.max() ?? 0, 5)
        let bad = try CLI.run(["render", model] + common + ["--what", "featuremap", "--cam-sign", "activations"])
        XCTAssertNotEqual(bad.status, 0)
    }

    func testCAMInBoxesIsZeroOutsideTheDetections() throws {
        let obj = try json(["render", model] + common + ["--layer", "15", "--what", "cam", "--in-boxes", "--format", "json"])
        let boxes = try XCTUnwrap(obj["boxes"] as? [[Int]])
        XCTAssertFalse(boxes.isEmpty, "the trained model finds the rectangles")
        let values = try XCTUnwrap(obj["values"] as? [[Double]])
        var outside = 0, nonzeroOutside = 0
        for (y, row) in values.enumerated() {
            for (x, v) in row.enumerated() where !boxes.contains(where: { x >= $0[0] && x < $0[2] && y >= $0[1] && y < $0[3] }) {
                outside += 1
                if v != 0 { nonzeroOutside += 1 }
            }
        }
        XCTAssertGreaterThan(outside, 0)
        XCTAssertEqual(nonzeroOutside, 0)
        XCTAssertEqual(values.flatMap { $0 }.max() ?? 0, 1, accuracy: 1e-5, "each box scaled to [0, 1]")
    }

    func testCAMPNGAndANSI() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-cam-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("cam.png").path
        let p = try CLI.run(["render", model] + common + ["--layer", "15", "--what", "cam", "--format", "png", "--out", out])
        XCTAssertEqual(p.status, 0, p.stderr)
        let png = try PNGCodec.decode(Data(contentsOf: URL(fileURLWithPath: out)), file: out)
        XCTAssertEqual([png.height, png.width], [128, 160], "the model input's size")
        let a = try CLI.run(["render", model] + common + ["--layer", "15", "--what", "cam", "--width", "60", "--no-color"])
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertTrue(a.stdout.contains("EigenCAM · 16 channels 16x20"), a.stdout)
    }

    func testCAMOfALayerWithoutAFeatureMapIsRefused() throws {
        let r = try CLI.run(["render", model] + common + ["--layer", "22", "--what", "cam"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("layer 22") && r.stderr.contains("has no cam"), r.stderr)
        let v = try CLI.run(["render", model] + common + ["--layer", "15", "--what", "featuremap", "--in-boxes"])
        XCTAssertNotEqual(v.status, 0)
        XCTAssertTrue(v.stderr.contains("--in-boxes goes with --what cam"), v.stderr)
    }
}
