import Foundation
import ModelZoo
import Tensor

/// The pure view: `view(state) -> Screen` at the state's size. Panes: catalogue tree, details, layer table,
/// visual; a title line, a status bar, prompts and the help overlay.

public let minimumSize = (width: 40, height: 12)

/// Where the panes are for a state's size and mode.
public struct Layout: Sendable {
    public var title: Rect
    public var left: Rect
    public var right: Rect
    public var status: Rect

    public init(state: State) {
        let w = state.size.width, h = state.size.height
        title = Rect(x: 0, y: 0, width: w, height: 1)
        status = Rect(x: 0, y: h - 1, width: w, height: 1)
        let body = Rect(x: 0, y: 1, width: w, height: h - 2)
        switch state.mode {
        case .browse:
            let lw = max(22, min(40, w * 2 / 5))
            left = Rect(x: 0, y: body.y, width: lw, height: body.height)
            right = Rect(x: lw, y: body.y, width: w - lw, height: body.height)
        case .model:
            if w < 90 {
                // Narrow: layers on top, the visual below.
                let th = max(5, body.height * 2 / 5)
                left = Rect(x: 0, y: body.y, width: w, height: th)
                right = Rect(x: 0, y: body.y + th, width: w, height: body.height - th)
            } else {
                let lw = max(44, min(96, w * 9 / 20))
                left = Rect(x: 0, y: body.y, width: lw, height: body.height)
                right = Rect(x: lw, y: body.y, width: w - lw, height: body.height)
            }
        }
    }
}

public func view(_ state: State) -> Screen {
    var screen = Screen(width: state.size.width, height: state.size.height)
    let theme = state.theme
    if state.size.width < minimumSize.width || state.size.height < minimumSize.height {
        let lines = ["terminal too small", "need \(minimumSize.width)x\(minimumSize.height),", "have \(state.size.width)x\(state.size.height)", "(q quits)"]
        for (i, l) in lines.enumerated() {
            let y = state.size.height / 2 - 2 + i
            screen.text(max(0, (state.size.width - l.count) / 2), y, l, theme.style(i == 0 ? .warning : .text))
        }
        return screen
    }
    let layout = Layout(state: state)
    drawTitle(state, &screen, layout.title)
    switch state.mode {
    case .browse:
        drawCatalogue(state, &screen, layout.left)
        drawDetails(state, &screen, layout.right)
    case .model where compareShown(state):
        drawCompareTable(state, &screen, layout.left)
        drawCompareVisual(state, &screen, layout.right)
    case .model:
        drawLayers(state, &screen, layout.left)
        drawVisualPane(state, &screen, layout.right)
    }
    drawStatus(state, &screen, layout.status)
    if state.showHelp { drawHelp(state, &screen) }
    return screen
}

func drawTitle(_ state: State, _ screen: inout Screen, _ r: Rect) {
    let theme = state.theme
    screen.fill(r, Cell(" ", fg: theme.style(.status).fg, bg: theme.style(.status).bg, attrs: theme.style(.status).attrs))
    var title = " detr-tui"
    switch state.mode {
    case .browse: title += " · catalogue"
    case .model:
        title += " · \(state.opened?.name ?? state.modelID ?? "")"
        if let c = state.compare { title += " vs \(c.opened?.name ?? (c.model as NSString).lastPathComponent)" + (c.shareWeights ? " (shared weights)" : "") }
    }
    screen.text(0, r.y, title, theme.style(.statusKey))
    let inputs = "image \(state.imageLabel) · size \(sizeLabel(state)) · weights \(weightsLabel(state))"
    let x = max(title.count + 2, r.width - inputs.count - 1)
    screen.text(x, r.y, clip(inputs, r.width - x - 1), theme.style(.status), maxWidth: r.width - x)
}

/// The input size of the open model's run ("640", "640x480" for a letterbox rectangle, whose long side is the size
/// asked for), with the size asked for when the model's rule made another of it ("128 (asked 100)"); before a run,
/// the request.
func sizeLabel(_ state: State) -> String {
    guard let used = state.opened?.inputSize else { return state.inputSize.map(String.init) ?? "default" }
    let text = used.height == used.width ? "\(used.width)" : "\(used.width)x\(used.height)"
    if let asked = state.inputSize, asked != max(used.height, used.width) { return text + " (asked \(asked))" }
    return text
}

