import Foundation
import Tensor

/// Settings that only take effect in the environment a process starts with, because a library reads them while it
/// loads, before `main`: OpenBLAS picks its kernels ("core") from OPENBLAS_CORETYPE or, without it, from the CPU
/// models it knows, falling back to SSE3 kernels (Prescott) on newer ones; the Swift runtime reads SWIFT_BACKTRACE.
/// `prepare` decides all of them at once and, when one must change, restarts the program once (`execv` of the
/// running binary with the same arguments, so the process, its descriptors and its exit status stay the caller's;
/// on this 2-core VM it costs about 18 ms of CPU, one more start-up). A variable the user set is never changed.
enum LaunchEnvironment {
    /// Set on the restart: the variables it set, comma-separated (so that it never restarts again).
    static let marker = "DETR_TUI_LAUNCH_SET"
    /// Set on the restart when it chose OpenBLAS's core: the core OpenBLAS had picked itself.
    static let blasCoreAtLoadVariable = "DETR_TUI_BLAS_CORE_AT_LOAD"

    /// Crash reports print and exit instead of holding the terminal ("Press space to interact", 30 s).
    static let swiftBacktrace = "interactive=no"

    /// The variables to set, in order, given the environment, the core OpenBLAS chose, whether the library can
    /// choose another at load, what the CPU can do, and whether standard input and output are both a terminal (only
    /// then does a crash report wait for a key: the runtime's default is interactive=tty). Empty when nothing needs
    /// changing or after the restart.
    static func changes(environment env: [String: String], blasCore: String, blasChoosesCore: Bool,
                        cpu: VectorLevel, terminal: Bool) -> [(name: String, value: String)] {
        if env[marker] != nil { return [] }
        var out: [(name: String, value: String)] = []
        if env["SWIFT_BACKTRACE"] == nil && terminal { out.append(("SWIFT_BACKTRACE", swiftBacktrace)) }
        if env["OPENBLAS_CORETYPE"] == nil, blasChoosesCore, let core = BLASLibrary.betterCore(than: blasCore, cpu: cpu) {
            out.append(("OPENBLAS_CORETYPE", core))
            out.append((blasCoreAtLoadVariable, blasCore))
        }
        if !out.isEmpty { out.append((marker, out.map(\.name).joined(separator: ","))) }
        return out
    }

    /// Called first in `main`: restarts the program once with the environment `changes` asks for, or returns when
    /// nothing needs changing (or the restart failed; then the program runs as it would have without it).
    static func prepare() {
        let set = changes(environment: ProcessInfo.processInfo.environment, blasCore: BLASLibrary.coreName,
                          blasChoosesCore: BLASLibrary.choosesCoreAtLoad, cpu: CPUInfo.current.vectorLevel,
                          terminal: isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1)
        if set.isEmpty { return }
        for (name, value) in set { setenv(name, value, 1) }
        // The binary by its own path, so that the process keeps its name (ps, top); /proc/self/exe when that path
        // is gone (the file was replaced since it started).
        if let path = executablePath() { execv(path, CommandLine.unsafeArgv) }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        for (name, _) in set { unsetenv(name) }
    }

    /// The path of the running binary, when it still names it.
    private static func executablePath() -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? nil : path
    }

    /// The core OpenBLAS had picked before the restart chose a better one (nil when it did not).
    static var blasCoreAtLoad: String? { ProcessInfo.processInfo.environment[blasCoreAtLoadVariable] }

    /// The benchmarks' description of the machine.
    static func machineReport() -> MachineReport { .current(blasCoreAtLoad: blasCoreAtLoad) }
}
