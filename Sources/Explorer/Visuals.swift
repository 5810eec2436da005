import Foundation
import ModelZoo
import Tensor

/// The visual view: what the current step holds (its output and probes), and how each kind is drawn —
/// a colormapped picture through the renderer plus crisp text overlays placed by `MapGeometry`.

/// Something the visual view can show for the current layer.
public enum VisualSource: Sendable, Equatable {
    /// The layer's output feature map.
    case output
    /// A probe, by its position in the trace.
    case probe(Int)
    /// The run's final detections (on the last layer, when no probe recorded them).
    case detections
}

/// A visual's data, typed by how it is drawn.
public enum VisualKind: Sendable {
    case featureMap(Tensor, signed: Bool)
    case attention(Tensor, query: GridSize, key: GridSize)
    case channelWeights(Tensor)
    case spatial(Tensor)
    case sampling(SamplingPoints)
    case detections([Detection])
    /// A decoder's boxes after one layer (drawn with the same query's boxes after every other layer).
    case refinedBoxes(RefinedBoxes)
    /// The encoder tokens chosen as decoder queries.
    case querySelection(QuerySelection)
    /// D-FINE's per-edge distributions of one decoder layer.
    case edgeDistributions(EdgeDistributions)
    /// Nothing drawable (a tensor of another rank); shown as its shape and statistics.
    case other(Tensor)
    case none(String)
}

/// Maps between tensor coordinates and the cells a map was drawn into.
public struct MapGeometry: Sendable, Equatable {
    /// The cells the map covers.
    public var rect: Rect
    /// The map's extent in its own units (tensor columns/rows, or input pixels for images).
    public var mapWidth: Float
    public var mapHeight: Float
    /// The model input size when the map is laid out in input space (images, detections, sampling).
    public var inputSize: GridSize?

    public init(rect: Rect, mapWidth: Float, mapHeight: Float, inputSize: GridSize? = nil) {
        self.rect = rect
        self.mapWidth = mapWidth
        self.mapHeight = mapHeight
        self.inputSize = inputSize
    }

    /// The largest rectangle inside `area` that shows a `width` x `height` map with square map cells
    /// (a terminal cell is about twice as tall as it is wide), centred.
    public static func fit(width: Int, height: Int, in area: Rect, inputSize: GridSize? = nil) -> MapGeometry {
        guard width > 0, height > 0, area.width > 0, area.height > 0 else {
            return MapGeometry(rect: Rect(x: area.x, y: area.y, width: 0, height: 0), mapWidth: Float(max(1, width)), mapHeight: Float(max(1, height)), inputSize: inputSize)
        }
        let aspect = Double(width) / Double(height)
        var cw = min(area.width, Int((Double(area.height) * 2 * aspect).rounded()))
        cw = max(1, cw)
        var ch = Int((Double(cw) / (2 * aspect)).rounded())
        ch = max(1, min(area.height, ch))
        let x = area.x + (area.width - cw) / 2
        let y = area.y + (area.height - ch) / 2
        return MapGeometry(rect: Rect(x: x, y: y, width: cw, height: ch), mapWidth: Float(width), mapHeight: Float(height), inputSize: inputSize)
    }

    /// The cell holding map coordinate (x, y) (continuous: cell k of the map spans [k, k+1)).
    public func cell(x: Float, y: Float) -> (col: Int, row: Int)? {
        guard x.isFinite, y.isFinite, x >= 0, y >= 0, x <= mapWidth, y <= mapHeight, rect.width > 0, rect.height > 0 else { return nil }
        let c = min(rect.width - 1, Int((x / mapWidth * Float(rect.width)).rounded(.down)))
        let r = min(rect.height - 1, Int((y / mapHeight * Float(rect.height)).rounded(.down)))
        return (rect.x + c, rect.y + r)
    }

    /// The cell holding a point given in [0, 1] of the map's width and height.
    public func cell(normalizedX nx: Float, normalizedY ny: Float) -> (col: Int, row: Int)? {
        cell(x: nx * mapWidth, y: ny * mapHeight)
    }

    /// The cell covering the centre of map cell (mx, my) of a grid with `grid` cells over this map.
    public func cell(gridX mx: Int, gridY my: Int, grid: GridSize) -> (col: Int, row: Int)? {
        cell(normalizedX: (Float(mx) + 0.5) / Float(grid.width), normalizedY: (Float(my) + 0.5) / Float(grid.height))
    }

    /// The map coordinate at the centre of a screen cell (nil outside the map).
    public func mapCoordinate(col: Int, row: Int) -> (Float, Float)? {
        guard rect.contains(x: col, y: row) else { return nil }
        return ((Float(col - rect.x) + 0.5) / Float(rect.width) * mapWidth,
                (Float(row - rect.y) + 0.5) / Float(rect.height) * mapHeight)
    }
}

// MARK: - What the current layer holds

func currentTrace(_ state: State) -> TraceSnapshot? { state.result?.trace }

/// The current row's step in the trace.
func currentStep(_ state: State) -> TraceStep? {
    guard let trace = currentTrace(state), let idx = state.index, state.layer < idx.steps.count, let si = idx.steps[state.layer] else { return nil }
    return trace.steps[si]
}

/// What the visual view can show for the current layer, in order: the output when it is a feature map,
/// then the probes (sampling points and attention first), then the output when it is not a map. A probe that
/// holds the same tensor as the output or as an earlier probe (a layer's output recorded again as a probe) is
/// left out: one visual per distinct probe.
public func visualSources(_ state: State) -> [VisualSource] {
    guard let trace = currentTrace(state), let idx = state.index, state.layer < idx.probes.count else { return [] }
    if let child = selectedChildPath(state) {
        // A sub-module row: what was recorded under its own path.
        return idx.probes[state.layer].filter { let p = trace.probes[$0].path; return p == child || p.hasPrefix(child + ".") }.map { .probe($0) }
    }
    var out: [VisualSource] = []
    let step = currentStep(state)
    let probeIDs = distinctProbes(trace, idx.probes[state.layer], output: step?.output)
    let outputIsMap = step?.output.map { $0.rank == 4 && $0.shape[2] > 1 && $0.shape[3] > 1 } ?? false
    if outputIsMap { out.append(.output) }
    func rank(_ p: Probe) -> Int {
        switch p.data {
        case .detections: return 0
        case .sampling, .refinedBoxes, .querySelection, .edgeDistributions: return 1
        case .attention: return 2
        case .contextMap, .channelWeights, .spatialWeights: return 3
        case .featureMap: return 4
        case .tensor: return 5
        }
    }
    let sorted = probeIDs.enumerated().sorted { a, b in
        let ra = rank(trace.probes[a.element]), rb = rank(trace.probes[b.element])
        return ra != rb ? ra < rb : a.offset < b.offset
    }
    // Final detections on the last layer when no probe recorded them (a module alone has none to show).
    let hasDetectionProbe = trace.probes.contains { if case .detections = $0.data { return true } else { return false } }
    if !hasDetectionProbe, state.layer == idx.probes.count - 1, let r = state.result, !r.detections.isEmpty { out.append(.detections) }
    for (_, p) in sorted { out.append(.probe(p)) }
    if !outputIsMap, step?.output != nil { out.append(.output) }
    return out
}

/// The tensor a probe holds, for telling duplicates apart (nil for sampling points and detections).
func probeTensor(_ data: ProbeData) -> Tensor? {
    switch data {
    case .featureMap(let t), .contextMap(let t, _), .channelWeights(let t), .spatialWeights(let t), .tensor(let t): return t
    case .attention(let t, _, _): return t
    case .sampling, .detections, .refinedBoxes, .querySelection, .edgeDistributions: return nil
    }
}

