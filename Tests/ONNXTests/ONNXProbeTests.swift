import Foundation
import XCTest
@testable import ModelZoo
@testable import ONNX
import Tensor

/// Probes found in exported graphs from ops and shapes alone (ONNXProbes): attention maps from Softmax, gate maps
/// from Sigmoid, sampling points from GridSample levels with multi-scale deformable attention's weights.
final class ONNXProbeTests: XCTestCase {
    func traced(_ file: String, input: String) throws -> (TraceSnapshot, Tensor) {
        let net = try openModel(ONNXFixtures.path(file))
        let goldens = try SafetensorsFile(path: ONNXFixtures.path("goldens.safetensors"))
        let x = try goldens.tensor(input)
        let trace = Trace()
        _ = try net.forward(x, trace: trace, postprocess: PostprocessOptions())
        return (trace.snapshot, x)
    }

    /// YOLO11's C2PSA: the Softmax of /model.10/m/m.0/attn over the 2x2 keys of layer 10 (64x64 input) is an attention
    /// map [heads, 4, 4] with the 2x2 query grid; each query's weights sum to 1.
    func testC2PSASoftmaxIsAnAttentionMap() throws {
        let (snap, _) = try traced("yolo11-tiny.onnx", input: "yolo11-tiny.images")
        let probes = snap.probes(under: "model.10")
        let attn = probes.compactMap { p -> (Tensor, GridSize, GridSize)? in
            if case .attention(let t, let q, let k) = p.data { return (t, q, k) } else { return nil }
        }
        XCTAssertEqual(attn.count, 1, "\(probes.map(\.label))")
        let (t, q, k) = try XCTUnwrap(attn.first)
        XCTAssertEqual(q, GridSize(2, 2))
        XCTAssertEqual(k, GridSize(2, 2))
        XCTAssertEqual(Array(t.shape.dropFirst()), [4, 4])
        for row in 0 ..< t.count / 4 { XCTAssertEqual(t.data[row * 4 ..< row * 4 + 4].reduce(0, +), 1, accuracy: 1e-5) }
        // A token output [1, N, C] with N = 2·2 of layer 10's map would be laid back; layer 10's rows end in maps, so
        // its feature map is the row's own.
        XCTAssertTrue(probes.contains { if case .featureMap(let t) = $0.data { return t.shape == [64, 2, 2] } else { return false } })
        // The DFL softmax (over 16 bins on axis 1) is not one.
        XCTAssertTrue(snap.probes(under: "model.23").allSatisfy { if case .attention = $0.data { return false } else { return true } })
    }

    /// Tokens [1, N, C] from a map of H·W = N are laid back onto its grid ([C, H, W], token n at row n / W, column n % W).
    func testTokensAreLaidBackOntoTheirGrid() throws {
        let probes = ONNXProbes(nodes: [])
        let map = Tensor(shape: [1, 2, 2, 3], data: (0 ..< 12).map(Float.init))
        let trace = Trace()
        probes.observe(ONNXNode(name: "/m/Conv", opType: "Conv", domain: "", inputs: [], outputs: ["a"], attributes: [:]), [ONNXValue(map)], path: "m.Conv", trace: trace)
        // tokens[n, c] = 10 n + c for n in 0..<6 (the 2x3 grid), c in 0..<2.
        let tokens = Tensor(shape: [1, 6, 2], data: (0 ..< 6).flatMap { n in (0 ..< 2).map { Float(10 * n + $0) } })
        let (m, how) = try XCTUnwrap(probes.tokenMap(tokens, name: "t"))
        XCTAssertEqual(m.shape, [2, 2, 3])
        XCTAssertEqual(m.data, [0, 10, 20, 30, 40, 50, 1, 11, 21, 31, 41, 51])
        XCTAssertTrue(how.contains("matched by size"), "no graph was given: the fallback, labelled")
        XCTAssertNil(probes.tokenMap(Tensor(zeros: [1, 5, 2]), name: "t"), "no 5-cell grid was seen")
        // The graph's word wins: the same tokens traced to a 3x2 grid in column-major order (n = w·3 + h).
        let traced = ONNXProbes(nodes: [], grids: ["t": [ONNXGridAxes(kind: .flat(axis: 1, rowMajor: false), grid: GridSize(3, 2), source: "m")]])
        let (c, how2) = try XCTUnwrap(traced.tokenMap(tokens, name: "t"))
        XCTAssertEqual(c.shape, [2, 3, 2])
        // Cell (h, w) holds token w·3 + h.
        XCTAssertEqual(c.data, [0, 30, 10, 40, 20, 50, 1, 31, 11, 41, 21, 51])
        XCTAssertTrue(how2.contains("traced") && how2.contains("column-major"), how2)
    }

