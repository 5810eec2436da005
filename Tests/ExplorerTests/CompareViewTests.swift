import Foundation
import XCTest
@testable import ModelZoo
import Tensor
@testable import Explorer

/// The explorer's compare mode driven through update and view: K asks for B and runs it after A on A's image and
/// size; the layer pane becomes the aligned table (an inserted block marked +), stepping moves both cursors, and the
/// visual pane shows both maps in one range with B − A, both models' sampling points, and both detection sets.
final class CompareViewTests: XCTestCase {
    /// B: the fixture model with a CoT block inserted after AIFI, whose NAM output differs from A's by 0.5 in every
    /// cell of channel 0.
    static var rowsB: [LayerRow] {
        var rows = Fixtures.rows.map { r -> LayerRow in var r = r; r.children = []; return r }
        rows.insert(LayerRow(index: 2, from: [-1], repeats: 1, params: 120, module: "CoT", arguments: "[4]", flops: 2e6, outputShape: [1, 4, 4, 4]), at: 2)
        for k in 3 ..< rows.count { rows[k].index = k }
        rows[4].from = [1, 3]
        return rows
    }

    /// B's detections: the person box 4 px to the right, scoring 0.8.
    static var detectionsB: [Detection] {
        var dets = Fixtures.detections
        dets[0].x1 += 4
        dets[0].score = 0.8
        return dets
    }

    static var traceB: TraceSnapshot {
        let a = Fixtures.trace
        var steps = a.steps
        let cot = Fixtures.tensor([1, 4, 4, 4]) { Float($0) / 32 }
        steps.insert(TraceStep(index: 2, path: "model.2", moduleType: "CoT", inputShapes: [[1, 4, 4, 4]], outputShape: [1, 4, 4, 4], output: cot,
                               params: 120, flops: 2e6, seconds: 0.001), at: 2)
        for k in 3 ..< steps.count {
            steps[k] = TraceStep(index: k, path: "model.\(k)", moduleType: steps[k].moduleType, inputShapes: steps[k].inputShapes,
                                 outputShape: steps[k].outputShape, output: steps[k].output, params: steps[k].params, flops: steps[k].flops,
                                 seconds: steps[k].seconds)
        }
        // NAM (B's row 3): A's output + 0.5 in channel 0.
        if let nam = steps[3].output {
            var d = nam.data
            for i in 0 ..< 16 { d[i] += 0.5 }
            steps[3].output = Tensor(shape: nam.shape, data: d)
        }
        let probes = a.probes.map { p -> Probe in
            var p = p
            if case .detections = p.data { p.data = .detections(detectionsB) }
            for (old, new) in [("model.3", "model.4"), ("model.2", "model.3")] where p.path.hasPrefix(old) {
                p.path = new + p.path.dropFirst(old.count)
                break
            }
            return p
        }
        return TraceSnapshot(steps: steps, probes: probes)
    }

    /// The fixture model open and run, K typed with B, and B opened and run.
    func comparing(width: Int = 170, height: Int = 44, colorMode: ColorMode = .none) -> State {
        var s = Fixtures.loadedState(width: width, height: height, colorMode: colorMode)
        _ = update(&s, .key(.char("K")))
        for ch in "rtdetr-l-cot" { _ = update(&s, .key(.char(ch))) }
        let effect = update(&s, .key(.enter))
        XCTAssertEqual(effect, .runCompare(RunRequest(model: "rtdetr-l-cot", weights: nil, image: "/nonexistent/astronaut.png", inputSize: 64)),
                       "B runs on A's image at A's input size")
        _ = update(&s, .compareOpened(OpenedModel(name: "rtdetr-l-cot", family: "RT-DETR", rows: Self.rowsB, inputSize: GridSize(64, 64),
                                                  classNames: ["person", "bicycle", "car"])))
        _ = update(&s, .compareFinished(RunResult(trace: Self.traceB, detections: Self.detectionsB, image: Fixtures.image, seconds: 0.02)))
        return s
    }

    /// Presses v (at most three times) until the view shows `what`; the view's text.
    func cycleVisual(_ s: inout State, until what: String) -> String {
        var text = view(s).text
        for _ in 0 ..< 3 where !text.contains(what) {
            _ = update(&s, .key(.char("v")))
            text = view(s).text
        }
        return text
    }

    func testKeyRunsBAfterAAndTheTableIsAligned() throws {
        let s = comparing()
        let c = try XCTUnwrap(s.compare)
        XCTAssertTrue(compareShown(s))
        XCTAssertEqual(c.aligned.map(\.change), [.same, .same, .added, .same, .same])
        XCTAssertEqual(c.aligned.map(\.a), [0, 1, nil, 2, 3])
        XCTAssertEqual(c.aligned.map(\.b), [0, 1, 2, 3, 4])
        // Cosine of the channel means: equal outputs 1; NAM's channel 0 shifted, less than 1.
        XCTAssertEqual(try XCTUnwrap(c.similarity[0]), 1, accuracy: 1e-6)
        XCTAssertLessThan(try XCTUnwrap(c.similarity[3]), 0.999)
        XCTAssertNil(c.similarity[2], "an added row has no pair")
        let text = view(s).text
        XCTAssertTrue(text.contains("Compare · rtdetr-l ↔ rtdetr-l-cot · 1 added"), text)
        let added = try XCTUnwrap(text.split(separator: "\n").first { $0.contains("CoT") })
        XCTAssertTrue(added.contains("+") && added.contains("+120") && added.contains("+0.002"), String(added))
        XCTAssertTrue(text.contains("A 6,472 · B 6,592 params · Δ +120"), text)
        XCTAssertTrue(text.contains(" vs rtdetr-l-cot"), "the title names both models:\n\(text)")
    }

