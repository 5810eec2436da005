import Foundation
import Tensor
import ZIPFoundation

/// A `torch.save` file (the zip format PyTorch has written since 1.6): `<root>/data.pkl` is a pickle whose
/// tensors refer by persistent id to raw little-endian storages in `<root>/data/<key>`.
///
/// Opening reads only data.pkl (through the restricted `Unpickler`, which runs nothing); storages are read
/// when tensors are materialised. The file is opened read-only.
public final class TorchArchive: @unchecked Sendable {
    public let path: String
    /// The unpickled data.pkl.
    public let root: PickleValue
    /// Entry name prefix (`archive/`, `best/`, ...).
    public let prefix: String
    /// Storage sizes in bytes, by key, as the zip directory gives them.
    public let storageBytes: [String: Int]
    /// Inert (unknown) classes and functions the pickle named, e.g. `ultralytics.nn.tasks.DetectionModel`.
    public let inertGlobals: Set<String>
    /// Whether this is the legacy (pre-1.6) format: consecutive pickles followed by raw storages.
    public let isLegacy: Bool
    /// Storage byte ranges of a legacy file, and its bytes.
    private let legacyRanges: [String: Range<Int>]
    private let legacyBytes: [UInt8]

    /// The most data.pkl may hold (a pickle this size is not a checkpoint's).
    public static let maxPickleBytes = 1 << 30

