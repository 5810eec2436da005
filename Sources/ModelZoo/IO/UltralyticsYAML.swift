import Foundation
import Tensor

/// One argument of a layer row, as an ultralytics YAML holds it after parse_model's own literal
/// evaluation of strings ("None" -> null, "nc" -> the identifier nc, "1e-3" -> a float).
public indirect enum LayerArg: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case string(String)
    case bool(Bool)
    case null
    case list([LayerArg])
    /// A name parse_model resolves from its own variables (nc, ch, act, ...).
    case identifier(String)

    /// Names parse_model substitutes from its local variables when an argument is that string.
    public static let resolvableNames: Set<String> = ["nc", "ch", "act", "depth", "width", "kpt_shape", "reg_max",
                                                      "max_channels", "end2end", "scale", "c1", "c2"]

    init(_ v: ConfigValue) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .float(d)
        case .list(let items): self = .list(items.map(LayerArg.init))
        case .map(let pairs): self = .string(ConfigValue.map(pairs).description)
        case .string(let s): self = LayerArg.literal(s)
        }
    }

    /// Python's ast.literal_eval on the values configs use, else an identifier or a plain string.
    static func literal(_ raw: String) -> LayerArg {
        let s = raw.trimmingCharacters(in: .whitespaces)
        if LayerArg.resolvableNames.contains(s) { return .identifier(s) }
        switch s {
        case "None": return .null
        case "True": return .bool(true)
        case "False": return .bool(false)
        default: break
        }
        if (s.hasPrefix("'") && s.hasSuffix("'") || s.hasPrefix("\"") && s.hasSuffix("\"")) && s.count >= 2 {
            return .string(String(s.dropFirst().dropLast()))
        }
        let digits = s.replacingOccurrences(of: "_", with: "")
        if let i = Int(digits), digits.first.map({ $0.isNumber || $0 == "-" || $0 == "+" }) == true { return .int(i) }
        if let d = Double(digits), digits.allSatisfy({ "0123456789.eE+-".contains($0) }) { return .float(d) }
        if s.hasPrefix("["), s.hasSuffix("]") {
            let inner = s.dropFirst().dropLast()
            let parts = inner.split(separator: ",").map { LayerArg.literal(String($0)) }
            return .list(parts)
        }
        return .string(raw)
    }

    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .float(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .float(let d): return d
        default: return nil
        }
    }

    public var boolValue: Bool? {
        switch self {
        case .bool(let b): return b
        case .int(let i): return i != 0
        default: return nil
        }
    }

    public var stringValue: String? {
        switch self {
        case .string(let s), .identifier(let s): return s
        default: return nil
        }
    }

    /// Python-like rendering, as ultralytics prints layer arguments.
    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .float(let d): return ConfigValue.format(d)
        case .string(let s): return "'\(s)'"
        case .bool(let b): return b ? "True" : "False"
        case .null: return "None"
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .identifier(let s): return s
        }
    }
}

/// Which section of a model YAML a row is in.
public enum ModelSection: String, Sendable, Equatable, Codable {
    case backbone, head
}

/// One `[from, repeats, module, args]` row.
public struct LayerSpec: Sendable, Equatable {
    public var section: ModelSection
    /// Index within its section.
    public var rowIndex: Int
    /// Layer index as ultralytics numbers it (backbone rows first, then head rows).
    public var index: Int
    /// Input layers: -1 is the previous layer; absolute indices otherwise.
    public var from: [Int]
    /// Whether `from` was written as a list (`[-1, 6]`) rather than a single int.
    public var fromIsList: Bool
    /// Repeats before the depth multiple is applied.
    public var repeats: Int
    /// Module name as written (`Conv`, `nn.Upsample`, `torch.nn.Upsample`, `CoTAttention`).
    public var module: String
    public var args: [LayerArg]

    /// "backbone row 3 (layer 3)", for messages.
    public var location: String { "\(section.rawValue) row \(rowIndex) (layer \(index))" }

    /// The module name without an `nn.` / `torch.nn.` prefix.
    public var baseModuleName: String {
        if module.hasPrefix("torch.nn.") { return String(module.dropFirst(9)) }
        if module.hasPrefix("nn.") { return String(module.dropFirst(3)) }
        return module
    }

