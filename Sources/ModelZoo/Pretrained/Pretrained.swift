import Foundation

/// Trained weights by catalogue id: fetched from the publisher (or a mirror) into the cache, verified, and
/// usable offline once there. Nothing here touches the network unless `fetch` or `start` is called.
///
/// The explorer's `W` key: `Pretrained(cache: .standard()).status(of: entry).summary` for what to show, then
/// `start(entry, progress:completion:)`, whose handle's `cancel()` is Esc.
public struct Pretrained: Sendable {
    public var cache: WeightsCache
    /// `DETR_TUI_WEIGHTS_URL`: a mirror serving `<base>/<id>/<file name>` in place of every publisher URL.
    public var mirror: String?
    /// Seconds without a byte before a download fails.
    public var timeout: TimeInterval = 30

    public init(cache: WeightsCache = .standard(), mirror: String? = ProcessInfo.processInfo.environment["DETR_TUI_WEIGHTS_URL"]) {
        self.cache = cache
        self.mirror = mirror.flatMap { $0.isEmpty ? nil : $0 }
    }

    public func status(of entry: CatalogueEntry) -> WeightsStatus { cache.status(of: entry) }

    /// The URL a file is fetched from: the pinned one, or the mirror's.
    public func url(of file: WeightsFile, entry id: String) -> String {
        guard let mirror else { return file.url }
        let base = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
        return "\(base)/\(id)/\(file.name)"
    }

    /// The published weights of `entry`, or why there are none.
    func published(_ entry: CatalogueEntry) throws -> PretrainedWeights {
        guard let w = entry.weights, w.isPublished else {
            throw PretrainedError.notPublished(id: entry.id, note: entry.weights?.note ?? "no published weights")
        }
        return w
    }

    /// A one-line message for a missing file when downloading is not wanted or not possible.
    public func manualInstructions(for entry: CatalogueEntry) -> String {
        guard let w = entry.weights, w.isPublished else { return entry.weights?.note ?? "no published weights" }
        let parts = w.files.map { "\(url(of: $0, entry: entry.id)) -> \(cache.file($0.name, of: entry.id).path)" }
        return "download " + parts.joined(separator: " and ")
    }

    /// Makes sure every file of `entry` is in the cache and verified, downloading what is missing (with
    /// `progress`), and returns what `openModel` opens (the file, or the Hugging Face directory).
    /// A cached file is checked by size and SHA-256 against the pin or the hash recorded at its first use; a file
    /// copied in by hand with no pinned hash has its hash recorded now (trust on first use), reported by `onRecord`.
    public func fetch(_ entry: CatalogueEntry, cancellation: DownloadCancellation = DownloadCancellation(),
                      progress: @escaping @Sendable (WeightsProgress) -> Void = { _ in },
                      onRecord: (String, WeightsRecord) -> Void = { _, _ in }) throws -> URL {
        let w = try published(entry)
        for (i, f) in w.files.enumerated() {
            let dest = cache.file(f.name, of: entry.id)
            if FileManager.default.fileExists(atPath: dest.path) {
                if let fresh = try check(f, of: entry) { onRecord(f.name, fresh) }
                continue
            }
            let source = url(of: f, entry: entry.id)
            guard let u = URL(string: source), u.scheme == "https" || u.scheme == "http" else {
                throw PretrainedError.io(path: source, problem: "not an http(s) URL")
            }
            let total = w.files.count
            let (size, digest) = try downloadFile(
                url: u, destination: dest, partial: cache.partial(f.name, of: entry.id), meta: cache.partialMeta(f.name, of: entry.id),
                expectedSize: f.size, expectedSHA256: f.sha256, timeout: timeout, cancellation: cancellation,
                progress: { received, expected, rate in
                    progress(WeightsProgress(file: f.name, fileIndex: i, fileCount: total, received: received,
                                             expected: expected, bytesPerSecond: rate))
                })
            let record = WeightsRecord(size: size, sha256: digest, trust: f.sha256 == nil ? "first use" : "pinned", url: source,
                                       date: ISO8601DateFormatter().string(from: Date()))
            try record.write(to: cache.record(f.name, of: entry.id))
            if f.sha256 == nil { onRecord(f.name, record) }
        }
        return cache.openablePath(for: entry.id, weights: w)
    }

