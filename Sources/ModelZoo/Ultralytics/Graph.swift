import Foundation
import Tensor

/// What a top-level layer of an ultralytics graph returns.
public struct LayerOutput: Sendable {
    /// The tensor the next layers consume (for a head, its eval output: Detect [1, 4+nc, anchors],
    /// RTDETRDecoder [1, 300, 4+nc]).
    public var main: Tensor
    /// Further named outputs a head may have (they end up in `ModelOutput.extras`).
    public var extras: [String: Tensor]

    public init(_ main: Tensor, extras: [String: Tensor] = [:]) {
        self.main = main
        self.extras = extras
    }
}

/// An error in building a model from its YAML: names the file, the row and the problem.
public struct ModelBuildError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let row: Int?
    public let problem: String
    public init(file: String, row: Int?, problem: String) {
        self.file = file
        self.row = row
        self.problem = problem
    }
    public var description: String {
        if let row { return "\(file): layer \(row): \(problem)" }
        return "\(file): \(problem)"
    }
}

/// What a module's builder sees of its YAML row, as ultralytics' `parse_model` would have prepared it.
public struct BuildContext: Sendable {
    /// Layer index i (the weights live under `model.{i}`).
    public let index: Int
    /// The row's `from` as written (-1 = previous layer).
    public let from: [Int]
    /// The output channels of each input (`ch[f]` in parse_model), in `from` order.
    public let inputChannels: [Int]
    /// Repeats after the depth gain: `max(round(n * depth), 1)` when n > 1, else n.
    public let repeats: Int
    /// Repeats as written in the YAML.
    public let rawRepeats: Int
    /// The module name as written (e.g. "C2f", "nn.Upsample").
    public let module: String
    /// The row's arguments after substitution of `nc` and other config names and of Python literals.
    public var args: [LayerArg]
    public let nc: Int
    public let depthMultiple: Double
    public let widthMultiple: Double
    public let maxChannels: Int
    public let scale: String?
    public let regMax: Int
    /// The YAML's `activation` (e.g. "nn.ReLU()"), nil for SiLU.
    public let activation: String?
    /// parse_model's `legacy`: true until a C3k2, A2C2f or C2fCIB row (YOLO11 and later) comes before this one;
    /// Detect builds its class branch the v8 way while it holds.
    public let legacy: Bool
    /// The YAML's `end2end` as parse_model passes it to Detect (nil when the file has none): true adds the one-to-one
    /// branches (YOLO26).
    public let end2endValue: Bool?
    /// The weights of this layer (`model.{i}`).
    public let weights: WeightScope
    /// The spec's source (file), for errors.
    public let file: String

    public var end2end: Bool { end2endValue ?? false }
    /// `end2end` as ultralytics prints it among Detect's arguments (None when the YAML has none).
    public var end2endArgument: LayerArg { end2endValue.map { .bool($0) } ?? .null }

    /// The single input's channels (`c1`).
    public var c1: Int { inputChannels[0] }

    /// `make_divisible(min(c, max_channels) * width, 8)`, as parse_model scales base modules' output channels.
    public func scaledChannels(_ c: Int) -> Int {
        makeDivisible(Double(min(c, maxChannels)) * widthMultiple, 8)
    }

    public func error(_ problem: String) -> ModelBuildError {
        ModelBuildError(file: file, row: index, problem: "\(module): \(problem)")
    }

    /// The argument at `i`, or nil when absent.
    public func arg(_ i: Int) -> LayerArg? { i < args.count ? args[i] : nil }

    /// An integer argument, checked against the range its name allows (`allowedRange(for:)`, or `range`):
    /// every integer a YAML supplies passes here before a builder computes with it.
    public func int(_ i: Int, default d: Int? = nil, name: String = "", range: ClosedRange<Int>? = nil) throws -> Int {
        guard let a = arg(i), a != .null else {
            if let d { return d }
            throw error("argument \(i)\(name.isEmpty ? "" : " (\(name))") is missing")
        }
        guard let v = a.intValue else { throw error("argument \(i)\(name.isEmpty ? "" : " (\(name))") must be an integer, got \(a)") }
        return try checked(v, argument: i, name: name, range: range)
    }

    /// An integer argument that may be None (e.g. Conv's padding).
    public func optionalInt(_ i: Int, name: String = "") throws -> Int? {
        guard let a = arg(i), a != .null else { return nil }
        guard let v = a.intValue else { throw error("argument \(i) must be an integer or None, got \(a)") }
        return try checked(v, argument: i, name: name, range: 0 ... ModelSpec.Limits.integerArgument)
    }

