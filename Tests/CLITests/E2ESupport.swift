import Foundation
import XCTest

/// Drives the built binary inside a detached tmux session on a private socket, and reads its screen.
final class TmuxSession {
    let socket: String
    let name = "e2e"
    private(set) var width: Int
    private(set) var height: Int

    static var tmuxPath: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/tmux"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Starts `detr-tui args` in a `width` x `height` tmux window; skips the test when tmux is missing.
    init(_ args: [String], width: Int = 120, height: Int = 40, environment: [String: String] = [:]) throws {
        guard TmuxSession.tmuxPath != nil else { throw XCTSkip("tmux is not installed (scripts/bootstrap.sh installs it)") }
        socket = "detr-tui-e2e-\(getpid())-\(UInt32.random(in: 0 ... UInt32.max))"
        self.width = width
        self.height = height
        var env = ["TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"]
        for (k, v) in environment { env.append("\(k)=\(v)") }
        let command = (["env"] + env + [CLI.binary.path] + args).map { "'\($0)'" }.joined(separator: " ")
        try tmux(["-f", "/dev/null", "new-session", "-d", "-s", name, "-x", String(width), "-y", String(height),
                  "-c", CLI.root.path, command])
        _ = try? tmux(["set-option", "-t", name, "remain-on-exit", "on"])
    }

    @discardableResult
    func tmux(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TmuxSession.tmuxPath!)
        p.arguments = ["-L", socket] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = Pipe()
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "tmux", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "tmux \(args.joined(separator: " ")) failed"])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The visible screen as text.
    func screen() -> String { (try? tmux(["capture-pane", "-p", "-t", name])) ?? "" }

    func send(_ keys: String...) {
        for k in keys { _ = try? tmux(["send-keys", "-t", name, k]) }
    }

    /// Types literal text.
    func type(_ text: String) { _ = try? tmux(["send-keys", "-t", name, "-l", text]) }

    func resize(width: Int, height: Int) {
        self.width = width
        self.height = height
        _ = try? tmux(["resize-window", "-t", name, "-x", String(width), "-y", String(height)])
    }

    /// Waits until the screen satisfies `condition`; returns the last screen.
    @discardableResult
    func wait(timeout: Double = 10, _ what: String, file: StaticString = #filePath, line: UInt = #line, _ condition: (String) -> Bool) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var s = screen()
        while !condition(s) {
            if Date() > deadline {
                XCTFail("timed out waiting for \(what); screen:\n\(s)", file: file, line: line)
                return s
            }
            usleep(50_000)
            s = screen()
        }
        return s
    }

    @discardableResult
    func wait(for text: String, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) -> String {
        wait(timeout: timeout, "\"\(text)\"", file: file, line: line) { $0.contains(text) }
    }

    /// Whether the program has exited (the pane is dead), and its exit status.
    func exitStatus() -> Int? {
        guard let s = try? tmux(["display-message", "-p", "-t", name, "#{pane_dead} #{pane_dead_status}"]) else { return nil }
        let parts = s.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        guard parts.first == "1" else { return nil }
        return parts.count > 1 ? Int(parts[1]) : 0
    }

    func waitForExit(timeout: Double = 5) -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = exitStatus() { return s }
            usleep(50_000)
        }
        return nil
    }

    func close() { _ = try? tmux(["kill-server"]) }

    deinit { close() }
}
