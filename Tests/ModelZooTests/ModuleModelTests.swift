import Foundation
import XCTest
@testable import ModelZoo
import Tensor

/// The modules alone (catalogue `kind: module`) and their catalogue entries.
final class ModuleModelTests: XCTestCase {
    func image(_ size: Int, seed: UInt64 = 3) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: [1, 3, size, size], data: (0 ..< 3 * size * size).map { _ in rng.nextFloat() })
    }

    func testEveryModuleRunsOnAnImageAndOnAFeatureMap() throws {
        for spec in ModuleModel.specs {
            let m = try ModuleModel(id: spec.id)
            XCTAssertEqual(m.family, "Module")
            XCTAssertEqual(m.inputChannels, spec.channels)
            let side = spec.stride * 8
            let trace = Trace()
            let out = try m.forward(image(side), trace: trace)
            let snap = trace.snapshot
            XCTAssertEqual(out.output.shape, [1, spec.channels, 8, 8], spec.id)
            XCTAssertEqual(snap.steps.map(\.path), ["stem", "module"], spec.id)
            XCTAssertEqual(snap.steps[1].params, m.parameterCount)
            XCTAssertFalse(out.output.data.contains { !$0.isFinite }, spec.id)
            // probes under the module's path beyond its output map
            let own = snap.probes(under: "module").filter { $0.path != "module" }
            XCTAssertFalse(own.isEmpty, "\(spec.id) recorded no probes")
            // the derived feature map is standardised per channel
            let f = out.extras["features"]!
            let c0 = Array(f.data[0 ..< 64])
            XCTAssertEqual(c0.reduce(0, +) / 64, 0, accuracy: 1e-4)
            // a feature map goes straight in
            let fm = m.sampleFeatureMap(size: 8, seed: 1)
            let t2 = Trace()
            let out2 = try m.forward(fm, trace: t2)
            XCTAssertEqual(out2.output.shape, fm.shape)
            XCTAssertEqual(t2.snapshot.steps.map(\.path), ["module"])
            // the layer table agrees with the run
            let rows = m.layerTable(inputSize: GridSize(side, side))
            XCTAssertEqual(rows.last?.outputShape, [1, spec.channels, 8, 8])
            XCTAssertEqual(rows.last?.params, m.parameterCount)
            XCTAssertEqual(rows.last?.flops, m.module.flops(inputShape: [1, spec.channels, 8, 8]))
        }
    }

    func testProbeKindsPerModule() throws {
        func kinds(_ id: String) throws -> [String: ProbeData] {
            let m = try ModuleModel(id: id)
            let t = Trace()
            _ = try m.forward(m.sampleFeatureMap(size: 8), trace: t)
            var d: [String: ProbeData] = [:]
            for p in t.snapshot.probes { d[p.path] = p.data }
            return d
        }
        let nam = try kinds("nam")
        guard case .channelWeights(let w)? = nam["module.channel_weights"] else { return XCTFail("NAM channel weights") }
        XCTAssertEqual(w.shape, [64])
        XCTAssertEqual(w.data.reduce(0, +), 1, accuracy: 1e-5)
        let ca = try kinds("context-aggregation")
        guard case .contextMap(let k, _)? = ca["module.context_weights"] else { return XCTFail("CA context weights") }
        XCTAssertEqual(k.shape, [1, 8, 8])
        XCTAssertEqual(k.data.reduce(0, +), 1, accuracy: 1e-4)
        let aifi = try kinds("aifi")
        guard case .attention(let a, let q, _)? = aifi["module.attention"] else { return XCTFail("AIFI attention") }
        XCTAssertEqual(a.shape, [8, 64, 64])
        XCTAssertEqual(q, GridSize(8, 8))
        let ms = try kinds("msdeformattn")
        guard case .sampling(let s)? = ms["module.sampling"] else { return XCTFail("MSDeformAttn sampling") }
        XCTAssertEqual(s.levelShapes, [GridSize(8, 8), GridSize(4, 4), GridSize(2, 2), GridSize(1, 1)])
        XCTAssertEqual(s.locations.shape, [85, 8, 4, 4, 2])
        // default grid init, uniform weights: head 0 points lie to the right of the reference point
        XCTAssertEqual(s.weights.data[0], 1.0 / 16, accuracy: 1e-6)
        let cot = try kinds("cotattention")
        XCTAssertNotNil(cot["module.k1"]); XCTAssertNotNil(cot["module.k2"]); XCTAssertNotNil(cot["module.attention_mean"])
        let cl = try kinds("cotlayer")
        XCTAssertNotNil(cl["module.attention"]); XCTAssertNotNil(cl["module.radix"])
    }

    func testStrictWeightsForAModule() throws {
        let store = WeightStore(.checkpoint(name: "nam-weights.safetensors", tensors: ["Channel_Att.bn2.weight": Tensor(zeros: [64])]))
        _ = try ModuleModel(id: "nam", weights: store)
        XCTAssertThrowsError(try store.finish()) { e in
            XCTAssert(String(describing: e).contains("Channel_Att.bn2.running_mean"))
        }
        XCTAssertThrowsError(try ModuleModel(id: "no-such-module"))
        let m = try ModuleModel(id: "cotattention")
        XCTAssertThrowsError(try m.forward(Tensor(zeros: [1, 5, 8, 8]), trace: nil))
    }

    func testCatalogueEntries() throws {
        let cat = try Catalogue.load()
        let modules = cat.entries.filter { $0.kind == "module" }
        for spec in ModuleModel.specs {
            guard let e = cat.entry(spec.id) else { XCTFail("no catalogue entry for module \(spec.id)"); continue }
            XCTAssertEqual(e.kind, "module")
            XCTAssertEqual(e.config, "module:\(spec.id)")
            XCTAssertNotNil(e.insert, "\(spec.id): where tutorials insert it")
            XCTAssertNotNil(e.paper)
        }
        XCTAssertGreaterThanOrEqual(modules.count, ModuleModel.specs.count)
        for id in ["rtdetr-l-cot", "rtdetr-resnet50-cot", "rtdetr-l-nam", "rtdetr-l-hgnam", "yolov8n-ca", "yolov8s-ca"] {
            guard let e = cat.entry(id) else { XCTFail("no catalogue entry \(id)"); continue }
            XCTAssertEqual(e.kind, "detector")
            XCTAssertTrue(FileManager.default.fileExists(atPath: Assets.url(e.config).path), "\(id): \(e.config) missing")
            XCTAssertNoThrow(try ModelSpec.load(path: Assets.url(e.config).path), id)
        }
        XCTAssertFalse(cat.search("context aggregation").isEmpty)
    }
}
