import Foundation
import XCTest
@testable import ModelZoo
import Tensor
@testable import Explorer

/// The DETR views: refined boxes layer by layer, the query selection and D-FINE's edge distributions. Placement is
/// checked cell by cell on constructed probes; the screens are snapshots on the Hugging Face RT-DETR fixture and the
/// two-stage Deformable DETR fixture, run here on their own golden inputs.
final class DETRViewTests: XCTestCase {
    // MARK: constructed probes

    /// Three queries over a 64x64 input: the boxes of layers -1, 0 and 1 (cx, cy, w, h), query 1 shrinking toward
    /// the centre-left; scores of layers 0 and 1.
    static let chainBoxes: [[Float]] = [
        [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.2, 0.2, 0.1, 0.1],
        [0.5, 0.5, 0.4, 0.4, 0.4, 0.5, 0.5, 0.5, 0.2, 0.2, 0.1, 0.1],
        [0.5, 0.5, 0.3, 0.3, 0.375, 0.5, 0.25, 0.25, 0.2, 0.2, 0.1, 0.1],
    ]

    static var refinedProbes: [Probe] {
        [
            Probe(path: "model.0.boxes", label: "initial boxes", data: .refinedBoxes(RefinedBoxes(boxes: Tensor(shape: [3, 4], data: chainBoxes[0]), layer: -1))),
            Probe(path: "model.0.layers.0.boxes", label: "boxes after layer 0",
                  data: .refinedBoxes(RefinedBoxes(boxes: Tensor(shape: [3, 4], data: chainBoxes[1]), layer: 0, scores: Tensor(shape: [3], data: [0.9, 0.3, 0.6])))),
            Probe(path: "model.0.layers.1.boxes", label: "boxes after layer 1",
                  data: .refinedBoxes(RefinedBoxes(boxes: Tensor(shape: [3, 4], data: chainBoxes[2]), layer: 1, scores: Tensor(shape: [3], data: [0.2, 0.8, 0.55])))),
        ]
    }

    /// A state on the fixture row holding `probes`, with one detection made by query `best`.
    static func state(_ probes: [Probe], width: Int = 100, height: Int = 36, best: Int = 1) -> State {
        var s = MapDrawingTests.state(output: Fixtures.tensor([1, 2, 4, 4]) { Float($0) }, probes: probes, width: width, height: height)
        let dets = [Detection(classIndex: 0, className: "person", score: 0.8, x1: 16, y1: 24, x2: 32, y2: 40, source: best),
                    Detection(classIndex: 1, className: "car", score: 0.4, x1: 0, y1: 0, x2: 8, y2: 8, source: 0)]
        _ = update(&s, .finished(RunResult(trace: TraceSnapshot(steps: s.result!.trace.steps, probes: probes), detections: dets, image: nil, seconds: 0.01)))
        s.confidence = 0.3
        s.focus = .visual
        s.notice = nil
        return s
    }

    /// Moves the visual to the first one of this kind.
    static func show(_ s: inout State, _ pick: (VisualKind) -> Bool) {
        for i in visualSources(s).indices {
            s.visual = i
            if pick(currentVisualKind(s)) { return }
        }
        XCTFail("no such visual")
    }

