import Foundation
import Tensor

/// The ResNet backbone of a Deformable DETR: Hugging Face `ResNetConfig` (use_timm_backbone=false) or a timm
/// ResNet named by `backbone` (use_timm_backbone=true, as in the released SenseTime checkpoints).
public struct DeformableDETRBackboneConfig: Sendable, Equatable {
    /// How the checkpoint names the backbone's parameters.
    public enum KeyLayout: String, Sendable, Equatable {
        /// transformers' ResNetModel: embedder.embedder.convolution, encoder.stages.{s}.layers.{b}.layer.{i}...
        case huggingFace
        /// timm's ResNet: conv1, bn1, layer{s+1}.{b}.conv{i+1}/bn{i+1}, downsample.0/1.
        case timm
    }

    public var layout: KeyLayout = .huggingFace
    public var numChannels = 3
    public var embeddingSize = 64
    public var hiddenSizes = [256, 512, 1024, 2048]
    public var depths = [3, 4, 6, 3]
    /// "bottleneck" or "basic".
    public var layerType = "bottleneck"
    public var downsampleInFirstStage = false
    public var downsampleInBottleneck = false
    /// Stage indices (1 = stage1 ... 4 = stage4) whose outputs feed the input projections.
    public var outStages = [4]

    public init() {}

    /// Output channels of the stages in `outStages`.
    public var outChannels: [Int] { outStages.map { hiddenSizes[$0 - 1] } }
    /// Stride of stage `s` (1-based) relative to the input.
    public func stride(ofStage s: Int) -> Int {
        var st = 4
        for i in 1 ... s where i > 1 || downsampleInFirstStage { st *= 2 }
        return st
    }
}

/// `DeformableDetrConfig` of Hugging Face transformers (the fields the forward pass uses), with its defaults.
public struct DeformableDETRConfig: Sendable, Equatable {
    public var backbone = DeformableDETRBackboneConfig()
    public var dModel = 256
    public var encoderLayers = 6
    public var decoderLayers = 6
    public var encoderFFNDim = 1024
    public var decoderFFNDim = 1024
    public var encoderHeads = 8
    public var decoderHeads = 8
    public var encoderPoints = 4
    public var decoderPoints = 4
    public var numFeatureLevels = 4
    public var numQueries = 300
    public var withBoxRefine = false
    public var twoStage = false
    public var twoStageNumProposals = 300
    /// "relu" (the default) or "gelu"/"silu".
    public var activation = "relu"
    /// "sine" (the default) or "learned".
    public var positionEmbeddingType = "sine"
    /// Class names by index (id2label); their count is the number of logits.
    public var classNames: [String] = ["LABEL_0", "LABEL_1"]

    public init() {}

    public var numLabels: Int { classNames.count }
    /// Decoder queries: the learned queries, or the two-stage proposals.
    public var queries: Int { twoStage ? twoStageNumProposals : numQueries }