    /// The `from` field rendered as in the YAML.
    public var fromDescription: String {
        fromIsList || from.count != 1 ? "[" + from.map(String.init).joined(separator: ", ") + "]" : String(from[0])
    }
}

/// A model scale: `n: [depth, width, max_channels]`.
public struct ModelScale: Sendable, Equatable {
    public var depth: Double
    public var width: Double
    public var maxChannels: Int
}

/// An ultralytics model YAML (or the model dict embedded in a checkpoint), typed.
public struct ModelSpec: Sendable, Equatable {
    /// The file (or checkpoint) the spec came from, for messages.
    public var source: String
    public var nc: Int?
    /// Scales by name, in file order.
    public var scales: [(name: String, scale: ModelScale)]
    /// The scale the file names (`scale:` key, as ultralytics adds it when loading `yolov8n.yaml`), if any.
    public var scale: String?
    public var depthMultiple: Double?
    public var widthMultiple: Double?
    public var maxChannels: Int?
    /// `activation:` (e.g. `nn.ReLU()`), if set.
    public var activation: String?
    /// Input channels (`channels:` or `ch:`), if set.
    public var inputChannels: Int?
    public var backbone: [LayerSpec]
    public var head: [LayerSpec]
    /// The whole document, for keys this type does not name (kpt_shape, reg_max, end2end, ...).
    public var raw: ConfigValue

    public static func == (a: ModelSpec, b: ModelSpec) -> Bool {
        a.source == b.source && a.nc == b.nc && a.scale == b.scale && a.depthMultiple == b.depthMultiple
            && a.widthMultiple == b.widthMultiple && a.maxChannels == b.maxChannels && a.activation == b.activation
            && a.inputChannels == b.inputChannels && a.backbone == b.backbone && a.head == b.head && a.raw == b.raw
            && a.scales.map(\.name) == b.scales.map(\.name) && a.scales.map(\.scale) == b.scales.map(\.scale)
    }

    /// What a model YAML may ask for. Real configs stay far below these (YOLOv8x: 640 channels, 6 repeats,
    /// 23 layers; RT-DETR-x: 2048 channels); a value past one is a typo or a hostile file, refused before
    /// anything is built.
    public enum Limits {
        /// Layers (backbone + head rows).
        public static let layers = 1000
        /// A row's `repeats` as written.
        public static let repeats = 1000
        /// Any channel count: an argument, a scale's max_channels, a layer's input or output.
        public static let channels = 1 << 16
        /// Classes (`nc`).
        public static let classes = 100_000
        /// depth_multiple and width_multiple (and a scale's depth and width).
        public static let multiple = 100.0
        /// Any other integer argument of a row (kernel, stride, heads, points, scale factors...).
        public static let integerArgument = 1 << 16
        /// A kernel size (and an upsampling factor).
        public static let kernel = 255
    }

    /// Backbone rows then head rows, indexed as ultralytics indexes layers.
    public var layers: [LayerSpec] { backbone + head }

