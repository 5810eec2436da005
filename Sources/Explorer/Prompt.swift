import Foundation
import ModelZoo

/// The prompt at the bottom of the screen: a line that edits like a shell's (cursor, Ctrl-U/W/K, Ctrl-A/E,
/// Tab completion of paths), opened empty or with the current value selected (typing replaces it), and
/// checked before it changes anything.
public struct Prompt: Sendable, Equatable {
    public enum Purpose: Sendable, Equatable { case search, number, imagePath, inputSize, weights, modelPath, confidence, compareModel }
    public var purpose: Purpose
    public var text: String
    /// Cursor position in characters, 0 ... text.count.
    public var cursor: Int
    /// The whole text is selected: the first edit replaces it.
    public var selected: Bool
    /// Completions offered by the last Tab (shown under the line), empty when none.
    public var candidates: [String] = []
    /// Tab was the last key (a second Tab lists the candidates).
    var tabbed = false

    public init(purpose: Purpose, text: String, selected: Bool = true) {
        self.purpose = purpose
        self.text = text
        self.cursor = text.count
        self.selected = selected && !text.isEmpty
    }

    public var label: String {
        switch purpose {
        case .search: return "/"
        case .number: return "number: "
        case .imagePath: return "image path: "
        case .inputSize: return "input size (empty: the model's own): "
        case .weights: return "weights file (empty: default init): "
        case .modelPath: return "open model (checkpoint, YAML, HF directory): "
        case .confidence: return "confidence threshold (0-1): "
        case .compareModel: return "compare with model B (id, YAML, checkpoint; --share-weights; empty: stop): "
        }
    }

    var isPath: Bool { [.imagePath, .weights, .modelPath].contains(purpose) }

    private func index(_ i: Int) -> String.Index { text.index(text.startIndex, offsetBy: max(0, min(text.count, i))) }

    mutating func insert(_ c: Character) {
        if purpose == .number || purpose == .inputSize, !(c.isASCII && c.isNumber) { return }
        if purpose == .confidence, !(c.isASCII && (c.isNumber || c == ".")) { return }
        if selected { text = ""; cursor = 0; selected = false }
        text.insert(c, at: index(cursor))
        cursor += 1
    }

    mutating func backspace() {
        if selected { killToStart(); return }
        guard cursor > 0 else { return }
        text.remove(at: index(cursor - 1))
        cursor -= 1
    }

    mutating func killToStart() {
        text.removeSubrange(text.startIndex ..< index(selected ? text.count : cursor))
        cursor = 0
        selected = false
    }

    mutating func killToEnd() {
        if selected { killToStart(); return }
        text.removeSubrange(index(cursor)...)
    }

    /// Deletes back over spaces, then to the previous space or slash (as a shell's Ctrl-W does over a path's
    /// last component).
    mutating func deleteWord() {
        if selected { killToStart(); return }
        let chars = Array(text)
        var i = cursor
        while i > 0, chars[i - 1] == " " { i -= 1 }
        if i > 0, chars[i - 1] == "/" { i -= 1 }
        while i > 0, chars[i - 1] != " ", chars[i - 1] != "/" { i -= 1 }
        text.removeSubrange(index(i) ..< index(cursor))
        cursor = i
    }

    mutating func move(_ delta: Int) {
        selected = false
        cursor = max(0, min(text.count, cursor + delta))
    }

    mutating func moveTo(_ position: Int) {
        selected = false
        cursor = max(0, min(text.count, position))
    }
}

/// Completes the last path component of `text`: the longest common prefix of the entries that start with
/// it (a directory gets its slash), and the candidates when more than one fits. `~` is the home directory.
public func completePath(_ text: String) -> (text: String, candidates: [String]) {
    let expanded = (text as NSString).expandingTildeInPath
    let dirPart: String, prefix: String
    if expanded.hasSuffix("/") {
        dirPart = expanded
        prefix = ""
    } else {
        dirPart = (expanded as NSString).deletingLastPathComponent
        prefix = (expanded as NSString).lastPathComponent
    }
    let dir = dirPart.isEmpty ? "." : dirPart
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return (text, []) }
    let showHidden = prefix.hasPrefix(".")
    let matches = names.filter { $0.hasPrefix(prefix) && (showHidden || !$0.hasPrefix(".")) }.sorted()
    guard !matches.isEmpty else { return (text, []) }
    func isDirectory(_ name: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(name), isDirectory: &d) && d.boolValue
    }
    var common = matches[0]
    for m in matches.dropFirst() {
        while !m.hasPrefix(common) { common.removeLast() }
    }
    // Keep what the user typed before the last component (with ~ unexpanded), add the completion.
    let typedDir: String
    if text.hasSuffix("/") { typedDir = text } else if let slash = text.lastIndex(of: "/") { typedDir = String(text[...slash]) } else { typedDir = "" }
    var completed = typedDir + common
    if matches.count == 1, isDirectory(common) { completed += "/" }
    let candidates = matches.count > 1 ? matches.map { isDirectory($0) ? $0 + "/" : $0 } : []
    return (completed, candidates)
}

/// Opens a prompt, the current value selected (typing replaces it) unless `selected` is false.
func openPrompt(_ state: inout State, _ purpose: Prompt.Purpose, _ text: String, selected: Bool = true) {
    state.prompt = Prompt(purpose: purpose, text: text, selected: selected)
}

