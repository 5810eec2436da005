import Foundation
import Tensor
import XCTest
@testable import ModelZoo

/// The post-processing selections of the ultralytics heads against plain loops, at the real heads' sizes (8400 anchors
/// and 80 classes: the anchors are split across cores; 300 queries x 80 classes for RT-DETR's top-k), with scores on a
/// coarse grid so that ties are common.
final class PostprocessSelectionTests: XCTestCase {
    /// A [1, rows, cols] tensor: random boxes, scores that are multiples of 1/16 in [0, 1).
    func output(_ shape: [Int], seed: UInt64, scores: (Int, Int) -> Bool) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let rows = shape[1], cols = shape[2]
        var t = Tensor(zeros: shape)
        for r in 0 ..< rows {
            for c in 0 ..< cols {
                t.data[r * cols + c] = scores(r, c) ? Float(rng.next() % 16) / 16 : 10 + rng.nextFloat() * 600
            }
        }
        return t
    }

    func testYOLOBestClassAndNMSMatchPlainLoop() {
        let nc = 80, a = 8400
        let y = output([1, 4 + nc, a], seed: 5) { r, _ in r >= 4 }
        let names = (0 ..< nc).map { "c\($0)" }
        // NMS as the heads run it, then with nothing suppressed and no cap: every candidate anchor compared.
        for (confidence, iou, most): (Float, Float, Int) in [(0.5, 0.7, 300), (0.9, 1, 100_000)] {
            let got = UltralyticsModel.yoloPostprocess(y, classNames: names, confidence: confidence, iou: iou, maxDetections: most)
            var cands: [Detection] = []
            for j in 0 ..< a {
                var best: Float = -1, cls = 0
                for c in 0 ..< nc where y.data[(4 + c) * a + j] > best { best = y.data[(4 + c) * a + j]; cls = c }
                guard best > confidence else { continue }
                let cx = y.data[j], cy = y.data[a + j], w = y.data[2 * a + j], h = y.data[3 * a + j]
                cands.append(Detection(classIndex: cls, className: names[cls], score: best,
                                       x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, source: j))
            }
            XCTAssertGreaterThan(cands.count, 1000)
            let want = nonMaxSuppression(cands, iou: iou, maxDetections: most, maxCandidates: 30000)
            XCTAssertEqual(got.count, want.count, "confidence \(confidence)")
            XCTAssertEqual(got, want, "confidence \(confidence)")
        }
    }

    func testRTDETRTopKMatchesFullSort() {
        for (q, nc) in [(300, 80), (7, 3), (1, 1)] {
            let y = output([1, q, 4 + nc], seed: UInt64(q + nc)) { _, c in c >= 4 }
            var all: [(query: Int, cls: Int, score: Float)] = []
            for i in 0 ..< q { for c in 0 ..< nc { all.append((i, c, y.data[i * (4 + nc) + 4 + c])) } }
            all.sort { $0.score != $1.score ? $0.score > $1.score : ($0.query * nc + $0.cls) < ($1.query * nc + $1.cls) }
            let want = all.prefix(min(q, q * nc))
            let got = rtdetrTopK(y)
            XCTAssertEqual(got.count, want.count, "\(q) queries, \(nc) classes")
            for (g, w) in zip(got, want) {
                XCTAssertTrue(g.query == w.query && g.cls == w.cls && g.score == w.score, "\(q)x\(nc): \(g) vs \(w)")
            }
        }
    }
}
