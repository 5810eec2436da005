import Foundation
import Tensor

/// A Hugging Face model directory as the families read it: `config.json` (parsed), the weights (`model.safetensors`,
/// a sharded `model.safetensors.index.json`, or `pytorch_model.bin` through the restricted unpickler) and the image
/// processor's `preprocessor_config.json` when there is one.
public struct HuggingFaceDirectory: Sendable {
    public let url: URL
    public let config: ConfigValue
    public let modelType: String
    public let preprocessor: ImageProcessorConfig

    public init(_ url: URL) throws {
        self.url = url
        let path = url.appendingPathComponent("config.json").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw FileFormatError(file: url.path, problem: "a directory without config.json (a Hugging Face model directory holds config.json and its weights)")
        }
        config = try HuggingFaceDirectory.readJSON(path)
        guard let type = config["model_type"]?.stringValue else {
            throw FileFormatError(file: path, problem: "has no model_type (known: \(HuggingFaceFamilies.knownTypes))")
        }
        modelType = type
        let pre = url.appendingPathComponent("preprocessor_config.json").path
        preprocessor = FileManager.default.fileExists(atPath: pre)
            ? try ImageProcessorConfig(json: try HuggingFaceDirectory.readJSON(pre), file: pre) : ImageProcessorConfig()
    }

    static func readJSON(_ path: String) throws -> ConfigValue {
        let data = try readUserFile(path, maxBytes: 64 << 20)
        guard let json = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), json is [String: Any] else {
            throw FileFormatError(file: path, problem: "not a JSON object")
        }
        return ConfigValue(json: json)
    }

    /// The checkpoint's tensors (every format `Checkpoint.open` reads for a directory) in a strict weight store.
    public func weights() throws -> WeightStore {
        let ckpt = try Checkpoint.open(path: url.path)
        return WeightStore(.checkpoint(name: ckpt.path, tensors: try ckpt.tensors))
    }
}

/// The image processor's `preprocessor_config.json` (transformers' RTDetrImageProcessor and the DETR processors):
/// resize to `size` (height x width, or shortest edge), rescale, normalise. Absent fields take RTDetrImageProcessor's
/// defaults: 640 x 640, rescale 1/255, no normalisation.
public struct ImageProcessorConfig: Sendable, Equatable {
    public var height = 640, width = 640
    public var shortestEdge: Int?
    public var doResize = true
    public var rescaleFactor: Float = 1 / 255
    public var doRescale = true
    public var doNormalize = false
    public var mean: [Float] = [0.485, 0.456, 0.406]
    public var std: [Float] = [0.229, 0.224, 0.225]

    public init() {}

    public init(json: ConfigValue, file: String) throws {
        let r = HFConfigReader(value: json, file: file)
        if let size = r.sub("size") {
            if size.has("height") || size.has("width") {
                height = try size.int("height", height)
                width = try size.int("width", width)
            } else if size.has("shortest_edge") {
                shortestEdge = try size.int("shortest_edge", 800)
            }
        }
        doResize = try r.bool("do_resize", true)
        doRescale = try r.bool("do_rescale", true)
        rescaleFactor = Float(try r.double("rescale_factor", 1.0 / 255))
        doNormalize = try r.bool("do_normalize", false)
        if let m = json["image_mean"]?.listValue { mean = m.compactMap(\.doubleValue).map(Float.init) }
        if let s = json["image_std"]?.listValue { std = s.compactMap(\.doubleValue).map(Float.init) }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw r.problem("image_mean", "and image_std must hold three numbers each (std positive)")
        }
        guard doResize else { throw r.problem("do_resize", "is false: the model needs a fixed input size, this tool always resizes") }
        guard doRescale, Swift.abs(rescaleFactor - 1 / 255) < 1e-9 else {
            throw r.problem("rescale_factor", "(\(rescaleFactor), do_rescale \(doRescale)) is not 1/255: only 8-bit images scaled to [0, 1] are supported")
        }
        guard shortestEdge == nil else {
            throw r.problem("size", "gives a shortest edge: the real-time DETRs here take a fixed height x width")
        }
        guard height == width else {
            throw r.problem("size", "is \(height)x\(width): only a square input is supported (the stretch to the square of the image processor)")
        }
    }

    /// How images become the model's input.
    public var preprocessing: Preprocessing {
        doNormalize ? .resizeSquare(mean: mean, std: std) : .resizeSquare(mean: nil, std: nil)
    }
}

/// One family of Hugging Face directories, opened by `config.json`'s `model_type`.
public struct HuggingFaceFamily: Sendable {
    public let modelType: String
    public let family: String
    /// Builds the model from the directory, with weights from its own checkpoint or from `weights` (a file) when given.
    public let open: @Sendable (HuggingFaceDirectory, _ weights: String?) throws -> any DetectionModel
}

/// The registry of Hugging Face families: adding one is one new entry.
public enum HuggingFaceFamilies {
    public static let all: [HuggingFaceFamily] = [
        HuggingFaceFamily(modelType: "deformable_detr", family: "Deformable DETR") { dir, weights in
            // The Deformable DETR loader also accepts transformers' in-memory key names.
            guard let weights else { return try DeformableDETR.open(directory: dir.url) }
            let config = try DeformableDETRConfig.load(dir.url.appendingPathComponent("config.json"))
            return try DeformableDETR.open(config: config, weights: URL(fileURLWithPath: weights), name: dir.url.lastPathComponent)
        },
        HuggingFaceFamily(modelType: "rt_detr", family: "RT-DETR", open: openRTDETR),
        HuggingFaceFamily(modelType: "rt_detr_v2", family: "RT-DETRv2", open: openRTDETR),
    ]

    /// The directory's own checkpoint, or `weights`, as a strict weight store.
    static func store(_ dir: HuggingFaceDirectory, _ weights: String?) throws -> WeightStore {
        guard let weights else { return try dir.weights() }
        return WeightStore(.checkpoint(name: weights, tensors: try Checkpoint.open(path: weights).tensors))
    }

    static func openRTDETR(_ dir: HuggingFaceDirectory, _ weights: String?) throws -> any DetectionModel {
        let config = try RTDetrConfig(json: dir.config, file: dir.url.appendingPathComponent("config.json").path)
        if config.modelType == "rt_detr_v2" {
            throw FileFormatError(file: dir.url.path, problem: "RT-DETRv2 (model_type rt_detr_v2) needs the per-level multi-scale deformable attention with the discrete method, which is not built yet")
        }
        return try HFRTDETR(config: config, store: try store(dir, weights), name: dir.url.lastPathComponent,
                            preprocessing: dir.preprocessor.preprocessing, defaultInputSize: dir.preprocessor.height)
    }

    public static var knownTypes: String { all.map(\.modelType).joined(separator: ", ") }

    /// Whether `directory` holds a config.json (a Hugging Face model directory of some model_type).
    public static func isModelDirectory(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).appendingPathComponent("config.json").path)
    }

    /// Opens a Hugging Face directory by its model_type: weights from its own checkpoint, or `weights` (a file) when
    /// given. An unknown model_type is an error naming it and the known ones.
    public static func open(directory: String, weights: String? = nil) throws -> any DetectionModel {
        let dir = try HuggingFaceDirectory(URL(fileURLWithPath: directory))
        guard let family = all.first(where: { $0.modelType == dir.modelType }) else {
            throw FileFormatError(file: dir.url.appendingPathComponent("config.json").path,
                                  problem: "model_type '\(dir.modelType)' is not a family this tool opens (known: \(knownTypes))")
        }
        return try family.open(dir, weights)
    }
}
