import XCTest
@testable import ModelZoo

final class ModelZooSmokeTests: XCTestCase {
    func testVersion() { XCTAssertFalse(ModelZoo.version.isEmpty) }
}
