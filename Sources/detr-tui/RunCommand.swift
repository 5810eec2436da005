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
        its YAML and class names), a Hugging Face model directory or an ONNX export. --input reads the tensor stored under \
        `images` ([1, 3, H, W], already preprocessed). --dump writes safetensors: `layers.{i}` (each top-level \
        layer's output), `output` (the model's eval output), every probe under its dotted path and the model's \
        extra outputs by name. Boxes are printed in the pixels of the image (of the tensor with --input).
        """
    )

    @OptionGroup var source: ModelOptions

    @OptionGroup var inputs: InputOptions

    @OptionGroup var thresholds: ThresholdOptions

    @Option(help: "Scale of a multi-scale YAML (n, s, m, l, x).")
    var scale: String?

    @Flag(help: "Print the detections as JSON.")
    var json = false

    @Option(help: "Write the trace (layer outputs, output, probes) to this safetensors file.")
    var dump: String?

    @OptionGroup var threading: ThreadsOption

    func run() throws {
        threading.apply()
        if let dump, FileManager.default.fileExists(atPath: dump) {
            throw ValidationError("\(dump) already exists; choose a new file for --dump")
        }
        let net = try openModel(try source.resolvedModel(), weights: source.weights, scale: scale)
        for w in inputWarnings(net, inputs: inputs, thresholds: thresholds) { warn(w) }
        let prepared = try prepareInput(for: net, image: inputs.image, input: inputs.input, imgsz: inputs.imgsz,
                                        square: inputs.square, warn: { warn($0) })
        let trace = Trace(keepTensors: dump != nil)
        let options = thresholds.options.filled(from: net.postprocessDefaults)
        let start = DispatchTime.now().uptimeNanoseconds
        let out = try net.forward(prepared.tensor, trace: trace, postprocess: options)
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
        // Only a detector's detections can be meaningless (a module alone has no classes).
        let note = net.isUntrained && !net.classNames.isEmpty ? untrainedNote : nil
        let usesNMS = usesNonMaxSuppression(net)
        if json {
            struct Row: Encodable {
                let `class`: String; let class_index: Int; let score: Float; let box: [Float]
            }
            struct Report: Encodable {
                let model: String; let family: String; let input_shape: [Int]; let image_size: [Int]
                /// [width, height] of the model input; `imgsz` the size after the model's rule (null for --input).
                let input_size: [Int]; let imgsz: Int?; let resize: String
                let confidence: Float; let iou: Float?; let max_detections: Int
                let untrained: Bool; let note: String?
                let milliseconds: Double; let detections: [Row]
            }
            let r = Report(model: net.name, family: net.family, input_shape: prepared.tensor.shape,
                           image_size: [prepared.transform.imageWidth, prepared.transform.imageHeight],
                           input_size: [prepared.transform.inputWidth, prepared.transform.inputHeight], imgsz: prepared.imgsz,
                           resize: prepared.resize, confidence: options.confidence!, iou: usesNMS ? options.iou : nil,
                           max_detections: options.maxDetections!, untrained: net.isUntrained, note: note, milliseconds: ms,
                           detections: dets.map { Row(class: $0.className, class_index: $0.classIndex, score: $0.score,
                                                      box: [$0.x1, $0.y1, $0.x2, $0.y2]) })
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(r), as: UTF8.self))
            return
        }
        print("\(net.name) (\(net.family)): input \(prepared.tensor.shape), output \(out.output.shape), \(String(format: "%.1f", ms)) ms")
        print(prepared.summary)
        if let note { print(note) }
        let rule = String(format: "score > %.2f", options.confidence!) + (usesNMS ? String(format: ", NMS IoU %.2f", options.iou!) : "")
        print("\(dets.count) detection\(dets.count == 1 ? "" : "s") (\(rule))")
        for d in dets {
            print(String(format: "  %-16@ %.3f  [%.1f, %.1f, %.1f, %.1f]", d.className as NSString, d.score, d.x1, d.y1, d.x2, d.y2))
        }
        if let dump { print("trace written to \(dump)") }
    }
}

/// What `run` and `render` say of a model with default-initialised weights.
let untrainedNote = "untrained weights: detections are meaningless"

/// Whether the model's post-processing has an NMS step (YOLO's Detect head).
func usesNonMaxSuppression(_ net: any DetectionModel) -> Bool { (net as? UltralyticsModel)?.head == .detect }

/// A one-line warning on standard error.
func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

/// Warnings about options the model ignores: --imgsz with --input, --square and --iou where they do not apply.
func inputWarnings(_ net: any DetectionModel, inputs: InputOptions, thresholds: ThresholdOptions) -> [String] {
    var out: [String] = []
    if inputs.input != nil, let n = inputs.imgsz { out.append("--imgsz \(n) is ignored with --input (the tensor is used as it is)") }
    if inputs.square, net.preprocessing != .letterbox { out.append("--square applies to YOLO's letterbox only; \(net.family) ignores it") }
    if thresholds.iou != nil, !usesNonMaxSuppression(net) { out.append("--iou applies to YOLO's NMS only; \(net.family) has no NMS") }
    return out
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
