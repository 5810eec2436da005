import Foundation
import Yams

/// One argument of a YAML layer row, after ultralytics' own substitution (`nc` and the other config names
/// become their values, `None` becomes `.none`, quoted literals are evaluated).
public indirect enum ModuleArg: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)
    case none
    case list([ModuleArg])

    /// Python-style rendering, as ultralytics prints the arguments of a layer.
    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return v == v.rounded() && abs(v) < 1e15 ? String(format: "%.1f", v) : String(v)
        case .bool(let v): return v ? "True" : "False"
        case .string(let s): return "'\(s)'"
        case .none: return "None"
        case .list(let xs): return "[" + xs.map(\.description).joined(separator: ", ") + "]"
        }
    }

    public var intValue: Int? {
        switch self {
        case .int(let v): return v
        case .double(let v) where v == v.rounded(): return Int(v)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }

    public var boolValue: Bool? {
        switch self {
        case .bool(let b): return b
        case .int(let v): return v != 0
        default: return nil
        }
    }
}

/// One row of a model YAML: `[from, repeats, module, args]`.
public struct ModelRow: Sendable, Equatable {
    /// Input layer indices as written (-1 = the previous layer); one element for a single input.
    public var from: [Int]
    /// Whether `from` was written as a list (Concat, Detect, ...), which changes what the module receives.
    public var fromIsList: Bool
    public var repeats: Int
    public var module: String
    public var args: [ModuleArg]
}

/// An ultralytics-style model configuration (the YAML ultralytics' `parse_model` reads).
public struct UltralyticsModelSpec: Sendable {
    /// Where it came from (a path, or a description for an embedded YAML), for errors.
    public var source: String
    public var nc: Int
    /// scale name -> [depth, width, max_channels]
    public var scales: [(name: String, depth: Double, width: Double, maxChannels: Int)]
    public var scale: String?
    public var depthMultiple: Double
    public var widthMultiple: Double
    public var maxChannels: Int
    /// Replaces the default activation of Conv (e.g. "nn.ReLU()"), as the YAML's `activation` key.
    public var activation: String?
    public var regMax: Int
    public var backbone: [ModelRow]
    public var head: [ModelRow]
    /// Other scalar keys (e.g. `kpt_shape`), used when args name them.
    public var extra: [String: ModuleArg]

    public var rows: [ModelRow] { backbone + head }

    /// Picks a scale (the named one, else the YAML's `scale` key, else the first listed) and applies its multiples.
    public func resolved(scale wanted: String?) throws -> UltralyticsModelSpec {
        var s = self
        guard !scales.isEmpty else { return s }
        let name = wanted ?? scale ?? scales[0].name
        guard let entry = scales.first(where: { $0.name == name }) else {
            throw ModelSpecError(file: source, problem: "scale '\(name)' is not one of \(scales.map(\.name).joined(separator: ", "))")
        }
        s.scale = name
        s.depthMultiple = entry.depth
        s.widthMultiple = entry.width
        s.maxChannels = entry.maxChannels
        return s
    }
}

public struct ModelSpecError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problem: String
    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }
    public var description: String { "\(file): \(problem)" }
}

