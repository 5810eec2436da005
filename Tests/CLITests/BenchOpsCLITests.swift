import Foundation
import XCTest

/// `detr-tui bench ops`, kept quick with --filter (one small shape) and --runs 1.
final class BenchOpsCLITests: XCTestCase {
    func testBenchOpsJSON() throws {
        let r = try CLI.run(["bench", "ops", "--json", "--runs", "1", "--filter", "64->64 k1 s1 20x20"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
        XCTAssertGreaterThan(try XCTUnwrap(obj["sgemmGflopsPerSecond"] as? Double), 0)
        let rows = try XCTUnwrap(obj["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?["model"] as? String, "yolov8s")
        XCTAssertEqual(rows.first?["shape"] as? String, "64->64 k1 s1 20x20")
        XCTAssertGreaterThan(try XCTUnwrap(rows.first?["gflopsPerSecond"] as? Double), 0)
        XCTAssertGreaterThan(try XCTUnwrap(rows.first?["floorMs"] as? Double), 0)
        XCTAssertGreaterThan(try XCTUnwrap(rows.first?["percentOfSgemmAtFloor"] as? Double), 0)
    }

    func testBenchOpsTable() throws {
        let r = try CLI.run(["bench", "ops", "--runs", "1", "--filter", "k5 s1 g384"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("sgemm 1024^3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("384->384 k5 s1 g384 20x20"), r.stdout)
        XCTAssertTrue(r.stdout.contains("GFLOP/s"), r.stdout)
        XCTAssertTrue(r.stdout.contains("floor"), r.stdout)
    }

    /// With every shape of a model measured (here RT-DETR-l's), its depthwise convs get their cost ratios, as
    /// measured and at the floor, and the goals are summed up; a filter that leaves shapes out gives no ratios.
    func testBenchOpsCostRatiosForACompleteModel() throws {
        let r = try CLI.run(["bench", "ops", "--json", "--runs", "1", "--filter", "rtdetr-l"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
        let rows = try XCTUnwrap(obj["rows"] as? [[String: Any]])
        let dw = rows.filter { $0["depthwise"] as? Bool == true }
        XCTAssertEqual(dw.count, 5)
        for row in dw {
            XCTAssertGreaterThan(try XCTUnwrap(row["costRatio"] as? Double), 0, "\(row)")
            XCTAssertGreaterThan(try XCTUnwrap(row["costRatioAtFloor"] as? Double), 0, "\(row)")
        }
        let part = try CLI.run(["bench", "ops", "--runs", "1", "--filter", "k3 s2 g"])
        XCTAssertEqual(part.status, 0, part.stderr)
        XCTAssertFalse(part.stdout.contains("depthwise convs at 3x"), part.stdout)
        XCTAssertFalse(part.stdout.contains("general convs at 60%"), part.stdout)
    }

    func testBenchFilterWithoutMatchFails() throws {
        let r = try CLI.run(["bench", "ops", "--filter", "no such shape", "--runs", "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no conv shape matches"), r.stderr)
    }
}
