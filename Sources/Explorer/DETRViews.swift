import Foundation
import ModelZoo
import Tensor

/// The DETR views: a query's box refined layer by layer, the encoder tokens a two-stage DETR chose as queries, and
/// D-FINE's four edge distributions of a query. Each is drawn over the input image like detections (text overlays
/// placed by `MapGeometry`, the image through the renderer), with a side list beside the image when there is room.

// MARK: - Shared geometry

/// A box (cx, cy, w, h) normalised to [0, 1] of the model input; `w` and `h` are 0 for a reference point (x, y).
struct NormalizedBox: Equatable {
    var cx: Float, cy: Float, w: Float, h: Float
    var isPoint: Bool { w == 0 && h == 0 }

    /// Row `q` of a [Q, 4] (cx, cy, w, h) or [Q, 2] (x, y) tensor.
    init(_ t: Tensor, row q: Int) {
        let d = t.shape.last ?? 4
        cx = t.data[q * d]
        cy = t.data[q * d + 1]
        w = d >= 4 ? t.data[q * d + 2] : 0
        h = d >= 4 ? t.data[q * d + 3] : 0
    }

    /// (x1, y1, x2, y2) in the pixels of a model input of `size`.
    func pixels(_ size: GridSize) -> (Float, Float, Float, Float) {
        let W = Float(size.width), H = Float(size.height)
        return ((cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H)
    }

    /// "312,140 96x60": centre and size in input pixels (a point: its position only).
    func text(_ size: GridSize) -> String {
        let W = Float(size.width), H = Float(size.height)
        let centre = "\(Int((cx * W).rounded())),\(Int((cy * H).rounded()))"
        return isPoint ? centre : centre + " \(Int((w * W).rounded()))x\(Int((h * H).rounded()))"
    }
}

/// The rows of a queries' tensor: its first dimension.
func queryCount(_ t: Tensor) -> Int { t.rank >= 1 ? t.shape[0] : 0 }

/// The side list's width beside an image in `area` (0: no room, the list is left out).
func sideListWidth(_ area: Rect, wanted: Int) -> Int {
    area.width >= wanted + 24 ? wanted : (area.width >= 44 ? area.width - 24 : 0)
}

/// Where a DETR view puts the image and its side list in `area`: the list beside the image (the image to the left,
/// the list from two columns after it, level with the image's top when it fits) or under it, whichever leaves the
/// image larger; no list when neither has room.
func detrLayout(_ state: State, _ kind: VisualKind, area: Rect, input: GridSize) -> (geo: MapGeometry, list: Rect?) {
    let rows = detrSideListRows(state, kind)
    var best: (geo: MapGeometry, list: Rect?)?
    let lw = sideListWidth(area, wanted: sideListWanted(kind))
    if lw > 0 {
        var geo = MapGeometry.fit(width: input.width, height: input.height, in: Rect(x: area.x, y: area.y, width: area.width - lw - 1, height: area.height),
                                  inputSize: input)
        geo.rect.x = area.x
        let x = geo.rect.maxX + 2, y = max(area.y, min(geo.rect.y, area.maxY - rows))
        best = (geo, Rect(x: x, y: y, width: area.maxX - x, height: area.maxY - y))
    }
    if area.height - rows - 1 >= 4, area.width >= 30 {
        var geo = MapGeometry.fit(width: input.width, height: input.height, in: Rect(x: area.x, y: area.y, width: area.width, height: area.height - rows - 1),
                                  inputSize: input)
        geo.rect.y = area.y
        if best == nil || geo.rect.width * geo.rect.height > best!.geo.rect.width * best!.geo.rect.height {
            best = (geo, Rect(x: area.x, y: geo.rect.maxY + 1, width: area.width, height: area.maxY - geo.rect.maxY - 1))
        }
    }
    return best ?? (MapGeometry.fit(width: input.width, height: input.height, in: area, inputSize: input), nil)
}

/// The side list of the current DETR view in the visual pane `paneRect`, if it has room.
func sideListRect(_ state: State, _ kind: VisualKind, paneRect: Rect) -> Rect? {
    detrLayout(state, kind, area: mapArea(paneRect.inset(1)), input: inputGrid(state) ?? GridSize(640, 640)).list
}

/// The side list's wanted width for each DETR view.
func sideListWanted(_ kind: VisualKind) -> Int {
    switch kind {
    case .edgeDistributions(let e): return max(30, min(48, (e.binValues.count) + 16))
    case .querySelection: return 30
    default: return 30
    }
}

/// The input image (or a dotted placeholder) under a DETR view, in `geo.rect`.
func drawInputImage(_ state: State, geo: MapGeometry, into screen: inout Screen) {
    let (sx, sy) = state.render.pixelsPerCell
    if let img = state.result?.image {
        let pic = state.overlay ? Painter.greyImage(img, width: geo.rect.width * sx, height: geo.rect.height * sy)
            : Painter.image(img, width: geo.rect.width * sx, height: geo.rect.height * sy)
        Renderer.draw(pic, into: &screen, at: geo.rect, options: state.render)
    } else {
        screen.fill(geo.rect, Cell("·", fg: state.theme.monochrome ? .none : .rgb(80, 80, 80)))
    }
}

/// Draws a normalised box (or a point as a cross) over the image.
func drawNormalizedBox(_ state: State, _ screen: inout Screen, geo: MapGeometry, _ b: NormalizedBox, label: String?, color: CellColor,
                       dim: Bool, labelBelow: Bool = false) {
    guard let input = geo.inputSize else { return }
    if b.isPoint {
        guard let (c, r) = geo.cell(normalizedX: b.cx, normalizedY: b.cy) else { return }
        putSymbol(state, &screen, c, r, dim ? "+" : "╋", color: color, bold: !dim)
        if let label { screen.text(c + 1, r, clip(label, max(0, screen.width - c - 1)), Style(fg: state.theme.monochrome ? .none : color)) }
        return
    }
    let (x1, y1, x2, y2) = b.pixels(input)
    drawBox(state, &screen, geo: geo, x1: x1, y1: y1, x2: x2, y2: y2, label: label, color: color, dim: dim, labelBelow: labelBelow)
}

/// One overlay symbol on the screen (no colour in monochrome).
func putSymbol(_ state: State, _ screen: inout Screen, _ c: Int, _ r: Int, _ s: Unicode.Scalar, color: CellColor, bold: Bool = false) {
    guard c >= 0, r >= 0, c < screen.width, r < screen.height else { return }
    var cell = screen[c, r]
    cell.symbol = s
    cell.fg = state.theme.monochrome ? .none : color
    cell.attrs = bold ? [.bold] : []
    screen[c, r] = cell
}

/// A decoder layer's colour: from blue (the initial boxes) through green to yellow and red (the last layer).
func layerColor(_ layer: Int, of layers: [Int]) -> CellColor {
    let i = layers.firstIndex(of: layer) ?? 0
    let t = layers.count > 1 ? Float(i) / Float(layers.count - 1) : 1
    let c = Colormap.turbo.color(0.1 + 0.85 * t)
    return .rgb(c.0, c.1, c.2)
}

func layerName(_ layer: Int) -> String { layer < 0 ? "init" : "L\(layer)" }

func scoreText(_ v: Float?) -> String { v.map { String(format: "%.2f", $0) } ?? "–" }

/// The query a DETR view starts on and keeps: the user's (`<` `>`, arrows, digits), clamped to the visual's queries.
func viewQuery(_ state: State, queries: Int) -> Int { max(0, min(queries - 1, state.query)) }

/// The detection the decoder query `q` produced, if it is shown.
func detection(ofQuery q: Int, _ state: State) -> Detection? {
    currentDetections(state).filter { $0.source == q }.max { $0.score < $1.score }
}

// MARK: - Refined boxes

/// The decoder layer a refined boxes or edge distributions visual shows, with the kind's name.
func decoderLayerOfVisual(_ state: State) -> (kind: String, layer: Int)? {
    switch currentVisualKind(state) {
    case .refinedBoxes(let r): return ("boxes", r.layer)
    case .edgeDistributions(let e): return ("edges", e.layer)
    default: return nil
    }
}

/// `{` `}` on refined boxes or edge distributions: the same view of the previous or next decoder layer among this
/// row's visuals (a decoder recorded as one row holds every layer's); false when the visual is neither. At the first
/// or last layer the status line says so and points to n/p.
func stepDecoderLayer(_ state: inout State, _ delta: Int) -> Bool {
    guard let (kind, layer) = decoderLayerOfVisual(state) else { return false }
    var candidates: [(layer: Int, visual: Int)] = []
    var probe = state
    for i in visualSources(state).indices {
        probe.visual = i
        if let (k, l) = decoderLayerOfVisual(probe), k == kind { candidates.append((l, i)) }
    }
    let next = delta > 0 ? candidates.filter { $0.layer > layer }.min { $0.layer < $1.layer }
                         : candidates.filter { $0.layer < layer }.max { $0.layer < $1.layer }
    if let next {
        state.visual = next.visual
    } else {
        state.notice = "\(layerName(layer)) is this row's \(delta > 0 ? "last" : "first") decoder layer (n/p: the next row)"
    }
    return true
}

/// Every decoder layer's boxes of the run for the decoder `r` comes from (the same number of queries), one per layer
/// (-1, the initial boxes, first).
func refinedChain(_ state: State, _ r: RefinedBoxes) -> [RefinedBoxes] {
    guard let trace = currentTrace(state) else { return [r] }
    var byLayer: [Int: RefinedBoxes] = [:]
    for p in trace.probes {
        if case .refinedBoxes(let b) = p.data, queryCount(b.boxes) == queryCount(r.boxes), byLayer[b.layer] == nil { byLayer[b.layer] = b }
    }
    byLayer[r.layer] = byLayer[r.layer] ?? r
    return byLayer.keys.sorted().map { byLayer[$0]! }
}

/// A layer's score of query q, if the layer has a class head.
func refinedScore(_ r: RefinedBoxes, _ q: Int) -> Float? {
    guard let s = r.scores, q < s.count else { return nil }
    return s.data[q]
}

/// The queries of a layer drawn in the "all queries" mode: score ≥ the threshold (every query when the layer has no
/// scores), strongest first, at most `limit`.
func refinedQueriesShown(_ state: State, _ r: RefinedBoxes, limit: Int = 30) -> [Int] {
    let Q = queryCount(r.boxes)
    guard let s = r.scores else { return Array(0 ..< min(Q, limit)) }
    let t = confidenceThreshold(state)
    return (0 ..< min(Q, s.count)).filter { s.data[$0] >= t }.sorted { s.data[$0] > s.data[$1] }.prefix(limit).map { $0 }
}

func drawRefinedBoxes(_ state: State, _ r: RefinedBoxes, into screen: inout Screen, paneRect: Rect, rows: VisualRows) {
    let inner = paneRect.inset(1)
    guard let (geo, input) = visualGeometry(state, paneRect) else { return }
    let chain = refinedChain(state, r)
    let layers = chain.map(\.layer)
    let Q = queryCount(r.boxes)
    guard Q > 0 else { return }
    let q = viewQuery(state, queries: Q)
    drawInputImage(state, geo: geo, into: &screen)
    let list = sideListRect(state, .refinedBoxes(r), paneRect: paneRect)
    let style = state.theme.style(.text), dim = state.theme.style(.dim)
    if state.aggregate {
        // Every query of this layer at or above the threshold, the chosen one on top.
        let shown = refinedQueriesShown(state, r)
        for k in shown.reversed() where k != q {
            drawNormalizedBox(state, &screen, geo: geo, NormalizedBox(r.boxes, row: k), label: nil, color: layerColor(r.layer, of: layers), dim: true)
        }
        for k in shown.prefix(5).reversed() where k != q {
            drawNormalizedBox(state, &screen, geo: geo, NormalizedBox(r.boxes, row: k), label: "\(k) \(scoreText(refinedScore(r, k)))",
                              color: layerColor(r.layer, of: layers), dim: true)
        }
        drawNormalizedBox(state, &screen, geo: geo, NormalizedBox(r.boxes, row: q), label: "q\(q) \(scoreText(refinedScore(r, q)))",
                          color: .rgb(255, 255, 255), dim: false)
        if let list {
            screen.text(list.x, list.y, clip("\(layerName(r.layer)): \(shown.count) quer\(shown.count == 1 ? "y" : "ies") ≥ \(String(format: "%g", confidenceThreshold(state)))", list.width), style)
            for (i, k) in shown.prefix(list.height - 1).enumerated() {
                let line = String(format: "%4d ", k) + scoreText(refinedScore(r, k)) + " " + NormalizedBox(r.boxes, row: k).text(input)
                screen.text(list.x, list.y + 1 + i, clip(line, list.width), k == q ? state.theme.style(.selected) : dim)
            }
        }
        let what = r.scores == nil ? "every query (this layer has no class head)" : "queries scoring ≥ \(String(format: "%g", confidenceThreshold(state)))"
        screen.text(inner.x, rows.info, clip("\(layerName(r.layer)) · \(shown.count) \(what) · of \(Q)", inner.width), style)
        screen.text(inner.x, rows.info2, clip(withHints(state, "", "x: one query, every layer · t threshold · ←→ query"), inner.width), dim)
        return
    }
    // The chosen query's box after every layer: earlier and later layers dashed, this layer solid and on top.
    for b in chain where b.layer != r.layer {
        drawNormalizedBox(state, &screen, geo: geo, NormalizedBox(b.boxes, row: q), label: nil, color: layerColor(b.layer, of: layers), dim: true)
    }
    let here = NormalizedBox(r.boxes, row: q)
    drawNormalizedBox(state, &screen, geo: geo, here, label: "\(layerName(r.layer)) \(scoreText(refinedScore(r, q)))",
                      color: layerColor(r.layer, of: layers), dim: false)
    if let list {
        screen.text(list.x, list.y, clip("q\(q): box after each layer", list.width), style)
        screen.text(list.x, list.y + 1, clip("  lyr  " + "centre,size px".padding(toLength: 15, withPad: " ", startingAt: 0) + " score", list.width), dim)
        // Keep the current layer in view when the list is longer than the room.
        let room = max(0, list.height - 2)
        let current = chain.firstIndex { $0.layer == r.layer } ?? 0
        let first = max(0, min(chain.count - room, current - room / 2))
        for (i, b) in chain.dropFirst(first).prefix(room).enumerated() {
            let y = list.y + 2 + i
            let mark: Unicode.Scalar = b.layer == r.layer ? "▶" : "■"
            putSymbol(state, &screen, list.x, y, state.theme.monochrome ? (b.layer == r.layer ? ">" : " ") : mark, color: layerColor(b.layer, of: layers))
            let box = NormalizedBox(b.boxes, row: q).text(input)
            let line = layerName(b.layer).padding(toLength: 5, withPad: " ", startingAt: 0) + box.padding(toLength: max(box.count, 15), withPad: " ", startingAt: 0)
                + " " + scoreText(refinedScore(b, q))
            screen.text(list.x + 2, y, clip(line, list.width - 2), b.layer == r.layer ? state.theme.style(.selected) : style)
        }
    }
    var info = "query \(q)/\(Q) · \(layerName(r.layer)) of \(layers.filter { $0 >= 0 }.count) layers · \(here.text(input))"
    if let s = refinedScore(r, q) { info += " · score \(scoreText(s))" }
    if let d = detection(ofQuery: q, state) { info += " = \(d.className) \(String(format: "%.2f", d.score))" }
    screen.text(inner.x, rows.info, clip(info, inner.width), style)
    let legend = list == nil ? "boxes: dashed = other layers, solid = this layer" : ""
    screen.text(inner.x, rows.bar, clip(legend, inner.width), dim)
    screen.text(inner.x, rows.info2, clip(withHints(state, "", "< > detection · ←→ query · { } layer · x: all queries ≥ conf"), inner.width), dim)
}

// MARK: - Query selection

/// Where a selected token sits: its level and grid cell (nil when the index is past the levels' tokens).
func tokenPosition(_ index: Int, levels: [GridSize]) -> (level: Int, y: Int, x: Int)? {
    var start = 0
    for (l, g) in levels.enumerated() {
        if index < start + g.count {
            let k = index - start
            return (l, k / g.width, k % g.width)
        }
        start += g.count
    }
    return nil
}

/// A level's colour (the head palette, which reads well over images).
func levelColor(_ l: Int) -> CellColor { HeadColors.color(head: l, shade: 1) }

func drawQuerySelection(_ state: State, _ sel: QuerySelection, into screen: inout Screen, paneRect: Rect, rows: VisualRows) {
    let inner = paneRect.inset(1)
    guard let (geo, input) = visualGeometry(state, paneRect) else { return }
    let K = sel.indices.count
    guard K > 0 else { return }
    let q = viewQuery(state, queries: K)
    drawInputImage(state, geo: geo, into: &screen)
    let style = state.theme.style(.text), dim = state.theme.style(.dim)
    let shownLevel: (Int) -> Bool = { state.level < 0 || state.level == $0 }
    // Per screen cell the best-scoring token shown there.
    var best: [Int: Int] = [:]
    var perLevel = [Int](repeating: 0, count: sel.levelShapes.count)
    for k in 0 ..< K {
        guard let (l, y, x) = tokenPosition(sel.indices[k], levels: sel.levelShapes) else { continue }
        perLevel[l] += 1
        guard shownLevel(l), let (c, r) = geo.cell(gridX: x, gridY: y, grid: sel.levelShapes[l]) else { continue }
        let key = r * 100_000 + c
        if let b = best[key], sel.scores.data[b] >= sel.scores.data[k] { continue }
        best[key] = k
    }
    for (key, k) in best {
        let (l, _, _) = tokenPosition(sel.indices[k], levels: sel.levelShapes)!
        putSymbol(state, &screen, key % 100_000, key / 100_000, state.theme.monochrome ? Unicode.Scalar(UInt8(48 + l % 10)) : "●", color: levelColor(l))
    }
    // The top-scoring shown tokens labelled with their score.
    let ranked = (0 ..< K).filter { k in tokenPosition(sel.indices[k], levels: sel.levelShapes).map { shownLevel($0.level) } ?? false }
        .sorted { sel.scores.data[$0] > sel.scores.data[$1] }
    // A label only where it fits whole and covers no other label or marker.
    var labelled: [(row: Int, from: Int, to: Int)] = []
    for k in ranked.prefix(5) {
        guard let (l, y, x) = tokenPosition(sel.indices[k], levels: sel.levelShapes),
              let (c, r) = geo.cell(gridX: x, gridY: y, grid: sel.levelShapes[l]) else { continue }
        let text = String(format: " %.2f", sel.scores.data[k])
        let from = c + 1, to = c + text.count
        guard to < geo.rect.maxX, !labelled.contains(where: { $0.row == r && $0.from <= to + 1 && from <= $0.to + 1 }),
              !(from ... to).contains(where: { best[r * 100_000 + $0] != nil }) else { continue }
        labelled.append((r, from - 1, to))
        screen.text(from, r, text, Style(fg: state.theme.monochrome ? .none : levelColor(l), attrs: [.bold]))
    }
    // The query under the cursor: its initial box and its token.
    let box = NormalizedBox(sel.boxes, row: q)
    drawNormalizedBox(state, &screen, geo: geo, box, label: "q\(q)", color: .rgb(255, 255, 255), dim: false)
    let pos = tokenPosition(sel.indices[q], levels: sel.levelShapes)
    if let (l, y, x) = pos, let (c, r) = geo.cell(gridX: x, gridY: y, grid: sel.levelShapes[l]) {
        var cell = screen[c, r]
        cell.symbol = state.render.colorMode == .none ? "X" : "◉"
        cell.fg = state.theme.monochrome ? .none : .rgb(255, 255, 255)
        cell.attrs = state.render.colorMode == .none ? [.bold, .reverse] : [.bold]
        screen[c, r] = cell
    }
    if let list = sideListRect(state, .querySelection(sel), paneRect: paneRect) {
        var y = list.y
        screen.text(list.x, y, clip("\(K) queries from \(sel.levelShapes.count) level\(sel.levelShapes.count == 1 ? "" : "s")", list.width), style)
        y += 1
        for (l, g) in sel.levelShapes.enumerated() where y < list.maxY {
            putSymbol(state, &screen, list.x, y, state.theme.monochrome ? Unicode.Scalar(UInt8(48 + l % 10)) : "●", color: levelColor(l))
            let line = "L\(l) \(g.height)x\(g.width): \(perLevel[l]) token\(perLevel[l] == 1 ? "" : "s")"
            screen.text(list.x + 2, y, clip(line, list.width - 2), shownLevel(l) ? style : dim)
            y += 1
        }
        if y < list.maxY { screen.text(list.x, y, clip("  q  lvl (y, x)    score", list.width), dim); y += 1 }
        for k in ranked.prefix(max(0, list.maxY - y)) {
            guard let (l, ty, tx) = tokenPosition(sel.indices[k], levels: sel.levelShapes) else { continue }
            let line = String(format: "%3d  L%d (%d, %d)", k, l, ty, tx).padding(toLength: 18, withPad: " ", startingAt: 0)
                + String(format: "%.3f", sel.scores.data[k])
            screen.text(list.x, y, clip(line, list.width), k == q ? state.theme.style(.selected) : style)
            y += 1
        }
    }
    var info = "query \(q)/\(K)"
    if let (l, y, x) = pos { info += ": token \(sel.indices[q]) = L\(l) (y \(y), x \(x))" }
    info += " · score \(String(format: "%.3f", sel.scores.data[q])) · box \(box.text(input))"
    screen.text(inner.x, rows.info, clip(info, inner.width), style)
    let levelText = state.level >= 0 ? "level \(state.level) only" : "dots: colour = level"
    screen.text(inner.x, rows.bar, clip(levelText + " · the best labelled with their score (where there is room)", inner.width), dim)
    screen.text(inner.x, rows.info2, clip(withHints(state, "", "←→ query · < > detection · { } level"), inner.width), dim)
}

// MARK: - D-FINE edge distributions

/// The four edges in the order the distributions hold them.
let edgeNames = ["left", "top", "right", "bottom"]

/// Query q's distribution over the bins for edge e (0 left, 1 top, 2 right, 3 bottom).
func edgeProbabilities(_ e: EdgeDistributions, query q: Int, edge: Int) -> [Float] {
    let bins = e.probabilities.shape.last ?? 0
    let base = (q * 4 + edge) * bins
    return Array(e.probabilities.data[base ..< base + bins])
}

/// The expectation of W(n) under a distribution: how far the edge moves, in units of the reference box's size
/// before the layer's own scaling.
func edgeExpectation(_ p: [Float], _ w: [Float]) -> Float { zip(p, w).reduce(0) { $0 + $1.0 * $1.1 } }

/// A distribution as bar columns of `width` cells (bins summed per column when there are more bins than cells,
/// a bin over several cells when fewer): each column's height in eighths of `height` rows, scaled to the largest.
func edgeBarColumns(_ p: [Float], width: Int, height: Int) -> [Int] {
    guard !p.isEmpty, width > 0, height > 0 else { return [] }
    let n = p.count
    var cols = [Float](repeating: 0, count: width)
    if n >= width {
        for (i, v) in p.enumerated() { cols[min(width - 1, i * width / n)] += v }
    } else {
        for c in 0 ..< width { cols[c] = p[min(n - 1, c * n / width)] }
    }
    let hi = max(cols.max() ?? 0, 1e-12)
    return cols.map { Int(($0 / hi * Float(height * 8)).rounded()) }
}

/// The chart width the side list gives a distribution of `bins` bins (one or two cells per bin when they fit).
func edgeChartWidth(bins: Int, room: Int) -> Int {
    guard bins > 0 else { return 0 }
    if 2 * bins <= room { return 2 * bins }
    return min(bins, room)
}

func drawEdgeDistributions(_ state: State, _ e: EdgeDistributions, into screen: inout Screen, paneRect: Rect, rows: VisualRows) {
    let inner = paneRect.inset(1)
    guard let (geo, input) = visualGeometry(state, paneRect) else { return }
    let Q = queryCount(e.boxes)
    let bins = e.probabilities.shape.last ?? 0
    guard Q > 0, bins > 0, e.binValues.count == bins else { return }
    let q = viewQuery(state, queries: Q)
    let style = state.theme.style(.text), dim = state.theme.style(.dim)
    drawInputImage(state, geo: geo, into: &screen)
    let box = NormalizedBox(e.boxes, row: q)
    drawNormalizedBox(state, &screen, geo: geo, box, label: "q\(q) L\(e.layer)", color: .rgb(255, 255, 255), dim: false)
    let w = e.binValues.data
    let expectations = (0 ..< 4).map { edgeExpectation(edgeProbabilities(e, query: q, edge: $0), w) }
    if let list = sideListRect(state, .edgeDistributions(e), paneRect: paneRect) {
        drawEdgeCharts(state, e, query: q, in: list, into: &screen)
        screen.text(inner.x, rows.bar, clip("E: the edge's move, the expectation of W(n) over the bins · n: the likeliest bin", inner.width), dim)
    } else {
        let line = zip(edgeNames, expectations).map { "\($0.0) \(String(format: "%+.3f", $0.1))" }.joined(separator: " ")
        screen.text(inner.x, rows.bar, clip("E[W]: " + line, inner.width), dim)
    }
    screen.text(inner.x, rows.info, clip("query \(q)/\(Q) · decoder layer \(e.layer) · box \(box.text(input)) · \(bins) bins per edge", inner.width), style)
    screen.text(inner.x, rows.info2, clip(withHints(state, "", "< > detection · ←→ query · { } layer"), inner.width), dim)
}

/// The four distributions as bar charts in `rect`: per edge a title line (name, the expectation of W, the peak bin)
/// and bars, then the W(n) axis under the last chart.
func drawEdgeCharts(_ state: State, _ e: EdgeDistributions, query q: Int, in rect: Rect, into screen: inout Screen) {
    let bins = e.probabilities.shape.last ?? 0
    let w = e.binValues.data
    let style = state.theme.style(.text), dim = state.theme.style(.dim)
    let chartW = edgeChartWidth(bins: bins, room: rect.width)
    // Rows per edge: a title line and bars, sharing one line when there is little room; one line kept for the axis.
    let per = max(1, min(5, (rect.height - 1) / 4))
    let barRows = max(1, per - 1)
    let eighths: [Unicode.Scalar] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
    let mono = state.render.colorMode == .none
    for edge in 0 ..< 4 {
        let p = edgeProbabilities(e, query: q, edge: edge)
        let top = rect.y + edge * per
        guard top < rect.maxY else { break }
        let peak = p.indices.max { p[$0] < p[$1] } ?? 0
        let title = "\(edgeNames[edge].padding(toLength: 7, withPad: " ", startingAt: 0))E \(String(format: "%+.3f", edgeExpectation(p, w))) · n=\(peak) \(String(format: "%.2f", p[peak]))"
        let color = HeadColors.color(head: edge, shade: 1)
        if per == 1 {
            // One line: the name, the bars in one row, the expectation after them.
            let name = edgeNames[edge].prefix(1).uppercased() + " "
            screen.text(rect.x, top, name, style)
            let cw = edgeChartWidth(bins: bins, room: rect.width - 10)
            for (c, units) in edgeBarColumns(p, width: cw, height: 1).enumerated() {
                putSymbol(state, &screen, rect.x + 2 + c, top, mono ? (units >= 4 ? "#" : (units > 0 ? "." : " ")) : eighths[max(0, min(8, units))], color: color)
            }
            screen.text(rect.x + 3 + cw, top, clip(String(format: "%+.3f", edgeExpectation(p, w)), max(0, rect.maxX - rect.x - 3 - cw)), dim)
            continue
        }
        screen.text(rect.x, top, clip(title, rect.width), style)
        let cols = edgeBarColumns(p, width: chartW, height: barRows)
        for (c, units) in cols.enumerated() {
            for r in 0 ..< barRows {
                let fill = max(0, min(8, units - r * 8))
                let y = top + barRows - r
                guard y < rect.maxY else { continue }
                if fill == 0 { if r == 0 { putSymbol(state, &screen, rect.x + c, y, "_", color: .rgb(90, 90, 90)) }; continue }
                putSymbol(state, &screen, rect.x + c, y, mono ? (fill >= 4 ? "#" : ".") : eighths[fill], color: color)
            }
        }
    }
    // The bins' axis: W(n) at the ends and where W = 0 (the edge stays), under the charts.
    let axisY = rect.y + 4 * per
    if axisY < rect.maxY, let lo = w.first, let hi = w.last {
        let width = per == 1 ? edgeChartWidth(bins: bins, room: rect.width - 10) : chartW
        let x0 = rect.x + (per == 1 ? 2 : 0)
        let zero = w.indices.min { abs(w[$0]) < abs(w[$1]) } ?? bins / 2
        let zc = x0 + min(width - 1, zero * width / max(1, bins) + width / max(1, bins) / 2)
        let loText = "W " + fmt(lo), hiText = fmt(hi)
        screen.text(x0, axisY, clip(loText, rect.maxX - x0), dim)
        if zc > x0 + loText.count, zc < x0 + width - hiText.count - 1 { screen.text(zc, axisY, "0", dim) }
        screen.text(max(x0 + loText.count + 1, x0 + width - hiText.count), axisY, clip(hiText, max(0, rect.maxX - (x0 + width - hiText.count))), dim)
    }
}

extension VisualKind {
    /// The refined boxes, query selection and edge distributions views (drawn over the image with a side list).
    var isDETRView: Bool {
        switch self {
        case .refinedBoxes, .querySelection, .edgeDistributions: return true
        default: return false
        }
    }
}

// MARK: - Render: rows, pixels and numbers

/// The rows the side list of a DETR view wants in `render` (the image may need fewer).
func detrSideListRows(_ state: State, _ kind: VisualKind) -> Int {
    switch kind {
    case .refinedBoxes(let r): return state.aggregate ? 12 : refinedChain(state, r).count + 2
    case .querySelection(let q): return q.levelShapes.count + 7
    case .edgeDistributions: return 4 * 3 + 1
    default: return 0
    }
}

/// The RGB of an overlay colour (grey for "no colour").
func rgb(_ c: CellColor) -> (UInt8, UInt8, UInt8) {
    if case .rgb(let r, let g, let b) = c { return (r, g, b) }
    return (200, 200, 200)
}

extension Headless {
    /// A normalised box (or a point as a cross) in the pixels of `pic` (the model input's size).
    static func strokeNormalizedBox(_ pic: inout Picture, _ b: NormalizedBox, color: (UInt8, UInt8, UInt8), thickness: Int) {
        let size = GridSize(pic.height, pic.width)
        if b.isPoint {
            let x = Int(b.cx * Float(pic.width)), y = Int(b.cy * Float(pic.height))
            for d in -6 ... 6 { for t in 0 ..< thickness { pic.setPixel(x + d, y + t, color); pic.setPixel(x + t, y + d, color) } }
            return
        }
        let (x1, y1, x2, y2) = b.pixels(size)
        strokeRect(&pic, x1: Int(x1), y1: Int(y1), x2: Int(x2), y2: Int(y2), color: color, thickness: thickness)
    }

