import ArgumentParser
import Foundation
import ModelZoo
import Tensor

/// `detr-tui compare A B --image IMG`: the two layer tables aligned (added, removed, changed rows, params and
/// FLOPs with their differences) and, per aligned layer, how alike the two outputs are on the same image.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare a model with its variant layer by layer: the table diff and where their outputs diverge.",
        discussion: """
        A and B are catalogue ids, model YAMLs, checkpoints, Hugging Face directories or ONNX exports (e.g. rtdetr-l and \
        rtdetr-l-cot, or a checkpoint before and after fine-tuning). Rows are aligned by module type where the \
        architectures match; a block only in B is `added`, only in A `removed`, the same type with other \
        arguments `changed`. With --image both run on it at the same input size, and each aligned pair gets \
        the cosine similarity of its outputs' channel means (1: the same direction; where the channel counts \
        differ, of the channel-averaged maps). With --share-weights B takes A's weights in every aligned row, so \
        that only the inserted or replaced blocks differ (two untrained models otherwise share weights only up to \
        the first inserted block).
        """
    )

    @Argument(help: "The first model (the baseline).")
    var a: String

    @Argument(help: "The second model (the variant).")
    var b: String

    @Option(help: "Weights for A.")
    var weightsA: String?

    @Option(help: "Weights for B.")
    var weightsB: String?

    @Option(help: "An image to run both on (JPEG, PNG or PPM); without it only the tables are compared.")
    var image: String?

    @OptionGroup var size: SizeOption

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Give B A's weights in every row aligned with a row of A of the same type (B: a catalogue id or YAML of the ultralytics family; A: trained or untrained); B's other rows keep their own seeded init.")
    var shareWeights = false

    func validate() throws {
        if let image, !FileManager.default.fileExists(atPath: image) { throw ValidationError("\(image): no such file (--image)") }
        if shareWeights && weightsB != nil { throw ValidationError("--share-weights gives B A's weights: it does not go with --weights-b") }
    }

    struct Side: Encodable {
        let index: Int; let module: String; let arguments: String; let params: Int; let gflops: Double; let output: [Int]
    }

    struct Row: Encodable {
        let change: String; let a: Side?; let b: Side?; let params_delta: Int; let gflops_delta: Double; let similarity: Float?
    }

    struct Report: Encodable {
        let a: String; let b: String; let imgsz: Int; let image: String?
        let params: [Int]; let gflops: [Double]; let rows: [Row]
        /// With --share-weights: B's tensors taken from A, and B's tensors in all.
        let shared_tensors: [Int]?
    }

    func run() throws {
        let netA = try openModel(a, weights: weightsA)
        var sharing: WeightSharing.Shared?
        if shareWeights { sharing = try WeightSharing.open(b, sharingFrom: netA, weightsA: weightsA, aSpec: a) }
        let netB = try sharing?.model ?? openModel(b, weights: weightsB)
        let side = size.imgsz ?? netA.defaultInputSize
        let grid = GridSize(side, side)
        let rowsA = netA.layerTable(inputSize: grid), rowsB = netB.layerTable(inputSize: grid)
        let aligned = LayerDiff.align(rowsA, rowsB)
        var outputsA: [Int: Tensor] = [:], outputsB: [Int: Tensor] = [:]
        if let image {
            for (net, rows) in [(netA, rowsA), (netB, rowsB)] {
                let prepared = try prepareInput(for: net, image: image, input: nil, imgsz: side, warn: { warn($0) })
                let trace = Trace(keepTensors: true)
                _ = try net.forward(prepared.tensor, trace: trace)
                let index = Dictionary(trace.snapshot.steps.compactMap { s in s.output.map { (s.index, $0) } }, uniquingKeysWith: { a, _ in a })
                let outs = Dictionary(uniqueKeysWithValues: rows.enumerated().compactMap { i, r in index[r.index].map { (i, $0) } })
                if net === netA { outputsA = outs } else { outputsB = outs }
            }
        }
        func sideOf(_ rows: [LayerRow], _ i: Int?) -> Side? {
            guard let i else { return nil }
            let r = rows[i]
            return Side(index: r.index, module: r.typeName, arguments: r.arguments, params: r.params, gflops: r.flops / 1e9, output: r.outputShape)
        }
        let report = aligned.map { al -> Row in
            let sa = sideOf(rowsA, al.a), sb = sideOf(rowsB, al.b)
            var sim: Float?
            if let i = al.a, let j = al.b, let x = outputsA[i], let y = outputsB[j] { sim = LayerDiff.similarity(x, y) }
            return Row(change: al.change.rawValue, a: sa, b: sb, params_delta: (sb?.params ?? 0) - (sa?.params ?? 0),
                       gflops_delta: (sb?.gflops ?? 0) - (sa?.gflops ?? 0), similarity: sim)
        }
        let totals = [rowsA.reduce(0) { $0 + $1.params }, rowsB.reduce(0) { $0 + $1.params }]
        let flops = [rowsA.reduce(0) { $0 + $1.flops } / 1e9, rowsB.reduce(0) { $0 + $1.flops } / 1e9]
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let r = Report(a: netA.name, b: netB.name, imgsz: side, image: image, params: totals, gflops: flops, rows: report,
                           shared_tensors: sharing.map { [$0.shared, $0.total] })
            print(String(decoding: try enc.encode(r), as: UTF8.self))
            return
        }
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            s.count >= n ? s : (left ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
        }
        let modW = max(8, (rowsA + rowsB).map { $0.typeName.count }.max() ?? 8)
        print(pad("A", 4, left: true) + pad("B", 4, left: true) + "  " + pad("change", 9) + pad("module A", modW + 2) + pad("module B", modW + 2)
              + pad("params A", 11, left: true) + pad("params B", 11, left: true) + pad("Δ params", 11, left: true)
              + pad("Δ GFLOPs", 10, left: true) + (image == nil ? "" : pad("similarity", 12, left: true)))
        for r in report {
            let sim = r.similarity.map { String(format: "%.4f", $0) } ?? "—"
            print(pad(r.a.map { String($0.index) } ?? "", 4, left: true) + pad(r.b.map { String($0.index) } ?? "", 4, left: true) + "  "
                  + pad(r.change, 9) + pad(r.a?.module ?? "", modW + 2) + pad(r.b?.module ?? "", modW + 2)
                  + pad(r.a.map { grouped($0.params) } ?? "", 11, left: true) + pad(r.b.map { grouped($0.params) } ?? "", 11, left: true)
                  + pad(r.params_delta == 0 ? "" : (r.params_delta > 0 ? "+" : "-") + grouped(abs(r.params_delta)), 11, left: true)
                  + pad(abs(r.gflops_delta) < 5e-4 ? "" : String(format: "%+.3f", r.gflops_delta), 10, left: true)
                  + (image == nil ? "" : pad(sim, 12, left: true)))
        }
        let d = totals[1] - totals[0]
        print("\(netA.name): \(grouped(totals[0])) params, \(String(format: "%.1f", flops[0])) GFLOPs · \(netB.name): \(grouped(totals[1])) params, "
              + String(format: "%.1f GFLOPs", flops[1]) + " · Δ \(d >= 0 ? "+" : "-")\(grouped(abs(d))) params, "
              + String(format: "%+.1f GFLOPs at %dx%d", flops[1] - flops[0], side, side))
        let untrained = [netA, netB].filter(\.isUntrained).map(\.name)
        if let sharing {
            print("B shares A's weights: \(sharing.shared) of its \(sharing.total) tensors come from A's aligned rows; the rest keep B's seeded init")
        } else if image != nil, !untrained.isEmpty {
            print("note: \(untrained.joined(separator: " and ")) run\(untrained.count == 1 ? "s" : "") with untrained (seeded default) weights: "
                  + "after the first added or changed row the two networks' weights differ, so similarity there says little; compare trained checkpoints")
        }
        let counts = Dictionary(grouping: aligned, by: \.change).mapValues(\.count)
        print(["same", "changed", "added", "removed", "replaced"].compactMap { k in counts[RowChange(rawValue: k)!].map { "\($0) \(k)" } }.joined(separator: ", "))
    }
}
