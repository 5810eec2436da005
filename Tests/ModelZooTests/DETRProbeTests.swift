import Foundation
import XCTest
@testable import ModelZoo
import Tensor

/// The DETR views' probes hold the reference's numbers: the query selection (which encoder tokens became queries,
/// their initial boxes and scores) and each decoder layer's refined boxes with that layer's best-class score, checked
/// against the goldens transformers made (Tests/Fixtures/hfdetr/rt-detr, Tests/Fixtures/deformable/two-stage).
final class DETRProbeTests: XCTestCase {
    func run(_ dir: String) throws -> ([String: Tensor], [Probe]) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/" + dir)
        let want = try SafetensorsFile(path: root.appendingPathComponent("expected.safetensors").path).allTensors()
        let model = try openModel(root.path)
        let trace = Trace(keepTensors: true)
        _ = try model.forward(want["pixel_values"]!, trace: trace, postprocess: PostprocessOptions(confidence: 0))
        return (want, trace.snapshot.probes)
    }

    func probe(_ probes: [Probe], _ path: String) throws -> ProbeData {
        try XCTUnwrap(probes.first { $0.path == path }?.data, "no probe \(path); there are: \(probes.map(\.path).joined(separator: ", "))")
    }

    func close(_ name: String, _ got: Tensor?, _ want: Tensor) {
        XCTAssertNoThrow(try DeformableDETRGoldenTests.compare(name, got, want, rel: 1e-4))
    }

    /// sigmoid(max over the last axis) of [1, N, C] rows, optionally of chosen rows only.
    func bestScore(_ logits: Tensor, rows: [Int]? = nil) -> Tensor {
        let c = logits.shape.last!, n = logits.count / c
        let chosen = rows ?? Array(0 ..< n)
        return Tensor(shape: [chosen.count], data: chosen.map { r in 1 / (1 + Foundation.exp(-logits.data[r * c ..< (r + 1) * c].max()!)) })
    }

    func testHFRTDETRQuerySelectionAndRefinedBoxesAreTransformers() throws {
        let (want, probes) = try run("hfdetr/rt-detr")
        guard case .querySelection(let sel) = try probe(probes, "model.query_selection") else { return XCTFail("query selection expected") }
        XCTAssertEqual(sel.indices, want["enc_topk_indices"]!.data.map { Int($0) })
        XCTAssertEqual(sel.levelShapes, [GridSize(8, 12), GridSize(4, 6), GridSize(2, 3)])
        let initial = sigmoid(want["init_reference_points"]!.reshaped([12, 4]))
        close("query_selection.boxes", sel.boxes, initial)
        close("query_selection.scores", sel.scores, bestScore(want["enc_outputs_class"]!, rows: sel.indices))
        guard case .refinedBoxes(let first) = try probe(probes, "model.boxes") else { return XCTFail("initial boxes expected") }
        XCTAssertEqual(first.layer, -1)
        close("boxes[-1]", first.boxes, initial)
        let boxes = want["intermediate_reference_points"]!, logits = want["intermediate_logits"]!
        for l in 0 ..< 2 {
            guard case .refinedBoxes(let r) = try probe(probes, "model.decoder.layers.\(l).boxes") else { return XCTFail("refined boxes expected") }
            XCTAssertEqual(r.layer, l)
            close("boxes[\(l)]", r.boxes, slice(boxes, axis: 1, range: l ..< l + 1))
            close("scores[\(l)]", r.scores, bestScore(slice(logits, axis: 1, range: l ..< l + 1)))
        }
    }

    func testDeformableTwoStageProposalsAndRefinedBoxesAreTransformers() throws {
        let (want, probes) = try run("deformable/two-stage")
        guard case .querySelection(let sel) = try probe(probes, "two_stage.query_selection") else { return XCTFail("query selection expected") }
        // transformers: topk over the first class logit of the encoder's proposals.
        let cls = want["enc_outputs_class"]!, c = cls.shape[2], s = cls.shape[1]
        let first = (0 ..< s).map { cls.data[$0 * c] }
        let order = (0 ..< s).sorted { first[$0] > first[$1] }.prefix(30)
        XCTAssertEqual(sel.indices, Array(order))
        XCTAssertEqual(sel.levelShapes.reduce(0) { $0 + $1.count }, s)
        close("two_stage.scores", sel.scores, Tensor(shape: [30], data: order.map { 1 / (1 + Foundation.exp(-first[$0])) }))
        close("two_stage.boxes", sel.boxes, want["init_reference_points"]!)
        guard case .refinedBoxes(let initial) = try probe(probes, "two_stage.init_reference_points") else { return XCTFail("initial boxes expected") }
        XCTAssertEqual(initial.layer, -1)
        let inter = want["decoder.intermediate_reference_points"]!
        for l in 0 ..< 2 {
            guard case .refinedBoxes(let r) = try probe(probes, "decoder.layers.\(l).boxes") else { return XCTFail("refined boxes expected") }
            close("boxes[\(l)]", r.boxes, slice(inter, axis: 1, range: l ..< l + 1))
        }
        // The last layer's class head is the model's: its scores are those of the output logits.
        guard case .refinedBoxes(let last) = try probe(probes, "decoder.layers.1.boxes") else { return XCTFail("refined boxes expected") }
        close("scores[1]", last.scores, bestScore(want["logits"]!))
    }
}
