import Foundation
import Tensor
import Yams

/// A YAML-like value tree: what a model YAML file holds, and what the model dict embedded in an
/// ultralytics checkpoint holds once unpickled. Maps keep their order.
public indirect enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([ConfigValue])
    case map([(key: String, value: ConfigValue)])

    public static func == (a: ConfigValue, b: ConfigValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.string(x), .string(y)): return x == y
        case let (.list(x), .list(y)): return x == y
        case let (.map(x), .map(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The value under `key` of a map (nil for other values or a missing key).
    public subscript(key: String) -> ConfigValue? {
        if case .map(let pairs) = self { return pairs.last { $0.key == key }?.value }
        return nil
    }

    public var mapEntries: [(key: String, value: ConfigValue)]? {
        if case .map(let pairs) = self { return pairs }
        return nil
    }

    public var listValue: [ConfigValue]? {
        if case .list(let items) = self { return items }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// A compact one-line rendering in flow style (`[64, 3, 2]`, `{n: [0.33, 0.25, 1024]}`).
    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return ConfigValue.format(d)
        case .string(let s): return ConfigValue.quoteIfNeeded(s)
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .map(let pairs): return "{" + pairs.map { "\(ConfigValue.quoteIfNeeded($0.key)): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }

    /// Block-style YAML text (maps and lists of scalars in flow style, as ultralytics writes them).
    public func yamlText(indent: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent)
        switch self {
        case .map(let pairs):
            var out = ""
            for (k, v) in pairs {
                let key = ConfigValue.quoteIfNeeded(k)
                switch v {
                case .map(let inner) where !inner.isEmpty:
                    out += "\(pad)\(key):\n" + v.yamlText(indent: indent + 2)
                case .list(let items) where items.contains(where: { if case .list = $0 { return true }; if case .map = $0 { return true }; return false }):
                    out += "\(pad)\(key):\n"
                    for item in items { out += "\(pad)  - \(item)\n" }
                default:
                    out += "\(pad)\(key): \(v)\n"
                }
            }
            return out
        default:
            return pad + description + "\n"
        }
    }

    static func format(_ d: Double) -> String {
        if d.isNaN { return ".nan" }
        if d.isInfinite { return d > 0 ? ".inf" : "-.inf" }
        if d == d.rounded() && abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    static func quoteIfNeeded(_ s: String) -> String {
        let plain = !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || "_.-/".contains($0) }
            && !["null", "true", "false", "~", "yes", "no", "on", "off"].contains(s.lowercased())
            && Double(s) == nil
        if plain { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

extension ConfigValue {
    /// Converts a Yams node, resolving scalars the way a YAML 1.1 loader (PyYAML) would for the values
    /// model configs use: null/~, true/false, ints, floats; anything else stays a string.
    init(node: Node, depth: Int = 0, budget: inout Int) throws {
        guard depth < 200 else { throw ConfigValueError.tooDeep }
        budget -= 1
        guard budget >= 0 else { throw ConfigValueError.tooLarge }
        switch node {
        case .scalar(let scalar):
            self = ConfigValue.resolve(scalar: scalar.string, quoted: scalar.style == .singleQuoted || scalar.style == .doubleQuoted)
        case .sequence(let seq):
            self = .list(try seq.map { try ConfigValue(node: $0, depth: depth + 1, budget: &budget) })
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigValue)] = []
            for (k, v) in mapping {
                let key: String
                switch ConfigValue(node: k, shallow: ()) {
                case .string(let s): key = s
                case let other: key = other.description
                }
                pairs.append((key, try ConfigValue(node: v, depth: depth + 1, budget: &budget)))
            }
            self = .map(pairs)
        }
    }

    private init(node: Node, shallow: Void) {
        if case .scalar(let s) = node { self = ConfigValue.resolve(scalar: s.string, quoted: false) } else { self = .string("\(node)") }
    }

    static func resolve(scalar s: String, quoted: Bool) -> ConfigValue {
        if quoted { return .string(s) }
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        // YAML 1.1 booleans, as PyYAML (which ultralytics uses) resolves them.
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return .bool(true)
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return .bool(false)
        default: break
        }
        let cleaned = s.replacingOccurrences(of: "_", with: "")
        if let i = Int(cleaned), cleaned.first?.isNumber == true || cleaned.first == "-" || cleaned.first == "+" {
            return .int(i)
        }
        if cleaned.hasPrefix("0x"), let i = Int(cleaned.dropFirst(2), radix: 16) { return .int(i) }
        let lower = s.lowercased()
        if lower == ".inf" || lower == "+.inf" { return .double(.infinity) }
        if lower == "-.inf" { return .double(-.infinity) }
        if lower == ".nan" { return .double(.nan) }
        if let d = Double(cleaned), cleaned.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }),
           cleaned.allSatisfy({ "0123456789.eE+-".contains($0) }) {
            return .double(d)
        }
        return .string(s)
    }

    /// Parses YAML text into a value tree; `file` names the source in errors. Tabs used for
    /// indentation are reported with their line, since YAML forbids them and the parser's own
    /// message is obscure.
    public static func parseYAML(_ text: String, file: String) throws -> ConfigValue {
        // libyaml (inside Yams) recurses once per nesting level: bound the depth before it sees the text.
        if let (depth, line) = nestingDepth(text, limit: maxYAMLDepth) {
            throw FileFormatError(file: file, problem: "line \(line): YAML nesting reaches \(depth) levels, more than the \(maxYAMLDepth) this tool reads (model configs nest 3 or 4 deep)")
        }
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let leading = line.prefix { $0 == " " || $0 == "\t" }
            if leading.contains("\t") {
                throw FileFormatError(file: file, problem: "line \(n + 1): a tab character is used for indentation; YAML allows only spaces there")
            }
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw FileFormatError(file: file, problem: "not valid YAML: \(String(describing: e).split(separator: "\n").prefix(3).joined(separator: " "))")
        } catch {
            throw FileFormatError(file: file, problem: "not valid YAML: \(error)")
        }
        guard let node else { throw FileFormatError(file: file, problem: "the YAML file is empty") }
        do {
            var budget = 1_000_000
            return try ConfigValue(node: node, budget: &budget)
        } catch ConfigValueError.tooDeep {
            throw FileFormatError(file: file, problem: "YAML nesting is deeper than \(maxYAMLDepth) levels")
        } catch {
            throw FileFormatError(file: file, problem: "YAML expands to more than a million values (aliases?)")
        }
    }
}

