import Foundation
import Tensor

/// A transformers `config.json` read field by field: each accessor takes transformers' default when the field is
/// absent (or null), and a field of the wrong type is an error naming the file and the field.
struct HFConfigReader {
    let value: ConfigValue
    let file: String

    func has(_ key: String) -> Bool { value[key].map { !$0.isNull } ?? false }

    func int(_ key: String, _ def: Int) throws -> Int {
        guard let v = value[key], !v.isNull else { return def }
        guard let i = v.intValue else { throw problem(key, "must be an integer, got \(v)") }
        return i
    }

    func double(_ key: String, _ def: Double) throws -> Double {
        guard let v = value[key], !v.isNull else { return def }
        guard let d = v.doubleValue else { throw problem(key, "must be a number, got \(v)") }
        return d
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard let v = value[key], !v.isNull else { return nil }
        guard let d = v.doubleValue else { throw problem(key, "must be a number or null, got \(v)") }
        return d
    }

    func bool(_ key: String, _ def: Bool) throws -> Bool {
        guard let v = value[key], !v.isNull else { return def }
        if case .bool(let b) = v { return b }
        throw problem(key, "must be true or false, got \(v)")
    }

    func string(_ key: String, _ def: String) throws -> String {
        guard let v = value[key], !v.isNull else { return def }
        guard let s = v.stringValue else { throw problem(key, "must be a string, got \(v)") }
        return s
    }

    func ints(_ key: String, _ def: [Int]) throws -> [Int] {
        guard let v = value[key], !v.isNull else { return def }
        guard let xs = v.listValue else { throw problem(key, "must be a list of integers, got \(v)") }
        return try xs.map { x in
            guard let i = x.intValue else { throw problem(key, "must be a list of integers, got \(v)") }
            return i
        }
    }

    /// An integer or a list of integers (D-FINE's `decoder_n_points`).
    func intOrInts(_ key: String, _ def: [Int]) throws -> [Int] {
        if let v = value[key], let i = v.intValue { return [i] }
        return try ints(key, def)
    }

    func sub(_ key: String) -> HFConfigReader? {
        guard let v = value[key], v.mapEntries != nil else { return nil }
        return HFConfigReader(value: v, file: file)
    }

    func problem(_ key: String, _ text: String) -> FileFormatError {
        FileFormatError(file: file, problem: "'\(key)' \(text)")
    }

    /// A transformers activation name (ACT2FN) as the layer library's activation.
    func activation(_ key: String, _ def: String) throws -> Activation {
        let name = try string(key, def)
        guard let a = Activation(huggingFaceName: name) else {
            throw problem(key, "names the activation '\(name)', which this tool does not implement (known: relu, silu, swish, gelu, sigmoid, hardswish, linear)")
        }
        return a
    }
}

/// `RTDetrResNetConfig` (`model_type` rt_detr_resnet): RT-DETR's ResNet-vd backbone.
public struct RTDetrResNetConfig: Sendable, Equatable {
    public var numChannels = 3
    public var embeddingSize = 64
    public var hiddenSizes = [256, 512, 1024, 2048]
    public var depths = [3, 4, 6, 3]
    /// "basic" (ResNet-18/34) or "bottleneck" (ResNet-50/101).
    public var layerType = "bottleneck"
    public var hiddenAct: Activation = .relu
    public var downsampleInFirstStage = false
    public var downsampleInBottleneck = false
    /// Stage indices the backbone outputs (0 = stem, 1... = stages), transformers' `out_indices`.
    public var outIndices = [2, 3, 4]

