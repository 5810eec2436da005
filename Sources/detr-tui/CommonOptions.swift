import ArgumentParser
import Foundation

/// The model a command works on (`run`, `info`, `render`): MODEL and --weights.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A catalogue id (see `detr-tui list`), a model YAML, a checkpoint or a Hugging Face model directory.")
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
    @Option(help: "Input size (square side); default: the model's own.")
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

    var imgsz: Int? { size.imgsz }

    func validate() throws {
        guard (image == nil) != (input == nil) else { throw ValidationError("give exactly one of --image or --input") }
        if let image, !FileManager.default.fileExists(atPath: image) { throw ValidationError("\(image): no such file") }
    }
}
