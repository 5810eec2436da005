import Foundation
import SwiftProtobuf
import Tensor

/// An ONNX tensor element type (TensorProto.DataType), with the byte width of one element.
public enum ONNXElementType: Int, Sendable, CaseIterable {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8, bool = 9
    case float16 = 10, double = 11, uint32 = 12, uint64 = 13, complex64 = 14, complex128 = 15, bfloat16 = 16

    /// Bytes per element in raw_data (nil for strings, which have no fixed width).
    public var byteWidth: Int? {
        switch self {
        case .bool, .uint8, .int8: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .float, .int32, .uint32: return 4
        case .int64, .uint64, .double, .complex64: return 8
        case .complex128: return 16
        case .string: return nil
        }
    }

    /// Whether values are whole numbers (the interpreter rounds integer results toward zero).
    public var isInteger: Bool {
        switch self {
        case .uint8, .int8, .uint16, .int16, .int32, .int64, .uint32, .uint64, .bool: return true
        default: return false
        }
    }

    /// ONNX's own name ("FLOAT", "INT64").
    public var name: String {
        switch self {
        case .float: return "FLOAT"
        case .uint8: return "UINT8"
        case .int8: return "INT8"
        case .uint16: return "UINT16"
        case .int16: return "INT16"
        case .int32: return "INT32"
        case .int64: return "INT64"
        case .string: return "STRING"
        case .bool: return "BOOL"
        case .float16: return "FLOAT16"
        case .double: return "DOUBLE"
        case .uint32: return "UINT32"
        case .uint64: return "UINT64"
        case .complex64: return "COMPLEX64"
        case .complex128: return "COMPLEX128"
        case .bfloat16: return "BFLOAT16"
        }
    }
}

/// One dimension of a declared shape: a number, a symbolic name ("batch", "height") or unknown.
public enum ONNXDim: Sendable, Equatable, CustomStringConvertible {
    case value(Int)
    case symbol(String)
    case unknown

    public var description: String {
        switch self {
        case .value(let v): return String(v)
        case .symbol(let s): return s
        case .unknown: return "?"
        }
    }
}

/// A graph input or output as declared: name, element type and shape (nil when the file gives no shape).
public struct ONNXValueInfo: Sendable, Equatable {
    public var name: String
    /// The element type's number (TensorProto.DataType); `elementType` when it is one this program knows.
    public var elementTypeCode: Int
    public var dims: [ONNXDim]?

    public var elementType: ONNXElementType? { ONNXElementType(rawValue: elementTypeCode) }

    /// "[1, 3, height, width]" or "[?]" without a shape.
    public var shapeDescription: String {
        guard let dims else { return "[?]" }
        return "[" + dims.map(\.description).joined(separator: ", ") + "]"
    }
}

/// An attribute of a node.
public enum ONNXAttribute: Sendable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(ONNXInitializer)
    case floats([Float])
    case ints([Int])
    case strings([String])
    /// A kind the interpreter does not use (graphs, sparse tensors, type protos): its AttributeProto type name.
    case other(String)
}

/// One node of the graph, as the file has it.
public struct ONNXNode: Sendable {
    /// The node's name ("/model.10/m/m.0/attn/Softmax"); nodes without one are named "<op>_<position>".
    public var name: String
    public var opType: String
    /// The operator set domain ("" is the default ai.onnx domain).
    public var domain: String
    /// Input value names in order; "" is an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: ONNXAttribute]
    /// Set by the interpreter (never read from a file) on a Conv that runs its following activation in its own
    /// output tiles: Conv -> Sigmoid -> Mul(conv, sigmoid) is one Conv with SiLU.
    public var fusedActivation: ConvActivation? = nil
    /// The names of the nodes a fused node stands for, its own first.
    public var fusedNodes: [String] = []
    /// Set by the interpreter on a MatMul by a constant matrix followed by the Add of a constant bias: the node
    /// reads (x, weight [N, K] — the matrix transposed once —, bias [N]) and runs as the engine's linear.
    public var fusedLinear = false

    /// The module path the exporter wrote into the node name: "/model.10/m/m.0/attn/Softmax" -> "model.10.m.0.attn";
    /// "" for a node outside any module.
    public var modulePath: String { ONNXNode.modulePath(of: name) }

