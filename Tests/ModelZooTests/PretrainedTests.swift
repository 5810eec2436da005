import Foundation
import LoopbackHTTP
import XCTest
@testable import ModelZoo

/// Downloads against a server on 127.0.0.1 inside the test process: a good download, a wrong hash, a connection
/// dropped half way and resumed with a Range request, a 404, a slow server cancelled, a redirect to another
/// host (port); the cache's state is checked after each. No test touches any other address.
final class PretrainedTests: XCTestCase {
    var cacheDir: URL!

    override func setUpWithError() throws {
        cacheDir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-pretrained-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: cacheDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: cacheDir)
    }

    /// 300 kB of bytes that differ along the file, so a resume at the wrong offset changes the hash.
    static let payload: Data = {
        var g = SplitMix(seed: 7)
        return Data((0 ..< 300_000).map { _ in UInt8(truncatingIfNeeded: g.next()) })
    }()

    func entry(id: String = "tiny", url: String, size: Int64? = nil, sha256: String? = nil) throws -> CatalogueEntry {
        let file = WeightsFile(name: "tiny.pt", url: url, size: size, sha256: sha256, source: "test")
        var e = try JSONDecoder().decode(CatalogueEntry.self, from: Data("""
            {"id": "\(id)", "title": "t", "family": "YOLOv8", "kind": "detector", "summary": "s", "config": "models/yolov8.yaml",
             "input_size": 64, "probes": []}
            """.utf8))
        e.weights = PretrainedWeights(publisher: "127.0.0.1", files: [file])
        return e
    }

    var pretrained: Pretrained {
        var p = Pretrained(cache: WeightsCache(root: cacheDir), mirror: nil)
        p.timeout = 10
        return p
    }

    func leftovers(_ id: String = "tiny") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: pretrained.cache.directory(for: id).path)) ?? []).sorted()
    }

    func testGoodDownloadIsVerifiedMovedIntoPlaceAndUsedOffline() throws {
        let data = Self.payload
        let server = try LoopbackHTTPServer { .file(data, for: $0) }
        defer { server.stop() }
        let sha = try sha256(of: writeTemp(data))
        let e = try entry(url: server.baseURL + "/tiny.pt", size: Int64(data.count), sha256: sha)
        XCTAssertEqual(pretrained.status(of: e).state, .missing)
        let seen = Counter()
        let path = try pretrained.fetch(e, progress: { p in seen.add(p.received) })
        XCTAssertEqual(path, pretrained.cache.file("tiny.pt", of: "tiny"))
        XCTAssertEqual(try Data(contentsOf: path), data)
        XCTAssertEqual(seen.last, Int64(data.count), "the last progress report is the whole file")
        XCTAssertEqual(leftovers(), ["tiny.pt", "tiny.pt.record.json"], "no partial file is left")
        let record = try XCTUnwrap(WeightsRecord.load(pretrained.cache.record("tiny.pt", of: "tiny")))
        XCTAssertEqual(record.sha256, sha)
        XCTAssertEqual(record.trust, "pinned")
        XCTAssertEqual(pretrained.status(of: e).state, .cached(bytes: Int64(data.count)))
        // Offline use: with the server gone, the cached, verified file is used and nothing is requested.
        let requests = server.requests.count
        server.stop()
        XCTAssertEqual(try pretrained.fetch(e), path)
        XCTAssertEqual(try pretrained.cachedPath(e), path)
        XCTAssertEqual(server.requests.count, requests)
    }

    func testWrongHashDeletesTheDownloadAndSaysSo() throws {
        let data = Self.payload
        let server = try LoopbackHTTPServer { .file(data, for: $0) }
        defer { server.stop() }
        let wrong = String(repeating: "ab", count: 32)
        let e = try entry(url: server.baseURL + "/tiny.pt", sha256: wrong)
        XCTAssertThrowsError(try pretrained.fetch(e)) { error in
            guard case PretrainedError.hashMismatch(_, let expected, let actual, _)? = error as? PretrainedError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(expected, wrong)
            XCTAssertNotEqual(actual, wrong)
            XCTAssertTrue("\(error)".contains("deleted"), "\(error)")
        }
        XCTAssertEqual(leftovers(), [], "neither the file nor a partial is kept")
        XCTAssertEqual(pretrained.status(of: e).state, .missing)
    }

    func testDroppedConnectionKeepsAPartialThenResumesWithARange() throws {
        let data = Self.payload
        let drop = Flag(true)
        let server = try LoopbackHTTPServer { req in
            .file(data, for: req, dropAfter: drop.take() ? data.count / 2 : nil, chunk: 16 * 1024)
        }
        defer { server.stop() }
        let sha = try sha256(of: writeTemp(data))
        let e = try entry(url: server.baseURL + "/tiny.pt", size: Int64(data.count), sha256: sha)
        XCTAssertThrowsError(try pretrained.fetch(e)) { error in
            guard case PretrainedError.unreachable? = error as? PretrainedError else { return XCTFail("\(error)") }
        }
        let partial = pretrained.cache.partial("tiny.pt", of: "tiny")
        XCTAssertEqual(leftovers(), ["tiny.pt.partial", "tiny.pt.partial.json"], "only the clearly named partial and its validators")
        let kept = fileSize(partial)
        XCTAssertEqual(kept, Int64(data.count / 2))
        XCTAssertEqual(pretrained.status(of: e).state, .partial(bytes: kept))
        XCTAssertThrowsError(try pretrained.cachedPath(e), "a partial file is never taken for the weights")

        let path = try pretrained.fetch(e)
        let resume = try XCTUnwrap(server.requests.last)
        XCTAssertEqual(resume.headers["range"], "bytes=\(kept)-")
        XCTAssertEqual(resume.headers["if-range"], "\"fixture-1\"")
        XCTAssertEqual(try Data(contentsOf: path), data)
        XCTAssertEqual(leftovers(), ["tiny.pt", "tiny.pt.record.json"])
    }

    func testResumeStartsAgainWhenTheServerSendsTheWholeFile() throws {
        let data = Self.payload
        let drop = Flag(true)
        // No ranges: the first attempt's bytes cannot be resumed, so none are kept.
        let server = try LoopbackHTTPServer { req in .file(data, for: req, ranges: false, dropAfter: drop.take() ? 1000 : nil) }
        defer { server.stop() }
        let e = try entry(url: server.baseURL + "/tiny.pt")
        XCTAssertThrowsError(try pretrained.fetch(e))
        XCTAssertEqual(leftovers(), [], "a server without ranges leaves nothing to resume")
        let path = try pretrained.fetch(e)
        XCTAssertNil(server.requests.last?.headers["range"])
        XCTAssertEqual(try Data(contentsOf: path), data)
    }

    func test404LeavesNothingAndNamesTheURL() throws {
        let server = try LoopbackHTTPServer { _ in .status(404) }
        defer { server.stop() }
        let e = try entry(url: server.baseURL + "/missing.pt")
        XCTAssertThrowsError(try pretrained.fetch(e)) { error in
            XCTAssertEqual(error as? PretrainedError, .httpStatus(code: 404, url: server.baseURL + "/missing.pt"))
            XCTAssertTrue("\(error)".contains("404"), "\(error)")
        }
        XCTAssertEqual(leftovers(), [])
        XCTAssertEqual(pretrained.status(of: e).state, .missing)
    }

    func testSlowServerCancelledByTheUser() throws {
        let data = Self.payload
        // 1 kB every 20 ms: the whole file would take 6 s.
        let server = try LoopbackHTTPServer { .file(data, for: $0, chunk: 1000, delay: 0.02) }
        defer { server.stop() }
        let e = try entry(url: server.baseURL + "/tiny.pt")
        let started = Date()
        let done = expectation(description: "completion")
        let outcome = Box<Result<URL, any Error>>()
        let token = pretrained.start(e, progress: { _ in }, completion: { r in outcome.value = r; done.fulfill() })
        Thread.sleep(forTimeInterval: 0.3)
        token.cancel()
        wait(for: [done], timeout: 5)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3, "cancel stops the transfer at once")
        guard case .failure(let error)? = outcome.value, case PretrainedError.cancelled(let kept)? = error as? PretrainedError else {
            return XCTFail("\(String(describing: outcome.value))")
        }
        XCTAssertEqual(kept, pretrained.cache.partial("tiny.pt", of: "tiny").path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pretrained.cache.file("tiny.pt", of: "tiny").path))
        XCTAssertEqual(leftovers(), ["tiny.pt.partial", "tiny.pt.partial.json"])
        let kb = fileSize(pretrained.cache.partial("tiny.pt", of: "tiny"))
        XCTAssertGreaterThan(kb, 0)
        XCTAssertLessThan(kb, Int64(data.count))
        if case .partial = pretrained.status(of: e).state {} else { XCTFail("\(pretrained.status(of: e).state)") }
    }

    func testRedirectToAnotherHostIsFollowedWithTheRange() throws {
        let data = Self.payload
        let drop = Flag(true)
        let cdn = try LoopbackHTTPServer { req in .file(data, for: req, dropAfter: drop.take() ? 100_000 : nil) }
        defer { cdn.stop() }
        let origin = try LoopbackHTTPServer { _ in .redirect(to: cdn.baseURL + "/blob/tiny.pt?sig=1") }
        defer { origin.stop() }
        XCTAssertNotEqual(origin.port, cdn.port)
        let sha = try sha256(of: writeTemp(data))
        let e = try entry(url: origin.baseURL + "/tiny.pt", size: Int64(data.count), sha256: sha)
        XCTAssertThrowsError(try pretrained.fetch(e))
        XCTAssertEqual(fileSize(pretrained.cache.partial("tiny.pt", of: "tiny")), 100_000)
        let path = try pretrained.fetch(e)
        XCTAssertEqual(try Data(contentsOf: path), data)
        XCTAssertEqual(origin.requests.count, 2)
        XCTAssertEqual(cdn.requests.map(\.path), ["/blob/tiny.pt?sig=1", "/blob/tiny.pt?sig=1"])
        XCTAssertEqual(cdn.requests.last?.headers["range"], "bytes=100000-", "the range survives the redirect")
    }

    func testTrustOnFirstUseRecordsTheHashAndCatchesALaterChange() throws {
        let data = Self.payload
        let server = try LoopbackHTTPServer { .file(data, for: $0) }
        defer { server.stop() }
        let e = try entry(url: server.baseURL + "/tiny.pt")
        var recorded: [String] = []
        let path = try pretrained.fetch(e, onRecord: { name, _ in recorded.append(name) })
        XCTAssertEqual(recorded, ["tiny.pt"], "the recorded hash is reported to be shown")
        let record = try XCTUnwrap(WeightsRecord.load(pretrained.cache.record("tiny.pt", of: "tiny")))
        XCTAssertEqual(record.trust, "first use")
        XCTAssertEqual(record.sha256, try sha256(of: path))
        XCTAssertEqual(try pretrained.verify(e).count, 1)
        // Same size, one byte changed: caught on the next use.
        var changed = data
        changed[1234] ^= 0xFF
        try changed.write(to: path)
        XCTAssertThrowsError(try pretrained.cachedPath(e)) { error in
            guard case PretrainedError.corruptCache? = error as? PretrainedError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("weights rm tiny"), "\(error)")
        }
        XCTAssertThrowsError(try pretrained.verify(e))
    }

    func testAFileCopiedInByHandIsUsedWithoutNetworkAndItsHashRecorded() throws {
        let e = try entry(url: "http://127.0.0.1:9/tiny.pt")
        XCTAssertThrowsError(try pretrained.cachedPath(e)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("http://127.0.0.1:9/tiny.pt"), text)
            XCTAssertTrue(text.contains(self.pretrained.cache.file("tiny.pt", of: "tiny").path), text)
            XCTAssertFalse(text.contains("\n"))
        }
        try FileManager.default.createDirectory(at: pretrained.cache.directory(for: "tiny"), withIntermediateDirectories: true)
        try Self.payload.write(to: pretrained.cache.file("tiny.pt", of: "tiny"))
        var recorded = 0
        XCTAssertEqual(try pretrained.cachedPath(e, onRecord: { _, _ in recorded += 1 }), pretrained.cache.file("tiny.pt", of: "tiny"))
        XCTAssertEqual(recorded, 1)
        XCTAssertEqual(try pretrained.cachedPath(e, onRecord: { _, _ in recorded += 1 }), pretrained.cache.file("tiny.pt", of: "tiny"))
        XCTAssertEqual(recorded, 1, "recorded once, checked after")
    }

    func testNoServerGivesOneLineWithTheURLAndWhereToPutTheFile() throws {
        // A port nothing listens on: the server is started and stopped to get a free port.
        let server = try LoopbackHTTPServer { _ in .status(500) }
        let url = server.baseURL + "/tiny.pt"
        server.stop()
        let e = try entry(url: url)
        XCTAssertThrowsError(try pretrained.fetch(e)) { error in
            guard case PretrainedError.unreachable(let u, _, let dest)? = error as? PretrainedError else { return XCTFail("\(error)") }
            XCTAssertEqual(u, url)
            XCTAssertEqual(dest, self.pretrained.cache.file("tiny.pt", of: "tiny").path)
            XCTAssertFalse("\(error)".contains("\n"))
        }
        XCTAssertEqual(leftovers(), [])
    }

    func testMirrorAndCacheLocation() throws {
        let e = try entry(url: "https://example.invalid/tiny.pt")
        let p = Pretrained(cache: WeightsCache(root: cacheDir), mirror: "http://127.0.0.1:8/mirror/")
        XCTAssertEqual(p.url(of: e.weights!.files[0], entry: "tiny"), "http://127.0.0.1:8/mirror/tiny/tiny.pt")
        XCTAssertEqual(WeightsCache.standard(environment: ["DETR_TUI_CACHE": "/c", "XDG_CACHE_HOME": "/x"]).root.path, "/c")
        XCTAssertEqual(WeightsCache.standard(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]).root.path, "/x/detr-tui")
        XCTAssertEqual(WeightsCache.standard(environment: ["HOME": "/h"]).root.path, "/h/.cache/detr-tui")
    }

    func testTheCatalogueSaysForEveryEntryWhatIsPublished() throws {
        let catalogue = try Catalogue.load()
        let published = catalogue.entries.filter { $0.weights?.isPublished == true }.map(\.id).sorted()
        let ultralytics = ["yolo11", "yolo12", "yolo26"].flatMap { f in ["l", "m", "n", "s", "x"].map { f + $0 } }
            + ["b", "l", "m", "n", "s", "x"].map { "yolov10" + $0 }
        XCTAssertEqual(published, ["deformable-detr", "deformable-detr-box-refine", "deformable-detr-single-scale", "deformable-detr-two-stage",
                                   "rtdetr-l", "rtdetr-x"] + ultralytics + ["yolov8l", "yolov8m", "yolov8n", "yolov8s", "yolov8x"])
        for e in catalogue.entries {
            let w = try XCTUnwrap(e.weights, "\(e.id) has no weights block")
            if !w.isPublished { XCTAssertTrue(w.note?.hasPrefix("no published weights") == true, e.id); continue }
            for f in w.files {
                // v8.4.0: the release ultralytics 8.4 downloads YOLOv10, YOLO12 and YOLO26 from.
                XCTAssertTrue(f.url.hasPrefix("https://github.com/ultralytics/assets/releases/download/v8.3.0/")
                              || f.url.hasPrefix("https://github.com/ultralytics/assets/releases/download/v8.4.0/")
                              || f.url.hasPrefix("https://huggingface.co/SenseTime/"), f.url)
                XCTAssertTrue(f.url.hasSuffix("/" + f.name), f.url)
                XCTAssertFalse(f.source?.isEmpty ?? true, "\(e.id)/\(f.name) says where its figures came from")
                if let sha = f.sha256 { XCTAssertEqual(sha.count, 64); XCTAssertNotNil(f.size) }
            }
        }
        let status = Pretrained(cache: WeightsCache(root: cacheDir), mirror: nil).status(of: try XCTUnwrap(catalogue.entry("rtdetr-l")))
        XCTAssertEqual(status.summary, "pretrained weights, 66.5 MB from github.com/ultralytics/assets (release v8.3.0), not yet downloaded")
    }

    func writeTemp(_ data: Data) throws -> URL {
        let url = cacheDir.appendingPathComponent("expected-\(UUID().uuidString)")
        try data.write(to: url)
        return url
    }
}

/// A flag that is true the first time it is taken, then false (thread-safe).
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Bool
    init(_ value: Bool) { self.value = value }
    func take() -> Bool { lock.withLock { defer { value = false }; return value } }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int64] = []
    func add(_ v: Int64) { lock.withLock { values.append(v) } }
    var last: Int64? { lock.withLock { values.last } }
}

final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// A small deterministic generator for test bytes.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