/// Whether two tensors are the same values in the same layout (leading dims of 1 aside): the same storage, or
/// equal element by element.
func sameTensor(_ a: Tensor, _ b: Tensor) -> Bool {
    guard a.count == b.count, a.shape.drop(while: { $0 == 1 }) == b.shape.drop(while: { $0 == 1 }) else { return false }
    return a.data == b.data
}

/// `ids` without the probes whose tensor equals the step's output or an earlier probe's (remembered per
/// layer: the views ask on every frame).
func distinctProbes(_ trace: TraceSnapshot, _ ids: [Int], output: Tensor?) -> [Int] {
    let key = StorageKey(([output] + ids.map { probeTensor(trace.probes[$0].data) }).map { $0?.data ?? [] }, ids)
    if let hit = distinctProbeCache.get(key) { return hit }
    var kept: [Int] = []
    var seen: [Tensor] = output.map { [$0] } ?? []
    for id in ids {
        guard let t = probeTensor(trace.probes[id].data) else { kept.append(id); continue }
        if seen.contains(where: { sameTensor($0, t) }) { continue }
        seen.append(t)
        kept.append(id)
    }
    distinctProbeCache.put(key, kept)
    return kept
}

let distinctProbeCache = LRUCache<StorageKey, [Int]>(capacity: 16)

func currentSource(_ state: State) -> VisualSource? {
    let s = visualSources(state)
    guard !s.isEmpty else { return nil }
    return s[min(state.visual, s.count - 1)]
}

/// The probe behind the current visual, if it is one.
func currentProbe(_ state: State) -> Probe? {
    guard case .probe(let i)? = currentSource(state), let trace = currentTrace(state) else { return nil }
    return trace.probes[i]
}

public func currentVisualKind(_ state: State) -> VisualKind {
    guard state.result != nil else {
        switch state.phase {
        case .running, .opening: return .none("running the forward pass…")
        case .failed(let m): return .none(m)
        case .cancelled: return .none("the forward pass was cancelled (r runs it again)")
        default: return .none("no trace yet (r runs the model)")
        }
    }
    switch currentSource(state) {
    case nil:
        if let child = selectedChildPath(state) {
            return .none("\(child) recorded nothing of its own: the trace keeps each layer's output and what its modules probe (the layer's row shows them)")
        }
        return .none("this layer did not run or recorded nothing")
    case .output?:
        guard let t = currentStep(state)?.output else { return .none("no output recorded") }
        if t.rank == 4, t.shape[0] == 1 { return .featureMap(t, signed: false) }
        return .other(t)
    case .detections?:
        return .detections(currentDetections(state))
    case .probe(let i)?:
        let p = currentTrace(state)!.probes[i]
        switch p.data {
        case .featureMap(let t): return .featureMap(t, signed: false)
        case .contextMap(let t, let signed): return .featureMap(t, signed: signed)
        case .attention(let t, let q, let k): return .attention(t, query: q, key: k)
        case .channelWeights(let t): return .channelWeights(t)
        case .spatialWeights(let t): return .spatial(t)
        case .sampling(let s): return .sampling(s)
        case .detections(let d): return .detections(shownDetections(d, state))
        case .tensor(let t):
            if t.rank == 3 || (t.rank == 4 && t.shape[0] == 1) { return .featureMap(t, signed: t.data.contains { $0 < 0 }) }
            return .other(t)
        case .refinedBoxes(let r): return .refinedBoxes(r)
        case .querySelection(let q): return .querySelection(q)
        case .edgeDistributions(let e): return .edgeDistributions(e)
        }
    }
}

func channelCount(_ state: State) -> Int {
    switch currentVisualKind(state) {
    case .featureMap(let t, _): return ScalarMap.chw(t)?.0 ?? 0
    case .channelWeights(let t): return t.count
    default: return 0
    }
}

func headCount(_ state: State) -> Int {
    switch currentVisualKind(state) {
    case .attention(let t, _, _): return t.shape[0]
    case .sampling(let s): return s.heads
    default: return 0
    }
}

func levelCount(_ state: State) -> Int {
    switch currentVisualKind(state) {
    case .sampling(let s): return s.levels
    case .querySelection(let q): return q.levelShapes.count
    default: return 0
    }
}

/// The number of decoder queries the current visual picks one of (0: it has no query cursor).
func queryCountOfVisual(_ state: State) -> Int {
    switch currentVisualKind(state) {
    case .sampling(let s): return s.queryLevels == nil ? s.queries : 0
    case .refinedBoxes(let r): return queryCount(r.boxes)
    case .querySelection(let q): return q.indices.count
    case .edgeDistributions(let e): return queryCount(e.boxes)
    default: return 0
    }
}

func attentionGrids(_ state: State) -> (GridSize, GridSize, Tensor)? {
    if case .attention(let t, let q, let k) = currentVisualKind(state) { return (q, k, t) }
    return nil
}

/// The grid the movable cursor lives on for the current visual.
func cursorGrid(_ state: State) -> GridSize? {
    switch currentVisualKind(state) {
    case .featureMap(let t, _):
        guard let (_, h, w) = ScalarMap.chw(t) else { return nil }
        return GridSize(h, w)
    case .attention(_, let q, _): return q
    case .spatial(let t): return t.rank == 2 ? GridSize(t.shape[0], t.shape[1]) : nil
    case .sampling(let s):
        guard s.queryLevels != nil, !s.levelShapes.isEmpty else { return nil }
        return s.levelShapes[max(0, min(s.levelShapes.count - 1, state.level))]
    default: return nil
    }
}

/// Final detections of the run.
/// The run's detections that reach the confidence threshold (`t`, `--conf`).
func currentDetections(_ state: State) -> [Detection] { shownDetections(state.result?.detections ?? [], state) }

func shownDetections(_ d: [Detection], _ state: State) -> [Detection] {
    let t = confidenceThreshold(state)
    return d.filter { $0.score > t }
}

/// The threshold in force: the user's (t, --conf) or the open model's family default.
func confidenceThreshold(_ state: State) -> Float { state.confidence ?? state.opened?.defaultConfidence ?? 0.25 }

/// The model input size, from the image or the opened model.
func inputGrid(_ state: State) -> GridSize? {
    if let img = state.result?.image, img.rank >= 3 { return GridSize(img.shape[img.rank - 2], img.shape[img.rank - 1]) }
    return state.opened?.inputSize
}

/// The effective colormap: signed maps use the diverging map unless another was chosen with `m`.
func effectiveColormap(_ state: State, signed: Bool) -> Colormap {
    signed && state.colormap == .viridis ? .diverging : state.colormap
}

// MARK: - Key actions on maps (the explorer's key table calls these)

/// `%`: the next colour range rule (min/max -> percentile -> symmetric), said in the status line.
public func cycleRange(_ state: inout State) {
    state.rangeMode = state.rangeMode.next
    state.notice = "colour range: " + state.rangeMode.label + (state.rangeMode == .minmax ? "" : " (edge cells ignored)")
}

/// `c`/`C` in grid mode: the next or previous page of channels (a page is the thumbnails that fit), keeping
/// the selected channel's place on the page; pages wrap around. false (nothing done) when the visual is not a
/// feature map.
@discardableResult
public func pageChannels(_ state: inout State, by delta: Int) -> Bool {
    guard let (page, C) = currentGridPage(state) else { return false }
    let per = page.perPage, pages = (C + per - 1) / per
    let target = ((state.channel / per + delta) % pages + pages) % pages
    state.channel = min(C - 1, target * per + state.channel % per)
    return true
}

/// `R` in grid mode: each thumbnail coloured by its own range, or all by one shared range.
public func toggleOwnRange(_ state: inout State) {
    state.gridOwnRange.toggle()
    state.notice = state.gridOwnRange ? "grid: each channel its own colour range" : "grid: one colour range shared by the page"
}

