import Foundation
import Tensor

/// Shape and indexing ONNX ops: the shape arithmetic of an export (Shape, Gather, Concat, Reshape, ...) and the
/// data movement of attention blocks (Transpose, Split, Slice, Gather, Expand, Tile).
enum ShapeOps {
    /// Axes from the `axes` attribute (opsets before `inputFrom`) or input 1 (from `inputFrom` on), if any.
    static func axes(_ ctx: ONNXOpContext, inputFrom: Int, input: Int = 1) throws -> [Int]? {
        if ctx.opset < inputFrom { return try ctx.ints("axes") }
        return ctx.optional(input)?.integers
    }

    /// An empty tensor of `shape`, or `t` (the engine's copies expect a buffer).
    static func result(_ t: @autoclosure () -> Tensor, shape: [Int]) -> Tensor {
        Tensor.count(of: shape) == 0 ? Tensor(zeros: shape) : t()
    }

    static let reshape: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        return [ONNXValue(x.tensor.reshaped(try reshapeTarget(ctx, x.shape, spec: try ctx.input(1).integers)), x.type)]
    }

    /// The shape a Reshape of `x` to `spec` makes (0 copies a dim unless allowzero, one -1 is inferred).
    static func reshapeTarget(_ ctx: ONNXOpContext, _ x: [Int], spec: [Int]) throws -> [Int] {
        let count = Tensor.count(of: x)
        let allowZero = try ctx.int("allowzero", default: 0) != 0
        var shape: [Int] = []
        var infer: Int? = nil
        for (i, d) in spec.enumerated() {
            if d == -1 {
                guard infer == nil else { throw ctx.fail("shape \(spec) has more than one -1") }
                infer = i; shape.append(1)
            } else if d == 0 && !allowZero {
                guard i < x.count else { throw ctx.fail("shape \(spec) copies dimension \(i) of \(x), which has none") }
                shape.append(x[i])
            } else {
                guard d >= 0 else { throw ctx.fail("shape \(spec) has a negative dimension") }
                shape.append(d)
            }
        }
        guard let known = Budget.product(shape) else { throw ctx.fail("shape \(spec) overflows") }
        if let infer {
            guard known > 0, count % known == 0 else { throw ctx.fail("cannot reshape \(x) to \(spec)") }
            shape[infer] = count / known
        }
        guard Tensor.count(of: shape) == count else { throw ctx.fail("cannot reshape \(x) (\(count) values) to \(spec)") }
        return shape
    }

    static let flatten: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        return [ONNXValue(x.tensor.reshaped(try flattenShape(ctx, x.shape)), x.type)]
    }

    static func flattenShape(_ ctx: ONNXOpContext, _ x: [Int]) throws -> [Int] {
        var axis = try ctx.int("axis", default: 1)
        if axis < 0 { axis += x.count }
        guard axis >= 0, axis <= x.count else { throw ctx.fail("axis out of range for \(x)") }
        return [x[..<axis].reduce(1, *), x[axis...].reduce(1, *)]
    }

    static let squeeze: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        return [ONNXValue(x.tensor.reshaped(try squeezeShape(ctx, x.shape)), x.type)]
    }

    static func squeezeShape(_ ctx: ONNXOpContext, _ x: [Int]) throws -> [Int] {
        guard let axes = try axes(ctx, inputFrom: 13) else { return x.filter { $0 != 1 } }
        let a = try Set(axes.map { try ctx.axis($0, rank: x.count) })
        for i in a { guard x[i] == 1 else { throw ctx.fail("cannot squeeze axis \(i) of \(x): its size is not 1") } }
        return x.enumerated().filter { !a.contains($0.offset) }.map(\.element)
    }

    static let unsqueeze: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        return [ONNXValue(x.tensor.reshaped(try unsqueezeShape(ctx, x.shape)), x.type)]
    }

    static func unsqueezeShape(_ ctx: ONNXOpContext, _ x: [Int]) throws -> [Int] {
        guard let list = try axes(ctx, inputFrom: 13) else { throw ctx.fail("axes are required") }
        let rank = x.count + list.count
        let a = try Set(list.map { try ctx.axis($0, rank: rank) })
        guard a.count == list.count else { throw ctx.fail("axes \(list) repeat an axis") }
        var shape: [Int] = [], it = x.makeIterator()
        for i in 0 ..< rank { shape.append(a.contains(i) ? 1 : it.next()!) }
        return shape
    }

    static let transpose: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        let perm = try transposePerm(ctx, rank: x.shape.count)
        let shape = perm.map { x.shape[$0] }
        return [ONNXValue(result(permute(x.tensor, perm), shape: shape), x.type)]
    }

    /// The `perm` attribute, checked (reversed axes when absent).
    static func transposePerm(_ ctx: ONNXOpContext, rank r: Int) throws -> [Int] {
        let perm = try ctx.ints("perm") ?? Array((0 ..< r).reversed())
        guard perm.count == r, Set(perm).count == r, perm.allSatisfy({ $0 >= 0 && $0 < r }) else {
            throw ctx.fail("perm \(perm) is not a permutation of \(r) dimensions")
        }
        return perm
    }

    static let concat: ONNXOpImplementation = { ctx in
        let xs = try (0 ..< ctx.inputs.count).map { try ctx.input($0) }
        let shape = try concatShape(ctx, xs.map(\.shape))
        try ctx.checkSize(shape)
        let axis = try ctx.axis(try ctx.int("axis")!, rank: shape.count)
        let parts = xs.map(\.tensor).filter { $0.count > 0 }
        let y = parts.isEmpty ? Tensor(zeros: shape) : engineConcat(parts, axis: axis)
        return [ONNXValue(y.reshaped(shape), xs[0].type)]
    }

    static func concatShape(_ ctx: ONNXOpContext, _ xs: [[Int]]) throws -> [Int] {
        guard let first = xs.first else { throw ctx.fail("no inputs") }
        let r = first.count
        let axis = try ctx.axis(try ctx.int("axis") ?? { throw ctx.fail("attribute 'axis' is required") }(), rank: r)
        var shape = first
        shape[axis] = 0
        for x in xs {
            guard x.count == r, (0 ..< r).allSatisfy({ $0 == axis || x[$0] == first[$0] }) else {
                throw ctx.fail("shapes \(xs) differ off axis \(axis)")
            }
            shape[axis] += x[axis]
        }
        return shape
    }

    static let split: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        let (axis, sizes) = try splitSizes(ctx, x.shape)
        var start = 0
        return sizes.map { s in
            var shape = x.shape
            shape[axis] = s
            let y = result(engineSlice(x.tensor, axis: axis, range: start ..< start + s), shape: shape)
            start += s
            return ONNXValue(y, x.type)
        }
    }

    /// The axis a Split cuts and the size of each part.
    static func splitSizes(_ ctx: ONNXOpContext, _ x: [Int]) throws -> (Int, [Int]) {
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.count)
        let n = x[axis], outputs = ctx.node.outputs.count
        var sizes: [Int]
        if ctx.opset < 13, let s = try ctx.ints("split") {
            sizes = s
        } else if ctx.opset >= 13, let s = ctx.optional(1), s.tensor.count > 0 {
            sizes = s.integers
        } else {
            let parts = try ctx.int("num_outputs") ?? outputs
            guard parts >= 1 else { throw ctx.fail("cannot split into \(parts) parts") }
            let each = (n + parts - 1) / parts
            sizes = (0 ..< parts).map { Swift.max(0, Swift.min(each, n - $0 * each)) }
        }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == n, sizes.count == outputs else {
            throw ctx.fail("split \(sizes) does not divide axis \(axis) of \(x) into \(outputs) outputs")
        }
        return (axis, sizes)
    }

    /// The indices a Slice takes along an axis of length n (ONNX's clamping rules, any step but 0).
    static func sliceIndices(_ ctx: ONNXOpContext, start: Int, end: Int, step: Int, n: Int) throws -> StrideTo<Int> {
        guard step != 0 else { throw ctx.fail("slice step 0") }
        var s = start < 0 ? start + n : start
        var e = end < 0 ? end + n : end
        if step > 0 {
            s = Swift.min(Swift.max(s, 0), n); e = Swift.min(Swift.max(e, 0), n)
        } else {
            s = Swift.min(Swift.max(s, 0), n - 1); e = Swift.min(Swift.max(e, -1), n - 1)
        }
        return stride(from: s, to: e, by: step)
    }

    static let slice: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        var y = x.tensor
        for (a, idx, step) in try sliceAxes(ctx, x.shape) {
            if idx.count == y.shape[a], idx.first == 0, idx.last == y.shape[a] - 1 || idx.isEmpty { continue }
            var shape = y.shape
            shape[a] = idx.count
            if Tensor.count(of: shape) == 0 {
                y = Tensor(zeros: shape)
            } else if let f = idx.first, step == 1 {
                y = engineSlice(y, axis: a, range: f ..< f + idx.count)
            } else {
                y = indexSelect(y, axis: a, indices: idx)
            }
        }
        return [ONNXValue(y, x.type)]
    }

    static func sliceShape(_ ctx: ONNXOpContext, _ x: [Int]) throws -> [Int] {
        var shape = x
        for (a, idx, _) in try sliceAxes(ctx, x) { shape[a] = idx.count }
        return shape
    }

    /// Each sliced axis of `x` with the indices it keeps and its step.
    static func sliceAxes(_ ctx: ONNXOpContext, _ x: [Int]) throws -> [(Int, [Int], Int)] {
        let starts: [Int], ends: [Int], axesList: [Int]?, steps: [Int]?
        if ctx.opset < 10 {
            starts = try ctx.ints("starts") ?? []; ends = try ctx.ints("ends") ?? []
            axesList = try ctx.ints("axes"); steps = nil
        } else {
            starts = try ctx.input(1).integers; ends = try ctx.input(2).integers
            axesList = ctx.optional(3)?.integers; steps = ctx.optional(4)?.integers
        }
        let r = x.count
        let axes = try (axesList ?? Array(0 ..< starts.count)).map { try ctx.axis($0, rank: r) }
        guard starts.count == ends.count, axes.count == starts.count, steps == nil || steps!.count == starts.count, Set(axes).count == axes.count else {
            throw ctx.fail("starts \(starts), ends \(ends), axes \(axesList ?? []), steps \(steps ?? []) do not line up")
        }
        return try axes.enumerated().map { k, a in
            let step = steps?[k] ?? 1
            return (a, Array(try sliceIndices(ctx, start: starts[k], end: ends[k], step: step, n: x[a])), step)
        }
    }

    /// Indices as whole numbers inside 0..<n (negative ones count from the end), or an error naming the bad one.
    static func checkedIndices(_ ctx: ONNXOpContext, _ v: ONNXValue, n: Int) throws -> [Int] {
        try v.integers.map { i in
            let j = i < 0 ? i + n : i
            guard j >= 0, j < n else { throw ctx.fail("index \(i) is out of range for a dimension of \(n)") }
            return j
        }
    }

    static let gather: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0), ind = try ctx.input(1)
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.shape.count)
        let idx = try checkedIndices(ctx, ind, n: x.shape[axis])
        let shape = Array(x.shape[..<axis]) + ind.shape + Array(x.shape[(axis + 1)...])
        try ctx.checkSize(shape)
        return [ONNXValue(result(indexSelect(x.tensor, axis: axis, indices: idx), shape: shape).reshaped(shape), x.type)]
    }

    /// ScatterND: a copy of data with the slices addressed by the last axis of `indices` replaced by (or, with
    /// `reduction` add/mul/max/min, combined with) `updates` [indices.shape[:-1] + data.shape[k:]].
    static let scatterND: ONNXOpImplementation = { ctx in
        let data = try ctx.input(0), indices = try ctx.input(1).tensor, updates = try ctx.tensor(2)
        let reduction = try ctx.string("reduction", default: "none")
        guard ["none", "add", "mul", "max", "min"].contains(reduction) else { throw ctx.fail("reduction '\(reduction)' is not one of none, add, mul, max, min") }
        guard indices.rank >= 1, let k = indices.shape.last, k <= data.tensor.rank else {
            throw ctx.fail("indices \(indices.shape) must end with at most \(data.tensor.rank) (the data's rank)")
        }
        let lead = Array(indices.shape.dropLast()), tail = Array(data.tensor.shape[k...])
        guard updates.shape == lead + tail else { throw ctx.fail("updates \(updates.shape) must be \(lead + tail) for indices \(indices.shape) into \(data.shape)") }
        let slice = tail.reduce(1, *), count = lead.reduce(1, *)
        let strides = data.tensor.strides
        var out = data.tensor.data
        for i in 0 ..< count {
            var offset = 0
            for a in 0 ..< k {
                var j = ONNXInitializer.clampedInt(indices.data[i * k + a])
                let n = data.tensor.shape[a]
                if j < 0 { j += n }
                guard j >= 0, j < n else { throw ctx.fail("index \(indices.data[i * k + a]) is out of range for axis \(a) of \(data.shape)") }
                offset += j * strides[a]
            }
            for e in 0 ..< slice {
                let u = updates.data[i * slice + e]
                switch reduction {
                case "add": out[offset + e] += u
                case "mul": out[offset + e] *= u
                case "max": out[offset + e] = Swift.max(out[offset + e], u)
                case "min": out[offset + e] = Swift.min(out[offset + e], u)
                default: out[offset + e] = u
                }
            }
        }
        return [ONNXValue(Tensor(shape: data.tensor.shape, data: out), data.type)]
    }

    static let gatherElements: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0), ind = try ctx.input(1)
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.shape.count)
        guard ind.shape.count == x.shape.count, (0 ..< x.shape.count).allSatisfy({ $0 == axis || ind.shape[$0] <= x.shape[$0] }) else {
            throw ctx.fail("indices \(ind.shape) do not fit input \(x.shape)")
        }
        let idx = try checkedIndices(ctx, ind, n: x.shape[axis])
        let t = Tensor(shape: ind.shape, data: idx.map { Float($0) })
        return [ONNXValue(result(Tensor_gather(x.tensor, axis: axis, indices: t), shape: ind.shape), x.type)]
    }

    static let expand: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        let shape = try ElementwiseOps.broadcastShape(ctx, x.shape, try ctx.input(1).integers)
        return [ONNXValue(result(broadcast(x.tensor, to: shape), shape: shape), x.type)]
    }

    /// Tile's output shape (the op and its shape rule): each axis times its repeat, checked.
    static func tileShape(_ ctx: ONNXOpContext, _ x: [Int], repeats: [Int]) throws -> [Int] {
        guard repeats.count == x.count, repeats.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("repeats \(repeats) for input \(x)") }
        let shape = try zip(x, repeats).map { a, r in
            let (y, overflow) = a.multipliedReportingOverflow(by: r)
            guard !overflow else { throw ctx.fail("repeats \(repeats) for input \(x) overflow") }
            return y
        }
        try ctx.checkSize(shape)
        return shape
    }

    static let tile: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        let repeats = try ctx.input(1).integers
        let shape = try tileShape(ctx, x.shape, repeats: repeats)
        if Tensor.count(of: shape) == 0 { return [ONNXValue(Tensor(zeros: shape), x.type)] }
        var y = x.tensor
        for (a, r) in repeats.enumerated() where r != 1 {
            let n = y.shape[a]
            y = indexSelect(y, axis: a, indices: (0 ..< r).flatMap { _ in 0 ..< n })
        }
        return [ONNXValue(y, x.type)]
    }

    static let shape: ONNXOpImplementation = { ctx in
        [ONNXValue.ints(try shapeSlice(ctx, try ctx.input(0).shape))]
    }

    /// The dims of `s` a Shape node returns (its start and end attributes).
    static func shapeSlice(_ ctx: ONNXOpContext, _ s: [Int]) throws -> [Int] {
        let r = s.count
        func clampAxis(_ a: Int) -> Int { Swift.min(Swift.max(a < 0 ? a + r : a, 0), r) }
        let start = clampAxis(try ctx.int("start", default: 0)), end = clampAxis(try ctx.int("end", default: r))
        return start < end ? Array(s[start ..< end]) : []
    }

    static let size: ONNXOpImplementation = { ctx in
        [ONNXValue(Tensor(scalar: Float(try ctx.tensor(0).count)), .int64)]
    }

    static let constantOfShape: ONNXOpImplementation = { ctx in
        let shape = try ctx.input(0).integers
        try ctx.checkSize(shape)
        var value: Float = 0, type = ONNXElementType.float
        if case .tensor(let t)? = ctx.node.attributes["value"] {
            guard t.count == 1 else { throw ctx.fail("value must hold one number") }
            value = try t.tensor().data[0]
            type = t.elementType
        }
        return [ONNXValue(Tensor(repeating: value, shape: shape), type)]
    }

    static let range: ONNXOpImplementation = { ctx in
        let s = try ctx.input(0), l = try ctx.tensor(1), d = try ctx.tensor(2)
        guard s.tensor.count == 1, l.count == 1, d.count == 1 else { throw ctx.fail("start, limit and delta must be scalars") }
        let start = s.tensor.data[0], limit = l.data[0], delta = d.data[0]
        guard delta != 0, start.isFinite, limit.isFinite, delta.isFinite else { throw ctx.fail("delta must be a finite non-zero number") }
        let steps = ((limit - start) / delta).rounded(.up)
        guard steps < Float(Budget.tensorBytes / 4) else { throw ctx.fail("\(steps) values from \(start) to \(limit) by \(delta) are too many") }
        let n = Swift.max(Int(steps), 0)
        try ctx.checkSize([n])   // and, while folding, a large range is left to run time
        return [ONNXValue(Tensor(shape: [n], data: (0 ..< n).map { start + Float($0) * delta }), s.type)]
    }

    static let constant: ONNXOpImplementation = { ctx in
        switch ctx.node.attributes.first(where: { $0.key.hasPrefix("value") || $0.key == "sparse_value" }) {
        case (_, .tensor(let t))?:
            let type: ONNXElementType = [.double, .float16, .bfloat16].contains(t.elementType) ? .float : t.elementType
            return [ONNXValue(try t.tensor(), type)]
        case ("value_float", .float(let v))?: return [ONNXValue(Tensor(scalar: v))]
        case ("value_floats", .floats(let v))?: return [ONNXValue(Tensor(shape: [v.count], data: v))]
        case ("value_int", .int(let v))?: return [ONNXValue(Tensor(scalar: Float(v)), .int64)]
        case ("value_ints", .ints(let v))?: return [ONNXValue.ints(v)]
        case let other?: throw ctx.fail("attribute '\(other.key)' is not a supported constant")
        case nil: throw ctx.fail("no value attribute")
        }
    }

    /// Pad, constant mode (non-negative pads).
    static let pad: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        let (before, after, value) = try padAmounts(ctx, x.shape)
        try ctx.checkSize((0 ..< x.shape.count).map { x.shape[$0] + before[$0] + after[$0] })
        return [ONNXValue(padConstant(x.tensor, before: before, after: after, value: value), x.type)]
    }

    static func padShape(_ ctx: ONNXOpContext, _ x: [Int]) throws -> [Int] {
        let (before, after, _) = try padAmounts(ctx, x)
        return (0 ..< x.count).map { x[$0] + before[$0] + after[$0] }
    }

    /// The padding before and after each axis and the constant.
    static func padAmounts(_ ctx: ONNXOpContext, _ x: [Int]) throws -> ([Int], [Int], Float) {
        let r = x.count
        let mode = try ctx.string("mode", default: "constant")
        guard mode == "constant" else { throw ctx.fail("mode '\(mode)' is not supported (constant)") }
        var pads: [Int], value: Float = 0
        if ctx.opset < 11 {
            pads = try ctx.ints("pads") ?? []
            value = try ctx.float("value", default: 0)
        } else {
            pads = try ctx.input(1).integers
            if let v = ctx.optional(2), v.tensor.count > 0 { value = v.tensor.data[0] }
        }
        var before = [Int](repeating: 0, count: r), after = [Int](repeating: 0, count: r)
        let axes = try (ctx.opset >= 18 ? ctx.optional(3)?.integers : nil).map { try $0.map { try ctx.axis($0, rank: r) } } ?? Array(0 ..< r)
        guard pads.count == 2 * axes.count, pads.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("pads \(pads) for \(axes.count) axes (negative pads are not supported)") }
        for (k, a) in axes.enumerated() { before[a] = pads[k]; after[a] = pads[k + axes.count] }
        return (before, after, value)
    }
}

// The engine's functions under names ShapeOps' statics do not shadow.
private func engineConcat(_ xs: [Tensor], axis: Int) -> Tensor { concat(xs, axis: axis) }
private func engineSlice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor { slice(x, axis: axis, range: range) }
private func Tensor_gather(_ x: Tensor, axis: Int, indices: Tensor) -> Tensor { gather(x, axis: axis, indices: indices) }
