import Foundation
import ONNX
import Tensor

/// Probes of an ONNX graph found from its ops and shapes alone, with no knowledge of the block that made them:
///
/// - every Softmax over its last axis whose cells trace back through the graph to a feature map's grid
///   (ONNXGridAxes: the Reshape/Transpose/MatMul path from a [1, C, H, W] map) is an attention map [heads, Q, K],
///   its query grid too when Q traces to one; when the graph does not say, a last axis whose length is the H·W of
///   a map seen earlier in the run still is, labelled as matched by size;
/// - a row's output of tokens [1, N, C] (or [1, C, N]) whose N traces back to a map's grid is laid back onto that
///   grid in the order the graph's transposes imply; when the graph does not say, onto an earlier map's grid of
///   H·W = N (row-major), labelled as matched by size;
/// - every Sigmoid whose output is [1, C, H, W] is a gate map (C > 1 or H·W > 1), or channel weights ([1, C, 1, 1]);
/// - the GridSamples of one module are the levels of one sampling pattern: grid [B·heads, Q, P, 2] in [-1, 1] per
///   level as sampling locations [Q, heads, levels, points, 2] in [0, 1] over each level's [H, W]; their weights from
///   the latest Softmax of the same module (or an enclosing one) holding Q·heads·levels·points values (multi-scale
///   deformable attention's [B, Q, heads, levels·points]), else uniform. The reference point drawn is the
///   weighted mean of each query's locations (the graph has no named reference).
/// Reference: the probe types of Trace.swift, as the native AIFI, C2PSA and MSDeformAttn record them.
final class ONNXProbes {
    /// Names of the values GridSample nodes read (input, grid), kept when they are produced.
    private let gridInputs: Set<String>
    private var kept: [String: Tensor] = [:]
    /// H·W -> the latest [H, W] of a 4-D output.
    private var grids: [Int: GridSize] = [:]
    /// Softmax outputs by module path (latest last).
    private var softmaxes: [(module: String, y: Tensor)] = []
    /// The sampling pattern being collected: its module, node path and levels (input [H, W], grid).
    private var pending: (module: String, path: String, levels: [(GridSize, Tensor)])? = nil
    /// The grid axes of every value, traced through the graph (empty: size matching only).
    let traced: ONNXGridAxes.Table

    init(nodes: [ONNXNode], grids: ONNXGridAxes.Table = [:]) {
        traced = grids
        var g = Set<String>()
        for n in nodes where n.opType == "GridSample" && n.inputs.count >= 2 { g.insert(n.inputs[0]); g.insert(n.inputs[1]) }
        gridInputs = g
    }

    /// Sees one node's outputs right after it ran; records what it recognises under `path` in `trace`.
    func observe(_ node: ONNXNode, _ outs: [ONNXValue], path: String, trace: Trace) {
        let module = node.modulePath
        if let p = pending, module != p.module, node.opType != "GridSample" { flush(trace) }
        for (name, v) in zip(node.outputs, outs) where gridInputs.contains(name) { kept[name] = v.tensor }
        guard let y = outs.first?.tensor else { return }
        switch node.opType {
        case "Softmax":
            softmaxes.append((module, y))
            if softmaxes.count > 64 { softmaxes.removeFirst() }
            attention(node, y, name: node.outputs.first ?? "", path: path, trace: trace)
        case "Sigmoid":
            if y.rank == 4, y.shape[0] == 1 {
                let c = y.shape[1], hw = y.shape[2] * y.shape[3]
                if hw == 1 {
                    trace.probe(path, "sigmoid gate per channel [C]", .channelWeights(y.reshaped([c])))
                } else {
                    trace.probe(path, "sigmoid gate [C, H, W]", .contextMap(y.reshaped(Array(y.shape.dropFirst())), signed: false))
                }
            }
        case "GridSample":
            guard node.inputs.count >= 2, let x = kept[node.inputs[0]], let grid = kept[node.inputs[1]], x.rank == 4, grid.rank == 4 else { break }
            kept[node.inputs[0]] = nil
            kept[node.inputs[1]] = nil
            if let p = pending, p.module != module || p.levels[0].1.shape != grid.shape { flush(trace) }
            var p = pending ?? (module, path, [])
            p.levels.append((GridSize(x.shape[2], x.shape[3]), grid))
            pending = p
        default:
            break
        }
        if y.rank == 4, y.shape[0] == 1, y.shape[2] * y.shape[3] > 1 { grids[y.shape[2] * y.shape[3]] = GridSize(y.shape[2], y.shape[3]) }
    }

    /// Tokens laid back onto their grid: [C, H, W], with how the grid was found, or nil.
    ///
    /// Value `name` of [1, N, C] or [1, C, N] whose N axis the graph traces to a map's grid (AIFI's
    /// flatten(2).permute(0, 2, 1), a transposed map's column-major flatten) takes that grid and order; else
    /// [1, N, C] takes the grid of a feature map seen earlier with H·W = N, row-major, labelled as a size match.
    func tokenMap(_ y: Tensor, name: String) -> (map: Tensor, how: String)? {
        guard y.rank == 3, y.shape[0] == 1 else { return nil }
        for axis in [1, 2] {
            guard let e = ONNXGridAxes.flat(traced[name], axis: axis), e.grid.height * e.grid.width == y.shape[axis] else { continue }
            let (n, c) = (y.shape[axis], y.shape[3 - axis])
            // [C, N] with N in the traced order.
            let cn = axis == 2 ? y.reshaped([c, n]) : permute(y.reshaped([n, c]), [1, 0])
            let g = e.grid
            let map = e.rowMajor ? cn.reshaped([c, g.height, g.width])
                : permute(cn.reshaped([c, g.width, g.height]), [0, 2, 1])
            return (map, "traced through the graph to \(e.source)\(e.rowMajor ? "" : ", column-major")")
        }
        guard y.shape[1] > 1, let g = grids[y.shape[1]] else { return nil }
        let map = permute(y.reshaped([y.shape[1], y.shape[2]]), [1, 0]).reshaped([y.shape[2], g.height, g.width])
        return (map, "grid matched by size: the graph does not say")
    }