// MARK: - Layout of the visual area

/// The map area inside the visual pane (below its title line, above the colour bar, range and info lines).
func mapArea(_ r: Rect) -> Rect {
    Rect(x: r.x, y: r.y + 1, width: r.width, height: r.height - 1 - VisualRows.lines(paneHeight: r.height))
}

/// The lines under the map: the colour bar, the range it shows, and two info lines. A short pane (a small
/// terminal) keeps the bar and its range, a very short one none, so that the map keeps rows; a line
/// left out has row -1, where nothing is drawn.
struct VisualRows {
    var bar: Int, range: Int, info: Int, info2: Int

    /// How many lines under the map a pane of `height` inner rows keeps.
    static func lines(paneHeight height: Int) -> Int { height >= 12 ? 4 : height >= 7 ? 2 : 0 }

    init(_ inner: Rect) {
        let y = inner.maxY
        switch Self.lines(paneHeight: inner.height) {
        case 4: (bar, range, info, info2) = (y - 4, y - 3, y - 2, y - 1)
        case 2: (bar, range, info, info2) = (y - 2, y - 1, -1, -1)
        default: (bar, range, info, info2) = (-1, -1, -1, -1)
        }
    }
}

/// The geometry the current visual's main map is drawn with inside `pane` (the pane's inner rect),
/// and the map's size in its own units.
func visualGeometry(_ state: State, _ paneRect: Rect) -> (MapGeometry, GridSize)? {
    let inner = paneRect.inset(1)
    let area = mapArea(inner)
    /// The map's own grid, or the input's when it is laid over the image.
    func fit(_ w: Int, _ h: Int) -> MapGeometry {
        if overlayShown(state), let input = inputGrid(state) {
            return MapGeometry.fit(width: input.width, height: input.height, in: area, inputSize: input)
        }
        return MapGeometry.fit(width: w, height: h, in: area)
    }
    switch currentVisualKind(state) {
    case .featureMap(let t, _):
        if camShown(state), let input = inputGrid(state) {
            return (MapGeometry.fit(width: input.width, height: input.height, in: area, inputSize: input), input)
        }
        guard let (_, h, w) = ScalarMap.chw(t), state.channelMode != .grid else { return nil }
        return (fit(w, h), GridSize(h, w))
    case .attention(_, _, let k):
        return (fit(k.width, k.height), k)
    case .spatial(let t):
        guard t.rank == 2 else { return nil }
        return (fit(t.shape[1], t.shape[0]), GridSize(t.shape[0], t.shape[1]))
    case .sampling, .detections:
        let input = inputGrid(state) ?? GridSize(640, 640)
        return (MapGeometry.fit(width: input.width, height: input.height, in: area, inputSize: input), input)
    case let kind where kind.isDETRView:
        // The image on the left, the side list beside it when there is room.
        let input = inputGrid(state) ?? GridSize(640, 640)
        return (detrLayout(state, kind, area: area, input: input).geo, input)
    default:
        return nil
    }
}

/// Whether the current visual is drawn over the input image (`o`, and an image to draw under it): the map
/// over the image in grey, or in the sampling view the level's map (or with `x` the aggregated heatmap) under
/// the points. For the status bar.
public func overlayShown(_ state: State) -> Bool {
    if camShown(state) { return state.result?.image != nil }
    guard state.overlay, state.result?.image != nil else { return false }
    switch currentVisualKind(state) {
    case .featureMap: return state.channelMode != .grid
    case .attention, .spatial, .sampling, .refinedBoxes, .querySelection, .edgeDistributions: return true
    default: return false
    }
}

/// The status bar's note about the terminal's colours: on an 8-colour terminal maps use an 8-colour ramp
/// (named by the colour bar), and more colours can be asked for. nil when there is nothing to say.
public func colorModeNote(_ state: State) -> String? {
    guard state.render.colorMode == .c8 else { return nil }
    return "8-colour terminal: maps use an 8-colour ramp (--colors 256 or TERM=xterm-256color for more)"
}

/// Whether maps are drawn with the 8-colour ramp (an 8-colour terminal, cell-sized symbols, no image under
/// the map) rather than through libchafa's quantisation.
func usesRamp8(_ state: State, overImage: Bool) -> Bool {
    state.render.colorMode == .c8 && state.render.symbols != .ascii && !overImage
}

/// `data`, then the keys that act on it when key hints are on (the explorer; `render` prints none).
func withHints(_ state: State, _ data: String, _ keys: String) -> String {
    guard state.keyHints, !keys.isEmpty else { return data }
    return data.isEmpty ? keys : data + " · " + keys
}

// MARK: - Drawing

/// Draws the visual pane's content inside `inner`.
func drawVisual(_ state: State, into screen: inout Screen, inner: Rect, paneRect: Rect) {
    let theme = state.theme
    let kind = currentVisualKind(state)
    let title = visualTitle(state, kind)
    screen.text(inner.x, inner.y, clip(title, inner.width), theme.style(.header), maxWidth: inner.width)
    guard inner.height >= 3, inner.width >= 10 else { return }
    let area = mapArea(inner)
    let rows = VisualRows(inner)
    switch kind {
    case .none(let msg):
        for (i, line) in wrap(msg, width: inner.width).prefix(area.height).enumerated() {
            screen.text(inner.x, area.y + 1 + i, line, theme.style(.dim))
        }
        if case .running(let done, let total) = state.phase {
            drawProgress(&screen, x: inner.x, y: area.y + 3, width: inner.width, done: done, total: total, theme: theme)
        }
    case .other(let t):
        let stats = tensorStats(t)
        screen.text(inner.x, area.y + 1, "tensor \(shapeText(t.shape))", theme.style(.text))
        screen.text(inner.x, area.y + 2, stats, theme.style(.dim), maxWidth: inner.width)
    case .featureMap(let t, let signed):
        drawFeatureMap(state, t, signed: signed, into: &screen, area: area, paneRect: paneRect, rows: rows)
    case .attention(let t, let q, let k):
        drawAttention(state, t, query: q, key: k, into: &screen, paneRect: paneRect, rows: rows)
    case .channelWeights(let t):
        drawBars(state, t, into: &screen, area: area, rows: rows)
    case .spatial(let t):
        guard t.rank == 2 else { break }
        let map = spatialScalar(t)
        let geo = visualGeometry(state, paneRect)!.0
        drawMap(state, map, geo: geo, into: &screen, barRow: rows.bar, x: inner.x, width: inner.width)
        drawCursorValue(state, map, geo: geo, into: &screen, infoRow: rows.info, x: inner.x, width: inner.width)
    case .sampling(let s):
        drawSampling(state, s, into: &screen, paneRect: paneRect, rows: rows)
    case .detections(let dets):
        drawDetections(state, dets, into: &screen, paneRect: paneRect, rows: rows)
    case .refinedBoxes(let r):
        drawRefinedBoxes(state, r, into: &screen, paneRect: paneRect, rows: rows)
    case .querySelection(let q):
        drawQuerySelection(state, q, into: &screen, paneRect: paneRect, rows: rows)
    case .edgeDistributions(let e):
        drawEdgeDistributions(state, e, into: &screen, paneRect: paneRect, rows: rows)
    }
}

/// The current visual's title: what it is (the probe's label, e.g. "gate sigmoid(a(x))", or the layer's
/// output) and where it was recorded; in the explorer also which of the layer's visuals it is.
func visualTitle(_ state: State, _ kind: VisualKind) -> String {
    let sources = visualSources(state)
    let which = sources.count > 1 && state.keyHints ? " [\(min(state.visual, sources.count - 1) + 1)/\(sources.count) v:next]" : ""
    return sourceTitle(state, currentSource(state)) + which
}

