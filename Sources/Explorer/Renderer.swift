import CChafa
import Foundation

/// Turns pictures into terminal cells through libchafa (the only file that talks to it), and cells into
/// ANSI text for the command line.

/// The terminal's colour capability.
public enum ColorMode: String, CaseIterable, Sendable {
    case truecolor, c256 = "256", c16 = "16", c8 = "8", none

    /// From the environment: NO_COLOR or TERM=dumb give none; COLORTERM=truecolor/24bit truecolor;
    /// TERM containing 256color 256; else 16.
    public static func detect(environment env: [String: String] = ProcessInfo.processInfo.environment) -> ColorMode {
        if let nc = env["NO_COLOR"], !nc.isEmpty { return .none }
        let term = env["TERM"] ?? ""
        if term == "dumb" || term.isEmpty { return .none }
        let ct = (env["COLORTERM"] ?? "").lowercased()
        if ct == "truecolor" || ct == "24bit" || term.hasSuffix("-direct") { return .truecolor }
        if term.contains("256") { return .c256 }
        return .c16
    }
}

/// The symbols libchafa may use for maps.
public enum SymbolSet: String, CaseIterable, Sendable {
    case half, quadrants, sextants, braille, ascii

    /// Pixels per cell (x, y) of the pictures drawn for the terminal: libchafa works on 8x8 pixels per cell,
    /// so pictures painted at that size reach it unscaled and map cells stay crisp.
    public var pixelsPerCell: (Int, Int) { (8, 8) }

    var tags: ChafaSymbolTags {
        switch self {
        case .half: return ChafaSymbolTags(rawValue: CHAFA_SYMBOL_TAG_HALF.rawValue | CHAFA_SYMBOL_TAG_SPACE.rawValue | CHAFA_SYMBOL_TAG_SOLID.rawValue)
        case .quadrants: return ChafaSymbolTags(rawValue: CHAFA_SYMBOL_TAG_QUAD.rawValue | CHAFA_SYMBOL_TAG_HALF.rawValue | CHAFA_SYMBOL_TAG_SPACE.rawValue | CHAFA_SYMBOL_TAG_SOLID.rawValue)
        case .sextants: return ChafaSymbolTags(rawValue: CHAFA_SYMBOL_TAG_SEXTANT.rawValue | CHAFA_SYMBOL_TAG_HALF.rawValue | CHAFA_SYMBOL_TAG_SPACE.rawValue | CHAFA_SYMBOL_TAG_SOLID.rawValue)
        case .braille: return ChafaSymbolTags(rawValue: CHAFA_SYMBOL_TAG_BRAILLE.rawValue | CHAFA_SYMBOL_TAG_SPACE.rawValue)
        case .ascii: return ChafaSymbolTags(rawValue: CHAFA_SYMBOL_TAG_ASCII.rawValue | CHAFA_SYMBOL_TAG_SPACE.rawValue)
        }
    }
}

/// Rendering options shared by the TUI, the CLI's ANSI output and tests.
public struct RenderOptions: Sendable, Hashable {
    public var colorMode: ColorMode
    public var symbols: SymbolSet
    /// Pictures drawn with pixels through a terminal graphics protocol (nil: symbols).
    public var pixels: PixelGraphics?
    public init(colorMode: ColorMode = .truecolor, symbols: SymbolSet = .half, pixels: PixelGraphics? = nil) {
        self.colorMode = colorMode
        self.symbols = symbols
        self.pixels = pixels
    }

    /// Pixels per cell of the pictures drawn: the terminal's cell in pixel mode (each map cell a block of real
    /// pixels), else what libchafa's symbols work on.
    public var pixelsPerCell: (Int, Int) {
        if let p = pixels { return (p.cellWidth, p.cellHeight) }
        return symbols.pixelsPerCell
    }
}

public enum Renderer {
    /// The glyph-density ramp used without colour (dark to bright).
    public static let ramp: [Unicode.Scalar] = [" ", ".", ":", "-", "=", "+", "*", "#", "%", "@"]

