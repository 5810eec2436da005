import Foundation
import ModelZoo

/// Key bindings as data: each row is (keys, context, label, description, action). The one table drives both
/// the dispatch (`handleKey`) and the help overlay (`helpText`), so the help can never say something the keys
/// do not do.

/// Where a binding applies. Dispatch tries the most specific context first: a prompt or the help overlay
/// takes every key; in the model view the focused pane, then the model view, then everywhere; in the
/// catalogue, the catalogue, then everywhere.
public enum KeyContext: String, Sendable, CaseIterable {
    case prompt = "Prompts (image, weights, model, size, search)"
    case help = "This help"
    case everywhere = "Everywhere"
    case catalogue = "Catalogue"
    case model = "Model view"
    case layers = "Model view, layer table focused"
    case visual = "Model view, visual focused"
}

/// Which keys a binding takes.
public enum KeyMatch: Sendable {
    case keys([Key])
    /// 0-9.
    case digits
    /// Any printable character (typing into a prompt).
    case text

    func matches(_ key: Key) -> Bool {
        switch self {
        case .keys(let ks): return ks.contains(key)
        case .digits: if case .char(let c) = key { return c.isASCII && c.isNumber }; return false
        case .text: if case .char(let c) = key { return !c.isNewline && c != "\t" }; return false
        }
    }
}

public struct KeyBinding: Sendable {
    public var match: KeyMatch
    public var context: KeyContext
    /// The keys as the help shows them ("n p", "Ctrl-U").
    public var label: String
    public var description: String
    var action: @Sendable (inout State, Key) -> Effect

    init(_ match: KeyMatch, _ context: KeyContext, _ label: String, _ description: String,
         _ action: @escaping @Sendable (inout State, Key) -> Effect) {
        self.match = match
        self.context = context
        self.label = label
        self.description = description
        self.action = action
    }

    init(_ keys: [Key], _ context: KeyContext, _ label: String, _ description: String,
         _ action: @escaping @Sendable (inout State, Key) -> Effect) {
        self.init(.keys(keys), context, label, description, action)
    }
}

private func c(_ s: String) -> [Key] { s.map { Key.char($0) } }

/// Runs `f` and returns no effect.
private func just(_ f: @escaping @Sendable (inout State) -> Void) -> @Sendable (inout State, Key) -> Effect {
    { state, _ in f(&state); return .none }
}

