import Foundation
import XCTest

/// The explorer's compare mode in a real terminal (tmux), as a person uses it: the trained tiny YOLOv8 against the
/// same architecture with ContextAggregation inserted after SPPF, B given A's weights (--share-weights), on one image.
/// ContextAggregation starts as the identity, so every aligned pair must come out equal (cosine 1, B − A zero).
final class CompareTmuxTests: XCTestCase {
    let model = "Tests/Fixtures/predict/yolo.pt", image = "Tests/Fixtures/predict/wide.png"

    func variantYAML() throws -> String {
        let ca = try CompareShareWeightsTests.architectures(model).ca
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-compare-tmux-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("tiny-ca.yaml").path
        try ca.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testCompareOnTheCommandLine() throws {
        let b = try variantYAML()
        let t = try TmuxSession([model, "--compare", b, "--share-weights", "--image", image, "--imgsz", "160"], width: 200, height: 50)
        defer { t.close() }
        var s = t.wait(for: "B (tiny-ca): forward pass", timeout: 90)
        XCTAssertTrue(s.contains("Compare · yolo ↔ tiny-ca · 1 added"), s)
        XCTAssertTrue(s.contains("vs tiny-ca (shared weights)"), s)
        // The inserted block is marked, with its params; the aligned rows are equal (cosine 1.0000).
        let added = try XCTUnwrap(s.split(separator: "\n").first { $0.contains("ContextAggregation") }, s)
        XCTAssertTrue(added.contains("+  ") || added.contains("│+ "), String(added))
        // Layer 0: both maps in one range, their difference zero.
        s = t.wait(for: "B − A · channel 0")
        XCTAssertTrue(s.contains("max |B − A| 0 ") && s.contains("cosine 1.0000"), s)
        // Nine rows on: SPPF (9 in both), then the inserted row (only in B), then A's 10 against B's 11.
        for _ in 0 ..< 9 { t.send("n") }
        s = t.wait(for: "A 9 SPPF ↔ B 9 SPPF")
        t.send("n")
        s = t.wait(for: "only in B (added)")
        XCTAssertTrue(s.contains("A — ↔ B 10 ContextAggregation"), s)
        t.send("n")
        s = t.wait(for: "A 10 Upsample ↔ B 11 Upsample")
        XCTAssertTrue(s.contains("max |B − A| 0 ") && s.contains("cosine 1.0000"), "the identity block changes nothing:\n\(s)")
        // The mean of the channels, on both.
        t.send("a"); t.send("a")
        s = t.wait(for: "B − A · mean of channels")
        // The last row: detections of both on one image.
        t.send("G")
        t.wait(for: "detections of A (cyan) and B (magenta)")
        t.wait("both detection sets") { $0.contains("A blue 0.55") && $0.contains("B blue 0.55") && $0.contains("A: 1 (blue 0.55) · B: 1 (blue 0.55)") }
        // K with an empty line: back to the one-model view.
        t.send("K"); t.send("C-u"); t.send("Enter")
        s = t.wait(for: "compare mode off")
        XCTAssertTrue(s.contains("Layers · YOLOv8"), s)
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }

    func testKeyKAsksForBInsideTheExplorer() throws {
        let t = try TmuxSession([model, "--image", image, "--imgsz", "160"], width: 160, height: 45)
        defer { t.close() }
        t.wait(for: "forward pass:", timeout: 60)
        t.send("K")
        t.wait(for: "compare with model B")
        t.type("no-such-model")
        t.send("Enter")
        t.wait(for: "no-such-model")
        t.send("C-u")
        t.type(try variantYAML() + " --share-weights")
        t.send("Enter")
        let s = t.wait(for: "B (tiny-ca): forward pass", timeout: 90)
        XCTAssertTrue(s.contains("Compare · yolo ↔ tiny-ca"), s)
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }
}
