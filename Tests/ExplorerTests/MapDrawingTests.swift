import XCTest
import Tensor
@testable import ModelZoo
@testable import Explorer

/// Maps a person can read: the colour range (percentile without the edge ring, min/max, symmetric), constant
/// maps, grid paging and per-tile ranges, the grey image under overlays, the 8-colour ramp, one visual per
/// distinct probe, and what `render` leaves out (key hints, the cursor).
final class MapDrawingTests: XCTestCase {
    /// A one-layer model whose output is `output` [1, C, H, W], with `probes` recorded under it.
    static func state(output: Tensor, probes: [Probe] = [], width: Int = 100, height: Int = 36, colorMode: ColorMode = .none,
                      image: Tensor? = nil) -> State {
        var s = State(catalogue: Fixtures.catalogue, images: [], render: RenderOptions(colorMode: colorMode, symbols: .half))
        s.size = (width, height)
        s.mode = .model
        s.modelID = "fixture"
        let row = LayerRow(index: 0, from: [-1], repeats: 1, params: 0, module: "Conv", arguments: "", flops: 0, outputShape: output.shape)
        _ = update(&s, .opened(OpenedModel(name: "fixture", family: "test", rows: [row], inputSize: GridSize(64, 64), classNames: [])))
        let step = TraceStep(index: 0, path: "model.0", moduleType: "Conv", inputShapes: [[1, 3, 64, 64]], outputShape: output.shape,
                             output: output, params: 0, flops: 0, seconds: 0.001)
        _ = update(&s, .finished(RunResult(trace: TraceSnapshot(steps: [step], probes: probes), detections: [], image: image, seconds: 0.01)))
        s.notice = nil
        return s
    }

    /// A 12x12 map: a gradient 0...0.99 inside, 100 on the outermost ring (a padding artefact), -50 at one
    /// inner cell (an outlier).
    static var ringMap: Tensor {
        Fixtures.tensor([1, 1, 12, 12]) { i in
            let y = i / 12, x = i % 12
            if y == 0 || x == 0 || y == 11 || x == 11 { return 100 }
            if y == 5 && x == 5 { return -50 }
            return Float((y - 1) * 10 + (x - 1)) / 100
        }
    }

    // MARK: normalisation

