import ArgumentParser
import Foundation
import Tensor

/// `detr-tui bench <target>`: `ops` times the tensor engine's convolutions (from the tensor engine's work);
/// any other target is a model to time end to end.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Print speed figures: `bench MODEL` times a model's forward pass layer by layer.",
        discussion: """
        `bench MODEL --imgsz 640` runs one warm-up and then --runs forward passes on a fixed random input and \
        prints each top-level layer's median time, the median total, and the total with a full trace (every \
        layer output and probe kept, as the explorer records it). --json prints an object with model, imgsz, \
        runs, median_ms, traced_median_ms and the layers.
        """
    )

    @Argument(help: "A model (catalogue id, YAML or checkpoint path).")
    var target: String

    @Option(help: "Timed runs (the median counts).")
    var runs: Int = 3

    @Option(help: "Input size for model benchmarks.")
    var imgsz: Int = 640

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard imgsz >= 32 else { throw ValidationError("--imgsz must be at least 32") }
    }

    func run() throws {
        try runModel()
    }
}

extension BenchCommand {
    func runModel() throws {
        try runModelBenchmark(model: target, imgsz: imgsz, runs: runs, json: json)
    }
}
