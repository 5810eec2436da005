import Foundation
import Tensor

/// What kind of file a checkpoint came from.
public enum CheckpointFormat: String, Sendable, Codable {
    /// A `.safetensors` file.
    case safetensors
    /// A `torch.save` file holding a state dict (or a module that is not an ultralytics model).
    case torch
    /// An ultralytics checkpoint (`best.pt`, `last.pt`, `yolov8n.pt`): a pickled model with its YAML and class names.
    case ultralytics
    /// A Hugging Face model directory: `config.json` + `model.safetensors`.
    case huggingFace = "hf"
}

/// dtype and shape of one stored tensor.
public struct TensorInfo: Sendable, Equatable, Codable {
    /// safetensors-style dtype name (F32, F16, BF16, I64, ...).
    public var dtype: String
    public var shape: [Int]
    public var count: Int { shape.reduce(1, *) }
}

/// Any checkpoint the tool opens: safetensors, a torch.save state dict, an ultralytics `.pt`, or a Hugging Face
/// directory. Tensors are read lazily (safetensors are memory-mapped; torch storages are read when asked for).
///
/// ```swift
/// let ckpt = try Checkpoint.open(path: "best.pt")
/// let spec = try ckpt.modelSpec()          // the embedded model YAML, typed
/// let store = WeightStore(.checkpoint(name: ckpt.path, tensors: try ckpt.tensors))
/// ```
public final class Checkpoint: @unchecked Sendable {
    public let format: CheckpointFormat
    public let path: String
    /// Tensor keys in a stable order (the file's order for torch files, sorted for safetensors).
    public let keys: [String]
    /// dtype and shape by key.
    public let info: [String: TensorInfo]
    /// safetensors `__metadata__`, or the scalar fields of a torch checkpoint (date, version, epoch, train_args.*).
    public let metadata: [String: String]
    /// The model YAML dict embedded in an ultralytics checkpoint.
    public let ultralyticsYAML: ConfigValue?
    /// Class names by index (ultralytics `names`, Hugging Face `id2label`); empty when the file has none.
    public let classNames: [String]
    /// detect, segment, pose, obb, classify (ultralytics; guessed from the head as ultralytics does).
    public let task: String?
    /// A Hugging Face `config.json`.
    public let config: ConfigValue?
    /// Which pickled object the weights came from (`model`, `ema`, `state_dict`, ...), for torch files.
    public let source: String?
    /// Things worth telling the user that did not stop the file opening.
    public let warnings: [String]
    /// The unpickled data.pkl of a torch file (inert objects included), for callers that need more.
    public let pickle: PickleValue?

    private let loader: Loader

    enum Loader {
        case safetensors([SafetensorsFile], [String: Int])
        case torch(TorchArchive, [String: TorchTensorRef])
    }

    public var dtypes: [String: String] { info.mapValues(\.dtype) }

    /// Total number of stored values (BN running statistics and counters included).
    public var totalValues: Int { info.values.reduce(0) { $0 + $1.count } }

    /// Parameters as ultralytics counts them: every tensor but BN running statistics and counters.
    public var parameterCount: Int {
        info.filter { !($0.key.hasSuffix("running_mean") || $0.key.hasSuffix("running_var") || $0.key.hasSuffix("num_batches_tracked")) }
            .values.reduce(0) { $0 + $1.count }
    }

    init(format: CheckpointFormat, path: String, keys: [String], info: [String: TensorInfo], metadata: [String: String],
         ultralyticsYAML: ConfigValue?, classNames: [String], task: String?, config: ConfigValue?, source: String?,
         warnings: [String], pickle: PickleValue?, loader: Loader) {
        self.format = format
        self.path = path
        self.keys = keys
        self.info = info
        self.metadata = metadata
        self.ultralyticsYAML = ultralyticsYAML
        self.classNames = classNames
        self.task = task
        self.config = config
        self.source = source
        self.warnings = warnings
        self.pickle = pickle
        self.loader = loader
    }

    /// One tensor as Float32.
    public func tensor(_ key: String) throws -> Tensor {
        guard info[key] != nil else { throw FileFormatError(file: path, problem: "no tensor named '\(key)'") }
        return try load([key])[key]!
    }

