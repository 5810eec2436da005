import Foundation
import XCTest
import Tensor
@testable import ModelZoo

/// Paths of the model I/O fixtures (made by scripts/fixtures/gen_checkpoints.py and gen_images.py).
enum IOFixtures {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/io")
    }
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    static func broken(_ name: String) -> String { directory.appendingPathComponent("broken").appendingPathComponent(name).path }
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A fresh temporary directory for files a test makes.
    static func tempDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Asserts that `body` throws a FileFormatError naming `file` whose problem contains every fragment.
func assertFileError<T>(_ file: String, _ fragments: [String], _ body: () throws -> T,
                        sourceFile: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error for \(file)", file: sourceFile, line: line)
    } catch let e as FileFormatError {
        XCTAssertTrue(e.file.hasPrefix(file), "error names \(e.file), expected \(file)", file: sourceFile, line: line)
        for f in fragments {
            XCTAssertTrue(e.problem.lowercased().contains(f.lowercased()), "'\(e.problem)' does not mention '\(f)'", file: sourceFile, line: line)
        }
    } catch {
        XCTFail("expected a FileFormatError for \(file), got \(type(of: error)): \(error)", file: sourceFile, line: line)
    }
}

/// Compares two tensors element-wise; reports the first mismatch.
func assertClose(_ a: Tensor, _ b: Tensor, atol: Float = 0, rtol: Float = 0, _ what: String,
                 sourceFile: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shape", file: sourceFile, line: line)
    guard a.shape == b.shape else { return }
    for i in 0 ..< a.count where abs(a.data[i] - b.data[i]) > atol + rtol * abs(b.data[i]) {
        XCTFail("\(what): element \(i) is \(a.data[i]), expected \(b.data[i])", file: sourceFile, line: line)
        return
    }
}
