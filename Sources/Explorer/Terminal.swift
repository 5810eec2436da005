import CNcurses
import CTerminalGuard
import Foundation

/// The terminal driver, the only code that talks to ncurses: set-up and restore, input (keys, mouse,
/// resize), and drawing a `Screen` by diffing it against the last one drawn.
///
/// Cells are drawn with the terminal's own terminfo strings (cursor address, attributes, set foreground
/// and background), expanded by ncurses' tiparm and written in one piece per frame, rather than through
/// ncurses' colour pairs and refresh: a map redraw changes thousands of cells, nearly each with its own
/// colours, and the pair table (an alloc_pair per new colour couple, a scan of the screen per recycled
/// pair, a full repaint when it fills) and a tparm per cell cost 15-30 ms and up to seconds per frame in
/// 24-bit colour, against about 1 ms this way. ncurses keeps everything else: the terminal modes, the
/// alternate screen, keys, mouse, resize and restoring the terminal on every exit path.

/// Restores the terminal from a signal handler, then lets the signal do what it would have done.
private func restoreAndReraise(_ sig: Int32) {
    endwin()
    signal(sig, SIG_DFL)
    raise(sig)
}

public final class Terminal {
    /// The colour mode the terminal can actually show (may be lower than asked for).
    public private(set) var colorMode: ColorMode
    private var last: Screen?
    private var active = false
    private var direct = false
    private var caps = Capabilities()
    private var foregrounds: [Int32: [UInt8]] = [:]
    private var backgrounds: [Int32: [UInt8]] = [:]
    /// What the terminal is set to now: attributes and colour numbers (nil: unknown).
    private var pen: (CellAttributes, Int32, Int32)?
    /// Cursor-address strings by row * 65536 + column.
    private var moves: [Int: [UInt8]] = [:]
    private var needsClear = true
    /// The direct-colour terminfo entry the terminal was opened as, if any (nil: TERM itself).
    public private(set) var terminfoName: String?
    /// Pixel mode: pictures of the screen (`Screen.images`) drawn with this protocol (nil: symbols only).
    public var pixels: PixelGraphics? {
        didSet {
            if let p = pixels, p.proto != oldValue?.proto { flush(Renderer.pixelSetup(p)) }
            if pixels != oldValue { invalidate() }
        }
    }
    /// The images on the terminal now.
    private var shownImages: [ScreenImage] = []
    /// Encoded images by picture hash and size (an overlay that moves redraws the same picture).
    private let encoded = LRUCache<[Int], [UInt8]>(capacity: 8)

    /// Direct-colour terminfo entries to try, best first, when the environment asks for 24-bit colour
    /// (COLORTERM=truecolor or 24bit) but TERM names an indexed-colour entry: `<base>-direct` for TERM minus a
    /// colour suffix (xterm-256color -> xterm-direct, tmux-256color -> tmux-direct), and xterm-direct for
    /// other xterm-likes. Empty when COLORTERM does not ask, or TERM is already direct, dumb or unset.
    public static func directColorEntries(term: String?, colorterm: String?) -> [String] {
        let ct = (colorterm ?? "").lowercased()
        guard ct == "truecolor" || ct == "24bit" else { return [] }
        guard let term, !term.isEmpty, term != "dumb", !term.hasSuffix("-direct") else { return [] }
        var base = term
        for suffix in ["-256color", "-88color", "-16color", "-color", "-truecolor", "-24bit"] where base.hasSuffix(suffix) {
            base.removeLast(suffix.count)
            break
        }
        var out = [base + "-direct"]
        if term.hasPrefix("xterm"), !out.contains("xterm-direct") { out.append("xterm-direct") }
        return out
    }

