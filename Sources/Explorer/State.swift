import Foundation
import ModelZoo
import Tensor

/// The explorer's value state, its messages, and `update(&state, message) -> Effect`.

/// A key as the explorer sees it.
public enum Key: Equatable, Sendable {
    case char(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backTab, backspace
    /// Ctrl + a letter (lowercase), e.g. `.ctrl("l")` to redraw, `.ctrl("c")` to leave.
    case ctrl(Character)
}

/// What a background run reports when it has opened the model (before the forward pass).
public struct OpenedModel: Sendable {
    public var name: String
    public var family: String
    public var rows: [LayerRow]
    public var inputSize: GridSize
    public var classNames: [String]
    /// The family's confidence threshold (ultralytics 0.25, transformers 0.5).
    public var defaultConfidence: Float = 0.25
    /// The model's largest stride: input sides must be multiples of it (1: any size).
    public var stride: Int
    /// The model runs with its seeded default initialisation: its detections mean nothing.
    public var untrained: Bool
    public init(name: String, family: String, rows: [LayerRow], inputSize: GridSize, classNames: [String], stride: Int = 1,
                untrained: Bool = false, defaultConfidence: Float = 0.25) {
        self.defaultConfidence = defaultConfidence
        self.name = name
        self.family = family
        self.rows = rows
        self.inputSize = inputSize
        self.classNames = classNames
        self.stride = stride
        self.untrained = untrained
    }
}

/// What a finished forward pass hands back.
public struct RunResult: Sendable {
    public var trace: TraceSnapshot
    public var detections: [Detection]
    /// The model input as an RGB picture in [0, 1], [3, H, W] (for laying maps over the image).
    public var image: Tensor?
    public var seconds: Double
    public init(trace: TraceSnapshot, detections: [Detection], image: Tensor?, seconds: Double) {
        self.trace = trace
        self.detections = detections
        self.image = image
        self.seconds = seconds
    }
}

public enum Message: Sendable {
    case key(Key)
    /// A mouse click at a cell.
    case click(x: Int, y: Int)
    /// The mouse wheel over a cell.
    case scroll(up: Bool, x: Int, y: Int)
    case resize(width: Int, height: Int)
    case opened(OpenedModel)
    case progress(done: Int, total: Int)
    case finished(RunResult)
    case failed(String)
    /// How far the download of pretrained weights (W) is.
    case downloadProgress(WeightsProgress)
    /// Pretrained weights of a catalogue entry are in the cache: the file (or directory) to open.
    case downloaded(id: String, path: String)
    case downloadFailed(String)
    /// The weights file is a checkpoint of another model (its keys do not fit the open one).
    case weightsCarryModel(file: String, problems: Int)
    /// A timer tick (play mode).
    case tick
    /// An EigenCAM computed off the UI thread is in the cache (its key): draw again.
    case camReady(StorageKey)
    /// Params and FLOPs of a catalogue entry, from its model's layer table (computed in the background).
    case described(id: String, figures: ModelFigures)
    /// Compare mode: model B opened, ran, or failed (the same steps as A's, from the second runner).
    case compareOpened(OpenedModel)
    case compareProgress(done: Int, total: Int)
    case compareFinished(RunResult)
    case compareFailed(String)
}

/// A model's size from its layer table.
public struct ModelFigures: Sendable, Equatable {
    public var params: Int
    public var flops: Double
    public var inputSize: Int
    public var layers: Int
    public var error: String?
    public init(params: Int, flops: Double, inputSize: Int, layers: Int, error: String? = nil) {
        self.params = params
        self.flops = flops
        self.inputSize = inputSize
        self.layers = layers
        self.error = error
    }
}

/// What to run: a catalogue id (or path), weights (nil = default init), an image, an input size.
public struct RunRequest: Equatable, Sendable {
    public var model: String
    public var weights: String?
    public var image: String?
    public var inputSize: Int?
    /// The confidence threshold shown (nil: the family's default).
    public var confidence: Float?
    /// Compare mode's B with `--share-weights`: the model A (and its weights) whose tensors B takes in every aligned row.
    public var shareWeightsFrom: String?
    public var shareWeightsFromWeights: String?
    public init(model: String, weights: String? = nil, image: String? = nil, inputSize: Int? = nil, confidence: Float? = nil) {
        self.model = model
        self.weights = weights
        self.image = image
        self.inputSize = inputSize
        self.confidence = confidence
    }
}

public enum Effect: Equatable, Sendable {
    case none
    case quit
    /// Forget the drawn screen and draw everything again.
    case redraw
    case run(RunRequest)
    /// Run model B of compare mode (on A's image and input size).
    case runCompare(RunRequest)
    case cancel
    /// Fetch a catalogue entry's pretrained weights into the cache (progress comes back as messages).
    case download(CatalogueEntry)
    case cancelDownload
}

public enum Pane: Sendable, Equatable { case catalogue, details, layers, visual }

public enum Mode: Sendable, Equatable { case browse, model }

/// How a feature map's channels are shown.
public enum ChannelMode: String, Sendable, CaseIterable {
    case single, grid, mean, max
    var next: ChannelMode {
        let all = ChannelMode.allCases
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }
}

/// EigenCAM on feature-map visuals (`E`): off, the layer's CAM over the image, or the CAM renormalised inside
/// each detection box.
public enum CAMMode: String, Sendable, CaseIterable {
    case off, cam, boxes
    var next: CAMMode {
        let all = CAMMode.allCases
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }
}

/// The run state of the current model.
public enum RunPhase: Sendable, Equatable {
    case idle
    case opening
    case running(done: Int, total: Int)
    case done
    case failed(String)
    case cancelled
}

/// Everything the explorer shows is a function of this value.
public struct State: Sendable {
    // Catalogue
    public var catalogue: Catalogue
    public var collapsed: Set<String> = []
    public var selection = 0
    public var catalogueScroll = 0
    public var filter = ""
    public var detailsScroll = 0
    /// Params/FLOPs of entries whose layer table has been computed.
    public var described: [String: ModelFigures] = [:]