    /// two-grids-tiny: a 4x8 map (`wide`) and then an 8x4 map (`tall`) of 32 cells each. The tokens of `wide`,
    /// flattened row-major (`rows`, then the attention `block`) and column-major (`cols`), trace back through the
    /// graph to `wide`'s 4x8 grid and lie back onto it exactly; size matching would have taken the later 8x4 grid.
    /// The block's Softmax is attention over 4x8 keys and queries.
    func testTokensTraceToTheirMapNotTheLatestGridOfEqualSize() throws {
        let (snap, _) = try traced("two-grids-tiny.onnx", input: "two-grids-tiny.images")
        let wide = try XCTUnwrap(snap.steps.first { $0.path == "wide" }?.output)
        XCTAssertEqual(wide.shape, [1, 16, 4, 8])
        XCTAssertEqual(snap.steps.first { $0.path == "tall" }?.outputShape, [1, 16, 8, 4])
        func map(_ row: String) throws -> (Tensor, String) {
            let p = try XCTUnwrap(snap.probes(under: row).first { if case .featureMap = $0.data { return $0.path == row } else { return false } }, row)
            guard case .featureMap(let t) = p.data else { throw XCTSkip("unreachable") }
            return (t, p.label)
        }
        for row in ["rows", "cols"] {
            let (t, label) = try map(row)
            XCTAssertEqual(t.shape, [16, 4, 8], row)
            XCTAssertEqual(t.data, wide.data, "\(row): the tokens lie back exactly where the map had them")
            XCTAssertTrue(label.contains("traced through the graph"), label)
        }
        XCTAssertTrue(try map("cols").1.contains("column-major"))
        // Through LayerNorm, q/k/v, heads, Softmax, projection and the residual, the block's output is still 4x8.
        XCTAssertEqual(try map("block").0.shape, [16, 4, 8])
        let attn = snap.probes(under: "block").compactMap { p -> (Tensor, GridSize, GridSize, String)? in
            if case .attention(let t, let q, let k) = p.data { return (t, q, k, p.label) } else { return nil }
        }
        XCTAssertEqual(attn.count, 1)
        let (a, q, k, label) = try XCTUnwrap(attn.first)
        XCTAssertEqual(a.shape, [2, 32, 32])
        XCTAssertEqual(q, GridSize(4, 8))
        XCTAssertEqual(k, GridSize(4, 8))
        XCTAssertTrue(label.contains("traced"), label)
    }

