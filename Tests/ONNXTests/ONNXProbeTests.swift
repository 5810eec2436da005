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
        let m = try XCTUnwrap(probes.tokenMap(tokens))
        XCTAssertEqual(m.shape, [2, 2, 3])
        XCTAssertEqual(m.data, [0, 10, 20, 30, 40, 50, 1, 11, 21, 31, 41, 51])
        XCTAssertNil(probes.tokenMap(Tensor(zeros: [1, 5, 2])), "no 5-cell grid was seen")
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