    func testRefinedBoxesDrawTheQuerysBoxAfterEveryLayerWithThisLayerSolid() throws {
        var s = Self.state(Self.refinedProbes)
        // The visual of layer 0 (the second boxes probe).
        Self.show(&s) { if case .refinedBoxes(let r) = $0 { return r.layer == 0 } else { return false } }
        XCTAssertEqual(s.query, 1, "the view starts on the best detection's query")
        XCTAssertEqual(modeText(s), "boxes q1 L0")
        let screen = view(s)
        let (geo, input) = try XCTUnwrap(visualGeometry(s, Layout(state: s).right))
        XCTAssertEqual(input, GridSize(64, 64))
        func corner(_ b: [Float], _ q: Int) -> (Int, Int) {
            let nb = NormalizedBox(Tensor(shape: [3, 4], data: b), row: q)
            let (x1, y1, _, _) = nb.pixels(input)
            return geo.cell(x: x1 * geo.mapWidth / 64, y: y1 * geo.mapHeight / 64)!
        }
        // Every layer's box of query 1 has its corner; the top edge of this layer's box is solid, the others dashed.
        for b in Self.chainBoxes {
            let (c, r) = corner(b, 1)
            XCTAssertEqual(screen[c, r].symbol, "┌", "corner of \(b[4 ..< 8])\n\(screen.text)")
        }
        let (c0, r0) = corner(Self.chainBoxes[1], 1)
        XCTAssertEqual(screen[c0 + 1, r0].symbol == "─" || screen[c0 + 1, r0].symbol == "L", true, "solid (or its label) on layer 0's box")
        let (ci, ri) = corner(Self.chainBoxes[0], 1)
        XCTAssertEqual(screen[ci + 1, ri].symbol, "┄", "the initial box is dashed")
        // The side list: each layer's box (centre, size in input pixels) and score.
        XCTAssertTrue(screen.contains("q1: box after each layer"), screen.text)
        XCTAssertTrue(screen.contains("init 32,32 48x48"), screen.text)
        XCTAssertTrue(screen.contains("L0   26,32 32x32"), screen.text)
        XCTAssertTrue(screen.contains("0.30"), screen.text)
        XCTAssertTrue(screen.contains("L1   24,32 16x16"), screen.text)
        XCTAssertTrue(screen.contains("query 1/3 · L0 of 2 layers · 26,32 32x32 · score 0.3"), screen.text)
        var wide = s
        wide.size = (160, 40)
        XCTAssertTrue(view(wide).contains("query 1/3 · L0 of 2 layers · 26,32 32x32 · score 0.30 = person 0.80"), view(wide).text)
        assertSnapshot(screen, "refined-boxes-constructed")
        // → steps to the next query; the layer's probe stays.
        _ = update(&s, .key(.right))
        XCTAssertEqual(s.query, 2)
        XCTAssertTrue(view(s).contains("query 2/3"))
    }

    func testAllQueriesOfALayerAboveTheThreshold() {
        var s = Self.state(Self.refinedProbes)
        Self.show(&s) { if case .refinedBoxes(let r) = $0 { return r.layer == 1 } else { return false } }
        _ = update(&s, .key(.char("x")))
        XCTAssertEqual(modeText(s), "boxes L1 all ≥ conf")
        guard case .refinedBoxes(let r) = currentVisualKind(s) else { return XCTFail("refined boxes expected") }
        // Layer 1's scores 0.2, 0.8, 0.55 at threshold 0.3: queries 1 and 2, strongest first.
        XCTAssertEqual(refinedQueriesShown(s, r), [1, 2])
        let screen = view(s)
        XCTAssertTrue(screen.contains("L1: 2 queries ≥ 0.3"), screen.text)
        XCTAssertTrue(screen.contains("L1 · 2 queries scoring ≥ 0.3 · of 3"), screen.text)
        // The initial boxes have no class head: every query.
        Self.show(&s) { if case .refinedBoxes(let r) = $0 { return r.layer == -1 } else { return false } }
        guard case .refinedBoxes(let r0) = currentVisualKind(s) else { return XCTFail("refined boxes expected") }
        XCTAssertEqual(refinedQueriesShown(s, r0), [0, 1, 2])
    }

    func testBracesStepTheDecoderLayerWithinARow() {
        var s = Self.state(Self.refinedProbes)
        Self.show(&s) { if case .refinedBoxes(let r) = $0 { return r.layer == -1 } else { return false } }
        func layer() -> Int? { if case .refinedBoxes(let r) = currentVisualKind(s) { return r.layer } else { return nil } }
        _ = update(&s, .key(.char("}")))
        XCTAssertEqual(layer(), 0)
        _ = update(&s, .key(.char("}")))
        XCTAssertEqual(layer(), 1)
        _ = update(&s, .key(.char("}")))
        XCTAssertEqual(layer(), 1)
        XCTAssertEqual(s.notice, "L1 is this row's last decoder layer (n/p: the next row)")
        _ = update(&s, .key(.char("{")))
        XCTAssertEqual(layer(), 0)
        XCTAssertEqual(s.level, -1, "no level changed")
    }

    func testPixelGraphicsDrawTheImageAsAPictureAndTheBoxesAsText() throws {
        var s = Self.state(Self.refinedProbes, width: 120, height: 40)
        s.render.colorMode = .truecolor
        s.render.pixels = PixelGraphics(proto: .kitty, cellWidth: 8, cellHeight: 16)
        _ = update(&s, .finished(RunResult(trace: s.result!.trace, detections: s.result!.detections, image: Fixtures.image, seconds: 0)))
        Self.show(&s) { if case .refinedBoxes(let r) = $0 { return r.layer == 1 } else { return false } }
        let screen = view(s)
        let img = try XCTUnwrap(screen.images.first, "the input image is a picture")
        XCTAssertEqual(img.picture.width, img.rect.width * 8)
        let inside = (img.rect.y ..< img.rect.maxY).flatMap { y in (img.rect.x ..< img.rect.maxX).map { screen[$0, y].symbol } }
        XCTAssertEqual(inside.filter { $0 == "┌" }.count, 3, "one corner per layer's box, as text over the picture")
    }

