import XCTest
import Tensor
@testable import ModelZoo
@testable import Explorer

final class UpdateTests: XCTestCase {
    func browseState(_ w: Int = 80, _ h: Int = 24) -> State {
        var s = State(catalogue: Fixtures.catalogue, images: [URL(fileURLWithPath: "/x/chelsea.png")], render: RenderOptions(colorMode: .none))
        s.size = (w, h)
        s.selection = firstEntryRow(s)
        return s
    }

    func testTreeRowsAndSearch() {
        var s = browseState()
        XCTAssertEqual(s.treeRows.count, 10) // 4 families + 6 entries
        XCTAssertEqual(s.selectedEntry?.id, "rtdetr-l")
        XCTAssertEqual(update(&s, .key(.char("/"))), .none)
        for c in "yolo" { _ = update(&s, .key(.char(c))) }
        XCTAssertEqual(s.filter, "yolo")
        XCTAssertEqual(s.treeRows.count, 3)
        XCTAssertEqual(s.selectedEntry?.id, "yolov8n")
        _ = update(&s, .key(.down))
        XCTAssertEqual(s.selectedEntry?.id, "yolov8s")
        _ = update(&s, .key(.enter))
        XCTAssertNil(s.prompt)
        XCTAssertEqual(s.filter, "yolo")
        // Esc clears the filter; a second Esc does not quit (q does).
        XCTAssertEqual(update(&s, .key(.escape)), .none)
        XCTAssertEqual(s.filter, "")
        XCTAssertEqual(update(&s, .key(.escape)), .none)
        XCTAssertEqual(s.notice, "q quits")
    }

    /// The title bar names the size the model ran at, and the size asked for when the model's rule changed it.
    func testTitleShowsTheSizeTheModelRanAt() {
        var s = browseState()
        XCTAssertEqual(sizeLabel(s), "default")
        s.inputSize = 100
        XCTAssertEqual(sizeLabel(s), "100")
        s.opened = OpenedModel(name: "m", family: "YOLOv8", rows: [], inputSize: GridSize(128, 128), classNames: [], stride: 32)
        XCTAssertEqual(sizeLabel(s), "128 (asked 100)")
        s.opened?.inputSize = GridSize(96, 128)
        s.inputSize = 128
        XCTAssertEqual(sizeLabel(s), "128x96")
        s.inputSize = 100
        XCTAssertEqual(sizeLabel(s), "128x96 (asked 100)")
        s.inputSize = nil
        s.opened?.inputSize = GridSize(640, 640)
        XCTAssertEqual(sizeLabel(s), "640")
    }

    func testFoldingFamilies() {
        var s = browseState()
        s.selection = 0
        _ = update(&s, .key(.left))
        XCTAssertTrue(s.collapsed.contains("RT-DETR"))
        XCTAssertEqual(s.treeRows.count, 8)
        _ = update(&s, .key(.enter))
        XCTAssertFalse(s.collapsed.contains("RT-DETR"))
    }

