import Foundation
import Tensor

/// A Hugging Face model directory as the families read it: `config.json` (parsed), the weights (`model.safetensors`,
/// a sharded `model.safetensors.index.json`, or `pytorch_model.bin` through the restricted unpickler) and the image
/// processor's `preprocessor_config.json` when there is one.
public struct HuggingFaceDirectory: Sendable {
    public let url: URL
    /// The config.json read (in `url`, or a catalogue's config file).
    public let configPath: String
    public let config: ConfigValue
    public let modelType: String
    public let preprocessor: ImageProcessorConfig

    public init(_ url: URL) throws {
        let path = url.appendingPathComponent("config.json").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw FileFormatError(file: url.path, problem: "a directory without config.json (a Hugging Face model directory holds config.json and its weights)")
        }
        try self.init(url: url, configPath: path)
    }

    /// A config.json alone (a catalogue entry's config): its directory's preprocessor_config.json is not read.
    public init(configFile path: String) throws {
        try self.init(url: URL(fileURLWithPath: path).deletingLastPathComponent(), configPath: path, readPreprocessor: false)
    }

    init(url: URL, configPath path: String, readPreprocessor: Bool = true) throws {
        self.url = url
        configPath = path
        config = try HuggingFaceDirectory.readJSON(path)
        guard let type = config["model_type"]?.stringValue else {
            throw FileFormatError(file: path, problem: "has no model_type (known: \(HuggingFaceFamilies.knownTypes))")
        }
        modelType = type
        let pre = url.appendingPathComponent("preprocessor_config.json").path
        preprocessor = readPreprocessor && FileManager.default.fileExists(atPath: pre)
            ? try ImageProcessorConfig(json: try HuggingFaceDirectory.readJSON(pre), file: pre) : ImageProcessorConfig()
    }

    static func readJSON(_ path: String) throws -> ConfigValue {
        let data = try readUserFile(path, maxBytes: 64 << 20)
        guard let json = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), json is [String: Any] else {
            throw FileFormatError(file: path, problem: "not a JSON object")
        }
        return ConfigValue(json: json)
    }

    /// Where the weights come from: a strict store of the directory's own checkpoint (every format
    /// `Checkpoint.open` reads for a directory), of another file, or the seeded default initialisation.
    public func store(_ weights: HuggingFaceWeights) throws -> WeightStore {
        switch weights {
        case .directory:
            let ckpt = try Checkpoint.open(path: url.path)
            return WeightStore(.checkpoint(name: ckpt.path, tensors: try ckpt.tensors))
        case .file(let path):
            return WeightStore(.checkpoint(name: path, tensors: try Checkpoint.open(path: path).tensors))
        case .initialise(let seed):
            return WeightStore(.initialise(seed: seed))
        }
    }
}

/// The weights a Hugging Face family builds its model with.
public enum HuggingFaceWeights: Sendable {
    /// The directory's own checkpoint (model.safetensors, its shards or pytorch_model.bin).
    case directory
    /// Another checkpoint file (--weights).
    case file(String)
    /// The seeded default initialisation, as the reference's `_init_weights` draws it (a catalogue entry).
    case initialise(seed: UInt64)
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
    /// Builds the model from the directory's config, with the weights `weights` says, named `name`.
    public let open: @Sendable (HuggingFaceDirectory, _ weights: HuggingFaceWeights, _ name: String) throws -> any DetectionModel
}

/// The registry of Hugging Face families: adding one is one new entry.
public enum HuggingFaceFamilies {
    public static let all: [HuggingFaceFamily] = [
        HuggingFaceFamily(modelType: "deformable_detr", family: "Deformable DETR") { dir, weights, name in
            // The Deformable DETR loader also accepts transformers' in-memory key names.
            let config = try DeformableDETRConfig.load(URL(fileURLWithPath: dir.configPath))
            switch weights {
            case .directory: return try DeformableDETR.open(directory: dir.url, name: name)
            case .file(let path): return try DeformableDETR.open(config: config, weights: URL(fileURLWithPath: path), name: name)
            case .initialise(let seed): return try DeformableDETR(config: config, store: WeightStore(.initialise(seed: seed)), name: name)
            }
        },
        HuggingFaceFamily(modelType: "rt_detr", family: "RT-DETR", open: openRTDETR),
        HuggingFaceFamily(modelType: "rt_detr_v2", family: "RT-DETRv2", open: openRTDETR),
        HuggingFaceFamily(modelType: "d_fine", family: "D-FINE", open: openRTDETR),
    ]

    static func openRTDETR(_ dir: HuggingFaceDirectory, _ weights: HuggingFaceWeights, _ name: String) throws -> any DetectionModel {
        let config = try RTDetrConfig(json: dir.config, file: dir.configPath)
        return try HFRTDETR(config: config, store: try dir.store(weights), name: name,
                            preprocessing: dir.preprocessor.preprocessing, defaultInputSize: dir.preprocessor.height)
    }

    public static var knownTypes: String { all.map(\.modelType).joined(separator: ", ") }

    /// Opens a Hugging Face directory by its model_type: weights from its own checkpoint, or `weights` (a file) when
    /// given. An unknown model_type is an error naming it and the known ones.
    public static func open(directory: String, weights: String? = nil) throws -> any DetectionModel {
        let dir = try HuggingFaceDirectory(URL(fileURLWithPath: directory))
        return try family(of: dir).open(dir, weights.map { .file($0) } ?? .directory, dir.url.lastPathComponent)
    }

    /// Opens a catalogue entry's config.json (transformers' form) by its model_type: weights from `weights` (a file)
    /// or the seeded default initialisation.
    public static func open(configFile path: String, name: String, weights: String? = nil, seed: UInt64 = 0) throws -> any DetectionModel {
        let dir = try HuggingFaceDirectory(configFile: path)
        return try family(of: dir).open(dir, weights.map { .file($0) } ?? .initialise(seed: seed), name)
    }

    static func family(of dir: HuggingFaceDirectory) throws -> HuggingFaceFamily {
        guard let family = all.first(where: { $0.modelType == dir.modelType }) else {
            throw FileFormatError(file: dir.configPath, problem: "model_type '\(dir.modelType)' is not a family this tool opens (known: \(knownTypes))")
        }
        return family
    }
}
