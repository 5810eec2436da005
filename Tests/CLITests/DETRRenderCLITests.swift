import Foundation
import XCTest

/// `detr-tui render --what boxes|queries|edges` on the Hugging Face RT-DETR fixture: the views as text, JSON and PNG,
/// and the errors that name what a layer holds instead.
final class DETRRenderCLITests: XCTestCase {
    let common = ["render", "Tests/Fixtures/hfdetr/rt-detr", "--image", "Tests/Fixtures/predict/coffee.png", "--imgsz", "320"]

    func testBoxesAndQueriesRenderAsTextJSONAndPNG() throws {
        // Layer 9 is model.decoder: its second boxes visual is decoder layer 1, drawn on the best detection's query.
        let json = try CLI.run(common + ["--layer", "9", "--what", "boxes", "--probe", "1", "--format", "json", "--conf", "0"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["what"] as? String, "boxes")
        XCTAssertEqual(obj["layer"] as? Int, 1)
        let layers = try XCTUnwrap(obj["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["layer"] as? Int }, [-1, 0, 1])
        let text = try CLI.run(common + ["--layer", "8", "--what", "queries", "--no-color", "--width", "90"])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.hasPrefix("query selection: the top-12 encoder tokens · model.query_selection"), text.stdout)
        XCTAssertTrue(text.stdout.contains("12 queries from 3 levels"), text.stdout)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("detr-boxes-\(UUID().uuidString).png").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let png = try CLI.run(common + ["--layer", "9", "--what", "boxes", "--all-queries", "--format", "png", "--out", out])
        XCTAssertEqual(png.status, 0, png.stderr)
        XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0, 1000)
    }

    func testTheNewKindsSayWhatIsMissing() throws {
        let edges = try CLI.run(common + ["--layer", "9", "--what", "edges"])
        XCTAssertNotEqual(edges.status, 0)
        XCTAssertTrue(edges.stderr.contains("has no edges"), edges.stderr)
        let flag = try CLI.run(common + ["--layer", "9", "--what", "sampling", "--all-queries"])
        XCTAssertNotEqual(flag.status, 0)
        XCTAssertTrue(flag.stderr.contains("--all-queries goes with --what boxes"), flag.stderr)
    }
}
