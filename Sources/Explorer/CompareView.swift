import Foundation
import ModelZoo
import Tensor

/// The explorer's compare mode (`detr-tui A --compare B`, or K): model B runs on A's image at A's input size
/// after A; the layer pane shows the two layer tables aligned (`LayerDiff.align`: added, removed, changed and
/// replaced rows, params and FLOPs with their differences, the similarity of each aligned pair's outputs), and
/// the visual pane, for the aligned pair under the cursor, both feature maps in one shared colour range with
/// their difference B − A (a channel, the mean or the max), the same query's sampling points of both models in
/// two colours on one image, or the detections of both. Every key that moves through layers moves both cursors;
/// the channel, mode, head, level, query and map cursor are A's and B follows them.

/// Model B of compare mode and where the explorer is in the aligned tables.
public struct CompareSession: Sendable {
    /// B as given (catalogue id, YAML, checkpoint or HF directory), its weights, and whether it takes A's weights in
    /// the aligned rows (`--share-weights`).
    public var model: String
    public var weights: String?
    public var shareWeights: Bool
    public var opened: OpenedModel?
    public var result: RunResult?
    public var index: TraceIndex?
    public var phase: RunPhase = .idle
    /// The two layer tables aligned (positions in A's and B's rows), once B has opened.
    public var aligned: [AlignedRow] = []
    /// The aligned row under the cursor.
    public var row = 0
    /// Per aligned row, the cosine of the two outputs' channel means (`LayerDiff.similarity`), once both have run.
    public var similarity: [Float?] = []

    public init(model: String, weights: String? = nil, shareWeights: Bool = false) {
        self.model = model
        self.weights = weights
        self.shareWeights = shareWeights
    }

    /// Forgets B's run (A runs again; B follows it).
    mutating func reset() {
        result = nil
        index = nil
        phase = .idle
        similarity = []
    }
}

/// "B --share-weights" -> ("B", true).
func parseCompareText(_ text: String) -> (String, Bool) {
    var words = text.split(separator: " ").map(String.init)
    let share = words.contains("--share-weights")
    words.removeAll { $0 == "--share-weights" }
    return (words.joined(separator: " "), share)
}

/// K's prompt accepted: compare the open model with B (empty: leave compare mode).
func beginCompare(_ state: inout State, _ text: String) -> Effect {
    let (spec, share) = parseCompareText(text)
    guard !spec.isEmpty else {
        state.compare = nil
        state.notice = "compare mode off"
        return .none
    }
    var path = (spec as NSString).expandingTildeInPath
    if state.catalogue.entry(spec) != nil { path = spec }
    state.compare = CompareSession(model: path, shareWeights: share)
    state.notice = "comparing with \((path as NSString).lastPathComponent)" + (share ? " (A's weights in the aligned rows)" : "")
    if state.result != nil, !state.isRunning { return startCompareRun(&state) }
    return .none
}

/// After A's run: B's run on the same image at the same input size (the larger side of A's input).
func startCompareRun(_ state: inout State) -> Effect {
    guard var c = state.compare, let a = state.opened, let id = state.modelID else { return .none }
    var request = state.runRequest(for: c.model)
    request.weights = c.weights
    request.inputSize = state.inputSize ?? max(a.inputSize.width, a.inputSize.height)
    if c.shareWeights {
        request.shareWeightsFrom = id
        request.shareWeightsFromWeights = state.weights
    }
    c.reset()
    c.phase = .opening
    state.compare = c
    return .runCompare(request)
}

