import ArgumentParser
import Explorer
import Foundation
import ModelZoo
import Tensor

@main
struct DetrTUI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detr-tui",
        abstract: "Look inside detection models (RT-DETR, YOLOv8, Deformable DETR) from a terminal.",
        discussion: "Run with no subcommand to open the interactive explorer (press ? inside for the keys).",
        version: ModelZoo.version,
        subcommands: [ListCommand.self, RunCommand.self, InfoCommand.self, InspectCommand.self, BenchCommand.self, RenderCommand.self, BenchUICommand.self]
    )

    @OptionGroup var display: DisplayOptions

    /// Entry point: restarts once when the libraries need another environment (see `LaunchEnvironment`), tunes the
    /// allocator for forward passes (see `Allocator`), then parses and runs the command.
    static func main() {
        LaunchEnvironment.prepare()
        Allocator.tuneForInference()
        main(nil)
    }

    func run() throws {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw ValidationError("the explorer needs a terminal; for scripts use a subcommand (see --help)")
        }
        let catalogue = try Catalogue.load()
        try App.run(catalogue: catalogue, backend: .standard(), options: LaunchOptions(render: display.renderOptions))
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
extension ColorMode: ExpressibleByArgument {}
