import XCTest
import Tensor
@testable import ModelZoo

final class UltralyticsSpecTests: XCTestCase {
    func testParsesYOLOv8ConfigWithScales() throws {
        let spec = try ModelSpec.load(path: Assets.url("models/yolov8.yaml").path)
        XCTAssertEqual(spec.nc, 80)
        XCTAssertEqual(spec.scales.map(\.name), ["n", "s", "m", "l", "x"])
        XCTAssertEqual(spec.backbone.count, 10)
        XCTAssertEqual(spec.head.count, 13)
        XCTAssertEqual(spec.head[1].from, [-1, 6])
        XCTAssertTrue(spec.head[1].fromIsList)
        XCTAssertEqual(spec.head[0].args, [.null, .int(2), .string("nearest")])
        let n = try spec.resolvedScale("n")
        XCTAssertEqual(n.width, 0.25)
        XCTAssertEqual(n.maxChannels, 1024)
        XCTAssertThrowsError(try spec.resolvedScale("q"))
    }

    func testSubstitutionAndDivisible() throws {
        let spec = try ModelSpec.load(path: Assets.url("models/rtdetr-l.yaml").path)
        XCTAssertEqual(UltralyticsGraph.substitute(.identifier("nc"), spec: spec), .int(80))
        XCTAssertEqual(UltralyticsGraph.substitute(LayerArg.literal("None"), spec: spec), .null)
        XCTAssertEqual(UltralyticsGraph.substitute(.string("nearest"), spec: spec), .string("nearest"))
        XCTAssertEqual(makeDivisible(64 * 0.25, 8), 16)
        XCTAssertEqual(makeDivisible(1024 * 0.75, 8), 768)
        XCTAssertEqual(makeDivisible(20, 8), 24)
    }

    func testMalformedRowsNameTheProblem() {
        let bad = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [4]]\n  - [x, 1, Conv, [4]]\nhead: []\n"
        XCTAssertThrowsError(try ModelSpec.parse(yaml: bad, file: "bad.yaml")) { e in
            XCTAssertTrue("\(e)".contains("bad.yaml"), "\(e)")
            XCTAssertTrue("\(e)".contains("row 1"), "\(e)")
        }
        XCTAssertThrowsError(try ModelSpec.parse(yaml: "nc: 2\nbackbone: []\n", file: "nohead.yaml")) { e in
            XCTAssertTrue("\(e)".contains("head"), "\(e)")
        }
        let unknown = "nc: 2\nbackbone:\n  - [-1, 1, NoSuchBlock, [4]]\nhead: []\n"
        XCTAssertThrowsError(try UltralyticsGraph(spec: try ModelSpec.parse(yaml: unknown, file: "u.yaml"),
                                                  weights: WeightStore(.initialise(seed: 0)))) { e in
            XCTAssertTrue("\(e)".contains("NoSuchBlock") && "\(e)".contains("u.yaml"), "\(e)")
        }
    }
}

final class UltralyticsActivationTests: XCTestCase {
    /// The in-place kernels (what conv2d fuses) against the activations' own definitions, NaN included.
    func testInPlaceActivationsMatchTheirDefinitions() {
        let values: [Float] = (0 ..< 1003).map { Float($0 - 500) * 0.05 } + [-90, 90, .nan]
        for act in [Activation.silu, .sigmoid, .relu, .identity] {
            guard let fused = act.fused else { return XCTFail("\(act) has no fused form") }
            var t = Tensor(shape: [1, values.count], data: values)
            applyActivation(&t, fused)
            let ref = act.apply(Tensor(shape: [1, values.count], data: values))
            for i in 0 ..< values.count {
                if values[i].isNaN { XCTAssertTrue(t.data[i].isNaN, "\(act) of NaN"); continue }
                XCTAssertEqual(t.data[i], ref.data[i], accuracy: 1e-6 * max(1, abs(ref.data[i])), "\(act) at \(values[i])")
            }
        }
        XCTAssertNil(Activation.gelu.fused)
        XCTAssertNil(Activation.hardswish.fused)
    }
}
