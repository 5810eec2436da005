import Foundation
import ONNX

/// Which axes of a value hold the cells of a feature map's grid, traced through the graph from the map.
///
/// A map [N, C, H, W] made by a spatial op (Conv, ConvTranspose, pooling, Resize) or given as the graph's input has
/// its grid on two axes (`pair`). Reshape/Flatten/Squeeze/Unsqueeze that merge those two adjacent axes make one axis
/// of H·W cells (`flat`), in row-major order when H came before W and column-major when a Transpose had swapped
/// them; a Reshape that splits such an axis back into H and W makes a pair again. Transposes move the axes;
/// element-wise ops, normalisations, Softmax and activations keep them; MatMul keeps the left operand's axes but
/// its last (contracted) one and takes the right operand's last axis; Concat, Split, Slice, Gather and reductions
/// keep the axes they leave whole. Anything else (a Concat along the cells, an op without a rule) ends the trace.
/// Reference: the layouts AIFI (flatten(2).permute(0, 2, 1)), C2PSA's attention (view(B, heads, d, H·W)) and
/// torch's multi-head attention (reshape to heads, transpose) make.
public struct ONNXGridAxes: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// H on axis `h`, W on axis `w`.
        case pair(h: Int, w: Int)
        /// H·W cells on one axis: cell n is (n / W, n % W) when rowMajor, (n % H, n / H) when not.
        case flat(axis: Int, rowMajor: Bool)
    }
    public var kind: Kind
    public var grid: GridSize
    /// The value the grid was traced to (the map's name in the graph).
    public var source: String

    /// The traced grids of every value, by value name.
    public typealias Table = [String: [ONNXGridAxes]]

    /// The flat axis `axis` of a value, if it holds a grid's cells.
    public static func flat(_ entries: [ONNXGridAxes]?, axis: Int) -> ONNXGridAxes? {
        entries?.first { if case .flat(let a, _) = $0.kind { return a == axis } else { return false } }
    }

    /// Traces every run node's outputs over the shapes of one input size.
    public static func trace(_ interpreter: ONNXInterpreter, shapes: ONNXShapes) -> Table {
        var table: Table = [:]
        for info in interpreter.model.inputs {
            if let s = shapes.shapes[info.name], let m = map(s, source: info.name) { table[info.name] = [m] }
        }
        for (k, n) in interpreter.runNodes.enumerated() {
            let ins = n.inputs.map { $0.isEmpty ? nil : shapes.shapes[$0] ?? interpreter.constant($0)?.shape }
            let entries = n.inputs.map { table[$0] ?? [] }
            for (i, name) in n.outputs.enumerated() where !name.isEmpty {
                guard i < shapes.nodeOutputs[k].count, let out = shapes.nodeOutputs[k][i] else { continue }
                let t = propagate(n, output: out, inputs: ins, entries: entries, name: name)
                if !t.isEmpty { table[name] = t }
            }
        }
        return table
    }

    static let spatialOps: Set<String> = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "Resize"]

    /// A map's own grid: [N, C, H, W] with more than one cell.
    static func map(_ s: [Int], source: String) -> ONNXGridAxes? {
        guard s.count == 4, s[2] * s[3] > 1 else { return nil }
        return ONNXGridAxes(kind: .pair(h: 2, w: 3), grid: GridSize(s[2], s[3]), source: source)
    }

    /// The grid axes of one output of `n` from its inputs' (`entries`, over input shapes `inputs`).
    static func propagate(_ n: ONNXNode, output out: [Int], inputs: [[Int]?], entries: [[ONNXGridAxes]], name: String) -> [ONNXGridAxes] {
        func shape(_ i: Int) -> [Int]? { i < inputs.count ? inputs[i] : nil }
        func attr(_ key: String) -> Int? { if case .int(let v)? = n.attributes[key] { return v } else { return nil } }
        if spatialOps.contains(n.opType) { return map(out, source: name).map { [$0] } ?? [] }
        guard let first = entries.first, !first.isEmpty || entries.contains(where: { !$0.isEmpty }) else { return [] }
        switch n.opType {
        case "Reshape", "Flatten", "Squeeze", "Unsqueeze":
            guard let x = shape(0) else { return [] }
            return first.compactMap { reshaped($0, from: x, to: out) }
        case "Transpose":
            guard let x = shape(0) else { return [] }
            var perm = Array((0 ..< x.count).reversed())
            if case .ints(let p)? = n.attributes["perm"] { perm = p }
            guard perm.count == x.count else { return [] }
            var inverse = [Int](repeating: 0, count: perm.count)
            for (j, a) in perm.enumerated() where a >= 0 && a < perm.count { inverse[a] = j }
            return first.map { e in
                var e = e
                switch e.kind {
                case .pair(let h, let w): e.kind = .pair(h: inverse[h], w: inverse[w])
                case .flat(let a, let r): e.kind = .flat(axis: inverse[a], rowMajor: r)
                }
                return e
            }
        case "MatMul":
            guard let a = shape(0), let b = shape(1), a.count >= 2, b.count >= 2, out.count >= 2 else { return [] }
            // The left operand's axes but its last; the right operand's last axis.
            var result = aligned(first, from: a, to: out, skip: [a.count - 1])
            if entries.count > 1, let e = flat(entries[1], axis: b.count - 1) {
                result.append(ONNXGridAxes(kind: .flat(axis: out.count - 1, rowMajor: e.rowMajor), grid: e.grid, source: e.source))
            }
            return result
        case "Concat":
            guard var axis = attr("axis") else { return [] }
            if axis < 0 { axis += out.count }
            // Only what every input agrees on, off the concatenation axis.
            let common = first.filter { e in entries.allSatisfy { $0.contains(e) } && !e.axes.contains(axis) }
            return common
        case "Split", "Slice", "Pad", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ArgMax", "TopK", "Tile", "Expand":
            guard let x = shape(0), x.count == out.count else { return [] }
            // Same rank: the axes left whole.
            return first.filter { e in e.axes.allSatisfy { x[$0] == out[$0] } }
        case "Gather":
            guard let x = shape(0), let ind = shape(1) else { return [] }
            var g = attr("axis") ?? 0
            if g < 0 { g += x.count }
            return first.compactMap { e in
                guard !e.axes.contains(g) else { return nil }
                return e.moved { $0 < g ? $0 : $0 + ind.count - 1 }
            }
        default:
            // Element-wise ops (broadcasting), activations, normalisations, Softmax: axes stay where the output
            // has the same size.
            guard ONNXGridAxes.keepsAxes(n.opType) else { return [] }
            var result: [ONNXGridAxes] = []
            for (i, es) in entries.enumerated() {
                guard let x = shape(i) else { continue }
                for e in aligned(es, from: x, to: out, skip: []) where !result.contains(e) { result.append(e) }
            }
            return result
        }
    }

    /// Ops whose output has each input's axes in place (broadcast to the output's rank).
    static func keepsAxes(_ op: String) -> Bool {
        ["Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Where", "Sqrt", "Exp", "Log", "Neg", "Abs", "Erf", "Tanh",
         "Reciprocal", "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Gelu", "Softplus", "Mish", "Elu",
         "Clip", "Cast", "Identity", "Dropout", "Softmax", "LogSoftmax", "LayerNormalization", "BatchNormalization",
         "InstanceNormalization", "CumSum", "Floor", "Ceil", "Round", "Sin", "Cos", "Equal", "Greater", "Less", "Not"].contains(op)
    }

    /// The axes this entry occupies.
    var axes: [Int] {
        switch kind {
        case .pair(let h, let w): return [h, w]
        case .flat(let a, _): return [a]
        }
    }

    var rowMajor: Bool { if case .flat(_, let r) = kind { return r } else { return true } }

    func moved(_ f: (Int) -> Int) -> ONNXGridAxes {
        var e = self
        switch kind {
        case .pair(let h, let w): e.kind = .pair(h: f(h), w: f(w))
        case .flat(let a, let r): e.kind = .flat(axis: f(a), rowMajor: r)
        }
        return e
    }

    /// Entries of an input of shape `x` in an output of shape `out` of the same or higher rank (right-aligned, as
    /// broadcasting aligns), kept where the output axis has the input's size; axes in `skip` are dropped.
    static func aligned(_ es: [ONNXGridAxes], from x: [Int], to out: [Int], skip: Set<Int>) -> [ONNXGridAxes] {
        let offset = out.count - x.count
        guard offset >= 0 else { return [] }
        return es.compactMap { e in
            guard e.axes.allSatisfy({ !skip.contains($0) && out[$0 + offset] == x[$0] }) else { return nil }
            return e.moved { $0 + offset }
        }
    }

    /// An entry of a value of shape `x` after a reshape to `out`: the axis found where the values before it are the
    /// same in number (the product of the dims before it), merged or split as the dims say, else nil.
    static func reshaped(_ e: ONNXGridAxes, from x: [Int], to out: [Int]) -> ONNXGridAxes? {
        func before(_ s: [Int], _ a: Int) -> Int { s[..<a].reduce(1, *) }
        /// The output axis holding exactly `size` values after `prefix` values (skipping size-1 axes).
        func axis(prefix: Int, size: Int) -> Int? {
            (0 ..< out.count).first { before(out, $0) == prefix && out[$0] == size }
        }
        let (h, w) = (e.grid.height, e.grid.width)
        switch e.kind {
        case .pair(let ha, let wa):
            // Kept apart.
            if let jh = axis(prefix: before(x, ha), size: h), let jw = axis(prefix: before(x, wa), size: w), jh != jw {
                return ONNXGridAxes(kind: .pair(h: jh, w: jw), grid: e.grid, source: e.source)
            }
            // Merged: adjacent axes into one of H·W cells.
            guard Swift.abs(ha - wa) == 1, let j = axis(prefix: before(x, Swift.min(ha, wa)), size: h * w) else { return nil }
            return ONNXGridAxes(kind: .flat(axis: j, rowMajor: ha < wa), grid: e.grid, source: e.source)
        case .flat(let a, let rowMajor):
            let prefix = before(x, a)
            if let j = axis(prefix: prefix, size: h * w) {
                return ONNXGridAxes(kind: .flat(axis: j, rowMajor: rowMajor), grid: e.grid, source: e.source)
            }
            // Split back into the grid's two axes.
            let (first, second) = rowMajor ? (h, w) : (w, h)
            guard let j = (0 ..< out.count - 1).first(where: { before(out, $0) == prefix && out[$0] == first && out[$0 + 1] == second }) else { return nil }
            return ONNXGridAxes(kind: rowMajor ? .pair(h: j, w: j + 1) : .pair(h: j + 1, w: j), grid: e.grid, source: e.source)
        }
    }
}