/// A download in the status bar: "yolov8n.pt ███░░░ 42% 12.5 MB/s 3 s left".
func downloadText(_ id: String, _ p: WeightsProgress?) -> String {
    guard let p else { return "downloading \(id)…" }
    func mb(_ b: Double) -> String { String(format: "%.1f MB", b / 1e6) }
    var s = "\(p.file)"
    if let f = p.fraction {
        let filled = Int((f * 10).rounded(.down))
        s += " " + String(repeating: "█", count: filled) + String(repeating: "░", count: 10 - filled) + String(format: " %.0f%%", f * 100)
    } else {
        s += " " + mb(Double(p.received))
    }
    s += " " + mb(p.bytesPerSecond) + "/s"
    if let left = p.secondsLeft { s += String(format: " %.0f s left", left) }
    return s + " (Esc cancels)"
}

/// Where the open model's weights come from, in a few words.
func weightsLabel(_ state: State) -> String {
    if let w = state.weights { return (w as NSString).lastPathComponent }
    if let m = state.modelPath, !isModelYAML(m) { return "from \((m as NSString).lastPathComponent)" }
    return "default init"
}

/// Whether the run uses the seeded default initialisation (no trained weights): its detections mean nothing.
public func runsUntrained(_ state: State) -> Bool {
    if let opened = state.opened { return opened.untrained }
    return state.weights == nil && (state.modelPath.map(isModelYAML) ?? true)
}

func isModelYAML(_ path: String) -> Bool { ["yaml", "yml"].contains((path as NSString).pathExtension.lowercased()) }

// MARK: - Catalogue and details

func drawCatalogue(_ state: State, _ screen: inout Screen, _ r: Rect) {
    let theme = state.theme
    let focused = state.focus == .catalogue
    let title = state.filter.isEmpty ? "Catalogue" : "Catalogue /\(state.filter)"
    screen.frame(r, title: title, style: theme.style(focused ? .borderFocus : .border), titleStyle: theme.style(.title))
    let inner = r.inset(1)
    let rows = state.treeRows
    if rows.isEmpty {
        screen.text(inner.x, inner.y, "no match for \"\(state.filter)\"", theme.style(.dim), maxWidth: inner.width)
        screen.text(inner.x, inner.y + 1, "Esc clears the search", theme.style(.dim), maxWidth: inner.width)
        return
    }
    let scroll = scrollOffset(selection: state.selection, count: rows.count, height: inner.height)
    for (i, row) in rows.enumerated().dropFirst(scroll).prefix(inner.height) {
        let y = inner.y + i - scroll
        let selected = i == state.selection
        var line: String
        var style: Style
        switch row {
        case .family(let f, let n):
            let open = !state.collapsed.contains(f) || !state.filter.isEmpty
            line = "\(open ? "▾" : "▸") \(f) (\(n))"
            style = theme.style(.header)
        case .entry(let e):
            let kind = e.kind == "module" ? "◆" : "•"
            line = "  \(kind) \(e.id)"
            if e.id != e.title.lowercased() { line += "  \(e.title)" }
            style = theme.style(.text)
        }
        if selected { style = theme.style(focused ? .selected : .selectedDim) }
        screen.text(inner.x, y, pad(clip(line, inner.width), inner.width), style, maxWidth: inner.width)
    }
}

/// The first visible row so that `selection` stays on screen (kept near the middle when scrolling).
func scrollOffset(selection: Int, count: Int, height: Int) -> Int {
    guard count > height, height > 0 else { return 0 }
    return max(0, min(count - height, selection - height / 2))
}