    func testPercentileRangeIgnoresTheEdgeRingAndOutliers() {
        let map = ScalarMap(width: 12, height: 12, values: Self.ringMap.data)
        let n = Normalization.fit([map], mode: .percentile)
        // Inner 100 cells sorted: -50, 0, 0.01, ..., 0.99 (0.44 replaced by the outlier); ranks 1 and 98.
        XCTAssertEqual(n.lo, 0)
        XCTAssertEqual(n.hi, 0.98, accuracy: 1e-6)
        XCTAssertEqual(n.dataMin, -50)
        XCTAssertEqual(n.dataMax, 100)
        XCTAssertFalse(n.signed)
        let mm = Normalization.fit([map], mode: .minmax)
        XCTAssertEqual(mm.lo, -50); XCTAssertEqual(mm.hi, 100)
        let sym = Normalization.fit([map], mode: .symmetric)
        XCTAssertEqual(sym.lo, -0.98, accuracy: 1e-6); XCTAssertEqual(sym.hi, 0.98, accuracy: 1e-6)
        XCTAssertTrue(sym.signed)
        // A signed map stays centred on zero in every mode.
        let signed = ScalarMap(width: 3, height: 1, values: [-1, 0, 3], signed: true)
        XCTAssertEqual(Normalization.fit([signed], mode: .minmax).lo, -3)
        // Small maps (under 4x4) have no ring to drop; the percentile is over every cell.
        let small = ScalarMap(width: 3, height: 3, values: [9, 1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(Normalization.fit([small], mode: .percentile).hi, 9)
        XCTAssertEqual(RangeMode.percentile.next, .symmetric)
        XCTAssertEqual(RangeMode.symmetric.next, .minmax)
        XCTAssertEqual(RangeMode.minmax.next, .percentile)
    }

    func testSelectionFindsTheSameRanksAsSorting() {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 3, 10, 101, 1000] {
            let values = (0 ..< n).map { _ in Float(Int.random(in: -20 ... 20, using: &rng)) }
            var work = values
            let (lo, hi) = Normalization.percentiles(&work, 1)
            let sorted = values.sorted()
            XCTAssertEqual(lo, sorted[Int((Float(n - 1) * 0.01).rounded())], "n \(n)")
            XCTAssertEqual(hi, sorted[Int((Float(n - 1) * 0.99).rounded())], "n \(n)")
        }
    }

    func testLargePagesEstimateThePercentilesFromASample() {
        // 4 maps of 300x300 (355,216 inner cells, over the 2^18 sampled): a permutation of 0..<1 in each.
        let maps = (0 ..< 4).map { c in
            ScalarMap(width: 300, height: 300, values: (0 ..< 90000).map { Float(($0 * 7919 + c * 13) % 90000) / 90000 })
        }
        let n = Normalization.fit(maps, mode: .percentile)
        XCTAssertEqual(n.lo, 0.01, accuracy: 0.002)
        XCTAssertEqual(n.hi, 0.99, accuracy: 0.002)
        XCTAssertEqual(n.dataMin, 0)
        XCTAssertEqual(n.dataMax, Float(89999) / 90000)
    }

    func testPercentileIsTheDefaultAndTheColourBarSaysSo() {
        var s = Self.state(output: Self.ringMap, width: 120)
        XCTAssertEqual(s.rangeMode, .percentile)
        let screen = view(s)
        assertSnapshot(screen, "featuremap-percentile")
        XCTAssertTrue(screen.lines.contains { $0.contains("│0 ") && $0.contains(" 0.980 viridis") }, screen.text)
        XCTAssertTrue(screen.contains("range p1–p99 (edge cells ignored) · min -50.000 max 100.0"), screen.text)
        // `%` cycles to symmetric, then min/max, and says so.
        _ = update(&s, .key(.char("%")))
        XCTAssertEqual(s.rangeMode, .symmetric)
        XCTAssertTrue(view(s).contains("-0.980 "), view(s).text)
        XCTAssertTrue(view(s).contains("range ±p99 symmetric"))
        XCTAssertTrue(view(s).contains("diverging"), "a symmetric range is drawn with the diverging map")
        _ = update(&s, .key(.char("%")))
        XCTAssertEqual(s.rangeMode, .minmax)
        XCTAssertTrue(view(s).contains("-50.000 "), view(s).text)
        XCTAssertTrue(view(s).contains("range min–max · min -50.000 max 100.0"), view(s).text)
        _ = update(&s, .key(.char("%")))
        XCTAssertEqual(s.rangeMode, .percentile)
    }

    func testConstantMapIsNamedNotDrawnFlat() {
        // Equal to 3 significant digits: 0.5 with noise in the 7th digit.
        let t = Fixtures.tensor([1, 2, 8, 8]) { 0.5 + Float($0 % 3) * 1e-7 }
        let s = Self.state(output: t)
        let screen = view(s)
        assertSnapshot(screen, "featuremap-constant")
        XCTAssertTrue(screen.contains("constant value 0.500"), screen.text)
        let layout = Layout(state: s)
        let (geo, _) = visualGeometry(s, layout.right)!
        // No ramp glyphs in the map's rectangle: the map is named, not painted.
        for y in geo.rect.y ..< geo.rect.maxY {
            for x in geo.rect.x ..< geo.rect.maxX {
                XCTAssertFalse(["@", "%", "#", "*", "+"].contains(screen[x, y].symbol), "cell \(x),\(y)")
            }
        }
        // A map that varies in the third digit is drawn.
        let varied = Self.state(output: Fixtures.tensor([1, 1, 8, 8]) { 0.5 + Float($0) * 1e-3 })
        XCTAssertFalse(view(varied).contains("constant value"))
    }

    // MARK: grid

    func testGridPagesThroughChannelsWithCAndOwnRanges() {
        // 100 channels of 6x6; channel c is c + (position / 36).
        let t = Fixtures.tensor([1, 100, 6, 6]) { i in Float(i / 36) + Float(i % 36) / 36 }
        var s = Self.state(output: t)
        _ = update(&s, .key(.char("a")))
        XCTAssertEqual(s.channelMode, .grid)
        let (page, C) = currentGridPage(s)!
        XCTAssertEqual(C, 100)
        XCTAssertGreaterThan(page.perPage, 1)
        XCTAssertLessThan(page.perPage, 50)
        XCTAssertTrue(view(s).contains("channels 0-\(page.perPage - 1) of 100 · page 1/"), view(s).text)
        _ = update(&s, .key(.char("c")))
        XCTAssertEqual(s.channelMode, .grid, "c pages in grid mode, it does not drop back to one channel")
        XCTAssertEqual(s.channel, page.perPage)
        let second = view(s)
        assertSnapshot(second, "featuremap-grid-page2")
        XCTAssertTrue(second.contains("channels \(page.perPage)-"), second.text)
        XCTAssertTrue(second.contains("· page 2/"), second.text)
        // C goes back, and wraps from the first page to the last.
        _ = update(&s, .key(.char("C")))
        XCTAssertEqual(s.channel, 0)
        _ = update(&s, .key(.char("C")))
        let pages = (100 + page.perPage - 1) / page.perPage
        XCTAssertEqual(s.channel, (pages - 1) * page.perPage)
        // Shared range: one colour bar over the page; own ranges: each tile scaled alone.
        _ = update(&s, .key(.char("C")))
        XCTAssertTrue(view(s).contains("shared range"))
        XCTAssertFalse(s.gridOwnRange)
        _ = update(&s, .key(.char("R")))
        XCTAssertTrue(s.gridOwnRange)
        let own = view(s)
        XCTAssertTrue(own.contains("own ranges"), own.text)
        XCTAssertTrue(own.contains("each tile its own range"), own.text)
        // The first row of tiles: nearly flat shades of their level in the shared range, each its own gradient alone.
        let shared = view({ var x = s; x.gridOwnRange = false; return x }())
        let row = Layout(state: s).right.y + 2
        XCTAssertNotEqual(own.lines[row], shared.lines[row])
    }

    // MARK: overlay

    func testOverlayDrawsTheImageInGreyAndReportsItself() {
        let img = Fixtures.tensor([3, 4, 4]) { i in i < 16 ? 1 : 0 }     // pure red
        let grey = Painter.greyImage(img, width: 4, height: 4)
        let (r, g, b) = grey.pixel(1, 1)
        XCTAssertTrue(r == g && g == b, "grey: \(r) \(g) \(b)")
        XCTAssertEqual(Int(r), 54, accuracy: 1)   // Rec. 709 luminance of red
        var s = Self.state(output: Fixtures.tensor([1, 2, 8, 8]) { Float($0) }, image: Fixtures.image)
        XCTAssertFalse(overlayShown(s))
        _ = update(&s, .key(.char("o")))
        XCTAssertTrue(overlayShown(s))
        s.channelMode = .grid
        XCTAssertFalse(overlayShown(s), "grid thumbnails are not laid over the image")
        // Sampling: o draws the level's feature map under the points.
        var f = Fixtures.loadedState()
        _ = update(&f, .key(.char("G")))
        _ = update(&f, .key(.char("v")))
        guard case .sampling(let sp) = currentVisualKind(f) else { return XCTFail("sampling expected") }
        XCTAssertNil(samplingBackground(f, sp, heads: [0, 1], levels: [0, 1]))
        _ = update(&f, .key(.char("o")))
        XCTAssertTrue(overlayShown(f))
        let bg = samplingBackground(f, sp, heads: [0, 1], levels: [0, 1])
        XCTAssertEqual(bg?.0.width, 8, "the 8x8 level-0 map (layer 0's output)")
        XCTAssertTrue(bg?.1.contains("model.0") ?? false)
        XCTAssertTrue(view(f).contains("level 0 map: mean of model.0's channels"), view(f).text)
    }

    // MARK: 8 colours

    func testEightColourTerminalUsesTheNamedRamp() {
        let t = Fixtures.tensor([1, 1, 16, 16]) { Float($0 % 16) }
        let s = Self.state(output: t, width: 120, colorMode: .c8)
        let screen = view(s)
        assertSnapshot(screen, "featuremap-8colours")
        let ramp = Ramp8(.viridis)
        XCTAssertEqual(ramp.name, "black-blue-cyan-green-yellow")
        XCTAssertTrue(screen.contains("14.000 black-blue-cyan-green-yellow (8 colours)"), screen.text)
        let (geo, _) = visualGeometry(s, Layout(state: s).right)!
        // Every map cell uses only the ramp's colours, and a 16-step gradient shows more than the two or three
        // colours a quantised viridis gives.
        var looks = Set<Cell>()
        for y in geo.rect.y ..< geo.rect.maxY {
            for x in geo.rect.x ..< geo.rect.maxX {
                let cell = screen[x, y]
                if cell.symbol == "✛" { continue }   // the cursor
                for c in [cell.fg, cell.bg] where c != .none {
                    guard case .index(let i) = c else { return XCTFail("cell \(x),\(y): \(c) is not a palette colour") }
                    XCTAssertTrue(ramp.colors.contains(i), "colour \(i) at \(x),\(y)")
                }
                looks.insert(cell)
            }
        }
        XCTAssertGreaterThanOrEqual(looks.count, 12)
        XCTAssertNotNil(colorModeNote(s))
        XCTAssertTrue(colorModeNote(s)!.contains("--colors 256"))
        XCTAssertNil(colorModeNote(Self.state(output: t, colorMode: .c256)))
        // The ramp's levels are ordered: t = 0 is the first colour, t = 1 the last.
        XCTAssertEqual(ramp.cell(0), Cell(" ", bg: .index(0)))
        XCTAssertEqual(ramp.cell(1), Cell(" ", bg: .index(3)))
        XCTAssertEqual(ramp.cell(1.0 / 16), Cell("░", fg: .index(4), bg: .index(0)))
        XCTAssertEqual(ramp.cell(2.0 / 16), Cell("▒", fg: .index(4), bg: .index(0)))
    }

    // MARK: visuals

    func testDuplicateProbesAreDroppedAndTitlesNameThem() {
        let out = Fixtures.tensor([1, 2, 4, 4]) { Float($0) }
        let gate = Fixtures.tensor([1, 4, 4]) { Float($0) / 16 }
        let probes = [
            // The layer's output recorded again (as ultralytics models do), and a copy of it, and the gate twice.
            Probe(path: "model.0", label: "output feature map", data: .featureMap(out.reshaped([2, 4, 4]))),
            Probe(path: "model.0.copy", label: "the output again", data: .featureMap(Tensor(shape: [2, 4, 4], data: out.data.map { $0 }))),
            Probe(path: "model.0.gate", label: "gate: sigmoid(a(x))", data: .contextMap(gate, signed: false)),
            Probe(path: "model.0.gate2", label: "gate again", data: .contextMap(gate, signed: false)),
            Probe(path: "model.0.k1", label: "static context k1", data: .featureMap(Fixtures.tensor([2, 4, 4]) { -Float($0) })),
        ]
        var s = Self.state(output: out, probes: probes)
        XCTAssertEqual(visualSources(s), [.output, .probe(2), .probe(4)])
        var titles: [String] = []
        for i in 0 ..< 3 {
            s.visual = i
            titles.append(visualTitle(s, currentVisualKind(s)))
        }
        XCTAssertEqual(titles, ["output feature map · model.0 [1/3 v:next]", "gate: sigmoid(a(x)) · model.0.gate [2/3 v:next]",
                                "static context k1 · model.0.k1 [3/3 v:next]"])
        // render's titles carry no key hint.
        s.keyHints = false
        XCTAssertEqual(visualTitle(s, currentVisualKind(s)), "static context k1 · model.0.k1")
        // A module alone (no detections anywhere) shows no empty detections view.
        XCTAssertFalse(visualSources(s).contains(.detections))
    }

    func testRenderStateHasNoHintsAndNoCursorUnlessAsked() throws {
        let f = Fixtures.loadedState()
        let opened = f.opened!, result = f.result!
        let plain = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .featuremap, layer: 0), options: RenderOptions(colorMode: .none))
        let text = Headless.screen(plain, width: 60).text
        assertSnapshot(Headless.screen(plain, width: 60), "render-featuremap")
        for hint in ["c/C", "Tab", "hjkl", "v:next", "a: single", "o: over", "digits"] {
            XCTAssertFalse(text.contains(hint), "\(hint) in:\n\(text)")
        }
        XCTAssertFalse(text.contains("X"), "no cursor cross:\n\(text)")
        XCTAssertTrue(text.hasPrefix("output feature map · model.0"), text)
        XCTAssertTrue(text.contains("range p1–p99"), text)
        // --query places the cursor (a flat position on the map) and reports its value.
        let asked = try Headless.state(opened: opened, result: result, spec: RenderSpec(what: .featuremap, layer: 0, query: 9),
                                       options: RenderOptions(colorMode: .none))
        XCTAssertTrue(asked.cursor == (1, 1))
        let withCursor = Headless.screen(asked, width: 60).text
        XCTAssertTrue(withCursor.contains("X"), withCursor)
        XCTAssertTrue(withCursor.contains("cursor (y 1, x 1) = \(fmt(Float(9) / 63))"), withCursor)
    }

    // MARK: PNG labels

    func testPNGDetectionsCarryTheirLabels() throws {
        var f = Fixtures.loadedState()
        _ = update(&f, .key(.char("G")))
        guard case .detections(let dets) = currentVisualKind(f) else { return XCTFail("detections expected") }
        let pic = Headless.picture(f)
        XCTAssertEqual(pic.width, 64)
        // "person 0.90" on the person's box (top 8 < label height 9: drawn just inside, from y 8), 1 pixel per
        // font pixel at this width; dark ink exactly where the font has it, the box colour around it.
        let person = dets.first { $0.className == "person" }!
        XCTAssertEqual(detectionLabel(person), "person 0.90")
        guard case .rgb(let r, let g, let b) = classColor(person.classIndex) else { return XCTFail() }
        let x0 = Int(person.x1) + 1, y0 = Int(person.y1) + 1
        var ink = 0, mismatches = 0
        for (i, ch) in "person 0.90".enumerated() {
            for (row, line) in BitmapFont.glyph(ch).enumerated() {
                for (col, dot) in line.enumerated() {
                    let x = x0 + i * 6 + col, y = y0 + row
                    guard x < pic.width else { continue }
                    let p = pic.pixel(x, y)
                    if dot == "#" {
                        ink += 1
                        if p != (0, 0, 0) { mismatches += 1 }
                    } else if p != (r, g, b) {
                        mismatches += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(ink, 60)
        XCTAssertEqual(mismatches, 0)
        // Labels scale with the picture: 2 pixels per font pixel at 640 wide.
        XCTAssertEqual(Headless.labelScale(width: 640), 2)
        XCTAssertEqual(Headless.labelScale(width: 64), 1)
    }
}

private func == (a: (x: Int, y: Int), b: (Int, Int)) -> Bool { a.x == b.0 && a.y == b.1 }
private func == (a: (UInt8, UInt8, UInt8), b: (UInt8, UInt8, UInt8)) -> Bool { a.0 == b.0 && a.1 == b.1 && a.2 == b.2 }
private func != (a: (UInt8, UInt8, UInt8), b: (UInt8, UInt8, UInt8)) -> Bool { !(a == b) }