extension UltralyticsModelSpec {
    /// Parses a model YAML file.
    public static func load(path: String) throws -> UltralyticsModelSpec {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ModelSpecError(file: path, problem: "cannot be read (\(error.localizedDescription))")
        }
        return try parse(yaml: text, source: path)
    }

    /// Parses model YAML text.
    public static func parse(yaml text: String, source: String) throws -> UltralyticsModelSpec {
        if let line = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex(where: { $0.hasPrefix("\t") || $0.contains("\t-") }) {
            throw ModelSpecError(file: source, problem: "line \(line + 1) is indented with a tab; YAML needs spaces")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw ModelSpecError(file: source, problem: "is not valid YAML (\(error))")
        }
        guard let node, let map = node.mapping else {
            throw ModelSpecError(file: source, problem: "is not a YAML mapping with backbone and head")
        }
        return try parse(mapping: map, source: source)
    }

    /// Builds a spec from a decoded dictionary (e.g. the `yaml` dict embedded in an ultralytics checkpoint).
    public static func parse(dictionary: [String: Any], source: String) throws -> UltralyticsModelSpec {
        func convert(_ v: Any) -> Node {
            switch v {
            case let b as Bool: return Node(b ? "true" : "false", Tag(.bool))
            case let i as Int: return Node(String(i), Tag(.int))
            case let d as Double: return Node(String(d), Tag(.float))
            case let f as Float: return Node(String(f), Tag(.float))
            case let s as String: return Node(s, Tag(.str), .doubleQuoted)
            case let a as [Any]: return Node(a.map(convert))
            case let m as [String: Any]: return Node(m.map { (Node($0.key), convert($0.value)) })
            default: return Node("null", Tag(.null))
            }
        }
        let pairs = dictionary.map { (Node($0.key), convert($0.value)) }
        return try parse(mapping: Node.Mapping(pairs), source: source)
    }

    static func parse(mapping map: Node.Mapping, source: String) throws -> UltralyticsModelSpec {
        func scalarArg(_ n: Node) -> ModuleArg { ModuleArg.from(node: n) }
        let nc = map["nc"].flatMap { ModuleArg.from(node: $0).intValue } ?? 80
        var scales: [(String, Double, Double, Int)] = []
        if let sm = map["scales"]?.mapping {
            for (k, v) in sm {
                guard let name = k.string, let seq = v.sequence, seq.count == 3,
                      let d = ModuleArg.from(node: seq[0]).doubleValue, let w = ModuleArg.from(node: seq[1]).doubleValue,
                      let mc = ModuleArg.from(node: seq[2]).doubleValue
                else { throw ModelSpecError(file: source, problem: "scales: each entry must be [depth, width, max_channels]") }
                scales.append((name, d, w, Int(mc)))
            }
        }
        func rows(_ key: String) throws -> [ModelRow] {
            guard let seq = map[key]?.sequence else {
                throw ModelSpecError(file: source, problem: "has no '\(key)' list of [from, repeats, module, args] rows")
            }
            return try seq.enumerated().map { i, n in
                guard let r = n.sequence, r.count == 4 || r.count == 3 else {
                    throw ModelSpecError(file: source, problem: "\(key) row \(i): expected [from, repeats, module, args]")
                }
                var from: [Int] = []
                var isList = false
                if let fs = r[0].sequence {
                    isList = true
                    for f in fs {
                        guard let v = ModuleArg.from(node: f).intValue else {
                            throw ModelSpecError(file: source, problem: "\(key) row \(i): 'from' must hold integers")
                        }
                        from.append(v)
                    }
                } else if let v = ModuleArg.from(node: r[0]).intValue {
                    from = [v]
                } else {
                    throw ModelSpecError(file: source, problem: "\(key) row \(i): 'from' must be an integer or a list of integers")
                }
                guard let rep = ModuleArg.from(node: r[1]).intValue, rep >= 1 else {
                    throw ModelSpecError(file: source, problem: "\(key) row \(i): repeats must be a positive integer")
                }
                guard let module = r[2].string, !module.isEmpty else {
                    throw ModelSpecError(file: source, problem: "\(key) row \(i): the module name must be a string")
                }
                var args: [ModuleArg] = []
                if r.count == 4 {
                    guard let a = r[3].sequence else {
                        throw ModelSpecError(file: source, problem: "\(key) row \(i): args must be a list")
                    }
                    args = a.map(scalarArg)
                }
                return ModelRow(from: from, fromIsList: isList, repeats: rep, module: module, args: args)
            }
        }
        let backbone = try rows("backbone")
        let head = try rows("head")
        var extra: [String: ModuleArg] = [:]
        for (k, v) in map {
            if let key = k.string, v.scalar != nil { extra[key] = ModuleArg.from(node: v) }
        }
        let depth = map["depth_multiple"].flatMap { ModuleArg.from(node: $0).doubleValue } ?? 1
        let width = map["width_multiple"].flatMap { ModuleArg.from(node: $0).doubleValue } ?? 1
        var spec = UltralyticsModelSpec(
            source: source, nc: nc, scales: scales, scale: map["scale"]?.string,
            depthMultiple: depth, widthMultiple: width, maxChannels: Int.max,
            activation: map["activation"]?.string,
            regMax: map["reg_max"].flatMap { ModuleArg.from(node: $0).intValue } ?? 16,
            backbone: backbone, head: head, extra: extra)
        if spec.scale?.isEmpty == true { spec.scale = nil }
        return spec
    }
}

extension ModuleArg {
    /// A YAML node as an argument: plain scalars are typed the way Python's YAML loader types them.
    static func from(node: Node) -> ModuleArg {
        if let seq = node.sequence { return .list(seq.map(from(node:))) }
        guard let s = node.scalar else { return .none }
        let str = s.string
        if s.style == .doubleQuoted || s.style == .singleQuoted { return literal(str) ?? .string(str) }
        switch str {
        case "~", "null", "Null", "NULL", "": return .none
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if let i = Int(str) { return .int(i) }
        if let d = Double(str) { return .double(d) }
        return .string(str)
    }

    /// Python literal_eval of a quoted string (numbers, booleans, None); nil when it is plain text.
    static func literal(_ s: String) -> ModuleArg? {
        switch s {
        case "None": return ModuleArg.none
        case "True": return .bool(true)
        case "False": return .bool(false)
        default:
            if let i = Int(s) { return .int(i) }
            if let d = Double(s) { return .double(d) }
            return nil
        }
    }
}