enum ConfigValueError: Error { case tooDeep, tooLarge }

/// The deepest nesting a YAML file may have (flow brackets, block indentation and compact `- - x` together).
let maxYAMLDepth = 200

extension ConfigValue {
    /// Scans YAML text for its nesting depth without parsing it: indentation levels of block collections,
    /// compact sequence entries (`- - x`), and flow brackets outside quotes and comments. Returns the depth and
    /// 1-based line where it first passes `limit`, or nil. An estimate that never undercounts real nesting.
    static func nestingDepth(_ text: String, limit: Int) -> (depth: Int, line: Int)? {
        var indents: [Int] = []
        var flow = 0
        var lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line)
            var i = 0
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            guard i < bytes.count, bytes[i] != UInt8(ascii: "#"), bytes[i] != UInt8(ascii: "\r") else { continue }
            var depth = 0
            if flow == 0 {
                while let top = indents.last, top >= i { indents.removeLast() }
                indents.append(i)
                // Compact nested entries on one line: "- - - x", "? - x".
                while i + 1 < bytes.count, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "?"),
                      bytes[i + 1] == UInt8(ascii: " ") {
                    depth += 1
                    i += 2
                    while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
                }
            }
            var quote: UInt8 = 0
            var previous = UInt8(ascii: " ")
            while i < bytes.count {
                let c = bytes[i]
                if quote != 0 {
                    if c == UInt8(ascii: "\\"), quote == UInt8(ascii: "\"") { i += 1 } else if c == quote { quote = 0 }
                } else {
                    let atValueStart = flow > 0 || [UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: ","),
                                                    UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "?")].contains(previous)
                    switch c {
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        if atValueStart { flow += 1 }
                    case UInt8(ascii: "]"), UInt8(ascii: "}"):
                        if flow > 0 { flow -= 1 }
                    case UInt8(ascii: "'"), UInt8(ascii: "\""):
                        if atValueStart { quote = c }
                    case UInt8(ascii: "#"):
                        if previous == UInt8(ascii: " ") || previous == UInt8(ascii: "\t") { i = bytes.count; continue }
                    default: break
                    }
                    let total = indents.count + depth + flow
                    if total > limit { return (total, lineNumber) }
                }
                previous = c
                i += 1
            }
            let total = indents.count + depth + flow
            if total > limit { return (total, lineNumber) }
        }
        return nil
    }
}

extension ConfigValue {
    /// The value as Foundation objects (NSNull, Bool, Int, Double, String, [Any], [String: Any]), e.g. for
    /// JSON output.
    public var foundationObject: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return b
        case .int(let i): return i
        case .double(let d): return d
        case .string(let s): return s
        case .list(let items): return items.map(\.foundationObject)
        case .map(let pairs):
            var d: [String: Any] = [:]
            for (k, v) in pairs { d[k] = v.foundationObject }
            return d
        }
    }
}