    init(_ r: HFConfigReader?) throws {
        guard let r else { return }
        let type = try r.string("model_type", "rt_detr_resnet")
        guard type == "rt_detr_resnet" else {
            throw r.problem("backbone_config.model_type", "is '\(type)': RT-DETR here takes the rt_detr_resnet backbone")
        }
        numChannels = try r.int("num_channels", numChannels)
        embeddingSize = try r.int("embedding_size", embeddingSize)
        hiddenSizes = try r.ints("hidden_sizes", hiddenSizes)
        depths = try r.ints("depths", depths)
        layerType = try r.string("layer_type", layerType)
        guard ["basic", "bottleneck"].contains(layerType) else {
            throw r.problem("backbone_config.layer_type", "is '\(layerType)' (known: basic, bottleneck)")
        }
        hiddenAct = try r.activation("hidden_act", "relu")
        downsampleInFirstStage = try r.bool("downsample_in_first_stage", false)
        downsampleInBottleneck = try r.bool("downsample_in_bottleneck", false)
        guard hiddenSizes.count == depths.count, !depths.isEmpty, depths.allSatisfy({ $0 >= 1 }) else {
            throw r.problem("backbone_config.depths", "(\(depths)) and hidden_sizes (\(hiddenSizes)) must be lists of the same length, every depth at least 1")
        }
        if let names = r.value["out_features"]?.listValue?.compactMap(\.stringValue), !names.isEmpty {
            let stages = ["stem"] + (1 ... depths.count).map { "stage\($0)" }
            outIndices = try names.map { n in
                guard let i = stages.firstIndex(of: n) else { throw r.problem("backbone_config.out_features", "names '\(n)' (known: \(stages.joined(separator: ", ")))") }
                return i
            }
        } else {
            outIndices = try r.ints("out_indices", outIndices)
        }
        guard outIndices.allSatisfy({ $0 >= 1 && $0 <= depths.count }) else {
            throw r.problem("backbone_config.out_indices", "(\(outIndices)) must name stages 1...\(depths.count)")
        }
    }

    /// The channels of each output (`out_indices`).
    public var outChannels: [Int] { outIndices.map { hiddenSizes[$0 - 1] } }
}

/// `RTDetrConfig` / `RTDetrV2Config` / `DFineConfig` (model_type rt_detr, rt_detr_v2, d_fine): every field the model
/// reads, transformers' defaults when absent. Training-only fields (losses, matcher, denoising noise) are not read;
/// `num_denoising` is, since it decides whether the checkpoint holds `denoising_class_embed`.
public struct RTDetrConfig: Sendable {
    public var modelType = "rt_detr"
    /// RT-DETR's ResNet-vd (rt_detr, rt_detr_v2; its defaults when the model is D-FINE).
    public var backbone: RTDetrResNetConfig
    /// D-FINE's HGNetV2 (d_fine), nil otherwise.
    public var hgnet: HGNetV2Config?
    public var numLabels = 80
    public var classNames: [String] = []
    public var layerNormEps: Float = 1e-5
    public var batchNormEps: Float = 1e-5
    public var initializerRange: Float = 0.01
    public var initializerBiasPriorProb: Double?
    public var freezeBackboneBatchNorms = true
    public var encoderHiddenDim = 256
    public var encoderInChannels = [512, 1024, 2048]
    public var featStrides = [8, 16, 32]
    public var encoderLayers = 1
    public var encoderFFNDim = 1024
    public var encoderAttentionHeads = 8
    public var encodeProjLayers = [2]
    public var positionalEncodingTemperature: Float = 10000
    public var encoderActivation: Activation = .gelu
    public var activation: Activation = .silu
    /// When set, transformers runs the AIFI layers without a position embedding in eval (its `eval_size` branch).
    public var evalSize: Int?
    public var normalizeBefore = false
    public var hiddenExpansion: Double = 1
    public var dModel = 256
    public var numQueries = 300
    public var decoderInChannels = [256, 256, 256]
    public var decoderFFNDim = 1024
    public var numFeatureLevels = 3
    public var decoderPoints = 4
    public var decoderLayers = 6
    public var decoderAttentionHeads = 8
    public var decoderActivation: Activation = .relu
    public var numDenoising = 100
    public var learnInitialQuery = false
    /// (height, width) the anchors are generated for once, instead of from the feature maps of each input.
    public var anchorImageSize: (Int, Int)?
    public var withBoxRefine = true
    // RT-DETRv2
    public var decoderLevels = 3
    public var decoderOffsetScale: Float = 0.5
    /// "default" (bilinear) or "discrete" (nearest cell).
    public var decoderMethod = "default"
    /// Points per level (RT-DETRv2 and D-FINE take a list; one count is the same on every level).
    public var decoderPointsPerLevel = [4, 4, 4]
    // D-FINE: fine-grained distribution refinement and its heads.
    /// Bins per edge minus one (`max_num_bins`): each edge's distribution has max_num_bins + 1 bins.
    public var maxNumBins = 32
    /// The weighting function's curvature and the distance scale (`reg_scale`).
    public var regScale: Float = 4
    /// The weighting function's upper bound (`up`): the outer bins stand for +-2 * up * reg_scale.
    public var up: Float = 0.5
    /// LQE: the top-k probabilities of each edge's distribution (`top_prob_values`) into an MLP of `lqe_layers`.
    public var topProbValues = 4
    public var lqeHiddenDim = 64
    public var lqeLayers = 2
    /// `depth_mult`: RepNCSPELAN4's CSP blocks have round(3 * depth_mult) RepVGG blocks each.
    public var depthMult: Double = 1
    /// `eval_idx` (resolved to 0 ... decoder_layers - 1): the layer whose boxes and scores are the output.
    public var evalIdx = 5
    public var layerScale: Double = 1