    /// Parses a transformers `config.json` (DeformableDetrConfig). `file` names the file in errors.
    public static func parse(json data: Data, file: String) throws -> DeformableDETRConfig {
        guard let obj = try? JSONSerialization.jsonObject(with: data), let d = obj as? [String: Any] else {
            throw FileFormatError(file: file, problem: "not a JSON object")
        }
        if let type = d["model_type"] as? String, type != "deformable_detr" {
            throw FileFormatError(file: file, problem: "model_type is '\(type)', expected 'deformable_detr'")
        }
        var c = DeformableDETRConfig()
        func int(_ k: String, _ v: inout Int) throws {
            guard let x = d[k], !(x is NSNull) else { return }
            guard let n = x as? NSNumber, n.doubleValue == n.doubleValue.rounded() else {
                throw FileFormatError(file: file, problem: "'\(k)' must be an integer, got \(x)")
            }
            v = n.intValue
        }
        func bool(_ k: String, _ v: inout Bool) throws {
            guard let x = d[k], !(x is NSNull) else { return }
            guard let b = x as? Bool else { throw FileFormatError(file: file, problem: "'\(k)' must be true or false, got \(x)") }
            v = b
        }
        try int("d_model", &c.dModel)
        try int("encoder_layers", &c.encoderLayers)
        try int("decoder_layers", &c.decoderLayers)
        try int("encoder_ffn_dim", &c.encoderFFNDim)
        try int("decoder_ffn_dim", &c.decoderFFNDim)
        try int("encoder_attention_heads", &c.encoderHeads)
        try int("decoder_attention_heads", &c.decoderHeads)
        try int("encoder_n_points", &c.encoderPoints)
        try int("decoder_n_points", &c.decoderPoints)
        try int("num_feature_levels", &c.numFeatureLevels)
        try int("num_queries", &c.numQueries)
        try int("two_stage_num_proposals", &c.twoStageNumProposals)
        try bool("with_box_refine", &c.withBoxRefine)
        try bool("two_stage", &c.twoStage)
        if let a = d["activation_function"] as? String { c.activation = a }
        if let p = d["position_embedding_type"] as? String { c.positionEmbeddingType = p }
        if let id2label = d["id2label"] as? [String: Any], !id2label.isEmpty {
            var pairs: [(Int, String)] = []
            for (k, v) in id2label {
                guard let i = Int(k), i >= 0 else { throw FileFormatError(file: file, problem: "id2label key '\(k)' is not an index") }
                pairs.append((i, "\(v)"))
            }
            let n = (pairs.map(\.0).max() ?? -1) + 1
            var names = (0 ..< n).map { "LABEL_\($0)" }
            for (i, s) in pairs { names[i] = s }
            c.classNames = names
        } else if let n = d["num_labels"] as? Int, n > 0 {
            c.classNames = (0 ..< n).map { "LABEL_\($0)" }
        }
        c.backbone = try parseBackbone(d, numFeatureLevels: c.numFeatureLevels, file: file)

        // Validation, as transformers does it (and what this implementation needs).
        func fail(_ s: String) -> FileFormatError { FileFormatError(file: file, problem: s) }
        if c.twoStage && !c.withBoxRefine { throw fail("two_stage requires with_box_refine (as in transformers)") }
        if c.dModel <= 0 || c.dModel % 32 != 0 { throw fail("d_model \(c.dModel) must be a positive multiple of 32 (GroupNorm(32, d_model))") }
        for (name, h) in [("encoder_attention_heads", c.encoderHeads), ("decoder_attention_heads", c.decoderHeads)] where h <= 0 || c.dModel % h != 0 {
            throw fail("d_model \(c.dModel) is not divisible by \(name) \(h)")
        }
        if c.dModel % 4 != 0 { throw fail("d_model must be divisible by 4") }
        if c.numFeatureLevels < 1 { throw fail("num_feature_levels must be at least 1") }
        if c.numFeatureLevels < c.backbone.outStages.count && c.numFeatureLevels > 1 {
            throw fail("num_feature_levels \(c.numFeatureLevels) is less than the backbone's \(c.backbone.outStages.count) outputs")
        }
        if c.numFeatureLevels == 1 && c.backbone.outStages.count != 1 {
            throw fail("a single-scale model (num_feature_levels 1) needs exactly one backbone output, got \(c.backbone.outStages.count)")
        }
        if c.positionEmbeddingType != "sine" { throw fail("position_embedding_type '\(c.positionEmbeddingType)' is not supported (only 'sine')") }
        if !["relu", "gelu", "silu"].contains(c.activation) { throw fail("activation_function '\(c.activation)' is not supported (relu, gelu, silu)") }
        if c.encoderLayers < 0 || c.decoderLayers < 1 { throw fail("decoder_layers must be at least 1") }
        if c.queries < 1 { throw fail("the number of queries must be at least 1") }
        // Counts bounded before anything is built from them (2^40 layers or points aborted in an allocation); the
        // bounds are far above any published model's.
        for (key, n, most) in [("encoder_layers", c.encoderLayers, 100), ("decoder_layers", c.decoderLayers, 100),
                               ("encoder_n_points", c.encoderPoints, 256), ("decoder_n_points", c.decoderPoints, 256),
                               ("num_queries", c.numQueries, 100_000), ("num_feature_levels", c.numFeatureLevels, 64)] where n > most {
            throw fail("\(key) \(n) is more than this tool builds (at most \(most))")
        }
        return c
    }

