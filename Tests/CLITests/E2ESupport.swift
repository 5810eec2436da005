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

    /// Runs tmux with `posix_spawn` and `waitpid` (Foundation's Process waits for descriptors that the tmux
    /// server inherits when the first command starts it, and would never see the client exit).
    @discardableResult
    func tmux(_ args: [String]) throws -> String {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("\(socket)-\(UInt32.random(in: 0 ... UInt32.max)).out").path
        defer { unlink(outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = [TmuxSession.tmuxPath!, "-L", socket] + args
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, TmuxSession.tmuxPath!, &actions, nil, &cargs, environ)
        guard rc == 0 else { throw NSError(domain: "tmux", code: Int(rc)) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let data = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        guard status == 0 else {
            throw NSError(domain: "tmux", code: Int(status), userInfo: [NSLocalizedDescriptionKey: "tmux \(args.joined(separator: " ")) failed"])
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