    func testSteppingMovesBothCursors() throws {
        var s = comparing()
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(s.layer, 1)
        XCTAssertEqual(compareSideB(s)?.layer, 1)
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(s.compare?.row, 2)
        XCTAssertNil(compareSideA(s), "the added row is only in B")
        XCTAssertEqual(compareSideB(s)?.layer, 2)
        XCTAssertTrue(view(s).text.contains("only in B (added)"))
        _ = update(&s, .key(.char("j")))
        XCTAssertEqual(s.layer, 2, "A's NAM")
        XCTAssertEqual(compareSideB(s)?.layer, 3, "B's NAM")
        _ = update(&s, .key(.char("G")))
        XCTAssertEqual(s.compare?.row, 4)
        XCTAssertEqual(s.layer, 3)
        _ = update(&s, .key(.char("g")))
        XCTAssertEqual(s.compare?.row, 0)
        XCTAssertEqual(s.layer, 0)
    }

    func testFeatureMapsShareOneRangeAndShowTheirDifference() throws {
        var s = comparing()
        for _ in 0 ..< 3 { _ = update(&s, .key(.char("n"))) }
        var text = view(s).text
        XCTAssertTrue(text.contains("A rtdetr-l · channel 0") && text.contains("B rtdetr-l-cot · channel 0") && text.contains("B − A · channel 0"), text)
        XCTAssertTrue(text.contains("B − A 0.5") && text.contains("max |B − A| 0.5"), "channel 0 differs by 0.5 everywhere:\n\(text)")
        // The channel follows on both sides: channel 1 is equal.
        _ = update(&s, .key(.char("c")))
        XCTAssertEqual(compareSideB(s)?.channel, 1)
        text = view(s).text
        XCTAssertTrue(text.contains("max |B − A| 0 ") && text.contains("cosine 1.0000"), text)
        // The shared range: A's and B's colour bars are the same, over the values of both maps.
        let cmp = try Headless.comparison(try XCTUnwrap(compareSideA(s)), try XCTUnwrap(compareSideB(s)))
        XCTAssertEqual(cmp.shared, Normalization.fit([cmp.a, cmp.b], mode: s.rangeMode))
    }

    func testAttentionOfTheSameQueryInOneRange() throws {
        var s = comparing()
        _ = update(&s, .key(.char("n")))
        var text = cycleVisual(&s, until: "attention of query")
        XCTAssertTrue(text.contains("B − A · attention of query #0"), text)
        XCTAssertTrue(text.contains("max |B − A| 0 ") && text.contains("cosine 1.0000"), "the same attention in both:\n\(text)")
        // Head 1, query at (y 0, x 1): still both, still equal.
        _ = update(&s, .key(.char("]")))
        _ = update(&s, .key(.char("]")))
        s.cursor = (1, 0)
        text = view(s).text
        XCTAssertTrue(text.contains("B − A · attention of query #1") && text.contains("max |B − A| 0 "), text)
    }

    func testSamplingPointsAndDetectionsOfBoth() throws {
        var s = comparing()
        _ = update(&s, .key(.char("G")))
        var text = cycleVisual(&s, until: "sampling points of A")
        // The run starts on the query of the best detection (person 0.90, query 3).
        XCTAssertTrue(text.contains("query 3 · sampling points of A (cyan) and B (magenta), white where both"), text)
        // The same model's points: every cell is both models' ('*' without colour), none A's or B's alone.
        XCTAssertTrue(text.contains("*") && text.contains("both"), text)
        let counts = try XCTUnwrap(text.firstMatch(of: /A (\d+) cells · B (\d+) cells · both (\d+)/), text)
        XCTAssertTrue(counts.1 == counts.2 && counts.2 == counts.3 && counts.1 != "0", text)
        text = cycleVisual(&s, until: "detections of A")
        XCTAssertTrue(text.contains("detections of A (cyan) and B (magenta)"), text)
        XCTAssertTrue(text.contains("A person 0.90") && text.contains("B person 0.80"), text)
        XCTAssertTrue(text.contains("A: 2 (person 0.90, car 0.60) · B: 2 (person 0.80, car 0.60)"), text)
    }

    func testEmptyPromptLeavesCompareModeAndBadModelIsRefused() throws {
        var s = comparing()
        _ = update(&s, .key(.char("K")))
        _ = update(&s, .key(.ctrl("u")))
        _ = update(&s, .key(.enter))
        XCTAssertNil(s.compare)
        XCTAssertFalse(compareShown(s))
        _ = update(&s, .key(.char("K")))
        for ch in "no-such-model" { _ = update(&s, .key(.char(ch))) }
        XCTAssertEqual(update(&s, .key(.enter)), .none)
        XCTAssertNotNil(s.prompt, "the prompt stays open")
        XCTAssertTrue(s.notice?.contains("no-such-model") ?? false, s.notice ?? "")
    }

    func testShareWeightsAsksBWithAsWeights() {
        var s = Fixtures.loadedState()
        _ = update(&s, .key(.char("K")))
        for ch in "rtdetr-l-cot --share-weights" { _ = update(&s, .key(.char(ch))) }
        var want = RunRequest(model: "rtdetr-l-cot", weights: nil, image: "/nonexistent/astronaut.png", inputSize: 64)
        want.shareWeightsFrom = "rtdetr-l"
        XCTAssertEqual(update(&s, .key(.enter)), .runCompare(want))
        XCTAssertTrue(view(s).text.contains("vs rtdetr-l-cot (shared weights)"))
        // A's run again: B follows after it.
        XCTAssertEqual(update(&s, .key(.char("r"))), .run(RunRequest(model: "rtdetr-l", weights: nil, image: "/nonexistent/astronaut.png", inputSize: nil)))
        XCTAssertEqual(s.compare?.phase, .idle)
    }
}