    /// Sets up the terminal for full-screen use. `colorMode` is what the user asked for (or the environment says).
    public init(colorMode wanted: ColorMode) {
        setlocale(LC_ALL, "")
        terminal_guard_save_modes()
        colorMode = wanted
        // COLORTERM may promise 24-bit colour on a 256-colour TERM; ncurses only draws direct colour through a
        // direct-colour terminfo entry, so open the terminal as that entry when one is installed.
        var opened = false
        if wanted == .truecolor {
            let env = ProcessInfo.processInfo.environment
            for name in Terminal.directColorEntries(term: env["TERM"], colorterm: env["COLORTERM"]) {
                if shim_newterm(name) != nil { opened = true; terminfoName = name; break }
            }
        }
        if !opened { initscr() }
        active = true
        raw()
        noecho()
        keypad(shim_stdscr(), true)
        nonl()
        curs_set(0)
        set_escdelay(25)
        wtimeout(shim_stdscr(), 40)
        mousemask(shim_button1_pressed() | shim_button1_released() | shim_button1_clicked() | shim_button1_double_clicked()
                  | shim_button4_pressed() | shim_button5_pressed(), nil)
        mouseinterval(0)
        if wanted != .none, has_colors() {
            start_color()
            use_default_colors()
            let colors = Int(shim_colors())
            direct = colors >= 0x1000000
            switch wanted {
            case .truecolor where direct: colorMode = .truecolor
            case .truecolor, .c256: colorMode = colors >= 256 ? .c256 : (colors >= 16 ? .c16 : .c8)
            case .c16: colorMode = colors >= 16 ? .c16 : .c8
            default: colorMode = wanted
            }
        } else {
            colorMode = .none
        }
        caps = Capabilities.load()
        // ncurses draws its (empty) screen once: the alternate screen, modes and a cleared terminal.
        refresh()
        signal(SIGINT) { restoreAndReraise($0) }
        signal(SIGTERM) { restoreAndReraise($0) }
        signal(SIGHUP) { restoreAndReraise($0) }
        signal(SIGQUIT) { restoreAndReraise($0) }
        // A crash on any thread restores the terminal before the crash report is written.
        var restore: [UInt8] = []
        for cap in ["rmcup", "cnorm", "sgr0", "rmkx"] {
            if let p = shim_tigetstr(cap) { restore += withoutPadding(Array(String(cString: p).utf8)) }
        }
        if shim_tigetstr("kmous") != nil { restore += Array("\u{1b}[?1000l\u{1b}[?1002l\u{1b}[?1006l".utf8) }
        restore += Array("\r\n".utf8)
        terminal_guard_install(restore, restore.count)
    }

    /// Restores the terminal (idempotent).
    public func end() {
        guard active else { return }
        if let p = pixels, p.proto == .kitty { flush(Renderer.kittyDeleteAll(passthrough: p.tmuxPassthrough)) }
        active = false
        endwin()
        terminal_guard_remove()
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }

    deinit { end() }

    public var size: (width: Int, height: Int) {
        (Int(shim_getmaxx(shim_stdscr())), Int(shim_getmaxy(shim_stdscr())))
    }

    /// Input that is already waiting, without blocking.
    public func readNow() -> Message? {
        wtimeout(shim_stdscr(), 0)
        defer { wtimeout(shim_stdscr(), 40) }
        return read()
    }

    /// The next input as a message, or nil after the timeout.
    public func read() -> Message? {
        var ch: wint_t = 0
        let r = wget_wch(shim_stdscr(), &ch)
        if r == ERR { return nil }
        let code = Int32(ch)
        if r == shim_key_code_yes() {
            switch code {
            case KEY_RESIZE:
                let s = size
                // ncurses has resized (and touched) its own empty screen; let it clear the terminal now,
                // so that it has nothing left to draw over ours later.
                refresh()
                last = nil
                pen = nil
                needsClear = true
                return .resize(width: s.width, height: s.height)
            case KEY_MOUSE:
                var x: Int32 = 0, y: Int32 = 0
                var b: mmask_t = 0
                guard shim_getmouse(&x, &y, &b) == OK else { return nil }
                if b & shim_button4_pressed() != 0 { return .scroll(up: true, x: Int(x), y: Int(y)) }
                if shim_button5_pressed() != 0, b & shim_button5_pressed() != 0 { return .scroll(up: false, x: Int(x), y: Int(y)) }
                if b & (shim_button1_pressed() | shim_button1_clicked()) != 0 { return .click(x: Int(x), y: Int(y)) }
                return nil
            case KEY_UP: return .key(.up)
            case KEY_DOWN: return .key(.down)
            case KEY_LEFT: return .key(.left)
            case KEY_RIGHT: return .key(.right)
            case KEY_NPAGE: return .key(.pageDown)
            case KEY_PPAGE: return .key(.pageUp)
            case KEY_HOME: return .key(.home)
            case KEY_END: return .key(.end)
            case KEY_ENTER: return .key(.enter)
            case KEY_BACKSPACE: return .key(.backspace)
            case KEY_BTAB: return .key(.backTab)
            default: return nil
            }
        }
        switch code {
        case 27: return .key(.escape)
        case 13, 10: return .key(.enter)
        case 9: return .key(.tab)
        case 127, 8: return .key(.backspace)
        case 1 ... 26: return .key(.ctrl(Character(Unicode.Scalar(UInt8(code + 96)))))
        default:
            guard let s = Unicode.Scalar(UInt32(code)) else { return nil }
            return .key(.char(Character(s)))
        }
    }