    /// Loads and parses a model YAML file (read-only).
    public static func load(path: String) throws -> ModelSpec {
        let data = try readUserFile(path, maxBytes: 16 << 20)
        guard let text = String(data: data, encoding: .utf8) else {
            throw FileFormatError(file: path, problem: "not UTF-8 text")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses YAML text; `file` names the source in errors. When `file` looks like `yolov8s.yaml` and the
    /// document has scales but no `scale:` key, the scale letter is guessed from the name as ultralytics does.
    public static func parse(yaml text: String, file: String) throws -> ModelSpec {
        let value = try ConfigValue.parseYAML(text, file: file)
        var spec = try ModelSpec(value: value, file: file)
        if spec.scale == nil, !spec.scales.isEmpty, let guess = ModelSpec.guessScale(fromFileName: file),
           spec.scales.contains(where: { $0.name == guess }) {
            spec.scale = guess
        }
        return spec
    }

    /// Ultralytics' guess_model_scale: the letter after the version digits in `yolov8n.yaml`, `rtdetr-l.yaml`.
    public static func guessScale(fromFileName file: String) -> String? {
        let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension.lowercased()
        if let r = stem.range(of: #"yolo(e-)?[v]?\d+([nslmx])"#, options: .regularExpression) {
            return String(stem[r].last!)
        }
        if let r = stem.range(of: #"rtdetr-([lx])"#, options: .regularExpression) { return String(stem[r].last!) }
        return nil
    }

    /// Builds the spec from a value tree (a parsed YAML file, or the `yaml` dict of a checkpoint's model).
    public init(value: ConfigValue, file: String) throws {
        func fail(_ problem: String) -> FileFormatError { FileFormatError(file: file, problem: problem) }
        guard value.mapEntries != nil else {
            throw fail("a model config must be a mapping with backbone and head sections, found \(value.description.prefix(60))")
        }
        source = file
        raw = value
        nc = try value["nc"].flatMap { v -> Int? in
            if v.isNull { return nil }
            guard let n = v.intValue, n > 0, n <= ModelSpec.Limits.classes else {
                throw fail("nc must be a whole number in 1...\(ModelSpec.Limits.classes), found \(v)")
            }
            return n
        }
        scale = value["scale"].flatMap { $0.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        func number(_ key: String) throws -> Double? {
            guard let v = value[key], !v.isNull else { return nil }
            guard let d = v.doubleValue, d > 0, d <= ModelSpec.Limits.multiple else {
                throw fail("\(key) must be a positive number up to \(Int(ModelSpec.Limits.multiple)), found \(v)")
            }
            return d
        }
        depthMultiple = try number("depth_multiple")
        widthMultiple = try number("width_multiple")
        maxChannels = try value["max_channels"].flatMap { v -> Int? in
            if v.isNull { return nil }
            guard let m = v.doubleValue, m >= 1, m <= Double(ModelSpec.Limits.channels) else {
                throw fail("max_channels must be a number in 1...\(ModelSpec.Limits.channels), found \(v)")
            }
            return Int(m)
        }
        activation = value["activation"].flatMap { $0.isNull ? nil : ($0.stringValue ?? $0.description) }
        inputChannels = try (value["channels"] ?? value["ch"]).flatMap { v -> Int? in
            if v.isNull { return nil }
            guard let c = v.intValue, c >= 1, c <= ModelSpec.Limits.channels else {
                throw fail("channels must be a whole number in 1...\(ModelSpec.Limits.channels), found \(v)")
            }
            return c
        }
        var scales: [(name: String, scale: ModelScale)] = []
        if let s = value["scales"], !s.isNull {
            guard let entries = s.mapEntries else { throw fail("scales must be a mapping like {n: [0.33, 0.25, 1024]}, found \(s)") }
            for (name, v) in entries {
                guard let l = v.listValue, l.count == 3, let d = l[0].doubleValue, let w = l[1].doubleValue,
                      let m = l[2].doubleValue, d > 0, w > 0, m >= 1, d <= Limits.multiple, w <= Limits.multiple,
                      m <= Double(Limits.channels) else {
                    throw fail("scale '\(name)' must be [depth, width, max_channels] with depth and width in (0, \(Int(Limits.multiple))] and max_channels in 1...\(Limits.channels), found \(v)")
                }
                scales.append((name, ModelScale(depth: d, width: w, maxChannels: Int(m))))
            }
        }
        self.scales = scales
        guard let bb = value["backbone"], !bb.isNull else { throw fail("no 'backbone' section; a model config needs backbone and head lists of [from, repeats, module, args] rows") }
        guard let hd = value["head"], !hd.isNull else { throw fail("no 'head' section; a model config needs backbone and head lists of [from, repeats, module, args] rows") }
        guard let bbRows = bb.listValue else { throw fail("'backbone' must be a list of [from, repeats, module, args] rows") }
        guard let hdRows = hd.listValue else { throw fail("'head' must be a list of [from, repeats, module, args] rows") }
        guard !bbRows.isEmpty else { throw fail("'backbone' has no rows") }
        guard bbRows.count + hdRows.count <= Limits.layers else {
            throw fail("\(bbRows.count + hdRows.count) layers, more than the \(Limits.layers) this tool builds")
        }
        backbone = try bbRows.enumerated().map { try ModelSpec.row($1, section: .backbone, rowIndex: $0, index: $0, file: file) }
        head = try hdRows.enumerated().map { try ModelSpec.row($1, section: .head, rowIndex: $0, index: bbRows.count + $0, file: file) }
        // `from` must point at earlier layers.
        for layer in backbone + head {
            for f in layer.from where !(f == -1 || (f >= 0 && f < layer.index) || (f < -1 && f >= -layer.index)) {
                throw fail("\(layer.location): 'from' \(f) does not name an earlier layer")
            }
        }
    }

    static func row(_ v: ConfigValue, section: ModelSection, rowIndex: Int, index: Int, file: String) throws -> LayerSpec {
        let location = "\(section.rawValue) row \(rowIndex) (layer \(index))"
        func fail(_ problem: String) -> FileFormatError {
            FileFormatError(file: file, problem: "\(location): \(problem); a row is [from, repeats, module, args], e.g. [-1, 1, Conv, [64, 3, 2]]")
        }
        guard let items = v.listValue else { throw fail("expected a list, found \(v)") }
        guard items.count == 4 else { throw fail("expected 4 fields, found \(items.count) in \(v)") }
        var from: [Int]
        var fromIsList = false
        switch items[0] {
        case .int(let i): from = [i]
        case .list(let l):
            fromIsList = true
            from = try l.map { x -> Int in
                guard let i = x.intValue else { throw fail("'from' entries must be integers, found \(x)") }
                return i
            }
            guard !from.isEmpty else { throw fail("'from' is an empty list") }
        default: throw fail("'from' must be an integer or a list of integers, found \(items[0])")
        }
        guard let repeats = items[1].intValue, repeats >= 1, repeats <= Limits.repeats else {
            throw fail("'repeats' must be a whole number in 1...\(Limits.repeats), found \(items[1])")
        }
        guard let module = items[2].stringValue, !module.isEmpty else { throw fail("'module' must be a name, found \(items[2])") }
        let args: [LayerArg]
        switch items[3] {
        case .list(let l): args = l.map(LayerArg.init)
        case .null: args = []
        default: throw fail("'args' must be a list, found \(items[3])")
        }
        return LayerSpec(section: section, rowIndex: rowIndex, index: index, from: from, fromIsList: fromIsList,
                         repeats: repeats, module: module, args: args)
    }

    /// Checks every row's module against the names a builder knows (`nn.X` / `torch.nn.X` match `X` or
    /// `nn.X`). An unknown module is an error naming the file, the row, and the known names.
    public func validate(knownModules: Set<String>) throws {
        var unknown: [String] = []
        for layer in layers {
            let names = [layer.module, layer.baseModuleName, "nn." + layer.baseModuleName]
            if !names.contains(where: knownModules.contains) {
                unknown.append("\(layer.location): unknown module '\(layer.module)'")
            }
        }
        guard unknown.isEmpty else {
            let known = knownModules.sorted().joined(separator: ", ")
            throw FileFormatError(file: source, problem: unknown.joined(separator: "; ") + ". Known modules: \(known)")
        }
    }

    /// (depth, width, max_channels) as parse_model computes them: the chosen scale (or the spec's own
    /// `scale`, or the first listed one), else depth_multiple / width_multiple / max_channels, else 1, 1, unlimited.
    public func resolvedScale(_ requested: String? = nil) throws -> (name: String?, depth: Double, width: Double, maxChannels: Int) {
        if !scales.isEmpty {
            let name = requested ?? scale ?? scales[0].name
            guard let s = scales.first(where: { $0.name == name }) else {
                throw FileFormatError(file: source, problem: "no scale '\(name)'; the file has \(scales.map(\.name).joined(separator: ", "))")
            }
            return (name, s.scale.depth, s.scale.width, s.scale.maxChannels)
        }
        return (nil, depthMultiple ?? 1, widthMultiple ?? 1, maxChannels ?? Int.max)
    }
}
