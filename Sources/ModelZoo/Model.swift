import Foundation
import Tensor

/// How a model family turns an image into its input tensor.
public enum Preprocessing: Sendable, Equatable {
    /// Ultralytics YOLO: keep aspect, pad with 114/255 to the smallest rectangle of stride multiples that holds the
    /// image scaled to fit the size (the predictor's `LetterBox(auto=True)`), or to the square; RGB / 255.
    case letterbox
    /// Ultralytics RT-DETR: stretch to a square (scale_fill), RGB / 255.
    case stretch
    /// Hugging Face real-time DETRs (RTDetrImageProcessor): resize to the square (antialiased bilinear, as transformers'
    /// torchvision backend), RGB / 255, then (x - mean) / std per channel when the processor normalises.
    case resizeSquare(mean: [Float]?, std: [Float]?)
    /// Hugging Face DETR family: resize so the shortest edge is `size` (longest at most `maxSize`), ImageNet mean/std.
    case resizeNormalize(size: Int, maxSize: Int)
}

/// Which input sizes a model takes, and how a requested size becomes one it takes.
public enum InputSizeRule: Sendable, Equatable {
    /// Ultralytics: every side a multiple of the model's max stride (at least 32, as AutoBackend takes it); a
    /// requested size is rounded up to the next multiple with a warning, as `check_imgsz` does.
    case strideMultiple(Int)
    /// The DETR family's image processor: the requested size is the image's shortest edge (`size` by default), the
    /// longest edge is capped at the same proportion as `maxSize` is of `size` (transformers: 800 and 1333).
    case shortestEdge(size: Int, maxSize: Int)
    /// Any size (a module alone: its stem takes any side).
    case any
    /// A static export: its own height and width only (a letterboxed input may be smaller, padded up to it); sides
    /// of letterbox rectangles are multiples of `stride`.
    case fixed(GridSize, stride: Int)

    /// The stride every input side must be a multiple of (1 when any side works).
    public var stride: Int {
        switch self {
        case .strideMultiple(let s), .fixed(_, let s): return s
        case .shortestEdge, .any: return 1
        }
    }

    /// The size a requested input size becomes, with a one-line warning when it changed: ultralytics'
    /// `check_imgsz` (`max(ceil(n / stride) * stride, stride)`); other rules take the size as it is (at least 1).
    public func check(_ requested: Int) -> CheckedInputSize {
        switch self {
        case .strideMultiple(let s):
            let rounded = max(Int((Double(requested) / Double(s)).rounded(.up)) * s, s)
            if rounded == requested { return CheckedInputSize(size: rounded, warning: nil) }
            return CheckedInputSize(size: rounded, warning: "input size \(requested) must be a multiple of the model's max stride \(s): using \(rounded)")
        case .shortestEdge:
            // The backbone and its extra levels need at least 32 pixels a side.
            if requested >= 32 { return CheckedInputSize(size: requested, warning: nil) }
            return CheckedInputSize(size: 32, warning: "input size \(requested) (the shortest edge) must be at least 32: using 32")
        case .any:
            if requested >= 1 { return CheckedInputSize(size: requested, warning: nil) }
            return CheckedInputSize(size: 1, warning: "input size \(requested) must be at least 1: using 1")
        case .fixed(let g, _):
            let side = max(g.height, g.width)
            if requested == side { return CheckedInputSize(size: side, warning: nil) }
            return CheckedInputSize(size: side, warning: "this export takes \(g.width)x\(g.height) (width x height) inputs only: using \(side), not \(requested)")
        }
    }

    /// Why an input of height x width does not fit the rule, or nil when it does.
    public func problem(height: Int, width: Int) -> String? {
        guard height >= 1, width >= 1 else { return "an input of \(width)x\(height) pixels is empty" }
        if case .fixed(let g, _) = self {
            if height <= g.height, width <= g.width { return nil }
            return "this export takes \(g.width)x\(g.height) (width x height) inputs, got \(width)x\(height)"
        }
        let s = stride
        if s > 1, height % s != 0 || width % s != 0 {
            return "\(width)x\(height) (width x height) is not a multiple of the model's max stride \(s) on each side (ultralytics refuses such tensors too)"
        }
        return nil
    }
}

/// A requested input size after the model's rule: the size used and the warning when it changed.
public struct CheckedInputSize: Sendable, Equatable {
    public var size: Int
    public var warning: String?
    public init(size: Int, warning: String?) {
        self.size = size
        self.warning = warning
    }
}

/// The thresholds of a family's post-processing. A nil field takes the family's reference default (see
/// `DetectionModel.postprocessDefaults`): ultralytics predict conf 0.25, NMS IoU 0.7, max_det 300; transformers'
/// `post_process_object_detection` threshold 0.5 and top_k 100 for Deformable DETR.
public struct PostprocessOptions: Sendable, Equatable, Codable {
    /// Keep detections whose score is above this (strictly, as ultralytics and transformers compare).
    public var confidence: Float?
    /// The IoU above which NMS suppresses a box of the same class (YOLO only; the DETR families have no NMS).
    public var iou: Float?
    /// At most this many detections (YOLO: after NMS; RT-DETR: max_det; Deformable DETR: the top-k before the threshold).
    public var maxDetections: Int?

