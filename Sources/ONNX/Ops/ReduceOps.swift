import Foundation
import Tensor

/// Reductions, ordering and scans: ReduceSum/Mean/Max/Min, ArgMax, TopK, CumSum.
enum ReduceOps {
    /// A reduction over `axes` (all when none and noop_with_empty_axes is 0), one axis at a time from the last.
    static func reduce(_ ctx: ONNXOpContext, axesFromInput: Int, _ f: (Tensor, Int) -> Tensor, empty: String) throws -> [ONNXValue] {
        let x = try ctx.input(0)
        guard let axes = try reduceAxes(ctx, x.shape, axesFromInput: axesFromInput), !x.shape.isEmpty else { return [x] }
        for a in axes where x.shape[a] == 0 { throw ctx.fail("cannot take the \(empty) of an empty axis \(a) of \(x.shape)") }
        var y = x.tensor
        for a in axes.sorted(by: >) { y = f(y, a) }
        return [ONNXValue(y.reshaped(try reduceShape(ctx, x.shape, axesFromInput: axesFromInput)), x.type)]
    }

    /// The axes a reduction of `x` takes, or nil when it is a no-op (no axes and noop_with_empty_axes).
    static func reduceAxes(_ ctx: ONNXOpContext, _ x: [Int], axesFromInput: Int) throws -> [Int]? {
        let r = x.count
        let list = ctx.opset >= axesFromInput ? ctx.optional(1)?.integers : try ctx.ints("axes")
        var axes = try (list ?? []).map { try ctx.axis($0, rank: r) }
        if axes.isEmpty {
            if try ctx.int("noop_with_empty_axes", default: 0) != 0 { return nil }
            axes = Array(0 ..< r)
        }
        guard Set(axes).count == axes.count else { throw ctx.fail("axes \(list ?? []) repeat an axis") }
        return axes
    }

    static func reduceShape(_ ctx: ONNXOpContext, _ x: [Int], axesFromInput: Int) throws -> [Int] {
        guard let axes = try reduceAxes(ctx, x, axesFromInput: axesFromInput), !x.isEmpty else { return x }
        return try ctx.int("keepdims", default: 1) != 0 ? x.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
            : x.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    static let reduceSum: ONNXOpImplementation = { ctx in try reduce(ctx, axesFromInput: 13, { engineSum($0, $1) }, empty: "sum") }
    static let reduceMean: ONNXOpImplementation = { ctx in try reduce(ctx, axesFromInput: 18, { engineMean($0, $1) }, empty: "mean") }
    static let reduceMax: ONNXOpImplementation = { ctx in try reduce(ctx, axesFromInput: 18, { engineMax($0, $1) }, empty: "max") }
    static let reduceMin: ONNXOpImplementation = { ctx in try reduce(ctx, axesFromInput: 18, { engineMin($0, $1) }, empty: "min") }

    static let argMax: ONNXOpImplementation = { ctx in
        let x = try ctx.tensor(0)
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.rank)
        guard x.shape[axis] > 0 else { throw ctx.fail("cannot take the argmax of an empty axis \(axis) of \(x.shape)") }
        let last = try ctx.int("select_last_index", default: 0) != 0
        var y: Tensor
        if last {
            // The last maximum is the first maximum of the reversed axis.
            let n = x.shape[axis]
            y = argmax(indexSelect(x, axis: axis, indices: Array((0 ..< n).reversed())), axis: axis)
            y = mapElements(y, cost: 1) { Float(n - 1) - $0 }
        } else {
            y = argmax(x, axis: axis)
        }
        var shape = x.shape
        if try ctx.int("keepdims", default: 1) != 0 { shape[axis] = 1 } else { shape.remove(at: axis) }
        return [ONNXValue(y.reshaped(shape), .int64)]
    }

    static let topK: ONNXOpImplementation = { ctx in
        let x = try ctx.tensor(0)
        let k: Int
        if ctx.opset < 10 { k = try ctx.int("k", default: 0) } else {
            let kv = try ctx.input(1)
            guard kv.tensor.count == 1 else { throw ctx.fail("K must hold one number, got \(kv.shape)") }
            k = kv.integers[0]
        }
        let axis = try ctx.axis(try ctx.int("axis", default: -1), rank: x.rank)
        guard k >= 0, k <= x.shape[axis] else { throw ctx.fail("K = \(k) is out of range for axis \(axis) of \(x.shape)") }
        let largest = try ctx.int("largest", default: 1) != 0
        var shape = x.shape
        shape[axis] = k
        if k == 0 { return [ONNXValue(Tensor(zeros: shape)), ONNXValue(Tensor(zeros: shape), .int64)] }
        let (v, i) = engineTopK(x, k: k, axis: axis, largest: largest)
        return [ONNXValue(v), ONNXValue(i, .int64)]
    }

    static let cumSum: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        let a = try ctx.input(1)
        guard a.tensor.count == 1 else { throw ctx.fail("axis must hold one number") }
        let axis = try ctx.axis(a.integers[0], rank: x.shape.count)
        let y = cumulativeSum(x.tensor, axis: axis, exclusive: try ctx.int("exclusive", default: 0) != 0,
                              reverse: try ctx.int("reverse", default: 0) != 0)
        return [ONNXValue(y, x.type)]
    }
}

private func engineSum(_ x: Tensor, _ a: Int) -> Tensor { sum(x, axis: a) }
private func engineMean(_ x: Tensor, _ a: Int) -> Tensor { mean(x, axis: a) }
private func engineMax(_ x: Tensor, _ a: Int) -> Tensor { max(x, axis: a) }
private func engineMin(_ x: Tensor, _ a: Int) -> Tensor { min(x, axis: a) }
private func engineTopK(_ x: Tensor, k: Int, axis: Int, largest: Bool) -> (values: Tensor, indices: Tensor) {
    topK(x, k: k, axis: axis, largest: largest)
}
