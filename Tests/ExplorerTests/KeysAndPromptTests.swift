import XCTest
import Tensor
@testable import ModelZoo
@testable import Explorer

/// The key table, the prompt's line editing and checks, path completion and search ranking.
final class KeysAndPromptTests: XCTestCase {
    func browseState() -> State {
        var s = State(catalogue: Fixtures.catalogue, images: [URL(fileURLWithPath: "/x/chelsea.png")], render: RenderOptions(colorMode: .none))
        s.size = (100, 30)
        s.selection = firstEntryRow(s)
        return s
    }

    func type(_ s: inout State, _ text: String) { for c in text { _ = update(&s, .key(.char(c))) } }

    func testNoKeyIsBoundTwiceInOneContext() {
        for context in KeyContext.allCases {
            var seen: [String: String] = [:]
            for b in keyBindings where b.context == context {
                guard case .keys(let ks) = b.match else { continue }
                for k in ks {
                    XCTAssertNil(seen["\(k)"], "\(k) is bound twice in \(context): \(seen["\(k)"] ?? "") and \(b.label)")
                    seen["\(k)"] = b.label
                }
            }
        }
    }

    func testHelpIsTheTable() {
        let help = helpText
        for b in keyBindings {
            XCTAssertTrue(help.contains { $0.contains(b.label) && $0.contains(b.description) }, "help lacks \(b.label): \(b.description)")
        }
        for context in KeyContext.allCases where keyBindings.contains(where: { $0.context == context }) {
            XCTAssertTrue(help.contains(context.rawValue), "help lacks the section \(context.rawValue)")
        }
        // Both ways out are listed.
        XCTAssertTrue(help.contains { $0.contains("q Ctrl-C") && $0.contains("quit") })
        XCTAssertTrue(help.contains { $0.contains("Esc") && $0.contains("back to the catalogue") })
    }

