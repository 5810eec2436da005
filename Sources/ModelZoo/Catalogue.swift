import Foundation
import Tensor
import Yams

/// Where the bundled assets (catalogue, model YAMLs, sample images) are.
public enum Assets {
    /// `DETR_TUI_ASSETS` if set, else `assets/` beside the executable's checkout (…/.build/<config>/detr-tui),
    /// else `./assets`.
    public static var directory: URL {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["DETR_TUI_ASSETS"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        var candidates: [URL] = []
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0 ..< 6 {
            candidates.append(dir.appendingPathComponent("assets"))
            dir = dir.deletingLastPathComponent()
        }
        // During `swift test` the executable is the test runner; this source file's checkout works too.
        let src = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(src.appendingPathComponent("assets"))
        candidates.append(URL(fileURLWithPath: fm.currentDirectoryPath).appendingPathComponent("assets"))
        for c in candidates where fm.fileExists(atPath: c.appendingPathComponent("catalogue").path) {
            return c
        }
        return candidates.last!
    }

    public static func url(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    /// The sample images, sorted by name.
    public static var sampleImages: [URL] {
        let dir = url("images")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { ["png", "jpg", "jpeg", "ppm"].contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted().map { dir.appendingPathComponent($0) }
    }
}

/// A paper reference.
public struct PaperRef: Sendable, Codable, Equatable {
    public var title: String
    public var arxiv: String?
    public var authors: String?
    public var year: Int?
}

/// One catalogue entry: data, not a subclass. Listing the catalogue builds no model.
/// Stored as one YAML file per entry in assets/catalogue/<id>.yaml.
public struct CatalogueEntry: Sendable, Codable, Equatable, Identifiable {
    public var id: String
    public var title: String
    /// YOLOv8, RT-DETR, Deformable DETR, Modules.
    public var family: String
    /// detector or module.
    public var kind: String
    public var scale: String?
    /// A few sentences: what it is and what it changes.
    public var summary: String
    public var paper: PaperRef?
    /// Reference code (repository and file).
    public var code: String?
    /// The model config, relative to assets/ (e.g. models/yolov8n.yaml), or a builder name for non-YAML families.
    public var config: String
    public var inputSize: Int
    /// What it records for the explorer (feature maps, attention, sampling points, ...).
    public var probes: [String]
    /// For a module: where tutorials insert it.
    public var insert: String?
    /// Reference figures (e.g. "3,157,200 params, 8.9 GFLOPs at 640 (ultralytics model.info)").
    public var reference: String?
    /// The authors' trained weights (URL, size, hash and where each came from), or a note that there are none.
    public var weights: PretrainedWeights?

    enum CodingKeys: String, CodingKey {
        case id, title, family, kind, scale, summary, paper, code, config, probes, insert, reference, weights
        case inputSize = "input_size"
    }
}

/// The catalogue of detector variants and modules.
public struct Catalogue: Sendable {
    public var entries: [CatalogueEntry]

    /// The order families are listed in.
    public static let familyOrder = ["RT-DETR", "YOLOv8", "YOLOv10", "YOLO11", "YOLO12", "YOLO26", "Deformable DETR", "Modules"]

    public init(entries: [CatalogueEntry]) { self.entries = entries }

    /// Loads every assets/catalogue/*.yaml. A malformed file is an error naming it.
    public static func load(from directory: URL = Assets.url("catalogue")) throws -> Catalogue {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else {
            throw FileFormatError(file: directory.path, problem: "the catalogue directory cannot be read")
        }
        var entries: [CatalogueEntry] = []
        for name in names.sorted() where name.hasSuffix(".yaml") {
            let file = directory.appendingPathComponent(name)
            do {
                let text = try String(contentsOf: file, encoding: .utf8)
                entries.append(try YAMLDecoder().decode(CatalogueEntry.self, from: text))
            } catch {
                throw FileFormatError(file: file.path, problem: "not a valid catalogue entry (\(error))")
            }
        }
        return Catalogue(entries: entries.sorted(by: Catalogue.order))
    }

    static func order(_ a: CatalogueEntry, _ b: CatalogueEntry) -> Bool {
        let fa = familyOrder.firstIndex(of: a.family) ?? familyOrder.count
        let fb = familyOrder.firstIndex(of: b.family) ?? familyOrder.count
        if fa != fb { return fa < fb }
        if a.kind != b.kind { return a.kind == "detector" }
        return a.id < b.id
    }

    public func entry(_ id: String) -> CatalogueEntry? { entries.first { $0.id == id } }

    public var families: [String] {
        var seen: [String] = []
        for e in entries where !seen.contains(e.family) { seen.append(e.family) }
        return seen
    }

    /// Entries whose id, title, family or summary contain every word of `query` (case-insensitive), best
    /// first: a word that is the id or a whole part of it ranks above one in the title, which ranks above a
    /// whole word of the description, which ranks above a word that merely occurs inside another
    /// (`nam` finds the NAM entries before a summary that says "dynamic").
    public func search(_ query: String) -> [CatalogueEntry] {
        let words = query.lowercased().split(separator: " ").map(String.init)
        guard !words.isEmpty else { return entries }
        func tokens(_ s: String) -> [String] {
            s.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
        }
        var scored: [(entry: CatalogueEntry, score: Int, order: Int)] = []
        for (order, e) in entries.enumerated() {
            let id = e.id.lowercased()
            let idParts = tokens(e.id), titleWords = tokens(e.title)
            let textWords = Set(tokens([e.family, e.summary, e.insert ?? ""].joined(separator: " ")))
            let hay = [e.id, e.title, e.family, e.summary, e.insert ?? ""].joined(separator: " ").lowercased()
            var score = 0
            var all = true
            for w in words {
                if id == w { score += 1000 }
                else if idParts.contains(w) { score += 300 }
                else if id.hasPrefix(w) { score += 200 }
                else if titleWords.contains(w) { score += 100 }
                else if id.contains(w) || titleWords.contains(where: { $0.hasPrefix(w) }) { score += 50 }
                else if textWords.contains(w) { score += 10 }
                else if hay.contains(w) { score += 1 }
                else { all = false; break }
            }
            if all { scored.append((e, score, order)) }
        }
        return scored.sorted { $0.score != $1.score ? $0.score > $1.score : $0.order < $1.order }.map(\.entry)
    }
}