    /// Forgets what is on the terminal so the next draw clears it and repaints every cell (Ctrl-L, resize).
    public func invalidate() {
        last = nil
        pen = nil
        needsClear = true
    }

    /// Draws the cells that changed since the last draw.
    public func draw(_ screen: Screen) {
        guard active else { return }
        var out: [UInt8] = []
        out.reserveCapacity(64 * 1024)
        if last == nil || last!.width != screen.width || last!.height != screen.height {
            last = nil
            needsClear = true
        }
        if needsClear {
            pen = nil
            append(&out, caps.sgr0)
            append(&out, caps.clear)
            if let p = pixels, p.proto == .kitty { append(&out, Renderer.kittyDeleteAll(passthrough: p.tmuxPassthrough)) }
            shownImages = []
            needsClear = false
        }
        var changed = screen.changedIndices(from: last)
        let w = screen.width, h = screen.height
        // Pixel mode: the images and the text cells over and around them (symbol mode skips this).
        let images = pixels == nil ? [] : screen.images
        var owner: [Int] = [], redraw: [Int] = []
        if let p = pixels {
            let plan = PixelFrame(screen: screen, changed: changed, shown: shownImages, images: images, kitty: p.proto == .kitty)
            if plan.deleteAll { append(&out, Renderer.kittyDeleteAll(passthrough: p.tmuxPassthrough)) }
            changed = plan.cells
            owner = plan.owner
            redraw = plan.redraw
        }
        // The bottom-right cell scrolls a terminal that wraps at once (am without xenl): leave it.
        let skipLast = caps.autoMargins && !caps.lateWrap
        var cursor = -1  // index the cursor is known to be at, -1: unknown
        for i in changed {
            if skipLast, i == w * h - 1 { continue }
            // Cells over an image are drawn after it (below).
            if !owner.isEmpty, owner[i] >= 0 { continue }
            if i != cursor {
                let key = (i / w) << 16 | (i % w)
                if let m = moves[key] {
                    append(&out, m)
                } else {
                    let m = caps.move(row: i / w, column: i % w)
                    moves[key] = m
                    append(&out, m)
                }
            }
            let cell = screen.cells[i]
            setPen(&out, cell)
            let v = cell.symbol.value < 0x20 || cell.symbol.value == 0x7f ? 0x20 : cell.symbol.value
            appendUTF8(&out, v)
            // After the last column the cursor waits to wrap: its place is not the next cell's.
            cursor = (i % w == w - 1) ? -1 : i + 1
        }
        if let p = pixels {
            for k in redraw {
                let img = images[k]
                append(&out, caps.move(row: img.rect.y, column: img.rect.x))
                let key = [Int(truncatingIfNeeded: img.hash), img.picture.width, img.picture.height, img.rect.width, img.rect.height]
                if let bytes = encoded.get(key) {
                    append(&out, bytes)
                } else {
                    let bytes = Renderer.pixelEscape(img.picture, cols: img.rect.width, rows: img.rect.height, graphics: p)
                    encoded.put(key, bytes)
                    append(&out, bytes)
                }
                pen = nil
                // The overlay cells on top of the image (crosses, points, boxes, labels).
                for y in max(0, img.rect.y) ..< min(h, img.rect.maxY) {
                    for x in max(0, img.rect.x) ..< min(w, img.rect.maxX) where screen.cells[y * w + x] != .blank && owner[y * w + x] == k {
                        append(&out, caps.move(row: y, column: x))
                        setPen(&out, screen.cells[y * w + x])
                        appendUTF8(&out, screen.cells[y * w + x].symbol.value)
                    }
                }
            }
            shownImages = images
        }
        if !out.isEmpty { flush(out) }
        last = screen
    }

