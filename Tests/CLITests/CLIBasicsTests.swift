import XCTest

final class CLIBasicsTests: XCTestCase {
    func testVersionPrints() throws {
        let r = try CLI.run(["--version"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.isEmpty)
    }
}
