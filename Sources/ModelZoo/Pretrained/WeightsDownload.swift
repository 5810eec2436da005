import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How far a download is, for a progress bar.
public struct WeightsProgress: Sendable, Equatable {
    /// The file being fetched and its place among the entry's files (from 0).
    public var file: String
    public var fileIndex: Int
    public var fileCount: Int
    /// Bytes of this file on disk so far (a resumed download starts at what was kept).
    public var received: Int64
    /// Its full size, if known (pinned, or from the server's Content-Length).
    public var expected: Int64?
    /// Bytes per second over this transfer (resumed bytes not counted).
    public var bytesPerSecond: Double
    /// Estimated seconds left, when the size and the rate are known.
    public var secondsLeft: Double? {
        guard let expected, bytesPerSecond > 0 else { return nil }
        return Double(max(0, expected - received)) / bytesPerSecond
    }
    /// Done fraction, 0...1, when the size is known.
    public var fraction: Double? {
        guard let expected, expected > 0 else { return nil }
        return min(1, Double(received) / Double(expected))
    }
}

/// Why getting weights failed; each description is one line that names the file or URL and what to do.
public enum PretrainedError: Error, CustomStringConvertible, Sendable, Equatable {
    case notPublished(id: String, note: String)
    case unknownID(String)
    case httpStatus(code: Int, url: String)
    case hashMismatch(url: String, expected: String, actual: String, trust: String)
    case sizeMismatch(url: String, expected: Int64, actual: Int64)
    /// No connection (no network, a refused connection, a timeout): says where to put the file by hand.
    case unreachable(url: String, reason: String, destination: String)
    /// The user cancelled; `kept` is the partial file kept for resuming, if any.
    case cancelled(kept: String?)
    /// A cached file that no longer matches what was verified when it was stored.
    case corruptCache(path: String, expected: String, actual: String, id: String)
    case io(path: String, problem: String)

    public var description: String {
        switch self {
        case .notPublished(let id, let note): return "\(id): \(note)"
        case .unknownID(let id): return "\(id): not a catalogue id (see `detr-tui weights list`)"
        case .httpStatus(let code, let url):
            return "\(url): the server answered HTTP \(code)\(code == 404 ? " (not found)" : ""); nothing was kept"
        case .hashMismatch(let url, let expected, let actual, let trust):
            return "\(url): downloaded file has SHA-256 \(actual), expected \(expected) (\(trust)); it was deleted"
        case .sizeMismatch(let url, let expected, let actual):
            return "\(url): downloaded \(actual) bytes, expected \(expected); it was deleted"
        case .unreachable(let url, let reason, let destination):
            return "cannot download \(url) (\(reason)); without network, fetch that file elsewhere and copy it to \(destination)"
        case .cancelled(let kept):
            return "download cancelled" + (kept.map { "; the bytes so far are kept in \($0) to resume next time" } ?? "; nothing was kept")
        case .corruptCache(let path, let expected, let actual, let id):
            return "\(path): SHA-256 \(actual), expected \(expected); remove it with `detr-tui weights rm \(id)` and download it again"
        case .io(let path, let problem): return "\(path): \(problem)"
        }
    }
}

/// Cancels a download from any thread (Esc in the explorer, Ctrl-C in the CLI).
public final class DownloadCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private var onCancel: [() -> Void] = []

    public init() {}

    public var isCancelled: Bool { lock.withLock { cancelled } }

    public func cancel() {
        let actions: [() -> Void] = lock.withLock {
            if cancelled { return [] }
            cancelled = true
            defer { onCancel = [] }
            return onCancel
        }
        actions.forEach { $0() }
    }

    /// Runs `action` on cancel (at once if already cancelled).
    func whenCancelled(_ action: @escaping () -> Void) {
        let now: Bool = lock.withLock {
            if cancelled { return true }
            onCancel.append(action)
            return false
        }
        if now { action() }
    }
}

/// The server's validators of a partial download, so that a resume asks for the same file (If-Range).
struct PartialMeta: Codable {
    var url: String
    var etag: String?
    var lastModified: String?
    var total: Int64?
}

