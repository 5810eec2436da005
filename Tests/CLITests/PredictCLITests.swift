import Foundation
import XCTest

/// `run` and `render` on the trained predict fixtures (scripts/fixtures/gen_predict.py): input sizes per family,
/// thresholds, the untrained-weights note, and the same detections as ultralytics' predict.
final class PredictCLITests: XCTestCase {
    func fixture(_ name: String) -> String { CLI.root.appendingPathComponent("Tests/Fixtures/predict/\(name)").path }

    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-predict-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name).path
    }

    /// A safetensors file with `images` [1, 3, h, w] (zeros), written by hand.
    func inputTensor(height h: Int, width w: Int) throws -> String {
        let header = "{\"images\":{\"dtype\":\"F32\",\"shape\":[1,3,\(h),\(w)],\"data_offsets\":[0,\(12 * h * w)]}}"
        var data = Data()
        var n = UInt64(header.utf8.count).littleEndian
        data.append(Data(bytes: &n, count: 8))
        data.append(Data(header.utf8))
        data.append(Data(count: 12 * h * w))
        let path = tempPath("input-\(h)x\(w).safetensors")
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func json(_ r: CLI.Result) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
    }

    func testRunJSONSaysTheInputSizeAndMatchesUltralytics() throws {
        let r = try CLI.run(["run", fixture("yolo.pt"), "--image", fixture("wide.png"), "--imgsz", "160", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try json(r)
        XCTAssertEqual(obj["input_size"] as? [Int], [160, 128])
        XCTAssertEqual(obj["image_size"] as? [Int], [451, 300])
        XCTAssertEqual(obj["resize"] as? String, "letterbox")
        XCTAssertEqual(obj["untrained"] as? Bool, false)
        XCTAssertNil(obj["note"] as? String)
        XCTAssertEqual(obj["confidence"] as? Double, 0.25)
        XCTAssertEqual(try XCTUnwrap(obj["iou"] as? Double), 0.7, accuracy: 1e-6)
        let dets = try XCTUnwrap(obj["detections"] as? [[String: Any]])
        XCTAssertFalse(dets.isEmpty)
        XCTAssertTrue(dets.allSatisfy { ($0["score"] as? Double ?? 0) > 0.25 })

        // --square keeps the square letterbox; --conf raises the threshold.
        let sq = try json(try CLI.run(["run", fixture("yolo.pt"), "--image", fixture("wide.png"), "--imgsz", "160", "--square", "--json"]))
        XCTAssertEqual(sq["input_size"] as? [Int], [160, 160])
        XCTAssertEqual(sq["resize"] as? String, "letterbox-square")
        let strict = try json(try CLI.run(["run", fixture("yolo.pt"), "--image", fixture("wide.png"), "--imgsz", "160", "--conf", "0.6", "--json"]))
        let kept = try XCTUnwrap(strict["detections"] as? [[String: Any]])
        XCTAssertEqual(kept.count, dets.filter { ($0["score"] as? Double ?? 0) > 0.6 }.count)

        // RT-DETR stretches to the square and has no NMS.
        let rt = try CLI.run(["run", fixture("rtdetr.pt"), "--image", fixture("coffee.png"), "--imgsz", "160", "--iou", "0.5", "--json"])
        XCTAssertEqual(rt.status, 0, rt.stderr)
        XCTAssertTrue(rt.stderr.contains("--iou applies to YOLO's NMS only"), rt.stderr)
        let rto = try json(rt)
        XCTAssertEqual(rto["input_size"] as? [Int], [160, 160])
        XCTAssertEqual(rto["resize"] as? String, "stretch")
        XCTAssertTrue(rto["iou"] is NSNull || rto["iou"] == nil)
    }

    func testSizesOffTheStrideAreRoundedWithAWarning() throws {
        let yaml = CLI.root.appendingPathComponent("Tests/Fixtures/io/ultra_tiny.yaml").path
        for (asked, used) in [(33, 64), (40, 64), (100, 128)] {
            let r = try CLI.run(["run", yaml, "--image", fixture("wide.png"), "--imgsz", "\(asked)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("warning: input size \(asked) must be a multiple of the model's max stride 32: using \(used)"), r.stderr)
            XCTAssertTrue(r.stdout.contains("input \(used)x"), r.stdout)
            XCTAssertTrue(r.stdout.contains("untrained weights: detections are meaningless"), r.stdout)
        }
        let j = try json(try CLI.run(["run", yaml, "--image", fixture("wide.png"), "--imgsz", "64", "--json"]))
        XCTAssertEqual(j["untrained"] as? Bool, true)
        XCTAssertEqual(j["note"] as? String, "untrained weights: detections are meaningless")
    }

    func testInputTensorsOffTheStrideAreClearErrors() throws {
        for (h, w) in [(33, 33), (64, 48)] {
            let t = try inputTensor(height: h, width: w)
            for model in [fixture("yolo.pt"), fixture("rtdetr.pt")] {
                for command in [["run"], ["render", "--what", "featuremap", "--layer", "0"]] {
                    let r = try CLI.run(command + [model, "--input", t])
                    XCTAssertEqual(r.status, 1, "\(command) \(h)x\(w): \(r.stderr)")
                    XCTAssertTrue(r.stderr.contains(t) && r.stderr.contains("max stride 32"), r.stderr)
                    XCTAssertFalse(r.stderr.contains("concat"), r.stderr)
                }
            }
        }
        let ok = try CLI.run(["run", fixture("yolo.pt"), "--input", try inputTensor(height: 64, width: 96), "--json"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    /// A module alone runs on an image through `render` (the runner checks its input as the module does).
    func testRenderModuleOnAnImage() throws {
        let r = try CLI.run(["render", "nam", "--image", fixture("wide.png"), "--what", "featuremap", "--width", "40", "--no-color"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("feature map"), r.stdout)
    }

    func testThresholdsAreChecked() throws {
        for args in [["--conf", "1.5"], ["--iou=-0.1"], ["--conf", "nan"]] {
            let r = try CLI.run(["run", fixture("yolo.pt"), "--image", fixture("wide.png")] + args)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("must be between 0 and 1"), r.stderr)
        }
    }

    func testRenderDetectionsTakeTheThreshold() throws {
        func count(_ conf: String) throws -> Int {
            let r = try CLI.run(["render", fixture("yolo.pt"), "--image", fixture("wide.png"), "--imgsz", "160", "--what", "detections",
                                 "--format", "json", "--conf", conf])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try XCTUnwrap(try json(r)["detections"] as? [Any]).count
        }
        XCTAssertGreaterThan(try count("0.05"), try count("0.5"))
    }
}
