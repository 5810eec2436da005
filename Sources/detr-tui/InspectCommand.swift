import ArgumentParser
import Foundation
import ModelZoo
import ONNX
import Tensor

/// `detr-tui inspect FILE`: describes any file the tool opens (checkpoint, safetensors, Hugging Face
/// directory, model YAML, image) without building a model.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a checkpoint, model YAML or image: format, tensors, layers, classes, size.",
        discussion: """
        Checkpoints (.pt/.pth from torch.save or ultralytics, .safetensors, a Hugging Face directory with \
        config.json + model.safetensors): format, tensor count, parameters, every key with dtype and shape; \
        for ultralytics also the embedded model YAML and class names. Model YAML: the parsed layer rows. \
        Images (PNG, JPEG, PPM): size and colour type. ONNX exports (.onnx, with their external data): producer, \
        opset, inputs and outputs with shapes, op histogram, parameters and the module paths in the node names. \
        Files are only read; pickled code is never run.
        """)

    @Argument(help: "The file (or Hugging Face model directory) to describe.")
    var file: String

    @Flag(name: .long, help: "Print JSON for scripts instead of text.")
    var json = false

    @Option(name: .long, help: "Show at most this many tensor keys in text output (0 = all).")
    var limit = 0

    @Flag(name: .long, help: "Also read every tensor of a checkpoint as Float32 (checks every storage) and count non-finite values.")
    var verify = false

    func run() throws {
        let report: [String: Any]
        do {
            var r = try InspectCommand.describe(file)
            if verify, r["kind"] as? String == "checkpoint" {
                let start = Date()
                let v = try Checkpoint.open(path: file).verify()
                r["verify"] = ["tensors": v.tensors, "values": v.values, "nonFinite": v.nonFinite,
                               "seconds": (Date().timeIntervalSince(start) * 1000).rounded() / 1000] as [String: Any]
            }
            report = r
        } catch let e as FileFormatError {
            FileHandle.standardError.write(Data("detr-tui inspect: \(e.description)\n".utf8))
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write(Data("detr-tui inspect: \(file): \(error)\n".utf8))
            throw ExitCode(1)
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try InspectCommand.emit(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            try InspectCommand.emit(InspectCommand.text(report, limit: limit))
        }
    }

    static func emit(_ text: String) throws { try writeStandardOutput(Data(text.utf8), command: "inspect") }

    enum Kind { case checkpoint, yaml, image, onnx }

    static func kind(of path: String) -> Kind {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { return .checkpoint }
        let ext = (path as NSString).pathExtension.lowercased()
        if ext == "yaml" || ext == "yml" { return .yaml }
        if ext == "onnx" { return .onnx }
        if ImageIO.looksLikeImage(path: path) { return .image }
        if ["png", "jpg", "jpeg", "ppm", "pgm"].contains(ext) { return .image }
        return .checkpoint
    }

    /// The description as a JSON-ready dictionary.
    static func describe(_ path: String) throws -> [String: Any] {
        switch kind(of: path) {
        case .onnx:
            return try describeONNX(path)
        case .image:
            let info = try ImageIO.info(path: path)
            // An image too large to decode is one the tool cannot open: say so rather than describe it.
            try ImageLimits.check(width: info.width, height: info.height, file: path)
            // Decode it too, so a truncated or corrupt image is reported here rather than when it is used.
            let image = try ImageIO.load(path: path)
            var out: [String: Any] = ["kind": "image", "file": path, "format": info.format, "width": info.width, "height": info.height,
                                      "colorType": info.colorType, "bitDepth": info.bitDepth]
            if image.width != info.width || image.height != info.height {
                out["uprightWidth"] = image.width
                out["uprightHeight"] = image.height // after the EXIF orientation
            }
            return out
        case .yaml:
            let spec = try ModelSpec.load(path: path)
            var out: [String: Any] = ["kind": "model-yaml", "file": path, "layers": spec.layers.map(row)]
            if let nc = spec.nc { out["nc"] = nc }
            if !spec.scales.isEmpty {
                out["scales"] = Dictionary(uniqueKeysWithValues: spec.scales.map { ($0.name, [$0.scale.depth, $0.scale.width, Double($0.scale.maxChannels)]) })
                out["scaleOrder"] = spec.scales.map(\.name)
            }
            if let s = spec.scale { out["scale"] = s }
            if let d = spec.depthMultiple { out["depth_multiple"] = d }
            if let w = spec.widthMultiple { out["width_multiple"] = w }
            if let m = spec.maxChannels { out["max_channels"] = m }
            if let a = spec.activation { out["activation"] = a }
            // Whether the graph builder knows every module (the file still opens when it does not).
            let known = Set(UltralyticsRegistry.knownModules)
            if !known.isEmpty {
                do {
                    try spec.validate(knownModules: known)
                    out["buildable"] = true
                } catch let e as FileFormatError {
                    out["buildable"] = false
                    out["warnings"] = [e.problem]
                }
            }
            return out
        case .checkpoint:
            let ckpt = try Checkpoint.open(path: path)
            var out: [String: Any] = [
                "kind": "checkpoint", "file": path, "format": ckpt.format.rawValue, "tensorCount": ckpt.keys.count,
                "parameters": ckpt.parameterCount, "values": ckpt.totalValues,
                "tensors": ckpt.keys.map { k -> [String: Any] in
                    let i = ckpt.info[k]!
                    return ["name": k, "dtype": i.dtype, "shape": i.shape]
                },
                "metadata": ckpt.metadata, "classNames": ckpt.classNames, "warnings": ckpt.warnings,
            ]
            var dtypeCounts: [String: Int] = [:]
            for i in ckpt.info.values { dtypeCounts[i.dtype, default: 0] += 1 }
            out["dtypes"] = dtypeCounts
            if let s = ckpt.source { out["source"] = s }
            if let t = ckpt.task { out["task"] = t }
            if let y = ckpt.ultralyticsYAML {
                out["yaml"] = y.foundationObject
                out["yamlText"] = y.yamlText()
                if let spec = try? ckpt.modelSpec() { out["layers"] = spec.layers.map(row) }
            }
            if let c = ckpt.config { out["config"] = c.foundationObject }
            return out
        }
    }

    /// An ONNX model: what the file declares and a summary of its graph (nothing is run).
    static func describeONNX(_ path: String) throws -> [String: Any] {
        let m = try ONNXModel.load(path: path)
        func value(_ v: ONNXValueInfo) -> [String: Any] {
            ["name": v.name, "type": v.elementType?.name ?? "type \(v.elementTypeCode)",
             "shape": v.dims.map { $0.map { d -> Any in if case .value(let n) = d { return n } else { return d.description } } } ?? NSNull()]
        }
        let supported = Set(ONNXOps.supported)
        let unsupported = m.opHistogram.keys.filter { !supported.contains($0) }.sorted()
        return [
            "kind": "onnx", "file": path, "producer": m.producerName, "producerVersion": m.producerVersion,
            "irVersion": m.irVersion, "opset": m.opset, "opsets": m.opsets, "graph": m.graphName,
            "inputs": m.inputs.map(value), "outputs": m.outputs.map(value), "nodes": m.nodes.count,
            "ops": m.opHistogram, "parameters": m.parameterCount, "initializers": m.initializerNames.count,
            "modulePaths": m.modulePaths, "metadata": m.metadata, "unsupportedOps": unsupported,
        ]
    }

    static func row(_ l: LayerSpec) -> [String: Any] {
        ["index": l.index, "section": l.section.rawValue, "from": l.from, "repeats": l.repeats, "module": l.module,
         "args": "[" + l.args.map(\.description).joined(separator: ", ") + "]"]
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    static func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, ch) in s.reversed().enumerated() {
            if i > 0, i % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }

    static func layerTable(_ rows: [[String: Any]]) -> String {
        var out = pad("", 2) + pad("#", 4) + pad("section", 10) + pad("from", 12) + pad("n", 4) + pad("module", 22) + "args\n"
        for r in rows {
            let from = (r["from"] as? [Int] ?? []).map(String.init).joined(separator: ",")
            out += pad("", 2) + pad("\(r["index"]!)", 4) + pad("\(r["section"]!)", 10) + pad(from, 12) + pad("\(r["repeats"]!)", 4)
                + pad("\(r["module"]!)", 22) + "\(r["args"]!)\n"
        }
        return out
    }

    /// Plain-text rendering of `describe`'s dictionary.
    static func text(_ r: [String: Any], limit: Int) -> String {
        var out = "file: \(r["file"]!)\n"
        switch r["kind"] as! String {
        case "image":
            out += "image: \(r["format"]!) \(r["width"]!)x\(r["height"]!), \(r["colorType"]!), \(r["bitDepth"]!)-bit\n"
            if let w = r["uprightWidth"], let h = r["uprightHeight"] { out += "upright (EXIF orientation applied): \(w)x\(h)\n" }
        case "onnx":
            out += "format: onnx (IR \(r["irVersion"]!), opset \(r["opset"]!))"
            let producer = "\(r["producer"]!) \(r["producerVersion"]!)".trimmingCharacters(in: .whitespaces)
            out += producer.isEmpty ? "\n" : ", produced by \(producer)\n"
            for (label, key) in [("input", "inputs"), ("output", "outputs")] {
                for v in r[key] as! [[String: Any]] {
                    let shape = (v["shape"] as? [Any]).map { "[" + $0.map { "\($0)" }.joined(separator: ", ") + "]" } ?? "[?]"
                    out += "\(label): \(v["name"]!) \(v["type"]!) \(shape)\n"
                }
            }
            out += "nodes: \(r["nodes"]!), parameters: \(grouped(r["parameters"] as! Int)) in \(r["initializers"]!) initialisers\n"
            let ops = r["ops"] as! [String: Int]
            out += "ops: " + ops.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
            if let u = r["unsupportedOps"] as? [String], !u.isEmpty {
                out += "note: ops the interpreter does not run: \(u.joined(separator: ", "))\n"
            }
            if let meta = r["metadata"] as? [String: String], !meta.isEmpty {
                out += "metadata:\n"
                for k in meta.keys.sorted() { out += "  \(k): \(meta[k]!.prefix(200))\n" }
            }
            let paths = r["modulePaths"] as! [String]
            out += "module paths (\(paths.count)):\n"
            for p in paths.prefix(limit > 0 ? limit : paths.count) { out += "  \(p)\n" }
            if limit > 0, paths.count > limit { out += "  ... \(paths.count - limit) more (use --limit 0 for all)\n" }
        case "model-yaml":
            out += "model yaml: \(r["layers"].map { ($0 as! [Any]).count } ?? 0) layers"
            if let nc = r["nc"] { out += ", nc \(nc)" }
            out += "\n"
            if let order = r["scaleOrder"] as? [String], let scales = r["scales"] as? [String: [Double]] {
                out += "scales: " + order.map { n in
                    let s = scales[n]!
                    return "\(n) [\(s[0]), \(s[1]), \(Int(s[2]))]"
                }.joined(separator: ", ") + "\n"
            }
            for k in ["scale", "depth_multiple", "width_multiple", "max_channels", "activation"] {
                if let v = r[k] { out += "\(k): \(v)\n" }
            }
            out += layerTable(r["layers"] as! [[String: Any]])
            if let warnings = r["warnings"] as? [String] {
                for w in warnings { out += "note: \(w)\n" }
            }
        default:
            out += "format: \(r["format"]!)"
            if let s = r["source"] { out += " (weights from '\(s)')" }
            out += "\n"
            out += "tensors: \(r["tensorCount"]!), parameters: \(grouped(r["parameters"] as! Int)) (\(grouped(r["values"] as! Int)) values incl. BN statistics)\n"
            if let d = r["dtypes"] as? [String: Int] {
                out += "dtypes: " + d.keys.sorted().map { "\($0) x\(d[$0]!)" }.joined(separator: ", ") + "\n"
            }
            if let t = r["task"] { out += "task: \(t)\n" }
            if let names = r["classNames"] as? [String], !names.isEmpty {
                let shown = names.prefix(limit > 0 ? limit : names.count).enumerated().map { "\($0.offset) \($0.element)" }
                out += "classes (\(names.count)): " + shown.joined(separator: ", ") + (shown.count < names.count ? ", ..." : "") + "\n"
            }
            if let meta = r["metadata"] as? [String: String], !meta.isEmpty {
                out += "metadata:\n"
                // Text shows the checkpoint's own fields and the training arguments people look for; --json has all.
                let wanted: Set<String> = ["train_args.imgsz", "train_args.epochs", "train_args.data", "train_args.model", "train_args.task"]
                for k in meta.keys.sorted() where !k.hasPrefix("train_args.") || wanted.contains(k) {
                    out += "  \(k): \(meta[k]!.prefix(200))\n"
                }
            }
            if let warnings = r["warnings"] as? [String] {
                for w in warnings { out += "note: \(w)\n" }
            }
            if let y = r["yamlText"] as? String {
                out += "model yaml (embedded):\n" + y.split(separator: "\n").map { "  " + $0 + "\n" }.joined()
            }
            if let rows = r["layers"] as? [[String: Any]] { out += "layers:\n" + layerTable(rows) }
            if let v = r["verify"] as? [String: Any] {
                out += "verified: read \(v["tensors"]!) tensors (\(grouped(v["values"] as! Int)) values) as Float32 in \(v["seconds"]!) s; non-finite values: \(v["nonFinite"]!)\n"
            }
            let tensors = r["tensors"] as! [[String: Any]]
            let nameW = min(70, tensors.map { ($0["name"] as! String).count }.max() ?? 4)
            out += "keys:\n"
            for t in tensors.prefix(limit > 0 ? limit : tensors.count) {
                let shape = (t["shape"] as! [Int]).map(String.init).joined(separator: ", ")
                out += "  " + pad(t["name"] as! String, nameW) + "  " + pad(t["dtype"] as! String, 5) + "  [\(shape)]\n"
            }
            if limit > 0, tensors.count > limit { out += "  ... \(tensors.count - limit) more (use --limit 0 for all)\n" }
        }
        return out
    }
}
