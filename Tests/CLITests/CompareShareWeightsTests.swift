import Foundation
import ModelZoo
import XCTest

/// `detr-tui compare A B --share-weights`: B takes A's weights in its aligned rows, from A's seeded init (untrained A)
/// or from A's checkpoint (the trained tiny YOLOv8 of Tests/Fixtures/predict against YAMLs of its architecture).
final class CompareShareWeightsTests: XCTestCase {
    let image = "Tests/Fixtures/predict/wide.png"

    /// The checkpoint's own model YAML, and the same with ContextAggregation after SPPF as assets/models/yolov8-ca.yaml
    /// inserts it (the head's `from` indices past it shifted by one).
    static func architectures(_ checkpoint: String) throws -> (same: String, ca: String) {
        let text = try XCTUnwrap(Checkpoint.open(path: checkpoint).ultralyticsYAML).yamlText()
        var ca = text
        for (old, new) in [("  - [-1, 1, SPPF, [1024, 5]]\n", "  - [-1, 1, SPPF, [1024, 5]]\n  - [-1, 1, ContextAggregation, []]\n"),
                           ("[[-1, 12], 1, Concat", "[[-1, 13], 1, Concat"), ("[[-1, 9], 1, Concat", "[[-1, 10], 1, Concat"),
                           ("[[15, 18, 21], 1, Detect", "[[16, 19, 22], 1, Detect")] {
            XCTAssertTrue(ca.contains(old), "\(old) in\n\(text)")
            ca = ca.replacingOccurrences(of: old, with: new)
        }
        return (text, ca)
    }

    func yaml(_ name: String, _ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-share-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent(name).path
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func report(_ args: [String]) throws -> [String: Any] {
        let r = try CLI.run(["compare"] + args + ["--image", image, "--imgsz", "160", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
    }

    /// The similarity of every row both models have, by B's row index.
    func similarities(_ obj: [String: Any]) throws -> [Int: Double] {
        var out: [Int: Double] = [:]
        for row in try XCTUnwrap(obj["rows"] as? [[String: Any]]) {
            if let b = row["b"] as? [String: Any], row["a"] is [String: Any], let s = row["similarity"] as? Double { out[b["index"] as! Int] = s }
        }
        return out
    }

    func testUntrainedVariantsShareTheAlignedRows() throws {
        let plain = try similarities(try report(["yolov8n", "yolov8n-ca"]))
        XCTAssertLessThan(plain[13] ?? 1, 0.9, "without sharing, the rows after the inserted block have other weights")
        let obj = try report(["yolov8n", "yolov8n-ca", "--share-weights"])
        // Every tensor of B but ContextAggregation's 8 comes from A.
        XCTAssertEqual(obj["shared_tensors"] as? [Int], [298, 306])
        // ContextAggregation starts as the identity (its last conv is zero-initialised): with A's weights everywhere
        // else, B computes what A computes, row for row.
        let shared = try similarities(obj)
        XCTAssertEqual(shared.count, 23)
        for (row, s) in shared { XCTAssertEqual(s, 1, accuracy: 1e-4, "row \(row) of B") }
    }

    func testATrainedCheckpointGivesItsWeightsToAYAMLVariant() throws {
        let checkpoint = "Tests/Fixtures/predict/yolo.pt"
        let texts = try Self.architectures(checkpoint)
        let same = try yaml("tiny.yaml", texts.same)
        let a = try report([checkpoint, same, "--share-weights"])
        let counts = try XCTUnwrap(a["shared_tensors"] as? [Int])
        XCTAssertEqual(counts[0], counts[1], "the same architecture takes every tensor")
        for (row, s) in try similarities(a) { XCTAssertEqual(s, 1, accuracy: 1e-4, "row \(row)") }

        let ca = try yaml("tiny-ca.yaml", texts.ca)
        let b = try report([checkpoint, ca, "--share-weights"])
        let shared = try XCTUnwrap(b["shared_tensors"] as? [Int])
        XCTAssertEqual(shared[1] - shared[0], 8, "only ContextAggregation's tensors are B's own")
        let sims = try similarities(b)
        XCTAssertEqual(sims.count, 23)
        for (row, s) in sims { XCTAssertEqual(s, 1, accuracy: 1e-4, "row \(row): the trained weights with an identity block") }
    }

    func testBWithWeightsOfItsOwnIsRefused() throws {
        let r = try CLI.run(["compare", "yolov8n", "Tests/Fixtures/predict/yolo.pt", "--share-weights"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("has weights of its own"), r.stderr)
        let w = try CLI.run(["compare", "yolov8n", "yolov8n-ca", "--share-weights", "--weights-b", "x.pt"])
        XCTAssertNotEqual(w.status, 0)
        XCTAssertTrue(w.stderr.contains("does not go with --weights-b"), w.stderr)
    }
}
