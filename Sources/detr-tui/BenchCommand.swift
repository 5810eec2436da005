import ArgumentParser
import Foundation
import Tensor

/// `detr-tui bench <target>`: `ops` times the tensor engine's convolutions against the machine's sgemm
/// rate; any other target is a model to time end to end.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Print speed figures: `bench ops` for the tensor engine's conv shapes, `bench MODEL` for a model.",
        discussion: """
        `bench ops` measures the machine's sgemm rate (1024x1024x1024) and the conv shapes that RT-DETR-l and \
        YOLOv8s run at 640x640: GFLOPs, time, GFLOP/s and the share of the sgemm rate, the bytes moved per \
        second, and each conv's memory floor (reading its operands and writing its output once, no arithmetic) \
        with the share of the sgemm rate the conv could reach at it; for depthwise convs the ratio of their \
        share of conv time to their share of conv FLOPs, as measured and at the floor. Each of --runs rounds \
        samples everything once (a conv's sample after one untimed call, with its operands in cache as a \
        previous layer leaves them); the best sample of each counts.
        """
    )

    @Argument(help: "`ops`, or a model (catalogue id, YAML or checkpoint path).")
    var target: String

    @Option(help: "Timed runs: rounds over all shapes for ops (the best of each counts), runs for models (the median counts).")
    var runs: Int = 3

    @Option(help: "Input size for model benchmarks.")
    var imgsz: Int = 640

    @Option(help: "For `bench ops`: only shapes whose model or label contains this text (e.g. yolov8s, k5, g192).")
    var filter: String?

    @Option(help: "For model benchmarks: a weights file (default: seeded initialisation).")
    var weights: String?

    @OptionGroup var threading: ThreadsOption

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard imgsz >= 32 else { throw ValidationError("--imgsz must be at least 32") }
    }

    func run() throws {
        threading.apply()
        if target == "ops" {
            try runOps()
        } else {
            try runModel()
        }
    }

    func runOps() throws {
        if !OpsBenchmark.selectsAnything(filter) {
            throw ValidationError("no conv shape or vector op matches --filter \(filter ?? ""); labels look like '256->256 k3 s1 80x80' or 'layer norm [8400,256]'")
        }
        let report = OpsBenchmark.run(runs: runs, filter: filter, machine: LaunchEnvironment.machineReport()) { line in
            if !json { FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8)) }
        }
        if !json { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print(OpsBenchmark.format(report))
        }
    }
}

// MARK: - Model benchmarks (`bench MODEL`, BenchModel.swift).
extension BenchCommand {
    func runModel() throws {
        try runModelBenchmark(model: target, imgsz: imgsz, runs: runs, json: json, weights: weights)
    }
}
