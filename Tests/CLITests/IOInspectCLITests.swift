import Foundation
import XCTest

/// `detr-tui inspect` on the model I/O fixtures (Tests/Fixtures/io, made by scripts/fixtures/gen_checkpoints.py).
final class IOInspectCLITests: XCTestCase {
    func fixture(_ name: String) -> String { CLI.root.appendingPathComponent("Tests/Fixtures/io/\(name)").path }

    func json(_ args: [String]) throws -> [String: Any] {
        let r = try CLI.run(["inspect", "--json"] + args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
    }

    func testUltralyticsCheckpoint() throws {
        let j = try json([fixture("ultra_tiny_best.pt")])
        XCTAssertEqual(j["format"] as? String, "ultralytics")
        XCTAssertEqual(j["tensorCount"] as? Int, 135)
        XCTAssertEqual(j["parameters"] as? Int, 135_006) // what ultralytics' model.info() counts for this model
        XCTAssertEqual(j["classNames"] as? [String], ["cat", "dog", "traffic light"])
        XCTAssertEqual((j["yaml"] as? [String: Any])?["nc"] as? Int, 3)
        let tensors = try XCTUnwrap(j["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.first?["name"] as? String, "model.0.conv.weight")
        XCTAssertEqual(tensors.first?["dtype"] as? String, "F16")
        XCTAssertEqual(tensors.first?["shape"] as? [Int], [8, 3, 3, 3])
        let text = try CLI.run(["inspect", fixture("ultra_tiny_best.pt")])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.stdout.contains("format: ultralytics"), text.stdout)
        XCTAssertTrue(text.stdout.contains("classes (3): 0 cat, 1 dog, 2 traffic light"), text.stdout)
        XCTAssertTrue(text.stdout.contains("- [[7, 4], 1, Detect, [nc]]"), text.stdout)
    }

    func testStateDictSafetensorsYAMLAndImage() throws {
        let sd = try json([fixture("state_dict.pt")])
        XCTAssertEqual(sd["format"] as? String, "torch")
        XCTAssertEqual(sd["tensorCount"] as? Int, 12)
        let st = try json([fixture("state_dict.expected.safetensors")])
        XCTAssertEqual(st["format"] as? String, "safetensors")
        let yaml = try json([fixture("ultra_tiny.yaml")])
        XCTAssertEqual((yaml["layers"] as? [[String: Any]])?.count, 9)
        XCTAssertEqual(yaml["buildable"] as? Bool, true)
        let img = try json([fixture("images/palette.png")])
        XCTAssertEqual(img["width"] as? Int, 61)
        XCTAssertEqual(img["colorType"] as? String, "palette")
        let text = try CLI.run(["inspect", fixture("images/photo.jpg")])
        XCTAssertTrue(text.stdout.contains("image: JPEG 61x47, YCbCr, 8-bit"), text.stdout)
    }

    func testFilesItCannotOpenFailNamingTheFile() throws {
        for name in ["broken/os_system.pt", "broken/truncated.pt", "broken/no_head.yaml", "broken/huge.png", "broken/truncated.jpg",
                     "broken/truncated.png", "does-not-exist.pt"] {
            let r = try CLI.run(["inspect", fixture(name)])
            XCTAssertNotEqual(r.status, 0, name)
            XCTAssertTrue(r.stderr.contains(fixture(name)), "\(name): \(r.stderr)")
            XCTAssertTrue(r.stdout.isEmpty, name)
        }
    }
}
