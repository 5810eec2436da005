import Foundation
import XCTest
@testable import Explorer

/// Pixel graphics: the escape sequences libchafa prints for each protocol at a fixed size (golden bytes under
/// Tests/ExplorerTests/Snapshots/graphics-*.bin, and what can be checked by decoding them), tmux's passthrough, the
/// choice of protocol (the fallback chain), and which cells and images a frame draws so that nothing stale stays.
final class GraphicsTests: XCTestCase {
    /// 16 x 16 pixels: red rising left to right, green falling, blue striped; opaque.
    static var picture: Picture {
        var p = Picture(width: 16, height: 16)
        for i in 0 ..< 256 {
            p.rgba[4 * i] = UInt8(i); p.rgba[4 * i + 1] = UInt8(255 - i); p.rgba[4 * i + 2] = UInt8((i * 7) & 255); p.rgba[4 * i + 3] = 255
        }
        return p
    }

    static let cell = (width: 8, height: 16)

    func escape(_ proto: PixelProtocol, tmux: Bool = false) -> [UInt8] {
        Renderer.pixelEscape(Self.picture, cols: 2, rows: 1,
                             graphics: PixelGraphics(proto: proto, tmuxPassthrough: tmux, cellWidth: Self.cell.width, cellHeight: Self.cell.height))
    }