/// Every key binding of the explorer.
public let keyBindings: [KeyBinding] = [
    // Prompts: a shell-like line.
    KeyBinding([.enter], .prompt, "Enter", "accept (a path or size is checked first)") { s, _ in acceptPrompt(&s) },
    KeyBinding([.escape], .prompt, "Esc", "close the prompt, nothing changes") { s, _ in cancelPrompt(&s); return .none },
    KeyBinding([.tab], .prompt, "Tab", "complete a path (twice: list the candidates)", just { completePromptPath(&$0) }),
    KeyBinding([.ctrl("u")], .prompt, "Ctrl-U", "delete to the start of the line", just { editPrompt(&$0) { $0.killToStart() } }),
    KeyBinding([.ctrl("k")], .prompt, "Ctrl-K", "delete to the end of the line", just { editPrompt(&$0) { $0.killToEnd() } }),
    KeyBinding([.ctrl("w")], .prompt, "Ctrl-W", "delete the word before the cursor", just { editPrompt(&$0) { $0.deleteWord() } }),
    KeyBinding([.ctrl("a"), .home], .prompt, "Ctrl-A Home", "to the start of the line", just { editPrompt(&$0) { $0.moveTo(0) } }),
    KeyBinding([.ctrl("e"), .end], .prompt, "Ctrl-E End", "to the end of the line", just { editPrompt(&$0) { $0.moveTo(Int.max) } }),
    KeyBinding([.left, .ctrl("b")], .prompt, "← Ctrl-B", "one character left", just { editPrompt(&$0) { $0.move(-1) } }),
    KeyBinding([.right, .ctrl("f")], .prompt, "→ Ctrl-F", "one character right", just { editPrompt(&$0) { $0.move(1) } }),
    KeyBinding([.backspace, .ctrl("h")], .prompt, "Backspace", "delete the character before the cursor (or the selection)",
               just { editPrompt(&$0) { $0.backspace() } }),
    KeyBinding([.up, .down], .prompt, "↑ ↓", "(search) move through the matches") { s, key in
        if s.prompt?.purpose == .search { moveSelection(&s, key == .down ? 1 : -1) }
        return .none
    },
    KeyBinding(.text, .prompt, "text", "types at the cursor (replaces the selected value)", { s, key in
        if case .char(let ch) = key { editPrompt(&s) { $0.insert(ch) } }
        return .none
    }),

    // The help overlay.
    KeyBinding([.char("?"), .escape, .char("q")], .help, "? Esc q", "close this help", just { $0.showHelp = false }),
    KeyBinding([.down, .char("j")], .help, "↓ j", "scroll down", just { $0.helpScroll += 1 }),
    KeyBinding([.up, .char("k")], .help, "↑ k", "scroll up", just { $0.helpScroll = max(0, $0.helpScroll - 1) }),
    KeyBinding([.pageDown, .char(" ")], .help, "PgDn Space", "a page down", just { $0.helpScroll += 10 }),
    KeyBinding([.pageUp], .help, "PgUp", "a page up", just { $0.helpScroll = max(0, $0.helpScroll - 10) }),
    KeyBinding([.home, .char("g")], .help, "g Home", "to the top", just { $0.helpScroll = 0 }),
    KeyBinding([.end, .char("G")], .help, "G End", "to the bottom", just { $0.helpScroll = helpText.count }),

    // Everywhere.
    KeyBinding(c("?"), .everywhere, "?", "this help (scrolls; ? or Esc closes it)", just { $0.showHelp = true; $0.helpScroll = 0 }),
    KeyBinding(c("q") + [.ctrl("c")], .everywhere, "q Ctrl-C", "quit (Esc never quits: it goes back one level)") { _, _ in .quit },
    KeyBinding([.ctrl("l")], .everywhere, "Ctrl-L", "redraw the screen") { _, _ in .redraw },
    KeyBinding(c("y"), .everywhere, "y", "yes to the status bar's offer (open weights that hold their own model as the model)") { s, _ in
        guard let file = s.offer else { return .none }
        s.offer = nil
        s.modelPath = file
        s.weights = nil
        return openModel(&s, file)
    },
    KeyBinding(c("m"), .everywhere, "m", "next colormap (viridis, inferno, turbo, gray, diverging)",
               just { $0.colormap = $0.colormap.next }),
    KeyBinding(c("i"), .everywhere, "i", "next sample image", just { s in
        guard !s.images.isEmpty else { return }
        s.imagePath = nil
        s.imageIndex = (s.imageIndex + 1) % s.images.count
        s.notice = "image: \(s.imageLabel) (r runs again)"
    }),
    KeyBinding(c("I"), .everywhere, "I", "type an image path (Tab completes)", just { openPrompt(&$0, .imagePath, $0.imagePath ?? "") }),
    KeyBinding(c("O"), .everywhere, "O", "open a model file: checkpoint, YAML, HF directory (Tab completes)",
               just { openPrompt(&$0, .modelPath, $0.modelPath ?? "") }),
    KeyBinding(c("w"), .everywhere, "w", "type a weights file (empty: default initialisation)", just { openPrompt(&$0, .weights, $0.weights ?? "") }),
    KeyBinding(c("s"), .everywhere, "s", "type the input size (empty: the model's own)",
               just { openPrompt(&$0, .inputSize, $0.inputSize.map(String.init) ?? "") }),
    KeyBinding(c("W"), .everywhere, "W", "pretrained weights of the selected (or open) catalogue entry: download, or open from the cache") { s, _ in
        pretrainedWeights(&s)
    },
    KeyBinding(c("K"), .everywhere, "K", "compare with a second model B on the same image and size (id, YAML, checkpoint; add --share-weights to give B A's weights; empty: stop comparing)",
               just { openPrompt(&$0, .compareModel, $0.compare.map { $0.model + ($0.shareWeights ? " --share-weights" : "") } ?? "") }),
    KeyBinding(c("t"), .everywhere, "t", "type the confidence threshold: detections below it are hidden",
               just { openPrompt(&$0, .confidence, String(format: "%g", confidenceThreshold($0))) }),

    // Catalogue.
    KeyBinding([.escape], .catalogue, "Esc", "cancel a download; clear the search filter, or leave the details pane") { s, _ in
        if s.downloading != nil { return cancelDownload(&s) }
        if !s.filter.isEmpty { s.filter = ""; s.selection = firstEntryRow(s) } else if s.focus == .details { s.focus = .catalogue } else { s.notice = "q quits" }
        return .none
    },
    KeyBinding(c("/"), .catalogue, "/", "search (ids and whole words first; Enter keeps the filter, Esc clears it)", just { s in
        openPrompt(&s, .search, s.filter)
        s.focus = .catalogue
    }),
    KeyBinding([.tab, .backTab], .catalogue, "Tab", "details pane (↑↓ scroll it)", just { $0.focus = $0.focus == .catalogue ? .details : .catalogue }),
    KeyBinding([.down, .char("j")], .catalogue, "↓ j", "move down", just { s in
        if s.focus == .details { s.detailsScroll += 1 } else { moveSelection(&s, 1) }
    }),
    KeyBinding([.up, .char("k")], .catalogue, "↑ k", "move up", just { s in
        if s.focus == .details { s.detailsScroll = max(0, s.detailsScroll - 1) } else { moveSelection(&s, -1) }
    }),
    KeyBinding([.pageDown], .catalogue, "PgDn", "ten rows down", just { moveSelection(&$0, 10) }),
    KeyBinding([.pageUp], .catalogue, "PgUp", "ten rows up", just { moveSelection(&$0, -10) }),
    KeyBinding([.home, .char("g")], .catalogue, "g Home", "first row", just { $0.selection = 0 }),
    KeyBinding([.end, .char("G")], .catalogue, "G End", "last row", just { $0.selection = max(0, $0.treeRows.count - 1) }),
    KeyBinding([.left, .char("h")], .catalogue, "← h", "fold the family", just { foldFamily(&$0) }),
    KeyBinding([.right, .char("l")], .catalogue, "→ l", "unfold the family", just { s in
        let rows = s.treeRows
        if s.selection < rows.count, case .family(let f, _) = rows[s.selection] { s.collapsed.remove(f) }
    }),
    KeyBinding([.enter, .char("r")], .catalogue, "Enter r", "open the model and run it on the chosen image (on a family: fold it)") { s, _ in
        let rows = s.treeRows
        guard s.selection < rows.count else { return .none }
        switch rows[s.selection] {
        case .family(let f, _):
            if s.collapsed.contains(f) { s.collapsed.remove(f) } else { s.collapsed.insert(f) }
            return .none
        case .entry(let e):
            s.modelPath = nil
            return openModel(&s, e.id)
        }
    },
    KeyBinding(c("o"), .catalogue, "o", "back to the open model", just { s in
        if s.modelID != nil { s.mode = .model; s.focus = .layers }
    }),

    // Model view.
    KeyBinding([.escape], .model, "Esc", "cancel a download or a running forward pass; else back to the catalogue") { s, _ in
        if s.downloading != nil { return cancelDownload(&s) }
        if s.isRunning {
            s.phase = .cancelled
            s.notice = "cancelled"
            return .cancel
        }
        s.mode = .browse
        s.focus = .catalogue
        s.playing = false
        return .none
    },
    KeyBinding(c("r"), .model, "r", "run again (after changing image, size, weights or threshold)") { s, _ in
        if let id = s.modelID { return openModel(&s, id) }
        return .none
    },
    KeyBinding(c("b"), .model, "b", "back to the catalogue (the model stays open: o returns)", just { s in
        s.mode = .browse
        s.focus = .catalogue
        s.playing = false
    }),
    KeyBinding([.tab, .backTab], .model, "Tab", "switch between the layer table and the visual",
               just { $0.focus = $0.focus == .layers ? .visual : .layers }),
    KeyBinding(c("n"), .model, "n", "next layer", just { stepLayer(&$0, 1) }),
    KeyBinding(c("p"), .model, "p", "previous layer", just { stepLayer(&$0, -1) }),
    KeyBinding([.char("g"), .home], .model, "g Home", "first layer", just { stepLayer(&$0, -1_000_000) }),
    KeyBinding([.char("G"), .end], .model, "G End", "last layer", just { stepLayer(&$0, 1_000_000) }),
    KeyBinding([.pageDown], .model, "PgDn", "ten layers on", just { stepLayer(&$0, 10) }),
    KeyBinding([.pageUp], .model, "PgUp", "ten layers back", just { stepLayer(&$0, -10) }),
    KeyBinding(c(" "), .model, "Space", "play: step through the layers by itself (Space stops)", just { s in
        s.playing.toggle()
        s.notice = s.playing ? "playing (space stops)" : nil
    }),
    KeyBinding([.char("e"), .enter], .model, "e Enter", "expand a layer into its sub-modules (or fold it)", just { s in
        if s.expanded.contains(s.layer) { s.expanded.remove(s.layer); s.child = nil } else { s.expanded.insert(s.layer) }
    }),
    KeyBinding(c("v"), .model, "v", "next visual of this layer (its output, what its modules recorded)", just { cycleVisual(&$0, 1) }),
    KeyBinding(c("V"), .model, "V", "previous visual", just { cycleVisual(&$0, -1) }),
    KeyBinding(c("c"), .model, "c", "next channel (in grid mode: the next page of channels)", just { stepChannels(&$0, 1) }),
    KeyBinding(c("C"), .model, "C", "previous channel (grid: previous page)", just { stepChannels(&$0, -1) }),
    KeyBinding(c("a"), .model, "a", "channel mode: single, grid, mean, max", just { $0.channelMode = $0.channelMode.next }),
    KeyBinding(c("]"), .model, "]", "next head (then all heads)", just { cycleHead(&$0, 1) }),
    KeyBinding(c("["), .model, "[", "previous head", just { cycleHead(&$0, -1) }),
    KeyBinding(c("}"), .model, "}", "next level (then all levels); query selection: one level's tokens; refined boxes, edge distributions: the next decoder layer of this row", just { cycleLevel(&$0, 1) }),
    KeyBinding(c("{"), .model, "{", "previous level", just { cycleLevel(&$0, -1) }),
    KeyBinding(c(">"), .model, ">", "next detection (its query, for sampling points, refined boxes, query selection, edge distributions)", just { cycleDetection(&$0, 1) }),
    KeyBinding(c("<"), .model, "<", "previous detection", just { cycleDetection(&$0, -1) }),
    KeyBinding(c("E"), .model, "E", "EigenCAM of a feature map over the image (its first principal component, as pytorch-grad-cam); again: renormalised in each detection box; again: off",
               just { toggleCAM(&$0) }),
    KeyBinding(c("x"), .model, "x", "sampling: aggregated heatmap of all queries' point weights; refined boxes: every query of the layer scoring ≥ the threshold",
               just { $0.aggregate.toggle() }),
    KeyBinding(c("%"), .model, "%", "colour range: 1st-99th percentile (edge cells ignored), min-max, symmetric", just { cycleRange(&$0) }),
    KeyBinding(c("R"), .model, "R", "grid: one colour range for the page, or each thumbnail its own", just { toggleOwnRange(&$0) }),
    KeyBinding(c("o"), .model, "o", "lay the map over the input image (grey); sampling: the level's map under the points",
               just { $0.overlay.toggle() }),
    KeyBinding(.digits, .model, "0-9", "type a channel, query or cursor position", { s, key in
        if case .char(let ch) = key { openPrompt(&s, .number, String(ch), selected: false) }
        return .none
    }),
    KeyBinding(c("#"), .model, "#", "type a channel, query or cursor position", just { openPrompt(&$0, .number, "") }),

    // Model view, by focused pane.
    KeyBinding([.down, .char("j")], .layers, "↓ j", "next row (sub-module rows of an expanded layer too)", just { stepRow(&$0, 1) }),
    KeyBinding([.up, .char("k")], .layers, "↑ k", "previous row", just { stepRow(&$0, -1) }),
    KeyBinding([.right, .char("l")], .layers, "→ l", "expand the layer", just { $0.expanded.insert($0.layer) }),
    KeyBinding([.left, .char("h")], .layers, "← h", "fold the layer", just { $0.expanded.remove($0.layer); $0.child = nil }),
    KeyBinding([.left, .char("h")], .visual, "← h", "move the cursor (or query, or channel) left", just { moveCursor(&$0, -1, 0) }),
    KeyBinding([.right, .char("l")], .visual, "→ l", "move the cursor right", just { moveCursor(&$0, 1, 0) }),
    KeyBinding([.up, .char("k")], .visual, "↑ k", "move the cursor up", just { moveCursor(&$0, 0, -1) }),
    KeyBinding([.down, .char("j")], .visual, "↓ j", "move the cursor down", just { moveCursor(&$0, 0, 1) }),
]