    func testSteppingRowsKeepsTheBoxesView() {
        // Two rows, each with its layer's boxes after a probe of another kind, and a row of neither between them:
        // stepping keeps the boxes, across the row without them.
        var s = State(catalogue: Fixtures.catalogue, images: [], render: RenderOptions(colorMode: .none, symbols: .half))
        s.size = (100, 36)
        s.mode = .model
        s.modelID = "fixture"
        let rows = (0 ..< 3).map { LayerRow(index: $0, from: [-1], repeats: 1, params: 0, module: "DecoderLayer", arguments: "", flops: 0, outputShape: [1, 3, 4]) }
        _ = update(&s, .opened(OpenedModel(name: "fixture", family: "test", rows: rows, inputSize: GridSize(64, 64), classNames: [])))
        let steps = (0 ..< 3).map { TraceStep(index: $0, path: ["decoder.layers.0", "bbox_head.0", "decoder.layers.1"][$0], moduleType: "DecoderLayer", inputShapes: [[1, 3, 4]], outputShape: [1, 3, 4],
                                             output: Tensor(repeating: Float($0), shape: [1, 3, 4]), params: 0, flops: 0, seconds: 0) }
        let probes = (0 ..< 2).flatMap { l -> [Probe] in
            [Probe(path: "decoder.layers.\(l).self_attn", label: "self-attention", data: .attention(Tensor(repeating: 1.0 / 3, shape: [1, 3, 3]), query: GridSize(1, 3), key: GridSize(1, 3))),
             Probe(path: "decoder.layers.\(l).boxes", label: "boxes", data: .refinedBoxes(RefinedBoxes(boxes: Tensor(shape: [3, 4], data: Self.chainBoxes[l + 1]), layer: l)))]
        }
        _ = update(&s, .finished(RunResult(trace: TraceSnapshot(steps: steps, probes: probes), detections: [], image: nil, seconds: 0)))
        Self.show(&s) { if case .refinedBoxes = $0 { return true } else { return false } }
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(currentSource(s), .output, "the row between has no boxes")
        _ = update(&s, .key(.char("n")))
        guard case .refinedBoxes(let r) = currentVisualKind(s) else { return XCTFail("stepping lost the boxes view: \(currentVisualKind(s))") }
        XCTAssertEqual(r.layer, 1)
        XCTAssertEqual(s.wantedKind, "refined boxes")
        // v to another kind forgets it: attention is not a kind stepping keeps.
        _ = update(&s, .key(.char("v")))
        guard case .attention = currentVisualKind(s) else { return XCTFail("attention expected") }
        XCTAssertNil(s.wantedKind)
    }

    func testQuerySelectionMarksEachTokenAtItsGridCell() throws {
        // Levels 4x4 and 2x2 (20 tokens); tokens 5 = level 0 (1, 1), 17 = level 1 (0, 1), 0 = level 0 (0, 0).
        let sel = QuerySelection(indices: [5, 17, 0], boxes: Tensor(shape: [3, 4], data: [0.375, 0.375, 0.25, 0.25, 0.75, 0.25, 0.5, 0.5, 0.125, 0.125, 0.25, 0.25]),
                                 scores: Tensor(shape: [3], data: [0.9, 0.7, 0.2]), levelShapes: [GridSize(4, 4), GridSize(2, 2)])
        XCTAssertEqual(tokenPosition(5, levels: sel.levelShapes)!.level, 0)
        XCTAssertEqual(tokenPosition(17, levels: sel.levelShapes)!.y, 0)
        XCTAssertEqual(tokenPosition(17, levels: sel.levelShapes)!.x, 1)
        XCTAssertNil(tokenPosition(20, levels: sel.levelShapes))
        var s = Self.state([Probe(path: "model.0.query_selection", label: "query selection", data: .querySelection(sel))], best: 2)
        Self.show(&s) { if case .querySelection = $0 { return true } else { return false } }
        XCTAssertEqual(s.query, 2)
        let (geo, _) = try XCTUnwrap(visualGeometry(s, Layout(state: s).right))
        var screen = view(s)
        // Monochrome: the level's digit at each token's cell, the cursor's token (query 2, token 0) as X.
        let (c5, r5) = geo.cell(gridX: 1, gridY: 1, grid: GridSize(4, 4))!
        let (c17, r17) = geo.cell(gridX: 1, gridY: 0, grid: GridSize(2, 2))!
        let (c0, r0) = geo.cell(gridX: 0, gridY: 0, grid: GridSize(4, 4))!
        XCTAssertEqual(screen[c5, r5].symbol, "0", screen.text)
        XCTAssertEqual(screen[c17, r17].symbol, "1", screen.text)
        XCTAssertEqual(screen[c0, r0].symbol, "X", screen.text)
        XCTAssertTrue(screen.contains("query 2/3: token 0 = L0 (y 0, x 0) · score 0.200"), screen.text)
        XCTAssertTrue(screen.contains("L0 4x4: 2 tokens"), screen.text)
        XCTAssertTrue(screen.contains("L1 2x2: 1 token"), screen.text)
        assertSnapshot(screen, "query-selection-constructed")
        // } shows level 0 only: level 1's token goes.
        _ = update(&s, .key(.char("}")))
        XCTAssertEqual(s.level, 0)
        screen = view(s)
        XCTAssertNotEqual(screen[c17, r17].symbol, "1", screen.text)
        XCTAssertEqual(screen[c5, r5].symbol, "0")
    }

