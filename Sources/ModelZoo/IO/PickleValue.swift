import Foundation

/// The element type of a PyTorch storage, named as safetensors names dtypes (F32, F16, BF16, ...).
/// Storage classes and `torch.<dtype>` globals map onto it; unknown ones keep their torch name.
public struct TorchDType: Sendable, Hashable, CustomStringConvertible {
    /// The safetensors-style name (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, ...) or the torch name when
    /// there is no equivalent (e.g. "torch.complex64").
    public let name: String
    /// Bytes per element (nil when unknown).
    public let byteSize: Int?

    public init(name: String, byteSize: Int?) {
        self.name = name
        self.byteSize = byteSize
    }

    public var description: String { name }

    /// Whether `decodeFloats` can turn values of this dtype into Float32.
    public var isConvertibleToFloat: Bool {
        ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"].contains(name)
    }

    static let byStorageClass: [String: TorchDType] = [
        "FloatStorage": .init(name: "F32", byteSize: 4), "HalfStorage": .init(name: "F16", byteSize: 2),
        "BFloat16Storage": .init(name: "BF16", byteSize: 2), "DoubleStorage": .init(name: "F64", byteSize: 8),
        "LongStorage": .init(name: "I64", byteSize: 8), "IntStorage": .init(name: "I32", byteSize: 4),
        "ShortStorage": .init(name: "I16", byteSize: 2), "CharStorage": .init(name: "I8", byteSize: 1),
        "ByteStorage": .init(name: "U8", byteSize: 1), "BoolStorage": .init(name: "BOOL", byteSize: 1),
        "ComplexFloatStorage": .init(name: "C64", byteSize: 8), "ComplexDoubleStorage": .init(name: "C128", byteSize: 16),
        "QInt8Storage": .init(name: "QI8", byteSize: 1), "QUInt8Storage": .init(name: "QU8", byteSize: 1),
        "QInt32Storage": .init(name: "QI32", byteSize: 4),
        "UntypedStorage": .init(name: "U8", byteSize: 1),
    ]

    static let byTorchName: [String: TorchDType] = [
        "float32": .init(name: "F32", byteSize: 4), "float": .init(name: "F32", byteSize: 4),
        "float16": .init(name: "F16", byteSize: 2), "half": .init(name: "F16", byteSize: 2),
        "bfloat16": .init(name: "BF16", byteSize: 2),
        "float64": .init(name: "F64", byteSize: 8), "double": .init(name: "F64", byteSize: 8),
        "int64": .init(name: "I64", byteSize: 8), "long": .init(name: "I64", byteSize: 8),
        "int32": .init(name: "I32", byteSize: 4), "int": .init(name: "I32", byteSize: 4),
        "int16": .init(name: "I16", byteSize: 2), "short": .init(name: "I16", byteSize: 2),
        "int8": .init(name: "I8", byteSize: 1), "uint8": .init(name: "U8", byteSize: 1), "bool": .init(name: "BOOL", byteSize: 1),
        "uint16": .init(name: "U16", byteSize: 2), "uint32": .init(name: "U32", byteSize: 4), "uint64": .init(name: "U64", byteSize: 8),
        "float8_e4m3fn": .init(name: "F8_E4M3", byteSize: 1), "float8_e5m2": .init(name: "F8_E5M2", byteSize: 1),
        "float8_e4m3fnuz": .init(name: "F8_E4M3FNUZ", byteSize: 1), "float8_e5m2fnuz": .init(name: "F8_E5M2FNUZ", byteSize: 1),
        "complex64": .init(name: "C64", byteSize: 8), "complex128": .init(name: "C128", byteSize: 16),
    ]
}

/// A storage named by a checkpoint's persistent id: ('storage', torch.FloatStorage, key, location, numel).
public struct TorchStorageRef: Sendable, Hashable {
    /// The entry name under `data/` in the archive.
    public var key: String
    public var dtype: TorchDType
    /// The storage class as written (`FloatStorage`, `UntypedStorage`, ...).
    public var storageClass: String
    public var location: String
    /// Elements of `dtype` the storage holds (bytes for an untyped storage).
    public var numel: Int
}

/// A tensor as a checkpoint describes it: a view into a storage.
public struct TorchTensorRef: Sendable, Hashable {
    public var storage: TorchStorageRef
    /// The tensor's element type (for `_rebuild_tensor_v3` this differs from an untyped storage's bytes).
    public var dtype: TorchDType
    /// Offset in elements of `dtype`.
    public var offset: Int
    public var shape: [Int]
    public var stride: [Int]
    public var isParameter: Bool
    public var requiresGrad: Bool

    public var count: Int { shape.reduce(1, *) }

