import Crypto
import Foundation

/// Where downloaded weights live: `DETR_TUI_CACHE` if set, else `$XDG_CACHE_HOME/detr-tui`, else
/// `~/.cache/detr-tui`; each entry's files under `weights/<id>/`.
///
/// Beside a complete file `NAME` there may be:
/// - `NAME.partial`: bytes of an unfinished download, kept only to resume it (never opened as weights), with
///   `NAME.partial.json` (the URL and the server's validators, so that a resume asks for the same file);
/// - `NAME.record.json`: its size and SHA-256 as verified when it was moved into place, and whether the hash
///   was pinned by the catalogue or recorded at the first download (trust on first use).
/// A file is moved into place only after its size and hash have been checked, so a file called `NAME` is
/// never a partial download.
public struct WeightsCache: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    /// The cache of this environment (see the type's doc).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> WeightsCache {
        if let dir = environment["DETR_TUI_CACHE"], !dir.isEmpty {
            return WeightsCache(root: URL(fileURLWithPath: dir))
        }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return WeightsCache(root: URL(fileURLWithPath: xdg).appendingPathComponent("detr-tui"))
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return WeightsCache(root: URL(fileURLWithPath: home).appendingPathComponent(".cache/detr-tui"))
    }

    public func directory(for id: String) -> URL { root.appendingPathComponent("weights").appendingPathComponent(id) }
    public func file(_ name: String, of id: String) -> URL { directory(for: id).appendingPathComponent(name) }
    public func partial(_ name: String, of id: String) -> URL { directory(for: id).appendingPathComponent(name + ".partial") }
    func partialMeta(_ name: String, of id: String) -> URL { directory(for: id).appendingPathComponent(name + ".partial.json") }
    func record(_ name: String, of id: String) -> URL { directory(for: id).appendingPathComponent(name + ".record.json") }

    /// What `openModel` opens for an entry: its directory when it holds a Hugging Face layout (config.json +
    /// weights), else its single weights file.
    public func openablePath(for id: String, weights: PretrainedWeights) -> URL {
        if weights.files.contains(where: { $0.name == "config.json" }) { return directory(for: id) }
        return file(weights.files[0].name, of: id)
    }

    /// The ids that have anything in the cache, sorted.
    public func cachedIDs() -> [String] {
        let dir = root.appendingPathComponent("weights")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Removes everything cached for `id` (complete files, partial downloads, records). Returns the bytes freed.
    @discardableResult
    public func remove(_ id: String) throws -> Int64 {
        let dir = directory(for: id)
        let bytes = Self.bytes(under: dir)
        if FileManager.default.fileExists(atPath: dir.path) { try FileManager.default.removeItem(at: dir) }
        return bytes
    }

    static func bytes(under dir: URL) -> Int64 {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.reduce(Int64(0)) { $0 + fileSize(dir.appendingPathComponent($1)) }
    }
}

/// The size of a file in bytes, 0 if it does not exist.
func fileSize(_ url: URL) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0
}

/// The SHA-256 of a file, read in 1 MiB blocks (swift-crypto).
public func sha256(of url: URL) throws -> String {
    let handle = try FileHandle(forReadingFrom: url)
    defer { try? handle.close() }
    var hasher = SHA256()
    while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty {
        hasher.update(data: block)
    }
    return hexString(hasher.finalize())
}

func hexString(_ digest: SHA256.Digest) -> String {
    digest.map { String(format: "%02x", $0) }.joined()
}

/// What was verified when a file was moved into the cache (`NAME.record.json`).
public struct WeightsRecord: Codable, Sendable, Equatable {
    public var size: Int64
    public var sha256: String
    /// "pinned" (the catalogue gives the hash) or "first use" (recorded at the first download or use).
    public var trust: String
    public var url: String
    public var date: String

    public static func load(_ url: URL) -> WeightsRecord? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return try? JSONDecoder().decode(WeightsRecord.self, from: data)
    }

    func write(to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: url, options: .atomic)
    }
}

/// The state of one entry's weights in the cache.
public enum CacheState: Sendable, Equatable {
    /// The authors publish none (the note says so).
    case notPublished(note: String)
    /// Nothing downloaded yet.
    case missing
    /// A download was interrupted; `bytes` of it are kept to resume it.
    case partial(bytes: Int64)
    /// Every file is in place with the expected size (its hash is checked on use and by `weights verify`).
    case cached(bytes: Int64)
}

/// One entry's status for a list or the explorer: what is published, from where, and what the cache holds.
public struct WeightsStatus: Sendable, Equatable {
    public var id: String
    public var weights: PretrainedWeights?
    public var state: CacheState
    /// Where the files go (the directory, or the single file).
    public var location: URL

    /// One line: "pretrained weights, 6.2 MB from github.com/ultralytics/assets, not yet downloaded".
    public var summary: String {
        guard let w = weights, w.isPublished else {
            if case .notPublished(let note) = state { return note }
            return "no published weights"
        }
        var size = w.totalSize.map(formatBytes) ?? "size not published,"
        if w.totalSize == nil, case .cached(let bytes) = state { size = formatBytes(bytes) }
        let what: String
        switch state {
        case .notPublished(let note): return note
        case .missing: what = "not yet downloaded"
        case .partial(let b): what = "\(formatBytes(b)) of an interrupted download kept for resuming"
        case .cached: what = "cached"
        }
        return "pretrained weights, \(size) from \(w.sourceLabel), \(what)"
    }
}

extension WeightsCache {
    /// The entry's status; reads file sizes only (no hashing, no network).
    public func status(of entry: CatalogueEntry) -> WeightsStatus {
        guard let w = entry.weights, w.isPublished else {
            let note = entry.weights?.note ?? "no published weights"
            return WeightsStatus(id: entry.id, weights: entry.weights, state: .notPublished(note: note), location: directory(for: entry.id))
        }
        var complete: Int64 = 0, partialBytes: Int64 = 0, allThere = true
        for f in w.files {
            let url = file(f.name, of: entry.id)
            if FileManager.default.fileExists(atPath: url.path), expectedSize(f, id: entry.id).map({ $0 == fileSize(url) }) ?? true {
                complete += fileSize(url)
            } else {
                allThere = false
                partialBytes += fileSize(partial(f.name, of: entry.id))
            }
        }
        let state: CacheState = allThere ? .cached(bytes: complete) : (partialBytes > 0 ? .partial(bytes: partialBytes + complete) : .missing)
        return WeightsStatus(id: entry.id, weights: w, state: state, location: openablePath(for: entry.id, weights: w))
    }

    /// The size a cached file must have: the pinned one, else the one recorded when it was first verified.
    func expectedSize(_ f: WeightsFile, id: String) -> Int64? {
        f.size ?? WeightsRecord.load(record(f.name, of: id))?.size
    }
}
