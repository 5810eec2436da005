import Foundation
import Tensor
import XCTest
@testable import ModelZoo

/// EigenCAM against pytorch-grad-cam (scripts/fixtures/gen_cam.py): its get_2d_projection and its whole EigenCAM
/// pipeline on seeded activations of odd shapes (one channel, fewer positions than channels, a constant map, a zero
/// map, NaNs, a near rank-one map), the per-box renormalisation of its object-detection tutorial, and EigenCAM of
/// layers of the trained tiny YOLOv8 of Tests/Fixtures/predict on ultralytics' own preprocessed input.
final class EigenCAMGoldenTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let cases = ["odd", "one_channel", "few_positions", "tall", "wide", "constant", "zero", "nan", "rank_one"]

    func golden() throws -> SafetensorsFile {
        try SafetensorsFile(path: Self.fixtures.appendingPathComponent("cam/golden.safetensors").path)
    }

    /// The largest |a - b| and the shapes' agreement.
    func maxDiff(_ a: EigenCAM.Map, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> Float {
        XCTAssertEqual([a.height, a.width], b.shape, "\(what): shape", file: file, line: line)
        guard a.values.count == b.count else { return .infinity }
        return zip(a.values, b.data).map { abs($0 - $1) }.max() ?? 0
    }

    /// Cases whose [H*W, C] matrix has min(H*W, C) > 25: there LAPACK's divide-and-conquer SVD (slasd*) gives the
    /// first singular vector a sign that differs between LAPACK releases (measured: OpenBLAS 0.3.21's LAPACK and numpy
    /// 2.4.6's scipy-openblas 0.3.31 disagree on 34 of 200 random float32 matrices of that size, on none of the
    /// smaller ones), so numpy's sign there is its build's, not a property of EigenCAM. Those cases are compared up to
    /// one global sign; every other case must have numpy's sign.
    static let signFreeCases: Set<String> = ["wide"]

    func testProjectionMatchesGet2DProjection() throws {
        let g = try golden()
        for name in Self.cases {
            let act = try g.tensor("random.\(name).activations")
            let want = try g.tensor("random.\(name).projection")
            var got = try EigenCAM.projection(act)
            let scale = max(want.data.map(abs).max() ?? 0, 1e-6)
            if Self.signFreeCases.contains(name), zip(got.values, want.data).map({ $0 * $1 }).reduce(0, +) < 0 {
                got.values = got.values.map { -$0 }
            }
            XCTAssertTrue(Self.signFreeCases.contains(name) || EigenCAM.dimensions(act).map { min($0.c, $0.h * $0.w) <= 25 } == true)
            let d = maxDiff(got, want, name)
            // The same sign as numpy's SVD gives (a sign flip would differ by up to twice the map's size).
            XCTAssertLessThanOrEqual(d, 1e-4 * max(scale, 1), "\(name): projection differs by \(d) (map scale \(scale))")
        }
    }

    func testCAMMatchesEigenCAM() throws {
        let g = try golden()
        for name in Self.cases {
            let act = try g.tensor("random.\(name).activations")
            let want = try g.tensor("random.\(name).cam")
            let size = GridSize(want.shape[0], want.shape[1])
            var projection = try EigenCAM.projection(act)
            if Self.signFreeCases.contains(name),
               zip(projection.values, try g.tensor("random.\(name).projection").data).map({ $0 * $1 }).reduce(0, +) < 0 {
                projection.values = projection.values.map { -$0 }
            } else {
                XCTAssertEqual(try EigenCAM.cam(act, inputSize: size), try EigenCAM.cam(projection: projection, inputSize: size))
            }
            let got = try EigenCAM.cam(projection: projection, inputSize: size)
            let d = maxDiff(got, want, name)
            XCTAssertLessThanOrEqual(d, 2e-4, "\(name): CAM differs by \(d)")
            XCTAssertTrue(got.values.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(name): CAM outside [0, 1]")
        }
    }

    func testRenormalizedInBoxesMatchesTheTutorial() throws {
        let g = try golden()
        for name in Self.cases {
            let cam = try g.tensor("random.\(name).cam")
            let boxes = try g.tensor("random.\(name).boxes")
            let want = try g.tensor("random.\(name).renormalized")
            let map = EigenCAM.Map(width: cam.shape[1], height: cam.shape[0], values: cam.data)
            let bs = (0 ..< boxes.shape[0]).map { i in
                EigenCAM.Box(x1: Int(boxes.data[4 * i]), y1: Int(boxes.data[4 * i + 1]), x2: Int(boxes.data[4 * i + 2]), y2: Int(boxes.data[4 * i + 3]))
            }
            let got = EigenCAM.renormalized(map, boxes: bs, scaling: .rows)
            let d = maxDiff(got, want, name)
            XCTAssertLessThanOrEqual(d, 1e-5, "\(name): renormalised CAM differs by \(d)")
        }
    }

    func testYOLOLayersMatchEigenCAM() throws {
        let g = try golden()
        let layers = try JSONDecoder().decode([Int].self, from: Data((g.metadata["yolo_layers"] ?? "").utf8))
        let camLayers = try JSONDecoder().decode([Int].self, from: Data((g.metadata["yolo_cam_layers"] ?? "").utf8))
        XCTAssertFalse(layers.isEmpty)
        let model = try openModel(Self.fixtures.appendingPathComponent("predict/yolo.pt").path)
        let picture = try ImageIO.load(path: Self.fixtures.appendingPathComponent("predict/yolo.wide.input.png").path)
        let input = Preprocess.tensor(picture, mean: nil, std: nil)
        let trace = Trace(keepTensors: true)
        _ = try model.forward(input, trace: trace)
        let steps = trace.snapshot.steps
        var worstProjection: Float = 0, worstCAM: Float = 0
        for layer in layers {
            let out = try XCTUnwrap(steps.first { $0.index == layer }?.output, "layer \(layer) recorded no output")
            let want = try g.tensor("yolo.wide.\(layer).projection")
            let got = try EigenCAM.projection(out)
            let scale = max(want.data.map(abs).max() ?? 0, 1)
            let d = maxDiff(got, want, "layer \(layer)") / scale
            XCTAssertLessThanOrEqual(d, 2e-3, "layer \(layer): projection differs by \(d) of its scale \(scale)")
            worstProjection = max(worstProjection, d)
            if camLayers.contains(layer) {
                let wantCAM = try g.tensor("yolo.wide.\(layer).cam")
                let cam = try EigenCAM.cam(out, inputSize: GridSize(input.shape[2], input.shape[3]))
                let dc = maxDiff(cam, wantCAM, "layer \(layer) CAM")
                XCTAssertLessThanOrEqual(dc, 2e-3, "layer \(layer): CAM differs by \(dc)")
                worstCAM = max(worstCAM, dc)
            }
        }
        print(String(format: "EIGENCAM yolo.wide: projection max |diff| %.2g of scale, CAM max |diff| %.2g", worstProjection, worstCAM))
    }

    // MARK: - Degenerate inputs and properties

    func testActivationSignCorrelatesWithTheChannelMeanAndOtherwiseIsLAPACKs() throws {
        let g = try golden()
        var flipped = 0
        for name in Self.cases {
            let act = try g.tensor("random.\(name).activations")
            let lapack = try EigenCAM.projection(act)
            let corrected = try EigenCAM.projection(act, sign: .activations)
            let (c, h, w) = try XCTUnwrap(EigenCAM.dimensions(act))
            let data = act.data.map { $0.isNaN ? 0 : $0 }
            var meanMap = [Float](repeating: 0, count: h * w)
            for ch in 0 ..< c { for i in 0 ..< h * w { meanMap[i] += data[ch * h * w + i] / Float(c) } }
            let centre = meanMap.reduce(0, +) / Float(h * w)
            let dot = zip(corrected.values, meanMap).map { $0 * ($1 - centre) }.reduce(0, +)
            XCTAssertGreaterThanOrEqual(dot, 0, "\(name): the corrected map anti-correlates with the channel mean")
            let same = lapack.values == corrected.values, negated = lapack.values.map { -$0 } == corrected.values
            XCTAssertTrue(same || negated, "\(name): only the sign may change")
            if !same { flipped += 1 }
        }
        // On these seeded maps LAPACK's sign already agrees with the activations (layer 2 of the trained YOLO does
        // not: CAMCLITests checks that the correction mirrors it).
        XCTAssertEqual(flipped, 0)
    }

    func testDegenerateMapsGiveZeroCAM() throws {
        for t in [Tensor(repeating: 3, shape: [1, 4, 5, 6]), Tensor(zeros: [1, 2, 3, 3]), Tensor(repeating: -1, shape: [1, 1, 4, 4])] {
            let cam = try EigenCAM.cam(t, inputSize: GridSize(8, 9))
            XCTAssertEqual(cam.values, [Float](repeating: 0, count: 72), "\(t.shape)")
        }
    }

    func testOneChannelProjectsOnTheCentredChannel() throws {
        // C = 1: the right-singular vector is ±1, so the projection is ± the centred channel.
        let v: [Float] = [1, 4, 2, 8, 5, 7]
        let p = try EigenCAM.projection(Tensor(shape: [1, 1, 2, 3], data: v))
        let mean = v.reduce(0, +) / 6
        let centred = v.map { $0 - mean }
        let same = zip(p.values, centred).allSatisfy { abs($0 - $1) < 1e-5 }
        let flipped = zip(p.values, centred).allSatisfy { abs($0 + $1) < 1e-5 }
        XCTAssertTrue(same || flipped, "\(p.values) vs ±\(centred)")
    }

    func testRankOneMapIsRecovered() throws {
        // a[c, y, x] = u[c] * s[y, x]: the centred projection is ±|u| * (s - mean(s)).
        let u: [Float] = [0.5, -1, 2], s: [Float] = [0, 1, 3, 0, 2, 6]
        var data: [Float] = []
        for uc in u { data += s.map { uc * $0 } }
        let p = try EigenCAM.projection(Tensor(shape: [3, 2, 3], data: data))
        let norm = u.map { $0 * $0 }.reduce(0, +).squareRoot()
        let ms = s.reduce(0, +) / 6
        let want = s.map { ($0 - ms) * norm }
        let sign: Float = p.values[5] > 0 ? 1 : -1
        for (a, b) in zip(p.values, want) { XCTAssertEqual(a, sign * b, accuracy: 1e-4) }
    }

    func testRejectsWhatIsNotAFeatureMap() {
        XCTAssertThrowsError(try EigenCAM.projection(Tensor(zeros: [2, 3]))) { e in
            XCTAssertTrue("\(e)".contains("[2, 3]"), "\(e)")
        }
        XCTAssertThrowsError(try EigenCAM.cam(Tensor(zeros: [1, 2, 3, 3]), inputSize: GridSize(0, 4)))
    }

    func testResizeMatchesHalfPixelBilinear() {
        // 2 -> 4: OpenCV gives 0, 0.25, 0.75, 1 for [0, 1] (half-pixel centres, clamped ends).
        let m = EigenCAM.resize(EigenCAM.Map(width: 2, height: 1, values: [0, 1]), width: 4, height: 1)
        XCTAssertEqual(m.values, [0, 0.25, 0.75, 1])
        let same = EigenCAM.resize(EigenCAM.Map(width: 3, height: 2, values: [1, 2, 3, 4, 5, 6]), width: 3, height: 2)
        XCTAssertEqual(same.values, [1, 2, 3, 4, 5, 6])
    }

    func testBoxScalingAsOneBox() {
        let cam = EigenCAM.Map(width: 4, height: 2, values: [0, 0.2, 0.4, 0, 0, 0.1, 0.8, 0])
        let whole = EigenCAM.renormalized(cam, boxes: [EigenCAM.Box(x1: 1, y1: 0, x2: 3, y2: 2)], scaling: .box)
        // Inside the box: (v - 0.1) / 0.7; outside zero.
        let want: [Float] = [0, 0.1 / 0.7, 0.3 / 0.7, 0, 0, 0, 1, 0]
        for (a, b) in zip(whole.values, want) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertEqual(EigenCAM.renormalized(cam, boxes: []).values, [Float](repeating: 0, count: 8))
    }
}
