import Foundation
import XCTest
@testable import ModelZoo
import Tensor

/// Golden tests of the attention modules against their reference implementations
/// (fixtures written by scripts/fixtures/gen_modules.py).
final class ModulesGoldenTests: XCTestCase {
    struct Fixture {
        let file: String
        let tensors: [String: Tensor]
        let meta: [String: String]

        init(_ name: String) throws {
            let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/modules/\(name).safetensors")
            file = url.path
            let f = try SafetensorsFile(path: url.path)
            tensors = try f.allTensors()
            meta = f.metadata
        }

        subscript(_ key: String) -> Tensor {
            guard let t = tensors[key] else { fatalError("\(file): no tensor '\(key)'") }
            return t
        }

        /// A strict weight store over the `w.` tensors.
        func store() -> WeightStore {
            var w: [String: Tensor] = [:]
            for (k, v) in tensors where k.hasPrefix("w.") { w[String(k.dropFirst(2))] = v }
            return WeightStore(.checkpoint(name: file, tensors: w))
        }

        func int(_ key: String) -> Int { Int(meta[key] ?? "") ?? -1 }
        var thopFlops: Double { 2 * (Double(meta["thop_macs"] ?? "") ?? -1) }
    }

    /// Max abs error within 1e-3 of the expected tensor's max magnitude; reports where it differs.
    func assertClose(_ got: Tensor, _ want: Tensor, _ what: String, rel: Float = 1e-3, file: StaticString = #filePath, line: UInt = #line) {
        guard got.count == want.count, got.shape.filter({ $0 != 1 }) == want.shape.filter({ $0 != 1 }) else {
            XCTFail("\(what): shape \(got.shape), expected \(want.shape)", file: file, line: line)
            return
        }
        let mag = want.data.reduce(Float(0)) { max($0, Swift.abs($1)) }
        var worst: Float = 0, at = 0
        for i in 0 ..< want.count {
            let e = Swift.abs(got.data[i] - want.data[i])
            if !(e <= worst) { worst = e; at = i }
        }
        XCTAssert(worst <= rel * max(mag, 1e-6), "\(what): max abs error \(worst) at flat index \(at) (got \(got.data[at]), expected \(want.data[at])), max magnitude \(mag)", file: file, line: line)
    }

    func probe(_ snap: TraceSnapshot, _ path: String) -> ProbeData? { snap.probes.first { $0.path == path }?.data }

    func probeTensor(_ snap: TraceSnapshot, _ path: String) -> Tensor? {
        guard let d = probe(snap, path) else { return nil }
        switch d {
        case .featureMap(let t), .contextMap(let t, _), .channelWeights(let t), .spatialWeights(let t), .tensor(let t), .attention(let t, _, _): return t
        default: return nil
        }
    }

    func checkProbes(_ fx: Fixture, _ snap: TraceSnapshot, prefix: String, file: StaticString = #filePath, line: UInt = #line) {
        let keys = fx.tensors.keys.filter { $0.hasPrefix("probe.") }.sorted()
        XCTAssertFalse(keys.isEmpty)
        for k in keys {
            let path = prefix + "." + k.dropFirst("probe.".count)
            if let t = probeTensor(snap, path) ?? snap.probeTensors[path] {
                assertClose(t, fx[k], "\(fx.file) probe \(path)", file: file, line: line)
            } else {
                XCTFail("\(fx.file): no probe recorded at \(path) (have \(snap.probes.map(\.path)))", file: file, line: line)
            }
        }
    }

    func run(_ layer: some UnaryModule, _ x: Tensor, path: String) throws -> (Tensor, TraceSnapshot) {
        let trace = Trace()
        let y = try layer.forward(x, ForwardContext(trace: trace, path: path))
        return (y, trace.snapshot)
    }

