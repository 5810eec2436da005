import Foundation
import XCTest

/// `run`, `info` and `bench` on ultralytics models, through the built binary.
final class UltralyticsCLITests: XCTestCase {
    /// A preprocessed input ([1, 3, 96, 128] under `images`) from the ultralytics fixtures.
    var inputFile: String { CLI.root.appendingPathComponent("Tests/Fixtures/ultralytics/yolov8-tiny.safetensors").path }

    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-cli-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name).path
    }

    func testInfoJSONMatchesUltralyticsCounts() throws {
        let r = try CLI.run(["info", "yolov8n", "--imgsz", "640", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["params"] as? Int, 3_157_200)
        XCTAssertEqual(try XCTUnwrap(obj["gflops"] as? Double), 8.855, accuracy: 0.089)
        let layers = try XCTUnwrap(obj["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.count, 23)
        XCTAssertEqual(layers.last?["outputShape"] as? [Int], [1, 84, 8400])
    }

    func testInfoTablePrintsEveryLayer() throws {
        let r = try CLI.run(["info", "yolov8s", "--imgsz", "320"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("ultralytics.nn.modules.head.Detect"), r.stdout)
        XCTAssertTrue(r.stdout.contains("11,166,560 parameters"), r.stdout)
        XCTAssertTrue(r.stdout.contains("[1, 84, 2100]"), r.stdout)
    }

    func testRunWithInputDumpsLayersAndOutput() throws {
        let dump = tempPath("trace.safetensors")
        let r = try CLI.run(["run", "yolov8n", "--input", inputFile, "--json", "--dump", dump])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["input_shape"] as? [Int], [1, 3, 96, 128])
        XCTAssertNotNil(obj["detections"] as? [Any])
        // The dump's header lists every top-level layer and the output with their shapes.
        let data = try Data(contentsOf: URL(fileURLWithPath: dump))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + n)) as? [String: Any])
        for i in 0 ... 22 { XCTAssertNotNil(header["layers.\(i)"], "layers.\(i) missing from the dump") }
        XCTAssertEqual((header["output"] as? [String: Any])?["shape"] as? [Int], [1, 84, 252])
        XCTAssertEqual((header["layers.0"] as? [String: Any])?["shape"] as? [Int], [1, 16, 48, 64])
        XCTAssertNotNil(header["model.9"], "feature-map probe of layer 9 missing")
    }

    func testRunRefusesToOverwriteAndBadInputs() throws {
        let existing = tempPath("exists.safetensors")
        FileManager.default.createFile(atPath: existing, contents: Data("keep".utf8))
        let r = try CLI.run(["run", "yolov8n", "--input", inputFile, "--dump", existing])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("exists"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep")

        let missing = try CLI.run(["run", "no-such-model", "--input", inputFile])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("no-such-model"), missing.stderr)

        let badWeights = try CLI.run(["run", "yolov8n", "--input", inputFile, "--weights", inputFile])
        XCTAssertNotEqual(badWeights.status, 0)
        XCTAssertTrue(badWeights.stderr.contains("yolov8-tiny.safetensors"), badWeights.stderr)
        XCTAssertTrue(badWeights.stderr.contains("model.0.conv.weight"), badWeights.stderr)
    }

    func testUltralyticsCheckpointOpensWithItsYAMLAndNames() throws {
        let ckpt = CLI.root.appendingPathComponent("Tests/Fixtures/io/ultra_tiny_best.pt").path
        let r = try CLI.run(["info", ckpt, "--imgsz", "64", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["params"] as? Int, 135_006)
        let run = try CLI.run(["run", ckpt, "--image", CLI.root.appendingPathComponent("assets/images/chelsea.png").path,
                               "--imgsz", "128", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any])
        XCTAssertEqual(out["input_shape"] as? [Int], [1, 3, 96, 128])   // the letterbox rectangle, as ultralytics predict
        XCTAssertEqual(out["image_size"] as? [Int], [451, 300])
    }
}
