import Foundation
import Tensor

extension DeformableDETR {
    /// The catalogue ids of the family and their configs (assets/models/<id>.json, transformers config.json form).
    public static let catalogueIDs = ["deformable-detr", "deformable-detr-single-scale", "deformable-detr-box-refine", "deformable-detr-two-stage"]

    /// Whether `directory` looks like a Hugging Face Deformable DETR directory (config.json with
    /// model_type deformable_detr).
    public static func isModelDirectory(_ directory: URL) -> Bool {
        let cfg = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: cfg.path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return obj["model_type"] as? String == "deformable_detr"
    }

    /// Opens a Hugging Face directory: `config.json` + `model.safetensors` (the weights are required; a missing file
    /// is an error, never a silent default init).
    public static func open(directory: URL, name: String? = nil) throws -> DeformableDETR {
        let config = try DeformableDETRConfig.load(directory.appendingPathComponent("config.json"))
        let weights = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw FileFormatError(file: directory.path, problem: "no model.safetensors beside config.json")
        }
        return try open(config: config, weights: weights, name: name ?? directory.lastPathComponent)
    }

    /// Builds a model from a config and a safetensors checkpoint of transformers' layout (strict key check).
    public static func open(config: DeformableDETRConfig, weights: URL, name: String) throws -> DeformableDETR {
        let file = try SafetensorsFile(path: weights.path)
        var tensors = try file.allTensors()
        // transformers saves the classic key names (`model.backbone.conv_encoder.model.*`, `layers.{i}.fc1`,
        // `self_attn.out_proj`); a state_dict taken from memory uses its module names instead
        // (`model.backbone.model.*`, `layers.{i}.mlp.fc1`, `self_attn.o_proj`). Accept both.
        for k in Array(tensors.keys) {
            let renamed = DeformableDETR.savedKeyName(k)
            if renamed != k { tensors[renamed] = tensors.removeValue(forKey: k) }
        }
        let store = WeightStore(.checkpoint(name: weights.path, tensors: tensors))
        return try DeformableDETR(config: config, store: store, name: name)
    }

    /// The saved-file form of a key in transformers' in-memory naming (unchanged when already in that form).
    static func savedKeyName(_ key: String) -> String {
        var k = key
        if k.hasPrefix("model.backbone.model.") { k = "model.backbone.conv_encoder.model." + k.dropFirst("model.backbone.model.".count) }
        if k.hasPrefix("model.encoder.layers.") || k.hasPrefix("model.decoder.layers.") {
            k = k.replacingOccurrences(of: ".mlp.fc1.", with: ".fc1.").replacingOccurrences(of: ".mlp.fc2.", with: ".fc2.")
                .replacingOccurrences(of: ".self_attn.o_proj.", with: ".self_attn.out_proj.")
        }
        return k
    }

    /// A catalogue variant with its config from assets/models/<id>.json and, unless `weights` is given, the seeded
    /// default initialisation (transformers' own init: grid-initialised sampling offsets, so the sampling points
    /// form rings around each reference point before training).
    public static func catalogue(id: String, weights: URL? = nil, seed: UInt64 = 0) throws -> DeformableDETR {
        let url = Assets.url("models/\(id).json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FileFormatError(file: url.path, problem: "no config for '\(id)' (known: \(catalogueIDs.joined(separator: ", ")))")
        }
        let config = try DeformableDETRConfig.load(url)
        if let weights {
            return try open(config: config, weights: weights, name: id)
        }
        return try DeformableDETR(config: config, store: WeightStore(.initialise(seed: seed)), name: id)
    }
}

/// Opens a Deformable DETR from a Hugging Face directory (config.json + model.safetensors).
public func openDeformableDETR(directory: URL) throws -> DeformableDETR {
    try DeformableDETR.open(directory: directory)
}