    static func parseBackbone(_ d: [String: Any], numFeatureLevels: Int, file: String) throws -> DeformableDETRBackboneConfig {
        var b = DeformableDETRBackboneConfig()
        func fail(_ s: String) -> FileFormatError { FileFormatError(file: file, problem: s) }
        let defaultOut = numFeatureLevels > 1 ? [2, 3, 4] : [4]
        if let bc = d["backbone_config"] as? [String: Any] {
            let type = bc["model_type"] as? String ?? "resnet"
            if type == "timm_backbone" {
                return try timmBackbone(name: bc["backbone"] as? String ?? "resnet50", outIndices: bc["out_indices"] as? [Int] ?? defaultOut, file: file)
            }
            guard type == "resnet" else { throw fail("backbone_config.model_type '\(type)' is not supported (resnet or timm_backbone)") }
            if let v = bc["num_channels"] as? Int { b.numChannels = v }
            if let v = bc["embedding_size"] as? Int { b.embeddingSize = v }
            if let v = bc["hidden_sizes"] as? [Int] { b.hiddenSizes = v }
            if let v = bc["depths"] as? [Int] { b.depths = v }
            if let v = bc["layer_type"] as? String { b.layerType = v }
            if let v = bc["downsample_in_first_stage"] as? Bool { b.downsampleInFirstStage = v }
            if let v = bc["downsample_in_bottleneck"] as? Bool { b.downsampleInBottleneck = v }
            if let act = bc["hidden_act"] as? String, act != "relu" { throw fail("backbone hidden_act '\(act)' is not supported (relu)") }
            guard b.hiddenSizes.count == b.depths.count, !b.depths.isEmpty else {
                throw fail("backbone_config: hidden_sizes \(b.hiddenSizes) and depths \(b.depths) must have the same length")
            }
            guard ["bottleneck", "basic"].contains(b.layerType) else { throw fail("backbone layer_type '\(b.layerType)' (bottleneck or basic)") }
            let stageNames = ["stem"] + (1 ... b.depths.count).map { "stage\($0)" }
            if let feats = bc["out_features"] as? [String], !feats.isEmpty {
                b.outStages = try feats.map { f in
                    guard let i = stageNames.firstIndex(of: f), i > 0 else { throw fail("backbone out_features entry '\(f)' is not a stage (\(stageNames.dropFirst().joined(separator: ", ")))") }
                    return i
                }
            } else if let idx = bc["out_indices"] as? [Int], !idx.isEmpty {
                b.outStages = idx
            } else {
                b.outStages = [b.depths.count]
            }
            guard b.outStages.allSatisfy({ $0 >= 1 && $0 <= b.depths.count }) else { throw fail("backbone outputs \(b.outStages) out of range") }
            return b
        }
        // No backbone_config: the timm backbone named by `backbone` (transformers' default, use_timm_backbone=true).
        if let useTimm = d["use_timm_backbone"] as? Bool, !useTimm {
            // transformers falls back to a default ResNetConfig with out_features [stage4].
            return b
        }
        if let dil = d["dilation"] as? Bool, dil { throw fail("dilation (DC5) is not supported") }
        return try timmBackbone(name: d["backbone"] as? String ?? "resnet50", outIndices: numFeatureLevels > 1 ? [2, 3, 4] : [4], file: file)
    }

    static func timmBackbone(name: String, outIndices: [Int], file: String) throws -> DeformableDETRBackboneConfig {
        var b = DeformableDETRBackboneConfig()
        b.layout = .timm
        switch name {
        case "resnet18": b.depths = [2, 2, 2, 2]; b.layerType = "basic"
        case "resnet34": b.depths = [3, 4, 6, 3]; b.layerType = "basic"
        case "resnet50": b.depths = [3, 4, 6, 3]
        case "resnet101": b.depths = [3, 4, 23, 3]
        case "resnet152": b.depths = [3, 8, 36, 3]
        default: throw FileFormatError(file: file, problem: "timm backbone '\(name)' is not supported (resnet18/34/50/101/152)")
        }
        b.hiddenSizes = b.layerType == "basic" ? [64, 128, 256, 512] : [256, 512, 1024, 2048]
        guard outIndices.allSatisfy({ $0 >= 1 && $0 <= 4 }) else {
            throw FileFormatError(file: file, problem: "timm out_indices \(outIndices) must be within 1...4")
        }
        b.outStages = outIndices
        return b
    }

    /// Reads `config.json` from a file.
    public static func load(_ url: URL) throws -> DeformableDETRConfig {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw FileFormatError(file: url.path, problem: "cannot be read")
        }
        return try parse(json: data, file: url.path)
    }
}