/// The details of the selected entry as lines (wrapped to `width`).
func detailLines(_ state: State, _ e: CatalogueEntry, width: Int) -> [(String, Theme.Role)] {
    var out: [(String, Theme.Role)] = []
    func add(_ s: String, _ role: Theme.Role = .text) { for l in wrap(s, width: width) { out.append((l, role)) } }
    add(e.title, .title)
    add("\(e.family) · \(e.kind)" + (e.scale.map { " · scale \($0)" } ?? "") + " · id \(e.id)", .dim)
    out.append(("", .text))
    add(e.summary)
    out.append(("", .text))
    if let p = e.paper {
        var s = "Paper: \(p.title)"
        if let a = p.authors { s += ", \(a)" }
        if let y = p.year { s += " (\(y))" }
        if let x = p.arxiv { s += " arXiv:\(x)" }
        add(s)
    }
    if let c = e.code { add("Code: \(c)") }
    add("Default input: \(e.inputSize)x\(e.inputSize)")
    if e.kind == "detector" {
        let w = Pretrained().status(of: e)
        if case .notPublished = w.state { add("Weights: " + w.summary, .dim) } else { add("W: " + w.summary, .accent) }
    }
    if let f = state.described[e.id] {
        if let err = f.error {
            add("Layer table: \(err)", .error)
        } else {
            add("Params \(humanCount(Double(f.params))) (\(f.params)) · \(String(format: "%.1f", f.flops / 1e9)) GFLOPs at \(f.inputSize)x\(f.inputSize) · \(f.layers) layers (this build's layer table)", .good)
        }
    } else {
        add("Params and FLOPs: computing…", .dim)
    }
    if let ref = e.reference { add("Reference: \(ref)") }
    if !e.probes.isEmpty { add("Shows: " + e.probes.joined(separator: ", ")) }
    if let ins = e.insert {
        out.append(("", .text))
        add("Where it is inserted:", .header)
        add(ins)
    }
    out.append(("", .text))
    add("Enter runs it on \(state.imageLabel) · i next image · I image path · s size · w weights", .accent)
    out.append(("", .text))
    if let text = configText(Assets.url(e.config).path) {
        add("Config \(e.config):", .header)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).prefix(400) {
            out.append((clip(String(line), width), .dim))
        }
    } else {
        add("Config: \(e.config)", .dim)
    }
    return out
}

/// The entry's config file, read once and kept (the details pane is redrawn on every key; the file is not
/// re-read for each frame). nil when it cannot be read.
func configText(_ path: String) -> String? {
    if let hit = configTextCache.get(path) { return hit }
    let text = try? String(contentsOfFile: path, encoding: .utf8)
    configTextCache.put(path, text)
    return text
}

let configTextCache = LRUCache<String, String?>(capacity: 8)

func drawDetails(_ state: State, _ screen: inout Screen, _ r: Rect) {
    let theme = state.theme
    screen.frame(r, title: "Details", style: theme.style(state.focus == .details ? .borderFocus : .border), titleStyle: theme.style(.title))
    let inner = r.inset(1)
    let rows = state.treeRows
    guard state.selection < rows.count else { return }
    switch rows[state.selection] {
    case .family(let f, let n):
        let about: [String: String] = [
            "RT-DETR": "Real-time DETR (Baidu, 2023): a CNN backbone, an efficient hybrid encoder (AIFI attention on the last level plus a CNN cross-scale fusion), IoU-aware query selection and a decoder with multi-scale deformable cross-attention. No NMS.",
            "YOLOv8": "Ultralytics YOLOv8 (2023): C2f CSP backbone, SPPF, PAN neck and an anchor-free decoupled head with distribution focal loss; NMS after.",
            "YOLOv10": "YOLOv10 (Tsinghua, 2024): SCDown downsampling, C2fCIB compact inverted blocks, PSA self-attention on the stride-32 map, and a one-to-one head whose top-k rows are the detections: no NMS.",
            "YOLO12": "YOLO12 (2025): attention-centric; A2C2f blocks whose area attention runs self-attention within strips of the map, with a depth-wise positional encoding; YOLO11's head, NMS after.",
            "YOLO26": "Ultralytics YOLO26 (2026): YOLO11's C3k2 and C2PSA, a PSABlock inside the last C3k2, and an end-to-end head without DFL (reg_max 1) whose one-to-one top-k rows are the detections: no NMS.",
            "YOLO11": "Ultralytics YOLO11 (2024): C3k2 blocks (C2f with Bottleneck or C3k inside), SPPF, then C2PSA position-sensitive self-attention on the stride-32 map; YOLOv8's PAN neck and anchor-free head with a depth-wise class branch; NMS after.",
            "Deformable DETR": "Deformable DETR (Zhu et al., ICLR 2021): each query attends to a few sampling points around a reference point on several feature levels, learned offsets and weights, instead of all pixels.",
            "Modules": "Attention modules people graft onto detectors: CoT, ContextAggregation, NAM, multi-scale deformable attention, AIFI. Each runs alone on a feature map.",
        ]
        var y = inner.y
        screen.text(inner.x, y, "\(f) · \(n) entries", theme.style(.title)); y += 2
        for l in wrap(about[f] ?? "", width: inner.width) where y < inner.maxY { screen.text(inner.x, y, l); y += 1 }
        if y + 1 < inner.maxY { screen.text(inner.x, y + 1, "Enter or ←/→ folds the family.", theme.style(.dim)) }
    case .entry(let e):
        let lines = detailLines(state, e, width: inner.width)
        let scroll = max(0, min(state.detailsScroll, max(0, lines.count - inner.height)))
        for (i, (l, role)) in lines.dropFirst(scroll).prefix(inner.height).enumerated() {
            screen.text(inner.x, inner.y + i, l, theme.style(role), maxWidth: inner.width)
        }
    }
}