    static func fillDisc(_ pic: inout Picture, x: Int, y: Int, radius: Int, color: (UInt8, UInt8, UInt8)) {
        for dy in -radius ... radius { for dx in -radius ... radius where dx * dx + dy * dy <= radius * radius { pic.setPixel(x + dx, y + dy, color) } }
    }

    /// The DETR views in pixels, over the input image in `pic`: the query's box after every layer (thin, the shown
    /// layer thick and labelled) or every query of the layer above the threshold; the chosen tokens as dots by level,
    /// the query's initial box; the query's box and, in a strip added on the right, its four edge distributions.
    static func drawDETRPixels(_ pic: inout Picture, _ s: State) {
        switch currentVisualKind(s) {
        case .refinedBoxes(let r):
            let chain = refinedChain(s, r), layers = chain.map(\.layer)
            let q = viewQuery(s, queries: queryCount(r.boxes))
            if s.aggregate {
                for k in refinedQueriesShown(s, r).reversed() {
                    strokeNormalizedBox(&pic, NormalizedBox(r.boxes, row: k), color: k == q ? (255, 255, 255) : rgb(layerColor(r.layer, of: layers)), thickness: k == q ? 3 : 1)
                }
                return
            }
            for b in chain where b.layer != r.layer {
                strokeNormalizedBox(&pic, NormalizedBox(b.boxes, row: q), color: rgb(layerColor(b.layer, of: layers)), thickness: 1)
            }
            let here = NormalizedBox(r.boxes, row: q), color = rgb(layerColor(r.layer, of: layers))
            strokeNormalizedBox(&pic, here, color: color, thickness: 3)
            let (x1, y1, _, _) = here.pixels(GridSize(pic.height, pic.width))
            drawLabel(&pic, "q\(q) \(layerName(r.layer)) \(scoreText(refinedScore(r, q)))", x: Int(x1), boxTop: Int(y1), color: color)
        case .querySelection(let sel):
            let K = sel.indices.count
            guard K > 0 else { return }
            let q = viewQuery(s, queries: K)
            for k in (0 ..< K).sorted(by: { sel.scores.data[$0] < sel.scores.data[$1] }) {
                guard let (l, y, x) = tokenPosition(sel.indices[k], levels: sel.levelShapes), s.level < 0 || s.level == l else { continue }
                let g = sel.levelShapes[l]
                fillDisc(&pic, x: Int((Float(x) + 0.5) / Float(g.width) * Float(pic.width)), y: Int((Float(y) + 0.5) / Float(g.height) * Float(pic.height)),
                         radius: 3, color: rgb(levelColor(l)))
            }
            let box = NormalizedBox(sel.boxes, row: q)
            strokeNormalizedBox(&pic, box, color: (255, 255, 255), thickness: 2)
            if let (l, y, x) = tokenPosition(sel.indices[q], levels: sel.levelShapes) {
                let g = sel.levelShapes[l]
                fillDisc(&pic, x: Int((Float(x) + 0.5) / Float(g.width) * Float(pic.width)), y: Int((Float(y) + 0.5) / Float(g.height) * Float(pic.height)),
                         radius: 6, color: (255, 255, 255))
            }
            let (x1, y1, _, _) = box.pixels(GridSize(pic.height, pic.width))
            drawLabel(&pic, String(format: "q%d %.2f", q, sel.scores.data[q]), x: Int(x1), boxTop: Int(y1), color: (255, 255, 255))
        case .edgeDistributions(let e):
            let Q = queryCount(e.boxes), bins = e.probabilities.shape.last ?? 0
            guard Q > 0, bins > 0 else { return }
            let q = viewQuery(s, queries: Q)
            let box = NormalizedBox(e.boxes, row: q)
            strokeNormalizedBox(&pic, box, color: (255, 255, 255), thickness: 3)
            // The charts in a strip beside the image: four rows, one bar per bin (the bar at W = 0 marked below).
            let barW = max(2, min(12, pic.height / 2 / bins)), stripW = bins * barW + 16
            var out = Picture(width: pic.width + stripW, height: pic.height, fill: (24, 24, 24))
            for y in 0 ..< pic.height { for x in 0 ..< pic.width { out.setPixel(x, y, pic.pixel(x, y)) } }
            let chartH = pic.height / 4
            let zero = e.binValues.data.indices.min { abs(e.binValues.data[$0]) < abs(e.binValues.data[$1]) } ?? bins / 2
            for edge in 0 ..< 4 {
                let p = edgeProbabilities(e, query: q, edge: edge)
                let hi = max(p.max() ?? 0, 1e-12)
                let base = (edge + 1) * chartH - 6, x0 = pic.width + 8
                let color = rgb(HeadColors.color(head: edge, shade: 1))
                for (n, v) in p.enumerated() {
                    let h = Int(Float(chartH - 14) * v / hi)
                    for y in base - h ..< base { for x in x0 + n * barW ..< x0 + (n + 1) * barW - 1 { out.setPixel(x, y, color) } }
                }
                for x in x0 ..< x0 + bins * barW { out.setPixel(x, base, (120, 120, 120)) }
                for y in base ..< base + 4 { out.setPixel(x0 + zero * barW + barW / 2, y, (220, 220, 220)) }
            }
            pic = out
        default:
            return
        }
    }