    // Where we are
    public var mode: Mode = .browse
    public var focus: Pane = .catalogue
    public var prompt: Prompt?
    public var showHelp = false
    public var helpScroll = 0
    public var notice: String?
    /// The catalogue entry whose pretrained weights are being fetched, and how far it is.
    public var downloading: String?
    public var downloadProgress: WeightsProgress?
    /// A model file the status bar offers to open (`y`), e.g. a weights file that holds its own model.
    public var offer: String?

    // Inputs of a run
    public var images: [URL]
    public var imageIndex = 0
    /// A path typed by the user (takes precedence over the samples).
    public var imagePath: String?
    public var inputSize: Int?
    public var weights: String?
    /// A model file opened with `O` or named on the command line (shown as the model).
    public var modelPath: String?
    /// Detections scoring at or below this are not shown (nil: the model family's default, ultralytics' 0.25,
    /// transformers' 0.5).
    public var confidence: Float?

    // The open model
    public var modelID: String?
    public var opened: OpenedModel?
    public var phase: RunPhase = .idle
    public var result: RunResult?
    /// Per layer row, the indices of its trace step and probes (filled when a run finishes).
    public var index: TraceIndex?
    /// Compare mode (`--compare B`, or K): model B, its run, and the two layer tables aligned.
    public var compare: CompareSession?

    // Model view
    public var layer = 0
    /// The selected sub-module row of the expanded layer, if the selection is on one.
    public var child: Int?
    public var layerScroll = 0
    public var expanded: Set<Int> = []
    public var playing = false

    // Visual view
    public var visual = 0
    public var channel = 0
    public var channelMode: ChannelMode = .single
    public var cursor = (x: 0, y: 0)
    public var head = -1
    public var level = -1
    public var query = 0
    public var detectionPick = 0
    /// The DETR view (or decoder sampling) the user is stepping rows with, kept across rows that have none of it.
    public var wantedKind: String?
    public var aggregate = false
    public var overlay = false
    /// EigenCAM instead of the channel map on feature-map visuals (`E`; kept while stepping through layers).
    public var cam: CAMMode = .off
    /// Set by the interactive explorer: a CAM not computed yet is computed off the UI thread (the view says so
    /// meanwhile) instead of inside `view` (as `render` and the tests have it).
    public var camInBackground = false
    /// The CAM's sign rule (`render --cam-sign`; the explorer keeps LAPACK's, as pytorch-grad-cam).
    public var camSign: EigenCAM.Sign = .lapack
    public var colormap: Colormap = .viridis
    // Map drawing (Visuals.swift): the colour range rule (`%`), per-thumbnail ranges in grid mode (`R`), and
    // whether key hints and the cursor are drawn (`render` draws neither unless a query is given).
    public var rangeMode: RangeMode = .percentile
    public var gridOwnRange = false
    public var keyHints = true
    public var showCursor = true