func updateCompare(_ state: inout State, _ message: Message) -> Effect {
    guard var c = state.compare else { return .none }
    switch message {
    case .compareOpened(let m):
        c.opened = m
        c.aligned = LayerDiff.align(state.layerRows, m.rows)
        c.row = c.aligned.firstIndex { $0.a == state.layer } ?? 0
        c.phase = .running(done: 0, total: m.rows.count)
    case .compareProgress(let done, let total):
        if case .running = c.phase { c.phase = .running(done: done, total: total) }
        if case .opening = c.phase { c.phase = .running(done: done, total: total) }
    case .compareFinished(let r):
        c.result = r
        c.phase = .done
        if let m = c.opened { c.index = TraceIndex(rows: m.rows, trace: r.trace) }
        state.compare = c
        let similarity = alignedSimilarity(state)
        state.compare?.similarity = similarity
        state.notice = String(format: "B (%@): forward pass %.2f s", c.opened?.name ?? c.model, r.seconds)
        return .none
    case .compareFailed(let msg):
        c.phase = .failed(msg)
        state.notice = "B (\((c.model as NSString).lastPathComponent)): \(msg)"
    default:
        break
    }
    state.compare = c
    return .none
}

/// Whether the model view shows the compare layout (B has opened and its table is aligned with A's).
public func compareShown(_ state: State) -> Bool {
    state.mode == .model && !(state.compare?.aligned.isEmpty ?? true)
}

/// The cosine of each aligned pair's outputs (nil where either did not run or the shapes do not match).
func alignedSimilarity(_ state: State) -> [Float?] {
    guard let c = state.compare, let ra = state.result, let ia = state.index, let rb = c.result, let ib = c.index else { return [] }
    return c.aligned.map { row in
        guard let i = row.a, let j = row.b, i < ia.steps.count, j < ib.steps.count,
              let si = ia.steps[i], let sj = ib.steps[j],
              let x = ra.trace.steps[si].output, let y = rb.trace.steps[sj].output else { return nil }
        return LayerDiff.similarity(x, y)
    }
}

/// Moves the cursor through the aligned rows; A's layer follows when the row has one (B's is derived).
func stepAligned(_ state: inout State, _ delta: Int) {
    guard var c = state.compare, !c.aligned.isEmpty else { return }
    c.row = max(0, min(c.aligned.count - 1, c.row + delta))
    state.compare = c
    if let a = c.aligned[c.row].a, a != state.layer || state.child != nil {
        state.layer = a
        state.child = nil
        state.visual = 0
        state.channel = min(state.channel, max(0, channelCount(state) - 1))
        clampVisual(&state)
    }
}

/// A's view of the aligned row under the cursor (nil when the row is only in B).
public func compareSideA(_ state: State) -> State? {
    guard let c = state.compare, c.row < c.aligned.count, c.aligned[c.row].a != nil else { return nil }
    var a = state
    a.compare = nil
    return a
}

/// B's view of the aligned row under the cursor: a state holding B's model, run and layer, with A's channel, mode,
/// head, level, query and cursor (nil when the row is only in A or B has not run).
public func compareSideB(_ state: State) -> State? {
    guard let c = state.compare, c.row < c.aligned.count, let j = c.aligned[c.row].b, let opened = c.opened else { return nil }
    var b = state
    b.compare = nil
    b.opened = opened
    b.result = c.result
    b.index = c.index
    b.phase = c.phase
    b.modelID = c.model
    b.weights = c.weights
    b.layer = j
    b.child = nil
    b.expanded = []
    clampVisual(&b)
    return b
}

// MARK: - The aligned layer table

/// The change of an aligned row as one character and a role.
func changeMark(_ change: RowChange) -> (String, Theme.Role) {
    switch change {
    case .same: return (" ", .text)
    case .changed: return ("~", .warning)
    case .added: return ("+", .good)
    case .removed: return ("-", .error)
    case .replaced: return ("≠", .accent)
    }
}

/// "+1,234" / "-56" / "" for zero.
func signedGrouped(_ d: Int) -> String { d == 0 ? "" : (d > 0 ? "+" : "-") + groupedDigits(abs(d)) }

