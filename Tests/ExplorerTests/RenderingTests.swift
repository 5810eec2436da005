import XCTest
import Tensor
import ModelZoo
@testable import Explorer

final class RenderingTests: XCTestCase {
    func testColormapEndpointsArePublishedValues() {
        XCTAssertTrue(Colormap.viridis.color(0) == (0x44, 0x01, 0x54))
        XCTAssertTrue(Colormap.viridis.color(1) == (0xfd, 0xe7, 0x25))
        XCTAssertTrue(Colormap.inferno.color(0) == (0x00, 0x00, 0x04))
        XCTAssertTrue(Colormap.turbo.color(1) == (0x7a, 0x04, 0x03))
        XCTAssertTrue(Colormap.gray.color(0.5) == (128, 128, 128))
        // The diverging map is near white in the middle.
        let mid = Colormap.diverging.color(0.5)
        XCTAssertGreaterThan(Int(mid.0) + Int(mid.1) + Int(mid.2), 3 * 235)
        XCTAssertEqual(Colormap.viridis.next, .inferno)
        XCTAssertEqual(Colormap.diverging.next, .viridis)
    }

    func testNormalization() {
        let n = Normalization.fit([-1, 0, 3], signed: true)
        XCTAssertEqual(n.lo, -3); XCTAssertEqual(n.hi, 3)
        XCTAssertEqual(n.apply(0), 0.5)
        let u = Normalization.fit([2, 4, 6], signed: false)
        XCTAssertEqual(u.lo, 2); XCTAssertEqual(u.hi, 6)
        let values = (0 ... 100).map(Float.init)
        let c = Normalization.fit(values + [10000], signed: false, clip: 1)
        XCTAssertEqual(c.lo, 1); XCTAssertEqual(c.hi, 100)
        let flat = Normalization.fit([5, 5], signed: false)
        XCTAssertEqual(flat.apply(5), 0)
    }

    func testPaintIsNearestNeighbourPerMapCell() {
        let map = ScalarMap(width: 2, height: 2, values: [0, 1, 1, 0])
        let pic = Painter.paint(map, colormap: .gray, norm: Normalization(lo: 0, hi: 1, signed: false), width: 4, height: 4)
        XCTAssertTrue(pic.pixel(0, 0) == (0, 0, 0))
        XCTAssertTrue(pic.pixel(1, 1) == (0, 0, 0))
        XCTAssertTrue(pic.pixel(2, 0) == (255, 255, 255))
        XCTAssertTrue(pic.pixel(0, 3) == (255, 255, 255))
        XCTAssertTrue(pic.pixel(3, 3) == (0, 0, 0))
    }

    func testChafaHalfBlocksCarryBothColours() {
        // Top pixel red, bottom pixel blue in each of 3 cells: one half-block symbol per cell with both colours.
        // libchafa works on 8x8 pixels per cell.
        var pic = Picture(width: 24, height: 8)
        for x in 0 ..< 24 { for y in 0 ..< 8 { pic.setPixel(x, y, y < 4 ? (255, 0, 0) : (0, 0, 255)) } }
        let cells = Renderer.cells(pic, cols: 3, rows: 1, options: RenderOptions(colorMode: .truecolor, symbols: .half))
        XCTAssertEqual(cells.count, 3)
        for c in cells {
            XCTAssertTrue(["▀", "▄"].contains(c.symbol), "symbol \(c.symbol)")
            let colors = Set([c.fg, c.bg])
            XCTAssertEqual(colors, [.rgb(255, 0, 0), .rgb(0, 0, 255)])
        }
    }

    func testChafaIndexedModesGivePaletteIndices() {
        let pic = Picture(width: 4, height: 4, fill: (255, 0, 0))
        for mode in [ColorMode.c256, .c16, .c8] {
            let cells = Renderer.cells(pic, cols: 2, rows: 2, options: RenderOptions(colorMode: mode, symbols: .half))
            XCTAssertEqual(cells.count, 4)
            for c in cells {
                let colors = [c.fg, c.bg].filter { if case .index = $0 { return true } else { return false } }
                XCTAssertFalse(colors.isEmpty, "\(mode): \(c)")
            }
        }
    }

