import Foundation
import XCTest

/// The explorer as a person meets it: the real binary in tmux, every assertion read off the screen.
final class E2ETUITests: XCTestCase {
    func testBrowseSearchHelpResizeQuit() throws {
        let t = try TmuxSession([], width: 120, height: 40)
        defer { t.close() }
        var s = t.wait(for: "Catalogue")
        XCTAssertTrue(s.contains("detr-tui · catalogue"), s)
        // The status bar (the last line drawn) names the keys.
        s = t.wait(for: "help")
        // Find a model with /.
        t.send("/")
        t.type("yolov8n")
        s = t.wait(for: "Catalogue /yolov8n")
        XCTAssertTrue(s.contains("• yolov8n"), s)
        XCTAssertFalse(s.contains("RT-DETR ("), s)
        t.send("Enter")
        s = t.wait(for: "entries │ yolov8n")
        XCTAssertTrue(s.contains("YOLOv8n"), s)
        // Help opens, scrolls, closes.
        t.send("?")
        s = t.wait(for: "detr-tui — keys")
        t.send("G")
        for _ in 0 ..< 40 { t.send("j") }
        s = t.wait(for: "Sampling points: the cross")
        XCTAssertFalse(s.contains("detr-tui — keys"), s)
        t.send("Escape")
        s = t.wait("help closed") { !$0.contains("Sampling points: the cross") }
        // Resize down to the minimum, below it, and back.
        t.resize(width: 40, height: 12)
        s = t.wait(for: "Catalogue")
        XCTAssertEqual(s.split(separator: "\n", omittingEmptySubsequences: false).first?.count ?? 0 <= 40, true)
        t.resize(width: 30, height: 10)
        s = t.wait(for: "terminal too small")
        t.resize(width: 100, height: 30)
        s = t.wait("full screen again") { $0.contains("Catalogue") && !$0.contains("too small") }
        // Ctrl-L redraws the same screen.
        t.send("C-l")
        s = t.wait(for: "Catalogue")
        // Esc clears the search, q quits with status 0.
        t.send("Escape")
        s = t.wait("search cleared") { !$0.contains("Catalogue /yolov8n") }
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }

    func testNoColorAndTooSmallAtStart() throws {
        let t = try TmuxSession(["--no-color"], width: 38, height: 11)
        defer { t.close() }
        t.wait(for: "terminal too small")
        t.resize(width: 80, height: 24)
        t.wait(for: "Catalogue")
        t.send("C-c")
        XCTAssertEqual(t.waitForExit(), 0)
    }