    /// The terminal strings that take the pen from where it is to the cell's attributes and colours.
    private func setPen(_ out: inout [UInt8], _ cell: Cell) {
        let fg = colorMode == .none ? -1 : number(cell.fg)
        let bg = colorMode == .none ? -1 : number(cell.bg)
        if let (a, f, b) = pen, a == cell.attrs, f == fg, b == bg { return }
        var reset = true
        if let (a, f, b) = pen, a == cell.attrs, (fg != -1 || f == -1), (bg != -1 || b == -1) {
            // Only colours change, to colours (not back to the default): set just those.
            reset = false
            if f != fg { appendColor(&out, fg, background: false) }
            if b != bg { appendColor(&out, bg, background: true) }
        }
        if reset {
            append(&out, caps.sgr0)
            if cell.attrs.contains(.bold) { append(&out, caps.bold) }
            if cell.attrs.contains(.dim) { append(&out, caps.dim) }
            if cell.attrs.contains(.underline) { append(&out, caps.underline) }
            if cell.attrs.contains(.reverse) { append(&out, caps.reverse) }
            if fg != -1 { appendColor(&out, fg, background: false) }
            if bg != -1 { appendColor(&out, bg, background: true) }
        }
        pen = (cell.attrs, fg, bg)
    }

    /// Appends the set-foreground or set-background string for a colour number: 24-bit colours through
    /// the capability's template (see `RGBTemplate`), others expanded by tiparm once per colour.
    private func appendColor(_ out: inout [UInt8], _ n: Int32, background: Bool) {
        if n >= 256, let t = background ? caps.backgroundRGB : caps.foregroundRGB {
            t.append(&out, n)
        } else {
            out.append(contentsOf: color(n, background: background))
        }
    }

    /// The set-foreground or set-background string for a colour number, expanded once per colour.
    private func color(_ n: Int32, background: Bool) -> [UInt8] {
        if background, let s = backgrounds[n] { return s }
        if !background, let s = foregrounds[n] { return s }
        guard let cap = background ? caps.setBackground : caps.setForeground, let p = shim_tiparm1(cap, n) else { return [] }
        let s = withoutPadding(Array(UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))))
        // Without a 24-bit template every colour lands here: keep the caches bounded.
        if foregrounds.count + backgrounds.count > 1 << 16 { foregrounds.removeAll(); backgrounds.removeAll() }
        if background { backgrounds[n] = s } else { foregrounds[n] = s }
        return s
    }

    private func append(_ out: inout [UInt8], _ s: [UInt8]) { out.append(contentsOf: s) }

    private func appendUTF8(_ out: inout [UInt8], _ v: UInt32) {
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xc0 | (v >> 6))); out.append(UInt8(0x80 | (v & 0x3f)))
        } else if v < 0x10000 {
            out.append(UInt8(0xe0 | (v >> 12))); out.append(UInt8(0x80 | ((v >> 6) & 0x3f))); out.append(UInt8(0x80 | (v & 0x3f)))
        } else {
            out.append(UInt8(0xf0 | (v >> 18))); out.append(UInt8(0x80 | ((v >> 12) & 0x3f)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3f))); out.append(UInt8(0x80 | (v & 0x3f)))
        }
    }

    /// Writes the frame to the terminal, all of it (partial writes and interruptions retried).
    private func flush(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(STDOUT_FILENO, raw.baseAddress! + off, raw.count - off)
                if n > 0 { off += n; continue }
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                return
            }
        }
    }

    /// The terminal colour number for a cell colour in the current mode (-1 = default).
    private func number(_ c: CellColor) -> Int32 {
        switch c {
        case .none: return -1
        case .index(let i):
            let colors = Int(shim_colors())
            if direct {
                let (r, g, b) = Palette.rgb(Int(i))
                return Int32(r << 16 | g << 8 | b)
            }
            if Int(i) < colors { return Int32(i) }
            let (r, g, b) = Palette.rgb(Int(i))
            return Int32(Palette.nearest(UInt8(r), UInt8(g), UInt8(b), count: min(16, colors)))
        case .rgb(let r, let g, let b):
            switch colorMode {
            case .truecolor: return Int32(Int(r) << 16 | Int(g) << 8 | Int(b))
            case .c256: return Int32(Palette.nearest256(r, g, b))
            case .c16: return Int32(Palette.nearest(r, g, b, count: 16))
            case .c8: return Int32(Palette.nearest(r, g, b, count: 8))
            case .none: return -1
            }
        }
    }
}