    /// The picture as `cols` x `rows` cells. With colour, libchafa picks symbols and colours for the mode;
    /// without, each cell is a glyph from a density ramp by the cell's mean luminance.
    public static func cells(_ pic: Picture, cols: Int, rows: Int, options: RenderOptions) -> [Cell] {
        guard cols > 0, rows > 0, pic.width > 0, pic.height > 0 else { return [] }
        if options.colorMode == .none { return rampCells(pic, cols: cols, rows: rows) }
        // The same picture is often drawn again (only an overlay moved): reuse libchafa's answer.
        let (hash, opaque) = pic.contentHashAndOpacity
        let key = CellsKey(hash: hash, width: pic.width, height: pic.height, cols: cols, rows: rows, options: options)
        if let hit = cellCache.get(key) { return hit }
        let cells = chafaCells(pic, opaque: opaque, cols: cols, rows: rows, options: options)
        cellCache.put(key, cells)
        return cells
    }

    struct CellsKey: Hashable {
        var hash: UInt64
        var width: Int, height: Int, cols: Int, rows: Int
        var options: RenderOptions
    }

    static let cellCache = LRUCache<CellsKey, [Cell]>(capacity: 16)

    static func rampCells(_ pic: Picture, cols: Int, rows: Int) -> [Cell] {
        let means = cellMeans(width: pic.width, height: pic.height, cols: cols, rows: rows) { x, y in
            let p = pic.pixel(x, y)
            return 0.2126 * Float(p.0) + 0.7152 * Float(p.1) + 0.0722 * Float(p.2)
        }
        return means.map { m in
            let l = m.isFinite ? m / 255 : 0
            return Cell(ramp[min(ramp.count - 1, Int(l * Float(ramp.count - 1) + 0.5))])
        }
    }

    /// For each of `cols` x `rows` cells over a `width` x `height` grid (row-major), the mean of `value` over
    /// the grid points the cell covers (at least the one under it); NaN where `value` gave nothing.
    static func cellMeans(width: Int, height: Int, cols: Int, rows: Int, _ value: (Int, Int) -> Float?) -> [Float] {
        var out = [Float](repeating: .nan, count: max(0, cols * rows))
        for r in 0 ..< rows {
            let y0 = r * height / rows, y1 = max(y0 + 1, (r + 1) * height / rows)
            for c in 0 ..< cols {
                let x0 = c * width / cols, x1 = max(x0 + 1, (c + 1) * width / cols)
                var sum: Float = 0, n: Float = 0
                for y in y0 ..< min(y1, height) {
                    for x in x0 ..< min(x1, width) {
                        if let v = value(x, y) { sum += v; n += 1 }
                    }
                }
                if n > 0 { out[r * cols + c] = sum / n }
            }
        }
        return out
    }

    static func canvasMode(_ m: ColorMode) -> ChafaCanvasMode {
        switch m {
        case .truecolor: return CHAFA_CANVAS_MODE_TRUECOLOR
        case .c256: return CHAFA_CANVAS_MODE_INDEXED_240
        case .c16: return CHAFA_CANVAS_MODE_INDEXED_16
        case .c8: return CHAFA_CANVAS_MODE_INDEXED_8
        case .none: return CHAFA_CANVAS_MODE_FGBG
        }
    }

    static func makeCanvas(cols: Int, rows: Int, options: RenderOptions) -> OpaquePointer? {
        guard let config = chafa_canvas_config_new() else { return nil }
        defer { chafa_canvas_config_unref(config) }
        chafa_canvas_config_set_geometry(config, gint(cols), gint(rows))
        chafa_canvas_config_set_canvas_mode(config, canvasMode(options.colorMode))
        chafa_canvas_config_set_color_space(config, CHAFA_COLOR_SPACE_RGB)
        chafa_canvas_config_set_dither_mode(config, CHAFA_DITHER_MODE_NONE)
        // With the four half-block symbols an exhaustive search is cheaper than the fast path's pixel sort
        // (about 11 ms against 16 ms for 150x50 cells); the larger symbol sets need the fast path.
        chafa_canvas_config_set_work_factor(config, options.symbols == .half ? 1.0 : 0.1)
        chafa_canvas_config_set_preprocessing_enabled(config, 0)
        let symbols = chafa_symbol_map_new()
        if options.symbols == .half {
            // Upper and lower half blocks, full block and space: every two-colour split of a cell's top and
            // bottom half, and a small set keeps libchafa's symbol search fast.
            for c: gunichar in [0x20, 0x2580, 0x2584, 0x2588] { chafa_symbol_map_add_by_range(symbols, c, c) }
        } else {
            chafa_symbol_map_add_by_tags(symbols, options.symbols.tags)
        }
        chafa_canvas_config_set_symbol_map(config, symbols)
        chafa_symbol_map_unref(symbols)
        return chafa_canvas_new(config)
    }

