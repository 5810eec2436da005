import Foundation
import XCTest

/// The explorer's EigenCAM key in a real terminal (tmux): on the trained tiny YOLOv8, E shows the CAM of the layer's
/// feature map over the image, stays on while stepping, then renormalises it in the detection box, then goes off.
final class CAMTmuxTests: XCTestCase {
    func testEigenCAMKeyInTheExplorer() throws {
        let model = "Tests/Fixtures/predict/yolo.pt", image = "Tests/Fixtures/predict/wide.png"
        let t = try TmuxSession([model, "--image", image, "--imgsz", "160"], width: 160, height: 50)
        defer { t.close() }
        t.wait(for: "forward pass:", timeout: 60)
        for _ in 0 ..< 15 { t.send("n") }
        t.wait(for: "Layer 15 · C2f")
        t.send("E")
        var s = t.wait(for: "EigenCAM · 16 channels 16x20 · PC1")
        XCTAssertTrue(s.contains("│ EigenCAM │") && s.contains("over image"), s)
        XCTAssertTrue(s.contains("1.000 viridis"), "the CAM's fixed 0-1 colour bar:\n\(s)")
        // Stepping keeps the CAM on: layer 16's output is [1, 16, 8, 10].
        t.send("n")
        t.wait(for: "EigenCAM · 16 channels 8x10")
        t.send("p")
        t.wait(for: "EigenCAM · 16 channels 16x20")
        t.send("E")
        s = t.wait(for: "EigenCAM in 1 detection box · 16 channels 16x20")
        XCTAssertTrue(s.contains("blue 0.55"), "the box and its label are drawn over the CAM:\n\(s)")
        t.send("E")
        s = t.wait(for: "EigenCAM off")
        XCTAssertTrue(s.contains("featuremap ch 0"), s)
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }
}