/// What a frame in pixel mode draws: the text cells (changed ones not over an image, and those an image that went
/// away leaves uncovered), the images drawn again (new or moved, or a cell over them changed: the image is drawn,
/// then every overlay cell on it), and for kitty, whose images live apart from the text, whether every placement is
/// taken away first (then every image of the frame is placed again). Nothing stale is left: a text cell never
/// covers an image's blank cells, and an image is never drawn without its overlays after it.
public struct PixelFrame: Equatable {
    /// Cell indices to write as text, ascending.
    public var cells: [Int]
    /// Indices into the frame's images to draw, ascending.
    public var redraw: [Int]
    public var deleteAll: Bool
    /// Per cell, the image over it (-1: none).
    public var owner: [Int]

    public init(screen: Screen, changed: [Int], shown: [ScreenImage], images: [ScreenImage], kitty: Bool) {
        let w = screen.width, h = screen.height
        owner = [Int](repeating: -1, count: w * h)
        for (k, img) in images.enumerated() {
            for y in max(0, img.rect.y) ..< min(h, img.rect.maxY) { for x in max(0, img.rect.x) ..< min(w, img.rect.maxX) { owner[y * w + x] = k } }
        }
        var again = Set(images.indices.filter { !shown.contains(images[$0]) })
        for i in changed where owner[i] >= 0 { again.insert(owner[i]) }
        var uncovered = Set<Int>()
        for old in shown where !images.contains(old) {
            for y in max(0, old.rect.y) ..< min(h, old.rect.maxY) {
                for x in max(0, old.rect.x) ..< min(w, old.rect.maxX) where owner[y * w + x] < 0 { uncovered.insert(y * w + x) }
            }
        }
        deleteAll = kitty && (!again.isEmpty || !uncovered.isEmpty || shown.count != images.count)
        if deleteAll { again = Set(images.indices) }
        redraw = again.sorted()
        let owner = owner
        cells = Array(Set(changed).union(uncovered)).filter { owner[$0] < 0 }.sorted()
    }
}

/// A terminfo string without its padding delays (`$<5>`, `$<2*/>`): tputs would turn them into waits, and
/// the driver writes strings itself, so they would reach the terminal as text. Terminals that need real
/// delays are long gone; the ones that still declare them (vt100, vt220) draw fine without.
func withoutPadding(_ s: [UInt8]) -> [UInt8] {
    guard s.contains(UInt8(ascii: "$")) else { return s }
    var out: [UInt8] = []
    out.reserveCapacity(s.count)
    var i = 0
    while i < s.count {
        if s[i] == UInt8(ascii: "$"), i + 1 < s.count, s[i + 1] == UInt8(ascii: "<"),
           let close = s[(i + 2)...].firstIndex(of: UInt8(ascii: ">")),
           s[(i + 2) ..< close].allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "/") }) {
            i = close + 1
            continue
        }
        out.append(s[i])
        i += 1
    }
    return out
}

/// The terminfo strings the driver draws with (empty when the terminal lacks one).
struct Capabilities {
    var sgr0: [UInt8] = Array("\u{1b}[m".utf8)
    var clear: [UInt8] = Array("\u{1b}[H\u{1b}[2J".utf8)
    var bold: [UInt8] = [], dim: [UInt8] = [], underline: [UInt8] = [], reverse: [UInt8] = []
    var cursorAddress: UnsafePointer<CChar>?
    var setForeground: UnsafePointer<CChar>?
    var setBackground: UnsafePointer<CChar>?
    var autoMargins = true
    var lateWrap = true
    /// Templates for 24-bit colours (direct-colour terminals), when the capabilities fit one.
    var foregroundRGB: RGBTemplate?
    var backgroundRGB: RGBTemplate?