    func testNAM() throws {
        let fx = try Fixture("nam")
        let store = fx.store()
        let m = try NAM(store.root, channels: 16)
        try store.finish()
        let (y, snap) = try run(m, fx["input"], path: "m")
        assertClose(y, fx["output"], "nam output")
        checkProbes(fx, snap, prefix: "m")
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(inputShape: fx["input"].shape), fx.thopFlops)
    }

    func testContextAggregation() throws {
        let fx = try Fixture("context_aggregation")
        let store = fx.store()
        let m = try ContextAggregation(store.root, channels: 16, reduction: 2)
        try store.finish()
        let (y, snap) = try run(m, fx["input"], path: "m")
        assertClose(y, fx["output"], "context aggregation output")
        checkProbes(fx, snap, prefix: "m")
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(inputShape: fx["input"].shape), fx.thopFlops)
    }

    func testContextAggregationDefaultInitIsIdentity() throws {
        let store = WeightStore(.initialise(seed: 7))
        let m = try ContextAggregation(store.root, channels: 8, reduction: 1)
        var rng = SplitMix64(seed: 1)
        let x = Tensor(shape: [1, 8, 5, 6], data: (0 ..< 240).map { _ in rng.nextNormal() })
        let (y, _) = try run(m, x, path: "m")
        XCTAssertEqual(y, x, "m is zero-initialised, so the block starts as the identity")
        XCTAssertTrue(m.a.module.weight.data.contains { $0 != 0 })
    }

    func testCoTAttention() throws {
        let fx = try Fixture("cot_attention")
        let store = fx.store()
        let m = try CoTAttention(store.root, channels: 16, kernel: 3)
        try store.finish()
        let (y, snap) = try run(m, fx["input"], path: "m")
        assertClose(y, fx["output"], "CoTAttention output")
        checkProbes(fx, snap, prefix: "m")
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(inputShape: fx["input"].shape), fx.thopFlops)
    }

    func testCotLayer() throws {
        let fx = try Fixture("cot_layer")
        let store = fx.store()
        let m = try CotLayer(store.root, channels: 16, kernel: 3)
        try store.finish()
        let (y, snap) = try run(m, fx["input"], path: "m")
        assertClose(y, fx["output"], "CotLayer output")
        checkProbes(fx, snap, prefix: "m")
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(inputShape: fx["input"].shape), fx.thopFlops)
    }

    func testAIFI() throws {
        let fx = try Fixture("aifi")
        let store = fx.store()
        let m = try AIFI(store.root, channels: 32, hidden: 64, heads: 8)
        try store.finish()
        assertClose(AIFI.positionEmbedding(height: 6, width: 5, channels: 32), fx["pos_embed"], "2-D sin-cos position embedding", rel: 1e-5)
        let (y, snap) = try run(m, fx["input"], path: "m")
        assertClose(y, fx["output"], "AIFI output")
        checkProbes(fx, snap, prefix: "m")
        if case .attention(_, let q, let k)? = probe(snap, "m.attention") {
            XCTAssertEqual(q, GridSize(6, 5))
            XCTAssertEqual(k, GridSize(6, 5))
        } else { XCTFail("AIFI attention probe is not dense attention") }
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(inputShape: fx["input"].shape), fx.thopFlops)
    }

    func testMSDeformAttn() throws {
        let fx = try Fixture("msdeformattn")
        let store = fx.store()
        let m = try MSDeformAttention(store.root, dModel: 32, levels: 3, heads: 4, points: 2)
        try store.finish()
        let shapes = [GridSize(6, 5), GridSize(3, 3), GridSize(2, 1)]
        for tag in ["2", "4"] {
            let trace = Trace()
            let y = try Child("attn", m)(query: fx["query"], reference: fx["reference" + tag], value: fx["value"], levelShapes: shapes,
                                         ForwardContext(trace: trace, path: "")).output
            assertClose(y, fx["output" + tag], "MSDeformAttn output (\(tag)-d reference)")
            guard case .sampling(let s)? = probe(trace.snapshot, "attn") else { XCTFail("no sampling probe"); continue }
            assertClose(s.locations, fx["locations" + tag], "sampling locations (\(tag)-d)")
            assertClose(s.weights, fx["weights" + tag], "attention weights (\(tag)-d)")
            XCTAssertEqual(s.levelShapes, shapes)
            XCTAssertEqual(s.locations.shape, [7, 4, 3, 2, 2])
        }
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(queryShape: fx["query"].shape, referenceShape: fx["reference4"].shape, valueShape: fx["value"].shape,
                               levelShapes: shapes), fx.thopFlops)
        // default init: the reference's grid init of the offsets
        let d = try MSDeformAttention(WeightStore(.initialise(seed: 3)).root, dModel: 32, levels: 3, heads: 4, points: 2)
        assertClose(d.samplingOffsets.module.bias!, fx["grid_init"], "grid init", rel: 1e-6)
        XCTAssertTrue(d.samplingOffsets.module.weight.data.allSatisfy { $0 == 0 })
        XCTAssertTrue(d.attentionWeights.module.weight.data.allSatisfy { $0 == 0 })
    }

    /// RT-DETRv2's and D-FINE's variants against transformers' classes: offset scale, per-level point counts, no
    /// projections (D-FINE), discrete sampling, the points-scale buffer read from the weights.
    func testMSDeformAttentionV2AndDFine() throws {
        let shapes = [GridSize(6, 5), GridSize(3, 3), GridSize(2, 1)]
        for (name, points, scale, projections, key) in [("msdeform_v2", [2, 2, 2], Float(0.7), true, "n_points_scale"),
                                                         ("msdeform_dfine", [3, 2, 1], Float(0.5), false, "num_points_scale")] {
            let fx = try Fixture(name)
            let store = fx.store()
            var outputs: [String: Tensor] = [:]
            for method in [MSDeformAttention.SamplingMethod.bilinear, .discrete] {
                let m = try MSDeformAttention(store.root, dModel: 32, heads: 4, pointsPerLevel: points, offsetScale: scale, method: method,
                                              valueProjection: projections, outputProjection: projections, pointsScaleKey: key)
                XCTAssertEqual(m.parameterCount, fx.int("params"), name)
                let trace = Trace()
                let out = try Child("attn", m)(query: fx["query"], reference: fx["reference"], value: fx["value"], levelShapes: shapes,
                                               ForwardContext(trace: trace, path: ""))
                let tp = points.reduce(0, +)
                assertClose(out.output, fx["output_" + method.rawValue], "\(name) output (\(method))")
                assertClose(out.weights.reshaped([1, 7, 4, tp]), fx["attention_weights"], "\(name) attention weights")
                assertClose(out.locations.reshaped([1, 7, 4, tp, 2]), fx["locations"], "\(name) sampling locations", rel: 1e-5)
                outputs[method.rawValue] = out.output
                guard case .sampling(let s)? = probe(trace.snapshot, "attn") else { XCTFail("\(name): no sampling probe"); continue }
                let mp = points.max()!
                XCTAssertEqual(s.locations.shape, [7, 4, 3, mp, 2])
                XCTAssertEqual(s.weights.shape, [7, 4, 3, mp])
                // a level's unused slots: weight 0, at the reference point
                for (l, p) in points.enumerated() where p < mp {
                    XCTAssertEqual(s.weights[3, 1, l, mp - 1], 0)
                    XCTAssertEqual(s.locations[3, 1, l, mp - 1, 0], fx["reference"][0, 3, 0])
                }
                XCTAssertEqual(s.weights[3, 1, 0, 0], fx["attention_weights"][0, 3, 1, 0], accuracy: 1e-6)
                // FLOPs: the linears (value_proj over the 41 value tokens, the others over the 7 queries), no sampling
                let linears = 2.0 * (7 * 32 * Double(4 * tp * 3)) + (projections ? 2.0 * (41 * 32 * 32 + 7 * 32 * 32) : 0)
                XCTAssertEqual(m.flops(queryShape: [1, 7, 32], referenceShape: [1, 7, 4], valueShape: [1, 41, 32], levelShapes: shapes), linears)
            }
            try store.finish()
            XCTAssertNotEqual(outputs["default"], outputs["discrete"], "\(name): the two sampling methods should differ")
        }
    }

    func testMSDeformAttnLayer() throws {
        let fx = try Fixture("msdeformattn_layer")
        let store = fx.store()
        let m = try MSDeformAttnLayer(store.root, dModel: 16, levels: 3, heads: 4, points: 2)
        try store.finish()
        let (y, snap) = try run(m, fx["input"], path: "m")
        assertClose(y, fx["output"], "MSDeformAttn layer output")
        guard case .sampling(let s)? = probe(snap, "m.sampling") else { return XCTFail("no sampling probe") }
        assertClose(s.locations, fx["locations"], "pixel-query sampling locations")
        assertClose(s.weights, fx["weights"], "pixel-query attention weights")
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(inputShape: fx["input"].shape), fx.thopFlops)
        XCTAssertThrowsError(try m.forward(Tensor(zeros: [1, 16, 3, 3]), ForwardContext(trace: nil, path: "m")))
        XCTAssertThrowsError(try m.forward(Tensor(zeros: [1, 8, 8, 8]), ForwardContext(trace: nil, path: "m")))
    }

    func testRTDETRDecoder() throws {
        let fx = try Fixture("rtdetr_decoder")
        let store = fx.store()
        let m = try RTDETRDecoder(store.root, nc: 5, channels: [16, 24, 32], hidden: 32, queries: 20, points: 2, heads: 4, layers: 3, ffn: 64)
        try store.finish()
        let xs = [fx["input0"], fx["input1"], fx["input2"]]
        let trace = Trace()
        let y = try m.forward(xs, ForwardContext(trace: trace, path: "model.9")).main
        XCTAssertEqual(y.shape, [1, 20, 9])
        assertClose(y, fx["output"], "RTDETRDecoder output [1, nq, 4 + nc]")
        checkProbes(fx, trace.snapshot, prefix: "model.9")
        XCTAssertEqual(m.parameterCount, fx.int("params"))
        XCTAssertEqual(m.flops(inputShapes: xs.map(\.shape)), fx.thopFlops)
        // The value projections of several layers in one product or in groups (2 + 1, 1 + 1 + 1, as at 640x640 where
        // six layers' would outgrow the heap's largest block): the same numbers (to rounding: OpenBLAS, without the
        // AVX-512 kernels, sums a product in an order that depends on its width).
        let tokens = xs.reduce(0) { $0 + $1.shape[2] * $1.shape[3] }
        for group in [1, 2] {
            var split = m
            split.valueBlockBytes = group * tokens * 32 * MemoryLayout<Float>.size
            let z = try split.forward(xs, ForwardContext(trace: nil, path: "model.9")).main
            assertClose(z, y, "value products of \(group) layers", rel: 1e-5)
        }
    }

    func testStrictLoadingNamesMissingAndUnusedKeys() throws {
        let fx = try Fixture("nam")
        var w: [String: Tensor] = [:]
        for (k, v) in fx.tensors where k.hasPrefix("w.") { w[String(k.dropFirst(2))] = v }
        w["Channel_Att.bn2.extra"] = Tensor(zeros: [3])
        w.removeValue(forKey: "Channel_Att.bn2.running_var")
        let store = WeightStore(.checkpoint(name: "nam.pt", tensors: w))
        _ = try NAM(store.root, channels: 16)
        XCTAssertThrowsError(try store.finish()) { e in
            let text = String(describing: e)
            XCTAssert(text.contains("Channel_Att.bn2.running_var") && text.contains("Channel_Att.bn2.extra") && text.contains("nam.pt"), text)
        }
    }

    func testBadShapesAreErrorsNotCrashes() throws {
        let root = WeightStore(.initialise(seed: 1)).root
        XCTAssertThrowsError(try CoTAttention(root, channels: 10))
        XCTAssertThrowsError(try CotLayer(root, channels: 12))
        XCTAssertThrowsError(try AIFI(root, channels: 30))
        let nam = try NAM(root, channels: 4)
        XCTAssertThrowsError(try nam.forward(Tensor(zeros: [1, 5, 2, 2]), ForwardContext(trace: nil, path: "")))
        XCTAssertThrowsError(try nam.forward(Tensor(zeros: [4, 2, 2]), ForwardContext(trace: nil, path: "")))
    }
}
