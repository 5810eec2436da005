import Foundation
import Tensor

/// An attention module run alone, as the catalogue's `kind: module` entries offer it.
///
/// The input is either a feature map [1, C, H, W] with the module's channel count (e.g. from `--input`), or an
/// image [1, 3, H, W]: then a fixed stem derives a feature map from it: `log2(stride)` 3x3 stride-2 convolutions
/// with seeded random weights (ReLU between them, not trained), each output channel standardised to zero mean and
/// unit variance. It gives the module a map with the image's edges and textures at stride 8 (16 or 32 for some
/// modules) without pretending to be a trained backbone. `sampleFeatureMap` gives a seeded random map instead.
///
/// The module's own weights come from `weights` (its reference key names, strict when a file is given); the stem's
/// are always the seeded ones and are no part of any checkpoint.
public final class ModuleModel: DetectionModel {
    /// One catalogue module: how to build it and the feature map it runs on.
    public struct Spec: Sendable {
        public let id: String
        public let title: String
        public let channels: Int
        /// Stride of the derived feature map relative to the image.
        public let stride: Int
        public let defaultImageSize: Int
        public let arguments: String
        let make: @Sendable (WeightScope) throws -> any Module
    }

    public static let specs: [Spec] = [
        Spec(id: "cotattention", title: "CoTAttention", channels: 64, stride: 8, defaultImageSize: 256, arguments: "[64, 3]") {
            try CoTAttention($0, channels: 64, kernel: 3)
        },
        Spec(id: "cotlayer", title: "CotLayer", channels: 64, stride: 8, defaultImageSize: 256, arguments: "[64, 3]") {
            try CotLayer($0, channels: 64, kernel: 3)
        },
        Spec(id: "context-aggregation", title: "ContextAggregation", channels: 64, stride: 8, defaultImageSize: 256, arguments: "[64, 1]") {
            try ContextAggregation($0, channels: 64, reduction: 1)
        },
        Spec(id: "nam", title: "NAM", channels: 64, stride: 8, defaultImageSize: 256, arguments: "[64]") {
            try NAM($0, channels: 64)
        },
        Spec(id: "msdeformattn", title: "MSDeformAttn", channels: 64, stride: 8, defaultImageSize: 256, arguments: "[64, 4, 8, 4]") {
            try MSDeformAttnLayer($0, dModel: 64, levels: 4, heads: 8, points: 4)
        },
        Spec(id: "aifi", title: "AIFI", channels: 256, stride: 32, defaultImageSize: 640, arguments: "[256, 1024, 8]") {
            try AIFI($0, channels: 256, hidden: 1024, heads: 8)
        },
    ]

    public static func spec(_ id: String) -> Spec? {
        let key = id.lowercased()
        return specs.first { $0.id == key || $0.title.lowercased() == key }
    }

    public let spec: Spec
    /// Every catalogue module keeps its input's shape.
    public let module: any Module
    let stem: [Conv2d]
    /// Whether the module's weights are the seeded default initialisation.
    let weightsAreDefault: Bool

    /// Builds the module `id` with weights from `weights` (call `weights.finish()` afterwards for strict loading).
    public init(id: String, weights: WeightStore = WeightStore(.initialise(seed: 0))) throws {
        weightsAreDefault = weights.isDefaultInit
        guard let s = ModuleModel.spec(id) else {
            throw ModuleInputError("module", "unknown module '\(id)'; known: \(ModuleModel.specs.map(\.id).joined(separator: ", "))")
        }
        spec = s
        module = try s.make(weights.root)
        let stemStore = WeightStore(.initialise(seed: 0x5EED))
        let steps = max(Int(Foundation.log2(Double(s.stride)).rounded()), 1)
        var cin = 3
        var convs: [Conv2d] = []
        for i in 0 ..< steps {
            let cout = i == steps - 1 ? s.channels : min(s.channels, 16 << i)
            convs.append(try Conv2d(stemStore.root.scope("stem").scope(i), c1: cin, c2: cout, k: 3, stride: 2, padding: 1,
                                    bias: false, weightInit: .kaimingUniform(fanIn: cin * 9)))
            cin = cout
        }
        stem = convs
    }

    public var name: String { spec.id }
    public var family: String { "Module" }
    public var classNames: [String] { [] }
    public var preprocessing: Preprocessing { .stretch }
    public var defaultInputSize: Int { spec.defaultImageSize }
    /// The stem's stride-2 convs take any side (ceil), and every module keeps its input's grid.
    public var inputSizeRule: InputSizeRule { .any }
    public var postprocessDefaults: PostprocessOptions { .ultralytics }
    public var isUntrained: Bool { weightsAreDefault }
    public var inputChannels: Int { spec.channels }
    public var parameterCount: Int { module.parameterCount }