func editPrompt(_ state: inout State, _ edit: (inout Prompt) -> Void) {
    guard var p = state.prompt else { return }
    edit(&p)
    p.candidates = []
    p.tabbed = false
    state.prompt = p
    if p.purpose == .search { state.filter = p.text; state.selection = firstEntryRow(state) }
}

func cancelPrompt(_ state: inout State) {
    state.notice = nil
    if state.prompt?.purpose == .search { state.filter = ""; state.selection = firstEntryRow(state) }
    state.prompt = nil
}

func completePromptPath(_ state: inout State) {
    guard var p = state.prompt, p.isPath else { return }
    let (text, candidates) = completePath(p.text)
    let listed = p.tabbed
    p.text = text
    p.cursor = text.count
    p.selected = false
    p.candidates = (listed || text == state.prompt?.text) ? candidates : []
    p.tabbed = true
    if candidates.isEmpty, text == state.prompt?.text { state.notice = "no completion for \(text.isEmpty ? "." : text)" }
    state.prompt = p
}

/// Enter in a prompt: checks the value and applies it, or keeps the prompt open with the problem in the status bar.
func acceptPrompt(_ state: inout State) -> Effect {
    guard let p = state.prompt else { return .none }
    switch checkPrompt(p, state) {
    case .failure(let problem):
        state.notice = problem.message
        return .none
    case .success:
        state.prompt = nil
        return commitPrompt(&state, p)
    }
}

struct PromptProblem: Error { var message: String }

/// Whether a prompt's value can be used: a path exists and is what it should be, a size or threshold is in range.
func checkPrompt(_ p: Prompt, _ state: State) -> Result<Void, PromptProblem> {
    func fail(_ m: String) -> Result<Void, PromptProblem> { .failure(PromptProblem(message: m)) }
    let path = (p.text as NSString).expandingTildeInPath
    var isDir: ObjCBool = false
    let exists = !p.text.isEmpty && FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
    switch p.purpose {
    case .search, .number:
        return .success(())
    case .imagePath:
        if p.text.isEmpty { return .success(()) }
        guard exists else { return fail("\(p.text): no such file") }
        guard !isDir.boolValue else { return fail("\(p.text): a directory, not an image") }
        guard ImageIO.looksLikeImage(path: path) else { return fail("\(p.text): not a PNG, JPEG or PPM image") }
    case .weights:
        if p.text.isEmpty { return .success(()) }
        guard exists else { return fail("\(p.text): no such file") }
        guard !isDir.boolValue else { return fail("\(p.text): a directory; weights are a .pt, .pth or .safetensors file") }
    case .modelPath:
        guard !p.text.isEmpty else { return fail("type the path of a checkpoint, a model YAML or a Hugging Face directory") }
        guard exists else { return fail("\(p.text): no such file or directory") }
    case .inputSize:
        if p.text.isEmpty { return .success(()) }
        guard let n = Int(p.text), n >= 32, n <= 2048 else { return fail("input size must be a number from 32 to 2048") }
        if let stride = state.opened?.stride, stride > 1, n % stride != 0 {
            let up = (n + stride - 1) / stride * stride
            return fail("input size \(n) is not a multiple of the model's stride \(stride) (try \(up))")
        }
    case .confidence:
        guard let v = Float(p.text), v >= 0, v <= 1 else { return fail("the confidence threshold is a number from 0 to 1") }
    case .compareModel:
        if p.text.isEmpty { return .success(()) }
        let (spec, _) = parseCompareText(p.text)
        do { _ = try ModelReference.resolve((spec as NSString).expandingTildeInPath, catalogue: state.catalogue) } catch { return fail("\(error)") }
        if state.modelID == nil { return fail("open a model first (Enter on a catalogue entry), then K compares it with B") }
    }
    return .success(())
}

func commitPrompt(_ state: inout State, _ p: Prompt) -> Effect {
    let path = (p.text as NSString).expandingTildeInPath
    switch p.purpose {
    case .search:
        state.filter = p.text
        state.selection = firstEntryRow(state)
        state.focus = .catalogue
    case .number:
        guard let n = Int(p.text) else { return .none }
        switch currentVisualKind(state) {
        case .sampling, .detections, .refinedBoxes, .querySelection, .edgeDistributions: state.query = n
        case .attention:
            if let (q, _, _) = attentionGrids(state), q.width > 0 { state.cursor = (n % q.width, n / q.width) }
        default: state.channel = n
        }
        clampVisual(&state)
    case .imagePath:
        state.imagePath = p.text.isEmpty ? nil : path
        state.notice = "image: \(state.imageLabel) (r runs again)"
    case .inputSize:
        state.inputSize = p.text.isEmpty ? nil : Int(p.text)
        state.notice = state.inputSize.map { "input size \($0) (r runs again)" } ?? "input size: the model's own (r runs again)"
    case .weights:
        state.weights = p.text.isEmpty ? nil : path
        state.notice = state.weights.map { "weights: \(($0 as NSString).lastPathComponent) (r runs again)" } ?? "weights: default initialisation (r runs again)"
    case .confidence:
        state.confidence = Float(p.text) ?? state.confidence
        state.notice = String(format: "confidence threshold %g: %d detections shown", confidenceThreshold(state), currentDetections(state).count)
    case .modelPath:
        state.modelPath = path
        state.weights = nil
        return openModel(&state, path)
    case .compareModel:
        return beginCompare(&state, p.text)
    }
    return .none
}