    /// Every tensor as Float32, by key. Throws naming the key of a tensor whose dtype cannot be read as float.
    public var tensors: [String: Tensor] {
        get throws { try load(keys) }
    }

    /// The named tensors as Float32.
    public func load(_ names: [String]) throws -> [String: Tensor] {
        switch loader {
        case .safetensors(let files, let index):
            var out: [String: Tensor] = [:]
            for k in names {
                guard let i = index[k] else { throw FileFormatError(file: path, problem: "no tensor named '\(k)'") }
                do {
                    out[k] = try files[i].tensor(k)
                } catch let e as FileFormatError {
                    throw FileFormatError(file: e.file, problem: e.problem)
                }
            }
            return out
        case .torch(let archive, let refs):
            return try archive.materialise(try names.map { k in
                guard let r = refs[k] else { throw FileFormatError(file: path, problem: "no tensor named '\(k)'") }
                return (k, r)
            })
        }
    }

    /// What `verify()` found.
    public struct Verification: Sendable {
        public var tensors = 0
        /// Values of every tensor (as shapes count them).
        public var values = 0
        /// Non-finite values (NaN, inf); in a view that repeats its storage (stride 0), each stored value once.
        public var nonFinite = 0
    }

    /// Reads every tensor as Float32, one at a time, and counts its non-finite values. A view that repeats its
    /// storage (a stride of 0, an overlapping stride) is checked through the storage elements it reaches rather than
    /// expanded, so a file cannot make verification allocate more than its own size.
    public func verify() throws -> Verification {
        var v = Verification()
        for key in keys {
            var check = key
            var loaded: Tensor
            if case .torch(let archive, let refs) = loader, let r = refs[key], r.count > 0, r.count > r.requiredElements - r.offset {
                let span = r.requiredElements - r.offset
                let flat = TorchTensorRef(storage: r.storage, dtype: r.dtype, offset: r.offset, shape: [span], stride: [1],
                                          isParameter: r.isParameter, requiresGrad: false)
                check = "\(key) (the \(span) stored values of a view of size \(r.shape), stride \(r.stride))"
                loaded = try archive.materialise([(check, flat)])[check]!
            } else {
                loaded = try tensor(key)
            }
            v.tensors += 1
            v.values += info[key]?.count ?? loaded.count
            for x in loaded.data where !x.isFinite { v.nonFinite += 1 }
            loaded = Tensor(zeros: [0])
        }
        return v
    }

    /// The embedded ultralytics model YAML as a typed spec (nil when the checkpoint carries none).
    public func modelSpec() throws -> ModelSpec? {
        guard let y = ultralyticsYAML else { return nil }
        return try ModelSpec(value: y, file: "\(path) (embedded model yaml)")
    }

    // MARK: - Opening

