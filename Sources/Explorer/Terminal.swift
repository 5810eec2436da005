import CNcurses
import Foundation

/// The terminal driver, the only code that talks to ncurses: set-up and restore, input (keys, mouse,
/// resize), colour pairs, and drawing a `Screen` by diffing it against the last one drawn.

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
    private var pairs: [UInt64: Int32] = [:]
    private var needsRepaint = false
    /// The direct-colour terminfo entry the terminal was opened as, if any (nil: TERM itself).
    public private(set) var terminfoName: String?

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
        signal(SIGINT) { restoreAndReraise($0) }
        signal(SIGTERM) { restoreAndReraise($0) }
        signal(SIGHUP) { restoreAndReraise($0) }
        signal(SIGQUIT) { restoreAndReraise($0) }
    }

    /// Restores the terminal (idempotent).
    public func end() {
        guard active else { return }
        active = false
        endwin()
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
                last = nil
                return .resize(width: s.width, height: s.height)
            case KEY_MOUSE:
                var x: Int32 = 0, y: Int32 = 0
                var b: mmask_t = 0
                guard shim_getmouse(&x, &y, &b) == OK else { return nil }
                if b & shim_button4_pressed() != 0 { return .scroll(up: true) }
                if shim_button5_pressed() != 0, b & shim_button5_pressed() != 0 { return .scroll(up: false) }
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

    /// Forgets what is on the terminal so the next draw repaints every cell (Ctrl-L, resize).
    public func invalidate() {
        last = nil
        clearok(shim_stdscr(), true)
    }

    /// Draws the cells that changed since the last draw.
    public func draw(_ screen: Screen) {
        draw(screen, retry: true)
    }

    private func draw(_ screen: Screen, retry: Bool) {
        let changed = screen.changedIndices(from: last)
        if last == nil || last!.width != screen.width || last!.height != screen.height { erase() }
        for i in changed {
            let cell = screen.cells[i]
            let y = Int32(i / screen.width), x = Int32(i % screen.width)
            _ = shim_put_cell(y, x, Int32(bitPattern: cell.symbol.value), attributes(cell.attrs), pair(cell.fg, cell.bg))
        }
        refresh()
        last = screen
        if needsRepaint {
            // Pairs were recycled while drawing: repaint every cell once with the new pairs.
            needsRepaint = false
            last = nil
            if retry { draw(screen, retry: false) }
        }
    }

    private func attributes(_ a: CellAttributes) -> attr_t {
        var out = shim_a_normal()
        if a.contains(.bold) { out |= shim_a_bold() }
        if a.contains(.reverse) { out |= shim_a_reverse() }
        if a.contains(.dim) { out |= shim_a_dim() }
        if a.contains(.underline) { out |= shim_a_underline() }
        return out
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

    /// A colour pair for (fg, bg), allocated on first use with alloc_pair (ncurses recycles the least recently
    /// used pair when the table is full); cached by colour numbers.
    private func pair(_ fg: CellColor, _ bg: CellColor) -> Int32 {
        guard colorMode != .none else { return 0 }
        let f = number(fg), b = number(bg)
        if f == -1 && b == -1 { return 0 }
        let key = UInt64(UInt32(bitPattern: f)) << 32 | UInt64(UInt32(bitPattern: b))
        if let p = pairs[key] { return p }
        if pairs.count >= max(16, Int(shim_color_pairs()) - 16) {
            // Full: free every pair and repaint everything with fresh ones on the next draw.
            for p in pairs.values { free_pair(p) }
            pairs.removeAll(keepingCapacity: true)
            needsRepaint = true
        }
        let p = alloc_pair(f, b)
        if p < 0 { return 0 }
        pairs[key] = p
        return p
    }
}