    /// `v` if it is within `range` (or the range `name` allows), else an error naming the argument and the limits.
    public func checked(_ v: Int, argument i: Int, name: String, range: ClosedRange<Int>? = nil) throws -> Int {
        let allowed = range ?? BuildContext.allowedRange(for: name)
        guard allowed.contains(v) else {
            throw error("argument \(i)\(name.isEmpty ? "" : " (\(name))") is \(v), outside the \(allowed.lowerBound)...\(allowed.upperBound) this tool accepts")
        }
        return v
    }

    /// The values an integer argument may take, by its parse_model name: channel counts up to
    /// `ModelSpec.Limits.channels`, kernels up to `Limits.kernel`, counts (stride, groups, repeats, heads,
    /// points, levels, queries, layers) at least 1; any other integer within +-`Limits.integerArgument`.
    public static func allowedRange(for name: String) -> ClosedRange<Int> {
        typealias L = ModelSpec.Limits
        switch name {
        case "c1", "c2", "cm", "hd", "d_ffn": return 1 ... L.channels
        case "k": return 1 ... L.kernel
        case "nc": return 1 ... L.classes
        case "s", "g", "d", "n", "e", "num_heads", "nq", "ndp", "nh", "ndl", "n_levels", "n_heads", "n_points":
            return 1 ... L.integerArgument
        default: return -L.integerArgument ... L.integerArgument
        }
    }

    /// Argument `i` as an output channel count, width-scaled as parse_model scales base modules' `c2`.
    public func outputChannels(_ i: Int, name: String = "c2") throws -> Int {
        let c = scaledChannels(try int(i, name: name))
        guard c <= ModelSpec.Limits.channels else {
            throw error("argument \(i) (\(name)) is \(c) channels after width scaling, more than the \(ModelSpec.Limits.channels) this tool builds")
        }
        return c
    }

    public func double(_ i: Int, default d: Double? = nil, name: String = "") throws -> Double {
        guard let a = arg(i), a != .null else {
            if let d { return d }
            throw error("argument \(i)\(name.isEmpty ? "" : " (\(name))") is missing")
        }
        guard let v = a.doubleValue else { throw error("argument \(i) must be a number, got \(a)") }
        return v
    }

    public func bool(_ i: Int, default d: Bool, name: String = "") throws -> Bool {
        guard let a = arg(i), a != .null else { return d }
        guard let v = a.boolValue else { throw error("argument \(i)\(name.isEmpty ? "" : " (\(name))") must be True or False, got \(a)") }
        return v
    }

    /// An activation argument as ultralytics' Conv takes it: True = the default (SiLU, or the YAML's
    /// `activation`), False/None = identity, or a module name such as "nn.ReLU()".
    public func activationArg(_ i: Int, default d: Bool = true) throws -> Activation {
        guard let a = arg(i) else { return d ? defaultActivation : .identity }
        switch a {
        case .bool(let b): return b ? defaultActivation : .identity
        case .null: return .identity
        case .string(let s):
            guard let act = Activation(pythonName: s) else { throw error("unknown activation \(s)") }
            return act
        default: throw error("argument \(i) must be an activation, got \(a)")
        }
    }

    /// SiLU, unless the YAML's `activation` key replaced it.
    public var defaultActivation: Activation {
        activation.flatMap { Activation(pythonName: $0) } ?? .silu
    }
}

/// What a builder returns: the layer, its output channels (parse_model's `c2`), and the arguments as
/// ultralytics prints them in its layer table.
public struct BuiltLayer: Sendable {
    public var layer: any Module
    public var outputChannels: Int
    public var printedArguments: [LayerArg]
    /// The module type as ultralytics prints it (e.g. "ultralytics.nn.modules.block.C2f"); defaults to the YAML name.
    public var typeName: String?

    public init(_ layer: any Module, outputChannels: Int, arguments: [LayerArg], typeName: String? = nil) {
        self.layer = layer
        self.outputChannels = outputChannels
        self.printedArguments = arguments
        self.typeName = typeName
    }
}

/// Module builders by YAML name. Built-in blocks register themselves on first use; other files add theirs with
/// `UltralyticsRegistry.register("NAM") { ctx in ... }` (see `registerAttentionModules` in Modules/).
public final class UltralyticsRegistry: @unchecked Sendable {
    public typealias Builder = @Sendable (BuildContext) throws -> BuiltLayer

    private var builders: [String: Builder] = [:]
    private let lock = NSLock()
    private static let shared: UltralyticsRegistry = {
        let r = UltralyticsRegistry()
        r.installBuiltins()
        return r
    }()