    public init(confidence: Float? = nil, iou: Float? = nil, maxDetections: Int? = nil) {
        self.confidence = confidence
        self.iou = iou
        self.maxDetections = maxDetections
    }

    /// These options with every nil field taken from `defaults`.
    public func filled(from defaults: PostprocessOptions) -> PostprocessOptions {
        PostprocessOptions(confidence: confidence ?? defaults.confidence, iou: iou ?? defaults.iou,
                           maxDetections: maxDetections ?? defaults.maxDetections)
    }

    /// Ultralytics' predict defaults (conf 0.25, iou 0.7, max_det 300).
    public static let ultralytics = PostprocessOptions(confidence: 0.25, iou: 0.7, maxDetections: 300)
    /// transformers' `post_process_object_detection` defaults (threshold 0.5, top_k 100; no NMS).
    public static let transformersDETR = PostprocessOptions(confidence: 0.5, iou: nil, maxDetections: 100)
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
    /// The input side length the model is usually run at (ultralytics: the letterbox's longest side; Deformable
    /// DETR: the image's shortest edge).
    var defaultInputSize: Int { get }
    /// Which input sizes the model takes (ultralytics' stride multiples, the DETR family's shortest edge).
    var inputSizeRule: InputSizeRule { get }
    /// Input channels (3 for detectors; a module alone may take a feature map).
    var inputChannels: Int { get }
    /// Whether the weights are the seeded default initialisation (no checkpoint): its detections are meaningless.
    var isUntrained: Bool { get }
    /// Throws unless `shape` is an input the model takes (default: [1, inputChannels, H, W] with H and W fitting
    /// `inputSizeRule`).
    func validateInput(_ shape: [Int]) throws
    /// The family's reference post-processing thresholds, every field set.
    var postprocessDefaults: PostprocessOptions { get }
    /// The layer table at an input size (params and FLOPs computed analytically).
    func layerTable(inputSize: GridSize) -> [LayerRow]
    /// Runs the model on a preprocessed batch [1, C, H, W], recording into `trace` when given; detections as
    /// `postprocess` says (nil fields: the family's defaults). An input the model cannot take (a side that is not
    /// a multiple of its stride, the wrong channels) is a thrown error before anything runs.
    func forward(_ input: Tensor, trace: Trace?, postprocess: PostprocessOptions) throws -> ModelOutput
    /// The family's post-processing of a forward pass's output: detections with boxes in model-input pixels of an
    /// input of `inputSize`, thresholds as `options` says. `forward` returns the same with its options; calling this
    /// again re-thresholds a run without running it again.
    func detections(from output: ModelOutput, inputSize: GridSize, options: PostprocessOptions) -> [Detection]
}

extension DetectionModel {
    /// A forward pass with the family's default post-processing.
    public func forward(_ input: Tensor, trace: Trace?) throws -> ModelOutput {
        try forward(input, trace: trace, postprocess: PostprocessOptions())
    }

    /// A requested input size after the model's rule (`InputSizeRule.check`): the explorer's check of a typed size.
    public func checkInputSize(_ requested: Int) -> CheckedInputSize { inputSizeRule.check(requested) }

    /// Throws unless `shape` is [1, inputChannels, H, W] with H and W fitting the model's rule.
    public func validateInput(_ shape: [Int]) throws {
        guard shape.count == 4, shape[0] == 1, shape[1] == inputChannels else {
            throw ModuleInputError(name, "the input must be [1, \(inputChannels), H, W], got \(shape)")
        }
        if let p = inputSizeRule.problem(height: shape[2], width: shape[3]) { throw ModuleInputError(name, p) }
    }

    /// The (height, width) of the input an image of `width` x `height` becomes at `size` (nil: the default), with
    /// the family's preprocessing; `square` keeps ultralytics' square letterbox instead of the smallest rectangle.
    public func inputSize(imageWidth: Int, imageHeight: Int, size: Int? = nil, square: Bool = false) -> GridSize {
        let s = checkInputSize(size ?? defaultInputSize).size
        return Preprocess.inputSize(imageWidth: imageWidth, imageHeight: imageHeight, preprocessing, size: s,
                                    stride: inputSizeRule.stride, square: square)
    }
}

extension LayerRow {
    /// The module type without its Python package path ("ultralytics.nn.modules.conv.Conv" -> "Conv"); a dotted
    /// module path such as Deformable DETR's "encoder.layers.0" stays whole, as `info` prints it.
    public var typeName: String {
        guard let dot = module.lastIndex(of: "."), module[module.index(after: dot)...].first?.isUppercase == true else { return module }
        return String(module[module.index(after: dot)...])
    }
}
