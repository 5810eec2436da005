import XCTest
@testable import Explorer

final class ExplorerSmokeTests: XCTestCase {
    func testModuleLoads() { _ = Explorer.self }
}