    public var isDFine: Bool { modelType == "d_fine" }
    /// The image channels the backbone takes.
    public var numChannels: Int { hgnet?.numChannels ?? backbone.numChannels }
    /// The channels of each backbone output.
    public var backboneOutChannels: [Int] { hgnet?.outChannels ?? backbone.outChannels }
    /// RepVGG blocks per CSP block of D-FINE's RepNCSPELAN4: Python's round(3 * depth_mult) (half to even).
    public var elanBlocks: Int { Int((3 * depthMult).rounded(.toNearestOrEven)) }

    public init(json value: ConfigValue, file: String) throws {
        let r = HFConfigReader(value: value, file: file)
        modelType = try r.string("model_type", "rt_detr")
        if modelType == "d_fine" {
            backbone = try RTDetrResNetConfig(nil)
            guard let b = r.sub("backbone_config") else {
                throw r.problem("backbone_config", "is missing: D-FINE here takes an hgnet_v2 backbone_config")
            }
            let type = try b.string("model_type", "hgnet_v2")
            guard type == "hgnet_v2" else { throw r.problem("backbone_config.model_type", "is '\(type)': D-FINE here takes the hgnet_v2 backbone") }
            hgnet = try HGNetV2Config(b)
        } else {
            backbone = try RTDetrResNetConfig(r.sub("backbone_config"))
        }
        if r.has("backbone") && !r.has("backbone_config") {
            throw r.problem("backbone", "names a timm or Hub backbone ('\(try r.string("backbone", ""))'): only a backbone_config (rt_detr_resnet, hgnet_v2) is supported")
        }
        if let labels = value["id2label"]?.mapEntries {
            classNames = labels.compactMap { p in Int(p.key).map { ($0, p.value.stringValue ?? p.value.description) } }
                .sorted { $0.0 < $1.0 }.map(\.1)
        }
        numLabels = try r.int("num_labels", classNames.isEmpty ? 80 : classNames.count)
        if classNames.count != numLabels { classNames = (0 ..< numLabels).map { "LABEL_\($0)" } }
        layerNormEps = Float(try r.double("layer_norm_eps", 1e-5))
        batchNormEps = Float(try r.double("batch_norm_eps", 1e-5))
        initializerRange = Float(try r.double("initializer_range", 0.01))
        initializerBiasPriorProb = try r.optionalDouble("initializer_bias_prior_prob")
        freezeBackboneBatchNorms = try r.bool("freeze_backbone_batch_norms", true)
        encoderHiddenDim = try r.int("encoder_hidden_dim", encoderHiddenDim)
        encoderInChannels = try r.ints("encoder_in_channels", encoderInChannels)
        featStrides = try r.ints("feat_strides", featStrides)
        encoderLayers = try r.int("encoder_layers", encoderLayers)
        encoderFFNDim = try r.int("encoder_ffn_dim", encoderFFNDim)
        encoderAttentionHeads = try r.int("encoder_attention_heads", encoderAttentionHeads)
        encodeProjLayers = try r.ints("encode_proj_layers", encodeProjLayers)
        positionalEncodingTemperature = Float(try r.double("positional_encoding_temperature", 10000))
        encoderActivation = try r.activation("encoder_activation_function", "gelu")
        activation = try r.activation("activation_function", "silu")
        evalSize = r.has("eval_size") ? try r.int("eval_size", 0) : nil
        normalizeBefore = try r.bool("normalize_before", false)
        hiddenExpansion = try r.double("hidden_expansion", 1)
        // Checked before it sizes anything (a channel count is Int(expansion * width), which traps on 1e30 or NaN).
        guard hiddenExpansion.isFinite, hiddenExpansion > 0, hiddenExpansion <= 64 else {
            throw r.problem("hidden_expansion", "(\(hiddenExpansion)) must be a number above 0 and at most 64")
        }
        dModel = try r.int("d_model", dModel)
        numQueries = try r.int("num_queries", numQueries)
        decoderInChannels = try r.ints("decoder_in_channels", decoderInChannels)
        decoderFFNDim = try r.int("decoder_ffn_dim", decoderFFNDim)
        numFeatureLevels = try r.int("num_feature_levels", numFeatureLevels)
        // Checked before anything is sized by it (a per-level list is made from it just below).
        guard (1 ... 64).contains(numFeatureLevels) else {
            throw r.problem("num_feature_levels", "(\(numFeatureLevels)) must be between 1 and 64")
        }
        decoderPointsPerLevel = try r.intOrInts("decoder_n_points", [decoderPoints])
        if decoderPointsPerLevel.count == 1 { decoderPointsPerLevel = [Int](repeating: decoderPointsPerLevel[0], count: numFeatureLevels) }
        decoderPoints = decoderPointsPerLevel.max() ?? decoderPoints
        decoderLayers = try r.int("decoder_layers", decoderLayers)
        decoderAttentionHeads = try r.int("decoder_attention_heads", decoderAttentionHeads)
        decoderActivation = try r.activation("decoder_activation_function", "relu")
        numDenoising = try r.int("num_denoising", numDenoising)
        learnInitialQuery = try r.bool("learn_initial_query", false)
        if let v = value["anchor_image_size"], !v.isNull {
            if let i = v.intValue { anchorImageSize = (i, i) }
            else if let xs = v.listValue?.compactMap(\.intValue), xs.count == 2 { anchorImageSize = (xs[0], xs[1]) }
            else { throw r.problem("anchor_image_size", "must be an integer or [height, width], got \(v)") }
        }
        withBoxRefine = try r.bool("with_box_refine", true)
        decoderLevels = try r.int("decoder_n_levels", 3)
        decoderOffsetScale = Float(try r.double("decoder_offset_scale", 0.5))
        decoderMethod = try r.string("decoder_method", "default")
        if isDFine {
            maxNumBins = try r.int("max_num_bins", maxNumBins)
            regScale = Float(try r.double("reg_scale", 4))
            up = Float(try r.double("up", 0.5))
            topProbValues = try r.int("top_prob_values", topProbValues)
            lqeHiddenDim = try r.int("lqe_hidden_dim", lqeHiddenDim)
            lqeLayers = try r.int("lqe_layers", lqeLayers)
            depthMult = try r.double("depth_mult", 1)
            guard depthMult.isFinite, depthMult > 0, depthMult <= 64 else {
                throw r.problem("depth_mult", "(\(depthMult)) must be a number above 0 and at most 64")
            }
            layerScale = try r.double("layer_scale", 1)
            let idx = try r.int("eval_idx", -1)
            evalIdx = idx >= 0 ? idx : decoderLayers + idx
            guard evalIdx == decoderLayers - 1 else {
                throw r.problem("eval_idx", "(\(idx)) does not name the last decoder layer: transformers' DFineDecoder then builds extra layers without box heads and cannot run them in eval either; only -1 (or decoder_layers - 1) is supported")
            }
        }
        try validate(r)
    }

