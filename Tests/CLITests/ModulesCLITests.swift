import Foundation
import XCTest

/// The seed variants and the modules alone through the built binary.
final class ModulesCLITests: XCTestCase {
    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-attn-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name).path
    }

    /// A safetensors file with one F32 tensor `images` of `shape`, values from a small deterministic pattern.
    func writeInput(shape: [Int]) throws -> String {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        for i in 0 ..< n { values[i] = Float((i * 7919) % 101) / 50 - 1 }
        let header = "{\"images\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[0,\(4 * n)]}}"
        var hdr = Data(header.utf8)
        while hdr.count % 8 != 0 { hdr.append(0x20) }
        var data = Data()
        var len = UInt64(hdr.count).littleEndian
        withUnsafeBytes(of: &len) { data.append(contentsOf: $0) }
        data.append(hdr)
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        let path = tempPath("input.safetensors")
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func testRunModuleAloneDumpsItsProbes() throws {
        let input = try writeInput(shape: [1, 64, 12, 16])
        let dump = tempPath("trace.safetensors")
        let r = try CLI.run(["run", "msdeformattn", "--input", input, "--dump", dump])
        XCTAssertEqual(r.status, 0, r.stderr)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dump))
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let text = String(decoding: bytes.dropFirst(8).prefix(headerLength), as: UTF8.self)   // the JSON header
        for key in ["module.sampling.sampling_locations", "module.sampling.attention_weights", "module.sampling.reference_points", "\"output\""] {
            XCTAssertTrue(text.contains(key), "dump lacks \(key)")
        }
        // 12x16 + 6x8 + 3x4 + 1x2 = 254 pixel queries; 8 heads, 4 levels, 4 points
        XCTAssertTrue(text.contains("[1,254,8,4,4,2]"), text)
    }

    func testWrongChannelsForAModuleIsAnError() throws {
        let input = try writeInput(shape: [1, 5, 8, 8])
        let r = try CLI.run(["run", "nam", "--input", input])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("64"), r.stderr)
    }

    func testInfoOfASeedVariantMatchesUltralytics() throws {
        let r = try CLI.run(["info", "rtdetr-l-nam", "--imgsz", "640", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        XCTAssertEqual(obj["params"] as? Int, 32_977_644)
        XCTAssertEqual(try XCTUnwrap(obj["gflops"] as? Double), 110.289, accuracy: 1.1)
    }
}

final class CompareCLITests: XCTestCase {
    func testCompareMarksTheInsertedBlocksAndScoresAlignedLayers() throws {
        let r = try CLI.run(["compare", "rtdetr-l", "rtdetr-l-cot"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.components(separatedBy: "\n").filter { $0.contains("added") && $0.contains("CoTAttention") }.count, 3, r.stdout)
        XCTAssertTrue(r.stdout.contains("29 same, 3 added"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Δ +1,731,072 params"), r.stdout)
        let j = try CLI.run(["compare", "yolov8n", "yolov8n-ca", "--image", "assets/images/chelsea.png", "--imgsz", "320", "--json"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: j.stdoutData) as? [String: Any])
        let rows = try XCTUnwrap(report["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.filter { $0["change"] as? String == "added" }.count, 1)
        // Before the inserted block both models are the same network on the same input.
        for r in rows.prefix(10) { XCTAssertEqual(r["similarity"] as? Double ?? 0, 1, accuracy: 1e-4, "\(r)") }
    }
}