    struct CanvasKey: Hashable {
        var cols: Int, rows: Int
        var options: RenderOptions
    }

    /// libchafa canvases kept from frame to frame, one per geometry and options (the map, the colour bar):
    /// a key that changes the map redraws into the canvas it used last time instead of building a config,
    /// a symbol map and a canvas again. One lock guards them; a canvas is used by one caller at a time.
    final class CanvasPool: @unchecked Sendable {
        private let lock = NSLock()
        private var canvases: [(CanvasKey, OpaquePointer)] = []
        let capacity = 4

        func use<R>(_ key: CanvasKey, _ body: (OpaquePointer) -> R) -> R? {
            lock.lock(); defer { lock.unlock() }
            let canvas: OpaquePointer
            if let i = canvases.firstIndex(where: { $0.0 == key }) {
                canvas = canvases.remove(at: i).1
            } else {
                guard let made = makeCanvas(cols: key.cols, rows: key.rows, options: key.options) else { return nil }
                canvas = made
            }
            canvases.append((key, canvas))
            while canvases.count > capacity { chafa_canvas_unref(canvases.removeFirst().1) }
            return body(canvas)
        }
    }

    static let canvasPool = CanvasPool()

    static func chafaCells(_ pic: Picture, opaque: Bool, cols: Int, rows: Int, options: RenderOptions) -> [Cell] {
        let key = CanvasKey(cols: cols, rows: rows, options: options)
        return canvasPool.use(key) { canvas in read(canvas, pic, opaque: opaque, cols: cols, rows: rows, options: options) }
            ?? rampCells(pic, cols: cols, rows: rows)
    }

    private static func read(_ canvas: OpaquePointer, _ pic: Picture, opaque: Bool, cols: Int, rows: Int, options: RenderOptions) -> [Cell] {
        // Opaque pictures (all of ours) are the same premultiplied or not; saying so spares libchafa a
        // premultiplication pass over every pixel.
        pic.rgba.withUnsafeBufferPointer { p in
            chafa_canvas_draw_all_pixels(canvas, opaque ? CHAFA_PIXEL_RGBA8_PREMULTIPLIED : CHAFA_PIXEL_RGBA8_UNASSOCIATED,
                                         p.baseAddress, gint(pic.width), gint(pic.height), gint(pic.width * 4))
        }
        var out = [Cell](repeating: .blank, count: cols * rows)
        let truecolor = options.colorMode == .truecolor
        func color(_ v: gint) -> CellColor {
            if v < 0 { return .none }
            if truecolor { return CellColor(hex: UInt32(v)) }
            return v < 256 ? .index(UInt8(v)) : .none
        }
        for r in 0 ..< rows {
            for c in 0 ..< cols {
                let ch = chafa_canvas_get_char_at(canvas, gint(c), gint(r))
                var fg: gint = 0, bg: gint = 0
                // Packed RGB in truecolor; palette indices (the raw colours) in the indexed modes.
                if truecolor {
                    chafa_canvas_get_colors_at(canvas, gint(c), gint(r), &fg, &bg)
                } else {
                    chafa_canvas_get_raw_colors_at(canvas, gint(c), gint(r), &fg, &bg)
                }
                let scalar = Unicode.Scalar(UInt32(ch)) ?? " "
                out[r * cols + c] = Cell(scalar, fg: color(fg), bg: color(bg))
            }
        }
        return out
    }

    /// Draws a picture into `rect` of a screen: in pixel mode (and at least two rows high, so colour bars stay
    /// symbols) as an image over blank cells, else as libchafa's symbols.
    public static func draw(_ pic: Picture, into screen: inout Screen, at rect: Rect, options: RenderOptions) {
        if options.pixels != nil, options.colorMode != .none, rect.height >= 2, rect.width >= 2 {
            screen.fill(rect, .blank)
            screen.images.removeAll { $0.rect == rect }
            screen.images.append(ScreenImage(rect: rect, picture: pic, hash: pic.contentHashAndOpacity.0))
            return
        }
        let cells = cells(pic, cols: rect.width, rows: rect.height, options: options)
        guard cells.count == rect.width * rect.height else { return }
        for r in 0 ..< rect.height {
            for c in 0 ..< rect.width { screen.set(rect.x + c, rect.y + r, cells[r * rect.width + c]) }
        }
    }

