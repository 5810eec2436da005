import Foundation
import LoopbackHTTP
import XCTest

/// `detr-tui weights ...` and `--pretrained`, with the cache in a temp directory and every download served by a
/// server on 127.0.0.1 through DETR_TUI_WEIGHTS_URL (the mirror setting), so no other address is touched.
final class WeightsCLITests: XCTestCase {
    var cache: URL!

    override func setUpWithError() throws {
        cache = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-weights-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: cache) }

    func env(_ mirror: String) -> [String: String] { ["DETR_TUI_CACHE": cache.path, "DETR_TUI_WEIGHTS_URL": mirror] }

    /// A free port with nothing listening on it.
    func deadMirror() throws -> String {
        let s = try LoopbackHTTPServer { _ in .status(500) }
        defer { s.stop() }
        return s.baseURL
    }

    func testListPathAndTheOfflineError() throws {
        let mirror = try deadMirror()
        let list = try CLI.run(["weights", "list"], environment: env(mirror))
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains("yolov8n  "), list.stdout)
        XCTAssertTrue(list.stdout.range(of: #"\nyolov8n +pretrained weights, size not published, from github.com/ultralytics/assets \(release v8.3.0\), not yet downloaded\n"#,
                                        options: .regularExpression) != nil, list.stdout)
        XCTAssertTrue(list.stdout.contains("from huggingface.co/SenseTime/deformable-detr-with-box-refine-two-stage"), list.stdout)
        XCTAssertTrue(list.stdout.range(of: #"yolov8n-ca +no published weights"#, options: .regularExpression) != nil, list.stdout)

        let path = try CLI.run(["weights", "path", "yolov8n"], environment: env(mirror))
        XCTAssertEqual(path.status, 0, path.stderr)
        XCTAssertEqual(path.stdout, "\(cache.path)/weights/yolov8n/yolov8n.pt\t\(mirror)/yolov8n/yolov8n.pt\n")

        // No network: one line naming the URL and where to put the file by hand, then the hint.
        let run = try CLI.run(["run", "yolov8n", "--pretrained", "--image", "assets/images/chelsea.png"], environment: env(mirror))
        XCTAssertNotEqual(run.status, 0)
        let first = run.stderr.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(first.contains("cannot download \(mirror)/yolov8n/yolov8n.pt"), run.stderr)
        XCTAssertTrue(first.contains("copy it to \(cache.path)/weights/yolov8n/yolov8n.pt"), run.stderr)

        let none = try CLI.run(["run", "yolov8n-ca", "--pretrained", "--image", "assets/images/chelsea.png"], environment: env(mirror))
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("yolov8n-ca: no published weights"), none.stderr)
        let both = try CLI.run(["run", "yolov8n", "--pretrained", "--weights", "x.pt", "--image", "assets/images/chelsea.png"],
                               environment: env(mirror))
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("--pretrained or --weights"), both.stderr)
    }

    func testGetRunVerifyRemove() throws {
        // The served file is a small ultralytics checkpoint (its own YAML and class names), standing in for yolov8n.pt.
        let ckpt = try Data(contentsOf: CLI.root.appendingPathComponent("Tests/Fixtures/io/ultra_tiny_best.pt"))
        let server = try LoopbackHTTPServer { req in
            req.path == "/yolov8n/yolov8n.pt" ? .file(ckpt, for: req) : .status(404)
        }
        defer { server.stop() }
        let get = try CLI.run(["weights", "get", "yolov8n"], environment: env(server.baseURL))
        XCTAssertEqual(get.status, 0, get.stderr)
        let file = "\(cache.path)/weights/yolov8n/yolov8n.pt"
        XCTAssertEqual(get.stdout, file + "\n")
        XCTAssertTrue(get.stderr.contains("no published hash; recorded sha256 "), get.stderr)
        XCTAssertTrue(get.stderr.contains("yolov8n.pt [########################] 337.6 kB / 337.6 kB"), get.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), ckpt)

        let requests = server.requests.count
        let run = try CLI.run(["run", "yolov8n", "--pretrained", "--image", "assets/images/chelsea.png", "--imgsz", "128", "--json"],
                              environment: env(server.baseURL))
        XCTAssertEqual(run.status, 0, run.stderr)
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any])
        XCTAssertEqual(out["model"] as? String, "yolov8n")
        // chelsea.png is 451x300: ultralytics' smallest stride-multiple rectangle at 128 is 96x128.
        XCTAssertEqual(out["input_shape"] as? [Int], [1, 3, 96, 128])
        let info = try CLI.run(["info", "yolov8n", "--pretrained", "--imgsz", "64", "--json"], environment: env(server.baseURL))
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: info.stdoutData) as? [String: Any])?["params"] as? Int, 135_006)
        XCTAssertEqual(server.requests.count, requests, "a cached file is used without asking the server again")

        let verify = try CLI.run(["weights", "verify"], environment: env(server.baseURL))
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertTrue(verify.stdout.hasPrefix("yolov8n/yolov8n.pt: ok, 337.6 kB, sha256 "), verify.stdout)
        let list = try CLI.run(["weights", "list", "--cached"], environment: env(server.baseURL))
        XCTAssertEqual(list.stdout.split(separator: "\n").first.map(String.init),
                       "yolov8n  pretrained weights, 337.6 kB from github.com/ultralytics/assets (release v8.3.0), cached")

        // A changed file (same size) fails verification and use.
        var changed = ckpt
        changed[changed.count / 2] ^= 0x55
        try changed.write(to: URL(fileURLWithPath: file))
        let bad = try CLI.run(["weights", "verify", "yolov8n"], environment: env(server.baseURL))
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("weights rm yolov8n"), bad.stderr)

        let rm = try CLI.run(["weights", "rm", "yolov8n"], environment: env(server.baseURL))
        XCTAssertEqual(rm.status, 0, rm.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(cache.path)/weights/yolov8n"))
    }

    func testCtrlCCancelsAndKeepsOnlyAPartialFile() throws {
        let body = Data(repeating: 7, count: 400_000)
        let server = try LoopbackHTTPServer { .file(body, for: $0, chunk: 1000, delay: 0.02) }
        defer { server.stop() }
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["weights", "get", "yolov8s"]
        p.currentDirectoryURL = CLI.root
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env(server.baseURL) { environment[k] = v }
        p.environment = environment
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        // Wait until bytes arrive, then interrupt as Ctrl-C does.
        let partial = "\(cache.path)/weights/yolov8s/yolov8s.pt.partial"
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0 == 0 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let interrupted = Date()
        p.interrupt()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // The whole body takes 8 s to send: an exit well before that is the cancel, not the end of the transfer.
        XCTAssertLessThan(Date().timeIntervalSince(interrupted), 3, "Ctrl-C stops the download at once")
        XCTAssertEqual(p.terminationStatus, 130, text)
        XCTAssertTrue(text.contains("download cancelled; the bytes so far are kept in \(partial)"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(cache.path)/weights/yolov8s/yolov8s.pt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: partial))
    }
}
