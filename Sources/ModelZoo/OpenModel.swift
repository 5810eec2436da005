import Foundation
import Tensor

/// What MODEL names, as `openModel` understands it.
public enum ModelReference: Sendable, Equatable {
    /// A catalogue id (assets/catalogue/<id>.yaml).
    case catalogue(CatalogueEntry)
    /// An ultralytics-style model YAML.
    case yaml(path: String)
    /// A checkpoint file (ultralytics .pt with its embedded YAML, or safetensors / .pth).
    case checkpoint(path: String)
    /// A Hugging Face model directory (config.json + model.safetensors).
    case huggingFace(directory: String)
    /// An ONNX export (.onnx), run by the engine's ONNX interpreter.
    case onnx(path: String)

    /// Resolves MODEL: an existing path first (directory, YAML, else checkpoint), then a catalogue id.
    public static func resolve(_ spec: String, catalogue: Catalogue? = nil) throws -> ModelReference {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: spec, isDirectory: &isDir) {
            if isDir.boolValue { return .huggingFace(directory: spec) }
            let ext = (spec as NSString).pathExtension.lowercased()
            if ext == "onnx" { return .onnx(path: spec) }
            return ["yaml", "yml"].contains(ext) ? .yaml(path: spec) : .checkpoint(path: spec)
        }
        let cat = try catalogue ?? Catalogue.load()
        if let e = cat.entry(spec) { return .catalogue(e) }
        let looksLikePath = spec.contains("/") || spec.contains(".")
        let hint = looksLikePath ? "no such file" : "not a catalogue id (known: \(cat.entries.map(\.id).joined(separator: ", ")))"
        throw FileFormatError(file: spec, problem: hint)
    }
}

/// Opens MODEL (a catalogue id, a model YAML path, a checkpoint path or a Hugging Face model directory) with
/// weights from `weights` (a checkpoint; strict: every missing, unused or wrong-shape key is an error naming the
/// file) or, without it, the model's own checkpoint when MODEL is one, else a seeded default initialisation.
/// `scale` picks a scale of a multi-scale YAML (else the catalogue's, the file name's, the YAML's own, or its first).
public func openModel(_ spec: String, weights: String? = nil, scale: String? = nil, seed: UInt64 = 0) throws -> any DetectionModel {
    let ref = try ModelReference.resolve(spec)
    switch ref {
    case .catalogue(let entry):
        let config = entry.config
        if config.hasSuffix(".yaml") || config.hasSuffix(".yml") {
            let path = Assets.url(config).path
            let spec = try ModelSpec.load(path: path)
            return try buildUltralytics(name: entry.id, spec: spec, scale: scale ?? entry.scale, weights: weights, seed: seed)
        }
        if config.hasPrefix("module:") {
            // A module alone (Modules/ModuleModel), run on a feature map.
            let store = try weights.map { WeightStore(.checkpoint(name: $0, tensors: try Checkpoint.open(path: $0).tensors)) }
                ?? WeightStore(.initialise(seed: seed))
            let model = try ModuleModel(id: String(config.dropFirst("module:".count)), weights: store)
            try store.finish()
            return model
        }
        if config.hasSuffix(".json"), entry.family == "Deformable DETR" {
            return try DeformableDETR.catalogue(id: entry.id, weights: weights.map { URL(fileURLWithPath: $0) }, seed: seed)
        }
        if config.hasSuffix(".json") {
            // A transformers config.json: the Hugging Face family its model_type names.
            return try HuggingFaceFamilies.open(configFile: Assets.url(config).path, name: entry.id, weights: weights, seed: seed)
        }
        throw FileFormatError(file: entry.id, problem: "config '\(config)' is neither an ultralytics model YAML, a module nor a Deformable DETR config")
    case .yaml(let path):
        // ModelSpec.load takes the scale letter from a name like yolov8s.yaml, as ultralytics does.
        let spec = try ModelSpec.load(path: path)
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return try buildUltralytics(name: stem, spec: spec, scale: scale, weights: weights, seed: seed)
    case .checkpoint(let path):
        let ckpt = try Checkpoint.open(path: path)
        guard let spec = try ckpt.modelSpec() else {
            throw FileFormatError(file: path, problem: "holds no model YAML (not an ultralytics checkpoint): pass the model (a catalogue id or its YAML) as MODEL and this file with --weights")
        }
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        if let weights {
            return try buildUltralytics(name: stem, spec: spec, scale: scale, weights: weights, seed: seed, names: ckpt.classNames)
        }
        let store = WeightStore(.checkpoint(name: path, tensors: try ckpt.tensors))
        let model = try UltralyticsModel(name: stem, spec: spec, scale: scale, weights: store, names: ckpt.classNames)
        try store.finish()
        return model
    case .huggingFace(let dir):
        // Hugging Face model directories: the family is config.json's model_type (HuggingFaceFamilies).
        return try HuggingFaceFamilies.open(directory: dir, weights: weights)
    case .onnx(let path):
        // The export holds its weights; a separate weights file has nothing to fill.
        if let weights {
            throw FileFormatError(file: weights, problem: "an ONNX model carries its own weights: --weights does not apply to \(path)")
        }
        return try ONNXDetectionModel(path: path)
    }
}

/// Builds an ultralytics graph with weights from a checkpoint file (strict) or the seeded default init.
public func buildUltralytics(name: String, spec: ModelSpec, scale: String?, weights: String?, seed: UInt64 = 0,
                             names: [String] = []) throws -> UltralyticsModel {
    guard let weights else {
        return try UltralyticsModel(name: name, spec: spec, scale: scale, weights: WeightStore(.initialise(seed: seed)),
                                    names: names.isEmpty ? nil : names)
    }
    let ckpt = try Checkpoint.open(path: weights)
    let store = WeightStore(.checkpoint(name: weights, tensors: try ckpt.tensors))
    let classNames = names.isEmpty ? ckpt.classNames : names
    let model = try UltralyticsModel(name: name, spec: spec, scale: scale, weights: store,
                                     names: classNames.isEmpty ? nil : classNames)
    try store.finish()
    return model
}