    /// Two queries, 9 bins with W(n) from -0.5 to 0.5: query 0's left edge peaked at bin 2, its top uniform, its
    /// right at bin 4 (W = 0), its bottom split between bins 7 and 8.
    static var edges: EdgeDistributions {
        var p = [Float](repeating: 0, count: 2 * 4 * 9)
        func set(_ q: Int, _ e: Int, _ values: [Int: Float]) { for (n, v) in values { p[(q * 4 + e) * 9 + n] = v } }
        set(0, 0, [1: 0.2, 2: 0.6, 3: 0.2])
        for n in 0 ..< 9 { p[(0 * 4 + 1) * 9 + n] = 1.0 / 9 }
        set(0, 2, [4: 1])
        set(0, 3, [7: 0.5, 8: 0.5])
        for e in 0 ..< 4 { set(1, e, [4: 1]) }
        return EdgeDistributions(probabilities: Tensor(shape: [2, 4, 9], data: p), binValues: Tensor(shape: [9], data: (0 ..< 9).map { Float($0 - 4) / 8 }),
                                 boxes: Tensor(shape: [2, 4], data: [0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.1, 0.1]), layer: 2)
    }

    func testEdgeDistributionsExpectationsAndBars() {
        let e = Self.edges
        let w = e.binValues.data
        XCTAssertEqual(edgeExpectation(edgeProbabilities(e, query: 0, edge: 0), w), -0.25, accuracy: 1e-6)
        XCTAssertEqual(edgeExpectation(edgeProbabilities(e, query: 0, edge: 1), w), 0, accuracy: 1e-6)
        XCTAssertEqual(edgeExpectation(edgeProbabilities(e, query: 0, edge: 3), w), 0.4375, accuracy: 1e-6)
        // Two cells per bin when there is room; the peak bin full height (2 rows = 16 eighths), its neighbours a third.
        XCTAssertEqual(edgeChartWidth(bins: 9, room: 30), 18)
        XCTAssertEqual(edgeChartWidth(bins: 33, room: 30), 30)
        let cols = edgeBarColumns(edgeProbabilities(e, query: 0, edge: 0), width: 18, height: 2)
        XCTAssertEqual(cols, [0, 0, 5, 5, 16, 16, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        // More bins than cells: bins summed per column, so the chart stays a distribution.
        XCTAssertEqual(edgeBarColumns([0.5, 0.25, 0.25, 0], width: 2, height: 1), [8, 3])
    }

    func testEdgeDistributionsViewShowsTheBoxAndFourCharts() throws {
        var s = Self.state([Probe(path: "model.0.layers.2.edges", label: "edge distributions", data: .edgeDistributions(Self.edges))], best: 0)
        Self.show(&s) { if case .edgeDistributions = $0 { return true } else { return false } }
        XCTAssertEqual(modeText(s), "edges q0 L2")
        let screen = view(s)
        for line in ["left   E -0.250 · n=2 0.60", "top    E +0.000", "right  E +0.000 · n=4 1.00", "bottom E +0.438",
                     "query 0/2 · decoder layer 2 · box 32,32 32x16", "W -0.500 0"] {
            XCTAssertTrue(screen.contains(line), "\(line)\n\(screen.text)")
        }
        // The box of query 0: (16, 24)-(48, 40) in input pixels.
        let (geo, _) = try XCTUnwrap(visualGeometry(s, Layout(state: s).right))
        let (c, r) = geo.cell(x: 16 * geo.mapWidth / 64, y: 24 * geo.mapHeight / 64)!
        XCTAssertEqual(screen[c, r].symbol, "┌")
        assertSnapshot(screen, "edges-constructed")
        // At 80x24 the pane is short: one line per edge.
        var small = s
        small.size = (80, 24)
        let narrow = view(small)
        XCTAssertTrue(narrow.contains("query 0/2"), narrow.text)
        assertSnapshot(narrow, "edges-constructed-80x24")
        // render --what edges and its JSON.
        let json = try JSONSerialization.jsonObject(with: Headless.json(s)) as! [String: Any]
        XCTAssertEqual(json["what"] as? String, "edges")
        let left = (json["edges"] as! [String: Any])["left"] as! [String: Any]
        XCTAssertEqual(left["expectation"] as! Double, -0.25, accuracy: 1e-6)
        let pic = Headless.picture(s)
        XCTAssertGreaterThan(pic.width, 64, "the charts are a strip beside the image")
    }

    // MARK: the fixtures' own runs

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Runs a fixture model directory on its golden input (`pixel_values`), with the picture shown under the views
    /// (`unnormalize`: ImageNet's normalisation undone).
    static func run(_ dir: String, unnormalize: Bool) throws -> (OpenedModel, RunResult) {
        let path = fixtures.appendingPathComponent(dir).path
        let expected = try SafetensorsFile(path: path + "/expected.safetensors")
        let pixels = try expected.tensor("pixel_values")
        let (h, w) = (pixels.shape[2], pixels.shape[3])
        var display = Array(pixels.data)
        if unnormalize {
            let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
            for c in 0 ..< 3 { for i in 0 ..< h * w { display[c * h * w + i] = display[c * h * w + i] * std[c] + mean[c] } }
        }
        let picture = Tensor(shape: [3, h, w], data: display)
        let backend = Backend(open: { model, _ in try openModel(model) }, prepare: { _, _, _ in (pixels, picture) })
        return try Headless.run(RunRequest(model: path, weights: nil, image: nil, inputSize: nil), backend: backend,
                                postprocess: PostprocessOptions(confidence: 0))
    }

    func testHFRTDETRBoxesAndQuerySelectionScreens() throws {
        let (opened, result) = try Self.run("hfdetr/rt-detr", unnormalize: false)
        let rows = opened.rows
        let decoder = try XCTUnwrap(rows.first { $0.module.hasPrefix("model.decoder ") }).index
        let selection = try XCTUnwrap(rows.first { $0.module.hasPrefix("model (query selection)") }).index
        let options = RenderOptions(colorMode: .none, symbols: .half)
        // The decoder's last layer, on the best detection's query.
        let last = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .boxes, layer: decoder, probe: 1), options: options)
        guard case .refinedBoxes(let r) = currentVisualKind(last) else { return XCTFail("boxes expected") }
        XCTAssertEqual(r.layer, 1)
        XCTAssertEqual(refinedChain(last, r).map(\.layer), [-1, 0, 1])
        let best = try XCTUnwrap(result.detections.max { $0.score < $1.score })
        XCTAssertEqual(last.query, best.source)
        assertSnapshot(Headless.screen(last, width: 100), "hf-rtdetr-boxes")
        // The box the view draws for the last layer is the detection's box (the same query, the same layer).
        let json = try JSONSerialization.jsonObject(with: Headless.json(last)) as! [String: Any]
        let layers = json["layers"] as! [[String: Any]]
        let box = (layers.last!["box"] as! [Double]).map(Float.init)
        let size = inputGrid(last)!
        XCTAssertEqual((box[0] - box[2] / 2) * Float(size.width), best.x1, accuracy: 1e-3)
        XCTAssertEqual((box[1] + box[3] / 2) * Float(size.height), best.y2, accuracy: 1e-3)
        XCTAssertEqual(Float(layers.last!["score"] as! Double), best.score, accuracy: 1e-5, "the last layer's best-class score is the detection's")
        // Every query of the last layer at the threshold 0 (render --all-queries).
        var all = RenderSpec(what: .boxes, layer: decoder, probe: 1)
        all.allQueries = true
        let allState = try Headless.state(opened: opened, result: result, spec: all, options: options)
        assertSnapshot(Headless.screen(allState, width: 100), "hf-rtdetr-boxes-all")
        // The query selection on the query selection's row.
        let sel = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .queries, layer: selection), options: options)
        guard case .querySelection(let q) = currentVisualKind(sel) else { return XCTFail("query selection expected") }
        XCTAssertEqual(q.indices.count, 12)
        assertSnapshot(Headless.screen(sel, width: 100), "hf-rtdetr-queries")
        // A layer without them says what it holds.
        XCTAssertThrowsError(try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .edges, layer: decoder), options: options)) {
            XCTAssertTrue("\($0)".contains("has no edges"), "\($0)")
        }
    }

    func testDeformableTwoStageBoxesAndProposals() throws {
        let (opened, result) = try Self.run("deformable/two-stage", unnormalize: true)
        let rows = opened.rows
        let twoStage = try XCTUnwrap(rows.first { $0.module.contains("two_stage") || $0.module.contains("TwoStage") }, rows.map(\.module).joined(separator: ", ")).index
        let layer1 = try XCTUnwrap(rows.first { $0.module.contains("decoder.layers.1") }).index
        let options = RenderOptions(colorMode: .none, symbols: .half)
        let boxes = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .boxes, layer: layer1, query: 3), options: options)
        guard case .refinedBoxes(let r) = currentVisualKind(boxes) else { return XCTFail("boxes expected") }
        XCTAssertEqual(refinedChain(boxes, r).map(\.layer), [-1, 0, 1], "the proposals (layer -1) and both layers' refined references")
        assertSnapshot(Headless.screen(boxes, width: 100), "deformable-two-stage-boxes")
        let sel = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .queries, layer: twoStage, query: 0), options: options)
        guard case .querySelection(let q) = currentVisualKind(sel) else { return XCTFail("query selection expected") }
        XCTAssertEqual(q.indices.count, 30)
        XCTAssertEqual(q.levelShapes.count, 4)
        XCTAssertEqual(q.scores.data, q.scores.data.sorted(by: >), "proposals in the order of their objectness")
        assertSnapshot(Headless.screen(sel, width: 100), "deformable-two-stage-queries")
    }

    func testDFINEEdgeDistributionsOnTheGoldenFixture() throws {
        let (opened, result): (OpenedModel, RunResult)
        do {
            (opened, result) = try Self.run("hfdetr/d-fine", unnormalize: false)
        } catch {
            throw XCTSkip("the D-FINE fixture does not open in this build: \(error)")
        }
        let decoder = try XCTUnwrap(opened.rows.first { $0.module.hasPrefix("model.decoder ") }).index
        let options = RenderOptions(colorMode: .none, symbols: .half)
        let s = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .edges, layer: decoder, probe: 1), options: options)
        guard case .edgeDistributions(let e) = currentVisualKind(s) else { return XCTFail("edge distributions expected") }
        XCTAssertEqual(e.layer, 1)
        let q = s.query, bins = e.binValues.count
        XCTAssertEqual(q, result.detections.max { $0.score < $1.score }?.source, "the best detection's query")
        // Each edge a distribution over the bins, and the view's numbers those of the probe.
        for edge in 0 ..< 4 { XCTAssertEqual(edgeProbabilities(e, query: q, edge: edge).reduce(0, +), 1, accuracy: 1e-4) }
        let json = try JSONSerialization.jsonObject(with: Headless.json(s)) as! [String: Any]
        XCTAssertEqual((json["bin_values"] as! [Double]).count, bins)
        assertSnapshot(Headless.screen(s, width: 100), "dfine-edges")
        let boxes = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .boxes, layer: decoder), options: options)
        guard case .refinedBoxes(let r) = currentVisualKind(boxes) else { return XCTFail("boxes expected") }
        XCTAssertEqual(refinedChain(boxes, r).first?.layer, -1, "the initial boxes of the query selection start the chain")
    }

    func testCompareShowsBothSidesOfADETRView() throws {
        var s = Self.state(Self.refinedProbes)
        Self.show(&s) { if case .refinedBoxes(let r) = $0 { return r.layer == 0 } else { return false } }
        let b = s
        var screen = Screen(width: 100, height: 30)
        drawComparePair(s, b, into: &screen, inner: Rect(x: 0, y: 0, width: 100, height: 30))
        XCTAssertEqual(screen.text.components(separatedBy: "q1: box after each layer").count - 1, 2, screen.text)
    }
}