    func testOpenRunsWithChosenInputs() {
        var s = browseState()
        _ = update(&s, .key(.char("s")))
        for c in "320" { _ = update(&s, .key(.char(c))) }
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.inputSize, 320)
        let e = update(&s, .key(.enter))
        XCTAssertEqual(e, .run(RunRequest(model: "rtdetr-l", weights: nil, image: "/x/chelsea.png", inputSize: 320)))
        XCTAssertEqual(s.mode, .model)
        XCTAssertTrue(s.isRunning)
        // Esc while running cancels; a second Esc goes back to the catalogue.
        XCTAssertEqual(update(&s, .key(.escape)), .cancel)
        XCTAssertEqual(s.phase, .cancelled)
        XCTAssertEqual(update(&s, .key(.escape)), .none)
        XCTAssertEqual(s.mode, .browse)
    }

    func testBadPromptInputsAreRefusedWithANotice() {
        var s = browseState()
        _ = update(&s, .key(.char("I")))
        for c in "/no/such/file.png" { _ = update(&s, .key(.char(c))) }
        _ = update(&s, .key(.enter))
        XCTAssertNil(s.imagePath)
        XCTAssertEqual(s.notice, "/no/such/file.png: no such file")
        _ = update(&s, .key(.char("s")))
        for c in "9" { _ = update(&s, .key(.char(c))) }
        _ = update(&s, .key(.enter))
        XCTAssertNil(s.inputSize)
        XCTAssertNotNil(s.notice)
    }

    func testGlobalKeys() {
        var s = browseState()
        XCTAssertEqual(update(&s, .key(.ctrl("l"))), .redraw)
        XCTAssertEqual(update(&s, .key(.char("m"))), .none)
        XCTAssertEqual(s.colormap, .inferno)
        _ = update(&s, .key(.char("?")))
        XCTAssertTrue(s.showHelp)
        _ = update(&s, .key(.down))
        XCTAssertEqual(s.helpScroll, 1)
        XCTAssertEqual(update(&s, .key(.char("q"))), .none)
        XCTAssertFalse(s.showHelp)
        XCTAssertEqual(update(&s, .key(.char("q"))), .quit)
        XCTAssertEqual(update(&s, .key(.ctrl("c"))), .quit)
        XCTAssertEqual(update(&s, .resize(width: 50, height: 20)), .redraw)
        XCTAssertTrue(s.size == (50, 20))
    }

    func testSteppingLayersAndPlay() {
        var s = Fixtures.loadedState()
        XCTAssertEqual(s.phase, .done)
        XCTAssertEqual(s.layer, 0)
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(s.layer, 1)
        _ = update(&s, .key(.char("j")))
        XCTAssertEqual(s.layer, 2)
        _ = update(&s, .key(.char("p")))
        XCTAssertEqual(s.layer, 1)
        _ = update(&s, .key(.char("G")))
        XCTAssertEqual(s.layer, 3)
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(s.layer, 3)
        _ = update(&s, .key(.char("g")))
        XCTAssertEqual(s.layer, 0)
        _ = update(&s, .key(.char(" ")))
        XCTAssertTrue(s.playing)
        for _ in 0 ..< 5 { _ = update(&s, .tick) }
        XCTAssertEqual(s.layer, 3)
        XCTAssertFalse(s.playing)
        _ = update(&s, .key(.char("g")))
        _ = update(&s, .key(.char("e")))
        XCTAssertTrue(s.expanded.contains(0))
        XCTAssertEqual(layerLines(s).count, 5)
    }

    func testDrawAheadPredictsNextLayerAndChannelAndHitsTheCache() {
        var s = Fixtures.loadedState()
        let ahead = likelyNextStates(s)
        XCTAssertEqual(ahead.map(\.layer), [1, 0])
        XCTAssertEqual(ahead.map(\.channel), [s.channel, s.channel + 1])
        XCTAssertEqual(ahead[0].mode, .model)
        // Drawing a predicted screen ahead, then pressing the key, gives the same screen.
        let early = view(ahead[0])
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(view(s), early)
        s.mode = .browse
        XCTAssertTrue(likelyNextStates(s).isEmpty)
    }

    func testVisualSourcesFollowProbes() {
        var s = Fixtures.loadedState()
        XCTAssertEqual(visualSources(s), [.output])
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(visualSources(s).count, 2)
        XCTAssertEqual(visualSources(s)[0], .output)
        _ = update(&s, .key(.char("v")))
        guard case .attention = currentVisualKind(s) else { return XCTFail("attention expected") }
        _ = update(&s, .key(.char("G")))
        // Decoder layer: detections, sampling, then the (non-map) output.
        guard case .detections = currentVisualKind(s) else { return XCTFail("detections expected") }
        _ = update(&s, .key(.char("v")))
        guard case .sampling = currentVisualKind(s) else { return XCTFail("sampling expected") }
        _ = update(&s, .key(.char("v")))
        guard case .other = currentVisualKind(s) else { return XCTFail("output tensor expected") }
    }

    func testChannelHeadLevelQuery() {
        var s = Fixtures.loadedState()
        _ = update(&s, .key(.char("c")))
        XCTAssertEqual(s.channel, 1)
        _ = update(&s, .key(.char("C")))
        _ = update(&s, .key(.char("C")))
        XCTAssertEqual(s.channel, 3)
        _ = update(&s, .key(.char("2")))
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.channel, 2)
        _ = update(&s, .key(.char("9")))
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.channel, 3, "clamped to the channel count")
        _ = update(&s, .key(.char("a")))
        XCTAssertEqual(s.channelMode, .grid)
        // Sampling: heads cycle all -> 0 -> 1 -> all; levels likewise; < > pick detections.
        _ = update(&s, .key(.char("G")))
        _ = update(&s, .key(.char("v")))
        XCTAssertEqual(s.head, -1)
        _ = update(&s, .key(.char("]")))
        XCTAssertEqual(s.head, 0)
        _ = update(&s, .key(.char("]")))
        _ = update(&s, .key(.char("]")))
        XCTAssertEqual(s.head, -1)
        _ = update(&s, .key(.char("[")))
        XCTAssertEqual(s.head, 1)
        _ = update(&s, .key(.char("}")))
        XCTAssertEqual(s.level, 0)
        _ = update(&s, .key(.char("{")))
        XCTAssertEqual(s.level, -1)
        _ = update(&s, .key(.char(">")))
        XCTAssertEqual(s.query, 7)
        _ = update(&s, .key(.char(">")))
        XCTAssertEqual(s.query, 3)
        _ = update(&s, .key(.char("5")))
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.query, 5)
        _ = update(&s, .key(.tab))
        _ = update(&s, .key(.right))
        XCTAssertEqual(s.query, 6)
    }

    func testAttentionCursorMovesQuery() {
        var s = Fixtures.loadedState()
        _ = update(&s, .key(.char("n")))
        _ = update(&s, .key(.char("v")))
        _ = update(&s, .key(.tab))
        XCTAssertEqual(s.focus, .visual)
        _ = update(&s, .key(.right))
        _ = update(&s, .key(.down))
        _ = update(&s, .key(.down))
        XCTAssertTrue(s.cursor == (1, 2))
        for _ in 0 ..< 10 { _ = update(&s, .key(.right)) }
        XCTAssertTrue(s.cursor == (3, 2), "clamped to the query grid")
    }

    func testClicksSelectRowsAndMoveTheCursor() {
        var s = Fixtures.loadedState()
        let layout = Layout(state: s)
        // Header line is the first inner row; layer rows follow.
        _ = update(&s, .click(x: layout.left.x + 3, y: layout.left.y + 2 + 2))
        XCTAssertEqual(s.layer, 2)
        XCTAssertEqual(s.focus, .layers)
        _ = update(&s, .key(.char("g")))
        let (geo, _) = visualGeometry(s, layout.right)!
        // Click the cell drawn for map cell (x 5, y 6) of the 8x8 output.
        let (c, r) = geo.cell(gridX: 5, gridY: 6, grid: GridSize(8, 8))!
        _ = update(&s, .click(x: c, y: r))
        XCTAssertEqual(s.focus, .visual)
        XCTAssertTrue(s.cursor == (5, 6))
        // Browse: clicking an entry selects it, clicking it again opens it.
        var b = browseState()
        let bl = Layout(state: b)
        _ = update(&b, .click(x: bl.left.x + 4, y: bl.left.y + 1 + 4))
        XCTAssertEqual(b.selectedEntry?.id, "yolov8n")
        let e = update(&b, .click(x: bl.left.x + 4, y: bl.left.y + 1 + 4))
        XCTAssertEqual(e, .run(RunRequest(model: "yolov8n", weights: nil, image: "/x/chelsea.png", inputSize: nil)))
    }

    func testLateMessagesAfterFailure() {
        var s = browseState()
        _ = update(&s, .key(.enter))
        _ = update(&s, .failed("rtdetr-l: weights.pt: missing key model.0.conv.weight"))
        XCTAssertEqual(s.phase, .failed("rtdetr-l: weights.pt: missing key model.0.conv.weight"))
        let screen = view(s)
        XCTAssertTrue(screen.contains("missing key model.0.conv.weight"), screen.text)
    }
}