    /// Elements of `dtype` the view reaches into its storage: offset + sum((size-1)*stride) + 1, 0 when empty.
    public var requiredElements: Int {
        if shape.contains(0) { return 0 }
        var end = offset
        for (s, st) in zip(shape, stride) { end += (s - 1) * st }
        return end + 1
    }

    public var isContiguous: Bool {
        var expected = 1
        for (s, st) in zip(shape, stride).reversed() where s != 1 {
            if st != expected { return false }
            expected *= s
        }
        return true
    }
}

/// An instance of a class the unpickler does not know (an ultralytics module, a torch.nn module, a user's
/// class...) or a call of a function it did not run. Nothing is executed: the class and what would have
/// been passed to it are kept, so the data stays reachable.
public struct PickleObject: Sendable {
    /// `module.name` of the class or function.
    public var className: String
    /// Constructor / call arguments (REDUCE, NEWOBJ), in order.
    public var args: [PickleValue]
    /// Keyword arguments (NEWOBJ_EX).
    public var kwargs: [(key: PickleValue, value: PickleValue)]
    /// The state given by BUILD (usually the instance `__dict__`), if any.
    public var state: PickleValue?
    /// Items added by APPEND(S) / SETITEM(S) to the object itself (list or dict subclasses).
    public var listItems: [PickleValue]
    public var dictItems: [(key: PickleValue, value: PickleValue)]

    /// The attribute dictionary: `state` when it is a dict, or the first element of a (dict, slots) tuple.
    public var attributes: [(key: PickleValue, value: PickleValue)] {
        switch state {
        case .dict(let pairs)?: return pairs
        case .tuple(let items)? where items.count == 2:
            var out: [(key: PickleValue, value: PickleValue)] = []
            if case .dict(let a) = items[0] { out += a }
            if case .dict(let b) = items[1] { out += b }
            return out
        default: return []
        }
    }

    public func attribute(_ name: String) -> PickleValue? {
        attributes.last { $0.key.stringValue == name }?.value
    }
}

/// A value read from a pickle, after unpickling: plain data, inert objects and tensor references.
public indirect enum PickleValue: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer too large for Int, kept approximately.
    case bigInt(Double)
    case float(Double)
    case string(String)
    case bytes(Data)
    case list([PickleValue])
    case tuple([PickleValue])
    case dict([(key: PickleValue, value: PickleValue)])
    case set([PickleValue])
    /// A reference to a class or function that was never called.
    case global(String)
    case object(PickleObject)
    case storage(TorchStorageRef)
    case tensor(TorchTensorRef)

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var isNone: Bool { if case .none = self { return true }; return false }
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .float(let d): return d
        case .bigInt(let d): return d
        default: return nil
        }
    }
    public var dictPairs: [(key: PickleValue, value: PickleValue)]? {
        switch self {
        case .dict(let p): return p
        case .object(let o) where !o.dictItems.isEmpty && o.state == nil: return o.dictItems
        default: return nil
        }
    }
    public var items: [PickleValue]? {
        switch self {
        case .list(let l), .tuple(let l), .set(let l): return l
        default: return nil
        }
    }

    /// The value under a string key of a dict.
    public subscript(key: String) -> PickleValue? {
        dictPairs?.last { $0.key.stringValue == key }?.value
    }

    /// A short type name for messages and `inspect`.
    public var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .set: return "set"
        case .global(let g): return "global \(g)"
        case .object(let o): return o.className
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    /// Converts plain data (None, bool, numbers, strings, lists, tuples, string-keyed dicts) to a ConfigValue.
    /// Other values become strings describing them.
    public func configValue(depth: Int = 0) -> ConfigValue {
        if depth > 100 { return .string("...") }
        switch self {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let d), .float(let d): return .double(d)
        case .string(let s): return .string(s)
        case .bytes(let d): return .string("<\(d.count) bytes>")
        case .list(let l), .tuple(let l), .set(let l): return .list(l.map { $0.configValue(depth: depth + 1) })
        case .dict(let pairs):
            return .map(pairs.map { p in
                let k: String
                switch p.key {
                case .string(let s): k = s
                case .int(let i): k = String(i)
                default: k = p.key.typeName
                }
                return (k, p.value.configValue(depth: depth + 1))
            })
        case .global(let g): return .string(g)
        case .object(let o):
            if !o.dictItems.isEmpty { return PickleValue.dict(o.dictItems).configValue(depth: depth + 1) }
            return .string("<\(o.className)>")
        case .storage(let s): return .string("<storage \(s.key)>")
        case .tensor(let t): return .string("<tensor \(t.dtype) \(t.shape)>")
        }
    }
}