    func testEscGoesBackOneLevelAndNeverQuits() {
        var s = browseState()
        // Prompt -> closed; help -> closed; model view -> catalogue; catalogue -> stays.
        _ = update(&s, .key(.char("I")))
        XCTAssertNotNil(s.prompt)
        XCTAssertEqual(update(&s, .key(.escape)), .none)
        XCTAssertNil(s.prompt)
        _ = update(&s, .key(.char("?")))
        XCTAssertTrue(s.showHelp)
        XCTAssertEqual(update(&s, .key(.escape)), .none)
        XCTAssertFalse(s.showHelp)
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.mode, .model)
        XCTAssertEqual(update(&s, .key(.escape)), .cancel)  // the run starts at once: Esc cancels it first
        XCTAssertEqual(update(&s, .key(.escape)), .none)
        XCTAssertEqual(s.mode, .browse)
        for _ in 0 ..< 3 { XCTAssertNotEqual(update(&s, .key(.escape)), .quit) }
        XCTAssertEqual(update(&s, .key(.char("q"))), .quit)
    }

    func testPromptEditsLikeAShellLine() {
        var s = browseState()
        s.imagePath = "/data/old.png"
        _ = update(&s, .key(.char("I")))
        // The current value is selected: typing replaces it.
        XCTAssertEqual(s.prompt?.text, "/data/old.png")
        XCTAssertEqual(s.prompt?.selected, true)
        type(&s, "/tmp/a b/cat.png")
        XCTAssertEqual(s.prompt?.text, "/tmp/a b/cat.png")
        _ = update(&s, .key(.ctrl("w")))
        XCTAssertEqual(s.prompt?.text, "/tmp/a b/")
        _ = update(&s, .key(.ctrl("w")))
        XCTAssertEqual(s.prompt?.text, "/tmp/a ")
        _ = update(&s, .key(.ctrl("a")))
        type(&s, "x")
        XCTAssertEqual(s.prompt?.text, "x/tmp/a ")
        _ = update(&s, .key(.right))
        _ = update(&s, .key(.backspace))
        XCTAssertEqual(s.prompt?.text, "xtmp/a ")
        _ = update(&s, .key(.ctrl("e")))
        type(&s, "z")
        XCTAssertEqual(s.prompt?.text, "xtmp/a z")
        _ = update(&s, .key(.left))
        _ = update(&s, .key(.ctrl("k")))
        XCTAssertEqual(s.prompt?.text, "xtmp/a ")
        _ = update(&s, .key(.ctrl("u")))
        XCTAssertEqual(s.prompt?.text, "")
        // Backspace on a selected value clears it.
        _ = update(&s, .key(.escape))
        _ = update(&s, .key(.char("I")))
        _ = update(&s, .key(.backspace))
        XCTAssertEqual(s.prompt?.text, "")
        // A number prompt takes digits only.
        _ = update(&s, .key(.escape))
        _ = update(&s, .key(.char("s")))
        type(&s, "3a2x0")
        XCTAssertEqual(s.prompt?.text, "320")
    }

    func testPromptValuesAreCheckedBeforeUse() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-prompt-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = dir.appendingPathComponent("notes.txt")
        try Data("hello".utf8).write(to: text)
        var s = browseState()
        _ = update(&s, .key(.char("I")))
        type(&s, text.path)
        XCTAssertEqual(update(&s, .key(.enter)), .none)
        XCTAssertNotNil(s.prompt, "a non-image keeps the prompt open")
        XCTAssertEqual(s.notice, "\(text.path): not a PNG, JPEG or PPM image")
        _ = update(&s, .key(.ctrl("u")))
        type(&s, dir.path + "/missing.png")
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.notice, "\(dir.path)/missing.png: no such file")
        _ = update(&s, .key(.escape))
        XCTAssertNil(s.imagePath, "nothing changed")
        // A size that is not a multiple of the open model's stride.
        s.opened = OpenedModel(name: "m", family: "YOLOv8", rows: Fixtures.rows, inputSize: GridSize(64, 64), classNames: [], stride: 32)
        _ = update(&s, .key(.char("s")))
        type(&s, "100")
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.notice, "input size 100 is not a multiple of the model's stride 32 (try 128)")
        _ = update(&s, .key(.ctrl("u")))
        type(&s, "128")
        _ = update(&s, .key(.enter))
        XCTAssertNil(s.prompt)
        XCTAssertEqual(s.inputSize, 128)
        // The confidence threshold applies at once to what is shown.
        _ = update(&s, .key(.char("t")))
        type(&s, "1.5")
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.notice, "the confidence threshold is a number from 0 to 1")
        _ = update(&s, .key(.ctrl("u")))
        type(&s, "0.5")
        _ = update(&s, .key(.enter))
        XCTAssertEqual(s.confidence, 0.5)
    }

    func testTabCompletesPaths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-complete-\(getpid())")
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("models/yolo"), withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        for f in ["models/best.pt", "models/bestest.pt", "models/last.pt"] {
            try Data().write(to: dir.appendingPathComponent(f))
        }
        XCTAssertEqual(completePath(dir.path + "/mo").text, dir.path + "/models/")
        let two = completePath(dir.path + "/models/be")
        XCTAssertEqual(two.text, dir.path + "/models/best")
        XCTAssertEqual(two.candidates, ["best.pt", "bestest.pt"])
        XCTAssertEqual(completePath(dir.path + "/models/l").text, dir.path + "/models/last.pt")
        XCTAssertEqual(completePath(dir.path + "/models/y").text, dir.path + "/models/yolo/")
        XCTAssertEqual(completePath(dir.path + "/models/zz").text, dir.path + "/models/zz")
        // In the prompt: the first Tab completes, a second lists the candidates.
        var s = browseState()
        _ = update(&s, .key(.char("O")))
        type(&s, dir.path + "/models/b")
        _ = update(&s, .key(.tab))
        XCTAssertEqual(s.prompt?.text, dir.path + "/models/best")
        _ = update(&s, .key(.tab))
        XCTAssertEqual(s.prompt?.candidates, ["best.pt", "bestest.pt"])
        type(&s, ".pt")
        XCTAssertEqual(update(&s, .key(.enter)), .run(RunRequest(model: dir.path + "/models/best.pt", weights: nil, image: "/x/chelsea.png")))
        XCTAssertEqual(s.modelPath, dir.path + "/models/best.pt")
        XCTAssertEqual(s.mode, .model)
    }

    func testWeightsThatHoldAModelAreOfferedAsTheModel() {
        var s = browseState()
        _ = update(&s, .key(.enter))
        _ = update(&s, .weightsCarryModel(file: "/w/best.pt", problems: 132))
        XCTAssertEqual(s.offer, "/w/best.pt")
        XCTAssertTrue(s.notice?.contains("best.pt holds its own model") == true)
        XCTAssertTrue(s.notice?.contains("y: open it as the model") == true)
        XCTAssertEqual(update(&s, .key(.char("y"))), .run(RunRequest(model: "/w/best.pt", weights: nil, image: "/x/chelsea.png")))
        XCTAssertNil(s.offer)
        // Any other key withdraws the offer.
        _ = update(&s, .weightsCarryModel(file: "/w/best.pt", problems: 132))
        _ = update(&s, .key(.char("m")))
        XCTAssertNil(s.offer)
        XCTAssertEqual(update(&s, .key(.char("y"))), .none)
    }

    func testSearchRanksIdsAndWholeWordsFirst() {
        let cat = Catalogue(entries: [
            Fixtures.entry("dyhead", family: "Modules", kind: "module", summary: "A dynamic head."),
            Fixtures.entry("rtdetr-l-nam", family: "RT-DETR", summary: "RT-DETR with NAM attention."),
            Fixtures.entry("nam", family: "Modules", kind: "module", summary: "Normalisation-based attention."),
        ])
        XCTAssertEqual(cat.search("nam").map(\.id), ["nam", "rtdetr-l-nam", "dyhead"])
        var s = State(catalogue: cat, images: [], render: RenderOptions(colorMode: .none))
        _ = update(&s, .key(.char("/")))
        type(&s, "nam")
        XCTAssertEqual(s.selectedEntry?.id, "nam")
    }

    func testSubModuleRowsAreSelectable() {
        var s = browseState()
        s.mode = .model
        s.focus = .layers
        s.opened = OpenedModel(name: "m", family: "RT-DETR", rows: Fixtures.rows, inputSize: GridSize(64, 64), classNames: [])
        _ = update(&s, .key(.right))          // expand layer 0
        _ = update(&s, .key(.down))
        XCTAssertEqual(s.layer, 0)
        XCTAssertEqual(s.child, 0)
        _ = update(&s, .key(.down))
        XCTAssertEqual(s.layer, 1)
        XCTAssertNil(s.child)
        _ = update(&s, .key(.up))
        XCTAssertEqual(s.child, 0)
        _ = update(&s, .key(.char("n")))
        XCTAssertEqual(s.layer, 1)
        XCTAssertNil(s.child)
    }

    func testWheelScrollsThePaneUnderThePointer() {
        var s = browseState()
        let layout = Layout(state: s)
        _ = update(&s, .scroll(up: false, x: layout.right.x + 2, y: layout.right.y + 2))
        XCTAssertEqual(s.detailsScroll, 3)
        XCTAssertEqual(s.selection, firstEntryRow(s))
        _ = update(&s, .scroll(up: false, x: layout.left.x + 2, y: layout.left.y + 2))
        XCTAssertEqual(s.selection, firstEntryRow(s) + 3)
    }

    func testUntrainedWeightsAreSaidWhereDetectionsShow() {
        var s = Fixtures.loadedState(width: 180, height: 36)
        _ = update(&s, .key(.char("G")))
        func onDetections() -> Bool { if case .detections = currentVisualKind(s) { return true } else { return false } }
        for _ in 0 ..< 5 where !onDetections() { _ = update(&s, .key(.char("v"))) }
        XCTAssertTrue(onDetections())
        XCTAssertTrue(view(s).contains("untrained weights: detections are meaningless"), view(s).text)
        // A model with trained weights (as the run reports it): no such note; the threshold hides weak detections at once.
        s.opened?.untrained = false
        XCTAssertFalse(view(s).contains("untrained weights"))
        let all = currentDetections(s).count
        s.confidence = 0.7
        XCTAssertLessThan(currentDetections(s).count, all)
    }

    func testPaddingDelaysAreDropped() {
        XCTAssertEqual(withoutPadding(Array("\u{1b}[H\u{1b}[J$<50>".utf8)), Array("\u{1b}[H\u{1b}[J".utf8))
        XCTAssertEqual(withoutPadding(Array("\u{1b}[m$<2*/>x".utf8)), Array("\u{1b}[mx".utf8))
        XCTAssertEqual(withoutPadding(Array("cost $<abc> stays".utf8)), Array("cost $<abc> stays".utf8))
    }
}