/// The contexts a key is looked up in, most specific first.
func keyContexts(_ state: State) -> [KeyContext] {
    if state.prompt != nil { return [.prompt] }
    if state.showHelp { return [.help] }
    switch state.mode {
    case .browse: return [.catalogue, .everywhere]
    case .model: return [state.focus == .visual ? .visual : .layers, .model, .everywhere]
    }
}

/// The binding a key runs in this state, if any.
func binding(for key: Key, in state: State) -> KeyBinding? {
    for context in keyContexts(state) {
        if let b = keyBindings.first(where: { $0.context == context && $0.match.matches(key) }) { return b }
    }
    return nil
}

func handleKey(_ state: inout State, _ key: Key) -> Effect {
    guard let b = binding(for: key, in: state) else { return .none }
    if state.prompt == nil, !state.showHelp {
        state.notice = nil
        if key != .char("y") { state.offer = nil }
    }
    return b.action(&state, key)
}

/// The help overlay's lines, from the table.
public var helpText: [String] {
    var out = ["detr-tui — keys", ""]
    let order: [KeyContext] = [.everywhere, .catalogue, .model, .layers, .visual, .prompt, .help]
    for context in order {
        let rows = keyBindings.filter { $0.context == context }
        guard !rows.isEmpty else { continue }
        out.append(context.rawValue)
        for b in rows {
            let label = b.label.count < 12 ? b.label.padding(toLength: 12, withPad: " ", startingAt: 0) : b.label + " "
            out.append("  " + label + " " + b.description)
        }
        out.append("")
    }
    out += ["Mouse: click a row or entry to select it, a map to move the cursor; the wheel scrolls the pane under it.",
            "Sampling points: the cross is the reference point, dots are sampling points",
            "coloured by head and brighter for larger attention weights.",
            "DETR views (v on a decoder row; they start on the best detection's query, ←→ < > pick another):",
            "  refined boxes: the query's box after every decoder layer, coloured by layer (blue = initial,",
            "    red = last), this layer solid; the side list gives each layer's box and score; x: every",
            "    query of the layer scoring ≥ the threshold. { } step the highlighted layer through the decoder;",
            "    stepping rows (n/p, or j/k in an expanded decoder) keeps the view.",
            "  query selection: the encoder tokens chosen as queries, a dot at each one's grid cell coloured",
            "    by level (the best five labelled with their score); the query's token and initial box in white.",
            "  edge distributions (D-FINE): the query's box and its left/top/right/bottom distributions over",
            "    the bins as bar charts, with the expectation of W(n) each edge moves by."]
    return out
}