    /// rtdetr-tiny (ultralytics' RT-DETR layout in miniature at 64x96): AIFI flattens the 2x3 stride-32 map
    /// (flatten(2).permute(0, 2, 1)) and its encoder layer's sub-module outputs ([1, 6, 32] tokens, [1, 6, 64] in the
    /// feed-forward) are laid back
    /// onto that 2x3 grid, traced through the graph; the decoder's tokens (three levels concatenated) are not a grid.
    func testAIFITokensTraceToTheStride32Map() throws {
        let (snap, _) = try traced("rtdetr-tiny.onnx", input: "rtdetr-tiny.images")
        let tokens = snap.probes(under: "model.6").compactMap { p -> (String, Tensor, String)? in
            if case .featureMap(let t) = p.data, p.path != "model.6" { return (p.path, t, p.label) } else { return nil }
        }
        XCTAssertFalse(tokens.isEmpty, "\(snap.probes(under: "model.6").map(\.path))")
        for (path, t, label) in tokens {
            XCTAssertEqual(Array(t.shape.dropFirst()), [2, 3], path)
            XCTAssertTrue([32, 64].contains(t.shape[0]), "d_model or the feed-forward width: \(path)")
            XCTAssertTrue(label.contains("traced through the graph"), label)
        }
        let attn = snap.probes(under: "model.6").compactMap { p -> GridSize? in
            if case .attention(_, _, let k) = p.data { return k } else { return nil }
        }
        XCTAssertEqual(attn, [GridSize(2, 3)])
        XCTAssertTrue(snap.probes(under: "model.8").allSatisfy { p in
            if case .featureMap(let t) = p.data { return t.rank == 3 && p.label.contains("feature map") || !p.label.contains("tokens") } else { return true }
        })
    }

    /// SimAM's sigmoid over [1, C, H, W] is a gate map under its node path, in (0, 1).
    func testSimAMSigmoidIsAGateMap() throws {
        let (snap, _) = try traced("yolov8-simam-tiny.onnx", input: "yolov8-simam-tiny.images")
        let gates = snap.probes(under: "model.4.simam").compactMap { p -> Tensor? in
            if case .contextMap(let t, false) = p.data { return t } else { return nil }
        }
        XCTAssertEqual(gates.count, 1)
        let g = try XCTUnwrap(gates.first)
        XCTAssertEqual(g.shape, [16, 8, 8])
        XCTAssertTrue(g.data.allSatisfy { $0 > 0 && $0 < 1 })
    }

    /// Deformable DETR's multi-scale deformable attention: each of the 2 encoder and 2 decoder attentions is one
    /// sampling probe of 4 levels (16x16 ... 2x2 at 128x128), 4 heads, 2 points (encoder) or 4 (decoder),
    /// weighted by its Softmax (summing to 1 per query and head); locations in [0, 1] where the grid was in [-1, 1].
    func testDeformableAttentionGridSamplesAreSamplingPoints() throws {
        let (snap, _) = try traced("deformable-detr-tiny.onnx", input: "deformable-detr-tiny.pixel_values")
        let sampling = snap.probes.compactMap { p -> (String, String, SamplingPoints)? in
            if case .sampling(let s) = p.data { return (p.path, p.label, s) } else { return nil }
        }
        XCTAssertEqual(sampling.count, 4, "\(sampling.map(\.0))")
        for (path, label, s) in sampling {
            XCTAssertEqual(s.levelShapes, [GridSize(16, 16), GridSize(8, 8), GridSize(4, 4), GridSize(2, 2)], path)
            XCTAssertEqual(s.heads, 4, path)
            XCTAssertTrue(label.contains("softmax weights"), label)
            let perHead = s.levels * s.points
            for i in stride(from: 0, to: s.weights.count, by: perHead) {
                XCTAssertEqual(s.weights.data[i ..< i + perHead].reduce(0, +), 1, accuracy: 1e-4, path)
            }
        }
        XCTAssertEqual(sampling.filter { $0.0.contains(".encoder.layers.") }.map { $0.2.queries }, [340, 340], "16·16 + 8·8 + 4·4 + 2·2 encoder queries")
        XCTAssertEqual(sampling.filter { $0.0.contains(".decoder.layers.") }.map { $0.2.queries }, [30, 30])
        // The wrapper's single top-level module is split into its parts as rows.
        let rows = try openModel(ONNXFixtures.path("deformable-detr-tiny.onnx")).layerTable(inputSize: GridSize(128, 128)).map(\.module)
        for part in ["model.model.backbone", "model.model.encoder", "model.model.decoder", "model.class_embed", "model.bbox_embed"] {
            XCTAssertTrue(rows.contains(part), "\(rows)")
        }
    }
}
