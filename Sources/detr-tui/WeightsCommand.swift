import ArgumentParser
import Foundation
import ModelZoo

/// `detr-tui weights list|get|rm|path|verify`: the published weights of the catalogue entries and the cache.
struct WeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weights",
        abstract: "Pretrained weights by catalogue id: list, download, locate, verify and remove them.",
        discussion: """
        Files are fetched only when asked (`weights get`, or --pretrained on run, info and render) from the URL pinned \
        in the catalogue entry, or from DETR_TUI_WEIGHTS_URL/<id>/<file> when that mirror is set (HTTPS_PROXY and \
        NO_PROXY are honoured). They go to DETR_TUI_CACHE, else $XDG_CACHE_HOME/detr-tui, else ~/.cache/detr-tui, \
        under weights/<id>/, through a NAME.partial file that is moved into place only once its size and SHA-256 \
        check out. Where the publisher gives no hash, the one of the first download is recorded, shown, and checked \
        on every later use. On a box without network, copy the file to the place `weights path ID` prints.
        """,
        subcommands: [List.self, Get.self, Path.self, Verify.self, Remove.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every entry: what is published, from where, and what is cached.")

        @Flag(help: "Only the entries with something in the cache.")
        var cached = false

        func run() throws {
            let catalogue = try Catalogue.load()
            let pretrained = Pretrained()
            let rows = catalogue.entries.map { pretrained.status(of: $0) }.filter { s in
                if !cached { return true }
                switch s.state { case .cached, .partial: return true; default: return false }
            }
            let idW = max(2, rows.map(\.id.count).max() ?? 2)
            for s in rows { print(s.id.padding(toLength: idW, withPad: " ", startingAt: 0) + "  " + s.summary) }
            print("cache: \(pretrained.cache.root.path)")
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Download (or resume) an entry's weights and verify them.")

        @Argument(help: "A catalogue id (see `detr-tui weights list`).")
        var id: String

        func run() throws {
            let entry = try catalogueEntry(id)
            let path = try ensurePretrained(entry)
            print(path.path)
        }
    }

    struct Path: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "path",
            abstract: "Print where an entry's weights are (or go): copy a file there by hand on a box without network.")

        @Argument(help: "A catalogue id.")
        var id: String

        func run() throws {
            let entry = try catalogueEntry(id)
            let pretrained = Pretrained()
            guard let w = entry.weights, w.isPublished else {
                throw PretrainedError.notPublished(id: id, note: entry.weights?.note ?? "no published weights")
            }
            for f in w.files {
                print("\(pretrained.cache.file(f.name, of: id).path)\t\(pretrained.url(of: f, entry: id))")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify", abstract: "Check cached files by size and SHA-256 (all cached entries without ID).")

        @Argument(help: "A catalogue id (default: every cached entry).")
        var id: String?

        func run() throws {
            let catalogue = try Catalogue.load()
            let pretrained = Pretrained()
            let ids = id.map { [$0] } ?? pretrained.cache.cachedIDs()
            var failures: [String] = []
            for i in ids {
                guard let entry = catalogue.entry(i) else { failures.append("\(i): not a catalogue id"); continue }
                do {
                    for line in try pretrained.verify(entry) { print("\(i)/\(line)") }
                } catch {
                    failures.append("\(error)")
                }
            }
            if ids.isEmpty { print("nothing cached in \(pretrained.cache.root.path)") }
            if !failures.isEmpty { throw ValidationError(failures.joined(separator: "; ")) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an entry's cached files (and any partial download).")

        @Argument(help: "A catalogue id.")
        var id: String

        func run() throws {
            _ = try catalogueEntry(id)
            let cache = Pretrained().cache
            let freed = try cache.remove(id)
            print(freed > 0 ? "removed \(cache.directory(for: id).path) (\(formatBytes(freed)))" : "nothing cached for \(id)")
        }
    }
}

func catalogueEntry(_ id: String) throws -> CatalogueEntry {
    guard let e = try Catalogue.load().entry(id) else { throw PretrainedError.unknownID(id) }
    return e
}

/// The cached, verified weights of `entry`, downloading what is missing with a progress bar on stderr;
/// Ctrl-C cancels the download (the bytes so far kept only as a .partial file to resume). Returns what
/// `openModel` opens.
func ensurePretrained(_ entry: CatalogueEntry) throws -> URL {
    let pretrained = Pretrained()
    let bar = ProgressBar()
    let cancellation = DownloadCancellation()
    signal(SIGINT, SIG_IGN)
    let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    interrupt.setEventHandler { cancellation.cancel() }
    interrupt.resume()
    defer {
        interrupt.cancel()
        signal(SIGINT, SIG_DFL)
    }
    do {
        let path = try pretrained.fetch(entry, cancellation: cancellation, progress: { bar.update($0) }, onRecord: { name, record in
            bar.finish()
            FileHandle.standardError.write(Data(
                "\(entry.id)/\(name): no published hash; recorded sha256 \(record.sha256) (\(formatBytes(record.size))), checked on every later use\n".utf8))
        })
        bar.finish()
        return path
    } catch PretrainedError.cancelled(let kept) {
        bar.finish()
        FileHandle.standardError.write(Data("Error: \(PretrainedError.cancelled(kept: kept))\n".utf8))
        Foundation.exit(130)
    } catch {
        bar.finish()
        throw error
    }
}

/// A one-line progress bar on stderr: bytes, rate, time left; redrawn in place on a terminal, else a line
/// every 10%.
final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let tty = isatty(STDERR_FILENO) == 1
    private var drawn = false
    private var lastDecile = -1
    private var lastFile = ""

    func update(_ p: WeightsProgress) {
        lock.withLock {
            let line = Self.line(p)
            if tty {
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
                drawn = true
            } else {
                let decile = Int((p.fraction ?? 0) * 10)
                if p.file != lastFile || decile != lastDecile {
                    lastFile = p.file
                    lastDecile = decile
                    FileHandle.standardError.write(Data("\(line)\n".utf8))
                }
            }
        }
    }

    func finish() {
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            drawn = false
        }
    }

    static func line(_ p: WeightsProgress) -> String {
        let width = 24
        var bar = ""
        if let f = p.fraction {
            let filled = Int(f * Double(width))
            bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
        }
        let total = p.expected.map { " / " + formatBytes($0) } ?? ""
        let rate = formatBytes(Int64(p.bytesPerSecond)) + "/s"
        let left = p.secondsLeft.map { s -> String in
            let t = Int(s.rounded(.up))
            return String(format: ", %d:%02d left", t / 60, t % 60)
        } ?? ""
        let which = p.fileCount > 1 ? " (\(p.fileIndex + 1)/\(p.fileCount))" : ""
        return "\(p.file)\(which) \(bar)\(formatBytes(p.received))\(total), \(rate)\(left)"
    }
}
