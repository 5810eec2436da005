import Foundation

/// One entry of a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    /// Byte range of the data, relative to the start of the data section.
    public let range: Range<Int>
}

/// A safetensors file (https://github.com/huggingface/safetensors format): an 8-byte little-endian
/// header length, a JSON header `{name: {dtype, shape, data_offsets}}` with optional `__metadata__`,
/// then the raw little-endian data. The file is memory-mapped; tensors are converted to Float32 only
/// when asked for (F32, F16, BF16, F64 and the integer types convert; other dtypes are reported by name).
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let entries: [SafetensorsEntry]
    public let metadata: [String: String]
    private let bytes: Data
    private let dataStart: Int
    private let index: [String: Int]

    /// The largest header this reader accepts (the format's own limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public convenience init(path: String) throws {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw FileFormatError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(data: data, name: path)
    }

    public init(data: Data, name: String) throws {
        self.path = name
        self.bytes = data
        func fail(_ problem: String) -> FileFormatError { FileFormatError(file: name, problem: problem) }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, too short for a safetensors header") }
        let headerLen = data.withUnsafeBytes { raw -> UInt64 in
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard headerLen <= UInt64(SafetensorsFile.maxHeaderBytes) else {
            throw fail("header claims \(headerLen) bytes, more than the \(SafetensorsFile.maxHeaderBytes)-byte limit")
        }
        guard 8 + Int(headerLen) <= data.count else {
            throw fail("header claims \(headerLen) bytes but the file has only \(data.count - 8) after the length")
        }
        let headerData = data.subdata(in: data.startIndex + 8 ..< data.startIndex + 8 + Int(headerLen))
        guard let json = try? JSONSerialization.jsonObject(with: headerData), let dict = json as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        dataStart = 8 + Int(headerLen)
        let dataSize = data.count - dataStart
        var meta: [String: String] = [:]
        var list: [SafetensorsEntry] = []
        if let dup = SafetensorsFile.duplicateTopLevelKey(headerData) {
            throw fail("header names '\(dup)' more than once")
        }
        /// A JSON number that is a whole number within 0...Int.max (not 1.5, not 1e30, not true).
        func whole(_ v: Any) -> Int? {
            guard let n = v as? NSNumber else { return nil }
            let code = String(cString: n.objCType)
            if code == "c" || code == "B" { return nil }
            if code == "d" || code == "f" {
                let d = n.doubleValue
                guard d.isFinite, d == d.rounded(), d >= 0, d < 9.2e18 else { return nil }
                return Int(d)
            }
            let i = n.int64Value
            guard i >= 0, n.stringValue == String(i) else { return nil }
            return Int(i)
        }
        for (key, value) in dict {
            if key == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (k, v) in m { meta[k] = "\(v)" }
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offs = info["data_offsets"] as? [Any], offs.count == 2 else {
                throw fail("entry '\(key)' lacks dtype, shape or data_offsets")
            }
            let shape = try shapeAny.map { v -> Int in
                guard let n = whole(v) else { throw fail("entry '\(key)' has a bad shape \(shapeAny) (dimensions are whole numbers >= 0)") }
                return n
            }
            guard let b = whole(offs[0]), let e = whole(offs[1]), e >= b else {
                throw fail("entry '\(key)' has bad data_offsets \(offs) (two whole numbers, begin <= end)")
            }
            guard e <= dataSize else {
                throw fail("entry '\(key)' data_offsets [\(b), \(e)] run past the end of the data (\(dataSize) bytes)")
            }
            if let size = SafetensorsFile.byteSize(of: dtype) {
                guard let count = Budget.product(shape), case let (expected, false) = count.multipliedReportingOverflow(by: size) else {
                    throw fail("entry '\(key)' has shape \(shape), whose size overflows 64-bit arithmetic")
                }
                guard expected == e - b else {
                    throw fail("entry '\(key)' of dtype \(dtype) and shape \(shape) needs \(expected) bytes, data_offsets give \(e - b)")
                }
            }
            list.append(SafetensorsEntry(name: key, dtype: dtype, shape: shape, range: b ..< e))
        }
        // Reject overlapping ranges.
        let sorted = list.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw fail("entries '\(a.name)' and '\(b.name)' overlap in the data section")
        }
        entries = list.sorted { $0.name < $1.name }
        metadata = meta
        var idx: [String: Int] = [:]
        for (i, e) in entries.enumerated() { idx[e.name] = i }
        index = idx
    }

    /// The first key the header's top-level JSON object names twice (JSONSerialization keeps only the last),
    /// or nil. Keys are compared after JSON unescaping.
    static func duplicateTopLevelKey(_ json: Data) -> String? {
        var seen: Set<String> = []
        var depth = 0, i = json.startIndex
        var expectKey = false
        while i < json.endIndex {
            let c = json[i]
            switch c {
            case UInt8(ascii: "{"):
                depth += 1
                expectKey = depth == 1
            case UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            case UInt8(ascii: ","): expectKey = depth == 1
            case UInt8(ascii: "\""):
                var j = i + 1
                while j < json.endIndex, json[j] != UInt8(ascii: "\"") { j += json[j] == UInt8(ascii: "\\") ? 2 : 1 }
                guard j < json.endIndex else { return nil }
                if expectKey {
                    let raw = json[i ... j]
                    let key = (try? JSONSerialization.jsonObject(with: Data(raw), options: [.fragmentsAllowed])) as? String
                        ?? String(decoding: raw, as: UTF8.self)
                    if !seen.insert(key).inserted { return key }
                    expectKey = false
                }
                i = j
            default: break
            }
            i += 1
        }
        return nil
    }

    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) -> SafetensorsEntry? { index[name].map { entries[$0] } }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// Bytes per element of a dtype, or nil for one this reader does not know.
    public static func byteSize(of dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": return 8
        case "F32", "I32", "U32": return 4
        case "F16", "BF16", "I16", "U16": return 2
        case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2": return 1
        default: return nil
        }
    }

    /// The named tensor as Float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entry(name) else {
            throw FileFormatError(file: path, problem: "no tensor named '\(name)'")
        }
        let n = e.shape.reduce(1, *) // checked when the header was read: n * byteSize == range.count
        guard n <= Budget.tensorBytes / 4 else {
            throw FileFormatError(file: path, problem: "tensor '\(name)' has \(n) values, more than this machine's budget for one tensor (\(Budget.describe(bytes: Budget.tensorBytes)) as Float32)")
        }
        let start = dataStart + e.range.lowerBound
        return try bytes.withUnsafeBytes { raw -> Tensor in
            let base = raw.baseAddress!.advanced(by: start)
            let src = UnsafeRawBufferPointer(start: base, count: e.range.count)
            guard let values = decodeFloats(src, dtype: e.dtype, count: n) else {
                throw FileFormatError(file: path, problem: "tensor '\(name)' has dtype \(e.dtype), which cannot be read as float")
            }
            return Tensor(shape: e.shape, data: values)
        }
    }

    /// Every tensor, by name.
    public func allTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for e in entries { out[e.name] = try tensor(e.name) }
        return out
    }

    /// Writes tensors (as F32) with optional metadata. Keys are written in sorted order.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        try writeUserFile(serialize(tensors, metadata: metadata), to: path, what: "safetensors file")
    }

    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let keys = tensors.keys.sorted()
        for k in keys {
            let t = tensors[k]!
            let size = t.count * 4
            header[k] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count + 8) % 8 != 0 { json.append(0x20) }
        var out = Data()
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(json)
        for k in keys {
            tensors[k]!.data.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }
}