// MARK: - Layer table

struct LayerLine {
    var row: Int
    var child: Int?
    var text: String
}

/// Column widths of the layer table for a pane width: the index and module always, then the output shape,
/// params, ms, from and n as room allows, each as wide as its longest entry, and the arguments in what is left.
/// Text is cut (with an ellipsis) only when the pane cannot hold the column's longest entry.
struct LayerColumns {
    var from = 0, n = 0, params = 0, module = 0, args = 0, shape = 0, ms = 0
    /// The widest the module column gets; longer names are cut with an ellipsis.
    static let moduleCap = 34

    init(width: Int, rows: [LayerRow] = []) {
        func longest(_ f: (LayerRow) -> String, _ floor: Int) -> Int {
            rows.reduce(floor) { m, r in max(m, f(r).count, r.children.reduce(0) { max($0, f($1).count) }) }
        }
        var room = width - 4
        // A layer's module has its fold marker before it, a sub-module row two spaces.
        let wantModule = max(rows.reduce(7) { max($0, shortModule($1.module).count + 1) },
                             rows.reduce(0) { m, r in r.children.reduce(m) { max($0, $1.module.count + 2) } })
        // Capped, so that a graph's long node paths (an ONNX export's rows) leave room for the output shape.
        module = min(wantModule, max(8, min(room / 2, LayerColumns.moduleCap))); room -= module + 1
        func take(_ w: Int) -> Int { if room >= w + 1 { room -= w + 1; return w }; return 0 }
        shape = take(longest({ shapeText($0.outputShape) }, 12))
        params = take(longest({ String($0.params) }, 6))
        ms = take(6)
        from = take(min(12, longest(fromText, 4)))
        n = take(2)
        args = room > 6 ? room - 1 : 0
    }

    func header() -> String {
        var s = pad("#", 3, right: true) + " "
        if from > 0 { s += pad("from", from) + " " }
        if n > 0 { s += pad("n", n, right: true) + " " }
        if params > 0 { s += pad("params", params, right: true) + " " }
        s += pad("module", module) + " "
        if args > 0 { s += pad("arguments", args) + " " }
        if shape > 0 { s += pad("output", shape) + " " }
        if ms > 0 { s += pad("ms", ms, right: true) }
        return s
    }

    func line(index: String, from f: String, n r: String, params p: String, module m: String, args a: String, shape sh: String, ms t: String) -> String {
        var s = pad(index, 3, right: true) + " "
        if from > 0 { s += pad(clip(f, from), from) + " " }
        if n > 0 { s += pad(r, n, right: true) + " " }
        if params > 0 { s += pad(p, params, right: true) + " " }
        s += pad(m.hasPrefix("  ") ? clipHead(m, module) : clip(m, module), module) + " "
        if args > 0 { s += pad(clip(a, args), args) + " " }
        if shape > 0 { s += pad(clip(sh, shape), shape) + " " }
        if ms > 0 { s += pad(t, ms, right: true) }
        return s
    }
}

/// A sub-module row cut to `n` columns from the front of its path, keeping its indent and the end (the node's own
/// name and op): "  …attn.Softmax Softmax".
func clipHead(_ s: String, _ n: Int) -> String {
    let scalars = Array(s.unicodeScalars)
    guard scalars.count > n, n > 3 else { return clip(s, n) }
    return "  …" + String(String.UnicodeScalarView(scalars.suffix(n - 3)))
}