/// Downloads one URL into `partial` (resuming what it holds when the server allows ranges), checks the size and
/// SHA-256, then moves it to `destination`. Returns the verified size and hash. On failure the partial file is
/// kept only when it can be resumed (a server that takes ranges, a dropped connection or a cancel); otherwise
/// it is deleted. Blocks the calling thread; `progress` is called on URLSession's queue.
func downloadFile(url: URL, destination: URL, partial: URL, meta metaURL: URL, expectedSize: Int64?, expectedSHA256: String?,
                  timeout: TimeInterval, cancellation: DownloadCancellation,
                  progress: @escaping @Sendable (Int64, Int64?, Double) -> Void) throws -> (size: Int64, sha256: String) {
    let fm = FileManager.default
    try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
    // A partial file of another URL (a changed catalogue or mirror) is not resumed.
    var meta = (fm.contents(atPath: metaURL.path)).flatMap { try? JSONDecoder().decode(PartialMeta.self, from: $0) }
    if meta?.url != url.absoluteString { meta = nil; try? fm.removeItem(at: partial) }
    if !fm.fileExists(atPath: partial.path) { _ = fm.createFile(atPath: partial.path, contents: nil) }

    let transfer = try Transfer(url: url, partial: partial, meta: meta ?? PartialMeta(url: url.absoluteString),
                                expectedSize: expectedSize, progress: progress)
    let config = URLSessionConfiguration.ephemeral
    config.timeoutIntervalForRequest = timeout
    config.requestCachePolicy = .reloadIgnoringLocalCacheData
    let session = URLSession(configuration: config, delegate: transfer, delegateQueue: nil)
    var request = URLRequest(url: url)
    request.setValue("detr-tui/\(ModelZoo.version)", forHTTPHeaderField: "User-Agent")
    if transfer.offset > 0 {
        request.setValue("bytes=\(transfer.offset)-", forHTTPHeaderField: "Range")
        if let v = meta?.etag ?? meta?.lastModified { request.setValue(v, forHTTPHeaderField: "If-Range") }
    }
    let task = session.dataTask(with: request)
    cancellation.whenCancelled { task.cancel() }
    task.resume()
    transfer.done.wait()
    session.finishTasksAndInvalidate()
    try? transfer.handle.close()

    func dropPartial() {
        try? fm.removeItem(at: partial)
        try? fm.removeItem(at: metaURL)
    }
    func keepOrDrop() -> String? {
        if transfer.resumable, fileSize(partial) > 0 {
            try? JSONEncoder().encode(transfer.meta).write(to: metaURL, options: .atomic)
            return partial.path
        }
        dropPartial()
        return nil
    }
    if let status = transfer.badStatus {
        dropPartial()
        throw PretrainedError.httpStatus(code: status, url: url.absoluteString)
    }
    if let error = transfer.error {
        if cancellation.isCancelled { throw PretrainedError.cancelled(kept: keepOrDrop()) }
        _ = keepOrDrop()
        if let e = error as? PretrainedError { throw e }
        throw PretrainedError.unreachable(url: url.absoluteString, reason: describe(error), destination: destination.path)
    }
    if cancellation.isCancelled { throw PretrainedError.cancelled(kept: keepOrDrop()) }
    let size = fileSize(partial)
    if let total = transfer.meta.total, total != size {
        // The body ended early without an error from the transport: keep it for a resume.
        _ = keepOrDrop()
        throw PretrainedError.unreachable(url: url.absoluteString, reason: "the connection ended after \(size) of \(total) bytes",
                                          destination: destination.path)
    }
    if let expectedSize, expectedSize != size {
        dropPartial()
        throw PretrainedError.sizeMismatch(url: url.absoluteString, expected: expectedSize, actual: size)
    }
    let digest = hexString(transfer.hasher.finalize())
    if let expectedSHA256, expectedSHA256.lowercased() != digest {
        dropPartial()
        throw PretrainedError.hashMismatch(url: url.absoluteString, expected: expectedSHA256.lowercased(), actual: digest,
                                           trust: "pinned in the catalogue")
    }
    try? fm.removeItem(at: destination)
    do {
        try fm.moveItem(at: partial, to: destination)
    } catch {
        throw PretrainedError.io(path: destination.path, problem: "cannot move the download into place (\(error.localizedDescription))")
    }
    try? fm.removeItem(at: metaURL)
    return (size, digest)
}

