import ArgumentParser
import Foundation
import ModelZoo

/// `detr-tui list`: the catalogue, as a table or JSON.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the catalogue: detector variants and attention modules.")

    @Flag(name: .long, help: "Print JSON (an array of entries) instead of a table.")
    var json = false

    @Option(name: .long, help: "Only entries matching these words (id, title, family, summary).")
    var search: String?

    func run() throws {
        let catalogue = try Catalogue.load()
        let entries = search.map { catalogue.search($0) } ?? catalogue.entries
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try enc.encode(entries)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let idW = max(2, entries.map { $0.id.count }.max() ?? 2)
        let famW = max(6, entries.map { $0.family.count }.max() ?? 6)
        func padded(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print(padded("id", idW) + "  " + padded("family", famW) + "  " + padded("kind", 8) + "  input  title")
        for e in entries {
            print(padded(e.id, idW) + "  " + padded(e.family, famW) + "  " + padded(e.kind, 8) + "  " + padded(String(e.inputSize), 5) + "  " + e.title)
        }
        if entries.isEmpty, let s = search {
            FileHandle.standardError.write(Data("no catalogue entry matches \"\(s)\"\n".utf8))
            throw ExitCode(1)
        }
    }
}
