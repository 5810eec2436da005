import XCTest
import Tensor
@testable import ModelZoo

final class CompareTests: XCTestCase {
    func row(_ i: Int, _ module: String, _ args: String = "", params: Int = 10) -> LayerRow {
        LayerRow(index: i, from: [-1], repeats: 1, params: params, module: module, arguments: args, flops: 0, outputShape: [1, 4, 8, 8])
    }

    func testAnInsertedBlockShiftsTheRestWithoutBreakingTheMatch() {
        let a = [row(0, "Conv", "[3, 16]"), row(1, "C2f", "[16]"), row(2, "Conv", "[16, 32]"), row(3, "Detect", "[80]")]
        let b = [row(0, "Conv", "[3, 16]"), row(1, "C2f", "[16]"), row(2, "CoTAttention", "[16]"), row(3, "Conv", "[16, 32]"),
                 row(4, "Detect", "[80]")]
        XCTAssertEqual(LayerDiff.align(a, b), [
            AlignedRow(change: .same, a: 0, b: 0), AlignedRow(change: .same, a: 1, b: 1), AlignedRow(change: .added, a: nil, b: 2),
            AlignedRow(change: .same, a: 2, b: 3), AlignedRow(change: .same, a: 3, b: 4),
        ])
        // The other way round the block is removed; changed arguments are flagged; a type swap is a replacement.
        XCTAssertEqual(LayerDiff.align(b, a)[2], AlignedRow(change: .removed, a: 2, b: nil))
        let c = [row(0, "Conv", "[3, 24]", params: 12), row(1, "C2f", "[16]"), row(2, "NAM", "[16]"), row(3, "Detect", "[80]")]
        XCTAssertEqual(LayerDiff.align(a, c).map(\.change), [.changed, .same, .replaced, .same])
        XCTAssertEqual(LayerDiff.align([], a).map(\.change), [.added, .added, .added, .added])
    }

    func testSimilarityOfOutputs() {
        let x = Tensor(shape: [1, 2, 2, 2], data: [1, 1, 1, 1, 2, 2, 2, 2])
        XCTAssertEqual(LayerDiff.similarity(x, x)!, 1, accuracy: 1e-6)
        // Channel means (1, 2) against (2, -1): orthogonal.
        let y = Tensor(shape: [1, 2, 2, 2], data: [2, 2, 2, 2, -1, -1, -1, -1])
        XCTAssertEqual(LayerDiff.similarity(x, y)!, 0, accuracy: 1e-6)
        XCTAssertEqual(LayerDiff.similarity(x, Tensor(shape: [1, 2, 2, 2], data: x.data.map { -$0 }))!, -1, accuracy: 1e-6)
        // Other channel counts: the channel-averaged maps.
        let z = Tensor(shape: [1, 3, 2, 2], data: [Float](repeating: 5, count: 12))
        XCTAssertEqual(LayerDiff.similarity(x, z)!, 1, accuracy: 1e-6)
        XCTAssertNil(LayerDiff.similarity(x, Tensor(shape: [1, 3, 4, 4], data: [Float](repeating: 1, count: 48))))
    }
}
