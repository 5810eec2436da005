import Foundation
import Tensor

/// How a model family turns an image into its input tensor.
public enum Preprocessing: Sendable, Equatable {
    /// Ultralytics YOLO: keep aspect, pad with 114/255 to a square, RGB / 255.
    case letterbox
    /// Ultralytics RT-DETR: stretch to a square (scale_fill), RGB / 255.
    case stretch
    /// Hugging Face DETR family: resize so the shortest edge is `size` (longest at most `maxSize`), ImageNet mean/std.
    case resizeNormalize(size: Int, maxSize: Int)
}

/// Maps model-input pixel coordinates back to the original image: image = (input - pad) / scale.
public struct ImageTransform: Sendable, Equatable, Codable {
    public var scaleX: Float, scaleY: Float
    public var padX: Float, padY: Float
    /// Original image size.
    public var imageWidth: Int, imageHeight: Int
    /// Model input size.
    public var inputWidth: Int, inputHeight: Int

    public init(scaleX: Float, scaleY: Float, padX: Float, padY: Float, imageWidth: Int, imageHeight: Int, inputWidth: Int, inputHeight: Int) {
        self.scaleX = scaleX; self.scaleY = scaleY
        self.padX = padX; self.padY = padY
        self.imageWidth = imageWidth; self.imageHeight = imageHeight
        self.inputWidth = inputWidth; self.inputHeight = inputHeight
    }

    /// The identity for an input that is not derived from an image (a raw tensor).
    public static func identity(width: Int, height: Int) -> ImageTransform {
        ImageTransform(scaleX: 1, scaleY: 1, padX: 0, padY: 0, imageWidth: width, imageHeight: height, inputWidth: width, inputHeight: height)
    }

    public func toImage(x: Float, y: Float) -> (Float, Float) {
        let ix = (x - padX) / scaleX, iy = (y - padY) / scaleY
        return (min(max(ix, 0), Float(imageWidth)), min(max(iy, 0), Float(imageHeight)))
    }

    public func toInput(x: Float, y: Float) -> (Float, Float) { (x * scaleX + padX, y * scaleY + padY) }
}

/// One row of a model's layer table, as ultralytics prints it, plus what a forward pass adds.
public struct LayerRow: Sendable, Codable, Equatable {
    public var index: Int
    /// Where the inputs come from (-1 = the previous layer), as in the YAML.
    public var from: [Int]
    public var repeats: Int
    public var params: Int
    public var module: String
    public var arguments: String
    /// FLOPs (multiply-adds counted as 2) at the table's input size.
    public var flops: Double
    /// Output shape at the table's input size, batch dim included.
    public var outputShape: [Int]
    /// Sub-modules (dotted relative path, type, params), for expanding a row.
    public var children: [LayerRow]

    public init(index: Int, from: [Int], repeats: Int, params: Int, module: String, arguments: String,
                flops: Double, outputShape: [Int], children: [LayerRow] = []) {
        self.index = index
        self.from = from
        self.repeats = repeats
        self.params = params
        self.module = module
        self.arguments = arguments
        self.flops = flops
        self.outputShape = outputShape
        self.children = children
    }
}

/// What a forward pass returns.
public struct ModelOutput: Sendable {
    /// The eval output as the reference returns it (YOLOv8 [1, 4+nc, anchors]; RT-DETR [1, 300, 4+nc]; ...).
    public var output: Tensor
    /// Extra named outputs (e.g. Deformable DETR's `logits`, `pred_boxes`).
    public var extras: [String: Tensor]
    /// Detections after the family's own post-processing, boxes in model-input pixels.
    public var detections: [Detection]

    public init(output: Tensor, extras: [String: Tensor] = [:], detections: [Detection]) {
        self.output = output
        self.extras = extras
        self.detections = detections
    }
}

/// A runnable model: a detector or a module alone.
public protocol DetectionModel: AnyObject, Sendable {
    /// A short name (catalogue id, file name).
    var name: String { get }
    /// YOLOv8, RT-DETR, Deformable DETR or Module.
    var family: String { get }
    var classNames: [String] { get }
    var preprocessing: Preprocessing { get }
    /// The input side length the model is usually run at.
    var defaultInputSize: Int { get }
    /// Input channels (3 for detectors; a module alone may take a feature map).
    var inputChannels: Int { get }
    /// The layer table at an input size (params and FLOPs computed analytically).
    func layerTable(inputSize: GridSize) -> [LayerRow]
    /// Runs the model on a preprocessed batch [1, C, H, W], recording into `trace` when given.
    func forward(_ input: Tensor, trace: Trace?) throws -> ModelOutput
}

extension LayerRow {
    /// The module type without its Python package path ("ultralytics.nn.modules.conv.Conv" -> "Conv"); a dotted
    /// module path such as Deformable DETR's "encoder.layers.0" stays whole, as `info` prints it.
    public var typeName: String {
        guard let dot = module.lastIndex(of: "."), module[module.index(after: dot)...].first?.isUppercase == true else { return module }
        return String(module[module.index(after: dot)...])
    }
}