    public init(path: String) throws {
        self.path = path
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: path, problem: p) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
        if size == 0 { throw fail("the file is empty") }
        if TorchArchive.isLegacyPickle(path) {
            let legacy = try TorchArchive.readLegacy(path: path)
            root = legacy.root
            inertGlobals = legacy.inert
            legacyRanges = legacy.ranges
            legacyBytes = legacy.bytes
            isLegacy = true
            prefix = ""
            storageBytes = legacy.ranges.mapValues(\.count)
            return
        }
        isLegacy = false
        legacyRanges = [:]
        legacyBytes = []
        // ZIPFoundation converts the directory's 64-bit offsets to off_t unchecked (a trap past Int64.max).
        try TorchArchive.checkZipDirectory(path: path, size: size)
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw fail("not a readable zip archive (truncated or corrupt); a torch.save checkpoint is a zip file")
        }
        var pkl: Entry?
        var sizes: [String: Int] = [:]
        var entries: [String: Entry] = [:]
        for entry in archive {
            let p = entry.path
            entries[p] = entry
            if p.hasSuffix("data.pkl"), p.split(separator: "/").count == 2 { pkl = pkl ?? entry }
        }
        guard let pkl else {
            if entries.keys.contains(where: { $0.hasSuffix("constants.pkl") }) {
                throw fail("a TorchScript archive (torch.jit.save); save the state dict with torch.save instead")
            }
            throw fail("a zip archive without <root>/data.pkl, so not a torch.save checkpoint")
        }
        let prefix = String(pkl.path.dropLast("data.pkl".count))
        self.prefix = prefix
        for (p, e) in entries where p.hasPrefix(prefix + "data/") {
            sizes[String(p.dropFirst(prefix.count + 5))] = Int(clamping: e.uncompressedSize)
        }
        storageBytes = sizes
        if let bo = entries[prefix + "byteorder"] {
            let order = try TorchArchive.read(archive, bo, limit: 64, file: path)
            if String(decoding: order, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "big" {
                throw fail("storages are big-endian (saved on a big-endian machine), which is not supported")
            }
        }
        guard pkl.uncompressedSize <= UInt64(TorchArchive.maxPickleBytes) else {
            throw fail("data.pkl claims \(pkl.uncompressedSize) bytes, more than the \(TorchArchive.maxPickleBytes)-byte limit")
        }
        let pickle = try TorchArchive.read(archive, pkl, limit: TorchArchive.maxPickleBytes, file: path)
        let file = path
        let unpickler = Unpickler(data: pickle, file: "\(path) (data.pkl)") { pid in
            try TorchArchive.storage(from: pid, sizes: sizes, file: file)
        }
        let value = try unpickler.load()
        if !unpickler.dangerousCalls.isEmpty {
            let names = Array(Set(unpickler.dangerousCalls)).sorted()
            throw fail("data.pkl calls unsupported global\(names.count > 1 ? "s" : "") \(names.joined(separator: ", ")) (not executed); this file tries to run code when loaded")
        }
        root = value
        inertGlobals = unpickler.inertGlobals
    }

    /// Checks, before the zip library sees them, that the end-of-central-directory records (classic and ZIP64) and
    /// every central directory entry point inside the file: each offset a corrupt or hostile archive gives is
    /// compared with the file size in checked arithmetic.
    static func checkZipDirectory(path: String, size: Int) throws {
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: path, problem: "not a readable zip archive: \(p)") }
        guard size > 22, let h = FileHandle(forReadingAtPath: path) else { return }
        defer { try? h.close() }
        func read(_ offset: UInt64, _ count: Int) -> [UInt8] {
            guard offset < UInt64(size), (try? h.seek(toOffset: offset)) != nil else { return [] }
            return [UInt8]((try? h.read(upToCount: count)) ?? Data())
        }
        func u(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
            guard at + n <= b.count else { return UInt64.max }
            return (0 ..< n).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
        }
        let tailStart = UInt64(max(0, size - 65_557))
        let tail = read(tailStart, size - Int(tailStart))
        guard let eocd = stride(from: tail.count - 22, through: 0, by: -1).first(where: { u(tail, $0, 4) == 0x0605_4B50 }) else {
            return // ZIPFoundation reports a missing directory itself
        }
        var entries = u(tail, eocd + 10, 2), cdSize = u(tail, eocd + 12, 4), cdOffset = u(tail, eocd + 16, 4)
        if eocd >= 20, u(tail, eocd - 20, 4) == 0x0706_4B50 {
            let recordOffset = u(tail, eocd - 12, 8)
            let record = read(recordOffset, 56)
            guard recordOffset < UInt64(size), u(record, 0, 4) == 0x0606_4B50 else {
                throw fail("its ZIP64 directory record is at offset \(recordOffset), outside the \(size)-byte file")
            }
            entries = u(record, 32, 8); cdSize = u(record, 40, 8); cdOffset = u(record, 48, 8)
        }
        let (cdEnd, overflow) = cdOffset.addingReportingOverflow(cdSize)
        guard !overflow, cdEnd <= UInt64(size) else {
            throw fail("its central directory (offset \(cdOffset), \(cdSize) bytes) runs past the end of the \(size)-byte file")
        }
        guard entries <= cdSize / 46 + 1 else { throw fail("it claims \(entries) entries in a \(cdSize)-byte directory") }
        let cd = read(cdOffset, Int(cdSize))
        var pos = 0
        for _ in 0 ..< entries {
            // A short or malformed directory: ZIPFoundation stops reading there too.
            guard pos + 46 <= cd.count, u(cd, pos, 4) == 0x0201_4B50 else { return }
            let nameLength = Int(u(cd, pos + 28, 2)), extraLength = Int(u(cd, pos + 30, 2)), commentLength = Int(u(cd, pos + 32, 2))
            var localOffset = u(cd, pos + 42, 4)
            // A ZIP64 extra field (id 1) replaces the 0xFFFFFFFF fields, in order: sizes, then the local header offset.
            var e = pos + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= min(extraEnd, cd.count) {
                let id = u(cd, e, 2), length = Int(u(cd, e + 2, 2))
                if id == 1 {
                    var field = e + 4
                    for at in [24, 20] where u(cd, pos + at, 4) == 0xFFFF_FFFF { field += 8 }
                    if localOffset == 0xFFFF_FFFF { localOffset = u(cd, field, 8) }
                }
                e += 4 + length
            }
            guard localOffset < UInt64(size) else {
                throw fail("an entry's local header is at offset \(localOffset), outside the \(size)-byte file")
            }
            pos += 46 + nameLength + extraLength + commentLength
        }
    }

    /// Reads a legacy torch.save file: pickles of the magic number, the protocol version (1001) and system
    /// info, then the object (storages by persistent id), then the list of storage keys, then for each key an
    /// int64 element count and the raw little-endian elements.
    static func readLegacy(path: String) throws -> (root: PickleValue, inert: Set<String>, ranges: [String: Range<Int>], bytes: [UInt8]) {
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: path, problem: p) }
        let bytes = [UInt8](try readUserFile(path, maxBytes: 16 << 30))
        let name = "\(path) (legacy torch.save)"
        let magic = Unpickler(bytes: bytes, start: 0, file: name)
        let m = try magic.load()
        // torch's legacy magic number 0x1950a86a20f9469cfc6c, which a Double holds to 1e-16 relative
        guard case .bigInt(let v) = m, abs(v / 1.195470371460388e23 - 1) < 1e-9 else {
            throw fail("a pickle, but not a torch.save file (no torch magic number)")
        }
        let proto = Unpickler(bytes: bytes, start: magic.endOffset, file: name)
        guard try proto.load().intValue == 1001 else { throw fail("legacy torch.save protocol version is not 1001") }
        let info = Unpickler(bytes: bytes, start: proto.endOffset, file: name)
        let sys = try info.load()
        if case .bool(false)? = sys["little_endian"] { throw fail("storages are big-endian, which is not supported") }
        var claimed: [String: TorchStorageRef] = [:]
        let main = Unpickler(bytes: bytes, start: info.endOffset, file: name) { pid in
            // ('storage', type, key, location, numel, view_metadata)
            let value = try TorchArchive.storage(from: pid, sizes: nil, file: path)
            if case .storage(let s) = value {
                if case .tuple(let items) = pid, items.count >= 6, !items[5].isNone {
                    throw FileFormatError(file: path, problem: "storage views (a pre-1.0 torch.save feature) are not supported")
                }
                claimed[s.key] = s
            }
            return value
        }
        let root = try main.load()
        if !main.dangerousCalls.isEmpty {
            let names = Array(Set(main.dangerousCalls)).sorted()
            throw fail("the pickle calls unsupported global\(names.count > 1 ? "s" : "") \(names.joined(separator: ", ")) (not executed); this file tries to run code when loaded")
        }
        let keysPickle = Unpickler(bytes: bytes, start: main.endOffset, file: name)
        guard let keys = try keysPickle.load().items?.compactMap(\.stringValue) else { throw fail("the storage key list is missing") }
        var pos = keysPickle.endOffset
        var ranges: [String: Range<Int>] = [:]
        for key in keys {
            guard let s = claimed[key], let size = s.dtype.byteSize else { throw fail("storage '\(key)' is listed but never used") }
            guard pos + 8 <= bytes.count else { throw fail("the file ends before storage '\(key)' (truncated)") }
            var n: UInt64 = 0
            for i in 0 ..< 8 { n |= UInt64(bytes[pos + i]) << (8 * UInt64(i)) }
            pos += 8
            let (len, overflow) = Int(clamping: n).multipliedReportingOverflow(by: size)
            guard !overflow, pos + len <= bytes.count else { throw fail("storage '\(key)' claims \(n) elements but the file ends first (truncated)") }
            guard Int(clamping: n) >= s.numel else { throw fail("storage '\(key)' holds \(n) elements, fewer than the \(s.numel) its tensors claim") }
            ranges[key] = pos ..< pos + len
            pos += len
        }
        for key in claimed.keys where ranges[key] == nil { throw fail("storage '\(key)' has no data in the file") }
        return (root, main.inertGlobals, ranges, bytes)
    }

    /// Whether the file starts like a pre-zip torch.save pickle (protocol 2 and the magic number).
    static func isLegacyPickle(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let head = h.readData(ofLength: 2)
        return head.count == 2 && head[head.startIndex] == 0x80 && head[head.startIndex + 1] <= 5
    }

    static func read(_ archive: Archive, _ entry: Entry, limit: Int, file: String) throws -> Data {
        guard entry.uncompressedSize <= UInt64(limit) else {
            throw FileFormatError(file: file, problem: "zip entry \(entry.path) claims \(entry.uncompressedSize) bytes, more than expected")
        }
        if entry.isCompressed, entry.uncompressedSize > 200 * max(entry.compressedSize, 1) {
            throw FileFormatError(file: file, problem: "zip entry \(entry.path) claims to expand \(entry.compressedSize) bytes to \(entry.uncompressedSize) (a zip bomb?); torch.save stores entries uncompressed")
        }
        var out = Data()
        // Reserve no more than the file could hold when stored: a corrupt directory may claim anything.
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.intValue ?? 0
        out.reserveCapacity(min(Int(clamping: entry.uncompressedSize), fileSize))
        do {
            _ = try archive.extract(entry, bufferSize: 1 << 20, skipCRC32: true) { chunk in
                guard out.count + chunk.count <= limit else { throw FileFormatError(file: file, problem: "zip entry \(entry.path) is larger than it claims") }
                out.append(chunk)
            }
        } catch let e as FileFormatError {
            throw e
        } catch {
            throw FileFormatError(file: file, problem: "cannot read zip entry \(entry.path) (truncated or corrupt archive: \(error))")
        }
        return out
    }

    /// Resolves torch's persistent id ('storage', <storage class>, key, location, numel).
    static func storage(from pid: PickleValue, sizes: [String: Int]?, file: String) throws -> PickleValue {
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: file, problem: p) }
        guard case .tuple(let items) = pid, items.count >= 5, items[0].stringValue == "storage" else {
            throw fail("data.pkl has a persistent id that is not a torch storage")
        }
        guard case .global(let cls) = items[1] else { throw fail("storage type is not a class name") }
        let clsName = cls.split(separator: ".").last.map(String.init) ?? cls
        guard let dtype = TorchDType.byStorageClass[clsName] else {
            throw fail("storage type \(cls) is not supported")
        }
        let key: String
        switch items[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        default: throw fail("storage key is not a string")
        }
        let location = items[3].stringValue ?? "cpu"
        guard let numel = items[4].intValue, numel >= 0 else { throw fail("storage '\(key)' has a bad element count") }
        if let sizes {
            guard let bytes = sizes[key] else { throw fail("storage '\(key)' is missing from the archive (data/\(key))") }
            try checkSize(bytes)
        }
        func checkSize(_ bytes: Int) throws {
            guard let size = dtype.byteSize else { return }
            let (needed, overflow) = numel.multipliedReportingOverflow(by: size)
            if overflow || needed > bytes {
                throw fail("storage '\(key)' claims \(numel) elements of \(dtype) (\(overflow ? "too many" : String(needed)) bytes) but data/\(key) holds only \(bytes) bytes")
            }
        }
        return .storage(TorchStorageRef(key: key, dtype: dtype, storageClass: clsName, location: location, numel: numel))
    }

    /// Materialises tensors as Float32, reading each storage once. Unsupported dtypes are an error naming the key.
    public func materialise(_ refs: [(key: String, ref: TorchTensorRef)]) throws -> [String: Tensor] {
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: path, problem: p) }
        if isLegacy {
            var out: [String: Tensor] = [:]
            for (key, ref) in refs {
                guard ref.dtype.isConvertibleToFloat else {
                    throw fail("tensor '\(key)' has dtype \(ref.dtype), which cannot be read as float")
                }
                guard let range = legacyRanges[ref.storage.key] else { throw fail("storage '\(ref.storage.key)' is missing") }
                let data = legacyBytes.withUnsafeBufferPointer { Data(buffer: UnsafeBufferPointer(rebasing: $0[range])) }
                out[key] = try TorchArchive.tensor(ref, from: data, key: key, file: path)
            }
            return out
        }
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw fail("cannot reopen the zip archive (\(error))")
        }
        // One pass over the central directory (ZIPFoundation's subscript scans it on every lookup).
        var entries: [String: Entry] = [:]
        let storagePrefix = prefix + "data/"
        for entry in archive where entry.path.hasPrefix(storagePrefix) {
            entries[String(entry.path.dropFirst(storagePrefix.count))] = entry
        }
        var cache: [String: Data] = [:]
        var out: [String: Tensor] = [:]
        for (key, ref) in refs {
            guard ref.dtype.isConvertibleToFloat else {
                throw fail("tensor '\(key)' has dtype \(ref.dtype), which cannot be read as float")
            }
            let skey = ref.storage.key
            let data: Data
            if let d = cache[skey] {
                data = d
            } else {
                guard let entry = entries[skey] else { throw fail("storage data/\(skey) is missing") }
                data = try TorchArchive.read(archive, entry, limit: Int(clamping: entry.uncompressedSize), file: path)
                cache[skey] = data
            }
            out[key] = try TorchArchive.tensor(ref, from: data, key: key, file: path)
        }
        return out
    }

    /// Builds a Float32 tensor from a view (offset, size, stride) of raw storage bytes.
    static func tensor(_ ref: TorchTensorRef, from data: Data, key: String, file: String) throws -> Tensor {
        guard let size = ref.dtype.byteSize else { throw FileFormatError(file: file, problem: "tensor '\(key)' has an unknown dtype") }
        let needed = ref.requiredElements
        guard case let (bytes, false) = needed.multipliedReportingOverflow(by: size), bytes <= data.count else {
            throw FileFormatError(file: file, problem: "tensor '\(key)' needs \(needed) elements of storage '\(ref.storage.key)', which holds only \(data.count / size)")
        }
        let n = ref.count
        if n == 0 { return Tensor(shape: ref.shape, data: []) }
        // A view may repeat its storage (stride 0): its Float32 copy can be far larger than the file.
        guard n <= Budget.tensorBytes / 4 else {
            throw FileFormatError(file: file, problem: "tensor '\(key)' of size \(ref.shape) (stride \(ref.stride)) has \(n) values, more than this machine's budget for one tensor (\(Budget.describe(bytes: Budget.tensorBytes)) as Float32)")
        }
        return try data.withUnsafeBytes { raw -> Tensor in
            let start = ref.offset * size
            let span = needed - ref.offset
            let src = UnsafeRawBufferPointer(rebasing: raw[start ..< start + span * size])
            guard let values = decodeFloats(src, dtype: ref.dtype.name, count: span) else {
                throw FileFormatError(file: file, problem: "tensor '\(key)' has dtype \(ref.dtype), which cannot be read as float")
            }
            if ref.isContiguous { return Tensor(shape: ref.shape, data: Array(values[0 ..< n])) }
            // Gather a strided view in row-major order.
            var out = [Float](repeating: 0, count: n)
            let rank = ref.shape.count
            var index = [Int](repeating: 0, count: rank)
            var srcPos = 0
            for i in 0 ..< n {
                out[i] = values[srcPos]
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    srcPos += ref.stride[d]
                    if index[d] < ref.shape[d] { break }
                    srcPos -= ref.stride[d] * ref.shape[d]
                    index[d] = 0
                    d -= 1
                }
            }
            return Tensor(shape: ref.shape, data: out)
        }
    }
}