    /// A seeded random feature map [1, C, size, size] (standard normal).
    public func sampleFeatureMap(size: Int, seed: UInt64 = 0) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let n = spec.channels * size * size
        return Tensor(shape: [1, spec.channels, size, size], data: (0 ..< n).map { _ in rng.nextNormal() })
    }

    /// The feature map the stem derives from an image [1, 3, H, W].
    public func featureMap(fromImage image: Tensor) -> Tensor {
        var x = image
        for (i, c) in stem.enumerated() {
            x = c(x)
            if i < stem.count - 1 { x = relu(x) }
        }
        // per-channel standardisation
        let c = x.shape[1], hw = x.shape[2] * x.shape[3]
        let flat = x.reshaped([c, hw])
        let mu = mean(flat, axis: 1, keepDims: true)
        let centred = flat - mu
        let sd = sqrt(mean(centred * centred, axis: 1, keepDims: true) + 1e-5)
        return (centred / sd).reshaped(x.shape)
    }

    func featureSize(_ inputSize: GridSize) -> GridSize {
        var h = inputSize.height, w = inputSize.width
        for _ in stem { h = (h + 1) / 2; w = (w + 1) / 2 }
        return GridSize(h, w)
    }

    public func layerTable(inputSize: GridSize) -> [LayerRow] {
        let f = featureSize(inputSize)
        let fshape = [1, spec.channels, f.height, f.width]
        var flops = 0.0
        var h = inputSize.height, w = inputSize.width
        for c in stem { flops += c.flops(height: h, width: w); h = (h + 1) / 2; w = (w + 1) / 2 }
        return [
            LayerRow(index: 0, from: [-1], repeats: 1, params: stem.reduce(0) { $0 + $1.parameterCount }, module: "FixedRandomStem",
                     arguments: "[3, \(spec.channels), stride \(spec.stride)]", flops: flops, outputShape: fshape),
            LayerRow(index: 1, from: [-1], repeats: 1, params: module.parameterCount, module: spec.title,
                     arguments: spec.arguments, flops: moduleFlops(inputShape: fshape), outputShape: fshape,
                     children: (try? CallRecorder.measure(module, inputs: [fshape], path: "module"))?.rows(under: 0) ?? []),
        ]
    }

    /// The module's FLOPs on a feature map of this shape (one shape pass).
    public func moduleFlops(inputShape: [Int]) -> Double {
        module.flops(inputShape: inputShape)
    }

    /// A feature map [1, C, H, W] or an image [1, 3, H, W] (which the stem turns into one).
    public func validateInput(_ shape: [Int]) throws {
        guard shape.count == 4, shape[0] == 1, shape[1] == spec.channels || shape[1] == 3, shape[2] >= 1, shape[3] >= 1 else {
            throw ModuleInputError(spec.title, "the input must be a feature map [1, \(spec.channels), H, W] or an image [1, 3, H, W], got \(shape)")
        }
    }

    /// A module alone detects nothing.
    public func detections(from output: ModelOutput, inputSize: GridSize, options: PostprocessOptions) -> [Detection] { [] }

    public func forward(_ input: Tensor, trace: Trace?, postprocess: PostprocessOptions) throws -> ModelOutput {
        try validateInput(input.shape)
        trace?.expectedSteps = input.shape[1] == spec.channels ? 1 : 2
        var x = input
        var index = 0
        if input.shape[1] != spec.channels {
            let start = DispatchTime.now().uptimeNanoseconds
            x = featureMap(fromImage: input)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if let trace {
                let ctx = ForwardContext(trace: trace, path: "stem")
                trace.record(TraceStep(index: 0, path: "stem", moduleType: "FixedRandomStem", inputShapes: [input.shape], outputShape: x.shape,
                                       output: x, params: stem.reduce(0) { $0 + $1.parameterCount }, flops: 0, seconds: seconds))
                ctx.probe("derived feature map", .featureMap(unbatched(x)))
            }
            index = 1
        }
        let ctx = ForwardContext(trace: trace, path: "module")
        try ctx.checkCancelled()
        let start = DispatchTime.now().uptimeNanoseconds
        let y = try module.forward([x], ctx).main
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if let trace {
            trace.record(TraceStep(index: index, path: "module", moduleType: spec.title, inputShapes: [x.shape], outputShape: y.shape,
                                   output: y, params: module.parameterCount, flops: moduleFlops(inputShape: x.shape), seconds: seconds))
            if y.rank == 4 { ctx.probe("output feature map", .featureMap(unbatched(y))) }
        }
        return ModelOutput(output: y, extras: ["features": x], detections: [])
    }
}
