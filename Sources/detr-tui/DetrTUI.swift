import ArgumentParser
import Explorer
import Foundation
import ModelZoo
import Tensor

@main
struct DetrTUI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detr-tui",
        abstract: "Look inside detection models (YOLOv8 to YOLO26, RT-DETR, D-FINE, Deformable DETR, ONNX exports) from a terminal.",
        discussion: """
        Run with no subcommand to open the interactive explorer on the catalogue, or with MODEL to open it straight \
        on that model (a checkpoint .pt/.pth, a model YAML, a .safetensors with --weights, a Hugging Face \
        directory, an ONNX export or a catalogue id) and run it on --image (default: the first sample image). Press ? inside for the keys; \
        `detr-tui explore --help` lists the explorer's options.
        """,
        version: ModelZoo.version,
        subcommands: [ExploreCommand.self, ListCommand.self, RunCommand.self, InfoCommand.self, CompareCommand.self, InspectCommand.self, BenchCommand.self,
                      RenderCommand.self, BenchUICommand.self, WeightsCommand.self],
        defaultSubcommand: ExploreCommand.self
    )

    /// Entry point: restarts once when the libraries need another environment (see `LaunchEnvironment`), tunes the
    /// allocator for forward passes (see `Allocator`), then parses and runs the command. An error exits with its
    /// message and a one-line hint, not the whole usage text.
    static func main() {
        LaunchEnvironment.prepare()
        Allocator.tuneForInference()
        do {
            var command = try parseAsRoot()
            try command.run()
            // What print() buffered: a write that failed at the end (> /dev/full) is an error too.
            if fflush(nil) != 0 {
                FileHandle.standardError.write(Data("Error: cannot write the output: \(String(cString: strerror(errno)))\n".utf8))
                Foundation.exit(1)
            }
        } catch {
            // A command that has already said what went wrong exits with its code alone.
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
            let code = exitCode(for: error)
            // --help and --version arrive as errors that print what was asked for.
            if code == .success { exit(withError: error) }
            let args = CommandLine.arguments.dropFirst()
            let sub = configuration.subcommands.first { $0.configuration.commandName == args.first }?.configuration.commandName
            let hint = sub.map { "see 'detr-tui \($0) --help'" } ?? "see 'detr-tui --help'"
            FileHandle.standardError.write(Data("Error: \(message(for: error))\n(\(hint))\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}

/// `detr-tui [MODEL]` (the default command): the interactive explorer, on the catalogue or on MODEL.
struct ExploreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "The interactive explorer (the default command): the catalogue, or MODEL opened and run at once."
    )

    @Argument(help: "A model to open at once: a checkpoint, a model YAML, a Hugging Face directory, an ONNX export or a catalogue id (see `detr-tui list`).")
    var model: String?

    @Option(help: "A weights file for MODEL (ultralytics .pt, .pth or safetensors), loaded strictly.")
    var weights: String?

    @Flag(help: "Open MODEL (a catalogue id) with its published trained weights, downloaded first if missing.")
    var pretrained = false

    @Option(help: "The image to run MODEL on (JPEG, PNG or PPM); default: the first sample image.")
    var image: String?

    @OptionGroup var size: SizeOption

    @Option(help: "Confidence threshold: detections scoring at or below it are not shown (default: the family's, ultralytics 0.25, transformers 0.5); t changes it inside.")
    var conf: Float?

    @Flag(help: "Letterbox YOLO inputs to the square --imgsz instead of ultralytics' smallest stride-multiple rectangle.")
    var square = false

    @Option(help: ArgumentHelp("Compare MODEL with a second model B (catalogue id, YAML, checkpoint or HF directory) on the same image and input size: the layer tables aligned, both maps in one colour range with their difference, sampling points and detections of both. K inside starts or ends it.", valueName: "B"))
    var compare: String?

    @Option(help: "Weights for the --compare model.")
    var compareWeights: String?

    @Flag(help: "With --compare: B takes MODEL's weights in every row aligned with a row of MODEL of the same type (as compare --share-weights).")
    var shareWeights = false

    @OptionGroup var display: DisplayOptions

    @Option(name: .long, help: "Pictures with pixels: auto (kitty, iTerm2 or sixel when libchafa's terminal database knows the terminal; inside tmux only with allow-passthrough), kitty, iterm2, sixel, or symbols (default: auto). Overlays stay text.")
    var graphics: GraphicsMode = .auto

    func validate() throws {
        if compare != nil, model == nil { throw ValidationError("--compare B needs a MODEL to compare it with") }
        if compare == nil, compareWeights != nil || shareWeights { throw ValidationError("--compare-weights and --share-weights go with --compare B") }
        if shareWeights, compareWeights != nil { throw ValidationError("--share-weights gives B MODEL's weights: it does not go with --compare-weights") }
        if let w = compareWeights, !FileManager.default.fileExists(atPath: w) { throw ValidationError("\(w): no such file (--compare-weights)") }
        if model == nil, weights != nil || image != nil || size.imgsz != nil {
            throw ValidationError("--weights, --image and --imgsz need a MODEL to open")
        }
        if pretrained, model == nil || weights != nil { throw ValidationError("--pretrained needs a catalogue id as MODEL and no --weights") }
        if let conf, !(conf >= 0 && conf <= 1) { throw ValidationError("--conf must be between 0 and 1") }
        if let weights, !FileManager.default.fileExists(atPath: weights) { throw ValidationError("\(weights): no such file (--weights)") }
        if let image {
            guard FileManager.default.fileExists(atPath: image) else { throw ValidationError("\(image): no such file (--image)") }
            guard ImageIO.looksLikeImage(path: image) else { throw ValidationError("\(image): not a PNG, JPEG or PPM image (--image)") }
        }
    }

    func run() throws {
        let catalogue = try Catalogue.load()
        var open: RunRequest?
        if let id = model, pretrained {
            open = RunRequest(model: try ensurePretrained(try catalogueEntry(id)).path, weights: nil, image: image, inputSize: size.imgsz)
        } else if let model {
            // A name that is neither a file nor a catalogue id fails here, before the terminal is taken over.
            let ref = try ModelReference.resolve(model, catalogue: catalogue)
            var path = model
            if case .catalogue = ref {} else { path = URL(fileURLWithPath: model).standardizedFileURL.path }
            open = RunRequest(model: path, weights: weights, image: image, inputSize: size.imgsz)
        }
        var session: CompareSession?
        if let compare {
            let ref = try ModelReference.resolve(compare, catalogue: catalogue)
            var path = compare
            if case .catalogue = ref {} else { path = URL(fileURLWithPath: compare).standardizedFileURL.path }
            if shareWeights { _ = try WeightSharing.ultralyticsSpec(path) }
            session = CompareSession(model: path, weights: compareWeights, shareWeights: shareWeights)
        }
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw ValidationError("the explorer needs a terminal; for scripts use a subcommand (see --help)")
        }
        try App.run(catalogue: catalogue, backend: .standard(square: square),
                    options: LaunchOptions(render: display.renderOptions, open: open, confidence: conf, compare: session, graphics: graphics))
    }
}

/// Display flags shared by the explorer and the commands that draw.
struct DisplayOptions: ParsableArguments {
    @Flag(name: .long, help: "No colours: plain text and a glyph-density ramp for maps (also NO_COLOR, TERM=dumb).")
    var noColor = false

    @Option(name: .long, help: "Symbols for maps: half (default), quadrants, sextants, braille, ascii.")
    var symbols: SymbolSet = .half

    @Option(name: .long, help: "Colour mode: truecolor, 256, 16, 8 or none (default: from the terminal and COLORTERM).")
    var colors: ColorMode?


    var renderOptions: RenderOptions {
        var mode = colors ?? ColorMode.detect()
        if noColor { mode = .none }
        return RenderOptions(colorMode: mode, symbols: symbols)
    }
}

extension SymbolSet: ExpressibleByArgument {}
extension GraphicsMode: ExpressibleByArgument {}
extension ColorMode: ExpressibleByArgument {}
