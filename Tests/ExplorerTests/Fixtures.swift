import Foundation
import XCTest
@testable import ModelZoo
import Tensor
@testable import Explorer

/// Small traces built here to drive the views (every kind of visual), and snapshot helpers.
enum Fixtures {
    static func entry(_ id: String, family: String, kind: String = "detector", summary: String = "A test entry.") -> CatalogueEntry {
        CatalogueEntry(id: id, title: id.uppercased(), family: family, kind: kind, scale: nil, summary: summary, paper: nil,
                       code: nil, config: "models/fixture-\(id).yaml", inputSize: 64, probes: [], insert: kind == "module" ? "after the backbone" : nil,
                       reference: nil)
    }

    static var catalogue: Catalogue {
        Catalogue(entries: [
            entry("rtdetr-l", family: "RT-DETR", summary: "Real-time DETR, large."),
            entry("rtdetr-l-cot", family: "RT-DETR", summary: "RT-DETR with CoT attention."),
            entry("yolov8n", family: "YOLOv8", summary: "The smallest YOLOv8."),
            entry("yolov8s", family: "YOLOv8", summary: "YOLOv8 small."),
            entry("deformable-detr", family: "Deformable DETR", summary: "Deformable attention."),
            entry("nam", family: "Modules", kind: "module", summary: "Normalisation-based attention."),
        ])
    }

