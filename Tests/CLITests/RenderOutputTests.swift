import Foundation
import XCTest
import ModelZoo
@testable import Explorer

/// What `detr-tui render` prints: the visual, its title, its colour bar and range, nothing to press; one visual
/// per distinct probe, named; detection labels in PNG pictures.
final class RenderOutputTests: XCTestCase {
    let image = "assets/images/chelsea.png"

    func testANSIHasNoKeyHintsAndNoCursorUnlessAQueryIsGiven() throws {
        let common = ["render", "yolov8n", "--image", image, "--imgsz", "320", "--layer", "2", "--what", "featuremap", "--width", "60"]
        let r = try CLI.run(common + ["--colors", "256"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for hint in ["c/C", "Tab", "hjkl", "v:next", "a: single", "o: over", "digits", "[1/"] {
            XCTAssertFalse(r.stdout.contains(hint), "\(hint) in the output:\n\(r.stdout)")
        }
        XCTAssertFalse(r.stdout.contains("✛"), "a cursor cross without --query")
        let plain = r.stdout.replacingOccurrences(of: "\u{1b}\\[[0-9;]*m", with: "", options: .regularExpression)
        let lines = plain.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("output feature map · model.2"), lines[0])
        XCTAssertTrue(r.stdout.contains("viridis"))
        XCTAssertTrue(plain.contains("range p1–p99 (edge cells ignored) · min "), plain)
        // --range minmax: the colour bar spans the true extremes it also prints.
        let mm = try CLI.run(common + ["--no-color", "--range", "minmax"])
        XCTAssertEqual(mm.status, 0, mm.stderr)
        XCTAssertTrue(mm.stdout.contains("range min–max · min "), mm.stdout)
        let bad = try CLI.run(common + ["--range", "widest"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--range"), bad.stderr)
        // With --query the cursor is drawn and its value given.
        let q = try CLI.run(common + ["--colors", "256", "--query", "42"])
        XCTAssertEqual(q.status, 0, q.stderr)
        XCTAssertTrue(q.stdout.contains("✛"), q.stdout)
        XCTAssertTrue(q.stdout.contains("cursor (y 0, x 42)"), q.stdout)
    }

    func testProbeListingsNameEachDistinctVisualOnce() throws {
        let r = try CLI.run(["render", "context-aggregation", "--image", image, "--layer", "1", "--what", "featuremap", "--probe", "9"])
        XCTAssertNotEqual(r.status, 0)
        // The output and its copy recorded as a probe are one visual; the gate and the context weights are named.
        XCTAssertTrue(r.stderr.contains("has 3 featuremap visual(s): 0 output feature map · module; 1 gate: sigmoid(a(x)) · module.gate; "
                                        + "2 context weights: softmax(k(x)) over H*W (global) · module.context_weights"), r.stderr)
        let cot = try CLI.run(["render", "cotattention", "--image", image, "--layer", "1", "--what", "attention"])
        XCTAssertNotEqual(cot.status, 0)
        XCTAssertEqual(cot.stderr.components(separatedBy: "output feature map").count - 1, 1, cot.stderr)
        XCTAssertTrue(cot.stderr.contains("static context k1 · module.k1 [featuremap]"), cot.stderr)
        let gate = try CLI.run(["render", "context-aggregation", "--image", image, "--layer", "1", "--what", "featuremap", "--probe", "1", "--no-color"])
        XCTAssertEqual(gate.status, 0, gate.stderr)
        XCTAssertTrue(gate.stdout.hasPrefix("gate: sigmoid(a(x)) · module.gate\n"), gate.stdout)
    }

    func testPNGDetectionsHaveLabels() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-labels-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("det.png").path
        // A small Deformable DETR fixture: default-initialised DETRs score every query, so there are boxes to label.
        let model = "Tests/Fixtures/deformable/single-scale"
        let j = try CLI.run(["render", model, "--image", image, "--what", "detections", "--format", "json"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: j.stdoutData) as? [String: Any])
        let dets = try XCTUnwrap(obj["detections"] as? [[String: Any]])
        let p = try CLI.run(["render", model, "--image", image, "--what", "detections", "--format", "png", "--out", out])
        XCTAssertEqual(p.status, 0, p.stderr)
        let png = try PNGCodec.decode(Data(contentsOf: URL(fileURLWithPath: out)), file: out)
        let strongest = try XCTUnwrap(dets.max(by: { ($0["score"] as! Double) < ($1["score"] as! Double) }))
        // The strongest detection's label strip (drawn last, so on top): black ink inside the box colour.
        let box = try XCTUnwrap(strongest["box"] as? [Double])
        let x1 = Int(box[0]), y1 = Int(box[1])
        XCTAssertTrue(x1 >= 0 && x1 < png.width && y1 >= 0 && y1 < png.height, "\(box) in \(png.width)x\(png.height)")
        let k = Headless.labelScale(width: png.width)
        let h = 9 * k
        let top = y1 - h >= 0 ? y1 - h : max(0, y1)
        var black = 0
        for y in top ..< min(png.height, top + h) {
            for x in max(0, x1) ..< min(png.width, x1 + 12 * 6 * k) where png[x, y] == (0, 0, 0) { black += 1 }
        }
        XCTAssertGreaterThan(black, 40 * k * k, "no label text at the strongest box (\(box))")
    }
}

private func == (a: (UInt8, UInt8, UInt8), b: (UInt8, UInt8, UInt8)) -> Bool { a.0 == b.0 && a.1 == b.1 && a.2 == b.2 }