/// A readable reason for a transport error.
func describe(_ error: any Error) -> String {
    let ns = error as NSError
    if ns.domain == NSURLErrorDomain {
        switch ns.code {
        case NSURLErrorNotConnectedToInternet: return "no network"
        case NSURLErrorCannotFindHost, NSURLErrorDNSLookupFailed: return "the host name cannot be resolved"
        case NSURLErrorCannotConnectToHost: return "the connection was refused"
        case NSURLErrorTimedOut: return "the server did not answer in time"
        case NSURLErrorNetworkConnectionLost: return "the connection was lost"
        case NSURLErrorSecureConnectionFailed, NSURLErrorServerCertificateUntrusted: return "the TLS connection failed"
        default: break
        }
    }
    return ns.localizedDescription
}

/// The delegate of one download: writes the body to the partial file, hashes it as it arrives, reports progress.
final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let partial: URL
    let handle: FileHandle
    let expectedSize: Int64?
    let progress: @Sendable (Int64, Int64?, Double) -> Void
    let done = DispatchSemaphore(value: 0)
    var hasher = SHA256()
    var meta: PartialMeta
    /// Bytes already on disk when this transfer started.
    private(set) var offset: Int64
    private var written: Int64
    private let start = Date()
    private var lastReport = Date.distantPast
    var badStatus: Int?
    var error: (any Error)?
    /// Whether what is on disk may be resumed (the server answered 206, or said Accept-Ranges: bytes).
    var resumable = false

    init(url: URL, partial: URL, meta: PartialMeta, expectedSize: Int64?,
         progress: @escaping @Sendable (Int64, Int64?, Double) -> Void) throws {
        self.partial = partial
        self.meta = meta
        self.expectedSize = expectedSize
        self.progress = progress
        handle = try FileHandle(forUpdating: partial)
        offset = fileSize(partial)
        if let expectedSize, offset > expectedSize {
            try handle.truncate(atOffset: 0)
            offset = 0
        }
        written = offset
        super.init()
        if offset > 0 {
            // Hash what was kept, so the final hash covers the whole file.
            try handle.seek(toOffset: 0)
            while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty { hasher.update(data: block) }
            resumable = true
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse else { completionHandler(.allow); return }
        let status = http.statusCode
        func header(_ name: String) -> String? { http.value(forHTTPHeaderField: name) }
        switch status {
        case 206 where offset > 0 && header("Content-Range")?.hasPrefix("bytes \(offset)-") == true:
            resumable = true
            if let total = header("Content-Range")?.split(separator: "/").last.flatMap({ Int64($0) }) { meta.total = total }
        case 200:
            // A fresh body (the server ignored the range or the file changed): start again from zero.
            if offset > 0 {
                try? handle.truncate(atOffset: 0)
                hasher = SHA256()
                offset = 0
                written = 0
            }
            resumable = header("Accept-Ranges")?.lowercased() == "bytes"
            meta.total = header("Content-Length").flatMap { Int64($0) }
            meta.etag = header("ETag")
            meta.lastModified = header("Last-Modified")
        default:
            badStatus = status
            completionHandler(.cancel)
            return
        }
        do { try handle.seek(toOffset: UInt64(offset)) } catch { self.error = error; completionHandler(.cancel); return }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard error == nil else { return }
        do {
            try handle.write(contentsOf: data)
        } catch {
            self.error = PretrainedError.io(path: partial.path, problem: "cannot write (\(error.localizedDescription))")
            dataTask.cancel()
            return
        }
        hasher.update(data: data)
        written += Int64(data.count)
        let now = Date()
        if now.timeIntervalSince(lastReport) >= 0.1 {
            lastReport = now
            report(now)
        }
    }

    private func report(_ now: Date) {
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(written - offset) / elapsed : 0
        progress(written, expectedSize ?? meta.total, rate)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        // Release assets and the Hub redirect to a CDN on another host: ask it for the same range.
        var next = request
        if let range = task.originalRequest?.value(forHTTPHeaderField: "Range") { next.setValue(range, forHTTPHeaderField: "Range") }
        if let ifRange = task.originalRequest?.value(forHTTPHeaderField: "If-Range") { next.setValue(ifRange, forHTTPHeaderField: "If-Range") }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if let error, self.error == nil, badStatus == nil { self.error = error }
        if self.error == nil, badStatus == nil { report(Date()) }
        done.signal()
    }
}
