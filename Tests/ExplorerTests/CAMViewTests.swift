import Foundation
import XCTest
@testable import ModelZoo
import Tensor
@testable import Explorer

/// EigenCAM in the explorer (`E`) and through `render --what cam`: the map is EigenCAM's, laid over the image in
/// input pixels, per detection box on the second press, and only on feature-map visuals.
final class CAMViewTests: XCTestCase {
    /// Layer 0 of the fixture trace: a [1, 4, 8, 8] feature map whose channels differ in scale.
    var conv: Tensor { Fixtures.trace.steps[0].output! }

    func testEKeyCyclesCAMBoxesAndOff() throws {
        var s = Fixtures.loadedState(width: 100, height: 36, colorMode: .truecolor)
        XCTAssertFalse(camShown(s))
        _ = update(&s, .key(.char("E")))
        XCTAssertEqual(s.cam, .cam)
        XCTAssertTrue(camShown(s))
        XCTAssertTrue(overlayShown(s), "the CAM is laid over the image")
        XCTAssertEqual(modeText(s), "EigenCAM")
        var screen = view(s)
        XCTAssertTrue(screen.contains("EigenCAM · 4 channels 8x8"), screen.text)
        XCTAssertTrue(screen.contains("% of variance"), screen.text)
        // The map lives in input pixels (64x64), not on the 8x8 grid.
        let (_, grid) = try XCTUnwrap(visualGeometry(s, Layout(state: s).right))
        XCTAssertEqual(grid, GridSize(64, 64))
        // Second press: renormalised in the two detection boxes, which are drawn with their labels.
        _ = update(&s, .key(.char("E")))
        XCTAssertEqual(modeText(s), "EigenCAM in boxes")
        screen = view(s)
        XCTAssertTrue(screen.contains("EigenCAM in 2 detection boxes · 4 channels"), screen.text)
        XCTAssertTrue(screen.contains("person 0.90"), screen.text)
        _ = update(&s, .key(.char("E")))
        XCTAssertEqual(s.cam, .off)
        XCTAssertFalse(camShown(s))
        XCTAssertFalse(view(s).contains("EigenCAM · 4 channels"))
        XCTAssertEqual(s.notice, "EigenCAM off")
    }

    func testCAMStaysOnWhileSteppingAndSaysWhenAVisualIsNoMap() {
        var s = Fixtures.loadedState()
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(currentSource(s), .output)
        _ = update(&s, .key(.char("v")))
        guard case .attention = currentVisualKind(s) else { return XCTFail("attention expected") }
        _ = update(&s, .key(.char("E")))
        XCTAssertTrue(s.notice?.contains("this one is not") ?? false, s.notice ?? "")
        XCTAssertFalse(camShown(s), "attention is not a feature map")
        _ = update(&s, .key(.char("V")))
        XCTAssertTrue(camShown(s), "layer 1's output map")
        XCTAssertTrue(view(s).contains("EigenCAM · 4 channels 4x4"), view(s).text)
    }

    func testTheExplorerComputesTheCAMOffTheUIThreadAndSaysSoMeanwhile() {
        // A map of its own (a fresh tensor, so nothing is cached for it).
        let t = Fixtures.tensor([1, 3, 6, 5]) { Float(($0 * 7919) % 23) }
        var s = MapDrawingTests.state(output: t, image: Fixtures.image)
        s.camInBackground = true
        _ = update(&s, .key(.char("E")))
        XCTAssertNotNil(pendingCAM(s))
        XCTAssertTrue(view(s).contains("computing EigenCAM: the principal component of 3"), view(s).text)
        computeCAM(t)
        XCTAssertNil(pendingCAM(s))
        XCTAssertTrue(view(s).contains("EigenCAM · 3 channels 6x5"), view(s).text)
        XCTAssertEqual(update(&s, .camReady(camKey(t))), .none)
    }

    func testHelpNamesTheKey() {
        XCTAssertTrue(helpText.contains { $0.hasPrefix("  E ") && $0.contains("EigenCAM") }, helpText.joined(separator: "\n"))
    }

    func testRenderJSONIsEigenCAMOfTheLayer() throws {
        let s = try renderState(RenderSpec(what: .cam, layer: 0))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Headless.json(s)) as? [String: Any])
        XCTAssertEqual(json["what"] as? String, "cam")
        XCTAssertEqual(json["size"] as? [Int], [64, 64])
        let values = try XCTUnwrap(json["values"] as? [[Double]]).flatMap { $0 }
        let want = try EigenCAM.cam(conv, inputSize: GridSize(64, 64))
        XCTAssertEqual(values.count, want.values.count)
        XCTAssertEqual(zip(values, want.values).map { abs(Float($0) - $1) }.max() ?? 1, 0, accuracy: 1e-6)
        XCTAssertGreaterThan(want.values.max() ?? 0, 0.99, "a CAM scaled to [0, 1]")
        XCTAssertNil(json["boxes"])
        // In boxes: zero outside every box, the boxes listed.
        let b = try renderState(RenderSpec(what: .cam, layer: 0, camInBoxes: true))
        let jb = try XCTUnwrap(JSONSerialization.jsonObject(with: Headless.json(b)) as? [String: Any])
        XCTAssertEqual(jb["boxes"] as? [[Int]], [[8, 8, 40, 56], [36, 20, 60, 44]])
        let inBoxes = try XCTUnwrap(jb["values"] as? [[Double]])
        XCTAssertEqual(inBoxes[2][2], 0, "outside the boxes")
        XCTAssertEqual(inBoxes[62][62], 0)
    }

    func testRenderPictureIsTheInputWithTheCAMOverIt() throws {
        let s = try renderState(RenderSpec(what: .cam, layer: 0))
        let pic = Headless.picture(s)
        XCTAssertEqual([pic.width, pic.height], [64, 64])
        // Not the plain grey image: the CAM's colours are blended in.
        let grey = Painter.greyImage(Fixtures.image, width: 64, height: 64)
        XCTAssertNotEqual(pic.rgba, grey.rgba)
        let ansi = Headless.screen(s, width: 40)
        XCTAssertTrue(ansi.contains("EigenCAM · 4 channels 8x8"), ansi.text)
    }

    func testRenderCAMOfALayerWithoutAMapSaysWhatItHolds() {
        XCTAssertThrowsError(try renderState(RenderSpec(what: .cam, layer: 3))) { e in
            XCTAssertTrue("\(e)".contains("has no cam"), "\(e)")
        }
    }

    func renderState(_ spec: RenderSpec) throws -> State {
        let opened = OpenedModel(name: "fixture", family: "RT-DETR", rows: Fixtures.rows, inputSize: GridSize(64, 64), classNames: ["person", "bicycle", "car"])
        let result = RunResult(trace: Fixtures.trace, detections: Fixtures.detections, image: Fixtures.image, seconds: 0.01)
        return try Headless.state(opened: opened, result: result, spec: spec, options: RenderOptions(colorMode: .truecolor))
    }
}