/// The explorer's layer rows are `info`'s rows, and after a run each row shows its own step, for every family.
final class LayerRowAlignmentTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    func rowsAndTrace(_ model: String) throws -> (rows: [LayerRow], index: TraceIndex, trace: TraceSnapshot) {
        let backend = Backend(open: { m, w in try openModel(m, weights: w) }, prepare: { _, model, size in
            let image = RGBImage(width: 45, height: 30, pixels: [UInt8](repeating: 90, count: 45 * 30 * 3))
            return (Preprocess.prepare(image, model.preprocessing, size: size).tensor, nil)
        })
        var opened: OpenedModel?
        let result = try Runner.perform(RunRequest(model: model, image: "synthetic"), backend: backend, opened: { opened = $0 })
        let rows = try XCTUnwrap(opened?.rows)
        return (rows, TraceIndex(rows: rows, trace: result.trace), result.trace)
    }

    func testDeformableDETRRowsShowTheirOwnSteps() throws {
        for variant in ["single-scale", "two-stage"] {
            let (rows, index, trace) = try rowsAndTrace(Self.fixtures.appendingPathComponent("deformable/\(variant)").path)
            for (i, row) in rows.enumerated() {
                let si = try XCTUnwrap(index.steps[i], "\(variant) row \(i) \(row.module) has no step")
                XCTAssertEqual(trace.steps[si].path, row.module, "\(variant) row \(i)")
            }
            let encoder = try XCTUnwrap(rows.first { $0.module.hasPrefix("encoder.layers.") })
            XCTAssertEqual(shortModule(encoder.module), encoder.module, "dotted paths stay whole, as info prints them")
        }
    }

    func testUltralyticsRowsShowTheirOwnSteps() throws {
        let (rows, index, trace) = try rowsAndTrace(Self.fixtures.appendingPathComponent("io/ultra_tiny_best.pt").path)
        for (i, row) in rows.enumerated() {
            let si = try XCTUnwrap(index.steps[i], "row \(i) has no step")
            XCTAssertEqual(trace.steps[si].path, "model.\(row.index)")
        }
    }
}