    // Rendering
    public var render: RenderOptions
    public var size = (width: 80, height: 24)

    public init(catalogue: Catalogue, images: [URL] = Assets.sampleImages, render: RenderOptions = RenderOptions()) {
        self.catalogue = catalogue
        self.images = images
        self.render = render
    }

    public var theme: Theme { Theme(monochrome: render.colorMode == .none) }

    /// The catalogue tree as visible rows: family headers and (unless collapsed) their entries.
    public var treeRows: [TreeRow] {
        let entries = filter.isEmpty ? catalogue.entries : catalogue.search(filter)
        var rows: [TreeRow] = []
        // Searching, families come in the order of their best match (search ranks best first).
        var families = catalogue.families
        if !filter.isEmpty {
            families = []
            for e in entries where !families.contains(e.family) { families.append(e.family) }
        }
        for family in families {
            let members = entries.filter { $0.family == family }
            if members.isEmpty { continue }
            rows.append(.family(family, count: members.count))
            if !collapsed.contains(family) || !filter.isEmpty {
                for e in members { rows.append(.entry(e)) }
            }
        }
        return rows
    }

    /// The selected catalogue entry, if the selection is on one.
    public var selectedEntry: CatalogueEntry? {
        let rows = treeRows
        guard selection >= 0, selection < rows.count, case .entry(let e) = rows[selection] else { return nil }
        return e
    }

    /// The layer rows of the open model: its layer table, or rows made from the trace when it has none.
    public var layerRows: [LayerRow] {
        if let rows = opened?.rows, !rows.isEmpty { return rows }
        guard let trace = result?.trace else { return [] }
        return trace.steps.map {
            LayerRow(index: $0.index, from: [-1], repeats: 1, params: $0.params, module: $0.moduleType,
                     arguments: $0.path, flops: $0.flops, outputShape: $0.outputShape)
        }
    }

    public var imageLabel: String {
        if let p = imagePath { return (p as NSString).lastPathComponent }
        guard !images.isEmpty else { return "(no image)" }
        return images[imageIndex % images.count].lastPathComponent
    }

    /// The request that runs the open (or selected) model with the chosen inputs.
    public func runRequest(for id: String) -> RunRequest {
        let img = imagePath ?? (images.isEmpty ? nil : images[imageIndex % images.count].path)
        return RunRequest(model: id, weights: weights, image: img, inputSize: inputSize, confidence: confidence)
    }

    public var isRunning: Bool {
        switch phase {
        case .opening, .running: return true
        default: return false
        }
    }
}

public enum TreeRow: Sendable, Equatable {
    case family(String, count: Int)
    case entry(CatalogueEntry)
}

/// Which trace step and probes belong to each layer row, computed once per finished run.
public struct TraceIndex: Sendable {
    /// Row position -> step position in the trace (nil when the layer did not run).
    public var steps: [Int?]
    /// Row position -> probe positions recorded under the step's path.
    public var probes: [[Int]]

