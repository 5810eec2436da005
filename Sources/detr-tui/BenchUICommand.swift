import ArgumentParser
import Explorer
import Foundation
import ModelZoo

/// `detr-tui bench-ui`: how fast the explorer answers — first screen, keypress to redraw, memory.
struct BenchUICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ui",
        abstract: "Measure the explorer's responsiveness: first screen, keypress -> redraw, memory.",
        discussion: """
            Runs MODEL once (default rtdetr-l at 640), then times update + view + screen diff for keys that only \
            change what is shown (layer step, channel, head, level, query, colormap, visual) on a WIDTHxHEIGHT \
            screen, as the interactive program does for every keypress. Prints milliseconds per keypress \
            (median, 95th percentile, max) per key, the first-screen time and the peak resident memory. \
            With --tty the screens are also drawn on this terminal (the size is the terminal's), so the \
            figures include writing them out; the report then goes to stderr.
            """)

    @Argument(help: "The model to load (catalogue id or path).")
    var model: String = "rtdetr-l"

    @Option(name: .long, help: "The image (default: the first sample image).")
    var image: String?

    @Option(name: .long, help: "Input size (default 640).")
    var imgsz: Int = 640

    @Option(name: .long, help: "Screen width in columns.")
    var width: Int = 200

    @Option(name: .long, help: "Screen height in rows.")
    var height: Int = 60

    @Option(name: .long, help: "Colour mode to render in (default truecolor).")
    var colors: ColorMode = .truecolor

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @Flag(name: .long, help: "Draw every screen on this terminal too (its size replaces --width/--height).")
    var tty = false

    @Option(name: .long, help: "Pixel mode: kitty, iterm2 or sixel (the pictures are encoded as the terminal driver does, through libchafa, and the escape bytes counted); default symbols.")
    var graphics: GraphicsMode = .symbols

    @Option(name: .long, help: ArgumentHelp("Compare mode: a second model run on the same image and size; the keys then step through the aligned tables and draw both maps and their difference.", valueName: "B"))
    var compare: String?

    @Option(name: .long, help: "The cell size in pixels for --graphics, WIDTHxHEIGHT.")
    var cell: String = "10x20"

    func validate() throws {
        if graphics == .auto { throw ValidationError("--graphics: name the protocol (kitty, iterm2, sixel) or symbols") }
        let parts = cell.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 > 0 && $0 <= 64 }) else { throw ValidationError("--cell must be WIDTHxHEIGHT in pixels, e.g. 10x20") }
    }

    @Flag(name: .long, help: "Between keys, draw ahead the screens the explorer draws while it waits for a key (next layer, next channel), untimed, as after a pause.")
    var idle = false

    func run() throws {
        let launch = Date()
        let catalogue = try Catalogue.load()
        var first = State(catalogue: catalogue, render: RenderOptions(colorMode: colors))
        first.size = (width, height)
        let firstScreen = view(first)
        _ = firstScreen.changedIndices(from: nil)
        let firstSeconds = Date().timeIntervalSince(launch)

        let img = image ?? Assets.sampleImages.first?.path
        let t0 = Date()
        let (opened, result) = try Headless.run(RunRequest(model: model, image: img, inputSize: imgsz), backend: .standard())
        let runSeconds = Date().timeIntervalSince(t0)
        var terminal: Terminal?
        var width = width, height = height
        if tty {
            let t = Terminal(colorMode: colors)
            (width, height) = t.size
            terminal = t
        }
        defer { terminal?.end() }
        var state = State(catalogue: catalogue, render: RenderOptions(colorMode: terminal?.colorMode ?? colors))
        state.size = (width, height)
        let cellSize = cell.split(separator: "x").compactMap { Int($0) }
        if let proto = PixelProtocol(rawValue: graphics.rawValue) {
            state.render.pixels = PixelGraphics(proto: proto, cellWidth: cellSize[0], cellHeight: cellSize[1])
            terminal?.pixels = state.render.pixels
        }
        let pixels = state.render.pixels
        // Pixel mode without a terminal: the images a frame draws, encoded as the driver encodes them (its cache of
        // encoded pictures too), and the bytes counted.
        var encoded: [UInt64: Int] = [:]
        var escapeBytes: [Double] = []
        func encodeImages(_ screen: Screen, after old: Screen) {
            guard let pixels else { return }
            let plan = PixelFrame(screen: screen, changed: screen.changedIndices(from: old), shown: old.images, images: screen.images,
                                  kitty: pixels.proto == .kitty)
            var bytes = 0
            for k in plan.redraw {
                let img = screen.images[k]
                if let n = encoded[img.hash] { bytes += n; continue }
                let n = Renderer.pixelEscape(img.picture, cols: img.rect.width, rows: img.rect.height, graphics: pixels).count
                encoded[img.hash] = n
                bytes += n
            }
            escapeBytes.append(Double(bytes))
        }
        state.mode = .model
        state.focus = .layers
        state.modelID = opened.name
        _ = update(&state, .opened(opened))
        _ = update(&state, .finished(result))
        if let compare {
            let (openedB, resultB) = try Headless.run(RunRequest(model: compare, image: img, inputSize: imgsz), backend: .standard())
            state.compare = CompareSession(model: compare)
            _ = update(&state, .compareOpened(openedB))
            _ = update(&state, .compareFinished(resultB))
        }
        var last = view(state)
        terminal?.draw(last)

        // Visit every layer, and on each a round of the keys that change only the view.
        let keys: [(String, Key)] = [("n (next layer)", .char("n")), ("c (channel)", .char("c")), ("a (channel mode)", .char("a")),
                                     ("v (next visual)", .char("v")), ("] (head)", .char("]")), ("} (level)", .char("}")),
                                     ("> (query)", .char(">")), ("m (colormap)", .char("m")), ("o (over image)", .char("o"))]
        var times: [String: [Double]] = [:]
        let layers = state.compare?.aligned.count ?? state.layerRows.count
        for _ in 0 ..< max(1, layers) {
            for (name, key) in keys {
                let k0 = DispatchTime.now().uptimeNanoseconds
                _ = update(&state, .key(key))
                let screen = view(state)
                if let terminal { terminal.draw(screen) } else if pixels != nil { encodeImages(screen, after: last) } else { _ = screen.changedIndices(from: last) }
                let ms = Double(DispatchTime.now().uptimeNanoseconds - k0) / 1e6
                last = screen
                times[name, default: []].append(ms)
                if idle { for next in likelyNextStates(state) { _ = view(next) } }
            }
        }
        let rss = peakResidentMB()
        func stats(_ v: [Double]) -> (Double, Double, Double) {
            let s = v.sorted()
            return (s[s.count / 2], s[min(s.count - 1, Int(Double(s.count) * 0.95))], s.last!)
        }
        terminal?.end()
        // With --tty the report goes to stderr: stdout is the terminal under test (perhaps /dev/null).
        let tty = self.tty
        func say(_ s: String) {
            if tty { FileHandle.standardError.write(Data((s + "\n").utf8)) } else { print(s) }
        }
        let all = times.values.flatMap { $0 }
        let (med, p95, mx) = stats(all)
        if json {
            var perKey: [String: [String: Double]] = [:]
            for (k, v) in times { let (a, b, c) = stats(v); perKey[k] = ["median_ms": a, "p95_ms": b, "max_ms": c] }
            let obj: [String: Any] = ["model": opened.name, "imgsz": imgsz, "width": width, "height": height, "layers": layers,
                                      "first_screen_ms": firstSeconds * 1000, "forward_s": runSeconds,
                                      "keypress_median_ms": med, "keypress_p95_ms": p95, "keypress_max_ms": mx,
                                      "keys": perKey, "peak_rss_mb": rss, "trace_steps": result.trace.steps.count,
                                      "trace_probes": result.trace.probes.count]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            say(String(decoding: data, as: UTF8.self))
            return
        }
        say("model \(opened.name) at \(imgsz), screen \(width)x\(height), colours \(state.render.colorMode.rawValue)"
              + (pixels.map { ", pixels \($0.proto.rawValue) (cell \($0.cellWidth)x\($0.cellHeight) px)" } ?? ", symbols \(state.render.symbols.rawValue)")
              + (compare.map { ", compared with \($0) (\(layers) aligned rows)" } ?? "")
              + (tty ? ", drawn on the terminal" : "") + (idle ? ", with the idle draw-ahead between keys" : ""))
        say(String(format: "first screen (catalogue load + view): %.1f ms", firstSeconds * 1000))
        say(String(format: "forward pass with full trace: %.2f s (%d steps, %d probes)", runSeconds, result.trace.steps.count, result.trace.probes.count))
        say("keypress -> redraw (update + view + \(tty ? "terminal output" : pixels == nil ? "diff" : "diff + image encoding")), ms over \(layers) \(compare == nil ? "layers" : "aligned rows"):")
        say("  key                  median     p95     max")
        for (name, _) in keys {
            let (a, b, c) = stats(times[name] ?? [0])
            say("  " + name.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: " %8.2f %7.2f %7.2f", a, b, c))
        }
        say(String(format: "  all keys           %8.2f %7.2f %7.2f", med, p95, mx))
        if !escapeBytes.isEmpty {
            let (a, b, c) = stats(escapeBytes)
            say(String(format: "image escape bytes per keypress: median %.0f, p95 %.0f, max %.0f", a, b, c))
        }
        say(String(format: "peak resident memory: %.0f MB", rss))
    }
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakResidentMB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return 0
}