    // MARK: ANSI text

    /// The screen as ANSI text (SGR colours for the mode; plain text without colour), lines joined by newlines,
    /// trailing blank cells trimmed.
    public static func ansi(_ screen: Screen, mode: ColorMode) -> String {
        var out = ""
        for y in 0 ..< screen.height {
            var last = screen.width
            while last > 0, screen[last - 1, y] == .blank { last -= 1 }
            var current: (CellColor, CellColor, CellAttributes)? = nil
            for x in 0 ..< last {
                let cell = screen[x, y]
                if mode != .none, current == nil || current!.0 != cell.fg || current!.1 != cell.bg || current!.2 != cell.attrs {
                    out += sgr(cell, mode: mode)
                    current = (cell.fg, cell.bg, cell.attrs)
                }
                out.unicodeScalars.append(cell.symbol)
            }
            if mode != .none, current != nil { out += "\u{1b}[0m" }
            out += "\n"
        }
        return out
    }

    static func sgr(_ cell: Cell, mode: ColorMode) -> String {
        var parts = ["0"]
        if cell.attrs.contains(.bold) { parts.append("1") }
        if cell.attrs.contains(.dim) { parts.append("2") }
        if cell.attrs.contains(.underline) { parts.append("4") }
        if cell.attrs.contains(.reverse) { parts.append("7") }
        if let f = code(cell.fg, mode: mode, background: false) { parts.append(f) }
        if let b = code(cell.bg, mode: mode, background: true) { parts.append(b) }
        return "\u{1b}[" + parts.joined(separator: ";") + "m"
    }

    static func code(_ c: CellColor, mode: ColorMode, background: Bool) -> String? {
        switch c {
        case .none: return nil
        case .index(let i):
            if i < 8 { return String((background ? 40 : 30) + Int(i)) }
            if i < 16 { return String((background ? 100 : 90) + Int(i) - 8) }
            return (background ? "48;5;" : "38;5;") + String(i)
        case .rgb(let r, let g, let b):
            switch mode {
            case .truecolor: return (background ? "48;2;" : "38;2;") + "\(r);\(g);\(b)"
            case .c256: return (background ? "48;5;" : "38;5;") + String(Palette.nearest256(r, g, b))
            case .c16, .c8:
                let i = Palette.nearest(r, g, b, count: mode == .c16 ? 16 : 8)
                if i < 8 { return String((background ? 40 : 30) + i) }
                return String((background ? 100 : 90) + i - 8)
            case .none: return nil
            }
        }
    }
}