    /// torch.onnx writes a ModuleList's child as its own scope after the list's ("/m/m.0"): a component that extends
    /// the one before it replaces it.
    public static func modulePath(of name: String) -> String {
        guard name.hasPrefix("/") else { return "" }
        var path: [Substring] = []
        for c in name.split(separator: "/", omittingEmptySubsequences: true).dropLast() {
            if let last = path.last, c.hasPrefix(last + ".") { path[path.count - 1] = c } else { path.append(c) }
        }
        return path.joined(separator: ".")
    }
}

/// Where an initialiser's values are: in the model file (kept as the decoded message until asked for) or in an
/// external-data file beside it (read when asked for).
public enum ONNXTensorStorage: Sendable {
    case raw(Data)
    case floats([Float])
    case doubles([Double])
    case int32s([Int32])
    case int64s([Int64])
    case uint64s([UInt64])
    case external(path: String, offset: Int, length: Int)
}

/// A named constant tensor (a graph initialiser or a Constant node's value): shape and type checked against its
/// data when the model is read, values converted to Float32 only when asked for.
public struct ONNXInitializer: Sendable {
    public var name: String
    public var elementType: ONNXElementType
    public var dims: [Int]
    public var count: Int
    public var storage: ONNXTensorStorage
    /// The file that holds it, for errors.
    public var file: String

    /// The values as Float32 (integers and booleans converted exactly up to 2^24).
    public func tensor() throws -> Tensor {
        func fail(_ problem: String) -> FileFormatError { FileFormatError(file: file, problem: "tensor '\(name)': \(problem)") }
        switch storage {
        case .floats(let v): return Tensor(shape: dims, data: v)
        case .doubles(let v): return Tensor(shape: dims, data: v.map { Float($0) })
        case .int64s(let v): return Tensor(shape: dims, data: v.map { Float($0) })
        case .uint64s(let v): return Tensor(shape: dims, data: v.map { Float($0) })
        case .int32s(let v):
            switch elementType {
            case .float16: return Tensor(shape: dims, data: v.map { Float(Float16(bitPattern: UInt16(truncatingIfNeeded: $0))) })
            case .bfloat16: return Tensor(shape: dims, data: v.map { Float(bitPattern: UInt32(UInt16(truncatingIfNeeded: $0)) << 16) })
            default: return Tensor(shape: dims, data: v.map { Float($0) })
            }
        case .raw(let data): return try ONNXInitializer.decode(data, elementType, dims: dims, count: count, fail: fail)
        case .external(let path, let offset, let length):
            let data: Data
            do {
                let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
                defer { try? handle.close() }
                try handle.seek(toOffset: UInt64(offset))
                data = try handle.read(upToCount: length) ?? Data()
            } catch {
                throw FileFormatError(file: path, problem: "cannot read the external data of tensor '\(name)': \(fileErrorReason(error))")
            }
            guard data.count == length else {
                throw FileFormatError(file: path, problem: "tensor '\(name)' needs \(length) bytes at offset \(offset), the file holds \(data.count)")
            }
            return try ONNXInitializer.decode(data, elementType, dims: dims, count: count, fail: fail)
        }
    }

    /// The values as whole numbers (for shapes, axes, indices); exact for int64 data.
    public func integers() throws -> [Int] {
        switch storage {
        case .int64s(let v): return v.map { Int($0) }
        case .int32s(let v) where elementType != .float16 && elementType != .bfloat16: return v.map { Int($0) }
        case .raw(let data) where elementType == .int64:
            return data.withUnsafeBytes { raw in (0 ..< count).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) } }
        default: return try tensor().data.map { ONNXInitializer.clampedInt($0) }
        }
    }

    /// A float as an Int, clamped to ±2^62 (so INT64_MAX written as a float stays "past every end").
    public static func clampedInt(_ v: Float) -> Int {
        if v.isNaN { return 0 }
        if v >= 4.6e18 { return 1 << 62 }
        if v <= -4.6e18 { return -(1 << 62) }
        return Int(v)
    }

    static func decode(_ data: Data, _ type: ONNXElementType, dims: [Int], count: Int,
                       fail: (String) -> FileFormatError) throws -> Tensor {
        guard let width = type.byteWidth, type != .complex64, type != .complex128 else {
            throw fail("element type \(type.name) cannot be read as numbers")
        }
        guard data.count == count * width else { throw fail("holds \(data.count) bytes for \(count) values of \(type.name)") }
        return data.withUnsafeBytes { raw in
            Tensor(shape: dims) { out in
                for i in 0 ..< count {
                    let o = i * width
                    switch type {
                    case .float: out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
                    case .double: out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self))))
                    case .float16: out[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
                    case .bfloat16: out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))) << 16)
                    case .int64: out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int64.self)))
                    case .uint64: out[i] = Float(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
                    case .int32: out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int32.self)))
                    case .uint32: out[i] = Float(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
                    case .int16: out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int16.self)))
                    case .uint16: out[i] = Float(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
                    case .int8: out[i] = Float(raw.load(fromByteOffset: o, as: Int8.self))
                    case .uint8, .bool: out[i] = Float(raw.load(fromByteOffset: o, as: UInt8.self))
                    case .string, .complex64, .complex128: out[i] = 0
                    }
                }
            }
        }
    }
}