/// Converts little-endian raw values of a dtype to Float32; nil for a dtype that is not numeric.
/// dtype names are safetensors' (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL).
public func decodeFloats(_ src: UnsafeRawBufferPointer, dtype: String, count n: Int) -> [Float]? {
    switch dtype {
    case "F32":
        return [Float](unsafeUninitializedCapacity: n) { buf, c in
            for i in 0 ..< n { buf[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            c = n
        }
    case "F16":
        return [Float](unsafeUninitializedCapacity: n) { buf, c in
            for i in 0 ..< n { buf[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
            c = n
        }
    case "BF16":
        return [Float](unsafeUninitializedCapacity: n) { buf, c in
            for i in 0 ..< n {
                let b = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
                buf[i] = Float(bitPattern: UInt32(b) << 16)
            }
            c = n
        }
    case "F64":
        return (0 ..< n).map { Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) }
    case "I64":
        return (0 ..< n).map { Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
    case "I32":
        return (0 ..< n).map { Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
    case "I16":
        return (0 ..< n).map { Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) }
    case "I8":
        return (0 ..< n).map { Float(src.load(fromByteOffset: $0, as: Int8.self)) }
    case "U8", "BOOL":
        return (0 ..< n).map { Float(src.load(fromByteOffset: $0, as: UInt8.self)) }
    default:
        return nil
    }
}

/// IEEE 754 half (binary16) bits to Float.
@inline(__always)
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1F)
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal: mant * 2^-24.
        let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -v : v
    }
    if exp == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
    }
    return Float(bitPattern: sign | (UInt32(exp - 15 + 127) << 23) | (mant << 13))
}