    func testOtherSymbolSetsProduceTheirGlyphs() {
        var pic = Picture(width: 8, height: 8)
        for y in 0 ..< 8 { for x in 0 ..< 8 where (x / 2 + y / 2) % 2 == 0 { pic.setPixel(x, y, (255, 255, 255)) } }
        let braille = Renderer.cells(pic, cols: 4, rows: 2, options: RenderOptions(colorMode: .truecolor, symbols: .braille))
        XCTAssertTrue(braille.allSatisfy { $0.symbol == " " || (0x2800 ... 0x28ff).contains($0.symbol.value) })
        let ascii = Renderer.cells(pic, cols: 4, rows: 2, options: RenderOptions(colorMode: .truecolor, symbols: .ascii))
        XCTAssertTrue(ascii.allSatisfy { $0.symbol.isASCII })
    }

    func testMonochromeUsesDensityRamp() {
        var pic = Picture(width: 2, height: 2)
        pic.setPixel(1, 0, (255, 255, 255)); pic.setPixel(1, 1, (255, 255, 255))
        let cells = Renderer.cells(pic, cols: 2, rows: 1, options: RenderOptions(colorMode: .none))
        XCTAssertEqual(cells.map(\.symbol), [" ", "@"])
        XCTAssertTrue(cells.allSatisfy { $0.fg == .none && $0.bg == .none })
    }

    func testColorModeDetection() {
        XCTAssertEqual(ColorMode.detect(environment: ["TERM": "xterm-256color", "NO_COLOR": "1"]), ColorMode.none)
        XCTAssertEqual(ColorMode.detect(environment: ["TERM": "dumb"]), ColorMode.none)
        XCTAssertEqual(ColorMode.detect(environment: ["TERM": "xterm-256color", "COLORTERM": "truecolor"]), .truecolor)
        XCTAssertEqual(ColorMode.detect(environment: ["TERM": "xterm-256color"]), .c256)
        XCTAssertEqual(ColorMode.detect(environment: ["TERM": "xterm"]), .c16)
    }

    func testDirectColorTerminfoChoice() {
        // COLORTERM asks for 24-bit colour on an indexed TERM: open the matching -direct entry.
        XCTAssertEqual(Terminal.directColorEntries(term: "xterm-256color", colorterm: "truecolor"), ["xterm-direct"])
        XCTAssertEqual(Terminal.directColorEntries(term: "tmux-256color", colorterm: "24bit"), ["tmux-direct"])
        XCTAssertEqual(Terminal.directColorEntries(term: "xterm-kitty", colorterm: "TrueColor"), ["xterm-kitty-direct", "xterm-direct"])
        XCTAssertEqual(Terminal.directColorEntries(term: "alacritty", colorterm: "truecolor"), ["alacritty-direct"])
        // Nothing to switch: no COLORTERM promise, TERM already direct, or no usable TERM.
        XCTAssertEqual(Terminal.directColorEntries(term: "xterm-256color", colorterm: nil), [])
        XCTAssertEqual(Terminal.directColorEntries(term: "xterm-256color", colorterm: "yes"), [])
        XCTAssertEqual(Terminal.directColorEntries(term: "xterm-direct", colorterm: "truecolor"), [])
        XCTAssertEqual(Terminal.directColorEntries(term: "dumb", colorterm: "truecolor"), [])
        XCTAssertEqual(Terminal.directColorEntries(term: nil, colorterm: "truecolor"), [])
    }

    func testChafaCanvasReuseGivesTheSameCells() {
        // A canvas kept from an earlier frame must draw a new picture exactly like a fresh one.
        var a = Picture(width: 32, height: 16, fill: (10, 200, 30))
        var b = Picture(width: 32, height: 16, fill: (0, 0, 0))
        for y in 0 ..< 16 { for x in 0 ..< 32 { b.setPixel(x, y, (UInt8(x * 8), UInt8(y * 16), 90)) } }
        a.setPixel(0, 0, (255, 255, 255))
        for mode in [ColorMode.truecolor, .c256] {
            let opts = RenderOptions(colorMode: mode, symbols: .half)
            let fresh = Renderer.chafaCells(b, opaque: true, cols: 4, rows: 2, options: opts)
            _ = Renderer.chafaCells(a, opaque: true, cols: 4, rows: 2, options: opts)
            XCTAssertEqual(Renderer.chafaCells(b, opaque: true, cols: 4, rows: 2, options: opts), fresh)
            XCTAssertNotEqual(Renderer.chafaCells(a, opaque: true, cols: 4, rows: 2, options: opts), fresh)
        }
    }