/// A checked ONNX model: the graph's nodes in an order where every input is computed before it is used, its
/// declared inputs and outputs, initialisers and metadata.
///
/// Reading checks everything a file supplies before anything is sized from it: the protobuf itself (a truncated
/// or malformed message is an error), every tensor's dims (non-negative, their product without overflow and
/// within `Budget.tensorBytes`), its data against its declared size, every external-data reference (inside the
/// model's folder, the file present, the range inside it), every node input defined by a graph input, an
/// initialiser or an earlier node, and the graph free of cycles.
public struct ONNXModel: Sendable {
    /// The file the model was read from (as the user gave it).
    public var file: String
    public var irVersion: Int
    public var producerName: String
    public var producerVersion: String
    /// Operator set version per domain ("" = ai.onnx).
    public var opsets: [String: Int]
    public var graphName: String
    /// The graph's real inputs (declared inputs that are not initialisers).
    public var inputs: [ONNXValueInfo]
    public var outputs: [ONNXValueInfo]
    public var initializers: [String: ONNXInitializer]
    /// Initialiser names in file order.
    public var initializerNames: [String]
    /// Nodes in topological order.
    public var nodes: [ONNXNode]
    public var metadata: [String: String]

    /// The default domain's opset (ai.onnx), 0 when the file imports none.
    public var opset: Int { opsets[""] ?? opsets["ai.onnx"] ?? 0 }

    /// The largest model file this reader parses in memory (protobuf's own limit is 2 GB; larger models keep
    /// their weights in external data).
    public static let maxFileBytes = Int(Int32.max)