    /// Opens any supported checkpoint, choosing the reader by content (not by extension): a directory is a
    /// Hugging Face model, a zip is torch.save, otherwise safetensors. The file is only read.
    public static func open(path: String) throws -> Checkpoint {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FileFormatError(file: path, problem: "no such file or directory")
        }
        if isDir.boolValue { return try openHuggingFace(directory: path) }
        let head: Data
        do {
            let h = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? h.close() }
            head = try h.read(upToCount: 8) ?? Data()
        } catch {
            throw FileFormatError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        if head.isEmpty { throw FileFormatError(file: path, problem: "the file is empty") }
        if head.starts(with: [0x50, 0x4B]) { return try openTorch(path: path) }
        if head.count >= 2, head[head.startIndex] == 0x80, head[head.startIndex + 1] <= 5 {
            return try openTorch(path: path) // legacy (pre-1.6) torch.save
        }
        let ext = (path as NSString).pathExtension.lowercased()
        do {
            return try openSafetensors(path: path)
        } catch let e as FileFormatError where ext != "safetensors" {
            if ["pt", "pth", "bin", "ckpt"].contains(ext) {
                throw FileFormatError(file: path, problem: "not a torch.save zip archive (it does not start with a zip header)")
            }
            throw FileFormatError(file: path, problem: "not a checkpoint this tool reads (torch.save zip, safetensors or a Hugging Face directory): \(e.problem)")
        }
    }

    static func openSafetensors(path: String, format: CheckpointFormat = .safetensors, config: ConfigValue? = nil,
                                classNames: [String] = [], extraFiles: [String] = []) throws -> Checkpoint {
        var files: [SafetensorsFile] = []
        var index: [String: Int] = [:]
        var info: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for p in [path] + extraFiles {
            let f: SafetensorsFile
            do {
                f = try SafetensorsFile(path: p)
            } catch let e as FileFormatError {
                throw FileFormatError(file: e.file, problem: e.problem)
            }
            for e in f.entries {
                if index[e.name] != nil { throw FileFormatError(file: p, problem: "tensor '\(e.name)' appears in more than one shard") }
                index[e.name] = files.count
                info[e.name] = TensorInfo(dtype: e.dtype, shape: e.shape)
            }
            metadata.merge(f.metadata) { a, _ in a }
            files.append(f)
        }
        return Checkpoint(format: format, path: path, keys: info.keys.sorted(), info: info, metadata: metadata,
                          ultralyticsYAML: nil, classNames: classNames, task: nil, config: config, source: nil,
                          warnings: [], pickle: nil, loader: .safetensors(files, index))
    }

    static func openHuggingFace(directory: String) throws -> Checkpoint {
        let dir = URL(fileURLWithPath: directory)
        let fm = FileManager.default
        let configPath = dir.appendingPathComponent("config.json").path
        var config: ConfigValue?
        var names: [String] = []
        if fm.fileExists(atPath: configPath) {
            let data = try readUserFile(configPath, maxBytes: 64 << 20)
            guard let json = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
                throw FileFormatError(file: configPath, problem: "not valid JSON")
            }
            let value = ConfigValue(json: json)
            config = value
            if let labels = value["id2label"]?.mapEntries {
                names = labels.compactMap { p in Int(p.key).map { ($0, p.value.stringValue ?? p.value.description) } }
                    .sorted { $0.0 < $1.0 }.map(\.1)
            }
        }
        let single = dir.appendingPathComponent("model.safetensors").path
        if fm.fileExists(atPath: single) {
            return try openSafetensors(path: single, format: .huggingFace, config: config, classNames: names)
        }
        let indexPath = dir.appendingPathComponent("model.safetensors.index.json").path
        if fm.fileExists(atPath: indexPath) {
            let data = try readUserFile(indexPath, maxBytes: 64 << 20)
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = json["weight_map"] as? [String: String] else {
                throw FileFormatError(file: indexPath, problem: "not a safetensors index (no weight_map)")
            }
            let shards = Array(Set(map.values)).sorted().map { dir.appendingPathComponent($0).path }
            guard let first = shards.first else { throw FileFormatError(file: indexPath, problem: "the weight_map is empty") }
            return try openSafetensors(path: first, format: .huggingFace, config: config, classNames: names, extraFiles: Array(shards.dropFirst()))
        }
        let bin = dir.appendingPathComponent("pytorch_model.bin").path
        if fm.fileExists(atPath: bin) {
            return try openTorch(path: bin)
        }
        throw FileFormatError(file: directory, problem: "a directory without model.safetensors (a Hugging Face model directory holds config.json and model.safetensors)")
    }

    static func openTorch(path: String) throws -> Checkpoint {
        let archive = try TorchArchive(path: path)
        let root = archive.root
        var warnings: [String] = []
        var metadata: [String: String] = [:]
        var format = CheckpointFormat.torch
        var yaml: ConfigValue?
        var names: [String] = []
        var task: String?
        var source: String?
        var state: [(String, TorchTensorRef)] = []

        if let pairs = root.dictPairs {
            for (k, v) in pairs {
                guard let key = k.stringValue else { continue }
                switch v {
                case .string(let s): metadata[key] = s
                case .int(let i): metadata[key] = String(i)
                case .float(let d): metadata[key] = String(d)
                case .bool(let b): metadata[key] = b ? "true" : "false"
                default: break
                }
            }
            if let args = root["train_args"]?.dictPairs {
                for (k, v) in args {
                    guard let key = k.stringValue else { continue }
                    switch v {
                    case .string(let s): metadata["train_args.\(key)"] = s
                    case .int(let i): metadata["train_args.\(key)"] = String(i)
                    case .float(let d): metadata["train_args.\(key)"] = String(d)
                    case .bool(let b): metadata["train_args.\(key)"] = b ? "true" : "false"
                    default: break
                    }
                }
            }
        }

        // Where the weights are.
        var module: PickleObject?
        if case .object(let o) = root, o.attribute("_modules") != nil || o.attribute("_parameters") != nil {
            module = o
            source = "<module>"
        } else if root.dictPairs != nil {
            for candidate in ["model", "ema"] {
                guard let v = root[candidate] else { continue }
                if case .object(let o) = v, o.attribute("_modules") != nil || o.attribute("_parameters") != nil {
                    module = o
                    source = candidate
                    break
                }
            }
            if module == nil {
                for candidate in ["state_dict", "model_state_dict", "model", "ema", "module", "net", "params"] {
                    if let v = root[candidate], let tensors = tensorDict(v), !tensors.isEmpty {
                        state = tensors
                        source = candidate
                        break
                    }
                }
                if state.isEmpty, let tensors = tensorDict(root), !tensors.isEmpty {
                    state = tensors
                    source = "<root>"
                }
            }
        }
        if let m = module {
            if m.className.hasPrefix("ultralytics.") || m.attribute("yaml") != nil { format = .ultralytics }
            var found: [(String, TorchTensorRef)] = []
            var seen = 0
            try collectState(m, prefix: "", into: &found, depth: 0, visited: &seen, file: path)
            state = found
            if let y = m.attribute("yaml"), y.dictPairs != nil { yaml = y.configValue() }
            if let n = m.attribute("names") { names = classNameList(n) }
            if let s = m.attribute("stride"), case .tensor(let t) = s {
                if let values = try? archive.materialise([("stride", t)])["stride"] {
                    metadata["stride"] = values.data.map { String(Int($0)) }.joined(separator: ",")
                }
            }
            if let t = m.attribute("task")?.stringValue { task = t }
            if source == "ema", root["model"]?.isNone == true {
                warnings.append("'model' is None; the weights are the EMA model (as ultralytics saves last.pt)")
            }
        }
        if format == .ultralytics, task == nil, let y = yaml { task = guessTask(y) }
        if state.isEmpty {
            let kinds = root.dictPairs.map { ps in ps.compactMap { $0.key.stringValue }.prefix(12).joined(separator: ", ") } ?? root.typeName
            throw FileFormatError(file: path, problem: "no tensors found: the checkpoint holds \(root.dictPairs != nil ? "a dict with keys " : "a ")\(kinds) but no state dict or model")
        }
        var info: [String: TensorInfo] = [:]
        var refs: [String: TorchTensorRef] = [:]
        var keys: [String] = []
        for (k, r) in state where refs[k] == nil {
            keys.append(k)
            refs[k] = r
            info[k] = TensorInfo(dtype: r.dtype.name, shape: r.shape)
        }
        let unknown = archive.inertGlobals.filter { !$0.hasPrefix("torch.") && !$0.hasPrefix("ultralytics.") && !$0.hasPrefix("collections.") && !$0.hasPrefix("builtins.") }
        if !unknown.isEmpty {
            warnings.append("kept as inert objects (never run): \(unknown.sorted().prefix(8).joined(separator: ", "))\(unknown.count > 8 ? ", ..." : "")")
        }
        return Checkpoint(format: format, path: path, keys: keys, info: info, metadata: metadata, ultralyticsYAML: yaml,
                          classNames: names, task: task, config: nil, source: source, warnings: warnings, pickle: root,
                          loader: .torch(archive, refs))
    }

    /// A dict whose values are all tensors, or nested dicts of tensors (flattened with dots), or nil.
    static func tensorDict(_ v: PickleValue, prefix: String = "", depth: Int = 0) -> [(String, TorchTensorRef)]? {
        guard depth < 20, let pairs = v.dictPairs else { return nil }
        var out: [(String, TorchTensorRef)] = []
        for (k, value) in pairs {
            guard let key = k.stringValue ?? k.intValue.map(String.init) else { return nil }
            switch value {
            case .tensor(let t): out.append((prefix + key, t))
            case .none: continue
            default:
                guard let inner = tensorDict(value, prefix: prefix + key + ".", depth: depth + 1) else { return nil }
                out += inner
            }
        }
        return out
    }

    /// Walks an inert nn.Module (its `_parameters`, persistent `_buffers` and `_modules`) and names every
    /// tensor as `state_dict()` would: model.0.conv.weight, ...
    static func collectState(_ m: PickleObject, prefix: String, into out: inout [(String, TorchTensorRef)], depth: Int,
                             visited: inout Int, file: String) throws {
        guard depth < 200 else { throw FileFormatError(file: file, problem: "modules nest deeper than 200 levels") }
        visited += 1
        guard visited < 1_000_000 else { throw FileFormatError(file: file, problem: "more than a million modules") }
        var nonPersistent: Set<String> = []
        if let np = m.attribute("_non_persistent_buffers_set")?.items {
            nonPersistent = Set(np.compactMap(\.stringValue))
        }
        if let params = m.attribute("_parameters")?.dictPairs {
            for (k, v) in params {
                if case .tensor(let t) = v, let name = k.stringValue { out.append((prefix + name, t)) }
            }
        }
        if let buffers = m.attribute("_buffers")?.dictPairs {
            for (k, v) in buffers {
                if case .tensor(let t) = v, let name = k.stringValue, !nonPersistent.contains(name) { out.append((prefix + name, t)) }
            }
        }
        if let children = m.attribute("_modules")?.dictPairs {
            for (k, v) in children {
                if case .object(let child) = v, let name = k.stringValue {
                    try collectState(child, prefix: prefix + name + ".", into: &out, depth: depth + 1, visited: &visited, file: file)
                }
            }
        }
    }

    /// `names` as ultralytics stores it: {0: 'person', ...} or a list.
    static func classNameList(_ v: PickleValue) -> [String] {
        if let items = v.items { return items.map { $0.stringValue ?? "\($0.intValue ?? 0)" } }
        if let pairs = v.dictPairs {
            return pairs.compactMap { p -> (Int, String)? in
                guard let i = p.key.intValue ?? p.key.stringValue.flatMap({ Int($0) }) else { return nil }
                return (i, p.value.stringValue ?? p.value.typeName)
            }.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return []
    }

    /// Ultralytics' guess_model_task from the last head module.
    static func guessTask(_ yaml: ConfigValue) -> String? {
        guard let head = yaml["head"]?.listValue, let last = head.last?.listValue, last.count >= 3,
              let m = last[2].stringValue?.lowercased() else { return nil }
        if m.contains("segment") { return "segment" }
        if m.contains("pose") { return "pose" }
        if m.contains("obb") { return "obb" }
        if m.contains("classify") { return "classify" }
        if m.contains("detect") || m.contains("rtdetrdecoder") { return "detect" }
        return nil
    }
}

extension ConfigValue {
    /// From a JSONSerialization object.
    init(json: Any, depth: Int = 0) {
        if depth > 100 { self = .string("..."); return }
        switch json {
        case is NSNull: self = .null
        case let n as NSNumber:
            let code = String(cString: n.objCType)
            if code == "c" || code == "B" { self = .bool(n.boolValue) }
            else if code == "d" || code == "f" { self = .double(n.doubleValue) }
            else { self = .int(n.intValue) }
        case let s as String: self = .string(s)
        case let a as [Any]: self = .list(a.map { ConfigValue(json: $0, depth: depth + 1) })
        case let d as [String: Any]: self = .map(d.keys.sorted().map { ($0, ConfigValue(json: d[$0]!, depth: depth + 1)) })
        default: self = .string("\(json)")
        }
    }
}
