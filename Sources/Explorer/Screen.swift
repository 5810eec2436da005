import Foundation

/// The screen model: a grid of cells (symbol, foreground, background, attributes) that views produce and
/// the terminal driver diffs and draws. Nothing here knows about ncurses or libchafa.

/// A cell colour: the terminal's default, an RGB colour, or an index into the terminal's palette
/// (what libchafa produces in its indexed modes).
public enum CellColor: Hashable, Sendable {
    case none
    case rgb(UInt8, UInt8, UInt8)
    case index(UInt8)

    public init(hex: UInt32) {
        self = .rgb(UInt8((hex >> 16) & 0xff), UInt8((hex >> 8) & 0xff), UInt8(hex & 0xff))
    }
}

/// Text attributes a cell may carry.
public struct CellAttributes: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let bold = CellAttributes(rawValue: 1)
    public static let reverse = CellAttributes(rawValue: 2)
    public static let dim = CellAttributes(rawValue: 4)
    public static let underline = CellAttributes(rawValue: 8)
}

public struct Cell: Hashable, Sendable {
    public var symbol: Unicode.Scalar
    public var fg: CellColor
    public var bg: CellColor
    public var attrs: CellAttributes

    public init(_ symbol: Unicode.Scalar = " ", fg: CellColor = .none, bg: CellColor = .none, attrs: CellAttributes = []) {
        self.symbol = symbol
        self.fg = fg
        self.bg = bg
        self.attrs = attrs
    }

    public static let blank = Cell()
}

/// A text style: colours and attributes, resolved from a semantic role by the `Theme`.
public struct Style: Hashable, Sendable {
    public var fg: CellColor
    public var bg: CellColor
    public var attrs: CellAttributes
    public init(fg: CellColor = .none, bg: CellColor = .none, attrs: CellAttributes = []) {
        self.fg = fg
        self.bg = bg
        self.attrs = attrs
    }
    public static let plain = Style()
}

/// Semantic colours for the chrome. Monochrome keeps only attributes (reverse for selection, bold for titles).
public struct Theme: Sendable {
    public var monochrome: Bool

    public init(monochrome: Bool) { self.monochrome = monochrome }

    public enum Role: Sendable {
        case text, dim, title, selected, selectedDim, border, borderFocus, status, statusKey, accent, warning, error, good, header
    }

    public func style(_ role: Role) -> Style {
        if monochrome {
            switch role {
            case .text, .border: return .plain
            case .dim: return Style(attrs: [.dim])
            case .title, .header, .borderFocus, .accent: return Style(attrs: [.bold])
            case .selected, .status: return Style(attrs: [.reverse])
            case .selectedDim: return Style(attrs: [.underline])
            case .statusKey: return Style(attrs: [.reverse, .bold])
            case .warning, .error: return Style(attrs: [.bold])
            case .good: return .plain
            }
        }
        switch role {
        case .text: return .plain
        case .dim: return Style(fg: CellColor(hex: 0x8a8a8a))
        case .title: return Style(fg: CellColor(hex: 0x87d7ff), attrs: [.bold])
        case .header: return Style(fg: CellColor(hex: 0xd7d787), attrs: [.bold])
        case .selected: return Style(fg: CellColor(hex: 0x000000), bg: CellColor(hex: 0x87afd7))
        case .selectedDim: return Style(fg: CellColor(hex: 0xffffff), bg: CellColor(hex: 0x3a3a3a))
        case .border: return Style(fg: CellColor(hex: 0x585858))
        case .borderFocus: return Style(fg: CellColor(hex: 0x87afd7), attrs: [.bold])
        case .status: return Style(fg: CellColor(hex: 0xd0d0d0), bg: CellColor(hex: 0x303030))
        case .statusKey: return Style(fg: CellColor(hex: 0xffd75f), bg: CellColor(hex: 0x303030), attrs: [.bold])
        case .accent: return Style(fg: CellColor(hex: 0xffaf5f), attrs: [.bold])
        case .warning: return Style(fg: CellColor(hex: 0xffd75f), attrs: [.bold])
        case .error: return Style(fg: CellColor(hex: 0xff5f5f), attrs: [.bold])
        case .good: return Style(fg: CellColor(hex: 0x87d787))
        }
    }
}