    /// The numbers of a DETR view as JSON fields.
    static func detrJSON(_ s: State, into out: inout [String: Any]) throws {
        let input = inputGrid(s) ?? GridSize(640, 640)
        func boxJSON(_ t: Tensor, _ q: Int) -> [Double] { (0 ..< (t.shape.last ?? 4)).map { Double(t.data[q * (t.shape.last ?? 4) + $0]) } }
        out["input_size"] = [input.height, input.width]
        switch currentVisualKind(s) {
        case .refinedBoxes(let r):
            let q = viewQuery(s, queries: queryCount(r.boxes))
            out["what"] = "boxes"
            out["layer"] = r.layer
            out["queries"] = queryCount(r.boxes)
            if s.aggregate {
                out["threshold"] = Double(confidenceThreshold(s))
                out["boxes"] = refinedQueriesShown(s, r, limit: Int.max).map { k -> [String: Any] in
                    var row: [String: Any] = ["query": k, "box": boxJSON(r.boxes, k)]
                    if let v = refinedScore(r, k) { row["score"] = Double(v) }
                    return row
                }
            } else {
                out["query"] = q
                out["layers"] = refinedChain(s, r).map { b -> [String: Any] in
                    var row: [String: Any] = ["layer": b.layer, "box": boxJSON(b.boxes, q)]
                    if let v = refinedScore(b, q) { row["score"] = Double(v) }
                    return row
                }
            }
        case .querySelection(let sel):
            out["what"] = "queries"
            out["level_shapes"] = sel.levelShapes.map { [$0.height, $0.width] }
            out["query"] = viewQuery(s, queries: sel.indices.count)
            out["selected"] = sel.indices.indices.map { k -> [String: Any] in
                var row: [String: Any] = ["query": k, "token": sel.indices[k], "score": Double(sel.scores.data[k]), "box": boxJSON(sel.boxes, k)]
                if let (l, y, x) = tokenPosition(sel.indices[k], levels: sel.levelShapes) { row["level"] = l; row["cell"] = [y, x] }
                return row
            }
        case .edgeDistributions(let e):
            let q = viewQuery(s, queries: queryCount(e.boxes))
            out["what"] = "edges"
            out["layer"] = e.layer
            out["query"] = q
            out["box"] = boxJSON(e.boxes, q)
            out["bin_values"] = e.binValues.data.map(Double.init)
            var edges: [String: Any] = [:]
            for (i, name) in edgeNames.enumerated() {
                let p = edgeProbabilities(e, query: q, edge: i)
                edges[name] = ["probabilities": p.map(Double.init), "expectation": Double(edgeExpectation(p, e.binValues.data))]
            }
            out["edges"] = edges
        default:
            throw ExportError("not a DETR view")
        }
    }
}