/// A row's `from` as ultralytics prints it: -1, or [-1, 6].
func fromText(_ row: LayerRow) -> String {
    row.from.count == 1 ? String(row.from[0]) : "[" + row.from.map(String.init).joined(separator: ",") + "]"
}

func layerLines(_ state: State, width: Int = 200) -> [LayerLine] {
    let rows = state.layerRows
    let cols = LayerColumns(width: width, rows: rows)
    let trace = state.result?.trace
    var out: [LayerLine] = []
    for (i, row) in rows.enumerated() {
        var shape = row.outputShape
        var ms = ""
        if let trace, let idx = state.index, i < idx.steps.count, let si = idx.steps[i] {
            shape = trace.steps[si].outputShape
            ms = String(format: "%.1f", trace.steps[si].seconds * 1000)
        }
        let from = fromText(row)
        let marker = row.children.isEmpty ? " " : (state.expanded.contains(i) ? "▾" : "▸")
        out.append(LayerLine(row: i, child: nil, text: cols.line(index: String(row.index), from: from, n: String(row.repeats),
                                                               params: String(row.params), module: marker + shortModule(row.module),
                                                               args: row.arguments, shape: shape.isEmpty ? "" : shapeText(shape), ms: ms)))
        if state.expanded.contains(i) {
            for (k, c) in row.children.enumerated() {
                out.append(LayerLine(row: i, child: k, text: cols.line(index: "", from: "", n: "", params: String(c.params),
                                                                     module: "  " + c.module, args: c.arguments,
                                                                     shape: c.outputShape.isEmpty ? "" : shapeText(c.outputShape), ms: "")))
            }
        }
    }
    return out
}

func drawLayers(_ state: State, _ screen: inout Screen, _ r: Rect) {
    let theme = state.theme
    let focused = state.focus == .layers
    var title = "Layers"
    if let o = state.opened {
        let params = o.rows.reduce(0) { $0 + $1.params }
        title += " · \(o.family) · \(humanCount(Double(params))) params"
    }
    screen.frame(r, title: title, style: theme.style(focused ? .borderFocus : .border), titleStyle: theme.style(.title))
    let inner = r.inset(1)
    guard inner.height > 1 else { return }
    let cols = LayerColumns(width: inner.width, rows: state.layerRows)
    screen.text(inner.x, inner.y, cols.header(), theme.style(.header), maxWidth: inner.width)
    let lines = layerLines(state, width: inner.width)
    if lines.isEmpty {
        let msg: String
        switch state.phase {
        case .opening: msg = "opening \(state.modelID ?? "")…"
        case .failed(let m): msg = m
        default: msg = "no layers"
        }
        for (i, l) in wrap(msg, width: inner.width).prefix(inner.height - 1).enumerated() {
            screen.text(inner.x, inner.y + 1 + i, l, theme.style(state.phase == .failed(msg) ? .error : .dim))
        }
        return
    }
    let body = inner.height - 1
    let selectedLine = lines.firstIndex { $0.row == state.layer && $0.child == state.child } ?? 0
    let scroll = scrollOffset(selection: selectedLine, count: lines.count, height: body)
    let ran = state.index
    for (i, line) in lines.enumerated().dropFirst(scroll).prefix(body) {
        let y = inner.y + 1 + i - scroll
        var style = theme.style(line.child == nil ? .text : .dim)
        if let ran, line.row < ran.steps.count, ran.steps[line.row] == nil { style = theme.style(.dim) }
        if case .running(let done, _) = state.phase, line.row >= done { style = theme.style(.dim) }
        if line.row == state.layer && line.child == state.child { style = theme.style(focused ? .selected : .selectedDim) }
        else if line.row == state.layer && line.child == nil { style = theme.style(.accent) }
        screen.text(inner.x, y, pad(line.text, inner.width), style, maxWidth: inner.width)
    }
}

// MARK: - Visual pane