    /// Reads `path` and the external-data files it names (which must lie in the same folder or below it).
    public static func load(path: String) throws -> ONNXModel {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FileFormatError(file: path, problem: "no such file")
        }
        if isDir.boolValue { throw FileFormatError(file: path, problem: "is a directory, not an ONNX file") }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw FileFormatError(file: path, problem: "cannot read the file: \(fileErrorReason(error))")
        }
        return try ONNXModel(data: data, file: path, directory: url.deletingLastPathComponent().path)
    }

    /// Parses a model from `data`; `file` names it in errors, `directory` is where external data is looked for
    /// (nil: external data is refused).
    public init(data: Data, file: String, directory: String?) throws {
        func fail(_ problem: String) -> FileFormatError { FileFormatError(file: file, problem: problem) }
        guard data.count <= ONNXModel.maxFileBytes else {
            throw fail("\(Budget.describe(bytes: data.count)) is more than protobuf's 2 GB limit for one message")
        }
        guard !data.isEmpty else { throw fail("the file is empty, not an ONNX model") }
        let proto: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            proto = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch let e as BinaryDecodingError {
            throw fail("not a valid ONNX protobuf (\(ONNXModel.describe(e)))")
        } catch {
            throw fail("not a valid ONNX protobuf (\(error))")
        }
        guard proto.hasGraph else { throw fail("holds no graph (not an ONNX model)") }
        self.file = file
        irVersion = Int(proto.irVersion)
        producerName = proto.producerName
        producerVersion = proto.producerVersion
        var opsets: [String: Int] = [:]
        for o in proto.opsetImport { opsets[o.domain] = Int(o.version) }
        self.opsets = opsets
        var meta: [String: String] = [:]
        for p in proto.metadataProps { meta[p.key] = p.value }
        metadata = meta
        let graph = proto.graph
        graphName = graph.name

        let reader = TensorReader(file: file, directory: directory)
        var inits: [String: ONNXInitializer] = [:]
        var initNames: [String] = []
        var totalBytes = 0
        for t in graph.initializer {
            let i = try reader.read(t)
            guard inits[i.name] == nil else { throw fail("initialiser '\(i.name)' is defined twice") }
            inits[i.name] = i
            initNames.append(i.name)
            totalBytes = totalBytes.addingReportingOverflow(i.count.multipliedReportingOverflow(by: 4).partialValue).partialValue
            guard totalBytes >= 0, totalBytes <= Budget.modelBytes else {
                throw fail("its initialisers take more than \(Budget.describe(bytes: Budget.modelBytes)) as Float32, more than this machine can hold")
            }
        }
        if !graph.sparseInitializer.isEmpty { throw fail("sparse initialisers are not supported") }
        initializers = inits
        initializerNames = initNames
        inputs = try graph.input.filter { inits[$0.name] == nil }.map { try ONNXModel.valueInfo($0, file: file) }
        outputs = try graph.output.map { try ONNXModel.valueInfo($0, file: file) }
        guard !outputs.isEmpty else { throw fail("the graph declares no outputs") }

        var nodes: [ONNXNode] = []
        nodes.reserveCapacity(graph.node.count)
        for (k, n) in graph.node.enumerated() {
            var attrs: [String: ONNXAttribute] = [:]
            let name = n.name.isEmpty ? "\(n.opType)_\(k)" : n.name
            for a in n.attribute {
                attrs[a.name] = try ONNXModel.attribute(a, node: name, reader: reader)
            }
            guard !n.opType.isEmpty else { throw fail("node \(k) ('\(name)') has no op type") }
            nodes.append(ONNXNode(name: name, opType: n.opType, domain: n.domain, inputs: n.input, outputs: n.output, attributes: attrs, fusedNodes: [name]))
        }
        self.nodes = try ONNXModel.sorted(nodes, available: Set(inputs.map(\.name)).union(inits.keys), outputs: outputs, file: file)
    }

    /// The nodes in an order where each input is produced first (Kahn's algorithm, keeping the file's order among
    /// ready nodes); a value produced twice, an input defined nowhere or a cycle is an error naming the nodes.
    static func sorted(_ nodes: [ONNXNode], available: Set<String>, outputs: [ONNXValueInfo], file: String) throws -> [ONNXNode] {
        func fail(_ problem: String) -> FileFormatError { FileFormatError(file: file, problem: problem) }
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for o in n.outputs where !o.isEmpty {
                if available.contains(o) { throw fail("node '\(n.name)' writes '\(o)', which is a graph input or initialiser") }
                if let j = producer[o] { throw fail("value '\(o)' is produced by two nodes, '\(nodes[j].name)' and '\(n.name)'") }
                producer[o] = i
            }
        }
        var pending = [Int](repeating: 0, count: nodes.count)
        var users: [[Int]] = Array(repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for input in n.inputs where !input.isEmpty && !available.contains(input) {
                guard let p = producer[input] else {
                    throw fail("node '\(n.name)' (\(n.opType)) reads '\(input)', which no node, graph input or initialiser defines")
                }
                pending[i] += 1
                users[p].append(i)
            }
        }
        for o in outputs where !available.contains(o.name) && producer[o.name] == nil {
            throw fail("graph output '\(o.name)' is defined by no node")
        }
        // A min-heap would keep the file order exactly; a sorted ready list is enough for graphs of this size.
        var ready = (0 ..< nodes.count).filter { pending[$0] == 0 }.reversed().map { $0 }
        var order: [ONNXNode] = []
        order.reserveCapacity(nodes.count)
        while let i = ready.popLast() {
            order.append(nodes[i])
            var released: [Int] = []
            for u in users[i] {
                pending[u] -= 1
                if pending[u] == 0 { released.append(u) }
            }
            if !released.isEmpty {
                ready.append(contentsOf: released)
                ready.sort(by: >)
            }
        }
        if order.count < nodes.count {
            let stuck = (0 ..< nodes.count).filter { pending[$0] > 0 }.prefix(5).map { "'\(nodes[$0].name)'" }
            throw fail("the graph has a cycle through nodes \(stuck.joined(separator: ", "))\(nodes.count - order.count > 5 ? ", ..." : "")")
        }
        return order
    }

    static func valueInfo(_ v: Onnx_ValueInfoProto, file: String) throws -> ONNXValueInfo {
        guard case .tensorType(let t)? = v.type.value else {
            return ONNXValueInfo(name: v.name, elementTypeCode: 0, dims: nil)
        }
        var dims: [ONNXDim]?
        if t.hasShape {
            dims = try t.shape.dim.map { d -> ONNXDim in
                switch d.value {
                case .dimValue(let n)?:
                    guard n >= 0 else { throw FileFormatError(file: file, problem: "value '\(v.name)' declares a negative dimension \(n)") }
                    return .value(Int(n))
                case .dimParam(let s)?: return s.isEmpty ? .unknown : .symbol(s)
                case nil: return .unknown
                }
            }
        }
        return ONNXValueInfo(name: v.name, elementTypeCode: Int(t.elemType), dims: dims)
    }

    static func attribute(_ a: Onnx_AttributeProto, node: String, reader: TensorReader) throws -> ONNXAttribute {
        switch a.type {
        case .float: return .float(a.f)
        case .int: return .int(Int(a.i))
        case .string: return .string(String(decoding: a.s, as: UTF8.self))
        case .tensor:
            var t = a.t
            if t.name.isEmpty { t.name = "\(node).\(a.name)" }
            return .tensor(try reader.read(t))
        case .floats: return .floats(a.floats)
        case .ints: return .ints(a.ints.map { Int($0) })
        case .strings: return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
        default:
            // Files written without the type field (old exporters): infer it from what is set.
            if a.type == .undefined {
                if !a.ints.isEmpty { return .ints(a.ints.map { Int($0) }) }
                if !a.floats.isEmpty { return .floats(a.floats) }
                if a.hasT { return .tensor(try reader.read(a.t)) }
                if !a.s.isEmpty { return .string(String(decoding: a.s, as: UTF8.self)) }
                if a.f != 0 { return .float(a.f) }
                return .int(Int(a.i))
            }
            return .other("\(a.type)")
        }
    }

    static func describe(_ e: BinaryDecodingError) -> String {
        switch e {
        case .truncated: return "truncated: a field runs past the end of the file"
        case .malformedProtobuf: return "malformed protobuf"
        case .invalidUTF8: return "a string field is not UTF-8"
        case .messageDepthLimit: return "messages nested too deeply"
        case .missingRequiredFields: return "required fields missing"
        default: return "\(e)"
        }
    }

    /// Parameters: the element count of every floating-point initialiser.
    public var parameterCount: Int {
        initializers.values.reduce(0) { n, i in
            [.float, .float16, .bfloat16, .double].contains(i.elementType) ? n + i.count : n
        }
    }

    /// How many nodes of each op type the graph has.
    public var opHistogram: [String: Int] {
        var h: [String: Int] = [:]
        for n in nodes { h[n.opType, default: 0] += 1 }
        return h
    }

    /// The distinct module paths in node names, in the order the graph first reaches them.
    public var modulePaths: [String] {
        var seen = Set<String>(), out: [String] = []
        for n in nodes {
            let p = n.modulePath
            if !p.isEmpty, seen.insert(p).inserted { out.append(p) }
        }
        return out
    }
}