    /// The end of the run: a sampling pattern still open is recorded.
    func finish(_ trace: Trace) { flush(trace) }

    /// A Softmax over the last axis whose cells are a feature map's grid (traced, else by size): attention
    /// [heads, Q, K], keys and (traced) queries in row-major grid order.
    private func attention(_ node: ONNXNode, _ y: Tensor, name: String, path: String, trace: Trace) {
        guard y.rank >= 2 else { return }
        var axis = -1
        if case .int(let a)? = node.attributes["axis"] { axis = a }
        guard axis == -1 || axis == y.rank - 1 else { return }
        let k = y.shape[y.rank - 1], q = y.shape[y.rank - 2]
        guard k > 1, q > 0 else { return }
        let heads = y.count / (q * k)
        var a = y.reshaped([heads, q, k])
        let keyGrid: GridSize, queryGrid: GridSize, how: String
        if let key = ONNXGridAxes.flat(traced[name], axis: y.rank - 1), key.grid.height * key.grid.width == k {
            keyGrid = key.grid
            let query = ONNXGridAxes.flat(traced[name], axis: y.rank - 2).flatMap { $0.grid.height * $0.grid.width == q ? $0 : nil }
            queryGrid = query?.grid ?? GridSize(1, q)
            // Column-major cells put in row-major order, as the views read them.
            if !key.rowMajor { a = ONNXProbes.rowMajor(a, axis: 2, grid: key.grid) }
            if let query, !query.rowMajor { a = ONNXProbes.rowMajor(a, axis: 1, grid: query.grid) }
            how = "keys traced to \(key.source)"
        } else if let g = grids[k] {
            keyGrid = g
            queryGrid = grids[q] ?? GridSize(1, q)
            how = "key grid matched by size: the graph does not say"
        } else {
            return
        }
        trace.probe(path, "attention (softmax over \(keyGrid.height)x\(keyGrid.width) keys, \(how)) [heads, Q, K]",
                    .attention(a, query: queryGrid, key: keyGrid))
    }

    /// `t` with its `axis` of column-major grid cells (n = w·H + h) reordered row-major (n = h·W + w).
    static func rowMajor(_ t: Tensor, axis: Int, grid: GridSize) -> Tensor {
        let order = (0 ..< grid.height * grid.width).map { n in (n % grid.width) * grid.height + n / grid.width }
        return indexSelect(t, axis: axis, indices: order)
    }

    /// Records the collected GridSample levels as sampling points.
    private func flush(_ trace: Trace) {
        guard let p = pending else { return }
        pending = nil
        let first = p.levels[0].1
        let bh = first.shape[0], q = first.shape[1], points = first.shape[2]
        guard first.shape[3] == 2, p.levels.allSatisfy({ $0.1.shape == first.shape }) else { return }
        let levels = p.levels.count
        let count = bh * q * levels * points
        // The weights: a Softmax of this module or an enclosing one with exactly Q·heads·levels·points values,
        // laid out [B, Q, heads, levels·points] (B = 1, so heads = bh).
        let weightsTensor = softmaxes.last(where: { s in
            (p.module == s.module || p.module.hasPrefix(s.module + ".")) && s.y.count == count && s.y.shape.last.map { $0 == levels * points || $0 == points } == true
        })?.y
        let heads = bh
        // locations [Q, heads, levels, points, 2] in [0, 1] from grid [heads, Q, points, 2] in [-1, 1].
        var loc = [Float](repeating: 0, count: q * heads * levels * points * 2)
        for (l, (_, g)) in p.levels.enumerated() {
            for h in 0 ..< heads {
                for i in 0 ..< q {
                    for pt in 0 ..< points {
                        for c in 0 ..< 2 {
                            let v = g.data[((h * q + i) * points + pt) * 2 + c]
                            loc[((((i * heads + h) * levels + l) * points + pt) * 2) + c] = (v + 1) / 2
                        }
                    }
                }
            }
        }
        let weights = weightsTensor.map { $0.reshaped([q, heads, levels, points]) }
            ?? Tensor(repeating: 1 / Float(levels * points), shape: [q, heads, levels, points])
        // The reference point drawn: each query's weighted mean location.
        var ref = [Float](repeating: 0, count: q * 2)
        for i in 0 ..< q {
            var sx: Float = 0, sy: Float = 0, sw: Float = 0
            for j in 0 ..< heads * levels * points {
                let w = weights.data[i * heads * levels * points + j]
                sx += w * loc[(i * heads * levels * points + j) * 2]
                sy += w * loc[(i * heads * levels * points + j) * 2 + 1]
                sw += w
            }
            ref[i * 2] = sw > 0 ? sx / sw : 0.5
            ref[i * 2 + 1] = sw > 0 ? sy / sw : 0.5
        }
        let label = weightsTensor == nil ? "sampling locations of \(levels) GridSample levels (uniform weights)"
            : "sampling locations of \(levels) GridSample levels and their softmax weights"
        trace.probe(p.path, label, .sampling(SamplingPoints(
            referencePoints: Tensor(shape: [q, 2], data: ref),
            locations: Tensor(shape: [q, heads, levels, points, 2], data: loc),
            weights: weights, levelShapes: p.levels.map(\.0))))
    }
}