    /// Compares bytes with a golden file (written when UPDATE_SNAPSHOTS=1, or when missing: then the test fails).
    func assertGolden(_ bytes: [UInt8], _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots/\(name)")
        let update = ProcessInfo.processInfo.environment["UPDATE_SNAPSHOTS"] == "1"
        guard !update, let expected = try? Data(contentsOf: url) else {
            try? Data(bytes).write(to: url)
            if !update { XCTFail("golden \(name) recorded; run again", file: file, line: line) }
            return
        }
        let i = zip(expected, bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(expected.count, bytes.count)
        XCTAssertEqual(Array(expected), bytes, "\(name): \(expected.count) bytes expected, \(bytes.count) printed, first difference at \(i)", file: file, line: line)
    }

    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    func testKittyCarriesThePixelsUnderTheText() throws {
        let bytes = escape(.kitty)
        assertGolden(bytes, "graphics-kitty.bin")
        let s = text(bytes)
        // RGBA (f=32) 16x16 over 2x1 cells, under the text (z=-1), cursor not moved (C=1), then chunks.
        XCTAssertTrue(s.hasPrefix("\u{1b}_Ga=T,f=32,s=16,v=16,c=2,r=1,z=-1,C=1,m=1\u{1b}\\"), s.prefix(80).debugDescription)
        // The payload of the chunks (each its own base64), decoded, is the picture's pixels.
        var payload: [UInt8] = []
        for chunk in s.components(separatedBy: "\u{1b}_G").dropFirst(2) {
            let body = chunk.hasSuffix("\u{1b}\\") ? String(chunk.dropLast(2)) : chunk
            if let semi = body.firstIndex(of: ";") { payload += try XCTUnwrap(Data(base64Encoded: String(body[body.index(after: semi)...]))) }
        }
        // Every byte is the picture's but the last of each 512-byte chunk: libchafa 1.12's base64 of a chunk's final
        // partial group gives that byte (an alpha) as 243 instead of 255, a pixel barely see-through.
        XCTAssertEqual(payload.count, Self.picture.rgba.count)
        for (k, (got, want)) in zip(payload, Self.picture.rgba).enumerated() where got != want {
            XCTAssertTrue(k % 512 == 511 && k % 4 == 3 && got >= 240, "byte \(k): \(got), the picture has \(want)")
        }
        XCTAssertTrue(s.hasSuffix("\u{1b}\\"))
    }

    func testITerm2SendsAnInlineImageFile() throws {
        let bytes = escape(.iterm2)
        assertGolden(bytes, "graphics-iterm2.bin")
        let s = text(bytes)
        XCTAssertTrue(s.hasPrefix("\u{1b}]1337;File=inline=1;width=2;height=1;preserveAspectRatio=0:"), s.prefix(80).debugDescription)
        let start = s.index(after: try XCTUnwrap(s.firstIndex(of: ":")))
        let end = try XCTUnwrap(s.lastIndex(of: "\u{07}"))
        let file = try XCTUnwrap(Data(base64Encoded: String(s[start ..< end])))
        XCTAssertEqual(Array(file.prefix(4)), [0x49, 0x49, 0x2a, 0x00], "a little-endian TIFF")
    }

    func testSixelIsAPaletteImageOfTheCellsPixels() throws {
        let bytes = escape(.sixel)
        assertGolden(bytes, "graphics-sixel.bin")
        let s = text(bytes)
        // DCS 0;1;0 q, raster attributes 1:1 and the size (16 wide; sixel rows of 6 fit in the cell's 16: 12).
        XCTAssertTrue(s.hasPrefix("\u{1b}P0;1;0q\"1;1;16;12#0;2;"), s.prefix(40).debugDescription)
        XCTAssertTrue(s.hasSuffix("\u{1b}\\"))
        // Two bands of six pixel rows, each ended by '-'.
        XCTAssertEqual(s.filter { $0 == "-" }.count, 2, s)
    }

    func testTmuxPassthroughDoublesEveryEscape() {
        let plain = escape(.kitty), wrapped = escape(.kitty, tmux: true)
        XCTAssertEqual(Array(wrapped.prefix(7)), Array("\u{1b}Ptmux;".utf8))
        XCTAssertEqual(Array(wrapped.suffix(2)), [0x1b, 0x5c])
        var unwrapped: [UInt8] = []
        var i = 7
        while i < wrapped.count - 2 {
            if wrapped[i] == 0x1b { XCTAssertEqual(wrapped[i + 1], 0x1b, "ESC at \(i) doubled"); i += 1 }
            unwrapped.append(wrapped[i])
            i += 1
        }
        XCTAssertEqual(unwrapped, plain)
    }

    func testTheFallbackChain() {
        func choose(_ mode: GraphicsMode, _ env: [String: String], tmux: TmuxState? = nil, colors: ColorMode = .truecolor) -> (PixelProtocol?, Bool) {
            let c = Renderer.chooseGraphics(mode, colorMode: colors, environment: env, tmux: tmux)
            return (c.proto, c.tmuxPassthrough)
        }
        // libchafa's database, from the environment.
        XCTAssertEqual(choose(.auto, ["TERM": "xterm-kitty"]).0, .kitty)
        XCTAssertEqual(choose(.auto, ["TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"]).0, .iterm2)
        XCTAssertEqual(choose(.auto, ["TERM": "foot"]).0, .sixel)
        XCTAssertEqual(choose(.auto, ["TERM": "mlterm"]).0, .sixel)
        XCTAssertNil(choose(.auto, ["TERM": "xterm-256color"]).0, "xterm does not say it draws sixels: symbols")
        XCTAssertNil(choose(.auto, ["TERM": "linux"]).0)
        // Asked for: as asked; symbols always symbols; no colour, symbols.
        XCTAssertEqual(choose(.sixel, ["TERM": "xterm-256color"]).0, .sixel)
        XCTAssertNil(choose(.symbols, ["TERM": "xterm-kitty"]).0)
        XCTAssertNil(choose(.kitty, ["TERM": "xterm-kitty"], colors: .none).0)
        // tmux: passthrough off -> symbols, even when asked; on -> the client terminal's protocol, wrapped.
        let inTmux = ["TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0", "TERM_PROGRAM": "tmux"]
        XCTAssertNil(choose(.auto, inTmux, tmux: TmuxState(passthrough: false, clientTerm: "xterm-kitty")).0)
        XCTAssertNil(choose(.kitty, inTmux, tmux: TmuxState(passthrough: false, clientTerm: "xterm-kitty")).0)
        XCTAssertNil(choose(.auto, inTmux, tmux: nil).0, "tmux that cannot be asked: symbols")
        XCTAssertTrue(choose(.auto, inTmux, tmux: TmuxState(passthrough: true, clientTerm: "xterm-kitty")) == (.kitty, true))
        XCTAssertTrue(choose(.auto, inTmux, tmux: TmuxState(passthrough: true, clientTerm: "foot")) == (.sixel, true))
        XCTAssertNil(choose(.auto, inTmux, tmux: TmuxState(passthrough: true, clientTerm: "xterm-256color")).0)
        XCTAssertTrue(choose(.sixel, inTmux, tmux: TmuxState(passthrough: true, clientTerm: nil)) == (.sixel, true))
    }

    // MARK: frames

    /// A 10x4 screen with one image over columns 2-5 of rows 1-2.
    func frame(cursorAt x: Int?, image: Bool = true, hash: UInt64 = 1) -> Screen {
        var s = Screen(width: 10, height: 4)
        s.text(0, 0, "title")
        if image { s.images = [ScreenImage(rect: Rect(x: 2, y: 1, width: 4, height: 2), picture: Self.picture, hash: hash)] }
        if let x { s[x, 1] = Cell("✛") }
        return s
    }

    func testAnOverlayThatMovesDrawsItsImageAgainWithTheOverlayOnTop() {
        let first = frame(cursorAt: 2), second = frame(cursorAt: 3)
        for kitty in [false, true] {
            let plan = PixelFrame(screen: second, changed: second.changedIndices(from: first), shown: first.images, images: second.images, kitty: kitty)
            XCTAssertEqual(plan.redraw, [0], "the image under the moved cross is drawn again (no cross left on it)")
            XCTAssertEqual(plan.cells, [], "no text cell is written over the image's pixels")
            XCTAssertEqual(plan.deleteAll, kitty)
        }
        // Nothing changed: nothing drawn.
        let same = PixelFrame(screen: second, changed: [], shown: second.images, images: second.images, kitty: true)
        XCTAssertEqual(same.redraw, [])
        XCTAssertFalse(same.deleteAll)
    }

    func testAnImageThatGoesAwayLeavesTextCellsInItsPlace() {
        let first = frame(cursorAt: nil), second = frame(cursorAt: nil, image: false)
        for kitty in [false, true] {
            let plan = PixelFrame(screen: second, changed: second.changedIndices(from: first), shown: first.images, images: [], kitty: kitty)
            XCTAssertEqual(plan.cells, [12, 13, 14, 15, 22, 23, 24, 25], "the 4x2 cells it covered are written as text")
            XCTAssertEqual(plan.redraw, [])
            XCTAssertEqual(plan.deleteAll, kitty)
        }
    }

    func testANewPictureOrAClearedScreenDrawsTheImage() {
        let first = frame(cursorAt: 2), next = frame(cursorAt: 2, hash: 2)
        XCTAssertEqual(PixelFrame(screen: next, changed: [], shown: first.images, images: next.images, kitty: false).redraw, [0])
        // After a resize or Ctrl-L the terminal knows no image (shown is empty) and every cell changed.
        let all = Array(next.cells.indices)
        let plan = PixelFrame(screen: next, changed: all, shown: [], images: next.images, kitty: true)
        XCTAssertEqual(plan.redraw, [0])
        XCTAssertEqual(plan.cells.count, 40 - 8, "every cell but the image's")
    }

    func testPixelModeDrawsPicturesAsImagesAndKeepsOverlaysAsText() throws {
        var s = Fixtures.loadedState(width: 120, height: 40, colorMode: .truecolor)
        s.render.pixels = PixelGraphics(proto: .sixel, cellWidth: 8, cellHeight: 16)
        let screen = view(s)
        let img = try XCTUnwrap(screen.images.first, "the feature map is an image")
        XCTAssertEqual(img.picture.width, img.rect.width * 8, "painted at the terminal's cell size")
        XCTAssertEqual(img.picture.height, img.rect.height * 16)
        // The cursor is a text cell on the image.
        let inside = (img.rect.y ..< img.rect.maxY).flatMap { y in (img.rect.x ..< img.rect.maxX).map { screen[$0, y] } }
        XCTAssertEqual(inside.filter { $0 != .blank }.map(\.symbol), ["✛"])
        // The help hides images (its blank cells would show them).
        s.showHelp = true
        XCTAssertEqual(view(s).images, [])
    }
}
