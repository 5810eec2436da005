import ArgumentParser
import Foundation
import ModelZoo
import Tensor

/// `detr-tui run MODEL (--image IMG | --input T.safetensors)`: one forward pass, detections and an optional dump.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model once on an image or a preprocessed tensor; print detections, optionally dump the trace.",
        discussion: """
        MODEL is a catalogue id (e.g. yolov8n, rtdetr-l), a model YAML, a checkpoint (an ultralytics .pt carries \
        its YAML and class names) or a Hugging Face model directory. --input reads the tensor stored under \
        `images` ([1, 3, H, W], already preprocessed). --dump writes safetensors: `layers.{i}` (each top-level \
        layer's output), `output` (the model's eval output), every probe under its dotted path and the model's \
        extra outputs by name. Boxes are printed in the pixels of the image (of the tensor with --input).
        """
    )

    @OptionGroup var source: ModelOptions

    @OptionGroup var inputs: InputOptions

    @Option(help: "Scale of a multi-scale YAML (n, s, m, l, x).")
    var scale: String?

    @Flag(help: "Print the detections as JSON.")
    var json = false

    @Option(help: "Write the trace (layer outputs, output, probes) to this safetensors file.")
    var dump: String?

    func run() throws {
        if let dump, FileManager.default.fileExists(atPath: dump) {
            throw ValidationError("\(dump) already exists; choose a new file for --dump")
        }
        let net = try openModel(try source.resolvedModel(), weights: source.weights, scale: scale)
        let prepared = try prepareInput(for: net, image: inputs.image, input: inputs.input, imgsz: inputs.imgsz)
        let trace = Trace(keepTensors: dump != nil)
        let start = DispatchTime.now().uptimeNanoseconds
        let out = try net.forward(prepared.tensor, trace: trace)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let dets = out.detections.map { d -> Detection in
            var m = d
            (m.x1, m.y1) = prepared.transform.toImage(x: d.x1, y: d.y1)
            (m.x2, m.y2) = prepared.transform.toImage(x: d.x2, y: d.y2)
            return m
        }
        if let dump {
            try writeDump(trace.snapshot, output: out, to: dump)
        }
        if json {
            struct Row: Encodable {
                let `class`: String; let class_index: Int; let score: Float; let box: [Float]
            }
            struct Report: Encodable {
                let model: String; let family: String; let input_shape: [Int]; let image_size: [Int]
                let milliseconds: Double; let detections: [Row]
            }
            let r = Report(model: net.name, family: net.family, input_shape: prepared.tensor.shape,
                           image_size: [prepared.transform.imageWidth, prepared.transform.imageHeight], milliseconds: ms,
                           detections: dets.map { Row(class: $0.className, class_index: $0.classIndex, score: $0.score,
                                                      box: [$0.x1, $0.y1, $0.x2, $0.y2]) })
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(r), as: UTF8.self))
            return
        }
        print("\(net.name) (\(net.family)): input \(prepared.tensor.shape), output \(out.output.shape), \(String(format: "%.1f", ms)) ms")
        print("\(dets.count) detection\(dets.count == 1 ? "" : "s")")
        for d in dets {
            print(String(format: "  %-16@ %.3f  [%.1f, %.1f, %.1f, %.1f]", d.className as NSString, d.score, d.x1, d.y1, d.x2, d.y2))
        }
        if let dump { print("trace written to \(dump)") }
    }
}

/// A model input and how it maps back to the image.
struct PreparedModelInput {
    var tensor: Tensor
    var transform: ImageTransform
}

/// Reads --input (key `images`) or loads and preprocesses --image the way the model's family does.
func prepareInput(for net: any DetectionModel, image: String?, input: String?, imgsz: Int?) throws -> PreparedModelInput {
    if let input {
        let file = try SafetensorsFile(path: input)
        guard file.contains("images") else {
            throw ValidationError("\(input): no tensor named 'images' (found: \(file.names.sorted().joined(separator: ", ")))")
        }
        let t = try file.tensor("images")
        guard t.rank == 4, t.shape[0] == 1, t.shape[1] == net.inputChannels, t.shape[2] > 0, t.shape[3] > 0 else {
            throw ValidationError("\(input): 'images' must be [1, \(net.inputChannels), H, W], got \(t.shape)")
        }
        return PreparedModelInput(tensor: t, transform: .identity(width: t.shape[3], height: t.shape[2]))
    }
    guard let image else { throw ValidationError("give --image or --input") }
    return try prepareImage(path: image, for: net, size: imgsz ?? net.defaultInputSize)
}

/// Writes a trace dump: `layers.{i}`, `output`, probes by path, extras by name.
func writeDump(_ snap: TraceSnapshot, output: ModelOutput, to path: String) throws {
    var tensors: [String: Tensor] = [:]
    for (k, v) in snap.probeTensors { tensors[k] = v }
    for s in snap.steps {
        if let o = s.output, s.path.hasPrefix("model.") { tensors["layers.\(s.index)"] = o }
        else if let o = s.output { tensors[s.path] = o }
    }
    for (k, v) in output.extras { tensors[k] = v }
    tensors["output"] = output.output
    if FileManager.default.fileExists(atPath: path) {
        throw ValidationError("\(path) already exists; choose a new file for --dump")
    }
    try SafetensorsFile.write(tensors, metadata: ["format": "detr-tui trace"], to: path)
}
