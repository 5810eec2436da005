import ArgumentParser
import Foundation
import ModelZoo

/// `detr-tui info MODEL`: the layer table (from, repeats, params, module, arguments, output shape, FLOPs).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print a model's layer table: output shapes, parameters and FLOPs at an input size.",
        discussion: """
        Parameters are counted as PyTorch counts them (batch-norm weights included). FLOPs count a multiply-add \
        as 2 (convolutions and linear layers, attention matmuls, deformable sampling), the way ultralytics' \
        GFLOPs figure does; nothing is run.
        """
    )

    @OptionGroup var source: ModelOptions

    @OptionGroup var size: SizeOption

    @Option(help: "Scale of a multi-scale YAML (n, s, m, l, x).")
    var scale: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let net = try openModel(try source.resolvedModel(), weights: source.weights, scale: scale)
        let size = self.size.imgsz ?? net.defaultInputSize
        let rows = net.layerTable(inputSize: GridSize(size, size))
        let params = rows.reduce(0) { $0 + $1.params }
        let flops = rows.reduce(0) { $0 + $1.flops }
        if json {
            struct Report: Encodable {
                let model: String; let family: String; let imgsz: Int; let params: Int; let gflops: Double
                let layers: [LayerRow]
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let r = Report(model: net.name, family: net.family, imgsz: size, params: params, gflops: flops / 1e9, layers: rows)
            print(String(decoding: try enc.encode(r), as: UTF8.self))
            return
        }
        print(formatLayerTable(rows))
        print("\(net.name) (\(net.family)): \(rows.count) layers, \(grouped(params)) parameters, "
              + String(format: "%.1f GFLOPs at %dx%d", flops / 1e9, size, size))
    }
}

func grouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return String(out.reversed())
}

/// The table as ultralytics prints it, with output shape and GFLOPs added.
func formatLayerTable(_ rows: [LayerRow]) -> String {
    func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
        s.count >= n ? s : (left ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
    }
    let modW = max(6, rows.map { $0.module.count }.max() ?? 6)
    let argW = min(40, max(9, rows.map { $0.arguments.count }.max() ?? 9))
    var lines = [pad("", 3) + pad("from", 14, left: true) + pad("n", 4, left: true) + pad("params", 11, left: true) + "  "
        + pad("module", modW) + "  " + pad("arguments", argW) + "  " + pad("output", 20) + pad("GFLOPs", 8, left: true)]
    for r in rows {
        let from = r.from.count == 1 ? String(r.from[0]) : "[" + r.from.map(String.init).joined(separator: ", ") + "]"
        var args = r.arguments
        if args.count > argW { args = String(args.prefix(argW - 1)) + "…" }
        lines.append(pad(String(r.index), 3, left: true) + pad(from, 14, left: true) + pad(String(r.repeats), 4, left: true)
            + pad(grouped(r.params), 11, left: true) + "  " + pad(r.module, modW) + "  " + pad(args, argW) + "  "
            + pad("[" + r.outputShape.map(String.init).joined(separator: ", ") + "]", 20)
            + pad(String(format: "%.3f", r.flops / 1e9), 8, left: true))
    }
    return lines.joined(separator: "\n")
}