private func == (a: (x: Int, y: Int), b: (Int, Int)) -> Bool { a.x == b.0 && a.y == b.1 }
private func == (a: (width: Int, height: Int), b: (Int, Int)) -> Bool { a.width == b.0 && a.height == b.1 }

final class ViewTests: XCTestCase {
    func testCatalogueSnapshot() {
        var s = State(catalogue: Fixtures.catalogue, images: [URL(fileURLWithPath: "/x/chelsea.png")], render: RenderOptions(colorMode: .none))
        s.size = (80, 20)
        s.selection = firstEntryRow(s)
        assertSnapshot(view(s), "catalogue")
        _ = update(&s, .key(.char("/")))
        for c in "cot" { _ = update(&s, .key(.char(c))) }
        assertSnapshot(view(s), "catalogue-search")
    }

    func testTooSmall() {
        var s = Fixtures.loadedState(width: 39, height: 12)
        XCTAssertTrue(view(s).contains("terminal too small"))
        s.size = (40, 12)
        XCTAssertFalse(view(s).contains("terminal too small"))
        XCTAssertTrue(view(s).contains("Layers"))
        s.size = (40, 11)
        XCTAssertTrue(view(s).contains("terminal too small"))
    }

    func testHelpOverlayScrolls() {
        var s = Fixtures.loadedState(width: 80, height: 20)
        _ = update(&s, .key(.char("?")))
        let first = view(s)
        XCTAssertTrue(first.contains("Help"))
        XCTAssertTrue(first.contains("detr-tui — keys"))
        for _ in 0 ..< 3 { _ = update(&s, .key(.down)) }
        XCTAssertFalse(view(s).contains("detr-tui — keys"))
        _ = update(&s, .key(.char("G")))
        let later = view(s)
        XCTAssertFalse(later.contains("detr-tui — keys"))
        XCTAssertTrue(later.contains("Sampling points"))
    }

