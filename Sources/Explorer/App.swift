import Foundation
import ModelZoo
import Tensor

/// The running program: the main loop (terminal input -> update -> view -> draw) and the background
/// forward pass that reports back through messages.

/// How the explorer opens models and images. The executable wires these to ModelZoo's `openModel` and
/// image loader; tests may wire them to models built in the test.
public struct Backend: Sendable {
    /// Opens a model by catalogue id or path, with weights (nil = the default seeded initialisation).
    public var open: @Sendable (_ model: String, _ weights: String?) throws -> any DetectionModel
    /// Turns an image file into the model input [1, C, S, S] at input side S, and an RGB picture of that
    /// input in [0, 1] ([3, S, S]) to lay maps over. A nil path asks for an input without an image.
    public var prepare: @Sendable (_ image: String?, _ model: any DetectionModel, _ size: Int) throws -> (input: Tensor, display: Tensor?)

    public init(open: @escaping @Sendable (String, String?) throws -> any DetectionModel,
                prepare: @escaping @Sendable (String?, any DetectionModel, Int) throws -> (input: Tensor, display: Tensor?)) {
        self.open = open
        self.prepare = prepare
    }
}

/// A thread-safe mailbox of messages for the main loop.
final class Inbox: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [Message] = []

    func post(_ m: Message) {
        lock.lock(); messages.append(m); lock.unlock()
    }

    func drain() -> [Message] {
        lock.lock(); defer { lock.unlock() }
        let out = messages
        messages.removeAll()
        return out
    }
}

/// The background threads of the explorer, counted, so that leaving can wait until none of them is inside
/// the engine or OpenBLAS: a process that exits while a worker is still in a kernel tears the libraries
/// down under it (OpenBLAS frees its buffers at exit) and crashes on the worker thread.
final class Workers: @unchecked Sendable {
    private let idle = NSCondition()
    private var active = 0

    /// Runs `body` on a new thread with a stack deep enough for the models' forward passes.
    func spawn(_ body: @escaping @Sendable () -> Void) {
        idle.lock(); active += 1; idle.unlock()
        let thread = Thread { [self] in
            body()
            idle.lock(); active -= 1; idle.broadcast(); idle.unlock()
        }
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// Waits until every thread has returned, at most `timeout` seconds; false if some still run.
    func waitUntilIdle(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        idle.lock(); defer { idle.unlock() }
        while active > 0 {
            if !idle.wait(until: deadline) { return active == 0 }
        }
        return true
    }
}

/// Runs forward passes on a background thread, one at a time; a newer run or `cancel()` stops the
/// older one (through `Trace.cancel`) and its late messages are dropped.
public final class Runner: @unchecked Sendable {
    private let backend: Backend
    private let post: @Sendable (Message) -> Void
    private let lock = NSLock()
    private var generation = 0
    private var trace: Trace?
    let workers = Workers()

    public init(backend: Backend, post: @escaping @Sendable (Message) -> Void) {
        self.backend = backend
        self.post = post
    }

    public func cancel() {
        lock.lock()
        generation += 1
        trace?.cancel()
        trace = nil
        lock.unlock()
    }

    private func isCurrent(_ g: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return g == generation
    }

    private func send(_ g: Int, _ m: Message) {
        if isCurrent(g) { post(m) }
    }

    public func start(_ request: RunRequest) {
        cancel()
        lock.lock()
        let g = generation
        let trace = Trace(keepTensors: true)
        self.trace = trace
        lock.unlock()
        let backend = self.backend
        workers.spawn { [self] in
            self.execute(request, trace: trace, generation: g, backend: backend)
        }
    }

    /// Runs synchronously (the thread body).
    public func execute(_ request: RunRequest, trace: Trace, generation g: Int, backend: Backend) {
        do {
            // Detections down to a low floor, so that the threshold (t) hides or shows them without a new run.
            let floor = PostprocessOptions(confidence: min(request.confidence ?? 0.25, Runner.confidenceFloor))
            let result = try Runner.perform(request, backend: backend, postprocess: floor, trace: trace,
                                            opened: { self.send(g, .opened($0)) },
                                            progress: { [weak self] done, total in self?.send(g, .progress(done: done, total: total)) })
            send(g, .finished(result))
        } catch is CancelledError {
            return
        } catch let error as WeightError where request.weights != nil && Runner.carriesModel(request.weights!) {
            // An ultralytics checkpoint of another model: offer to open it as the model instead of listing its keys.
            send(g, .weightsCarryModel(file: request.weights!, problems: error.problems.count))
        } catch {
            send(g, .failed("\(error)"))
        }
    }