    func testBlendIsFixedPointMixOfBothPictures() {
        var base = Picture(width: 3, height: 1, fill: (200, 100, 0))
        base.setPixel(2, 0, (255, 255, 255))
        let top = Picture(width: 3, height: 1, fill: (0, 0, 250))
        let out = Painter.blend(base, top, alpha: 0.6)
        // 0.6 is 154/256 in fixed point: 200 * 102 / 256 = 79.7 -> 80; 250 * 154 / 256 = 150.4 -> 150.
        XCTAssertTrue(out.pixel(0, 0) == (80, 40, 150))
        XCTAssertTrue(out.pixel(2, 0) == (102, 102, 252))
        XCTAssertEqual(out.rgba[3], 255)
        XCTAssertEqual(Painter.blend(base, top, alpha: 0), base)
        XCTAssertEqual(Painter.blend(base, top, alpha: 1), top)
    }

    func testPaintIntoPlacesTheMapAndLeavesTheRest() {
        var pic = Picture(width: 6, height: 4, fill: (1, 2, 3))
        let map = ScalarMap(width: 2, height: 1, values: [0, 1])
        Painter.paint(map, colormap: .gray, norm: Normalization(lo: 0, hi: 1, signed: false), into: &pic, x: 2, y: 1, width: 4, height: 2)
        XCTAssertTrue(pic.pixel(1, 1) == (1, 2, 3))
        XCTAssertTrue(pic.pixel(2, 1) == (0, 0, 0))
        XCTAssertTrue(pic.pixel(3, 2) == (0, 0, 0))
        XCTAssertTrue(pic.pixel(4, 1) == (255, 255, 255))
        XCTAssertTrue(pic.pixel(5, 2) == (255, 255, 255))
        XCTAssertTrue(pic.pixel(5, 3) == (1, 2, 3))
        // Clipped at the picture's edge, not written past it.
        Painter.paint(map, colormap: .gray, norm: Normalization(lo: 0, hi: 1, signed: false), into: &pic, x: 5, y: 3, width: 4, height: 4)
        XCTAssertTrue(pic.pixel(5, 3) == (0, 0, 0))
        XCTAssertEqual(pic.rgba.count, 6 * 4 * 4)
    }

    func testContentHashSeesEveryPixelAndOpacity() {
        var a = Picture(width: 7, height: 5)
        let (h0, opaque0) = a.contentHashAndOpacity
        XCTAssertTrue(opaque0)
        for i in [0, 17, 70, 139] {
            var b = a
            b.rgba[i] ^= 1
            XCTAssertNotEqual(b.contentHashAndOpacity.0, h0, "byte \(i)")
        }
        a.rgba[139] = 128   // the last pixel's alpha, past the last whole 32-byte block
        XCTAssertFalse(a.contentHashAndOpacity.1)
        a.rgba[139] = 255
        a.rgba[3] = 0
        XCTAssertFalse(a.contentHashAndOpacity.1)
    }