    func validate(_ r: HFConfigReader) throws {
        guard ["rt_detr", "rt_detr_v2", "d_fine"].contains(modelType) else { throw r.problem("model_type", "is '\(modelType)', not rt_detr, rt_detr_v2 or d_fine") }
        guard encoderInChannels == backboneOutChannels else {
            throw r.problem("encoder_in_channels", "(\(encoderInChannels)) must equal the backbone's output channels (\(backboneOutChannels))")
        }
        // Counts bounded before anything is built from them: 10^6 layers took minutes to build, 2^40 layers or points
        // aborted in an allocation. The bounds are far above any published model's.
        for (key, n, most) in [("encoder_layers", encoderLayers, 100), ("decoder_layers", decoderLayers, 100),
                               ("num_queries", numQueries, 100_000), ("decoder_n_points", decoderPointsPerLevel.max() ?? 0, 256),
                               ("lqe_layers", lqeLayers, 100)] {
            guard n <= most else { throw r.problem(key, "(\(n)) is more than this tool builds (at most \(most))") }
        }
        guard featStrides.count == encoderInChannels.count else {
            throw r.problem("feat_strides", "(\(featStrides)) must have one stride per encoder input (\(encoderInChannels.count))")
        }
        guard encodeProjLayers.allSatisfy({ $0 >= 0 && $0 < encoderInChannels.count }) else {
            throw r.problem("encode_proj_layers", "(\(encodeProjLayers)) must index the \(encoderInChannels.count) encoder inputs")
        }
        guard encoderHiddenDim > 0, encoderHiddenDim % 4 == 0, encoderHiddenDim % max(encoderAttentionHeads, 1) == 0, encoderAttentionHeads > 0 else {
            throw r.problem("encoder_hidden_dim", "(\(encoderHiddenDim)) must be a multiple of 4 and of encoder_attention_heads (\(encoderAttentionHeads))")
        }
        guard dModel > 0, decoderAttentionHeads > 0, dModel % decoderAttentionHeads == 0 else {
            throw r.problem("d_model", "(\(dModel)) must be divisible by decoder_attention_heads (\(decoderAttentionHeads))")
        }
        guard decoderInChannels.count == encoderInChannels.count, isDFine || decoderInChannels.allSatisfy({ $0 == encoderHiddenDim }),
              !isDFine || decoderInChannels.last == encoderHiddenDim else {
            throw r.problem("decoder_in_channels", "(\(decoderInChannels)) must be the encoder's \(encoderInChannels.count) outputs of encoder_hidden_dim (\(encoderHiddenDim)) channels")
        }
        guard numFeatureLevels >= decoderInChannels.count else {
            throw r.problem("num_feature_levels", "(\(numFeatureLevels)) must be at least the number of encoder outputs (\(decoderInChannels.count))")
        }
        guard numQueries > 0, decoderLayers > 0, decoderPoints > 0 else {
            throw r.problem("num_queries", "num_queries, decoder_layers and decoder_n_points must be positive")
        }
        guard withBoxRefine else {
            throw r.problem("with_box_refine", "is false: transformers' RT-DETR heads always refine the boxes; a checkpoint without bbox_embed is not supported")
        }
        guard Int(Double(encoderHiddenDim) * hiddenExpansion) > 0 else {
            throw r.problem("hidden_expansion", "(\(hiddenExpansion)) leaves the CSP blocks without channels")
        }
        guard decoderPointsPerLevel.count == numFeatureLevels, decoderPointsPerLevel.allSatisfy({ $0 > 0 }) else {
            throw r.problem("decoder_n_points", "(\(decoderPointsPerLevel)) must be one positive count, or one per feature level (\(numFeatureLevels))")
        }
        guard modelType != "rt_detr" || Set(decoderPointsPerLevel).count == 1 else {
            throw r.problem("decoder_n_points", "(\(decoderPointsPerLevel)): RT-DETR takes one count for every level")
        }
        if isDFine {
            guard ["default", "discrete"].contains(decoderMethod) else {
                throw r.problem("decoder_method", "is '\(decoderMethod)' (known: default, discrete)")
            }
            guard maxNumBins >= 4, maxNumBins % 2 == 0 else {
                throw r.problem("max_num_bins", "(\(maxNumBins)) must be even and at least 4 (the weighting function is symmetric around its middle bin)")
            }
            guard regScale != 0, up != 0 else { throw r.problem("reg_scale", "(\(regScale)) and up (\(up)) must be non-zero") }
            guard topProbValues >= 1, topProbValues <= maxNumBins + 1, lqeLayers >= 1, lqeHiddenDim >= 1 else {
                throw r.problem("top_prob_values", "(\(topProbValues)) must be 1 ... max_num_bins + 1, lqe_layers (\(lqeLayers)) and lqe_hidden_dim (\(lqeHiddenDim)) positive")
            }
            guard elanBlocks >= 1 else { throw r.problem("depth_mult", "(\(depthMult)) leaves RepNCSPELAN4 without RepVGG blocks") }
            guard Int((hiddenExpansion * Double(encoderHiddenDim) / 2).rounded(.down)) > 0 else {
                throw r.problem("hidden_expansion", "(\(hiddenExpansion)) leaves RepNCSPELAN4's branches without channels")
            }
        }
        if modelType == "rt_detr_v2" {
            guard ["default", "discrete"].contains(decoderMethod) else {
                throw r.problem("decoder_method", "is '\(decoderMethod)' (known: default, discrete)")
            }
            guard decoderLevels == numFeatureLevels else {
                throw r.problem("decoder_n_levels", "(\(decoderLevels)) must equal num_feature_levels (\(numFeatureLevels))")
            }
        }
    }

    /// The class-logit bias of transformers' init: -log((1 - p) / p), p = initializer_bias_prior_prob or 1 / (labels + 1).
    var priorBias: Float {
        let p = initializerBiasPriorProb ?? 1 / Double(numLabels + 1)
        return Float(-Foundation.log((1 - p) / p))
    }
}