    func testFeatureMapSnapshotAndCursorValue() {
        var s = Fixtures.loadedState()
        assertSnapshot(view(s), "featuremap")
        _ = update(&s, .key(.tab))
        _ = update(&s, .key(.right))
        _ = update(&s, .key(.down))
        // Channel 0 value at (y 1, x 1) = (1*8+1)/63.
        XCTAssertTrue(view(s).contains("cursor (y 1, x 1) = \(fmt(Float(9) / 63))"), view(s).text)
        _ = update(&s, .key(.char("a")))
        assertSnapshot(view(s), "featuremap-grid")
        _ = update(&s, .key(.char("a")))
        XCTAssertTrue(view(s).contains("mean of 4 channels"))
    }

    func testStatusBarNamesModelLayerShapeMode() {
        let s = Fixtures.loadedState()
        let last = view(s).lines.last!
        XCTAssertTrue(last.contains("model rtdetr-l"), last)
        XCTAssertTrue(last.contains("layer 0/3 Conv"), last)
        XCTAssertTrue(last.contains("[1, 4, 8, 8]"), last)
        XCTAssertTrue(last.contains("featuremap ch 0"), last)
    }

    func testAttentionSnapshot() {
        var s = Fixtures.loadedState()
        _ = update(&s, .key(.char("n")))
        _ = update(&s, .key(.char("v")))
        assertSnapshot(view(s), "attention")
        XCTAssertTrue(view(s).contains("mean of 2 heads"))
        _ = update(&s, .key(.char("]")))
        s.size = (160, 40)
        // Head 0 attends query q to key q exactly.
        XCTAssertTrue(view(s).contains("head 0/2 · peak key (y 0, x 0) 1.000"), view(s).text)
        _ = update(&s, .key(.char("]")))
        XCTAssertTrue(view(s).contains("head 1/2 · peak key (y 0, x 1) 1.000"), view(s).text)
    }

    func testChannelWeightsBars() {
        var s = Fixtures.loadedState()
        _ = update(&s, .key(.char("n")))
        _ = update(&s, .key(.char("n")))
        _ = update(&s, .key(.char("v")))
        assertSnapshot(view(s), "channel-weights")
        XCTAssertTrue(view(s).contains("top: 1:0.400 3:0.300"), view(s).text)
    }

