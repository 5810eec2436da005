import Foundation
import XCTest
import ModelZoo
@testable import Explorer

/// `detr-tui render` on real models: ANSI, JSON and PNG (decoded back and checked against the JSON values).
final class E2ERenderTests: XCTestCase {
    let image = "assets/images/chelsea.png"

    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-render-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = dir.appendingPathComponent(name).path
        try? FileManager.default.removeItem(atPath: p)
        return p
    }

    func testFeatureMapPNGMatchesItsJSONValues() throws {
        let common = ["render", "yolov8n", "--image", image, "--imgsz", "320", "--square", "--layer", "4", "--what", "featuremap", "--channel", "3"]
        let j = try CLI.run(common + ["--format", "json"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: j.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["what"] as? String, "featuremap")
        XCTAssertEqual(obj["channel"] as? Int, 3)
        XCTAssertEqual(obj["shape"] as? [Int], [1, 64, 40, 40])
        let values = try XCTUnwrap(obj["values"] as? [[Double]])
        XCTAssertEqual(values.count, 40)
        XCTAssertEqual(values[0].count, 40)
        // The colours span the range the JSON names (by default the 1st-99th percentile, edge cells ignored).
        let range = try XCTUnwrap(obj["range"] as? [String: Any])
        XCTAssertEqual(range["mode"] as? String, "percentile")
        let lo = Float(try XCTUnwrap(range["lo"] as? Double)), hi = Float(try XCTUnwrap(range["hi"] as? Double))
        XCTAssertGreaterThanOrEqual(lo, Float(try XCTUnwrap(obj["min"] as? Double)))
        XCTAssertLessThanOrEqual(hi, Float(try XCTUnwrap(obj["max"] as? Double)))

        let out = tempPath("fm.png")
        let p = try CLI.run(common + ["--format", "png", "--out", out])
        XCTAssertEqual(p.status, 0, p.stderr)
        let png = try PNGCodec.decode(Data(contentsOf: URL(fileURLWithPath: out)), file: out)
        let scale = Headless.pngScale(width: 40, height: 40)
        XCTAssertEqual(png.width, 40 * scale)
        XCTAssertEqual(png.height, 40 * scale)
        // Every map cell's centre pixel is the viridis colour of its value.
        let norm = Normalization(lo: lo, hi: hi, signed: false)
        var mismatches = 0
        for y in stride(from: 0, to: 40, by: 3) {
            for x in stride(from: 0, to: 40, by: 3) {
                let t = norm.apply(Float(values[y][x]))
                let expected = Colormap.viridis.color(t)
                let got = png[x * scale + scale / 2, y * scale + scale / 2]
                if abs(Int(got.0) - Int(expected.0)) > 2 || abs(Int(got.1) - Int(expected.1)) > 2 || abs(Int(got.2) - Int(expected.2)) > 2 {
                    mismatches += 1
                }
            }
        }
        XCTAssertEqual(mismatches, 0)
        // Never overwrite: the same --out again is refused.
        let again = try CLI.run(common + ["--format", "png", "--out", out])
        XCTAssertNotEqual(again.status, 0)
    }

    func testANSIAndDetections() throws {
        let a = try CLI.run(["render", "yolov8n", "--image", image, "--imgsz", "320", "--layer", "2", "--what", "featuremap", "--width", "50", "--colors", "256"])
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertTrue(a.stdout.contains("\u{1b}[0;"), "no SGR sequences")
        XCTAssertTrue(a.stdout.contains("output feature map"))
        XCTAssertTrue(a.stdout.contains("channel 0/32"))
        let plain = try CLI.run(["render", "yolov8n", "--image", image, "--imgsz", "320", "--layer", "2", "--what", "featuremap", "--width", "50", "--no-color"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertFalse(plain.stdout.contains("\u{1b}["))
        XCTAssertTrue(plain.stdout.split(separator: "\n").allSatisfy { $0.count <= 50 })

        let d = try CLI.run(["render", "yolov8n", "--image", image, "--imgsz", "320", "--what", "detections", "--format", "json"])
        XCTAssertEqual(d.status, 0, d.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: d.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["what"] as? String, "detections")
        XCTAssertNotNil(obj["detections"] as? [Any])
        let out = tempPath("det.png")
        let p = try CLI.run(["render", "yolov8n", "--image", image, "--imgsz", "320", "--what", "detections", "--format", "png", "--out", out])
        XCTAssertEqual(p.status, 0, p.stderr)
        let png = try PNGCodec.decode(Data(contentsOf: URL(fileURLWithPath: out)), file: out)
        // The letterbox rectangle of 451x300 at 320, as ultralytics' predict: 320x224 (213 image rows, 5 and 6 of padding).
        XCTAssertEqual(png.width, 320)
        XCTAssertEqual(png.height, 224)
        // Letterboxed: the padding rows are the grey 114.
        XCTAssertTrue(png[160, 0] == (114, 114, 114) || png[0, 160] == (114, 114, 114))
    }

    func testWrongVisualForTheLayerNamesWhatItHolds() throws {
        let r = try CLI.run(["render", "yolov8n", "--image", image, "--imgsz", "320", "--layer", "2", "--what", "sampling"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("has no sampling"), r.stderr)
        XCTAssertTrue(r.stderr.contains("featuremap"), r.stderr)
        let bad = try CLI.run(["render", "yolov8n", "--image", image, "--imgsz", "320", "--layer", "99", "--what", "featuremap"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("layer 99"), bad.stderr)
        let ch = try CLI.run(["render", "yolov8n", "--image", image, "--imgsz", "320", "--layer", "0", "--what", "featuremap", "--channel", "999"])
        XCTAssertNotEqual(ch.status, 0)
        XCTAssertTrue(ch.stderr.contains("--channel 999"), ch.stderr)
    }

    func testSamplingPointsOfRTDETR() throws {
        let r = try CLI.run(["render", "rtdetr-l", "--image", image, "--imgsz", "320", "--layer", "28", "--what", "sampling",
                             "--head", "2", "--level", "1", "--query", "5", "--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["query"] as? Int, 5)
        XCTAssertEqual(obj["heads"] as? Int, 8)
        XCTAssertEqual(obj["levels"] as? Int, 3)
        let points = try XCTUnwrap(obj["points"] as? [[String: Any]])
        XCTAssertEqual(points.count, 4)
        XCTAssertTrue(points.allSatisfy { $0["head"] as? Int == 2 && $0["level"] as? Int == 1 })
        XCTAssertEqual(obj["level_shapes"] as? [[Int]], [[40, 40], [20, 20], [10, 10]])
    }
}

private func == (a: (UInt8, UInt8, UInt8), b: (UInt8, UInt8, UInt8)) -> Bool { a.0 == b.0 && a.1 == b.1 && a.2 == b.2 }
