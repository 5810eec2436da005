import Foundation
import Tensor
import XCTest
@testable import detr_tui

/// The start-up environment: OpenBLAS's kernels chosen for the CPU (the user's OPENBLAS_CORETYPE wins), the core
/// read back from the library itself (`bench ... --json`, field machine.blasCore), and the restart that sets them
/// keeping output and exit status.
final class LaunchEnvironmentTests: XCTestCase {
    /// Variables of the test's own environment that would decide the outcome (some machines set OPENBLAS_* for numpy).
    static let launchVariables = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SWIFT_BACKTRACE", LaunchEnvironment.marker,
                                  LaunchEnvironment.blasCoreAtLoadVariable]

    /// The vector flags of /proc/cpuinfo (the kernel's view, with what the OS enables), or nil off Linux.
    static func cpuFlags() -> Set<String>? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// OpenBLAS core names whose kernels use AVX-512, and AVX2 (no AVX-512).
    static let avx512Cores: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]
    static let avx2Cores: Set<String> = ["Haswell", "Zen", "Excavator"]

    func machine(_ environment: [String: String], threads: Int? = nil) throws -> [String: Any] {
        var args = ["bench", "ops", "--json", "--runs", "1", "--filter", "64->64 k1 s1 20x20"]
        if let threads { args += ["--threads", String(threads)] }
        let r = try CLI.run(args, environment: environment, unsetting: Self.launchVariables)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
        return try XCTUnwrap(obj["machine"] as? [String: Any], r.stdout)
    }

    func testForcedWeakCoreIsKept() throws {
        let m = try machine(["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(m["blasCore"] as? String, "Prescott", "\(m)")
        XCTAssertNil(m["blasCoreAtLoad"], "\(m)")
        let flags = try XCTUnwrap(Self.cpuFlags())
        if flags.contains("avx2") && flags.contains("fma") {
            let warning = try XCTUnwrap(m["warning"] as? String, "\(m)")
            XCTAssertTrue(warning.contains("OPENBLAS_CORETYPE=Prescott"), warning)
            XCTAssertNotNil(m["blasCoreForCPU"] as? String, "\(m)")
        }
    }

    func testCoreMatchesTheCPU() throws {
        let flags = try XCTUnwrap(Self.cpuFlags())
        let expected: Set<String>
        if ["avx512f", "avx512bw", "avx512vl"].allSatisfy(flags.contains) {
            expected = Self.avx512Cores
        } else if flags.contains("avx2") && flags.contains("fma") {
            expected = Self.avx2Cores
        } else {
            throw XCTSkip("the CPU has neither AVX2+FMA nor AVX-512F/BW/VL: OpenBLAS's SSE kernels are the right ones")
        }
        let m = try machine([:])
        let build = try XCTUnwrap(m["blasBuild"] as? String)
        guard build.contains("DYNAMIC_ARCH") else {
            throw XCTSkip("this OpenBLAS (\(build)) has one set of kernels; OPENBLAS_CORETYPE cannot choose another")
        }
        let core = try XCTUnwrap(m["blasCore"] as? String)
        XCTAssertTrue(expected.contains(core), "OpenBLAS runs \(core) on a CPU for \(expected.sorted()): \(m)")
        XCTAssertNil(m["warning"], "\(m)")
        if let before = m["blasCoreAtLoad"] as? String {
            XCTAssertFalse(expected.contains(before), "restarted although OpenBLAS had chosen \(before)")
        }
    }

    /// The restart keeps standard output and the exit status: `list` prints the same with the variables set (no
    /// restart) and unset (a restart where OpenBLAS falls back to narrower kernels), and a usage error exits 64
    /// either way.
    func testRestartKeepsOutputAndExitStatus() throws {
        let settled = ["SWIFT_BACKTRACE": LaunchEnvironment.swiftBacktrace, "OPENBLAS_CORETYPE": "Haswell"]
        let a = try CLI.run(["list"], environment: settled, unsetting: Self.launchVariables)
        let b = try CLI.run(["list"], unsetting: Self.launchVariables)
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertFalse(a.stdout.isEmpty)
        XCTAssertEqual(a.stdout, b.stdout)
        for env in [settled, [:]] {
            let r = try CLI.run(["list", "--no-such-option"], environment: env, unsetting: Self.launchVariables)
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("--no-such-option"), r.stderr)
        }
    }

    func testThreadsOption() throws {
        XCTAssertEqual(try machine([:], threads: 1)["threads"] as? Int, 1)
        let r = try CLI.run(["bench", "yolov8n", "--imgsz", "64", "--runs", "1", "--threads", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
        XCTAssertEqual(obj["threads"] as? Int, 1)
        let m = try XCTUnwrap(obj["machine"] as? [String: Any])
        XCTAssertEqual(m["threads"] as? Int, 1)
        XCTAssertFalse(try XCTUnwrap(m["blasCore"] as? String).isEmpty)
        XCTAssertFalse(try XCTUnwrap(m["cpu"] as? String).isEmpty)
        let bad = try CLI.run(["bench", "yolov8n", "--threads", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--threads"), bad.stderr)
    }

    /// What the restart sets, decided from the environment alone.
    func testChanges() {
        func names(_ env: [String: String], core: String = "Prescott", dynamic: Bool = true, cpu: VectorLevel = .avx512,
                   terminal: Bool = true) -> [String: String] {
            Dictionary(uniqueKeysWithValues: LaunchEnvironment.changes(environment: env, blasCore: core, blasChoosesCore: dynamic,
                                                                       cpu: cpu, terminal: terminal).map { ($0.name, $0.value) })
        }
        let all = names([:])
        XCTAssertEqual(all["OPENBLAS_CORETYPE"], "SkylakeX")
        XCTAssertEqual(all["SWIFT_BACKTRACE"], "interactive=no")
        XCTAssertEqual(all[LaunchEnvironment.blasCoreAtLoadVariable], "Prescott")
        XCTAssertNotNil(all[LaunchEnvironment.marker])
        XCTAssertEqual(names([:], cpu: .avx2)["OPENBLAS_CORETYPE"], "Haswell")
        // The user's settings win; nothing to change means no restart; a restart never restarts again.
        XCTAssertNil(names(["OPENBLAS_CORETYPE": "Prescott"])["OPENBLAS_CORETYPE"])
        XCTAssertNil(names(["SWIFT_BACKTRACE": "enable=no"])["SWIFT_BACKTRACE"])
        XCTAssertEqual(names(["SWIFT_BACKTRACE": "enable=no"], core: "SkylakeX"), [:])
        XCTAssertEqual(names(["SWIFT_BACKTRACE": "x"], core: "Haswell", cpu: .avx2), [:])
        XCTAssertEqual(names([LaunchEnvironment.marker: "SWIFT_BACKTRACE"]), [:])
        // Without a terminal on both standard input and output a crash report never waits for a key.
        XCTAssertEqual(names([:], core: "SkylakeX", terminal: false), [:])
        XCTAssertEqual(names([:], terminal: false)["OPENBLAS_CORETYPE"], "SkylakeX")
        // Only a library that picks its kernels at load can be told; a core name not in the table is left alone.
        XCTAssertNil(names([:], dynamic: false)["OPENBLAS_CORETYPE"])
        XCTAssertNil(names([:], core: "SomeFutureCore")["OPENBLAS_CORETYPE"])
        XCTAssertNil(names([:], core: "Prescott", cpu: .sse)["OPENBLAS_CORETYPE"])
    }
}

/// On a terminal the explorer runs with SWIFT_BACKTRACE=interactive=no in the environment it started with (what the
/// Swift runtime reads), unless the user set the variable.
final class LaunchEnvironmentTerminalTests: XCTestCase {
    /// The environment a process started with (its exec-time block), by the pid of the tmux pane running it.
    func startEnvironment(_ session: TmuxSession) throws -> [String: String] {
        let pid = try session.tmux(["display-message", "-p", "-t", session.name, "#{pane_pid}"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let data = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        var env: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if let eq = text.firstIndex(of: "=") { env[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
        }
        return env
    }

    func testCrashReportsDoNotWaitOnTheTerminal() throws {
        if ProcessInfo.processInfo.environment["SWIFT_BACKTRACE"] != nil {
            throw XCTSkip("SWIFT_BACKTRACE is set in the tests' environment, so the program leaves it alone")
        }
        guard FileManager.default.fileExists(atPath: "/proc/self/environ") else { throw XCTSkip("no /proc") }
        let session = try TmuxSession([])
        defer { session.close() }
        session.wait(for: "Catalogue")
        XCTAssertEqual(try startEnvironment(session)["SWIFT_BACKTRACE"], LaunchEnvironment.swiftBacktrace)

        let own = try TmuxSession([], environment: ["SWIFT_BACKTRACE": "enable=no"])
        defer { own.close() }
        own.wait(for: "Catalogue")
        XCTAssertEqual(try startEnvironment(own)["SWIFT_BACKTRACE"], "enable=no")
    }
}