// MARK: - actions used by the table

/// W: the catalogue entry under the selection (or the open one), its pretrained weights opened from the cache or fetched.
func pretrainedWeights(_ s: inout State) -> Effect {
    let entry = s.mode == .browse ? s.selectedEntry : s.modelID.flatMap { s.catalogue.entry($0) }
    guard let entry else {
        s.notice = "W fetches a catalogue entry's pretrained weights: select one in the catalogue"
        return .none
    }
    if s.downloading != nil { s.notice = "a download is running (Esc cancels it)"; return .none }
    let status = Pretrained().status(of: entry)
    switch status.state {
    case .notPublished(let note):
        s.notice = "\(entry.id): \(note)"
        return .none
    case .cached:
        if let path = try? Pretrained().cachedPath(entry) {
            s.modelPath = path.path
            s.weights = nil
            s.notice = "pretrained weights of \(entry.id) from the cache"
            return openModel(&s, path.path)
        }
        fallthrough
    default:
        s.downloading = entry.id
        s.downloadProgress = nil
        s.notice = status.summary + " · downloading (Esc cancels)"
        return .download(entry)
    }
}

func cancelDownload(_ s: inout State) -> Effect {
    s.notice = "download of \(s.downloading ?? "") cancelled (what arrived is kept for a resume)"
    s.downloading = nil
    s.downloadProgress = nil
    return .cancelDownload
}