    /// The path of `entry`'s weights if every file is cached and verifies, without any network access; else the
    /// one-line error saying what to download from where and where to put it.
    public func cachedPath(_ entry: CatalogueEntry, onRecord: (String, WeightsRecord) -> Void = { _, _ in }) throws -> URL {
        let w = try published(entry)
        for f in w.files {
            let dest = cache.file(f.name, of: entry.id)
            guard FileManager.default.fileExists(atPath: dest.path) else {
                throw PretrainedError.unreachable(url: url(of: f, entry: entry.id), reason: "not in the cache", destination: dest.path)
            }
            if let fresh = try check(f, of: entry) { onRecord(f.name, fresh) }
        }
        return cache.openablePath(for: entry.id, weights: w)
    }

    /// Checks a cached file's size and SHA-256 against the pin, else against its record; with neither, records
    /// them (trust on first use) and returns the new record.
    @discardableResult
    func check(_ f: WeightsFile, of entry: CatalogueEntry) throws -> WeightsRecord? {
        let dest = cache.file(f.name, of: entry.id)
        let recordURL = cache.record(f.name, of: entry.id)
        let record = WeightsRecord.load(recordURL)
        let size = fileSize(dest)
        if let expected = f.size ?? record?.size, expected != size {
            throw PretrainedError.corruptCache(path: dest.path, expected: "\(expected) bytes", actual: "\(size) bytes", id: entry.id)
        }
        let digest = try sha256(of: dest)
        if let expected = f.sha256?.lowercased() ?? record?.sha256 {
            guard expected == digest else {
                throw PretrainedError.corruptCache(path: dest.path, expected: expected, actual: digest, id: entry.id)
            }
            if record == nil {
                try WeightsRecord(size: size, sha256: digest, trust: "pinned", url: url(of: f, entry: entry.id),
                                  date: ISO8601DateFormatter().string(from: Date())).write(to: recordURL)
            }
            return nil
        }
        let fresh = WeightsRecord(size: size, sha256: digest, trust: "first use", url: "copied into the cache by hand",
                                  date: ISO8601DateFormatter().string(from: Date()))
        try fresh.write(to: recordURL)
        return fresh
    }

    /// Verifies every cached file of `entry` by size and SHA-256 (`weights verify`). Returns one line per file.
    public func verify(_ entry: CatalogueEntry) throws -> [String] {
        let w = try published(entry)
        var lines: [String] = []
        for f in w.files {
            let dest = cache.file(f.name, of: entry.id)
            guard FileManager.default.fileExists(atPath: dest.path) else { lines.append("\(f.name): not cached"); continue }
            let fresh = try check(f, of: entry)
            let rec = fresh ?? WeightsRecord.load(cache.record(f.name, of: entry.id))
            let trust = f.sha256 != nil ? "pinned hash" : "hash recorded at first use \(rec?.date ?? "")"
            lines.append("\(f.name): ok, \(formatBytes(fileSize(dest))), sha256 \(rec?.sha256 ?? "?") (\(trust))")
        }
        return lines
    }

    /// Starts `fetch` on a background thread; `completion` gets the path to open or the error. The explorer's
    /// `W` key calls this and shows `progress` in its status bar; `cancel()` on the handle (Esc) stops it, keeping
    /// what was received only as a `.partial` file for a later resume.
    public func start(_ entry: CatalogueEntry, progress: @escaping @Sendable (WeightsProgress) -> Void,
                      completion: @escaping @Sendable (Result<URL, any Error>) -> Void) -> DownloadCancellation {
        let token = DownloadCancellation()
        let me = self
        Thread.detachNewThread {
            completion(Result { try me.fetch(entry, cancellation: token, progress: progress) })
        }
        return token
    }
}
