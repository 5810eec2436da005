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

    /// The engine's kernel set, as `bench ops --json` reports it: the widest the processor has (by /proc/cpuinfo's
    /// flags), AVX2 under DETR_TUI_NO_AVX512=1 and portable under DETR_TUI_NO_AVX2=1, each forced set running the
    /// benchmark to the end.
    func testBenchOpsReportsTheKernelSetInUse() throws {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no /proc/cpuinfo flags to say which kernels this processor runs")
        }
        let flags = Set(line.split(separator: " ").map(String.init))
        let avx2 = flags.isSuperset(of: ["avx2", "fma"])
        let avx512 = avx2 && flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"])
        for (env, want) in [([String: String](), avx512 ? "AVX-512" : avx2 ? "AVX2" : "portable"),
                            (["DETR_TUI_NO_AVX512": "1"], avx2 ? "AVX2" : "portable"),
                            (["DETR_TUI_NO_AVX2": "1"], "portable")] {
            let r = try CLI.run(["bench", "ops", "--json", "--runs", "1", "--filter", "64->64 k1 s1 20x20"], environment: env,
                                unsetting: ["DETR_TUI_NO_AVX512", "DETR_TUI_NO_AVX2"].filter { env[$0] == nil })
            XCTAssertEqual(r.status, 0, r.stderr)
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
            let machine = try XCTUnwrap(obj["machine"] as? [String: Any], r.stdout)
            XCTAssertEqual(machine["kernels"] as? String, want, "\(env)")
        }
    }

    func testBenchFilterWithoutMatchFails() throws {
        let r = try CLI.run(["bench", "ops", "--filter", "no such shape", "--runs", "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no conv shape or vector op matches"), r.stderr)
    }

    /// A vector op alone (--filter on its label): no conv rows, the op timed on every kernel set the process may run
    /// (the processor's widest and the narrower ones; portable alone under DETR_TUI_NO_AVX2=1), and the table row.
    func testBenchOpsVectorOpOnEveryKernelSet() throws {
        for env in [[String: String](), ["DETR_TUI_NO_AVX2": "1"]] {
            let r = try CLI.run(["bench", "ops", "--json", "--runs", "1", "--filter", "layer norm [300,256]"], environment: env,
                                unsetting: ["DETR_TUI_NO_AVX512", "DETR_TUI_NO_AVX2"].filter { env[$0] == nil })
            XCTAssertEqual(r.status, 0, r.stderr)
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any], r.stdout)
            XCTAssertEqual((obj["rows"] as? [Any])?.count, 0)
            let kernels = try XCTUnwrap((obj["machine"] as? [String: Any])?["kernels"] as? String)
            let ops = try XCTUnwrap(obj["vectorOps"] as? [[String: Any]], r.stdout)
            XCTAssertEqual(ops.count, 1)
            XCTAssertEqual(ops.first?["op"] as? String, "layer norm [300,256]")
            let ms = try XCTUnwrap(ops.first?["ms"] as? [String: Double])
            let want = ["AVX-512": ["AVX-512", "AVX2", "portable"], "AVX2": ["AVX2", "portable"], "portable": ["portable"]][kernels]
            XCTAssertEqual(Set(ms.keys), Set(try XCTUnwrap(want)), "\(env)")
            for (set, t) in ms { XCTAssertGreaterThan(t, 0, set) }
        }
        let table = try CLI.run(["bench", "ops", "--runs", "1", "--filter", "softmax [8,300,300]"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("softmax [8,300,300] last axis"), table.stdout)
    }
}