    /// A tensor whose values are f(index).
    static func tensor(_ shape: [Int], _ f: (Int) -> Float) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, data: (0 ..< n).map(f))
    }

    static let rows: [LayerRow] = [
        LayerRow(index: 0, from: [-1], repeats: 1, params: 464, module: "Conv", arguments: "[3, 16, 3, 2]", flops: 1e6, outputShape: [1, 4, 8, 8],
                 children: [LayerRow(index: 0, from: [-1], repeats: 1, params: 432, module: "conv Conv2d", arguments: "", flops: 0, outputShape: [1, 4, 8, 8])]),
        LayerRow(index: 1, from: [-1], repeats: 1, params: 1000, module: "AIFI", arguments: "[4, 2]", flops: 2e6, outputShape: [1, 4, 4, 4]),
        LayerRow(index: 2, from: [-1], repeats: 1, params: 8, module: "NAM", arguments: "[4]", flops: 1e3, outputShape: [1, 4, 4, 4]),
        LayerRow(index: 3, from: [1, 2], repeats: 1, params: 5000, module: "RTDETRDecoder", arguments: "[80]", flops: 3e6, outputShape: [1, 10, 6]),
    ]

    /// Sampling points with exact, checkable positions: query q, head h, level l, point p sits at
    /// x = (p + 1) / (P + 1) shifted by head, y = (q + 0.5) / Q.
    static var sampling: SamplingPoints {
        let Q = 10, H = 2, L = 2, P = 2
        var loc: [Float] = []
        var w: [Float] = []
        for q in 0 ..< Q {
            for h in 0 ..< H {
                for l in 0 ..< L {
                    for p in 0 ..< P {
                        loc.append(Float(p + 1) / Float(P + 2) + Float(h) * 0.25)
                        loc.append((Float(q) + 0.5) / Float(Q) * 0.5 + Float(l) * 0.4)
                        w.append(Float(1 + p + l * P) / 10)
                    }
                }
            }
        }
        let ref = tensor([Q, 2]) { i in i % 2 == 0 ? 0.5 : (Float(i / 2) + 0.5) / Float(Q) }
        return SamplingPoints(referencePoints: ref, locations: Tensor(shape: [Q, H, L, P, 2], data: loc),
                              weights: Tensor(shape: [Q, H, L, P], data: w), levelShapes: [GridSize(8, 8), GridSize(4, 4)])
    }

    static let detections = [
        Detection(classIndex: 0, className: "person", score: 0.9, x1: 8, y1: 8, x2: 40, y2: 56, source: 3),
        Detection(classIndex: 2, className: "car", score: 0.6, x1: 36, y1: 20, x2: 60, y2: 44, source: 7),
    ]

    static var trace: TraceSnapshot {
        let conv = tensor([1, 4, 8, 8]) { Float($0 % 64) / 63 * Float($0 / 64 + 1) }
        let aifi = tensor([1, 4, 4, 4]) { sin(Float($0)) }
        let nam = tensor([1, 4, 4, 4]) { Float($0) / 64 }
        let head = tensor([1, 10, 6]) { Float($0) / 60 }
        var attn = [Float](repeating: 0, count: 2 * 16 * 16)
        for h in 0 ..< 2 { for q in 0 ..< 16 { attn[(h * 16 + q) * 16 + (q + h) % 16] = 1 } }
        let steps = [
            TraceStep(index: 0, path: "model.0", moduleType: "Conv", inputShapes: [[1, 3, 64, 64]], outputShape: [1, 4, 8, 8], output: conv, params: 464, flops: 1e6, seconds: 0.001),
            TraceStep(index: 1, path: "model.1", moduleType: "AIFI", inputShapes: [[1, 4, 8, 8]], outputShape: [1, 4, 4, 4], output: aifi, params: 1000, flops: 2e6, seconds: 0.002),
            TraceStep(index: 2, path: "model.2", moduleType: "NAM", inputShapes: [[1, 4, 4, 4]], outputShape: [1, 4, 4, 4], output: nam, params: 8, flops: 1e3, seconds: 0.0005),
            TraceStep(index: 3, path: "model.3", moduleType: "RTDETRDecoder", inputShapes: [[1, 4, 4, 4]], outputShape: [1, 10, 6], output: head, params: 5000, flops: 3e6, seconds: 0.004),
        ]
        let probes = [
            Probe(path: "model.1.attn", label: "AIFI attention", data: .attention(Tensor(shape: [2, 16, 16], data: attn), query: GridSize(4, 4), key: GridSize(4, 4))),
            Probe(path: "model.2.channel", label: "NAM channel weights", data: .channelWeights(Tensor(shape: [4], data: [0.1, 0.4, 0.2, 0.3]))),
            Probe(path: "model.3.decoder.layers.0.cross_attn", label: "decoder layer 0 sampling", data: .sampling(sampling)),
            Probe(path: "model.3", label: "detections", data: .detections(detections)),
        ]
        return TraceSnapshot(steps: steps, probes: probes)
    }

    /// An RGB input picture [3, 64, 64]: a horizontal gradient.
    static var image: Tensor { tensor([3, 64, 64]) { Float($0 % 64) / 63 } }

    /// A state with the fixture model open and its run finished.
    static func loadedState(width: Int = 100, height: Int = 36, colorMode: ColorMode = .none) -> State {
        var s = State(catalogue: catalogue, images: [URL(fileURLWithPath: "/nonexistent/astronaut.png")],
                      render: RenderOptions(colorMode: colorMode, symbols: .half))
        s.size = (width, height)
        _ = update(&s, .key(.char("/")))
        for c in "rtdetr-l" { _ = update(&s, .key(.char(c))) }
        _ = update(&s, .key(.enter))
        let effect = update(&s, .key(.enter))
        XCTAssertEqual(effect, .run(RunRequest(model: "rtdetr-l", weights: nil, image: "/nonexistent/astronaut.png", inputSize: nil)))
        _ = update(&s, .opened(OpenedModel(name: "rtdetr-l", family: "RT-DETR", rows: rows, inputSize: GridSize(64, 64), classNames: ["person", "bicycle", "car"],
                                           untrained: true)))
        _ = update(&s, .progress(done: 2, total: 4))
        _ = update(&s, .finished(RunResult(trace: trace, detections: detections, image: image, seconds: 0.01)))
        return s
    }
}

/// Compares a screen's text with Tests/ExplorerTests/Snapshots/<name>.txt (written when UPDATE_SNAPSHOTS=1
/// or when missing, in which case the test fails so the new file gets reviewed).
func assertSnapshot(_ screen: Screen, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")
    let url = dir.appendingPathComponent(name + ".txt")
    let text = screen.text + "\n"
    if ProcessInfo.processInfo.environment["UPDATE_SNAPSHOTS"] == "1" || !FileManager.default.fileExists(atPath: url.path) {
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try? text.write(to: url, atomically: true, encoding: .utf8)
        if ProcessInfo.processInfo.environment["UPDATE_SNAPSHOTS"] != "1" {
            XCTFail("snapshot \(name) recorded; run again", file: file, line: line)
        }
        return
    }
    let expected = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    if expected != text {
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let a = text.split(separator: "\n", omittingEmptySubsequences: false)
        var where_ = "line count \(e.count) vs \(a.count)"
        for i in 0 ..< min(e.count, a.count) where e[i] != a[i] {
            where_ = "line \(i + 1):\n expected: \(e[i])\n   actual: \(a[i])"
            break
        }
        XCTFail("snapshot \(name) differs at \(where_)\n--- actual ---\n\(text)", file: file, line: line)
    }
}