    func testDirectColourTemplateReproducesTiparm() {
        // xterm-direct's and tmux-direct's setaf: indices below 8 as 3x, others as 38:2::r:g:b.
        let setaf = "\u{1b}[%?%p1%{8}%<%t3%p1%d%e38:2::%p1%{65536}%/%d:%p1%{256}%/%{255}%&%d:%p1%{255}%&%d%;m"
        setaf.withCString { cap in
            guard let t = RGBTemplate(cap) else { return XCTFail("no template") }
            var out: [UInt8] = []
            t.append(&out, 0x0102ff)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), "\u{1b}[38:2::1:2:255m")
        }
        // A string whose expansion does not carry the channels as decimals gets no template.
        "\u{1b}[38;5;%p1%dm".withCString { XCTAssertNil(RGBTemplate($0)) }
    }

    func testPaletteQuantisation() {
        XCTAssertEqual(Palette.nearest256(255, 0, 0), 196)
        XCTAssertEqual(Palette.nearest256(128, 128, 128), 244)
        XCTAssertEqual(Palette.nearest(250, 250, 250, count: 16), 15)
        XCTAssertEqual(Palette.nearest(0, 0, 0, count: 8), 0)
    }

    func testAnsiOutput() {
        var s = Screen(width: 3, height: 1)
        s.set(0, 0, Cell("a", fg: .rgb(1, 2, 3)))
        s.set(1, 0, Cell("b", bg: .index(200)))
        let t = Renderer.ansi(s, mode: .truecolor)
        XCTAssertEqual(t, "\u{1b}[0;38;2;1;2;3ma\u{1b}[0;48;5;200mb\u{1b}[0m\n")
        XCTAssertEqual(Renderer.ansi(s, mode: .none), "ab\n")
    }

    // MARK: geometry: tensor coordinates -> cells

    func testFitKeepsSquareMapCells() {
        let g = MapGeometry.fit(width: 20, height: 20, in: Rect(x: 10, y: 5, width: 60, height: 20))
        XCTAssertEqual(g.rect, Rect(x: 20, y: 5, width: 40, height: 20))
        let wide = MapGeometry.fit(width: 40, height: 10, in: Rect(x: 0, y: 0, width: 40, height: 30))
        XCTAssertEqual(wide.rect.width, 40)
        XCTAssertEqual(wide.rect.height, 5)
        XCTAssertEqual(wide.rect.y, 12)
    }

    func testTensorCoordinatesMapExactlyToCells() {
        // A 20x20 map in 40x20 cells: each map cell is 2 columns by 1 row.
        let g = MapGeometry.fit(width: 20, height: 20, in: Rect(x: 10, y: 5, width: 60, height: 20))
        XCTAssertTrue(g.cell(x: 0, y: 0)! == (20, 5))
        XCTAssertTrue(g.cell(x: 19.99, y: 19.99)! == (59, 24))
        XCTAssertTrue(g.cell(x: 20, y: 20)! == (59, 24))
        XCTAssertTrue(g.cell(x: 3.5, y: 7.2)! == (27, 12))
        XCTAssertTrue(g.cell(gridX: 3, gridY: 7, grid: GridSize(20, 20))! == (27, 12))
        XCTAssertTrue(g.cell(normalizedX: 0.5, normalizedY: 0.5)! == (40, 15))
        XCTAssertNil(g.cell(x: -0.1, y: 0))
        XCTAssertNil(g.cell(x: 0, y: 20.5))
        // And back: the centre of each cell maps into the map cell drawn there.
        for col in 20 ..< 60 {
            let (mx, _) = g.mapCoordinate(col: col, row: 5)!
            XCTAssertEqual(Int(mx), (col - 20) / 2)
            XCTAssertTrue(g.cell(x: mx, y: 0)!.col == col)
        }
        XCTAssertNil(g.mapCoordinate(col: 19, row: 5))
    }

    func testImageSpaceGeometryForDetectionsAndPoints() {
        // A 640x320 input in a 64x16 area: 10 input pixels per column, 20 per row.
        let g = MapGeometry.fit(width: 640, height: 320, in: Rect(x: 0, y: 0, width: 64, height: 16), inputSize: GridSize(320, 640))
        XCTAssertEqual(g.rect, Rect(x: 0, y: 0, width: 64, height: 16))
        XCTAssertTrue(g.cell(x: 105, y: 45)! == (10, 2))
        XCTAssertTrue(g.cell(normalizedX: 0.25, normalizedY: 0.75)! == (16, 12))
    }

    /// A cache key names a tensor's storage and keeps it alive: while the key exists, no new array of the same size
    /// gets that address (an address-only key gave a second model's image the first one's cached picture), and the
    /// cached picture is the image it was made from.
    func testStorageKeysKeepTheirBuffersAlive() {
        var a: [Float]? = (0 ..< 3 * 8 * 8).map { Float($0) / 192 }
        let key = StorageKey([a!], [8, 8])
        let address = key.numbers[0]
        a = nil
        withExtendedLifetime(key) {
            var others: [[Float]] = []
            for i in 0 ..< 64 {
                let b = [Float](repeating: Float(i), count: 3 * 8 * 8)
                XCTAssertNotEqual(b.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) }, address)
                others.append(b)
            }
        }
        let first = Painter.image(Tensor(shape: [3, 8, 8], data: [Float](repeating: 0, count: 192)), width: 8, height: 8)
        let second = Painter.image(Tensor(shape: [3, 8, 8], data: [Float](repeating: 1, count: 192)), width: 8, height: 8)
        XCTAssertEqual(first.rgba[0], 0)
        XCTAssertEqual(second.rgba[0], 255, "the second image's own picture, not the first one's from the cache")
    }
}

private func == (a: (UInt8, UInt8, UInt8), b: (UInt8, UInt8, UInt8)) -> Bool { a.0 == b.0 && a.1 == b.1 && a.2 == b.2 }
private func == (a: (col: Int, row: Int), b: (Int, Int)) -> Bool { a.col == b.0 && a.row == b.1 
}