    func testSigtermRestoresTheTerminal() throws {
        let t = try TmuxSession([], width: 80, height: 24)
        defer { t.close() }
        t.wait(for: "Catalogue")
        let pid = try t.tmux(["display-message", "-p", "-t", t.name, "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)
        // The pane runs `env ... detr-tui`; env execs, so the pane's pid is the program.
        XCTAssertEqual(kill(pid_t(pid)!, SIGTERM), 0)
        let status = t.waitForExit()
        XCTAssertNotNil(status)
        // After endwin the alternate screen is gone: the catalogue is no longer on the pane.
        let s = t.screen()
        XCTAssertFalse(s.contains("┌─ Catalogue"), s)
    }

    /// Opens a model, runs it on a sample image, steps five layers, opens the sampling points of the
    /// decoder and changes head and level.
    func testRunStepAndSamplingPoints() throws {
        let t = try TmuxSession([], width: 120, height: 40)
        defer { t.close() }
        t.wait(for: "Catalogue")
        t.send("/")
        t.type("rtdetr-l")
        t.send("Enter")
        var s = t.wait(for: "Catalogue /rtdetr-l")
        t.send("Enter")
        s = t.wait(timeout: 120, "the run to finish or fail") { $0.contains("forward pass:") || $0.contains("failed") || $0.contains("not available") }
        if s.contains("no model builder is available") {
            throw XCTSkip("this build has no model builder yet")
        }
        XCTAssertTrue(s.contains("forward pass:"), s)
        XCTAssertTrue(s.contains("layer 0/"), s)
        for _ in 0 ..< 5 { t.send("n") }
        s = t.wait(for: "layer 5/")
        // Jump to the decoder (last layer) and find its sampling points.
        t.send("G")
        s = t.wait(for: "RTDETRDecoder")
        var found = false
        for _ in 0 ..< 12 {
            if t.screen().contains("│ sampling q") { found = true; break }
            t.send("v")
            usleep(150_000)
        }
        XCTAssertTrue(found, t.screen())
        s = t.wait(for: "all 8 heads")
        t.send("]")
        s = t.wait(for: "head 0/8")
        t.send("]")
        s = t.wait(for: "head 1/8")
        t.send("}")
        s = t.wait(for: "level 0/3")
        t.send("}")
        s = t.wait(for: "level 1/3")
        XCTAssertTrue(s.contains("╋"), s)
        t.send("?")
        t.wait(for: "detr-tui — keys")
        t.send("q")
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }
}

/// A user's own model in the explorer: opened from the command line, with O, and offered when `w` names it.
final class E2EOwnModelTests: XCTestCase {
    let checkpoint = "Tests/Fixtures/io/ultra_tiny_best.pt"

    func testCheckpointFromTheCommandLineMatchesRun() throws {
        // A YOLOv8 trained by scripts/fixtures/gen_predict.py, on a 451x300 image (non-square) at 160.
        let model = "Tests/Fixtures/predict/yolo.pt", image = "Tests/Fixtures/predict/wide.png"
        let json = try CLI.run(["run", model, "--image", image, "--imgsz", "160", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let dets = report?["detections"] as? [[String: Any]] ?? []
        XCTAssertFalse(dets.isEmpty, "the trained fixture detects something")
        let t = try TmuxSession([model, "--image", image, "--imgsz", "160"], width: 200, height: 40)
        defer { t.close() }
        var s = t.wait(for: "forward pass:", timeout: 60)
        XCTAssertTrue(s.contains("detr-tui · yolo"), s)
        XCTAssertTrue(s.contains("weights from yolo.pt"), s)
        XCTAssertTrue(s.contains("\(dets.count) detection\(dets.count == 1 ? "" : "s") at conf 0.25"), s)
        // The head's visual lists the same detections, class and score, as run --json.
        t.send("G")
        t.wait(for: "Layer 22 · Detect")
        for d in dets {
            let label = "\(d["class"] as? String ?? "?") " + String(format: "%.2f", d["score"] as? Double ?? 0)
            t.wait(for: label)
        }
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }

    func testOpenPromptWithTabAndShellEditing() throws {
        let t = try TmuxSession([], width: 140, height: 40)
        defer { t.close() }
        t.wait(for: "Catalogue")
        t.send("O")
        t.wait(for: "open model (checkpoint, YAML, HF directory):")
        t.type("Tests/Fixtures/io/ultra_tiny_l")
        t.send("Tab")
        t.wait(for: "Tests/Fixtures/io/ultra_tiny_last.pt")
        t.send("C-w")
        var s = t.wait("Ctrl-W deleted the file name") { !$0.contains("ultra_tiny_last.pt") && $0.contains("Tests/Fixtures/io/") }
        t.send("C-u")
        s = t.wait("Ctrl-U cleared the line") { !$0.contains("Tests/Fixtures/io/") }
        t.type("no/such/model.pt")
        t.send("Enter")
        s = t.wait(for: "no/such/model.pt: no such file or directory")
        t.send("C-u")
        t.type("Tests/Fixtures/deformable/single-scale")
        t.send("Enter")
        s = t.wait(for: "forward pass:", timeout: 60)
        // Deformable DETR's rows as info prints them.
        XCTAssertTrue(s.contains("encoder.layers.0"), s)
        XCTAssertTrue(s.contains("level_embed"), s)
        // Esc goes back one level and never quits.
        t.send("Escape")
        s = t.wait(for: "detr-tui · catalogue")
        t.send("Escape")
        usleep(300_000)
        XCTAssertNil(t.exitStatus(), "Esc must not quit")
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }

    func testWeightsHoldingTheirOwnModelAreOffered() throws {
        let t = try TmuxSession([], width: 160, height: 40)
        defer { t.close() }
        t.wait(for: "Catalogue")
        t.send("/")
        t.type("yolov8n")
        t.send("Enter")
        t.send("w")
        t.type(checkpoint)
        t.send("Enter")
        t.send("Enter")
        let s = t.wait(for: "holds its own model", timeout: 60)
        XCTAssertTrue(s.contains("y: open it as the model"), s)
        t.send("y")
        t.wait(for: "detr-tui · ultra_tiny_best", timeout: 60)
        t.send("q")
        XCTAssertEqual(t.waitForExit(), 0)
    }

    /// Quitting right after a forward pass starts: the program waits for the worker and exits cleanly.
    func testQuitDuringAForwardPass() throws {
        for delay in [100_000, 300_000, 600_000, 900_000] as [useconds_t] {
            let t = try TmuxSession(["rtdetr-l"], width: 120, height: 36)
            defer { t.close() }
            t.wait(for: "detr-tui · rtdetr-l", timeout: 30)
            usleep(delay)
            t.send("q")
            XCTAssertEqual(t.waitForExit(timeout: 15), 0, "quit \(delay / 1000) ms into the run: \(t.screen())")
            XCTAssertFalse(t.screen().contains("crashed"), t.screen())
        }
    }
}