    static func load() -> Capabilities {
        var c = Capabilities()
        func str(_ name: String) -> [UInt8]? {
            guard let p = shim_tigetstr(name) else { return nil }
            return withoutPadding(Array(String(cString: p).utf8))
        }
        c.sgr0 = str("sgr0") ?? c.sgr0
        c.clear = str("clear") ?? c.clear
        c.bold = str("bold") ?? []
        c.dim = str("dim") ?? []
        c.underline = str("smul") ?? []
        c.reverse = str("rev") ?? []
        c.cursorAddress = shim_tigetstr("cup")
        c.setForeground = shim_tigetstr("setaf")
        c.setBackground = shim_tigetstr("setab")
        if shim_colors() >= 0x1000000 {
            c.foregroundRGB = c.setForeground.flatMap(RGBTemplate.init)
            c.backgroundRGB = c.setBackground.flatMap(RGBTemplate.init)
        }
        c.autoMargins = shim_tigetflag("am") != 0
        c.lateWrap = shim_tigetflag("xenl") != 0
        return c
    }

    /// Moves the cursor to (row, column), zero-based.
    func move(row: Int, column: Int) -> [UInt8] {
        if let cup = cursorAddress, let p = shim_tiparm2(cup, Int32(row), Int32(column)) {
            return withoutPadding(Array(String(cString: p).utf8))
        }
        return Array("\u{1b}[\(row + 1);\(column + 1)H".utf8)
    }
}

/// A direct-colour set-foreground/background string as prefix, red, separator, green, separator, blue,
/// suffix (e.g. "ESC[38:2::" r ":" g ":" b "m"), learnt from tiparm's expansion of probe colours: a frame of
/// a photo-like map has thousands of distinct colours, and tiparm interprets the terminfo string anew for
/// each (about a microsecond). Nil unless the template reproduces tiparm exactly for every probe.
struct RGBTemplate {
    var parts: [[UInt8]]  // prefix, separator, separator, suffix
    static let decimals: [[UInt8]] = (0 ..< 256).map { Array(String($0).utf8) }

    init?(_ cap: UnsafePointer<CChar>) {
        func expand(_ n: Int32) -> [UInt8]? {
            guard let p = shim_tiparm1(cap, n) else { return nil }
            return Array(String(cString: p).utf8)
        }
        guard let probe = expand(0x123456) else { return nil }
        // The three decimal runs "18", "52", "86" in a row, and what lies around them.
        var runs: [(Int, Int)] = []
        var i = 0
        while i < probe.count {
            if probe[i] >= 48 && probe[i] <= 57 {
                var j = i
                while j < probe.count, probe[j] >= 48 && probe[j] <= 57 { j += 1 }
                runs.append((i, j))
                i = j
            } else {
                i += 1
            }
        }
        let want: [[UInt8]] = [Array("18".utf8), Array("52".utf8), Array("86".utf8)]
        guard let k = runs.indices.first(where: { k in
            k + 2 < runs.count && (0 ..< 3).allSatisfy { Array(probe[runs[k + $0].0 ..< runs[k + $0].1]) == want[$0] }
        }) else { return nil }
        let r = runs[k], g = runs[k + 1], b = runs[k + 2]
        parts = [Array(probe[..<r.0]), Array(probe[r.1 ..< g.0]), Array(probe[g.1 ..< b.0]), Array(probe[b.1...])]
        for n: Int32 in [0x000100, 0x0a0b0c, 0xfedcba, 0xffffff, 0x808000, 0x00ff07] {
            var mine: [UInt8] = []
            append(&mine, n)
            guard mine == expand(n) else { return nil }
        }
    }

    func append(_ out: inout [UInt8], _ n: Int32) {
        out.append(contentsOf: parts[0]); out.append(contentsOf: RGBTemplate.decimals[Int(n >> 16) & 0xff])
        out.append(contentsOf: parts[1]); out.append(contentsOf: RGBTemplate.decimals[Int(n >> 8) & 0xff])
        out.append(contentsOf: parts[2]); out.append(contentsOf: RGBTemplate.decimals[Int(n) & 0xff])
        out.append(contentsOf: parts[3])
    }
}