/// A rectangle of cells.
public struct Rect: Hashable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = max(0, width); self.height = max(0, height)
    }
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < maxX && py >= y && py < maxY }
    /// The rectangle shrunk by `d` on every side.
    public func inset(_ d: Int) -> Rect { Rect(x: x + d, y: y + d, width: width - 2 * d, height: height - 2 * d) }
}

/// A grid of cells, row-major.
public struct Screen: Equatable, Sendable {
    public private(set) var width: Int
    public private(set) var height: Int
    public var cells: [Cell]
    /// Pictures the terminal draws with pixels (kitty, iTerm2, sixel), each over a rectangle of cells; the blank
    /// cells there are the picture's, other cells (overlays: crosses, points, boxes, labels) are drawn on top.
    public var images: [ScreenImage] = []

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: .blank, count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    public mutating func set(_ x: Int, _ y: Int, _ cell: Cell) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        cells[y * width + x] = cell
    }

    /// Writes `text` at (x, y) clipped to `maxWidth` columns (and the screen); returns the columns used.
    @discardableResult
    public mutating func text(_ x: Int, _ y: Int, _ text: String, _ style: Style = .plain, maxWidth: Int? = nil) -> Int {
        guard y >= 0, y < height else { return 0 }
        let limit = min(maxWidth ?? width, width - x)
        var col = 0
        for scalar in text.unicodeScalars {
            if col >= limit { break }
            if scalar.value < 32 { continue }
            set(x + col, y, Cell(scalar, fg: style.fg, bg: style.bg, attrs: style.attrs))
            col += 1
        }
        return max(0, col)
    }

    /// Fills a rectangle with one cell.
    public mutating func fill(_ r: Rect, _ cell: Cell = .blank) {
        for yy in max(0, r.y) ..< min(height, r.maxY) {
            for xx in max(0, r.x) ..< min(width, r.maxX) { cells[yy * width + xx] = cell }
        }
    }

    /// Applies a style to every cell of a row segment, keeping the symbols.
    public mutating func restyle(_ x: Int, _ y: Int, width w: Int, _ style: Style) {
        guard y >= 0, y < height else { return }
        for xx in max(0, x) ..< min(width, x + w) {
            var c = cells[y * width + xx]
            c.fg = style.fg; c.bg = style.bg; c.attrs = style.attrs
            cells[y * width + xx] = c
        }
    }

    /// A box-drawing frame around `r` with an optional title on its top edge.
    public mutating func frame(_ r: Rect, title: String? = nil, style: Style = .plain, titleStyle: Style? = nil) {
        guard r.width >= 2, r.height >= 2 else { return }
        let h: Unicode.Scalar = "─", v: Unicode.Scalar = "│"
        for xx in r.x + 1 ..< r.maxX - 1 {
            set(xx, r.y, Cell(h, fg: style.fg, bg: style.bg, attrs: style.attrs))
            set(xx, r.maxY - 1, Cell(h, fg: style.fg, bg: style.bg, attrs: style.attrs))
        }
        for yy in r.y + 1 ..< r.maxY - 1 {
            set(r.x, yy, Cell(v, fg: style.fg, bg: style.bg, attrs: style.attrs))
            set(r.maxX - 1, yy, Cell(v, fg: style.fg, bg: style.bg, attrs: style.attrs))
        }
        set(r.x, r.y, Cell("┌", fg: style.fg, bg: style.bg, attrs: style.attrs))
        set(r.maxX - 1, r.y, Cell("┐", fg: style.fg, bg: style.bg, attrs: style.attrs))
        set(r.x, r.maxY - 1, Cell("└", fg: style.fg, bg: style.bg, attrs: style.attrs))
        set(r.maxX - 1, r.maxY - 1, Cell("┘", fg: style.fg, bg: style.bg, attrs: style.attrs))
        if let title, r.width > 4 {
            text(r.x + 2, r.y, " \(title) ", titleStyle ?? style, maxWidth: r.width - 4)
        }
    }

    /// The symbols as plain text lines (trailing spaces kept), for snapshots and tests.
    public var lines: [String] {
        (0 ..< height).map { y in
            var s = String.UnicodeScalarView()
            for x in 0 ..< width { s.append(cells[y * width + x].symbol) }
            return String(s)
        }
    }

    /// The symbols as one text block with trailing spaces trimmed per line.
    public var text: String {
        lines.map { line in
            var l = Substring(line)
            while l.last == " " { l = l.dropLast() }
            return String(l)
        }.joined(separator: "\n")
    }

    /// Whether any line contains `s`.
    public func contains(_ s: String) -> Bool { lines.contains { $0.contains(s) } }

    /// Cells that differ from `old` (every cell when the sizes differ), as flat indices.
    public func changedIndices(from old: Screen?) -> [Int] {
        guard let old, old.width == width, old.height == height else { return Array(cells.indices) }
        var out: [Int] = []
        for i in cells.indices where cells[i] != old.cells[i] { out.append(i) }
        return out
    }
}