    /// The lowest score the explorer keeps; the threshold the user sets hides what is below it.
    static let confidenceFloor: Float = 0.05

    /// Whether a weights file holds its own model (an ultralytics checkpoint with its YAML).
    static func carriesModel(_ path: String) -> Bool {
        guard let ckpt = try? Checkpoint.open(path: path), let spec = try? ckpt.modelSpec() else { return false }
        return !(spec.backbone.isEmpty && spec.head.isEmpty)
    }

    /// One run: open the model, prepare the input (at the size the model's rule and family make of the request:
    /// YOLO's letterbox rectangle may have H != W), build the layer table at that input, run the forward pass with
    /// `trace` and `postprocess`'s thresholds. An input the model cannot take is a thrown error before the forward pass.
    /// Used by the explorer's background thread, the command line and the benchmarks.
    public static func perform(_ request: RunRequest, backend: Backend, postprocess: PostprocessOptions = PostprocessOptions(),
                               trace: Trace = Trace(keepTensors: true),
                               opened: (OpenedModel) -> Void = { _ in },
                               progress: (@Sendable (Int, Int) -> Void)? = nil) throws -> RunResult {
        let model: any DetectionModel
        if let a = request.shareWeightsFrom {
            // Compare mode's B with A's weights in every aligned row (as `compare --share-weights`).
            let netA = try backend.open(a, request.shareWeightsFromWeights)
            model = try WeightSharing.open(request.model, sharingFrom: netA, weightsA: request.shareWeightsFromWeights, aSpec: a).model
        } else {
            model = try backend.open(request.model, request.weights)
        }
        let side = request.inputSize ?? model.defaultInputSize
        func announce(_ size: GridSize) -> [LayerRow] {
            let rows = model.layerTable(inputSize: size)
            opened(OpenedModel(name: model.name, family: model.family, rows: rows, inputSize: size, classNames: model.classNames,
                               stride: model.inputSizeRule.stride, untrained: model.isUntrained,
                               defaultConfidence: model.postprocessDefaults.confidence ?? 0.25))
            return rows
        }
        let input: Tensor, display: Tensor?
        do {
            (input, display) = try backend.prepare(request.image, model, side)
            try model.validateInput(input.shape)
        } catch {
            // The table at the nominal square size, so that the explorer shows the model beside the error.
            let s = model.checkInputSize(side).size
            _ = announce(GridSize(s, s))
            throw error
        }
        let rows = announce(GridSize(input.shape[2], input.shape[3]))
        if trace.isCancelled { throw CancelledError() }
        trace.expectedSteps = rows.count
        trace.progress = progress
        let t0 = Date()
        let out = try model.forward(input, trace: trace, postprocess: postprocess)
        let seconds = Date().timeIntervalSince(t0)
        return RunResult(trace: trace.snapshot, detections: out.detections, image: display, seconds: seconds)
    }
}

/// A message of the compare runner as B's.
func compareMessage(_ m: Message) -> Message {
    switch m {
    case .opened(let o): return .compareOpened(o)
    case .progress(let d, let t): return .compareProgress(done: d, total: t)
    case .finished(let r): return .compareFinished(r)
    case .failed(let e): return .compareFailed(e)
    case .weightsCarryModel(let file, let problems):
        return .compareFailed("\((file as NSString).lastPathComponent) holds its own model: its keys do not fit B (\(problems) problems)")
    default: return m
    }
}

/// Computes catalogue entries' layer tables on a background thread, one at a time.
final class Describer: @unchecked Sendable {
    private let backend: Backend
    private let post: @Sendable (Message) -> Void
    private let lock = NSLock()
    private var busy = false
    private var asked: Set<String> = []
    private let workers: Workers