func drawVisualPane(_ state: State, _ screen: inout Screen, _ r: Rect) {
    let theme = state.theme
    let rows = state.layerRows
    var title = "Visual"
    if state.layer < rows.count {
        let row = rows[state.layer]
        title = "Layer \(row.index) · \(shortModule(row.module))"
    }
    screen.frame(r, title: title, style: theme.style(state.focus == .visual ? .borderFocus : .border), titleStyle: theme.style(.title))
    let inner = r.inset(1)
    if case .running(let done, let total) = state.phase, state.result == nil {
        screen.text(inner.x, inner.y, "forward pass on \(state.imageLabel)… (Esc cancels)", theme.style(.accent), maxWidth: inner.width)
        drawProgress(&screen, x: inner.x, y: inner.y + 2, width: inner.width, done: done, total: total, theme: theme)
        return
    }
    if case .opening = state.phase {
        screen.text(inner.x, inner.y, "opening \(state.modelID ?? "the model")… (Esc cancels)", theme.style(.accent), maxWidth: inner.width)
        return
    }
    drawVisual(state, into: &screen, inner: inner, paneRect: r)
}

// MARK: - Status bar, prompt, help

/// The mode word shown in the status bar for the current visual.
func modeText(_ state: State) -> String {
    switch currentVisualKind(state) {
    case .featureMap where camShown(state): return state.cam == .boxes ? "EigenCAM in boxes" : "EigenCAM"
    case .featureMap: return state.channelMode == .single ? "featuremap ch \(state.channel)" : "featuremap \(state.channelMode.rawValue)"
    case .attention: return "attention " + (state.head >= 0 ? "head \(state.head)" : "mean")
    case .channelWeights: return "channel weights"
    case .spatial: return "spatial weights"
    case .sampling: return "sampling q\(state.query) " + (state.head >= 0 ? "h\(state.head)" : "h*") + " " + (state.level >= 0 ? "l\(state.level)" : "l*")
    case .detections: return "detections"
    case .refinedBoxes(let r): return state.aggregate ? "boxes \(layerName(r.layer)) all ≥ conf" : "boxes q\(state.query) \(layerName(r.layer))"
    case .querySelection: return "query selection q\(state.query)" + (state.level >= 0 ? " l\(state.level)" : "")
    case .edgeDistributions(let e): return "edges q\(state.query) L\(e.layer)"
    case .other: return "tensor"
    case .none: return "—"
    }
}

func drawStatus(_ state: State, _ screen: inout Screen, _ r: Rect) {
    let theme = state.theme
    let st = theme.style(.status)
    screen.fill(r, Cell(" ", fg: st.fg, bg: st.bg, attrs: st.attrs))
    if let p = state.prompt {
        drawPrompt(state, p, &screen, r)
        return
    }
    var parts: [String] = []
    switch state.mode {
    case .browse:
        let n = state.filter.isEmpty ? state.catalogue.entries.count : state.catalogue.search(state.filter).count
        parts.append("catalogue \(n) entries")
        if let e = state.selectedEntry { parts.append(e.id) }
    case .model:
        parts.append("model \(state.opened?.name ?? state.modelID ?? "")")
        let rows = state.layerRows
        if state.layer < rows.count {
            parts.append("layer \(rows[state.layer].index)/\(max(0, rows.count - 1)) \(shortModule(rows[state.layer].module))")
            let shape = currentStep(state)?.outputShape ?? rows[state.layer].outputShape
            if !shape.isEmpty { parts.append(shapeText(shape)) }
        }
        switch state.phase {
        case .running(let d, let t): parts.append("running \(d)/\(t)")
        case .opening: parts.append("opening")
        case .failed: parts.append("failed")
        case .cancelled: parts.append("cancelled")
        default: parts.append(modeText(state))
        }
        switch currentVisualKind(state) {
        case .detections, .sampling, .refinedBoxes, .querySelection, .edgeDistributions:
            if runsUntrained(state), state.result != nil { parts.append("untrained weights: detections are meaningless") }
        default: break
        }
        if let c = state.compare {
            switch c.phase {
            case .opening, .running: parts.append("B running")
            case .failed: parts.append("B failed")
            default: if compareShown(state) { parts.append("compare row \(c.row + 1)/\(c.aligned.count)") }
            }
        }
        parts.append(state.colormap.rawValue)
        if overlayShown(state) { parts.append("over image") }
        if let note = colorModeNote(state) { parts.append(note) }
        if state.playing { parts.append("▶ playing") }
    }
    if let id = state.downloading {
        parts.insert(downloadText(id, state.downloadProgress), at: 0)
    }
    var left = " " + parts.joined(separator: " │ ")
    if let n = state.notice { left += " │ " + n }
    let long = state.mode == .browse ? "/ search  Enter run  ? help  q quit " : "n/p step  v view  Tab pane  ? help  Esc back "
    let keys = r.width >= left.count + long.count + 2 ? long : " ? help "
    let room = r.width - keys.count
    if room > 10 {
        screen.text(0, r.y, clip(left, room - 1), st, maxWidth: room - 1)
        screen.text(room, r.y, keys, theme.style(.statusKey))
    } else {
        screen.text(0, r.y, clip(left, r.width), st, maxWidth: r.width)
    }
}

