import ArgumentParser
import ModelZoo

@main
struct DetrTUI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detr-tui",
        abstract: "Look inside detection models (RT-DETR, YOLOv8, Deformable DETR) from a terminal.",
        version: ModelZoo.version,
        subcommands: [BenchCommand.self]
    )

    func run() throws {
        print("detr-tui \(ModelZoo.version)")
    }
}