    public init(rows: [LayerRow], trace: TraceSnapshot) {
        var byIndex: [Int: Int] = [:]
        for (i, s) in trace.steps.enumerated() where byIndex[s.index] == nil { byIndex[s.index] = i }
        steps = rows.map { byIndex[$0.index] }
        // A probe belongs to the row of the longest step path it is recorded under (a query selection run as
        // `model` does not take the probes of `model.decoder`).
        let paths = steps.map { $0.map { trace.steps[$0].path } }
        probes = paths.map { _ in [] }
        for (i, p) in trace.probes.enumerated() {
            var longest = -1
            for case let path? in paths where path.count > longest && (p.path == path || p.path.hasPrefix(path + ".")) { longest = path.count }
            guard longest >= 0 else { continue }
            for (row, path) in paths.enumerated() where path?.count == longest && (p.path == path! || p.path.hasPrefix(path! + ".")) {
                probes[row].append(i)
            }
        }
        // Final detections belong to the last layer (the head), wherever the model recorded them.
        if let last = probes.indices.last {
            let assigned = Set(probes.joined())
            for (i, p) in trace.probes.enumerated() where !assigned.contains(i) {
                if case .detections = p.data { probes[last].append(i) }
            }
        }
    }
}

// MARK: - update

public func update(_ state: inout State, _ message: Message) -> Effect {
    switch message {
    case .resize(let w, let h):
        state.size = (w, h)
        return .redraw
    case .described(let id, let figures):
        state.described[id] = figures
        return .none
    case .opened(let m):
        state.opened = m
        if let id = state.modelID, !m.rows.isEmpty {
            state.described[id] = ModelFigures(params: m.rows.reduce(0) { $0 + $1.params }, flops: m.rows.reduce(0) { $0 + $1.flops },
                                               inputSize: m.inputSize.width, layers: m.rows.count)
        }
        state.layer = min(state.layer, max(0, m.rows.count - 1))
        if case .opening = state.phase { state.phase = .running(done: 0, total: m.rows.count) }
        return .none
    case .progress(let done, let total):
        if state.isRunning { state.phase = .running(done: done, total: total) }
        return .none
    case .finished(let r):
        state.result = r
        state.phase = .done
        state.index = TraceIndex(rows: state.layerRows, trace: r.trace)
        // Decoder views start on the query of the best detection.
        let dets = currentDetections(state)
        if let best = dets.indices.max(by: { dets[$0].score < dets[$1].score }) {
            state.detectionPick = best
            state.query = dets[best].source
        }
        let shown = currentDetections(state).count
        state.notice = String(format: "forward pass: %.2f s, %d detection%@ at conf %g", r.seconds, shown, shown == 1 ? "" : "s", confidenceThreshold(state))
        if runsUntrained(state) { state.notice! += " · untrained weights: detections are meaningless" }
        clampVisual(&state)
        return startCompareRun(&state)
    case .failed(let msg):
        state.phase = .failed(msg)
        state.notice = msg
        return .none
    case .downloadProgress(let p):
        if state.downloading != nil { state.downloadProgress = p }
        return .none
    case .downloaded(let id, let path):
        guard state.downloading == id else { return .none }
        state.downloading = nil
        state.downloadProgress = nil
        state.modelPath = path
        state.weights = nil
        state.notice = "pretrained weights of \(id): \((path as NSString).lastPathComponent)"
        return openModel(&state, path)
    case .downloadFailed(let msg):
        state.downloading = nil
        state.downloadProgress = nil
        state.notice = msg
        return .none
    case .weightsCarryModel(let file, let problems):
        let name = (file as NSString).lastPathComponent
        let msg = "\(name) holds its own model: its keys do not fit \(state.opened?.name ?? state.modelID ?? "this model") (\(problems) problems)"
        state.phase = .failed(msg + ". Press y to open \(name) as the model, or w for other weights.")
        state.notice = msg + " · y: open it as the model"
        state.offer = file
        return .none
    case .camReady:
        return .none
    case .compareOpened, .compareProgress, .compareFinished, .compareFailed:
        return updateCompare(&state, message)
    case .tick:
        guard state.playing, state.mode == .model else { return .none }
        if state.layer + 1 < state.layerRows.count {
            stepLayer(&state, 1)
        } else {
            state.playing = false
        }
        return .none
    case .scroll(let up, let x, let y):
        // The wheel scrolls the pane under the pointer.
        if state.showHelp { state.helpScroll = max(0, state.helpScroll + (up ? -3 : 3)); return .none }
        let layout = Layout(state: state)
        let overRight = layout.right.contains(x: x, y: y)
        switch state.mode {
        case .browse:
            if overRight { state.detailsScroll = max(0, state.detailsScroll + (up ? -3 : 3)) } else { moveSelection(&state, up ? -3 : 3) }
        case .model:
            if overRight { cycleChannel(&state, up ? -1 : 1) } else { stepRow(&state, up ? -1 : 1) }
        }
        return .none
    case .click(let x, let y):
        return click(&state, x: x, y: y)
    case .key(let key):
        return handleKey(&state, key)
    }
}

func firstEntryRow(_ state: State) -> Int {
    state.treeRows.firstIndex { if case .entry = $0 { return true } else { return false } } ?? 0
}

func moveSelection(_ state: inout State, _ delta: Int) {
    let n = state.treeRows.count
    guard n > 0 else { state.selection = 0; return }
    state.selection = max(0, min(n - 1, state.selection + delta))
    state.detailsScroll = 0
}

/// Switches to the model view and asks for a run of `id` with the chosen inputs.
func openModel(_ state: inout State, _ id: String) -> Effect {
    if state.modelID != id {
        state.layer = 0
        state.layerScroll = 0
        state.expanded = []
        state.opened = nil
        resetVisual(&state)
    }
    state.modelID = id
    state.mode = .model
    state.focus = .layers
    state.result = nil
    state.index = nil
    state.playing = false
    state.phase = .opening
    // B runs again after A (on A's image and input size).
    state.compare?.reset()
    return .run(state.runRequest(for: id))
}

func resetVisual(_ state: inout State) {
    state.visual = 0
    state.channel = 0
    state.channelMode = .single
    state.cursor = (0, 0)
    state.head = -1
    state.level = -1
    state.query = 0
    state.detectionPick = 0
    state.wantedKind = nil
    state.aggregate = false
}

func stepLayer(_ state: inout State, _ delta: Int) {
    if compareShown(state) { stepAligned(&state, delta); return }
    let n = state.layerRows.count
    guard n > 0 else { return }
    let old = state.layer
    let kind = keptVisualKind(state) ?? state.wantedKind
    state.layer = max(0, min(n - 1, state.layer + delta))
    if state.layer != old || state.child != nil {
        state.child = nil
        selectVisual(&state, like: kind)
        state.channel = min(state.channel, max(0, channelCount(state) - 1))
        clampVisual(&state)
    }
}

/// The dotted trace path of the selected sub-module row (e.g. `model.2.m.0`), if the selection is on one.
func selectedChildPath(_ state: State) -> String? {
    guard let child = state.child, let step = currentStep(state), state.layer < state.layerRows.count else { return nil }
    let kids = state.layerRows[state.layer].children
    guard child < kids.count, let name = kids[child].module.split(separator: " ").first else { return nil }
    return step.path + "." + name
}

/// Moves the selection through the layer table's visible lines: layers and the sub-module rows of expanded ones.
func stepRow(_ state: inout State, _ delta: Int) {
    if compareShown(state) { stepAligned(&state, delta); return }
    let lines = layerLines(state)
    guard !lines.isEmpty else { return }
    let here = lines.firstIndex { $0.row == state.layer && $0.child == state.child } ?? 0
    let target = lines[max(0, min(lines.count - 1, here + delta))]
    let kind = keptVisualKind(state) ?? state.wantedKind
    if target.row != state.layer { stepLayer(&state, target.row - state.layer) }
    if state.child != target.child {
        state.child = target.child
        selectVisual(&state, like: kind)
        clampVisual(&state)
    }
}

/// The kinds of visual that stepping to another row keeps showing when the row has one (so that stepping through
/// decoder layers stays on their boxes, edge distributions or sampling points); nil for every other kind.
func keptVisualKind(_ state: State) -> String? {
    guard state.result != nil else { return nil }
    switch currentVisualKind(state) {
    case .refinedBoxes: return "refined boxes"
    case .querySelection: return "query selection"
    case .edgeDistributions: return "edge distributions"
    case .sampling(let s) where s.queryLevels == nil: return "decoder sampling"
    default: return nil
    }
}

/// The row's first visual of `kind` (as `keptVisualKind` names it), else its first visual; the kind stays wanted
/// for the rows after one without it.
func selectVisual(_ state: inout State, like kind: String?) {
    state.visual = 0
    state.wantedKind = kind
    guard let kind else { return }
    for i in visualSources(state).indices {
        state.visual = i
        if keptVisualKind(state) == kind { return }
    }
    state.visual = 0
}

func moveCursor(_ state: inout State, _ dx: Int, _ dy: Int) {
    if case .channelWeights = currentVisualKind(state) {
        let n = channelCount(state)
        if n > 0 { state.channel = max(0, min(n - 1, state.channel + dx + dy)) }
        return
    }
    let queries = queryCountOfVisual(state)
    if queries > 0 {
        // Decoder queries: the cursor steps through queries.
        state.query = max(0, min(queries - 1, state.query + dx + dy))
        return
    }
    guard let g = cursorGrid(state) else { return }
    state.cursor.x = max(0, min(g.width - 1, state.cursor.x + dx))
    state.cursor.y = max(0, min(g.height - 1, state.cursor.y + dy))
    if case .sampling(let s) = currentVisualKind(state), let q = encoderQuery(s, level: max(0, state.level), x: state.cursor.x, y: state.cursor.y) {
        state.query = q
    }
}

/// Keeps channel, head, level, query and cursor inside what the current visual holds.
func clampVisual(_ state: inout State) {
    let sources = visualSources(state)
    if state.visual >= sources.count { state.visual = 0 }
    let n = channelCount(state)
    state.channel = n > 0 ? max(0, min(n - 1, state.channel)) : 0
    let heads = headCount(state)
    if state.head >= heads { state.head = -1 }
    let levels = levelCount(state)
    if state.level >= levels { state.level = -1 }
    if case .sampling(let s) = currentVisualKind(state) {
        state.query = max(0, min(s.queries - 1, state.query))
    }
    let queries = queryCountOfVisual(state)
    if queries > 0 { state.query = max(0, min(queries - 1, state.query)) }
    if let g = cursorGrid(state) {
        state.cursor.x = max(0, min(g.width - 1, state.cursor.x))
        state.cursor.y = max(0, min(g.height - 1, state.cursor.y))
    }
}

/// The encoder query index at grid position (x, y) of `level` (for pixel queries).
func encoderQuery(_ s: SamplingPoints, level: Int, x: Int, y: Int) -> Int? {
    guard s.queryLevels != nil, level < s.levelShapes.count else { return nil }
    var offset = 0
    for l in 0 ..< level { offset += s.levelShapes[l].count }
    let g = s.levelShapes[level]
    let q = offset + y * g.width + x
    return q < s.queries ? q : nil
}

// MARK: - clicks

func click(_ state: inout State, x: Int, y: Int) -> Effect {
    let layout = Layout(state: state)
    if state.showHelp { state.showHelp = false; return .none }
    switch state.mode {
    case .browse:
        if layout.left.contains(x: x, y: y) {
            state.focus = .catalogue
            let row = y - layout.left.y - 1 + state.catalogueScroll
            let rows = state.treeRows
            if row >= 0, row < rows.count {
                if row == state.selection, case .entry(let e) = rows[row] { return openModel(&state, e.id) }
                state.selection = row
                state.detailsScroll = 0
                if case .family(let f, _) = rows[row] {
                    if state.collapsed.contains(f) { state.collapsed.remove(f) } else { state.collapsed.insert(f) }
                }
            }
        } else if layout.right.contains(x: x, y: y) {
            state.focus = .details
        }
    case .model:
        if layout.left.contains(x: x, y: y), let c = state.compare, compareShown(state) {
            state.focus = .layers
            let body = layout.left.height - 4
            let line = y - layout.left.y - 2 + scrollOffset(selection: c.row, count: c.aligned.count, height: body)
            if line >= 0, line < c.aligned.count { stepAligned(&state, line - c.row) }
        } else if layout.left.contains(x: x, y: y) {
            state.focus = .layers
            let lines = layerLines(state)
            let line = y - layout.left.y - 2 + state.layerScroll
            if line >= 0, line < lines.count {
                let target = lines[line].row
                if target != state.layer { stepLayer(&state, target - state.layer) }
            }
        } else if layout.right.contains(x: x, y: y) {
            state.focus = .visual
            if let (geo, _) = visualGeometry(state, layout.right), let (mx, my) = geo.mapCoordinate(col: x, row: y) {
                if queryCountOfVisual(state) > 0 {
                    // Pick the detection nearest the click.
                    let dets = currentDetections(state)
                    if let best = nearestDetection(dets, x: mx, y: my, geo: geo) {
                        state.detectionPick = best
                        state.query = dets[best].source
                    }
                } else if let g = cursorGrid(state) {
                    state.cursor = (max(0, min(g.width - 1, Int(mx / geo.mapWidth * Float(g.width)))),
                                    max(0, min(g.height - 1, Int(my / geo.mapHeight * Float(g.height)))))
                    if case .sampling(let s) = currentVisualKind(state),
                       let q = encoderQuery(s, level: max(0, state.level), x: state.cursor.x, y: state.cursor.y) {
                        state.query = q
                    }
                }
            }
        }
    }
    return .none
}

func nearestDetection(_ dets: [Detection], x: Float, y: Float, geo: MapGeometry) -> Int? {
    guard !dets.isEmpty, let input = geo.inputSize else { return nil }
    // geo is in the map's own units; detections are in input pixels.
    let px = x / geo.mapWidth * Float(input.width), py = y / geo.mapHeight * Float(input.height)
    var best = 0
    var bestD = Float.infinity
    for (i, d) in dets.enumerated() {
        let inside = px >= d.x1 && px <= d.x2 && py >= d.y1 && py <= d.y2
        let cx = (d.x1 + d.x2) / 2, cy = (d.y1 + d.y2) / 2
        let dist = (cx - px) * (cx - px) + (cy - py) * (cy - py) - (inside ? 1e9 : 0)
        if dist < bestD { bestD = dist; best = i }
    }
    return best
}