/// A picture laid over a rectangle of cells in pixel mode.
public struct ScreenImage: Equatable, Sendable {
    public var rect: Rect
    public var picture: Picture
    /// The picture's content hash (frames compare images by it, not pixel by pixel).
    public var hash: UInt64

    public init(rect: Rect, picture: Picture, hash: UInt64) {
        self.rect = rect
        self.picture = picture
        self.hash = hash
    }

    public static func == (a: ScreenImage, b: ScreenImage) -> Bool { a.rect == b.rect && a.hash == b.hash }
}

/// Pads or cuts a string to exactly `n` columns (left-aligned), or right-aligns it.
func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
    let count = s.unicodeScalars.count
    if count >= n { return String(String.UnicodeScalarView(s.unicodeScalars.prefix(n))) }
    let spaces = String(repeating: " ", count: n - count)
    return right ? spaces + s : s + spaces
}

/// Cuts a string to `n` columns with an ellipsis when it is longer.
func clip(_ s: String, _ n: Int) -> String {
    guard n > 0 else { return "" }
    let scalars = s.unicodeScalars
    if scalars.count <= n { return s }
    return String(String.UnicodeScalarView(scalars.prefix(n - 1))) + "…"
}

/// Word-wraps text to lines of at most `width` columns.
func wrap(_ text: String, width: Int) -> [String] {
    guard width > 0 else { return [] }
    var out: [String] = []
    for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
        var line = ""
        for word in paragraph.split(separator: " ") {
            let w = String(word)
            if line.isEmpty {
                line = w
            } else if line.unicodeScalars.count + 1 + w.unicodeScalars.count <= width {
                line += " " + w
            } else {
                out.append(line)
                line = w
            }
            while line.unicodeScalars.count > width {
                out.append(String(String.UnicodeScalarView(line.unicodeScalars.prefix(width))))
                line = String(String.UnicodeScalarView(line.unicodeScalars.dropFirst(width)))
            }
        }
        out.append(line)
    }
    return out
}

/// Human figures: 3157200 -> "3.16M", 8.9e9 -> "8.9G".
func humanCount(_ v: Double) -> String {
    let a = abs(v)
    if a >= 1e9 { return String(format: "%.2fG", v / 1e9) }
    if a >= 1e6 { return String(format: "%.2fM", v / 1e6) }
    if a >= 1e3 { return String(format: "%.1fK", v / 1e3) }
    return String(format: "%.0f", v)
}

/// Compact float formatting for value labels.
func fmt(_ v: Float) -> String {
    let a = abs(v)
    if v == 0 { return "0" }
    if a >= 1000 || a < 0.01 { return String(format: "%.2e", v) }
    if a >= 100 { return String(format: "%.1f", v) }
    return String(format: "%.3f", v)
}