/// The xterm palette, for quantising RGB colours to the indexed modes.
public enum Palette {
    public static let base16: [(Int, Int, Int)] = [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
        (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ]

    static let cube = [0, 95, 135, 175, 215, 255]

    /// The RGB of palette index i (0...255).
    public static func rgb(_ i: Int) -> (Int, Int, Int) {
        if i < 16 { return base16[i] }
        if i < 232 {
            let k = i - 16
            return (cube[k / 36], cube[(k / 6) % 6], cube[k % 6])
        }
        let v = 8 + 10 * (i - 232)
        return (v, v, v)
    }

    /// The nearest of the first `count` palette entries.
    public static func nearest(_ r: UInt8, _ g: UInt8, _ b: UInt8, count: Int) -> Int {
        var best = 0, bestD = Int.max
        for i in 0 ..< count {
            let p = rgb(i)
            let d = (p.0 - Int(r)) * (p.0 - Int(r)) + (p.1 - Int(g)) * (p.1 - Int(g)) + (p.2 - Int(b)) * (p.2 - Int(b))
            if d < bestD { bestD = d; best = i }
        }
        return best
    }

    /// The nearest entry of the 6x6x6 cube or the grey ramp (indices 16...255).
    public static func nearest256(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Int {
        func level(_ v: UInt8) -> Int {
            var best = 0
            for k in 1 ..< 6 where abs(cube[k] - Int(v)) < abs(cube[best] - Int(v)) { best = k }
            return best
        }
        let ci = 16 + 36 * level(r) + 6 * level(g) + level(b)
        let cc = rgb(ci)
        let grey = (Int(r) + Int(g) + Int(b)) / 3
        let gi = 232 + max(0, min(23, (grey - 8 + 5) / 10))
        let gc = rgb(gi)
        func d(_ p: (Int, Int, Int)) -> Int {
            (p.0 - Int(r)) * (p.0 - Int(r)) + (p.1 - Int(g)) * (p.1 - Int(g)) + (p.2 - Int(b)) * (p.2 - Int(b))
        }
        return d(gc) < d(cc) ? gi : ci
    }
}

extension Picture {
    /// A 64-bit hash of the pixels (FNV-1a style in four interleaved lanes of 8 bytes, so the multiplies do
    /// not wait on each other), and whether every pixel is opaque, in one pass.
    var contentHashAndOpacity: (UInt64, Bool) {
        let prime: UInt64 = 0x100000001b3
        var h0: UInt64 = 0xcbf29ce484222325, h1 = h0 ^ 1, h2 = h0 ^ 2, h3 = h0 ^ 3
        let mask: UInt64 = 0xff00_0000_ff00_0000
        var alpha = mask
        rgba.withUnsafeBytes { raw in
            let n = raw.count / 32
            for i in 0 ..< n {
                let o = i * 32
                let a = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                let b = raw.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self)
                let c = raw.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self)
                let d = raw.loadUnaligned(fromByteOffset: o + 24, as: UInt64.self)
                h0 = (h0 ^ a) &* prime; h1 = (h1 ^ b) &* prime; h2 = (h2 ^ c) &* prime; h3 = (h3 ^ d) &* prime
                alpha &= a & b & c & d
            }
            for i in n * 32 ..< raw.count {
                h0 = (h0 ^ UInt64(raw[i])) &* prime
                if i % 4 == 3, raw[i] != 255 { alpha = 0 }
            }
        }
        var h = h0
        for x in [h1, h2, h3] { h = (h ^ x) &* prime }
        return (h, alpha == mask)
    }
}

// MARK: - Pixel graphics

/// `--graphics`: how pictures reach the terminal.
public enum GraphicsMode: String, CaseIterable, Sendable {
    /// A pixel protocol when libchafa's terminal database says the terminal has one (through tmux's passthrough
    /// when tmux allows it), else symbols.
    case auto
    case kitty, iterm2, sixel, symbols
}

/// A terminal graphics protocol.
public enum PixelProtocol: String, Sendable, Hashable, CaseIterable {
    case kitty, iterm2, sixel
}

/// Pixel mode as drawn: the protocol, whether its sequences go through tmux's passthrough, and the size of a cell in
/// pixels (from the terminal, TIOCGWINSZ; the picture is sized to the cells it covers).
public struct PixelGraphics: Sendable, Hashable {
    public var proto: PixelProtocol
    public var tmuxPassthrough: Bool
    public var cellWidth: Int
    public var cellHeight: Int
    public init(proto: PixelProtocol, tmuxPassthrough: Bool = false, cellWidth: Int = 10, cellHeight: Int = 20) {
        self.proto = proto
        self.tmuxPassthrough = tmuxPassthrough
        self.cellWidth = max(1, cellWidth)
        self.cellHeight = max(1, cellHeight)
    }
}

/// What tmux says about itself when the explorer runs inside it.
public struct TmuxState: Sendable, Equatable {
    /// `allow-passthrough` is on (or all).
    public var passthrough: Bool
    /// The outer terminal's TERM (`#{client_termname}`).
    public var clientTerm: String?
    public init(passthrough: Bool, clientTerm: String?) {
        self.passthrough = passthrough
        self.clientTerm = clientTerm
    }

    /// Asks the tmux server (only when TMUX is set): `show -gv allow-passthrough` and `display -p '#{client_termname}'`.
    public static func query(environment env: [String: String] = ProcessInfo.processInfo.environment) -> TmuxState? {
        guard let t = env["TMUX"], !t.isEmpty else { return nil }
        func run(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["tmux"] + args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return nil }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let pass = run(["show", "-gv", "allow-passthrough"]) ?? "off"
        return TmuxState(passthrough: pass == "on" || pass == "all", clientTerm: run(["display", "-p", "#{client_termname}"]))
    }
}

/// The graphics decision and why, for the status bar and `--graphics` diagnostics.
public struct GraphicsChoice: Sendable, Equatable {
    public var proto: PixelProtocol?
    public var tmuxPassthrough: Bool
    public var reason: String
}

