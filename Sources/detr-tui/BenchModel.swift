import ArgumentParser
import Foundation
import ModelZoo
import Tensor

/// `bench MODEL`: times whole forward passes (after one warm-up) at imgsz x imgsz on a fixed random input, with a
/// trace that records shapes and times only; prints per-layer median times and the median total.
/// With `traced`, also times passes that keep every tensor (what the explorer records) and reports the overhead.
func runModelBenchmark(model id: String, imgsz: Int, runs: Int, json: Bool, weights: String? = nil) throws {
    let net = try openModel(id, weights: weights)
    var rng = SplitMix64(seed: 7)
    let input = Tensor(shape: [1, net.inputChannels, imgsz, imgsz], data: (0 ..< net.inputChannels * imgsz * imgsz).map { _ in rng.nextFloat() })
    func timed(keep: Bool) throws -> (total: Double, steps: [TraceStep]) {
        let trace = Trace(keepTensors: keep)
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = try net.forward(input, trace: trace)
        return (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6, trace.snapshot.steps)
    }
    _ = try timed(keep: false)
    var totals: [Double] = [], perLayer: [[Double]] = []
    var steps: [TraceStep] = []
    var tracedTotals: [Double] = []
    for _ in 0 ..< runs {
        let r = try timed(keep: false)
        totals.append(r.total)
        steps = r.steps
        perLayer.append(r.steps.map { $0.seconds * 1000 })
        tracedTotals.append(try timed(keep: true).total)
    }
    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    let layerMedians = steps.indices.map { i in median(perLayer.map { $0[i] }) }
    let med = median(totals), tracedMed = median(tracedTotals)
    if json {
        struct Layer: Encodable { let index: Int; let path: String; let module: String; let ms: Double; let gflops: Double }
        struct Report: Encodable {
            let model: String; let imgsz: Int; let runs: Int; let median_ms: Double; let min_ms: Double
            let traced_median_ms: Double; let threads: Int; let machine: MachineReport; let layers: [Layer]
        }
        let r = Report(model: net.name, imgsz: imgsz, runs: runs, median_ms: med, min_ms: totals.min() ?? med,
                       traced_median_ms: tracedMed, threads: Parallel.cores, machine: LaunchEnvironment.machineReport(),
                       layers: steps.enumerated().map { Layer(index: $1.index, path: $1.path, module: $1.moduleType,
                                                                  ms: layerMedians[$0], gflops: $1.flops / 1e9) })
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(r), as: UTF8.self))
        return
    }
    for line in LaunchEnvironment.machineReport().lines { print(line) }
    let w = max(6, steps.map { $0.moduleType.count }.max() ?? 6)
    func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
    print("layer  " + pad("module") + "        ms   GFLOPs  GFLOP/s")
    for (i, s) in steps.enumerated() {
        let ms = layerMedians[i]
        print(String(format: "%5d  ", s.index) + pad(s.moduleType)
              + String(format: "  %8.2f  %7.3f  %7.1f", ms, s.flops / 1e9, ms > 0 ? s.flops / 1e6 / ms : 0))
    }
    let gflops = steps.reduce(0) { $0 + $1.flops } / 1e9
    print(String(format: "%@ at %dx%d: median %.1f ms over %d runs (min %.1f ms), %.1f GFLOPs, %.1f GFLOP/s; with a full trace %.1f ms (%+.1f%%)",
                 net.name as NSString, imgsz, imgsz, med, runs, totals.min() ?? med, gflops, gflops * 1000 / med,
                 tracedMed, (tracedMed / med - 1) * 100))
}