/// Every key the README's tour names is a binding of the table that dispatches keys and writes the help.
final class ReadmeKeysTests: XCTestCase {
    func testEveryKeyTheTourNamesIsBound() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let readme = try String(contentsOf: url, encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "## A short tour"))
        let tour = readme[start.upperBound...].prefix { _ in true }
        let end = tour.range(of: "\n## ")?.lowerBound ?? tour.endIndex
        let text = String(tour[..<end])
        // Backticked single characters and named keys: `n`, `[`, `Esc`, `Ctrl-U`.
        var keys: [(String, Key)] = []
        for m in text.matches(of: /`([^`\s]|Esc|Enter|Space|Tab|Ctrl-[A-Z])`/) {
            let s = String(m.output.1)
            switch s {
            case "Esc": keys.append((s, .escape))
            case "Enter": keys.append((s, .enter))
            case "Space": keys.append((s, .char(" ")))
            case "Tab": keys.append((s, .tab))
            default:
                if s.hasPrefix("Ctrl-") { keys.append((s, .ctrl(Character(s.dropFirst(5).lowercased())))) } else { keys.append((s, .char(Character(s)))) }
            }
        }
        XCTAssertGreaterThan(keys.count, 25, "the tour names the keys")
        for (name, key) in keys {
            // Typing into a prompt takes any character: only the commands' bindings count here.
            let bound = keyBindings.contains { b in
                if case .text = b.match { return false }
                return b.match.matches(key)
            }
            XCTAssertTrue(bound, "README names `\(name)`, which no binding takes")
        }
    }
}