/// A visual's name: the probe's label and path, "output feature map · path" or "detections".
func sourceTitle(_ state: State, _ source: VisualSource?) -> String {
    switch source {
    case .probe(let i)?:
        guard let p = currentTrace(state)?.probes[i] else { return "visual" }
        return "\(p.label) · \(p.path)"
    case .output?:
        let path = currentStep(state)?.path
        let isMap = currentStep(state)?.output.map { $0.rank == 4 } ?? false
        return (isMap ? "output feature map" : "output") + (path.map { " · \($0)" } ?? "")
    case .detections?: return "detections"
    case nil: return "visual"
    }
}

func shapeText(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

func tensorStats(_ t: Tensor) -> String {
    guard !t.data.isEmpty else { return "empty" }
    var lo = Float.infinity, hi = -Float.infinity, sum: Double = 0
    for v in t.data { lo = min(lo, v); hi = max(hi, v); sum += Double(v) }
    return "min \(fmt(lo))  max \(fmt(hi))  mean \(fmt(Float(sum / Double(t.data.count))))"
}

func drawProgress(_ screen: inout Screen, x: Int, y: Int, width: Int, done: Int, total: Int, theme: Theme) {
    let label = total > 0 ? " \(done)/\(total) layers" : " \(done) layers"
    let barWidth = max(4, width - label.count - 2)
    let filled = total > 0 ? min(barWidth, barWidth * done / total) : 0
    var bar = "["
    bar += String(repeating: "█", count: filled)
    bar += String(repeating: "·", count: barWidth - filled)
    bar += "]"
    screen.text(x, y, bar + label, theme.style(.accent), maxWidth: width)
}

/// The text a constant map shows instead of a flat colour.
func constantText(_ v: Float) -> String { "constant value \(fmt(v))" }

/// Paints `map` (over the input image in grey when the geometry is the input's and `o` is on) into `geo.rect`,
/// and draws its colour bar and range on `barRow` and the row below. A map whose values are all equal is named
/// instead ("constant value V").
@discardableResult
func drawMap(_ state: State, _ map: ScalarMap, geo: MapGeometry, into screen: inout Screen, barRow: Int, x: Int, width: Int,
             norm given: Normalization? = nil) -> Normalization {
    let norm = given ?? Normalization.fit([map], mode: state.rangeMode)
    let cmap = effectiveColormap(state, signed: norm.signed)
    let overImage = state.overlay && geo.inputSize != nil ? state.result?.image : nil
    if let v = norm.constantValue {
        drawCentred(state, constantText(v), in: geo.rect, into: &screen)
    } else if usesRamp8(state, overImage: overImage != nil) {
        let cells = Ramp8(cmap).cells(map, norm: norm, cols: geo.rect.width, rows: geo.rect.height)
        put(cells, in: geo.rect, into: &screen)
    } else {
        let (sx, sy) = state.render.pixelsPerCell
        let pw = geo.rect.width * sx, ph = geo.rect.height * sy
        var pic = Painter.paint(map, colormap: cmap, norm: norm, width: pw, height: ph)
        if let img = overImage { pic = Painter.blend(Painter.greyImage(img, width: pw, height: ph), pic, alpha: 0.6) }
        Renderer.draw(pic, into: &screen, at: geo.rect, options: state.render)
    }
    drawColorBar(state, cmap, norm: norm, into: &screen, x: x, y: barRow, width: width)
    return norm
}

/// Copies `cells` (rect.width x rect.height, row-major) into `rect` of the screen.
func put(_ cells: [Cell], in rect: Rect, into screen: inout Screen) {
    guard cells.count == rect.width * rect.height else { return }
    for r in 0 ..< rect.height {
        for c in 0 ..< rect.width { screen.set(rect.x + c, rect.y + r, cells[r * rect.width + c]) }
    }
}

/// A line of text centred in `rect` (cut to its width).
func drawCentred(_ state: State, _ text: String, in rect: Rect, into screen: inout Screen) {
    guard rect.width > 0, rect.height > 0 else { return }
    let t = clip(text, rect.width)
    let x = rect.x + max(0, (rect.width - t.unicodeScalars.count) / 2)
    screen.text(x, rect.y + rect.height / 2, t, state.theme.style(.accent), maxWidth: rect.width)
}

/// The colour bar on row `y` (low value, the colours, high value, the colormap's name, or the 8-colour ramp's
/// colours) and on row `y + 1` the range it shows and the map's true min and max.
func drawColorBar(_ state: State, _ cmap: Colormap, norm: Normalization, into screen: inout Screen, x: Int, y: Int, width: Int) {
    guard y >= 0 else { return }
    if let v = norm.constantValue {
        screen.text(x, y, clip(constantText(v) + " (every cell, to 3 significant digits)", width), state.theme.style(.text))
        return
    }
    let ramp = usesRamp8(state, overImage: false) ? Ramp8(cmap) : nil
    let lo = fmt(norm.lo), hi = fmt(norm.hi)
    let name = ramp.map { "\($0.name) (8 colours)" } ?? cmap.rawValue
    let barWidth = max(ramp == nil ? 4 : 8, min(40, width - lo.count - hi.count - 3 - name.count))
    screen.text(x, y, lo, state.theme.style(.text))
    let bx = x + lo.count + 1
    if state.render.colorMode == .none {
        var s = ""
        for i in 0 ..< barWidth {
            let k = min(Renderer.ramp.count - 1, i * Renderer.ramp.count / barWidth)
            s.unicodeScalars.append(Renderer.ramp[k])
        }
        screen.text(bx, y, s)
    } else if let ramp {
        put(ramp.bar(width: barWidth), in: Rect(x: bx, y: y, width: barWidth, height: 1), into: &screen)
    } else {
        let pic = Painter.colorBar(cmap, width: barWidth, height: 2)
        Renderer.draw(pic, into: &screen, at: Rect(x: bx, y: y, width: barWidth, height: 1), options: state.render)
    }
    let tail = clip(hi + " " + name, max(0, x + width - (bx + barWidth + 1)))
    screen.text(bx + barWidth + 1, y, tail, state.theme.style(.text))
    screen.text(x, y + 1, clip(rangeText(norm), width), state.theme.style(.dim))
}

/// "range p1–p99 (edge cells ignored) · min -0.52 max 3.1": the rule of the colour range and the true extremes.
func rangeText(_ norm: Normalization) -> String {
    let rule = "range " + norm.mode.label + (norm.mode == .minmax ? "" : " (edge cells ignored)")
    return rule + " · min \(fmt(norm.dataMin)) max \(fmt(norm.dataMax))"
}

/// Spatial weights [H, W] as a map (signed when any weight is negative).
func spatialScalar(_ t: Tensor) -> ScalarMap {
    ScalarMap(width: t.shape[1], height: t.shape[0], values: t.data, signed: t.data.contains { $0 < 0 })
}

/// The channel map selected by the channel mode (nil in grid mode).
func featureMapScalar(_ state: State, _ t: Tensor, signed: Bool) -> ScalarMap? {
    var m: ScalarMap?
    switch state.channelMode {
    case .single: m = ScalarMap.channel(t, state.channel)
    case .mean: m = ScalarMap.reduce(t, max: false)
    case .max: m = ScalarMap.reduce(t, max: true)
    case .grid: return nil
    }
    m?.signed = signed
    return m
}

func drawFeatureMap(_ state: State, _ t: Tensor, signed: Bool, into screen: inout Screen, area: Rect, paneRect: Rect, rows: VisualRows) {
    guard let (C, H, W) = ScalarMap.chw(t) else { return }
    let inner = paneRect.inset(1)
    if camShown(state) {
        drawCAM(state, t, into: &screen, area: area, paneRect: paneRect, rows: rows)
        return
    }
    if state.channelMode == .grid {
        drawChannelGrid(state, t, C: C, H: H, W: W, signed: signed, into: &screen, area: area, rows: rows, x: inner.x, width: inner.width)
        return
    }
    guard let map = featureMapScalar(state, t, signed: signed), let (geo, _) = visualGeometry(state, paneRect) else { return }
    drawMap(state, map, geo: geo, into: &screen, barRow: rows.bar, x: inner.x, width: inner.width)
    drawCursorValue(state, map, geo: geo, into: &screen, infoRow: rows.info, x: inner.x, width: inner.width)
    let what: String
    switch state.channelMode {
    case .single: what = "channel \(state.channel)/\(C)"
    case .mean: what = "mean of \(C) channels"
    case .max: what = "max of \(C) channels"
    case .grid: what = ""
    }
    let line = withHints(state, "\(what) · \(H)x\(W)", "c/C, digits: channel · a: single/grid/mean/max · o: over image")
    // Without a cursor (render) the line moves up into the cursor's row.
    screen.text(inner.x, state.showCursor ? rows.info2 : rows.info, clip(line, inner.width), state.theme.style(.dim))
}

/// The value under the cursor, and the cursor itself on the map (when the cursor is shown).
func drawCursorValue(_ state: State, _ map: ScalarMap, geo: MapGeometry, into screen: inout Screen, infoRow: Int, x: Int, width: Int) {
    guard state.showCursor else { return }
    let cx = max(0, min(map.width - 1, state.cursor.x)), cy = max(0, min(map.height - 1, state.cursor.y))
    let v = map.value(x: cx, y: cy)
    let line = withHints(state, "cursor (y \(cy), x \(cx)) = \(fmt(v))", "Tab, then arrows/hjkl move it")
    screen.text(x, infoRow, clip(line, width), state.theme.style(.text))
    if let (c, r) = geo.cell(gridX: cx, gridY: cy, grid: GridSize(map.height, map.width)) {
        drawCursorCell(state, &screen, c, r)
    }
}

func drawCursorCell(_ state: State, _ screen: inout Screen, _ c: Int, _ r: Int) {
    guard state.showCursor, c >= 0, r >= 0, c < screen.width, r < screen.height else { return }
    var cell = screen[c, r]
    cell.symbol = "✛"
    if state.render.colorMode == .none {
        cell.symbol = "X"
        cell.attrs = [.bold, .reverse]
    } else {
        cell.fg = .rgb(255, 255, 255)
        cell.attrs = [.bold]
        if cell.bg == .none { cell.bg = .rgb(0, 0, 0) }
    }
    screen[c, r] = cell
}

/// How a channel grid is laid out in an area: tiles of the map's own shape in cells (at least 6x3, a row for
/// the channel number), made smaller until up to 32 channels fit; a page is the tiles that fit.
struct GridPage: Equatable {
    var tileW: Int, tileH: Int, cols: Int, rows: Int
    var perPage: Int { cols * rows }

    init(channels C: Int, height H: Int, width W: Int, area: Rect) {
        let fullW = max(6, min(area.width, W + 1)), fullH = max(3, min(area.height, (H + 1) / 2 + 1))
        tileW = fullW
        tileH = fullH
        while tileW > 6 && (area.width / tileW) * (area.height / tileH) < min(C, 32) {
            tileW -= 1
            tileH = max(3, (tileW - 1) * (fullH - 1) / max(1, fullW - 1) + 1)
        }
        cols = max(1, area.width / tileW)
        rows = max(1, area.height / tileH)
    }

    /// The first channel of the page holding `channel`.
    func start(of channel: Int) -> Int { (channel / perPage) * perPage }
}

let gridRangeCache = LRUCache<StorageKey, Normalization>(capacity: 8)

/// The grid page of the current feature map in the explorer's visual pane (nil when it shows none).
func currentGridPage(_ state: State) -> (GridPage, channels: Int)? {
    guard case .featureMap(let t, _) = currentVisualKind(state), let (C, H, W) = ScalarMap.chw(t), C > 0 else { return nil }
    let area = mapArea(Layout(state: state).right.inset(1))
    return (GridPage(channels: C, height: H, width: W, area: area), C)
}

func drawChannelGrid(_ state: State, _ t: Tensor, C: Int, H: Int, W: Int, signed: Bool, into screen: inout Screen, area: Rect,
                     rows: VisualRows, x: Int, width: Int) {
    let page = GridPage(channels: C, height: H, width: W, area: area)
    let tileW = page.tileW, tileH = page.tileH
    let start = page.start(of: state.channel)
    var maps: [(Int, ScalarMap)] = []
    for c in start ..< min(C, start + page.perPage) {
        guard var m = ScalarMap.channel(t, c) else { break }
        m.signed = signed
        maps.append((c, m))
    }
    // The page's shared range, remembered: every key press redraws the same page.
    let key = StorageKey([t.data], [start, maps.count, signed ? 1 : 0, RangeMode.allCases.firstIndex(of: state.rangeMode)!])
    let shared = gridRangeCache.get(key) ?? Normalization.fit(maps.map(\.1), mode: state.rangeMode)
    gridRangeCache.put(key, shared)
    let cmap = effectiveColormap(state, signed: shared.signed)
    let ramp = usesRamp8(state, overImage: false)
    // All tiles painted into one picture of the area and turned into cells in one libchafa call (one call
    // per tile costs a thread hand-off each); only the tiles' own cells are copied to the screen.
    let (sx, sy) = state.render.pixelsPerCell
    var pic = Picture(width: ramp ? 0 : area.width * sx, height: ramp ? 0 : area.height * sy)
    var tiles: [(Int, Rect, Rect, Normalization)] = []
    for (k, (c, m)) in maps.enumerated() {
        let tile = Rect(x: area.x + (k % page.cols) * tileW, y: area.y + (k / page.cols) * tileH, width: tileW - 1, height: tileH - 1)
        let geo = MapGeometry.fit(width: W, height: H, in: tile)
        let norm = state.gridOwnRange ? Normalization.fit([m], mode: state.rangeMode) : shared
        if ramp {
            put(Ramp8(effectiveColormap(state, signed: norm.signed)).cells(m, norm: norm, cols: geo.rect.width, rows: geo.rect.height), in: geo.rect, into: &screen)
        } else {
            Painter.paint(m, colormap: effectiveColormap(state, signed: norm.signed), norm: norm, into: &pic,
                          x: (geo.rect.x - area.x) * sx, y: (geo.rect.y - area.y) * sy, width: geo.rect.width * sx, height: geo.rect.height * sy)
        }
        tiles.append((c, tile, geo.rect, norm))
    }
    let cells = ramp ? [] : Renderer.cells(pic, cols: area.width, rows: area.height, options: state.render)
    for (c, tile, r, norm) in tiles {
        if cells.count == area.width * area.height {
            for y in max(r.y, area.y) ..< min(r.maxY, area.maxY) {
                for x in max(r.x, area.x) ..< min(r.maxX, area.maxX) { screen.set(x, y, cells[(y - area.y) * area.width + x - area.x]) }
            }
        }
        // A constant tile (in its own range, or all of them in a constant shared one) says so.
        if let v = norm.constantValue {
            screen.fill(r, Cell(" "))
            drawCentred(state, "=\(fmt(v))", in: r, into: &screen)
        }
        let style = c == state.channel ? state.theme.style(.selected) : state.theme.style(.dim)
        screen.text(tile.x, tile.maxY, "\(c)", style, maxWidth: tileW - 1)
    }
    if state.gridOwnRange {
        screen.text(x, rows.bar, clip("each tile its own range (\(state.rangeMode.label))", width), state.theme.style(.text))
    } else {
        drawColorBar(state, cmap, norm: shared, into: &screen, x: x, y: rows.bar, width: width)
    }
    let pages = (C + page.perPage - 1) / page.perPage
    let data = "channels \(start)-\(min(C, start + page.perPage) - 1) of \(C) · page \(start / page.perPage + 1)/\(pages) · "
        + (state.gridOwnRange ? "own ranges" : "shared range")
    let line = withHints(state, data, "c/C: page · R: shared/own range · a: mode")
    screen.text(x, rows.info, clip(line, width), state.theme.style(.dim))
}

/// The attention of the query under the cursor over the key grid (the chosen head, or the mean of the heads), with
/// the query's flat index and grid position; nil unless t is [heads, Q, K] with K the key grid's size.
func attentionRow(_ state: State, _ t: Tensor, query: GridSize, key: GridSize) -> (ScalarMap, q: Int, x: Int, y: Int)? {
    guard t.rank == 3, t.shape[2] == key.count, t.shape[1] > 0 else { return nil }
    let heads = t.shape[0], Q = t.shape[1], K = t.shape[2]
    let qx = max(0, min(query.width - 1, state.cursor.x)), qy = max(0, min(query.height - 1, state.cursor.y))
    let q = min(Q - 1, qy * query.width + qx)
    var values = [Float](repeating: 0, count: K)
    let hs = state.head >= 0 && state.head < heads ? [state.head] : Array(0 ..< heads)
    for h in hs {
        let base = (h * Q + q) * K
        for k in 0 ..< K { values[k] += t.data[base + k] }
    }
    if hs.count > 1 { for k in 0 ..< K { values[k] /= Float(hs.count) } }
    return (ScalarMap(width: key.width, height: key.height, values: values), q, qx, qy)
}

func drawAttention(_ state: State, _ t: Tensor, query: GridSize, key: GridSize, into screen: inout Screen, paneRect: Rect, rows: VisualRows) {
    let inner = paneRect.inset(1)
    guard let (geo, _) = visualGeometry(state, paneRect), let (map, q, qx, qy) = attentionRow(state, t, query: query, key: key) else { return }
    let heads = t.shape[0], K = t.shape[2], values = map.values
    drawMap(state, map, geo: geo, into: &screen, barRow: rows.bar, x: inner.x, width: inner.width)
    // The query's own position on the key grid (same spatial extent) as the cursor.
    if let (c, r) = geo.cell(normalizedX: (Float(qx) + 0.5) / Float(query.width), normalizedY: (Float(qy) + 0.5) / Float(query.height)) {
        drawCursorCell(state, &screen, c, r)
    }
    var best = 0
    for k in 0 ..< K where values[k] > values[best] { best = k }
    let headText = state.head >= 0 ? "head \(state.head)/\(heads)" : "mean of \(heads) heads"
    screen.text(inner.x, rows.info, clip("query (y \(qy), x \(qx)) #\(q) · \(headText) · peak key (y \(best / key.width), x \(best % key.width)) \(fmt(values[best]))", inner.width), state.theme.style(.text))
    screen.text(inner.x, rows.info2, clip(withHints(state, "", "Tab then arrows move the query · [ ] head · o: over image"), inner.width), state.theme.style(.dim))
}

func drawBars(_ state: State, _ t: Tensor, into screen: inout Screen, area: Rect, rows: VisualRows) {
    let C = t.count
    guard C > 0, area.width > 2, area.height > 2 else { return }
    let vals = t.data
    let hi = max(vals.max() ?? 1, 0), lo = min(vals.min() ?? 0, 0)
    let span = max(hi - lo, 1e-12)
    let cols = min(C, area.width)
    let perCol = (C + cols - 1) / cols
    // Few channels: wider bars (with a gap) so each is easy to see.
    let barWidth = perCol == 1 ? max(1, min(6, area.width / C - 1)) : 1
    let step = perCol == 1 && barWidth > 1 ? barWidth + 1 : 1
    let eighths: [Unicode.Scalar] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
    let mono = state.render.colorMode == .none
    let h = area.height - 1
    for col in 0 ..< (C + perCol - 1) / perCol {
        let c0 = col * perCol, c1 = min(C, c0 + perCol)
        var v = vals[c0]
        for c in c0 ..< c1 where abs(vals[c]) > abs(v) { v = vals[c] }
        let frac = (v - lo) / span
        let units = Int((frac * Float(h * 8)).rounded())
        let selected = state.channel >= c0 && state.channel < c1
        let color: CellColor = selected ? .rgb(255, 215, 95) : {
            let c = Colormap.viridis.color(0.25 + 0.75 * frac)
            return .rgb(c.0, c.1, c.2)
        }()
        for r in 0 ..< h {
            let fill = max(0, min(8, units - r * 8))
            if fill == 0 { continue }
            let sym: Unicode.Scalar = mono ? (selected ? "#" : "|") : eighths[fill]
            for k in 0 ..< barWidth { screen.set(area.x + col * step + k, area.y + h - 1 - r, Cell(sym, fg: mono ? .none : color)) }
        }
    }
    let order = vals.indices.sorted { vals[$0] > vals[$1] }.prefix(5).map { "\($0):\(fmt(vals[$0]))" }.joined(separator: " ")
    screen.text(area.x, area.maxY - 1, clip("\(C) channels" + (perCol > 1 ? ", \(perCol) per column (largest shown)" : ""), area.width), state.theme.style(.dim))
    screen.text(area.x, rows.info, clip("channel \(state.channel) = \(fmt(vals[min(C - 1, state.channel)])) · top: \(order)", area.width), state.theme.style(.text))
    screen.text(area.x, rows.info2, clip(withHints(state, "", "Tab then ←/→ choose a channel"), area.width), state.theme.style(.dim))
}

/// The sampling view: the points over the input image, or over a map with `x` (the aggregated weights of every
/// query's points) or `o` (the sampled level's feature map), that map laid over the image in grey with `o`.
func drawSampling(_ state: State, _ s: SamplingPoints, into screen: inout Screen, paneRect: Rect, rows: VisualRows) {
    let inner = paneRect.inset(1)
    guard let (geo, input) = visualGeometry(state, paneRect) else { return }
    let (sx, sy) = state.render.pixelsPerCell
    let q = max(0, min(s.queries - 1, state.query))
    let heads = state.head >= 0 ? [state.head] : Array(0 ..< s.heads)
    let levels = state.level >= 0 ? [state.level] : Array(0 ..< s.levels)
    let P = s.points, L = s.levels, H = s.heads
    let legend = "points: colour = head, brightness = weight"
    var about = ""
    if let (map, what) = samplingBackground(state, s, heads: heads, levels: levels) {
        drawMap(state, map, geo: geo, into: &screen, barRow: rows.bar, x: inner.x, width: inner.width)
        about = what
    } else if let img = state.result?.image {
        let pic = state.overlay ? Painter.greyImage(img, width: geo.rect.width * sx, height: geo.rect.height * sy)
            : Painter.image(img, width: geo.rect.width * sx, height: geo.rect.height * sy)
        Renderer.draw(pic, into: &screen, at: geo.rect, options: state.render)
        screen.text(inner.x, rows.bar, clip(legend, inner.width), state.theme.style(.dim))
    } else {
        screen.fill(geo.rect, Cell("·", fg: state.theme.monochrome ? .none : .rgb(80, 80, 80)))
    }
    // Sampling points, the strongest point per cell wins.
    var maxW: Float = 1e-12
    for h in heads { for l in levels { for p in 0 ..< P { maxW = max(maxW, s.weights.data[((q * H + h) * L + l) * P + p]) } } }
    var best: [Int: (Float, Int)] = [:]
    for h in heads {
        for l in levels {
            for p in 0 ..< P {
                let wi = ((q * H + h) * L + l) * P + p
                let w = s.weights.data[wi]
                let x = s.locations.data[2 * wi], y = s.locations.data[2 * wi + 1]
                guard let (c, r) = geo.cell(normalizedX: x, normalizedY: y) else { continue }
                let key = r * 10000 + c
                if best[key] == nil || best[key]!.0 < w { best[key] = (w, h) }
            }
        }
    }
    for (key, (w, h)) in best {
        let r = key / 10000, c = key % 10000
        var cell = screen[c, r]
        if state.render.colorMode == .none {
            cell.symbol = Unicode.Scalar(UInt8(48 + h % 10))
            cell.attrs = w / maxW > 0.5 ? [.bold] : []
        } else {
            cell.symbol = "●"
            cell.fg = HeadColors.color(head: h, shade: w / maxW)
        }
        screen[c, r] = cell
    }
    // The reference point as a cross (drawn last so it stays visible).
    let rp = s.referencePoints
    let rd = rp.shape.last ?? 2
    let rx = rp.data[q * rd], ry = rp.data[q * rd + 1]
    if rd == 4, !state.theme.monochrome || true {
        let w = rp.data[q * rd + 2], h = rp.data[q * rd + 3]
        drawBox(state, &screen, geo: geo, x1: (rx - w / 2) * Float(input.width), y1: (ry - h / 2) * Float(input.height),
                x2: (rx + w / 2) * Float(input.width), y2: (ry + h / 2) * Float(input.height), label: nil, color: .rgb(200, 200, 200), dim: true)
    }
    if let (c, r) = geo.cell(normalizedX: rx, normalizedY: ry) {
        var cell = screen[c, r]
        cell.symbol = "╋"
        cell.fg = state.theme.monochrome ? .none : .rgb(255, 255, 255)
        cell.attrs = [.bold]
        screen[c, r] = cell
    }
    // Info.
    let dets = currentDetections(state)
    var qtext = "query \(q)/\(s.queries)"
    if s.queryLevels == nil, let d = dets.first(where: { $0.source == q }) {
        qtext += " = \(d.className) \(String(format: "%.2f", d.score))"
    } else if let ql = s.queryLevels, q < ql.count {
        qtext += " (level \(ql[q].height) pos \(ql[q].width))"
    }
    let headText = state.head >= 0 ? "head \(state.head)/\(H)" : "all \(H) heads"
    let levelText = state.level >= 0 ? "level \(state.level)/\(L) \(state.level < s.levelShapes.count ? "\(s.levelShapes[state.level].height)x\(s.levelShapes[state.level].width)" : "")" : "all \(L) levels"
    screen.text(inner.x, rows.info, clip("\(qtext) · \(headText) · \(levelText) · \(P) points", inner.width), state.theme.style(.text))
    let how = s.queryLevels == nil ? "< > detection · digits: query" : "Tab, arrows: query pixel"
    screen.text(inner.x, rows.info2, clip(withHints(state, about, "\(how) · [ ] head · { } level · x heatmap · o map"), inner.width), state.theme.style(.dim))
}

/// The map under the sampling points and a line saying what it is: with `x` the summed weights of every
/// query's points on the level's grid; with `o` (and no `x`) the feature map the points sample at that level,
/// the channel mean of the latest layer output before this layer with the level's size. nil: the image.
func samplingBackground(_ state: State, _ s: SamplingPoints, heads: [Int], levels: [Int]) -> (ScalarMap, String)? {
    let P = s.points, L = s.levels, H = s.heads
    let level = levels.count == 1 ? levels[0] : 0
    if state.aggregate {
        let grid = s.levelShapes.isEmpty ? GridSize(64, 64) : s.levelShapes[level]
        var acc = [Float](repeating: 0, count: grid.count)
        s.locations.data.withUnsafeBufferPointer { loc in
            s.weights.data.withUnsafeBufferPointer { w in
                for qq in 0 ..< s.queries {
                    for h in heads {
                        for l in levels {
                            for p in 0 ..< P {
                                let wi = ((qq * H + h) * L + l) * P + p
                                let x = loc[2 * wi], y = loc[2 * wi + 1]
                                let gx = Int(x * Float(grid.width)), gy = Int(y * Float(grid.height))
                                if gx >= 0, gy >= 0, gx < grid.width, gy < grid.height { acc[gy * grid.width + gx] += w[wi] }
                            }
                        }
                    }
                }
            }
        }
        return (ScalarMap(width: grid.width, height: grid.height, values: acc), "aggregated point weights of all \(s.queries) queries, level \(level) grid")
    }
    guard state.overlay, level < s.levelShapes.count, let (path, t) = levelFeatureMap(state, s.levelShapes[level]),
          let map = ScalarMap.reduce(t, max: false) else { return nil }
    return (map, "level \(level) map: mean of \(path)'s channels")
}

/// The latest layer output before the current layer whose spatial size is `grid` (the feature map a
/// deformable attention samples at that level), with its path.
func levelFeatureMap(_ state: State, _ grid: GridSize) -> (String, Tensor)? {
    guard let trace = currentTrace(state), let idx = state.index, state.layer < idx.steps.count else { return nil }
    let end = idx.steps[state.layer] ?? trace.steps.count
    for step in trace.steps[..<min(end, trace.steps.count)].reversed() {
        if let t = step.output, t.rank == 4, t.shape[0] == 1, t.shape[2] == grid.height, t.shape[3] == grid.width { return (step.path, t) }
    }
    return nil
}

/// Class colours for boxes.
func classColor(_ i: Int) -> CellColor {
    let palette: [UInt32] = [0xff5f5f, 0x5fd7ff, 0xffd75f, 0x87ff87, 0xd787ff, 0xffaf5f, 0x5fffd7, 0xff87d7, 0xafafff, 0xd7ff5f]
    return CellColor(hex: palette[((i % palette.count) + palette.count) % palette.count])
}

/// A box in input pixels drawn with box-drawing characters, with an optional label on its top edge (or bottom edge);
/// without `edges` only the label (to lay labels over boxes drawn before).
func drawBox(_ state: State, _ screen: inout Screen, geo: MapGeometry, x1: Float, y1: Float, x2: Float, y2: Float, label: String?, color: CellColor,
             dim: Bool = false, labelBelow: Bool = false, edges: Bool = true) {
    guard let input = geo.inputSize else { return }
    func clampX(_ v: Float) -> Float { max(0, min(Float(input.width) - 0.001, v)) }
    func clampY(_ v: Float) -> Float { max(0, min(Float(input.height) - 0.001, v)) }
    let sx = geo.mapWidth / Float(input.width), sy = geo.mapHeight / Float(input.height)
    guard let (c1, r1) = geo.cell(x: clampX(x1) * sx, y: clampY(y1) * sy),
          let (c2, r2) = geo.cell(x: clampX(x2) * sx, y: clampY(y2) * sy) else { return }
    let fg: CellColor = state.theme.monochrome ? .none : color
    let attrs: CellAttributes = dim ? [] : [.bold]
    func put(_ c: Int, _ r: Int, _ s: Unicode.Scalar) {
        guard c >= 0, r >= 0, c < screen.width, r < screen.height else { return }
        var cell = screen[c, r]
        cell.symbol = s
        cell.fg = fg
        cell.attrs = attrs
        screen[c, r] = cell
    }
    if edges {
        if c2 > c1 {
            for c in c1 + 1 ..< c2 { put(c, r1, dim ? "┄" : "─"); put(c, r2, dim ? "┄" : "─") }
        }
        if r2 > r1 {
            for r in r1 + 1 ..< r2 { put(c1, r, dim ? "┆" : "│"); put(c2, r, dim ? "┆" : "│") }
        }
        put(c1, r1, "┌"); put(c2, r1, "┐"); put(c1, r2, "└"); put(c2, r2, "┘")
    }
    if let label {
        let room = max(0, min(c2 - c1 - 1, screen.width - c1 - 1))
        var col = c1 + 1
        for s in clip(label, max(room, 0)).unicodeScalars {
            guard col < screen.width else { break }
            let r = labelBelow ? r2 : r1
            var cell = screen[col, r]
            cell.symbol = s
            cell.fg = state.theme.monochrome ? .none : .rgb(0, 0, 0)
            cell.bg = state.theme.monochrome ? .none : color
            cell.attrs = state.theme.monochrome ? [.reverse] : []
            screen[col, r] = cell
            col += 1
        }
    }
}

func drawDetections(_ state: State, _ dets: [Detection], into screen: inout Screen, paneRect: Rect, rows: VisualRows) {
    let inner = paneRect.inset(1)
    guard let (geo, _) = visualGeometry(state, paneRect) else { return }
    let (sx, sy) = state.render.pixelsPerCell
    if let img = state.result?.image {
        Renderer.draw(Painter.image(img, width: geo.rect.width * sx, height: geo.rect.height * sy), into: &screen, at: geo.rect, options: state.render)
    }
    // Weakest first so the strongest boxes end on top.
    let shown = dets.enumerated().sorted { $0.element.score < $1.element.score }.suffix(30)
    for (i, d) in shown {
        let picked = i == state.detectionPick
        drawBox(state, &screen, geo: geo, x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2,
                label: detectionLabel(d), color: picked ? .rgb(255, 255, 255) : classColor(d.classIndex))
    }
    let top = dets.sorted { $0.score > $1.score }.prefix(4).map { "\($0.className) \(String(format: "%.2f", $0.score))" }.joined(separator: ", ")
    screen.text(inner.x, rows.info, clip("\(dets.count) detection\(dets.count == 1 ? "" : "s")" + (dets.isEmpty ? "" : ": \(top)"), inner.width), state.theme.style(.text))
    screen.text(inner.x, rows.info2, clip(withHints(state, "", "< > pick a detection (its query in the sampling view)"), inner.width), state.theme.style(.dim))
}

// MARK: - EigenCAM (E)

/// Whether the visual shows the EigenCAM of the current feature map instead of its channels (`E` on a feature-map
/// visual; every channel mode gives way to it).
public func camShown(_ state: State) -> Bool {
    guard state.cam != .off, state.result != nil, case .featureMap(let t, _) = currentVisualKind(state) else { return false }
    return ScalarMap.chw(t) != nil
}

/// `E`: the next EigenCAM mode (off, the CAM, the CAM in each detection box), said in the status line.
public func toggleCAM(_ state: inout State) {
    state.cam = state.cam.next
    switch state.cam {
    case .off: state.notice = "EigenCAM off"
    case .cam: state.notice = "EigenCAM: each feature map's first principal component, over the image"
    case .boxes: state.notice = "EigenCAM renormalised inside each detection box"
    }
    if state.cam != .off, state.result != nil, case .featureMap = currentVisualKind(state) {} else if state.cam != .off {
        state.notice! += " (shown on feature-map visuals; this one is not)"
    }
}

let camCache = LRUCache<StorageKey, CAMComponent>(capacity: 8)

/// A feature map's first principal component, or why it could not be computed.
enum CAMComponent {
    case ok(EigenCAM.Component)
    case failed(String)
}

/// The cache key of `t`'s component.
public func camKey(_ t: Tensor, sign: EigenCAM.Sign = .lapack) -> StorageKey {
    StorageKey([t.data], t.shape + [EigenCAM.Sign.allCases.firstIndex(of: sign)!])
}

/// The first principal component of `t` (remembered per tensor: every key press redraws the same layer); computed
/// here unless `compute` is false, then nil when it is not in the cache yet.
func camComponent(_ t: Tensor, sign: EigenCAM.Sign = .lapack, compute: Bool = true) -> CAMComponent? {
    let key = camKey(t, sign: sign)
    if let hit = camCache.get(key) { return hit }
    guard compute else { return nil }
    let out: CAMComponent
    do { out = .ok(try EigenCAM.firstComponent(t, sign: sign)) } catch { out = .failed("\(error)") }
    camCache.put(key, out)
    return out
}

/// The feature map whose CAM the view waits for (the explorer computes it off the UI thread), if any.
public func pendingCAM(_ state: State) -> Tensor? {
    guard state.camInBackground, camShown(state), case .featureMap(let t, _) = currentVisualKind(state) else { return nil }
    return camComponent(t, sign: state.camSign, compute: false) == nil ? t : nil
}

/// Computes and remembers `t`'s component (on any thread).
public func computeCAM(_ t: Tensor, sign: EigenCAM.Sign = .lapack) { _ = camComponent(t, sign: sign) }

/// The CAM of `t` at the input size as a map in [0, 1] (renormalised in the shown detections' boxes in the boxes
/// mode), with the component it came from; or a message.
func camMap(_ state: State, _ t: Tensor) -> Result<(ScalarMap, EigenCAM.Component), ExportError> {
    guard let input = inputGrid(state) else { return .failure(ExportError("EigenCAM needs the model input's size")) }
    switch camComponent(t, sign: state.camSign, compute: !state.camInBackground) {
    case nil:
        let (c, h, w) = ScalarMap.chw(t) ?? (0, 0, 0)
        return .failure(ExportError("computing EigenCAM: the principal component of \(c) channels over \(h)x\(w) positions…"))
    case .failed(let m)?: return .failure(ExportError(m))
    case .ok(let comp)?:
        do {
            var cam = try EigenCAM.cam(projection: comp.projection, inputSize: input)
            if state.cam == .boxes { cam = EigenCAM.renormalized(cam, boxes: currentDetections(state).map(EigenCAM.Box.init)) }
            return .success((ScalarMap(width: cam.width, height: cam.height, values: cam.values), comp))
        } catch {
            return .failure(ExportError("\(error)"))
        }
    }
}

/// The CAM's colour range: always 0 to 1 (the CAM is scaled so), with the map's own extremes.
func camNormalization(_ map: ScalarMap) -> Normalization {
    Normalization(lo: 0, hi: 1, signed: false, mode: .minmax, dataMin: map.values.min() ?? 0, dataMax: map.values.max() ?? 0)
}

func drawCAM(_ state: State, _ t: Tensor, into screen: inout Screen, area: Rect, paneRect: Rect, rows: VisualRows) {
    let inner = paneRect.inset(1)
    guard let (geo, _) = visualGeometry(state, paneRect), let (C, H, W) = ScalarMap.chw(t) else { return }
    switch camMap(state, t) {
    case .failure(let e):
        for (i, line) in wrap(e.description, width: inner.width).prefix(area.height).enumerated() {
            screen.text(inner.x, area.y + 1 + i, line, state.theme.style(.dim))
        }
    case .success(let (map, comp)):
        var over = state
        over.overlay = true
        drawMap(over, map, geo: geo, into: &screen, barRow: rows.bar, x: inner.x, width: inner.width, norm: camNormalization(map))
        let dets = currentDetections(state)
        if state.cam == .boxes {
            for d in dets.sorted(by: { $0.score < $1.score }).suffix(30) {
                drawBox(state, &screen, geo: geo, x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2, label: detectionLabel(d), color: classColor(d.classIndex))
            }
        }
        let what = state.cam == .boxes ? "EigenCAM in \(dets.count) detection box\(dets.count == 1 ? "" : "es")" : "EigenCAM"
        screen.text(inner.x, rows.info, clip("\(what) · \(C) channels \(H)x\(W) · PC1 \(String(format: "%.0f", comp.explained * 100))% of variance",
                                            inner.width), state.theme.style(.text))
        screen.text(inner.x, rows.info2, clip(withHints(state, "", "E: in boxes / off · m colormap"), inner.width), state.theme.style(.dim))
    }
}
