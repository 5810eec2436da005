import Foundation
import XCTest
import Tensor
@testable import ModelZoo

/// Every broken file gives an error naming the file and the problem: never a crash, never a write.
final class IOBrokenFileTests: XCTestCase {
    static let marker = "/tmp/detr_tui_io_marker_must_not_exist"

    func testEmptyFiles() {
        assertFileError(IOFixtures.broken("empty.pt"), ["empty"]) { try Checkpoint.open(path: IOFixtures.broken("empty.pt")) }
        assertFileError(IOFixtures.broken("empty.safetensors"), ["empty"]) { try Checkpoint.open(path: IOFixtures.broken("empty.safetensors")) }
    }

    func testMissingFileAndDirectory() {
        assertFileError("/nonexistent/x.pt", ["no such file"]) { try Checkpoint.open(path: "/nonexistent/x.pt") }
        let dir = IOFixtures.path("broken")
        assertFileError(dir, ["model.safetensors"]) { try Checkpoint.open(path: dir) }
    }

    func testTruncatedZip() {
        let f = IOFixtures.broken("truncated.pt")
        assertFileError(f, ["zip", "truncated"]) { try Checkpoint.open(path: f) }
    }

    func testPickleCallingOsSystemIsReportedNotRun() {
        try? FileManager.default.removeItem(atPath: Self.marker)
        for (name, global) in [("os_system.pt", "posix.system"), ("eval.pt", "builtins.eval")] {
            let f = IOFixtures.broken(name)
            assertFileError(f, ["unsupported global \(global) (not executed)"]) { try Checkpoint.open(path: f) }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.marker), "a pickled call was executed")
    }

    func testDeeplyRecursivePickles() {
        for name in ["deep_recursion.pt", "deep_tuples.pt"] {
            let f = IOFixtures.broken(name)
            assertFileError(f, ["deeper than"]) { try Checkpoint.open(path: f) }
        }
    }

    func testLateNestingIsBoundedToo() throws {
        // 50000 empty lists memoised first, then each appended into the previous one: nesting that only grows
        // after the containers exist. Conversion must stop at the depth limit without overflowing the stack.
        var b: [UInt8] = [0x80, 0x02]
        let n = 50_000
        for i in 0 ..< n {
            b += [0x5D, 0x72] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init) + [0x30]
        }
        for i in stride(from: n - 1, to: 0, by: -1) {
            b += [0x6A] + withUnsafeBytes(of: UInt32(i - 1).littleEndian, Array.init)
            b += [0x6A] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init)
            b += [0x61, 0x30]
        }
        b += [0x6A, 0, 0, 0, 0, 0x2E]
        assertFileError("late.pkl", ["deeper than"]) { try Unpickler(data: Data(b), file: "late.pkl").load() }
    }

    func testExponentialSharingIsBounded() throws {
        // l0 = [None]; l(i+1) = [l(i), l(i)] ... 40 levels: 2^40 values if expanded.
        var b: [UInt8] = [0x80, 0x02, 0x5D, 0x4E, 0x61]
        for _ in 0 ..< 40 { b += [0x94, 0x5D, 0x28, 0x68, UInt8(0), 0x68, UInt8(0), 0x65] }
        // Each level refers to the previous memo entry: rewrite with the right indices.
        b = [0x80, 0x02, 0x5D, 0x4E, 0x61]
        for i in 0 ..< 40 { b += [0x94, 0x30, 0x5D, 0x28, 0x68, UInt8(i), 0x68, UInt8(i), 0x65] }
        b += [0x2E]
        assertFileError("bomb.pkl", ["more than"]) { try Unpickler(data: Data(b), file: "bomb.pkl").load() }
    }

    func testStorageShorterThanTensor() {
        let f = IOFixtures.broken("short_storage.pt")
        assertFileError(f, ["storage '0'", "100 elements", "holds only 4 bytes"]) { try Checkpoint.open(path: f) }
        let g = IOFixtures.broken("view_past_storage.pt")
        assertFileError(g, ["needs 6 elements", "holds only 4"]) { try Checkpoint.open(path: g) }
    }

    func testBrokenSafetensors() {
        let f = IOFixtures.broken("header_too_long.safetensors")
        assertFileError(f, ["header claims 10000 bytes"]) { try Checkpoint.open(path: f) }
        let g = IOFixtures.broken("overlapping.safetensors")
        assertFileError(g, ["overlap"]) { try Checkpoint.open(path: g) }
    }

    func testGarbageAndTruncatedPickles() {
        for (bytes, fragment) in [([0x80, 0x02, 0x5D] as [UInt8], "ends early"), ([0xFF], "unknown pickle opcode"),
                                  ([0x80, 0x02, 0x61, 0x2E], "underflow"), ([0x80, 0x02, 0x68, 0x05, 0x2E], "memo entry 5"),
                                  ([0x80, 0x09], "protocol 9")] {
            assertFileError("mem.pkl", [fragment]) { try Unpickler(data: Data(bytes), file: "mem.pkl").load() }
        }
    }

    func testUserFilesAreNotModified() throws {
        let files = ["ultra_tiny_best.pt", "state_dict.pt", "broken/os_system.pt"].map(IOFixtures.path)
        let before = try files.map { try FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as? Date }
        for f in files { _ = try? Checkpoint.open(path: f).tensors }
        let after = try files.map { try FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as? Date }
        XCTAssertEqual(before, after)
    }
}