    init(backend: Backend, workers: Workers, post: @escaping @Sendable (Message) -> Void) {
        self.backend = backend
        self.workers = workers
        self.post = post
    }

    func describe(_ id: String) {
        lock.lock()
        guard !busy, !asked.contains(id) else { lock.unlock(); return }
        busy = true
        asked.insert(id)
        lock.unlock()
        let backend = self.backend, post = self.post
        workers.spawn { [self] in
            let figures: ModelFigures
            do {
                let model = try backend.open(id, nil)
                let side = model.defaultInputSize
                let rows = model.layerTable(inputSize: GridSize(side, side))
                figures = ModelFigures(params: rows.reduce(0) { $0 + $1.params }, flops: rows.reduce(0) { $0 + $1.flops },
                                       inputSize: side, layers: rows.count)
            } catch {
                figures = ModelFigures(params: 0, flops: 0, inputSize: 0, layers: 0, error: "\(error)")
            }
            post(.described(id: id, figures: figures))
            self.lock.lock(); self.busy = false; self.lock.unlock()
        }
    }
}

/// Options for the interactive program.
public struct LaunchOptions: Sendable {
    public var render: RenderOptions
    /// A model to open and run at start (the command line's MODEL), with its weights, image and size.
    public var open: RunRequest?
    public var confidence: Float?
    /// Compare mode from the start (`--compare B`): B runs after `open` on its image and size.
    public var compare: CompareSession?
    /// `--graphics`: pictures with pixels (kitty, iTerm2, sixel) or symbols; auto asks libchafa's terminal database.
    public var graphics: GraphicsMode
    public init(render: RenderOptions, open: RunRequest? = nil, confidence: Float? = nil, compare: CompareSession? = nil,
                graphics: GraphicsMode = .symbols) {
        self.graphics = graphics
        self.render = render
        self.open = open
        self.confidence = confidence
        self.compare = compare
    }
}

/// The screens a person is likely to ask for next (the next layer, the next channel), for drawing
/// ahead while the explorer waits for a key: drawing them fills the renderer's caches, so that the
/// keypress itself only paints, finds libchafa's cells by the picture's hash and writes the frame.
/// Empty unless a finished trace is on show.
public func likelyNextStates(_ state: State) -> [State] {
    guard state.mode == .model, state.result != nil, !state.isRunning else { return [] }
    var out: [State] = []
    for key in [Key.char("n"), .char("c")] {
        var next = state
        if case .none = update(&next, .key(key)) { out.append(next) }
    }
    return out
}

public enum App {
    /// Runs the explorer until the user leaves. The terminal is restored on return, on a thrown error,
    /// and on SIGINT/SIGTERM (the driver's signal handlers). Leaving restores the terminal first, then
    /// cancels the forward pass and waits for the background threads to leave the engine; one that is still
    /// inside a long kernel after a few seconds is left behind: the process ends at once (`_exit`) rather
    /// than tear the libraries down under it.
    public static func run(catalogue: Catalogue, backend: Backend, options: LaunchOptions) throws {
        let inbox = Inbox()
        let runner = Runner(backend: backend) { inbox.post($0) }
        // Compare mode's model B: its own runner, whose messages say they are B's.
        let compareRunner = Runner(backend: backend) { inbox.post(compareMessage($0)) }
        let terminal = Terminal(colorMode: options.render.colorMode)
        defer {
            terminal.end()
            runner.cancel()
            compareRunner.cancel()
            if !runner.workers.waitUntilIdle(timeout: 5) || !compareRunner.workers.waitUntilIdle(timeout: 5) {
                fflush(nil)
                _exit(0)
            }
        }
        var render = options.render
        render.colorMode = terminal.colorMode
        let env = ProcessInfo.processInfo.environment
        let choice = Renderer.chooseGraphics(options.graphics, colorMode: render.colorMode, environment: env,
                                             tmux: env["TMUX"] == nil ? nil : TmuxState.query(environment: env))
        if let proto = choice.proto {
            let (cw, ch) = Renderer.cellPixelSize() ?? (10, 20)
            render.pixels = PixelGraphics(proto: proto, tmuxPassthrough: choice.tmuxPassthrough, cellWidth: cw, cellHeight: ch)
            terminal.pixels = render.pixels
        }
        var state = State(catalogue: catalogue, render: render)
        // Said when pictures are drawn with pixels, or when a protocol was asked for and is not used.
        if choice.proto != nil || (options.graphics != .auto && options.graphics != .symbols) { state.notice = "graphics: " + choice.reason }
        state.size = terminal.size
        state.camInBackground = true
        state.selection = firstEntryRow(state)
        state.confidence = options.confidence
        state.compare = options.compare
        if let open = options.open {
            state.weights = open.weights
            state.imagePath = open.image
            state.inputSize = open.inputSize
            if state.catalogue.entry(open.model) == nil { state.modelPath = open.model }
            if case .run(let r) = openModel(&state, open.model) { runner.start(r) }
        }
        terminal.draw(view(state))
        var lastTick = Date()
        var running = true
        // Params/FLOPs of the entry under the selection, computed off the UI thread once it rests there.
        let describer = Describer(backend: backend, workers: runner.workers) { inbox.post($0) }
        var lastSelection = state.selectedEntry?.id
        var selectionSince = Date()
        // Screens to draw ahead (off screen) while no key comes, one per idle read.
        var ahead: [State] = []
        var download: DownloadCancellation?
        // EigenCAMs being computed off the UI thread, by cache key.
        var camsInFlight: Set<StorageKey> = []
        func handle(_ m: Message) {
            if case .camReady(let key) = m { camsInFlight.remove(key) }
            switch update(&state, m) {
            case .none: break
            case .quit: running = false
            case .redraw: terminal.invalidate()
            case .run(let r):
                compareRunner.cancel()
                runner.start(r)
            case .runCompare(let r): compareRunner.start(r)
            case .cancel:
                runner.cancel()
                compareRunner.cancel()
            case .download(let entry):
                download?.cancel()
                download = Pretrained().start(entry, progress: { inbox.post(.downloadProgress($0)) }, completion: { result in
                    switch result {
                    case .success(let url): inbox.post(.downloaded(id: entry.id, path: url.path))
                    case .failure(let error): inbox.post(.downloadFailed("\(error)"))
                    }
                })
            case .cancelDownload:
                download?.cancel()
                download = nil
            }
        }
        while running {
            var dirty = false
            if let m = terminal.read() {
                handle(m)
                dirty = true
                // Take whatever else is already waiting before drawing (key repeat, pasted text).
                while running, let more = terminal.readNow() { handle(more) }
            } else if let next = ahead.popLast() {
                _ = view(next)
            }
            for m in inbox.drain() where running {
                handle(m)
                dirty = true
            }
            if state.playing, Date().timeIntervalSince(lastTick) > 0.35 {
                lastTick = Date()
                handle(.tick)
                dirty = true
            }
            if running, dirty {
                // The cell size in pixels may come late (a terminal window mapped after the program started) and
                // changes with the font: pictures are painted at the size the terminal says now.
                if var p = state.render.pixels, let (cw, ch) = Renderer.cellPixelSize(), cw != p.cellWidth || ch != p.cellHeight {
                    p.cellWidth = cw
                    p.cellHeight = ch
                    state.render.pixels = p
                    terminal.pixels = p
                }
                terminal.draw(view(state))
                ahead = likelyNextStates(state).reversed()
                if let t = pendingCAM(state), !camsInFlight.contains(camKey(t, sign: state.camSign)) {
                    let sign = state.camSign, key = camKey(t, sign: sign)
                    camsInFlight.insert(key)
                    runner.workers.spawn {
                        computeCAM(t, sign: sign)
                        inbox.post(.camReady(key))
                    }
                }
            }
            let sel = state.mode == .browse ? state.selectedEntry?.id : nil
            if sel != lastSelection { lastSelection = sel; selectionSince = Date() }
            if let sel, state.described[sel] == nil, !state.isRunning, Date().timeIntervalSince(selectionSince) > 0.3 {
                describer.describe(sel)
            }
        }
    }
}