func groupedDigits(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, ch) in s.enumerated() {
        if i > 0, (s.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return out
}

/// The lines of the aligned table for a pane `width` wide: the header, then one line per aligned row.
func compareLines(_ state: State, width: Int) -> (header: String, lines: [String]) {
    guard let c = state.compare, let b = c.opened else { return ("", []) }
    let rowsA = state.layerRows, rowsB = b.rows
    let modules = c.aligned.map { al in (al.a.map { shortModule(rowsA[$0].module) } ?? "", al.b.map { shortModule(rowsB[$0].module) } ?? "") }
    let withSim = !c.similarity.isEmpty
    // mark, A#, B#, the modules, Δ params, Δ GFLOPs, similarity; params of both when there is room.
    let fixed = 2 + 4 + 4 + 11 + 8 + (withSim ? 8 : 0)
    let longest = modules.reduce(8) { max($0, $1.0.count, $1.1.count) }
    var modW = min(longest, max(6, (width - fixed) / 2 - 1))
    let showParams = width - fixed - 2 * (modW + 1) >= 22
    if !showParams { modW = min(longest, max(6, (width - fixed) / 2 - 1)) }
    func p(_ s: String, _ n: Int, right: Bool = false) -> String { pad(clip(s, n), n, right: right) }
    var header = "  " + p("A", 3, right: true) + " " + p("B", 3, right: true) + " " + p("module A", modW) + " " + p("module B", modW) + " "
    if showParams { header += p("params A", 10, right: true) + " " + p("params B", 10, right: true) + " " }
    header += p("Δ params", 10, right: true) + " " + p("Δ GFLOP", 7, right: true)
    if withSim { header += " " + p("cosine", 7, right: true) }
    var lines: [String] = []
    for (k, al) in c.aligned.enumerated() {
        let ra = al.a.map { rowsA[$0] }, rb = al.b.map { rowsB[$0] }
        let dp = (rb?.params ?? 0) - (ra?.params ?? 0)
        let df = ((rb?.flops ?? 0) - (ra?.flops ?? 0)) / 1e9
        var line = changeMark(al.change).0 + " " + p(ra.map { String($0.index) } ?? "", 3, right: true) + " "
            + p(rb.map { String($0.index) } ?? "", 3, right: true) + " " + p(modules[k].0, modW) + " " + p(modules[k].1, modW) + " "
        if showParams {
            line += p(ra.map { groupedDigits($0.params) } ?? "", 10, right: true) + " " + p(rb.map { groupedDigits($0.params) } ?? "", 10, right: true) + " "
        }
        line += p(signedGrouped(dp), 10, right: true) + " " + p(abs(df) < 5e-4 ? "" : String(format: "%+.3f", df), 7, right: true)
        if withSim { line += " " + p(k < c.similarity.count ? (c.similarity[k].map { String(format: "%.4f", $0) } ?? "—") : "", 7, right: true) }
        lines.append(line)
    }
    return (header, lines)
}

/// The totals line: params and GFLOPs of both and the difference.
func compareTotals(_ state: State) -> String {
    guard let b = state.compare?.opened else { return "" }
    let pa = state.layerRows.reduce(0) { $0 + $1.params }, pb = b.rows.reduce(0) { $0 + $1.params }
    let fa = state.layerRows.reduce(0) { $0 + $1.flops } / 1e9, fb = b.rows.reduce(0) { $0 + $1.flops } / 1e9
    return "A \(groupedDigits(pa)) · B \(groupedDigits(pb)) params · Δ \(pb - pa == 0 ? "0" : signedGrouped(pb - pa))"
        + String(format: " · GFLOPs %.2f → %.2f (%+.2f)", fa, fb, fb - fa)
}

func drawCompareTable(_ state: State, _ screen: inout Screen, _ r: Rect) {
    guard let c = state.compare else { return }
    let theme = state.theme
    let focused = state.focus == .layers
    let counts = Dictionary(grouping: c.aligned, by: \.change).mapValues(\.count)
    let summary = [RowChange.added, .removed, .changed, .replaced].compactMap { k in counts[k].map { "\($0) \(k.rawValue)" } }.joined(separator: ", ")
    let title = "Compare · \(state.opened?.name ?? "A") ↔ \(c.opened?.name ?? "B")" + (summary.isEmpty ? " · same layers" : " · " + summary)
    screen.frame(r, title: title, style: theme.style(focused ? .borderFocus : .border), titleStyle: theme.style(.title))
    let inner = r.inset(1)
    guard inner.height > 2 else { return }
    let (header, lines) = compareLines(state, width: inner.width)
    screen.text(inner.x, inner.y, header, theme.style(.header), maxWidth: inner.width)
    let body = inner.height - 2
    let scroll = scrollOffset(selection: c.row, count: lines.count, height: body)
    for (k, line) in lines.enumerated().dropFirst(scroll).prefix(body) {
        let y = inner.y + 1 + k - scroll
        var style = theme.style(changeMark(c.aligned[k].change).1)
        if c.aligned[k].change == .same { style = theme.style(.text) }
        if k == c.row { style = theme.style(focused ? .selected : .selectedDim) }
        screen.text(inner.x, y, pad(line, inner.width), style, maxWidth: inner.width)
    }
    screen.text(inner.x, inner.maxY - 1, clip(compareTotals(state), inner.width), theme.style(.dim), maxWidth: inner.width)
}

// MARK: - The visual pane

func drawCompareVisual(_ state: State, _ screen: inout Screen, _ r: Rect) {
    guard let c = state.compare, c.row < c.aligned.count else { return }
    let theme = state.theme
    let al = c.aligned[c.row]
    let rowsA = state.layerRows
    let la = al.a.map { "A \(rowsA[$0].index) \(shortModule(rowsA[$0].module))" } ?? "A —"
    let lb = al.b.flatMap { j in c.opened.map { "B \($0.rows[j].index) \(shortModule($0.rows[j].module))" } } ?? "B —"
    screen.frame(r, title: "Visual · \(la) ↔ \(lb) · \(al.change.rawValue)", style: theme.style(state.focus == .visual ? .borderFocus : .border),
                 titleStyle: theme.style(.title))
    let inner = r.inset(1)
    let sa = compareSideA(state)
    var waiting: String?
    switch c.phase {
    case .opening: waiting = "B: opening \((c.model as NSString).lastPathComponent)…"
    case .running(let d, let t): waiting = "B: forward pass \(d)/\(t) layers…"
    case .failed(let m): waiting = "B failed: \(m)"
    default: break
    }
    let sb = waiting == nil ? compareSideB(state) : nil
    guard inner.height >= 8, inner.width >= 20 else { return }
    switch (sa, sb) {
    case (let a?, let b?):
        drawComparePair(a, b, into: &screen, inner: inner)
    case (let a?, nil):
        let note = waiting ?? "only in A (removed in B)"
        screen.text(inner.x, inner.y, clip(note, inner.width), theme.style(waiting == nil ? .error : .accent), maxWidth: inner.width)
        let sub = Rect(x: inner.x, y: inner.y + 1, width: inner.width, height: inner.height - 1)
        drawVisual(a, into: &screen, inner: sub, paneRect: sub.inset(-1))
    case (nil, let b?):
        screen.text(inner.x, inner.y, "only in B (added)", theme.style(.good), maxWidth: inner.width)
        let sub = Rect(x: inner.x, y: inner.y + 1, width: inner.width, height: inner.height - 1)
        drawVisual(b, into: &screen, inner: sub, paneRect: sub.inset(-1))
    case (nil, nil):
        screen.text(inner.x, inner.y, clip(waiting ?? "", inner.width), theme.style(.accent), maxWidth: inner.width)
    }
}

/// Both sides of an aligned pair: feature maps, and the attention of the query under the cursor, in a shared range
/// with B − A; sampling points of both on one image; detections of both; anything else side by side, each as the
/// explorer shows it.
func drawComparePair(_ a: State, _ b: State, into screen: inout Screen, inner: Rect) {
    switch (currentVisualKind(a), currentVisualKind(b)) {
    case (.featureMap, .featureMap):
        do {
            let cmp = try Headless.comparison(a, b)
            drawMapComparison(a, cmp, nameB: b.opened?.name ?? "", into: &screen, inner: inner)
        } catch {
            screen.text(inner.x, inner.y, clip("\(error)", inner.width), a.theme.style(.warning), maxWidth: inner.width)
            drawSideBySide(a, b, into: &screen, inner: Rect(x: inner.x, y: inner.y + 1, width: inner.width, height: inner.height - 1))
        }
    case (.attention(let ta, let qa, let ka), .attention(let tb, let qb, let kb)) where qa == qb && ka == kb:
        guard let (ma, q, _, _) = attentionRow(a, ta, query: qa, key: ka), let (mb, _, _, _) = attentionRow(a, tb, query: qb, key: kb) else {
            drawSideBySide(a, b, into: &screen, inner: inner)
            return
        }
        let diff = ScalarMap(width: ma.width, height: ma.height, values: zip(mb.values, ma.values).map { $0 - $1 }, signed: true)
        let what = "attention of query #\(q)" + (a.head >= 0 ? " head \(a.head)" : " (mean of heads)")
        let cmp = MapComparison(a: ma, b: mb, difference: diff, shared: Normalization.fit([ma, mb], mode: a.rangeMode),
                                differenceRange: Normalization.fit([diff], mode: a.rangeMode), titleA: "", titleB: "", what: what)
        drawMapComparison(a, cmp, nameB: b.opened?.name ?? "", into: &screen, inner: inner)
    case (.sampling(let pa), .sampling(let pb)):
        drawSamplingPair(a, pa, b, pb, into: &screen, inner: inner)
    case (.detections(let da), .detections(let db)):
        drawDetectionPair(a, da, b, db, into: &screen, inner: inner)
    default:
        drawSideBySide(a, b, into: &screen, inner: inner)
    }
}

/// The panels A, B and B − A: in a row when the pane is wide, else stacked.
func comparePanels(_ inner: Rect, count: Int, mapAspect: Double) -> [Rect] {
    // Side by side when each panel gets 30 columns, or when stacking would leave a panel fewer than 6 rows.
    let across = inner.width >= count * 30 || inner.height / count < 6
    var out: [Rect] = []
    for k in 0 ..< count {
        if across {
            let w = inner.width / count
            out.append(Rect(x: inner.x + k * w, y: inner.y, width: w - (k < count - 1 ? 1 : 0), height: inner.height))
        } else {
            let h = inner.height / count
            out.append(Rect(x: inner.x, y: inner.y + k * h, width: inner.width, height: h))
        }
    }
    return out
}

func drawMapComparison(_ a: State, _ cmp: MapComparison, nameB: String, into screen: inout Screen, inner: Rect) {
    let theme = a.theme
    let body = Rect(x: inner.x, y: inner.y, width: inner.width, height: inner.height - 2)
    let panels = comparePanels(body, count: 3, mapAspect: Double(cmp.a.width) / Double(max(1, cmp.a.height)))
    let titles = ["A " + (a.opened?.name ?? ""), "B " + nameB, "B − A"]
    let cx = max(0, min(cmp.a.width - 1, a.cursor.x)), cy = max(0, min(cmp.a.height - 1, a.cursor.y))
    for (k, (map, norm)) in [(cmp.a, cmp.shared), (cmp.b, cmp.shared), (cmp.difference, cmp.differenceRange)].enumerated() {
        let p = panels[k]
        guard p.height >= 4 else { continue }
        screen.text(p.x, p.y, clip(titles[k] + " · " + cmp.what, p.width), theme.style(.header), maxWidth: p.width)
        var st = a
        if k == 2 { st.colormap = .diverging }
        st.overlay = false
        let area = Rect(x: p.x, y: p.y + 1, width: p.width, height: p.height - 3)
        let geo = MapGeometry.fit(width: map.width, height: map.height, in: area)
        drawMap(st, map, geo: geo, into: &screen, barRow: p.maxY - 2, x: p.x, width: p.width, norm: norm)
        if let (col, row) = geo.cell(gridX: cx, gridY: cy, grid: GridSize(map.height, map.width)) { drawCursorCell(a, &screen, col, row) }
    }
    let va = cmp.a.value(x: cx, y: cy), vb = cmp.b.value(x: cx, y: cy)
    let line = "cursor (y \(cy), x \(cx)): A \(fmt(va)) · B \(fmt(vb)) · B − A \(fmt(vb - va))"
        + " · max |B − A| \(fmt(cmp.maxAbsDifference))" + String(format: " · cosine %.4f", cmp.cosine)
    screen.text(inner.x, inner.maxY - 2, clip(line, inner.width), theme.style(.text), maxWidth: inner.width)
    screen.text(inner.x, inner.maxY - 1, clip(withHints(a, "one colour range for A and B", "c/C channel · a: single/mean/max · n/p both layers"), inner.width),
                theme.style(.dim), maxWidth: inner.width)
}

/// A and B each in its own framed half, drawn as the explorer draws one model.
func drawSideBySide(_ a: State, _ b: State, into screen: inout Screen, inner: Rect) {
    let wide = inner.width >= 80
    let halves = wide
        ? [Rect(x: inner.x, y: inner.y, width: inner.width / 2, height: inner.height),
           Rect(x: inner.x + inner.width / 2, y: inner.y, width: inner.width - inner.width / 2, height: inner.height)]
        : [Rect(x: inner.x, y: inner.y, width: inner.width, height: inner.height / 2),
           Rect(x: inner.x, y: inner.y + inner.height / 2, width: inner.width, height: inner.height - inner.height / 2)]
    for (k, (s, h)) in [(a, halves[0]), (b, halves[1])].enumerated() {
        screen.frame(h, title: (k == 0 ? "A " : "B ") + (s.opened?.name ?? ""), style: s.theme.style(.border), titleStyle: s.theme.style(.title))
        drawVisual(s, into: &screen, inner: h.inset(1), paneRect: h)
    }
}

/// The two models' colours in compare overlays.
let compareColors: (a: CellColor, b: CellColor) = (.rgb(0x5f, 0xd7, 0xff), .rgb(0xff, 0x5f, 0xd7))

/// A's input image (in grey under points) below the pane's title line, above its two info lines; its geometry in
/// input pixels.
func drawCompareImage(_ a: State, grey: Bool, into screen: inout Screen, inner: Rect) -> MapGeometry {
    let input = inputGrid(a) ?? GridSize(640, 640)
    let area = Rect(x: inner.x, y: inner.y + 1, width: inner.width, height: inner.height - 3)
    let geo = MapGeometry.fit(width: input.width, height: input.height, in: area, inputSize: input)
    let (sx, sy) = a.render.pixelsPerCell
    if let img = a.result?.image {
        let (w, h) = (geo.rect.width * sx, geo.rect.height * sy)
        Renderer.draw(grey ? Painter.greyImage(img, width: w, height: h) : Painter.image(img, width: w, height: h), into: &screen, at: geo.rect, options: a.render)
    }
    return geo
}

/// The same query's sampling points of both models on one image: A's in cyan, B's in magenta (a cell both use in
/// white), each model's reference point a cross in its colour.
func drawSamplingPair(_ a: State, _ pa: SamplingPoints, _ b: State, _ pb: SamplingPoints, into screen: inout Screen, inner: Rect) {
    let theme = a.theme
    let geo = drawCompareImage(a, grey: true, into: &screen, inner: inner)
    let q = max(0, min(min(pa.queries, pb.queries) - 1, a.query))
    /// Cells of one model's points at query q (for the chosen head and level).
    func cells(_ s: SamplingPoints) -> Set<Int> {
        let heads = a.head >= 0 && a.head < s.heads ? [a.head] : Array(0 ..< s.heads)
        let levels = a.level >= 0 && a.level < s.levels ? [a.level] : Array(0 ..< s.levels)
        var out = Set<Int>()
        for h in heads {
            for l in levels {
                for p in 0 ..< s.points {
                    let wi = ((q * s.heads + h) * s.levels + l) * s.points + p
                    if let (c, r) = geo.cell(normalizedX: s.locations.data[2 * wi], normalizedY: s.locations.data[2 * wi + 1]) { out.insert(r * 10000 + c) }
                }
            }
        }
        return out
    }
    let ca = cells(pa), cb = cells(pb)
    for key in ca.union(cb) {
        let r = key / 10000, col = key % 10000
        var cell = screen[col, r]
        let both = ca.contains(key) && cb.contains(key)
        if theme.monochrome {
            cell.symbol = both ? "*" : (ca.contains(key) ? "a" : "b")
        } else {
            cell.symbol = both ? "◉" : "●"
            cell.fg = both ? .rgb(255, 255, 255) : (ca.contains(key) ? compareColors.a : compareColors.b)
        }
        screen[col, r] = cell
    }
    for (s, color) in [(pa, compareColors.a), (pb, compareColors.b)] {
        let rd = s.referencePoints.shape.last ?? 2
        guard q * rd + 1 < s.referencePoints.count,
              let (col, r) = geo.cell(normalizedX: s.referencePoints.data[q * rd], normalizedY: s.referencePoints.data[q * rd + 1]) else { continue }
        screen[col, r] = Cell("╋", fg: theme.monochrome ? .none : color, bg: screen[col, r].bg, attrs: [.bold])
    }
    screen.text(inner.x, inner.y, clip("query \(q) · sampling points of A (cyan) and B (magenta), white where both", inner.width), theme.style(.header), maxWidth: inner.width)
    let headText = a.head >= 0 ? "head \(a.head)" : "all heads"
    let levelText = a.level >= 0 ? "level \(a.level)" : "all levels"
    screen.text(inner.x, inner.maxY - 2, clip("A \(ca.count) cells · B \(cb.count) cells · both \(ca.intersection(cb).count) · \(headText) · \(levelText)", inner.width),
                theme.style(.text), maxWidth: inner.width)
    screen.text(inner.x, inner.maxY - 1, clip(withHints(a, "", "digits: query · [ ] head · { } level · n/p both layers"), inner.width), theme.style(.dim), maxWidth: inner.width)
}

/// The detections of both models on one image: A's boxes in cyan labelled on their top edge ("A class score"), B's
/// in magenta labelled on their bottom edge (so that two boxes in one place show both labels).
func drawDetectionPair(_ a: State, _ da: [Detection], _ b: State, _ db: [Detection], into screen: inout Screen, inner: Rect) {
    let theme = a.theme
    let geo = drawCompareImage(a, grey: false, into: &screen, inner: inner)
    // Every box first, then every label over them.
    for edges in [true, false] {
        for (tag, dets, color) in [("A", da, compareColors.a), ("B", db, compareColors.b)] {
            for d in dets.sorted(by: { $0.score < $1.score }).suffix(20) {
                drawBox(a, &screen, geo: geo, x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2, label: edges ? nil : "\(tag) \(detectionLabel(d))",
                        color: color, labelBelow: tag == "B", edges: edges)
            }
        }
    }
    screen.text(inner.x, inner.y, clip("detections of A (cyan) and B (magenta)", inner.width), theme.style(.header), maxWidth: inner.width)
    func top(_ d: [Detection]) -> String { d.sorted { $0.score > $1.score }.prefix(3).map { "\($0.className) \(String(format: "%.2f", $0.score))" }.joined(separator: ", ") }
    screen.text(inner.x, inner.maxY - 2, clip("A: \(da.count) (\(top(da))) · B: \(db.count) (\(top(db)))", inner.width), theme.style(.text), maxWidth: inner.width)
}