public extension Renderer {
    /// The protocols libchafa's terminal database finds for an environment, best first (kitty, iTerm2, sixel).
    static func detectedProtocols(environment env: [String: String]) -> [PixelProtocol] {
        var strings = env.map { strdup("\($0.key)=\($0.value)") }
        strings.append(nil)
        defer { for p in strings { free(p) } }
        guard let db = chafa_term_db_get_default() else { return [] }
        let info = strings.withUnsafeMutableBufferPointer { chafa_term_db_detect(db, $0.baseAddress) }
        guard let info else { return [] }
        defer { chafa_term_info_unref(info) }
        var out: [PixelProtocol] = []
        if chafa_term_info_have_seq(info, CHAFA_TERM_SEQ_BEGIN_KITTY_IMMEDIATE_IMAGE_V1) != 0 { out.append(.kitty) }
        if chafa_term_info_have_seq(info, CHAFA_TERM_SEQ_BEGIN_ITERM2_IMAGE) != 0 { out.append(.iterm2) }
        if chafa_term_info_have_seq(info, CHAFA_TERM_SEQ_BEGIN_SIXELS) != 0 { out.append(.sixel) }
        return out
    }

    /// The fallback chain: symbols when asked for, without colour, or inside tmux without passthrough; a protocol
    /// named with --graphics as asked (through tmux's passthrough inside tmux); auto: the best protocol libchafa's
    /// database finds for the terminal (inside tmux: for tmux's client terminal, when passthrough is on), else symbols.
    static func chooseGraphics(_ mode: GraphicsMode, colorMode: ColorMode, environment env: [String: String], tmux: TmuxState?) -> GraphicsChoice {
        if mode == .symbols { return GraphicsChoice(proto: nil, tmuxPassthrough: false, reason: "symbols (--graphics symbols)") }
        if colorMode == .none { return GraphicsChoice(proto: nil, tmuxPassthrough: false, reason: "symbols (no colour)") }
        let inTmux = !(env["TMUX"] ?? "").isEmpty
        if inTmux, !(tmux?.passthrough ?? false) {
            return GraphicsChoice(proto: nil, tmuxPassthrough: false, reason: "symbols (inside tmux without allow-passthrough: tmux set -g allow-passthrough on)")
        }
        if let named = PixelProtocol(rawValue: mode.rawValue) {
            return GraphicsChoice(proto: named, tmuxPassthrough: inTmux, reason: "\(named.rawValue) (--graphics)" + (inTmux ? " through tmux passthrough" : ""))
        }
        var outer = env
        if inTmux {
            outer["TMUX"] = nil
            if outer["TERM_PROGRAM"] == "tmux" { outer["TERM_PROGRAM"] = nil }
            if let client = tmux?.clientTerm, !client.isEmpty { outer["TERM"] = client }
        }
        guard let best = detectedProtocols(environment: outer).first else {
            return GraphicsChoice(proto: nil, tmuxPassthrough: false, reason: "symbols (no graphics protocol known for TERM=\(outer["TERM"] ?? ""))")
        }
        return GraphicsChoice(proto: best, tmuxPassthrough: inTmux, reason: "\(best.rawValue) (detected)" + (inTmux ? " through tmux passthrough" : ""))
    }

    /// The terminal's cell size in pixels (TIOCGWINSZ), nil when it does not say.
    static func cellPixelSize(fd: Int32 = STDOUT_FILENO) -> (Int, Int)? {
        var ws = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0, ws.ws_xpixel > 0, ws.ws_ypixel > 0 else { return nil }
        return (Int(ws.ws_xpixel) / Int(ws.ws_col), Int(ws.ws_ypixel) / Int(ws.ws_row))
    }

