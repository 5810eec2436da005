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

    /// The most data.pkl may hold (a pickle this size is not a checkpoint's).
    public static let maxPickleBytes = 1 << 30

    public init(path: String) throws {
        self.path = path
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: path, problem: p) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
        if size == 0 { throw fail("the file is empty") }
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw fail(TorchArchive.isLegacyPickle(path)
                ? "a legacy (pre-1.6, non-zip) torch.save file; re-save it with a current PyTorch"
                : "not a readable zip archive (truncated or corrupt); a torch.save checkpoint is a zip file")
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
            sizes[String(p.dropFirst(prefix.count + 5))] = Int(e.uncompressedSize)
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
        var out = Data()
        out.reserveCapacity(Int(entry.uncompressedSize))
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
    static func storage(from pid: PickleValue, sizes: [String: Int], file: String) throws -> PickleValue {
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
        guard let bytes = sizes[key] else { throw fail("storage '\(key)' is missing from the archive (data/\(key))") }
        if let size = dtype.byteSize {
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
                data = try TorchArchive.read(archive, entry, limit: Int(entry.uncompressedSize), file: path)
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
        guard needed * size <= data.count else {
            throw FileFormatError(file: file, problem: "tensor '\(key)' needs \(needed) elements of storage '\(ref.storage.key)', which holds only \(data.count / size)")
        }
        let n = ref.count
        if n == 0 { return Tensor(shape: ref.shape, data: []) }
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