/// Turns TensorProtos into checked `ONNXInitializer`s.
struct TensorReader {
    let file: String
    let directory: String?

    func read(_ t: Onnx_TensorProto) throws -> ONNXInitializer {
        let name = t.name
        func fail(_ problem: String) -> FileFormatError { FileFormatError(file: file, problem: "tensor '\(name)': \(problem)") }
        guard let type = ONNXElementType(rawValue: Int(t.dataType)) else { throw fail("unknown element type \(t.dataType)") }
        var dims: [Int] = []
        for d in t.dims {
            guard d >= 0 else { throw fail("negative dimension \(d) in \(t.dims)") }
            dims.append(Int(d))
        }
        guard let count = Budget.product(dims) else { throw fail("dims \(t.dims) overflow 64-bit arithmetic") }
        let (f32Bytes, o) = count.multipliedReportingOverflow(by: 4)
        guard !o, f32Bytes <= Budget.tensorBytes else {
            throw fail("dims \(t.dims) make \(count) values, more than \(Budget.describe(bytes: Budget.tensorBytes)) as Float32")
        }
        guard type != .string else { throw fail("string tensors are not supported") }
        let width = type.byteWidth!
        let bytes = count * width // cannot overflow: width <= 16 and count * 4 fits
        func expect(_ n: Int, _ what: String) throws {
            guard n == count else { throw fail("declares \(count) values (dims \(t.dims)) but holds \(n) \(what)") }
        }
        let storage: ONNXTensorStorage
        if t.dataLocation == .external {
            var entries: [String: String] = [:]
            for e in t.externalData { entries[e.key] = e.value }
            guard let location = entries["location"], !location.isEmpty else { throw fail("external data without a location") }
            guard directory != nil else { throw fail("external data '\(location)' cannot be read here (no model folder)") }
            let offset = try entries["offset"].map { s -> Int in
                guard let v = Int(s), v >= 0 else { throw fail("external data offset '\(s)' is not a non-negative number") }
                return v
            } ?? 0
            let length = try entries["length"].map { s -> Int in
                guard let v = Int(s), v >= 0 else { throw fail("external data length '\(s)' is not a non-negative number") }
                return v
            } ?? bytes
            guard length == bytes else { throw fail("external data holds \(length) bytes for \(count) values of \(type.name) (\(bytes) bytes)") }
            let path = try resolve(location, fail: fail)
            let size: Int
            do {
                let attrs = try FileManager.default.attributesOfItem(atPath: path)
                size = (attrs[.size] as? NSNumber)?.intValue ?? 0
            } catch {
                throw FileFormatError(file: file, problem: "tensor '\(name)': its external data file '\(location)' is missing")
            }
            let (end, o) = offset.addingReportingOverflow(length)
            guard !o, end <= size else {
                throw fail("external data range \(offset)..<\(offset &+ length) runs past the end of '\(location)' (\(size) bytes)")
            }
            storage = .external(path: path, offset: offset, length: length)
        } else if !t.rawData.isEmpty || count == 0 && t.floatData.isEmpty && t.int64Data.isEmpty && t.int32Data.isEmpty && t.doubleData.isEmpty {
            guard t.rawData.count == bytes else {
                throw fail("declares \(count) values of \(type.name) (dims \(t.dims), \(bytes) bytes) but holds \(t.rawData.count) bytes")
            }
            storage = .raw(t.rawData)
        } else {
            switch type {
            case .float: try expect(t.floatData.count, "float_data values"); storage = .floats(t.floatData)
            case .double: try expect(t.doubleData.count, "double_data values"); storage = .doubles(t.doubleData)
            case .int64: try expect(t.int64Data.count, "int64_data values"); storage = .int64s(t.int64Data)
            case .uint32, .uint64: try expect(t.uint64Data.count, "uint64_data values"); storage = .uint64s(t.uint64Data)
            case .int32, .int16, .int8, .uint16, .uint8, .bool, .float16, .bfloat16:
                try expect(t.int32Data.count, "int32_data values"); storage = .int32s(t.int32Data)
            default: throw fail("element type \(type.name) cannot be read as numbers")
            }
        }
        return ONNXInitializer(name: name, elementType: type, dims: dims, count: count, storage: storage, file: file)
    }

    /// An external-data location as a path inside the model's folder; absolute paths and paths that leave the
    /// folder (.., symbolic links out of it) are refused.
    func resolve(_ location: String, fail: (String) -> FileFormatError) throws -> String {
        guard let directory else { throw fail("external data cannot be read here") }
        if location.hasPrefix("/") || location.contains("\0") { throw fail("external data path '\(location)' is not relative to the model's folder") }
        let base = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().path
        let full = URL(fileURLWithPath: location, relativeTo: URL(fileURLWithPath: base, isDirectory: true))
            .standardizedFileURL.resolvingSymlinksInPath().path
        guard full.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
            throw fail("external data path '\(location)' leaves the model's folder")
        }
        return full
    }
}
