import Foundation
import Tensor

/// Element-wise ONNX ops: broadcasting arithmetic, unary maths, activations, comparisons, Where and Cast.
/// Integer-typed results are truncated toward zero, as ONNX integer arithmetic is.
enum ElementwiseOps {
    /// The broadcast shape of two inputs, or an error naming both.
    static func broadcastShape(_ ctx: ONNXOpContext, _ a: [Int], _ b: [Int]) throws -> [Int] {
        let r = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0 ..< r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard da == db || da == 1 || db == 1 else { throw ctx.fail("shapes \(a) and \(b) do not broadcast") }
            out[i] = da == 1 ? db : da
        }
        try ctx.checkSize(out)
        return out
    }

    static func truncated(_ t: Tensor) -> Tensor { mapElements(t, cost: 1) { $0.rounded(.towardZero) } }

    /// A broadcasting binary op; the result has the first input's type (integers truncated).
    static func binary(_ ctx: ONNXOpContext, _ f: (Tensor, Tensor) -> Tensor) throws -> [ONNXValue] {
        let a = try ctx.input(0), b = try ctx.input(1)
        _ = try broadcastShape(ctx, a.shape, b.shape)
        let y = f(a.tensor, b.tensor)
        return [ONNXValue(a.type.isInteger ? truncated(y) : y, a.type)]
    }

    static func comparison(_ ctx: ONNXOpContext, _ f: (Tensor, Tensor) -> Tensor) throws -> [ONNXValue] {
        let a = try ctx.input(0), b = try ctx.input(1)
        _ = try broadcastShape(ctx, a.shape, b.shape)
        return [ONNXValue(f(a.tensor, b.tensor), .bool)]
    }

    static func unary(_ ctx: ONNXOpContext, _ f: (Tensor) -> Tensor) throws -> [ONNXValue] {
        let x = try ctx.input(0)
        return [ONNXValue(f(x.tensor), x.type)]
    }

    static let add: ONNXOpImplementation = { ctx in try binary(ctx, +) }
    static let sub: ONNXOpImplementation = { ctx in try binary(ctx, -) }
    static let mul: ONNXOpImplementation = { ctx in try binary(ctx, *) }
    static let div: ONNXOpImplementation = { ctx in try binary(ctx, /) }
    static let pow: ONNXOpImplementation = { ctx in
        let a = try ctx.input(0), b = try ctx.input(1)
        _ = try broadcastShape(ctx, a.shape, b.shape)
        let y = power(a.tensor, b.tensor)
        return [ONNXValue(a.type.isInteger ? truncated(y) : y, a.type)]
    }
    static let mod: ONNXOpImplementation = { ctx in
        let fmod = try ctx.int("fmod", default: 0) != 0
        return try binary(ctx) { remainder($0, $1, truncated: fmod) }
    }

    static let sqrt: ONNXOpImplementation = { ctx in try unary(ctx, engineSqrt) }
    static let exp: ONNXOpImplementation = { ctx in try unary(ctx, engineExp) }
    static let log: ONNXOpImplementation = { ctx in try unary(ctx, engineLog) }
    static let neg: ONNXOpImplementation = { ctx in try unary(ctx) { -$0 } }
    static let abs: ONNXOpImplementation = { ctx in try unary(ctx, engineAbs) }
    static let tanh: ONNXOpImplementation = { ctx in try unary(ctx, engineTanh) }
    static let erf: ONNXOpImplementation = { ctx in try unary(ctx) { mapElements($0) { erff($0) } } }
    static let reciprocal: ONNXOpImplementation = { ctx in try unary(ctx) { 1 / $0 } }
    static let floor: ONNXOpImplementation = { ctx in try unary(ctx) { mapElements($0, cost: 1) { $0.rounded(.down) } } }
    static let ceil: ONNXOpImplementation = { ctx in try unary(ctx) { mapElements($0, cost: 1) { $0.rounded(.up) } } }
    /// Halves to even, as ONNX Round.
    static let round: ONNXOpImplementation = { ctx in try unary(ctx) { mapElements($0, cost: 1) { $0.rounded(.toNearestOrEven) } } }
    static let sin: ONNXOpImplementation = { ctx in try unary(ctx) { mapElements($0) { sinf($0) } } }
    static let cos: ONNXOpImplementation = { ctx in try unary(ctx) { mapElements($0) { cosf($0) } } }

    static let relu: ONNXOpImplementation = { ctx in try unary(ctx, engineRelu) }
    static let sigmoid: ONNXOpImplementation = { ctx in try unary(ctx, engineSigmoid) }
    static let hardSigmoid: ONNXOpImplementation = { ctx in
        let alpha = try ctx.float("alpha", default: 0.2), beta = try ctx.float("beta", default: 0.5)
        return try unary(ctx) { mapElements($0, cost: 2) { Swift.max(0, Swift.min(1, alpha * $0 + beta)) } }
    }
    static let hardSwish: ONNXOpImplementation = { ctx in try unary(ctx, engineHardswish) }
    static let leakyRelu: ONNXOpImplementation = { ctx in
        let alpha = try ctx.float("alpha", default: 0.01)
        return try unary(ctx) { engineLeakyRelu($0, alpha) }
    }
    static let elu: ONNXOpImplementation = { ctx in
        let alpha = try ctx.float("alpha", default: 1)
        return try unary(ctx) { mapElements($0) { $0 >= 0 ? $0 : alpha * (expf($0) - 1) } }
    }
    static let gelu: ONNXOpImplementation = { ctx in
        switch try ctx.string("approximate", default: "none") {
        case "none": return try unary(ctx, engineGelu)
        case "tanh":
            return try unary(ctx) {
                mapElements($0, cost: 16) { v in 0.5 * v * (1 + tanhf(0.7978845608028654 * (v + 0.044715 * v * v * v))) }
            }
        case let other: throw ctx.fail("approximate '\(other)' is not one of none, tanh")
        }
    }
    /// log(1 + exp(x)), without overflow for large x.
    static let softplus: ONNXOpImplementation = { ctx in
        try unary(ctx) { mapElements($0, cost: 16) { v in v > 20 ? v : log1pf(expf(v)) } }
    }
    static let mish: ONNXOpImplementation = { ctx in
        try unary(ctx) { mapElements($0, cost: 16) { v in v * tanhf(v > 20 ? v : log1pf(expf(v))) } }
    }

    /// Clip: bounds from inputs 1 and 2 (opset 11+) or the min/max attributes (earlier).
    static let clip: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        var lo = -Float.infinity, hi = Float.infinity
        if ctx.opset < 11 {
            lo = try ctx.float("min", default: lo)
            hi = try ctx.float("max", default: hi)
        } else {
            if let m = ctx.optional(1) {
                guard m.tensor.count == 1 else { throw ctx.fail("min must be a scalar, got \(m.shape)") }
                lo = m.tensor.data[0]
            }
            if let m = ctx.optional(2) {
                guard m.tensor.count == 1 else { throw ctx.fail("max must be a scalar, got \(m.shape)") }
                hi = m.tensor.data[0]
            }
        }
        return [ONNXValue(clamp(x.tensor, min: lo, max: hi), x.type)]
    }

    /// Min / Max of any number of inputs, broadcast together.
    static func variadic(_ ctx: ONNXOpContext, _ f: (Tensor, Tensor) -> Tensor) throws -> [ONNXValue] {
        var acc = try ctx.input(0)
        for i in 1 ..< ctx.inputs.count {
            let b = try ctx.input(i)
            _ = try broadcastShape(ctx, acc.shape, b.shape)
            acc.tensor = f(acc.tensor, b.tensor)
        }
        return [acc]
    }
    static let min: ONNXOpImplementation = { ctx in try variadic(ctx, engineMinimum) }
    static let max: ONNXOpImplementation = { ctx in try variadic(ctx, engineMaximum) }

    static let equal: ONNXOpImplementation = { ctx in try comparison(ctx) { compare($0, $1, .equal) } }
    static let greater: ONNXOpImplementation = { ctx in try comparison(ctx) { compare($0, $1, .greater) } }
    static let less: ONNXOpImplementation = { ctx in try comparison(ctx) { compare($0, $1, .less) } }
    static let greaterOrEqual: ONNXOpImplementation = { ctx in try comparison(ctx) { 1 - compare($0, $1, .less) } }
    static let lessOrEqual: ONNXOpImplementation = { ctx in try comparison(ctx) { 1 - compare($0, $1, .greater) } }
    static let and: ONNXOpImplementation = { ctx in try comparison(ctx) { compare($0, $1, .and) } }
    static let or: ONNXOpImplementation = { ctx in try comparison(ctx) { compare($0, $1, .or) } }
    static let xor: ONNXOpImplementation = { ctx in try comparison(ctx) { compare($0, $1, .xor) } }
    static let not: ONNXOpImplementation = { ctx in
        [ONNXValue(mapElements(try ctx.tensor(0), cost: 1) { $0 == 0 ? 1 : 0 }, .bool)]
    }

    static let `where`: ONNXOpImplementation = { ctx in
        let c = try ctx.input(0), a = try ctx.input(1), b = try ctx.input(2)
        let s = try broadcastShape(ctx, c.shape, a.shape)
        _ = try broadcastShape(ctx, s, b.shape)
        return [ONNXValue(select(c.tensor, a.tensor, b.tensor), a.type)]
    }

    /// Cast to the `to` type: to an integer type truncates toward zero, to bool is "not zero".
    static let cast: ONNXOpImplementation = { ctx in
        let x = try ctx.input(0)
        guard let code = try ctx.int("to"), let to = ONNXElementType(rawValue: code) else {
            throw ctx.fail("attribute 'to' is missing or not an element type")
        }
        switch to {
        case .string, .complex64, .complex128: throw ctx.fail("casting to \(to.name) is not supported")
        case .bool: return [ONNXValue(mapElements(x.tensor, cost: 1) { $0 != 0 ? 1 : 0 }, .bool)]
        case .float16: return [ONNXValue(mapElements(x.tensor, cost: 1) { Float(Float16($0)) }, .float)]
        case .bfloat16: return [ONNXValue(mapElements(x.tensor, cost: 1) { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }, .float)]
        case .float, .double: return [ONNXValue(x.tensor, .float)]
        default:
            return [ONNXValue(x.type.isInteger ? x.tensor : truncated(x.tensor), to)]
        }
    }

    static let identity: ONNXOpImplementation = { ctx in [try ctx.input(0)] }
}

// The engine's free functions under names the statics above do not shadow.
private func engineSqrt(_ x: Tensor) -> Tensor { sqrt(x) }
private func engineExp(_ x: Tensor) -> Tensor { exp(x) }
private func engineLog(_ x: Tensor) -> Tensor { log(x) }
private func engineAbs(_ x: Tensor) -> Tensor { abs(x) }
private func engineTanh(_ x: Tensor) -> Tensor { tanh(x) }
private func engineRelu(_ x: Tensor) -> Tensor { relu(x) }
private func engineSigmoid(_ x: Tensor) -> Tensor { sigmoid(x) }
private func engineHardswish(_ x: Tensor) -> Tensor { hardswish(x) }
private func engineGelu(_ x: Tensor) -> Tensor { gelu(x) }
private func engineLeakyRelu(_ x: Tensor, _ slope: Float) -> Tensor { leakyRelu(x, slope: slope) }
private func engineMinimum(_ a: Tensor, _ b: Tensor) -> Tensor { minimum(a, b) }
private func engineMaximum(_ a: Tensor, _ b: Tensor) -> Tensor { maximum(a, b) }
