import Foundation
import XCTest

/// Write errors through the built binary: output that cannot be written is an error with a non-zero exit, and a
/// file that cannot be created is named with the reason in one line.
final class IOHostileCLITests: XCTestCase {
    func testInspectIntoAFullDeviceFails() throws {
        guard let full = FileHandle(forWritingAtPath: "/dev/full") else { throw XCTSkip("no /dev/full here") }
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["inspect", "Tests/Fixtures/io/state_dict.pt"]
        p.currentDirectoryURL = CLI.root
        let err = Pipe()
        p.standardOutput = full
        p.standardError = err
        try p.run()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0, "inspect > /dev/full exited 0")
        XCTAssertTrue(e.contains("cannot write the output: no space left on device"), e)
        // The same command into a pipe succeeds, so the failure is the write's.
        XCTAssertEqual(try CLI.run(["inspect", "Tests/Fixtures/io/state_dict.pt"]).status, 0)
    }

    func testDumpIntoAMissingDirectoryNamesThePath() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-no-such-\(UUID().uuidString)/trace.safetensors").path
        let fixture = CLI.root.appendingPathComponent("Tests/Fixtures/deformable")
        let r = try CLI.run(["run", fixture.appendingPathComponent("multi-scale").path,
                             "--input", fixture.appendingPathComponent("multi-scale-input.safetensors").path, "--dump", missing])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("\(missing): cannot write the safetensors file: no such directory"), r.stderr)
        XCTAssertFalse(r.stderr.contains("NSCocoaErrorDomain"), r.stderr)
    }
}
