import ArgumentParser
import Tensor

/// --threads N for the commands that run forward passes (`bench`, `run`); by default every processor the process
/// may run on (or DETR_TUI_THREADS).
struct ThreadsOption: ParsableArguments {
    @Option(help: "Threads for the forward pass (default: every processor this process may run on).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 64 { throw ValidationError("--threads must be between 1 and 64") }
    }

    /// Applies --threads; call before any work.
    func apply() {
        if let threads { Parallel.setThreads(threads) }
    }
}
