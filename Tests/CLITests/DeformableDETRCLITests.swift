import Foundation
import XCTest

/// `run` and `info` on the Deformable DETR family through the built binary: a Hugging Face directory opens
/// unchanged, and the dump holds the extras and the sampling probes under their documented names.
final class DeformableDETRCLITests: XCTestCase {
    var fixture: URL { CLI.root.appendingPathComponent("Tests/Fixtures/deformable") }

    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-ddetr-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name).path
    }

    func header(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + n)) as? [String: Any])
    }

    func testRunHuggingFaceDirectoryDumpsExtrasAndSampling() throws {
        let dump = tempPath("trace.safetensors")
        let r = try CLI.run(["run", fixture.appendingPathComponent("multi-scale").path,
                             "--input", fixture.appendingPathComponent("multi-scale-input.safetensors").path,
                             "--json", "--conf", "0", "--dump", dump])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        XCTAssertEqual((obj["detections"] as? [Any])?.count, 100)
        let h = try header(dump)
        func shape(_ k: String) -> [Int]? { (h[k] as? [String: Any])?["shape"] as? [Int] }
        XCTAssertEqual(shape("encoder.last_hidden_state"), [1, 340, 32])    // 16^2 + 8^2 + 4^2 + 2^2 tokens
        XCTAssertEqual(shape("decoder.last_hidden_state"), [1, 30, 32])
        XCTAssertEqual(shape("logits"), [1, 30, 5])
        XCTAssertEqual(shape("pred_boxes"), [1, 30, 4])
        for l in 0 ..< 2 {
            XCTAssertEqual(shape("decoder.layers.\(l).encoder_attn.sampling_locations"), [1, 30, 4, 4, 2, 2])
            XCTAssertEqual(shape("decoder.layers.\(l).encoder_attn.attention_weights"), [1, 30, 4, 4, 2])
            XCTAssertEqual(shape("encoder.layers.\(l).self_attn.sampling_locations"), [1, 340, 4, 4, 2, 2])
        }
        XCTAssertEqual(shape("encoder.output.0"), [32, 16, 16])
    }

    func testInfoCountsParametersLikeTransformers() throws {
        // The fixture model (small multi-scale); transformers counts 130,539 parameters (gen_deformable.py prints it).
        let r = try CLI.run(["info", fixture.appendingPathComponent("multi-scale").path, "--imgsz", "128", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["params"] as? Int, 130_539)
        let layers = try XCTUnwrap(obj["layers"] as? [[String: Any]])
        XCTAssertTrue(layers.contains { ($0["module"] as? String) == "encoder.layers.1" }, "\(layers.map { $0["module"] ?? "" })")
    }

    func testTwoStageDirectoryRunsAndBadDirectoryFails() throws {
        let r = try CLI.run(["run", fixture.appendingPathComponent("two-stage").path,
                             "--input", fixture.appendingPathComponent("multi-scale-input.safetensors").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let bad = try CLI.run(["run", fixture.path, "--input", fixture.appendingPathComponent("multi-scale-input.safetensors").path])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("without config.json"), bad.stderr)
    }
}