func drawHelp(_ state: State, _ screen: inout Screen) {
    let theme = state.theme
    let helpText = helpText
    let w = min(screen.width - 2, 100), h = min(screen.height - 2, helpText.count + 2)
    let r = Rect(x: (screen.width - w) / 2, y: (screen.height - h) / 2, width: w, height: h)
    // Pixel-mode pictures would show through the help's blank cells: the help hides them.
    screen.images.removeAll()
    screen.fill(r, Cell(" "))
    screen.frame(r, title: "Help", style: theme.style(.borderFocus), titleStyle: theme.style(.title))
    let inner = r.inset(1)
    let scroll = max(0, min(state.helpScroll, helpText.count - inner.height))  // G leaves helpScroll past the end
    for (i, l) in helpText.dropFirst(scroll).prefix(inner.height).enumerated() {
        let role: Theme.Role = l.hasPrefix("  ") || l.isEmpty ? .text : .header
        screen.text(inner.x, inner.y + i, l, theme.style(role), maxWidth: inner.width)
    }
    if helpText.count > inner.height {
        let more = "\(scroll + 1)-\(min(helpText.count, scroll + inner.height))/\(helpText.count)"
        screen.text(r.maxX - more.count - 2, r.maxY - 1, more, theme.style(.dim))
    }
}

/// The prompt line: its label, the text with the cursor (reverse video) or the selected value, the problem
/// with the value if Enter found one, and Tab's candidates on the line above.
func drawPrompt(_ state: State, _ p: Prompt, _ screen: inout Screen, _ r: Rect) {
    let theme = state.theme
    let key = theme.style(.statusKey)
    var x = screen.text(0, r.y, p.label, key, maxWidth: r.width)
    let room = r.width - x - 1
    guard room > 4 else { return }
    let chars = Array(p.text)
    // Keep the cursor in view: show the tail of a long line.
    let start = max(0, min(p.cursor, chars.count) - (room - 1))
    let visible = Array(chars[start ..< min(chars.count, start + room)])
    var sel = theme.style(.selected)
    if p.selected { sel.attrs.insert(.reverse) }
    for (i, ch) in visible.enumerated() {
        var style = p.selected ? sel : key
        if !p.selected, start + i == p.cursor { style.attrs.insert(.reverse) }
        x += screen.text(x, r.y, String(ch), style)
    }
    if p.cursor >= chars.count || p.selected {
        var cur = key
        cur.attrs.insert(.reverse)
        x += screen.text(x, r.y, " ", cur)
    }
    if let n = state.notice, x + 4 < r.width {
        screen.text(x + 2, r.y, clip(n, r.width - x - 2), theme.style(.warning), maxWidth: r.width - x - 2)
    }
    if !p.candidates.isEmpty, r.y > 0 {
        let line = " " + p.candidates.joined(separator: "  ")
        screen.fill(Rect(x: 0, y: r.y - 1, width: r.width, height: 1), Cell(" ", fg: theme.style(.status).fg, bg: theme.style(.status).bg))
        screen.text(0, r.y - 1, clip(line, r.width), theme.style(.status), maxWidth: r.width)
    }
}

/// A module type without its Python package path (see `LayerRow.typeName`); a Hugging Face row, named by its
/// state-dict path and type ("model.encoder RTDetrHybridEncoder"), without the "model." every such row starts with.
func shortModule(_ m: String) -> String {
    if m.hasPrefix("model."), m.contains(" ") { return String(m.dropFirst("model.".count)) }
    return LayerRow(index: 0, from: [], repeats: 1, params: 0, module: m, arguments: "", flops: 0, outputShape: []).typeName
}