func foldFamily(_ s: inout State) {
    let rows = s.treeRows
    guard s.selection < rows.count else { return }
    switch rows[s.selection] {
    case .family(let f, _): s.collapsed.insert(f)
    case .entry(let e):
        if let i = rows.firstIndex(where: { if case .family(let f, _) = $0 { return f == e.family } else { return false } }) {
            s.selection = i
        }
    }
}

func cycleVisual(_ s: inout State, _ delta: Int) {
    let n = visualSources(s).count
    guard n > 0 else { return }
    s.visual = ((s.visual + delta) % n + n) % n
    s.wantedKind = keptVisualKind(s)
    clampVisual(&s)
}

/// c / C: a page of thumbnails in grid mode, else one channel.
func stepChannels(_ s: inout State, _ delta: Int) {
    if s.channelMode == .grid, pageChannels(&s, by: delta) { return }
    cycleChannel(&s, delta)
}

func cycleChannel(_ s: inout State, _ delta: Int) {
    let n = channelCount(s)
    if n > 0 { s.channel = ((s.channel + delta) % n + n) % n }
    s.channelMode = .single
}

/// -1 = all heads averaged (attention) or drawn together (sampling); cycles through -1 ..< heads.
func cycleHead(_ s: inout State, _ delta: Int) {
    let heads = headCount(s)
    guard heads > 0 else { return }
    let cycle = heads + 1
    s.head = ((s.head + 1 + delta) % cycle + cycle) % cycle - 1
}

func cycleLevel(_ s: inout State, _ delta: Int) {
    if stepDecoderLayer(&s, delta) { return }
    let levels = levelCount(s)
    guard levels > 0 else { return }
    let cycle = levels + 1
    s.level = ((s.level + 1 + delta) % cycle + cycle) % cycle - 1
}

func cycleDetection(_ s: inout State, _ delta: Int) {
    let dets = currentDetections(s)
    if !dets.isEmpty {
        s.detectionPick = ((s.detectionPick + delta) % dets.count + dets.count) % dets.count
        s.query = dets[s.detectionPick].source
    } else {
        s.query = max(0, s.query + delta)
    }
    clampVisual(&s)
}
