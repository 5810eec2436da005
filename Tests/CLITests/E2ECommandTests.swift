import Foundation
import XCTest

/// The subcommands the explorer owns: list, render, bench-ui (help, output, errors).
final class E2ECommandTests: XCTestCase {
    func testEverySubcommandHasHelp() throws {
        for sub in ["list", "render", "bench-ui"] {
            let r = try CLI.run([sub, "--help"])
            XCTAssertEqual(r.status, 0, "\(sub): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE: detr-tui \(sub)"), r.stdout)
        }
        let root = try CLI.run(["--help"])
        XCTAssertTrue(root.stdout.contains("explore (default)"), root.stdout)
        // The explorer's own options: MODEL and what it runs on, and the display flags.
        let explore = try CLI.run(["explore", "--help"])
        for option in ["<model>", "--weights", "--image", "--imgsz", "--conf", "--no-color", "--symbols"] {
            XCTAssertTrue(explore.stdout.contains(option), "\(option) missing: \(explore.stdout)")
        }
    }

    func testListTableAndJSON() throws {
        let r = try CLI.run(["list"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("id"), r.stdout)
        XCTAssertTrue(r.stdout.contains("yolov8n"), r.stdout)
        let j = try CLI.run(["list", "--json"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let entries = try JSONSerialization.jsonObject(with: j.stdoutData) as? [[String: Any]]
        XCTAssertNotNil(entries)
        XCTAssertTrue(entries!.contains { $0["id"] as? String == "yolov8n" })
        XCTAssertTrue(entries!.allSatisfy { $0["family"] is String && $0["input_size"] is Int })
        let none = try CLI.run(["list", "--search", "no-such-model-anywhere"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("no catalogue entry matches"), none.stderr)
    }

    func testRenderArgumentErrorsGoToStderr() throws {
        let both = try CLI.run(["render", "yolov8n", "--what", "featuremap"])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("exactly one of --image or --input"), both.stderr)
        let badWhat = try CLI.run(["render", "yolov8n", "--image", "assets/images/chelsea.png", "--what", "colours"])
        XCTAssertNotEqual(badWhat.status, 0)
        XCTAssertTrue(badWhat.stderr.contains("featuremap"), badWhat.stderr)
        let png = try CLI.run(["render", "yolov8n", "--image", "assets/images/chelsea.png", "--what", "featuremap", "--format", "png"])
        XCTAssertNotEqual(png.status, 0)
        XCTAssertTrue(png.stderr.contains("--out"), png.stderr)
        let missing = try CLI.run(["render", "yolov8n", "--image", "/no/such/image.png", "--what", "featuremap"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("/no/such/image.png"), missing.stderr)
        // Never overwrite a user's file.
        let existing = CLI.root.appendingPathComponent("assets/images/chelsea.png").path
        let over = try CLI.run(["render", "yolov8n", "--image", existing, "--what", "featuremap", "--format", "png", "--out", existing])
        XCTAssertNotEqual(over.status, 0)
        XCTAssertTrue(over.stderr.contains("exists"), over.stderr)
        XCTAssertTrue(over.stdout.isEmpty)
    }

    func testTUINeedsATerminal() throws {
        let r = try CLI.run([])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("needs a terminal"), r.stderr)
    }
}

/// What the README promises about keys and options holds: every key its tour names is bound in the table that
/// drives the explorer (and its help), and every option its command table names is one the command takes.
final class ReadmeClaimsTests: XCTestCase {
    var readme: String { (try? String(contentsOf: CLI.root.appendingPathComponent("README.md"), encoding: .utf8)) ?? "" }

    func section(_ title: String) -> String {
        guard let start = readme.range(of: "## " + title) else { return "" }
        let rest = readme[start.upperBound...]
        return String(rest[..<(rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex)])
    }

    func testEveryOptionInTheCommandTableIsAccepted() throws {
        let table = section("The command line").split(separator: "\n").filter { $0.hasPrefix("| `detr-tui") }
        XCTAssertGreaterThan(table.count, 8)
        var checked = 0
        for row in table {
            let usage = row.dropFirst(3).prefix { $0 != "`" }            // detr-tui SUB ... up to the closing backtick
            let words = usage.split(separator: " ").map(String.init)
            let sub = words.count > 1 && !words[1].hasPrefix("[") && !words[1].hasPrefix("-") ? words[1].split(separator: "\\").first.map(String.init) : nil
            let help = try CLI.run((sub.map { [$0] } ?? ["explore"]) + ["--help"])
            XCTAssertEqual(help.status, 0, "\(sub ?? "explore") --help: \(help.stderr)")
            let options = usage.matches(of: /--[a-z][a-z-]*/).map { String($0.output) }
            for option in Set(options) {
                XCTAssertTrue(help.stdout.contains(option), "README: `\(usage)` names \(option), which \(sub ?? "explore") does not take")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20)
    }
}