    private init() {}

    /// The built-in blocks, one line each (their builders read the row as parse_model does), then the attention
    /// modules the tutorials graft.
    private func installBuiltins() {
        add("Conv", Conv.build)
        add("DWConv", Conv.buildDW)
        add("Bottleneck", Bottleneck.build)
        add("C2f", C2f.build)
        add("SPPF", SPPF.build)
        add("RepC3", RepC3.build)
        add("HGStem", HGStem.build)
        add("HGBlock", HGBlock.build)
        add("LightConv", LightConv.build)
        add("ResNetLayer", ResNetLayer.build)
        add("Concat", Concat.build)
        add("nn.Upsample", Upsample.build)
        add("Upsample", Upsample.build)
        add("Detect", Detect.build)
        add("C3k2", C3k2.build)
        add("C2PSA", C2PSA.build)
        add("SCDown", SCDown.build)
        add("C2fCIB", C2fCIB.build)
        add("PSA", PSA.build)
        add("v10Detect", Detect.buildV10)
        add("A2C2f", A2C2f.build)
        UltralyticsRegistry.registerAttentionModules(into: self)
    }

    /// Adds (or replaces) the builder for a YAML module name.
    public func add(_ name: String, _ builder: @escaping Builder) {
        lock.lock(); defer { lock.unlock() }
        builders[name] = builder
    }

    public static func register(_ name: String, _ builder: @escaping Builder) {
        shared.add(name, builder)
    }

    public static func builder(_ name: String) -> Builder? {
        let r = shared
        r.lock.lock(); defer { r.lock.unlock() }
        if let b = r.builders[name] { return b }
        // `nn.Upsample` and `Upsample`, `torch.nn.X` and `nn.X` name the same module.
        if name.hasPrefix("torch.nn.") { return r.builders[String(name.dropFirst(6))] }
        return nil
    }

    public static var knownModules: [String] {
        let r = shared
        r.lock.lock(); defer { r.lock.unlock() }
        return r.builders.keys.sorted()
    }
}

/// `math.ceil(x / divisor) * divisor`, as ultralytics' make_divisible.
public func makeDivisible(_ x: Double, _ divisor: Int) -> Int {
    Int((x / Double(divisor)).rounded(.up)) * divisor
}

/// Activations the ultralytics blocks use.
public enum Activation: Sendable, Equatable, CustomStringConvertible {
    case identity, silu, relu, gelu, sigmoid, hardswish
    case leakyRelu(Float)

    /// From a Python expression as YAMLs write it: "nn.ReLU()", "torch.nn.SiLU()", "nn.LeakyReLU(0.1)".
    public init?(pythonName s: String) {
        var n = s.replacingOccurrences(of: " ", with: "")
        if n.hasPrefix("torch.") { n.removeFirst(6) }
        if n.hasPrefix("nn.") { n.removeFirst(3) }
        if n.hasPrefix("LeakyReLU") {
            let inner = n.dropFirst("LeakyReLU".count).trimmingCharacters(in: CharacterSet(charactersIn: "()"))
            self = .leakyRelu(Float(inner.split(separator: "=").last.map(String.init) ?? "") ?? 0.01)
            return
        }
        switch n.replacingOccurrences(of: "()", with: "").replacingOccurrences(of: "(inplace=True)", with: "") {
        case "SiLU": self = .silu
        case "ReLU": self = .relu
        case "GELU": self = .gelu
        case "Sigmoid": self = .sigmoid
        case "Hardswish": self = .hardswish
        case "Identity": self = .identity
        default: return nil
        }
    }

    /// From a transformers config's activation name ("relu", "silu"/"swish", "gelu", "sigmoid", "hardswish",
    /// "linear"/"identity").
    public init?(huggingFaceName name: String) {
        switch name {
        case "relu": self = .relu
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "sigmoid": self = .sigmoid
        case "hardswish": self = .hardswish
        case "linear", "identity": self = .identity
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .identity: return "Identity"
        case .silu: return "SiLU"
        case .relu: return "ReLU"
        case .gelu: return "GELU"
        case .sigmoid: return "Sigmoid"
        case .hardswish: return "Hardswish"
        case .leakyRelu(let s): return "LeakyReLU(\(s))"
        }
    }
}

extension Activation {
    /// The same activation as conv2d and applyActivation run it (fused into the conv's epilogue), when they have it.
    var fused: ConvActivation? {
        switch self {
        case .identity: return .identity
        case .relu: return .relu
        case .silu: return .silu
        case .sigmoid: return .sigmoid
        default: return nil
        }
    }
}
