import Foundation
import XCTest
import ModelZoo
@testable import Explorer

/// `detr-tui render A --compare B`: the aligned layer of B, both maps in one range and B − A, as JSON, text and PNG.
final class CompareRenderCLITests: XCTestCase {
    let common = ["--image", "Tests/Fixtures/predict/wide.png", "--imgsz", "160", "--what", "featuremap"]

    func json(_ args: [String]) throws -> [String: Any] {
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
    }

    func values(_ obj: [String: Any], _ key: String) throws -> [Double] {
        try XCTUnwrap((obj[key] as? [String: Any])?["values"] as? [[Double]]).flatMap { $0 }
    }

    func testAModelAgainstItselfDiffersByNothing() throws {
        let m = "Tests/Fixtures/predict/yolo.pt"
        let obj = try json(["render", m, "--compare", m] + common + ["--layer", "6", "--channel", "5", "--format", "json"])
        XCTAssertEqual(obj["what"] as? String, "compare")
        XCTAssertEqual(obj["map"] as? String, "channel 5")
        XCTAssertEqual(try values(obj, "a"), try values(obj, "b"))
        XCTAssertEqual(obj["max_abs_difference"] as? Double, 0)
        XCTAssertEqual(try XCTUnwrap(obj["cosine"] as? Double), 1, accuracy: 1e-6)
        XCTAssertTrue(try values(obj, "difference").allSatisfy { $0 == 0 })
    }

    func testAnInsertedBlockShiftsTheAlignedLayer() throws {
        // yolov8n-ca inserts ContextAggregation at 10: A's layer 12 is B's 13. Both untrained with the same seed,
        // the layers before the insertion have the same weights (same keys), so layer 9 agrees exactly.
        let before = try json(["render", "yolov8n", "--compare", "yolov8n-ca"] + common + ["--layer", "9", "--reduce", "mean", "--format", "json"])
        XCTAssertEqual(before["max_abs_difference"] as? Double, 0)
        let after = try json(["render", "yolov8n", "--compare", "yolov8n-ca"] + common + ["--layer", "12", "--reduce", "max", "--format", "json"])
        XCTAssertEqual(after["map"] as? String, "max of channels")
        XCTAssertTrue(((after["b"] as? [String: Any])?["title"] as? String)?.contains("layer 13 C2f") ?? false, "\(after["b"] ?? "")")
        let a = try values(after, "a"), b = try values(after, "b"), d = try values(after, "difference")
        XCTAssertEqual(a.count, 8 * 10)
        for k in a.indices { XCTAssertEqual(d[k], b[k] - a[k], accuracy: 1e-5) }
        // One colour range for both maps: it covers both.
        let range = try XCTUnwrap(after["range"] as? [String: Any])
        XCTAssertEqual(range["mode"] as? String, "percentile")
        let dr = try XCTUnwrap((after["difference"] as? [String: Any])?["range"] as? [String: Any])
        let hi = try XCTUnwrap(dr["hi"] as? Double)
        XCTAssertEqual(try XCTUnwrap(dr["lo"] as? Double), -hi, accuracy: abs(hi) * 1e-6, "the difference is symmetric around zero")
    }

    func testSharedWeightsMakeTheVariantsAgreeAfterTheInsertedBlock() throws {
        // ContextAggregation starts as the identity: with A's weights in every other row, B's layer 13 is A's 12.
        // (Untrained maps are small, ~1e-7 here: the check is exact equality, against a nonzero difference without sharing.)
        let args = common + ["--layer", "12", "--reduce", "max", "--format", "json"]
        let own = try json(["render", "yolov8n", "--compare", "yolov8n-ca"] + args)
        XCTAssertGreaterThan(try XCTUnwrap(own["max_abs_difference"] as? Double), 0)
        let obj = try json(["render", "yolov8n", "--compare", "yolov8n-ca", "--share-weights"] + args)
        XCTAssertEqual(obj["max_abs_difference"] as? Double, 0)
        XCTAssertEqual(try XCTUnwrap(obj["cosine"] as? Double), 1, accuracy: 1e-6)
        let bad = try CLI.run(["render", "yolov8n", "--share-weights"] + common)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--share-weights goes with --compare"), bad.stderr)
    }

    func testARemovedLayerHasNoCounterpart() throws {
        let r = try CLI.run(["render", "yolov8n-ca", "--compare", "yolov8n"] + common + ["--layer", "10"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("layer 10 of yolov8n-ca") && r.stderr.contains("no counterpart"), r.stderr)
        let w = try CLI.run(["render", "yolov8n", "--compare", "yolov8n-ca", "--image", "Tests/Fixtures/predict/wide.png", "--what", "cam"])
        XCTAssertNotEqual(w.status, 0)
        XCTAssertTrue(w.stderr.contains("--compare draws feature maps"), w.stderr)
    }

    func testTextAndPNG() throws {
        let t = try CLI.run(["render", "yolov8n", "--compare", "yolov8n-ca"] + common + ["--layer", "12", "--reduce", "mean", "--width", "60", "--no-color"])
        XCTAssertEqual(t.status, 0, t.stderr)
        for s in ["A: yolov8n · layer 12 C2f", "B: yolov8n-ca · layer 13 C2f", "B − A · mean of channels", "diverging"] {
            XCTAssertTrue(t.stdout.contains(s), "\(s) in:\n\(t.stdout)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-cmp-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("cmp.png").path
        let p = try CLI.run(["render", "yolov8n", "--compare", "yolov8n-ca"] + common + ["--layer", "12", "--format", "png", "--out", out])
        XCTAssertEqual(p.status, 0, p.stderr)
        let png = try PNGCodec.decode(Data(contentsOf: URL(fileURLWithPath: out)), file: out)
        let scale = Headless.pngScale(width: 30, height: 8)
        XCTAssertEqual([png.width, png.height], [3 * 10 * scale + 16, 8 * scale], "three 8x10 panels, 8 pixels apart")
    }
}
