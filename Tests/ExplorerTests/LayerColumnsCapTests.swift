import XCTest
@testable import Explorer
@testable import ModelZoo

/// The layer table's module column is capped, so that an ONNX graph's long node paths leave room for the output
/// shape; a sub-module row too long for it keeps its end (the node's name and op).
final class LayerColumnsCapTests: XCTestCase {
    func testLongNodePathsLeaveRoomForTheOutputShape() {
        let node = LayerRow(index: 0, from: [], repeats: 1, params: 0,
                            module: "m.0.attn.qkv.conv.Conv_output_0_reshaped_for_attention.Softmax Softmax",
                            arguments: "", flops: 0, outputShape: [1, 2, 400, 400])
        let rows = [LayerRow(index: 10, from: [-1], repeats: 1, params: 1234, module: "model.10", arguments: "Conv Softmax",
                             flops: 0, outputShape: [1, 64, 20, 20], children: [node])]
        let cols = LayerColumns(width: 100, rows: rows)
        XCTAssertEqual(cols.module, LayerColumns.moduleCap)
        XCTAssertGreaterThanOrEqual(cols.shape, "[1, 2, 400, 400]".count, "the output column keeps its longest shape")
        let line = cols.line(index: "", from: "", n: "", params: "0", module: "  " + node.module, args: "", shape: "[1, 2, 400, 400]", ms: "")
        XCTAssertTrue(line.contains("  …") && line.contains("attention.Softmax Softmax") && line.contains("[1, 2, 400, 400]"), line)
        XCTAssertLessThanOrEqual(line.count, 100)
    }
}