    func testSamplingOverlayIsPlacedExactly() {
        var s = Fixtures.loadedState()
        _ = update(&s, .key(.char("G")))
        _ = update(&s, .key(.char("v")))
        _ = update(&s, .key(.char(">"))) // query 7 (the car)
        let screen = view(s)
        assertSnapshot(screen, "sampling")
        let layout = Layout(state: s)
        let (geo, _) = visualGeometry(s, layout.right)!
        let sp = Fixtures.sampling
        // Reference point of query 7: (0.5, 0.75).
        let (rc, rr) = geo.cell(normalizedX: 0.5, normalizedY: 0.75)!
        XCTAssertEqual(screen[rc, rr].symbol, "╋")
        // Every sampling point of query 7 sits on a head digit (mono mode) at its cell (unless under the cross).
        for h in 0 ..< 2 { for l in 0 ..< 2 { for p in 0 ..< 2 {
            let wi = ((7 * 2 + h) * 2 + l) * 2 + p
            let (c, r) = geo.cell(normalizedX: sp.locations.data[2 * wi], normalizedY: sp.locations.data[2 * wi + 1])!
            if c == rc && r == rr { continue }
            XCTAssertTrue(["0", "1"].contains(screen[c, r].symbol), "point h\(h) l\(l) p\(p) at \(c),\(r): \(screen[c, r].symbol)")
        } } }
        XCTAssertTrue(screen.contains("query 7/10 = car 0.60"), screen.text)
        // One head, one level.
        _ = update(&s, .key(.char("]")))
        _ = update(&s, .key(.char("}")))
        let one = view(s)
        XCTAssertTrue(one.contains("head 0/2 · level 0/2 8x8"), one.text)
        // No head-1 digits in the visual pane (the layer table on the left has digits of its own).
        let paneX = Layout(state: s).right.x
        XCTAssertFalse(one.lines.contains { $0.dropFirst(paneX).filter { $0 == "1" }.count > 3 })
        _ = update(&s, .key(.char("x")))
        assertSnapshot(view(s), "sampling-aggregate")
    }

    func testDetectionBoxesArePlacedExactly() {
        let s = Fixtures.loadedState()
        var t = s
        _ = update(&t, .key(.char("G")))
        let screen = view(t)
        assertSnapshot(screen, "detections")
        let (geo, _) = visualGeometry(t, Layout(state: t).right)!
        let (c1, r1) = geo.cell(x: 8, y: 8)!
        let (c2, r2) = geo.cell(x: 40, y: 56)!
        XCTAssertEqual(screen[c1, r1].symbol, "┌")
        XCTAssertEqual(screen[c2, r1].symbol, "┐")
        XCTAssertEqual(screen[c1, r2].symbol, "└")
        XCTAssertEqual(screen[c2, r2].symbol, "┘")
        XCTAssertTrue(screen.lines[r1].contains("person 0.90"))
    }

    func testColourScreenHasColours() {
        let s = Fixtures.loadedState(colorMode: .truecolor)
        let screen = view(s)
        let coloured = screen.cells.filter { if case .rgb = $0.bg { return true } else { return false } }.count
        XCTAssertGreaterThan(coloured, 200)
        // The layer table's highlighted row.
        XCTAssertTrue(screen.cells.contains { $0.bg == Theme(monochrome: false).style(.selected).bg })
    }

    /// A short terminal (60x14 stacks the panes, leaving the visual 5 inner rows) still shows the map: the lines
    /// under it go first (all of them, then at 16 rows the bar and its range come back).
    func testShortTerminalKeepsTheMap() {
        for (height, legend) in [(14, false), (16, true)] {
            let text = view(Fixtures.loadedState(width: 60, height: height)).text
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let title = try? XCTUnwrap(lines.firstIndex { $0.contains("output feature map") })
            guard let title else { return XCTFail(text) }
            let below = lines[title + 1].filter { !" │".contains($0) }
            XCTAssertFalse(below.isEmpty, "no map under the title at height \(height):\n\(text)")
            XCTAssertEqual(text.contains("range p1–p99"), legend, text)
        }
    }

    func testNarrowLayoutStacksPanes() {
        let s = Fixtures.loadedState(width: 60, height: 30)
        let l = Layout(state: s)
        XCTAssertEqual(l.left.width, 60)
        XCTAssertEqual(l.right.y, l.left.maxY)
        XCTAssertTrue(view(s).contains("Layers"))
    }
}
