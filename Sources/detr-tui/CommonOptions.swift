import ArgumentParser
import Foundation
import Tensor

/// Writes to standard output, unbuffered, so that a failed write (a full disk, `> /dev/full`, a closed pipe) is
/// an error and a non-zero exit rather than output silently lost.
func writeStandardOutput(_ data: Data, command: String) throws {
    do {
        try FileHandle.standardOutput.write(contentsOf: data)
    } catch {
        FileHandle.standardError.write(Data("detr-tui \(command): cannot write the output: \(fileErrorReason(error))\n".utf8))
        throw ExitCode(1)
    }
}
import ModelZoo

/// The model a command works on (`run`, `info`, `render`): MODEL and --weights.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A catalogue id (see `detr-tui list`), a model YAML, a checkpoint, a Hugging Face model directory or an ONNX export.")
    var model: String

    @Option(help: "A weights file (ultralytics .pt, .pth or safetensors), loaded strictly; default: the seeded initialisation.")
    var weights: String?

    @Flag(help: "Use the entry's published trained weights, downloaded into the cache if missing (see `detr-tui weights`).")
    var pretrained = false

    func validate() throws {
        if pretrained, weights != nil { throw ValidationError("give --pretrained or --weights, not both") }
    }

    /// What to open: MODEL, or with --pretrained the cached weights of catalogue id MODEL (fetched if missing).
    func resolvedModel() throws -> String {
        pretrained ? try ensurePretrained(try catalogueEntry(model)).path : model
    }
}

/// The input size of a command that builds or runs a model (--imgsz), checked.
struct SizeOption: ParsableArguments {
    @Option(help: ArgumentHelp("Input size; default: the model's own (640; Deformable DETR 800).",
                               discussion: "YOLO and RT-DETR: the letterbox's or stretch's side, rounded up to a multiple of the model's max stride (32) with a warning, as ultralytics does. Deformable DETR: the image's shortest edge (the longest capped at size x 1333 / 800), as transformers' image processor."))
    var imgsz: Int?

    func validate() throws {
        if let imgsz, imgsz < 32 || imgsz > 4096 { throw ValidationError("--imgsz must be between 32 and 4096") }
    }
}

/// What a forward pass runs on (`run`, `render`): exactly one of --image and --input, and the input size.
struct InputOptions: ParsableArguments {
    @Option(help: "An image (JPEG, PNG or PPM).")
    var image: String?

    @Option(help: "A preprocessed input instead of an image: a safetensors file with `images` [1, C, H, W].")
    var input: String?

    @OptionGroup var size: SizeOption

    @Flag(help: "YOLO: letterbox to the square --imgsz x --imgsz instead of the smallest rectangle of stride multiples that ultralytics' predictor uses.")
    var square = false

    var imgsz: Int? { size.imgsz }

    func validate() throws {
        guard (image == nil) != (input == nil) else { throw ValidationError("give exactly one of --image or --input") }
        if let image, !FileManager.default.fileExists(atPath: image) { throw ValidationError("\(image): no such file") }
    }
}

/// Post-processing thresholds (`run`, `render`): --conf and --iou, checked; unset values take the family's defaults.
struct ThresholdOptions: ParsableArguments {
    @Option(help: "Confidence threshold: keep detections scoring above it (default: 0.25 for YOLO and RT-DETR as ultralytics' predict; 0.5 for Deformable DETR as transformers' post-processing).")
    var conf: Float?

    @Option(help: "NMS IoU threshold for YOLO (default 0.7, as ultralytics); RT-DETR and Deformable DETR have no NMS.")
    var iou: Float?

    func validate() throws {
        if let conf, !(conf >= 0 && conf <= 1) { throw ValidationError("--conf must be between 0 and 1") }
        if let iou, !(iou >= 0 && iou <= 1) { throw ValidationError("--iou must be between 0 and 1") }
    }

    var options: PostprocessOptions { PostprocessOptions(confidence: conf, iou: iou) }
}