    /// The escape sequence that draws `pic` over `cols` x `rows` cells with a pixel protocol, as libchafa prints it
    /// (kitty: RGBA in base64 chunks, placed under the text (z=-1) so overlay cells stay on top, the cursor left
    /// where it was; iTerm2: an inline TIFF; sixel: a palette image), wrapped for tmux's passthrough (ESC P tmux;
    /// ... ESC \\ with every ESC doubled) when asked.
    static func pixelEscape(_ pic: Picture, cols: Int, rows: Int, graphics: PixelGraphics) -> [UInt8] {
        guard cols > 0, rows > 0, pic.width > 0, pic.height > 0, let config = chafa_canvas_config_new() else { return [] }
        defer { chafa_canvas_config_unref(config) }
        chafa_canvas_config_set_geometry(config, gint(cols), gint(rows))
        chafa_canvas_config_set_cell_geometry(config, gint(graphics.cellWidth), gint(graphics.cellHeight))
        chafa_canvas_config_set_canvas_mode(config, CHAFA_CANVAS_MODE_TRUECOLOR)
        let mode: ChafaPixelMode
        switch graphics.proto {
        case .kitty: mode = CHAFA_PIXEL_MODE_KITTY
        case .iterm2: mode = CHAFA_PIXEL_MODE_ITERM2
        case .sixel: mode = CHAFA_PIXEL_MODE_SIXELS
        }
        chafa_canvas_config_set_pixel_mode(config, mode)
        guard let canvas = chafa_canvas_new(config), let info = termInfo(graphics.proto) else { return [] }
        defer { chafa_canvas_unref(canvas); chafa_term_info_unref(info) }
        pic.rgba.withUnsafeBufferPointer { p in
            chafa_canvas_draw_all_pixels(canvas, CHAFA_PIXEL_RGBA8_UNASSOCIATED, p.baseAddress, gint(pic.width), gint(pic.height), gint(pic.width * 4))
        }
        guard let gs = chafa_canvas_print(canvas, info) else { return [] }
        defer { g_string_free(gs, 1) }
        let bytes = Array(UnsafeRawBufferPointer(start: gs.pointee.str, count: Int(gs.pointee.len)))
        return graphics.tmuxPassthrough ? tmuxWrap(bytes) : bytes
    }

    /// libchafa's sequences for a protocol: its database's entry for a terminal that has it, kitty's image
    /// placed under the text and without moving the cursor.
    private static func termInfo(_ proto: PixelProtocol) -> OpaquePointer? {
        let env: [String]
        switch proto {
        case .kitty: env = ["TERM=xterm-kitty"]
        case .iterm2: env = ["TERM=xterm-256color", "TERM_PROGRAM=iTerm.app"]
        case .sixel: env = ["TERM=mlterm"]
        }
        var strings = env.map { strdup($0) }
        strings.append(nil)
        defer { for p in strings { free(p) } }
        guard let db = chafa_term_db_get_default(),
              let info = strings.withUnsafeMutableBufferPointer({ chafa_term_db_detect(db, $0.baseAddress) }) else { return nil }
        if proto == .kitty {
            _ = chafa_term_info_set_seq(info, CHAFA_TERM_SEQ_BEGIN_KITTY_IMMEDIATE_IMAGE_V1, "\u{1b}_Ga=T,f=%1,s=%2,v=%3,c=%4,r=%5,z=-1,C=1,m=1\u{1b}\\", nil)
        }
        return info
    }

    /// What a terminal needs once before pixel mode draws: for sixels, sixel scrolling on (DECSDM reset, as
    /// libchafa's database has it), so that an image is drawn at the cursor and not at the screen's top left.
    static func pixelSetup(_ graphics: PixelGraphics) -> [UInt8] {
        guard graphics.proto == .sixel, let info = termInfo(.sixel) else { return [] }
        defer { chafa_term_info_unref(info) }
        guard let seq = chafa_term_info_get_seq(info, CHAFA_TERM_SEQ_ENABLE_SIXEL_SCROLLING) else { return [] }
        let bytes = Array(String(cString: seq).utf8)
        return graphics.tmuxPassthrough ? tmuxWrap(bytes) : bytes
    }

    /// tmux's passthrough: ESC P tmux; then the sequence with every ESC doubled, then ESC \\.
    static func tmuxWrap(_ bytes: [UInt8]) -> [UInt8] {
        var out = Array("\u{1b}Ptmux;".utf8)
        out.reserveCapacity(bytes.count + bytes.count / 16 + 16)
        for b in bytes {
            if b == 0x1b { out.append(0x1b) }
            out.append(b)
        }
        out += [0x1b, 0x5c]
        return out
    }

    /// Deletes every kitty image placement on screen (before placing a frame's images again, and on leaving).
    static func kittyDeleteAll(passthrough: Bool) -> [UInt8] {
        let seq = Array("\u{1b}_Ga=d,d=a\u{1b}\\".utf8)
        return passthrough ? tmuxWrap(seq) : seq
    }
}
