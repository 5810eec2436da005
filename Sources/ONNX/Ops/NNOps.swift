import Foundation
import Tensor

/// Neural-network ONNX ops: convolution, normalisation, matrix products, softmax, pooling, Resize, GridSample.
/// Shapes and attributes are checked here, before the engine's op runs (the engine stops on a bad shape).
enum NNOps {
    /// The (begin, end) padding of one spatial axis from `pads` or `auto_pad`, and the output length.
    static func padding(_ ctx: ONNXOpContext, spatial: Int, sizes: [Int], kernel: [Int], strides: [Int],
                        dilations: [Int]) throws -> [(Int, Int)] {
        let autoPad = try ctx.string("auto_pad", default: "NOTSET")
        let pads = try ctx.ints("pads") ?? [Int](repeating: 0, count: 2 * spatial)
        guard pads.count == 2 * spatial, pads.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else {
            throw ctx.fail("pads \(pads) for \(spatial) spatial axes")
        }
        var out: [(Int, Int)] = []
        for d in 0 ..< spatial {
            let effective = (kernel[d] - 1) * dilations[d] + 1
            switch autoPad {
            case "NOTSET": out.append((pads[d], pads[d + spatial]))
            case "VALID": out.append((0, 0))
            case "SAME_UPPER", "SAME_LOWER":
                let outLen = (sizes[d] + strides[d] - 1) / strides[d]
                let total = Swift.max(0, (outLen - 1) * strides[d] + effective - sizes[d])
                let small = total / 2, large = total - small
                out.append(autoPad == "SAME_UPPER" ? (small, large) : (large, small))
            default: throw ctx.fail("auto_pad '\(autoPad)' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
            }
        }
        return out
    }

    /// The input padded explicitly when its padding is not the same on both sides of each axis (the engine's
    /// convolution and pooling take one symmetric padding per axis); returns the input and that padding.
    static func symmetric(_ x: Tensor, _ pads: [(Int, Int)], value: Float) -> (Tensor, [Int]) {
        if pads.allSatisfy({ $0.0 == $0.1 }) { return (x, pads.map(\.0)) }
        let before = [0, 0] + pads.map { $0.0 }, after = [0, 0] + pads.map { $0.1 }
        return (padConstant(x, before: before, after: after, value: value), pads.map { _ in 0 })
    }

    /// Conv (1-D and 2-D; a 1-D conv runs as 2-D with height 1). Bias and groups as the spec; dilation, stride,
    /// explicit or automatic padding.
    /// A 1-D or 2-D convolution node's geometry for input and weight shapes, every attribute checked against them:
    /// strides, dilations, (begin, end) pads per spatial axis, the group and the output shape. The op and its shape
    /// rule both use it.
    static func convGeometry(_ ctx: ONNXOpContext, x: [Int], w: [Int]) throws
        -> (strides: [Int], dilations: [Int], pads: [(Int, Int)], group: Int, output: [Int]) {
        guard x.count == 3 || x.count == 4, w.count == x.count else {
            throw ctx.fail("only 1-D and 2-D convolutions are supported: input \(x), weight \(w)")
        }
        let spatial = x.count - 2
        let k = Array(w[2...]), sizes = Array(x[2...])
        if let ks = try ctx.ints("kernel_shape"), ks != k { throw ctx.fail("kernel_shape \(ks) differs from the weight \(w)") }
        let strides = try ctx.ints("strides") ?? [Int](repeating: 1, count: spatial)
        let dilations = try ctx.ints("dilations") ?? [Int](repeating: 1, count: spatial)
        guard strides.count == spatial, dilations.count == spatial, (strides + dilations).allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) }) else {
            throw ctx.fail("strides \(strides) and dilations \(dilations) must be \(spatial) positive numbers")
        }
        let group = try ctx.int("group", default: 1)
        let cin = x[1], cout = w[0]
        guard group >= 1, cin % group == 0, cout % group == 0, w[1] * group == cin else {
            throw ctx.fail("weight \(w) with group \(group) does not fit input \(x)")
        }
        let pads = try padding(ctx, spatial: spatial, sizes: sizes, kernel: k, strides: strides, dilations: dilations)
        var output = [x[0], cout]
        for a in 0 ..< spatial {
            let effective = sizes[a] == 0 ? 0 : (k[a] - 1) * dilations[a] + 1
            guard sizes[a] + pads[a].0 + pads[a].1 >= effective, k[a] >= 1 else {
                throw ctx.fail("kernel \(w) is larger than the padded input \(x)")
            }
            output.append((sizes[a] + pads[a].0 + pads[a].1 - effective) / strides[a] + 1)
        }
        try ctx.checkSize(output)
        return (strides, dilations, pads, group, output)
    }

    static let conv: ONNXOpImplementation = { ctx in
        var x = try ctx.tensor(0), w = try ctx.tensor(1)
        let b = ctx.optional(2)?.tensor
        let (strides, dilations, geometryPads, group, _) = try convGeometry(ctx, x: x.shape, w: w.shape)
        let cout = w.shape[0]
        if let b { guard b.count == cout else { throw ctx.fail("bias \(b.shape) for \(cout) output channels") } }
        let oneD = x.rank == 3
        if oneD {
            x = x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]])
            w = w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]])
        }
        let pads = oneD ? [(0, 0)] + geometryPads : geometryPads
        let s2 = oneD ? [1] + strides : strides, d2 = oneD ? [1] + dilations : dilations
        let (xp, p) = symmetric(x, pads, value: 0)
        var y = conv2d(xp, weight: w, bias: b, stride: (s2[0], s2[1]), padding: (p[0], p[1]),
                       dilation: (d2[0], d2[1]), groups: group, activation: ctx.node.fusedActivation ?? .identity)
        if oneD { y = y.reshaped([y.shape[0], y.shape[1], y.shape[3]]) }
        return [ONNXValue(y)]
    }

    static let batchNormalization: ONNXOpImplementation = { ctx in
        let x = try ctx.tensor(0)
        let params = try (1 ... 4).map { try ctx.tensor($0) }
        guard x.rank >= 2, params.allSatisfy({ $0.count == x.shape[1] }) else {
            throw ctx.fail("scale, bias, mean and variance must have \(x.rank >= 2 ? x.shape[1] : 0) values for input \(x.shape)")
        }
        let eps = try ctx.float("epsilon", default: 1e-5)
        return [ONNXValue(batchNorm(x, gamma: params[0], beta: params[1], mean: params[2], variance: params[3], eps: eps))]
    }

    /// Gemm: alpha * A' B' + beta * C (C broadcast to [M, N]).
    static let gemm: ONNXOpImplementation = { ctx in
        let a = try ctx.tensor(0), b = try ctx.tensor(1)
        let ta = try ctx.int("transA", default: 0) != 0, tb = try ctx.int("transB", default: 0) != 0
        let alpha = try ctx.float("alpha", default: 1), beta = try ctx.float("beta", default: 1)
        guard a.rank == 2, b.rank == 2 else { throw ctx.fail("A \(a.shape) and B \(b.shape) must be matrices") }
        let m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1]
        let kb = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1]
        guard k == kb else { throw ctx.fail("inner dimensions differ: A \(a.shape)\(ta ? "ᵀ" : "") x B \(b.shape)\(tb ? "ᵀ" : "")") }
        try ctx.checkSize([m, n])
        var y = matmul(a, b, transposeA: ta, transposeB: tb)
        if alpha != 1 { y = y * alpha }
        if let c = ctx.optional(2)?.tensor, beta != 0 {
            _ = try ElementwiseOps.broadcastShape(ctx, [m, n], c.shape)
            guard broadcastShapeIs([m, n], c.shape) else { throw ctx.fail("C \(c.shape) does not broadcast to [\(m), \(n)]") }
            y = y + (beta == 1 ? c : c * beta)
        }
        return [ONNXValue(y)]
    }

    static func broadcastShapeIs(_ target: [Int], _ s: [Int]) -> Bool {
        s.count <= target.count && zip(s.reversed(), target.reversed()).allSatisfy { $0 == $1 || $0 == 1 }
    }

    /// MatMul with NumPy semantics: 1-D operands gain a dimension that is removed again, batch dims broadcast.
    static let matMul: ONNXOpImplementation = { ctx in
        if ctx.node.fusedLinear {
            // x [..., K] by weight [N, K] plus bias (the interpreter's MatMul+Add fusion).
            let x = try ctx.tensor(0), w = try ctx.tensor(1), bias = try ctx.tensor(2)
            guard x.rank >= 1, x.shape[x.rank - 1] == w.shape[1] else { throw ctx.fail("inner dimensions differ: \(x.shape) x \(w.shape)ᵀ") }
            try ctx.checkSize(Array(x.shape.dropLast()) + [w.shape[0]])
            return [ONNXValue(linear(x, weight: w, bias: bias.reshaped([bias.count])))]
        }
        var a = try ctx.tensor(0), b = try ctx.tensor(1)
        guard a.rank >= 1, b.rank >= 1 else { throw ctx.fail("operands must not be scalars: \(a.shape) x \(b.shape)") }
        let vecA = a.rank == 1, vecB = b.rank == 1
        if vecA { a = a.reshaped([1, a.shape[0]]) }
        if vecB { b = b.reshaped([b.shape[0], 1]) }
        guard a.shape[a.rank - 1] == b.shape[b.rank - 2] else { throw ctx.fail("inner dimensions differ: \(a.shape) x \(b.shape)") }
        let batch = try ElementwiseOps.broadcastShape(ctx, Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)))
        try ctx.checkSize(batch + [a.shape[a.rank - 2], b.shape[b.rank - 1]])
        var y = matmul(a, b)
        if vecA { y = y.reshaped(Array(y.shape.dropLast(2)) + [y.shape[y.rank - 1]]) }
        if vecB { y = y.reshaped(Array(y.shape.dropLast(1))) }
        return [ONNXValue(y)]
    }

    /// Softmax along `axis` (opset 13+), or over the flattened dims from `axis` on (earlier opsets, default axis 1).
    static func softmaxLike(_ ctx: ONNXOpContext, log: Bool) throws -> [ONNXValue] {
        let x = try ctx.tensor(0)
        if x.count == 0 { return [ONNXValue(x)] }
        let legacy = ctx.opset < 13
        let axis = try ctx.axis(try ctx.int("axis", default: legacy ? 1 : -1), rank: x.rank)
        var y: Tensor
        if legacy {
            let outer = x.shape[..<axis].reduce(1, *)
            y = engineSoftmax(x.reshaped([outer, x.count / outer]), axis: 1).reshaped(x.shape)
        } else {
            y = engineSoftmax(x, axis: axis)
        }
        if log { y = mapElements(y) { logf($0) } }
        return [ONNXValue(y)]
    }
    static let softmax: ONNXOpImplementation = { ctx in try softmaxLike(ctx, log: false) }
    static let logSoftmax: ONNXOpImplementation = { ctx in try softmaxLike(ctx, log: true) }

    /// LayerNormalization over the dims from `axis` on (scale and bias of those dims' shape).
    static let layerNormalization: ONNXOpImplementation = { ctx in
        let x = try ctx.tensor(0), scale = try ctx.tensor(1), bias = ctx.optional(2)?.tensor
        let axis = try ctx.axis(try ctx.int("axis", default: -1), rank: x.rank)
        let eps = try ctx.float("epsilon", default: 1e-5)
        let inner = x.shape[axis...].reduce(1, *)
        guard scale.count == inner, bias == nil || bias!.count == inner else {
            throw ctx.fail("scale \(scale.shape) and bias \(bias?.shape ?? []) must have the \(inner) values of \(Array(x.shape[axis...]))")
        }
        let flat = x.reshaped([x.count / Swift.max(inner, 1), inner])
        let y = layerNorm(flat, weight: scale.reshaped([inner]), bias: bias?.reshaped([inner]), eps: eps)
        return [ONNXValue(y.reshaped(x.shape))]
    }

    /// InstanceNormalization of [N, C, ...] (what torch.onnx writes for GroupNorm, after a reshape to [N, groups, -1]):
    /// each (n, c) normalised over its other dims, then scale[c] and bias[c].
    static let instanceNormalization: ONNXOpImplementation = { ctx in
        let x = try ctx.tensor(0), scale = try ctx.tensor(1), bias = try ctx.tensor(2)
        guard x.rank >= 3, scale.count == x.shape[1], bias.count == x.shape[1] else {
            throw ctx.fail("input \(x.shape) must be [N, C, ...] with scale \(scale.shape) and bias \(bias.shape) of C values")
        }
        let eps = try ctx.float("epsilon", default: 1e-5)
        let c = x.shape[1], inner = x.count / Swift.max(x.shape[0] * c, 1)
        var out = x.data
        for p in 0 ..< x.shape[0] * c where inner > 0 {
            let base = p * inner
            var mean: Float = 0
            for i in 0 ..< inner { mean += out[base + i] }
            mean /= Float(inner)
            var variance: Float = 0
            for i in 0 ..< inner { let d = out[base + i] - mean; variance += d * d }
            variance /= Float(inner)
            let k = scale.data[p % c] / (variance + eps).squareRoot(), b = bias.data[p % c]
            for i in 0 ..< inner { out[base + i] = (out[base + i] - mean) * k + b }
        }
        return [ONNXValue(Tensor(shape: x.shape, data: out))]
    }

    /// A 2-D pooling node's geometry for an input of `shape` [N, C, H, W], every attribute checked: kernel, strides,
    /// dilations, (begin, end) pads, ceil mode and the output shape. The op and its shape rule both use it.
    static func poolGeometry(_ ctx: ONNXOpContext, shape: [Int]) throws
        -> (kernel: [Int], strides: [Int], dilations: [Int], pads: [(Int, Int)], ceil: Bool, output: [Int]) {
        guard shape.count == 4 else { throw ctx.fail("only 2-D pooling of [N, C, H, W] is supported, got \(shape)") }
        guard let k = try ctx.ints("kernel_shape"), k.count == 2, k.allSatisfy({ $0 >= 1 }) else {
            throw ctx.fail("kernel_shape must be two positive numbers")
        }
        let strides = try ctx.ints("strides") ?? [1, 1]
        let dilations = try ctx.ints("dilations") ?? [1, 1]
        let small = { (v: [Int]) in v.count == 2 && v.allSatisfy { $0 >= 1 && $0 <= Int(Int32.max) } }
        guard small(k) else { throw ctx.fail("kernel_shape \(k) must be two positive numbers") }
        guard small(strides) else { throw ctx.fail("strides \(strides) must be two positive numbers") }
        guard small(dilations) else { throw ctx.fail("dilations \(dilations) must be two positive numbers") }
        let pads = try padding(ctx, spatial: 2, sizes: [shape[2], shape[3]], kernel: k, strides: strides, dilations: dilations)
        let ceil = try ctx.int("ceil_mode", default: 0) != 0
        for a in 0 ..< 2 {
            guard shape[2 + a] + pads[a].0 + pads[a].1 >= (k[a] - 1) * dilations[a] + 1 else {
                throw ctx.fail("kernel \(k) with dilations \(dilations) and pads \(pads.map { [$0.0, $0.1] }) does not fit input \(shape)")
            }
            guard pads[a].0 < (k[a] - 1) * dilations[a] + 1, pads[a].1 < (k[a] - 1) * dilations[a] + 1 else {
                throw ctx.fail("pads \(pads.map { [$0.0, $0.1] }) must be smaller than the kernel \(k)")
            }
        }
        let sizes = SamplingOps.outputSizes(sizes: [shape[2], shape[3]], kernel: k, strides: strides, dilations: dilations, pads: pads, ceil: ceil)
        try ctx.checkSize([shape[0], shape[1]] + sizes)
        return (k, strides, dilations, pads, ceil, [shape[0], shape[1]] + sizes)
    }

    /// Pooling of [N, C, H, W]: the engine's square, symmetric pooling when kernel, stride and padding are one number
    /// each, else the general loop (rectangular kernels, asymmetric pads, dilations; SamplingOps.pool).
    static func pool(_ ctx: ONNXOpContext, max: Bool) throws -> Tensor {
        let x = try ctx.tensor(0)
        let (k, strides, dilations, pads, ceil, _) = try poolGeometry(ctx, shape: x.shape)
        let includePad = try ctx.int("count_include_pad", default: 0) != 0
        let p = pads[0].0
        if k[0] == k[1], strides[0] == strides[1], dilations == [1, 1], Set(pads.flatMap { [$0.0, $0.1] }).count == 1, p * 2 <= k[0] {
            return max ? maxPool2d(x, kernel: k[0], stride: strides[0], padding: p, ceilMode: ceil)
                : avgPool2d(x, kernel: k[0], stride: strides[0], padding: p, ceilMode: ceil, countIncludePad: includePad)
        }
        return SamplingOps.pool(x, kernel: k, strides: strides, dilations: dilations, pads: pads, ceil: ceil, max: max, includePad: includePad)
    }

    static let maxPool: ONNXOpImplementation = { ctx in
        guard ctx.node.outputs.count < 2 || ctx.node.outputs[1].isEmpty else { throw ctx.fail("MaxPool's Indices output is not supported") }
        return [ONNXValue(try pool(ctx, max: true))]
    }

    static let averagePool: ONNXOpImplementation = { ctx in [ONNXValue(try pool(ctx, max: false))] }

    /// The mean or max over every spatial position of [N, C, ...], kept as size-1 dims.
    static func globalPool(_ ctx: ONNXOpContext, _ reduce: (Tensor, Int) -> Tensor) throws -> [ONNXValue] {
        let x = try ctx.tensor(0)
        guard x.rank >= 3 else { throw ctx.fail("input must be [N, C, ...], got \(x.shape)") }
        let n = x.shape[0], c = x.shape[1], inner = x.count / Swift.max(n * c, 1)
        guard inner > 0 else { throw ctx.fail("input \(x.shape) has no spatial values") }
        let y = reduce(x.reshaped([n, c, inner]), 2)
        return [ONNXValue(y.reshaped([n, c] + [Int](repeating: 1, count: x.rank - 2)))]
    }
    static let globalAveragePool: ONNXOpImplementation = { ctx in try globalPool(ctx) { mean($0, axis: $1) } }
    static let globalMaxPool: ONNXOpImplementation = { ctx in try globalPool(ctx) { engineMax($0, axis: $1) } }

    /// Scales over all 4 dims (the `axes` attribute's [2, 3] form widened).
    static func resizeScales(_ ctx: ONNXOpContext, _ scales: [Float]?) -> [Float] {
        guard let s = scales else { return [] }
        return s.count == 2 ? [1, 1] + s : s
    }

    /// The output shape of a Resize of `x` (4-D) to `sizes` or by `scales` (floor of size times scale).
    static func resizeShape(_ ctx: ONNXOpContext, x: [Int], scales scalesIn: [Float]?, sizes sizesIn: [Int]?) throws -> [Int] {
        guard x.count == 4 else { throw ctx.fail("only [N, C, H, W] inputs are supported, got \(x)") }
        var scales = scalesIn, sizes = sizesIn
        if let a = try ctx.ints("axes"), a.map({ $0 < 0 ? $0 + 4 : $0 }) != [0, 1, 2, 3] {
            guard a.count == 2, a.map({ $0 < 0 ? $0 + 4 : $0 }) == [2, 3] else { throw ctx.fail("axes \(a) are not supported") }
            scales = scales.map { [1, 1] + $0 }
            sizes = sizes.map { [x[0], x[1]] + $0 }
        }
        if let sizes {
            guard sizes.count == 4, sizes[0] == x[0], sizes[1] == x[1], sizes[2] >= 0, sizes[3] >= 0 else {
                throw ctx.fail("sizes \(sizes) must keep N and C of \(x)")
            }
            return sizes
        } else if let scales {
            guard scales.count == 4, scales[0] == 1, scales[1] == 1, scales[2] > 0, scales[3] > 0, scales[2] < 1e6, scales[3] < 1e6 else {
                throw ctx.fail("scales \(scales) must be 1 for N and C and positive for H and W")
            }
            return [x[0], x[1], Int((Float(x[2]) * scales[2]).rounded(.down)), Int((Float(x[3]) * scales[3]).rounded(.down))]
        }
        throw ctx.fail("neither scales nor sizes is given")
    }

    /// Resize of the last two dims of a 4-D tensor (N and C unscaled): nearest (every nearest_mode) or linear,
    /// with the coordinate transformation modes torch.onnx and ultralytics write.
    static let resize: ONNXOpImplementation = { ctx in
        let x = try ctx.tensor(0)
        guard x.rank == 4 else { throw ctx.fail("only [N, C, H, W] inputs are supported, got \(x.shape)") }
        let mode = try ctx.string("mode", default: "nearest")
        let coordinates = try ctx.string("coordinate_transformation_mode", default: "half_pixel")
        let nearestMode = try ctx.string("nearest_mode", default: "round_prefer_floor")
        guard try ctx.int("antialias", default: 0) == 0 else { throw ctx.fail("antialias 1 is not supported") }
        guard try ctx.string("keep_aspect_ratio_policy", default: "stretch") == "stretch" else {
            throw ctx.fail("keep_aspect_ratio_policy '\(try ctx.string("keep_aspect_ratio_policy", default: ""))' is not supported (stretch)")
        }
        var scales: [Float]? = nil, sizes: [Int]? = nil
        if ctx.opset < 11 {
            scales = try ctx.input(1).tensor.data
        } else {
            if let s = ctx.optional(2), s.tensor.count > 0 { scales = s.tensor.data }
            if let s = ctx.optional(3), s.tensor.count > 0 { sizes = s.integers }
        }
        let out = try resizeShape(ctx, x: x.shape, scales: scales, sizes: sizes)
        let outH = out[2], outW = out[3]
        let scaleH = sizes == nil ? resizeScales(ctx, scales)[2] : Float(outH) / Float(x.shape[2])
        let scaleW = sizes == nil ? resizeScales(ctx, scales)[3] : Float(outW) / Float(x.shape[3])
        try ctx.checkSize(out)
        /// The source coordinate of output index i along an axis of input length n, output length m.
        func source(_ i: Int, n: Int, m: Int, scale: Float) throws -> Float {
            let fi = Float(i)
            switch coordinates {
            case "half_pixel": return (fi + 0.5) / scale - 0.5
            case "pytorch_half_pixel": return m > 1 ? (fi + 0.5) / scale - 0.5 : 0
            case "align_corners": return m > 1 ? fi * Float(n - 1) / Float(m - 1) : 0
            case "asymmetric": return fi / scale
            case "tf_half_pixel_for_nn": return (fi + 0.5) / scale
            case "half_pixel_symmetric":
                let adjustment = Float(m) / (scale * Float(n)), center = Float(n) / 2
                return center * (1 - adjustment) + (fi + 0.5) / scale - 0.5
            default: throw ctx.fail("coordinate_transformation_mode '\(coordinates)' is not supported")
            }
        }
        let h = x.shape[2], w = x.shape[3]
        switch mode {
        case "nearest":
            // ultralytics' nn.Upsample(scale_factor=2): an integer upscale with floor indices.
            if coordinates == "asymmetric", nearestMode == "floor", scaleH == scaleW, scaleH >= 1, scaleH == scaleH.rounded(),
               outH == h * Int(scaleH), outW == w * Int(scaleW) {
                return [ONNXValue(upsampleNearest(x, scale: Int(scaleH)))]
            }
            func index(_ c: Float, _ n: Int) throws -> Int {
                let r: Float
                switch nearestMode {
                case "round_prefer_floor": r = c == c.rounded(.down) + 0.5 ? c.rounded(.down) : c.rounded()
                case "round_prefer_ceil": r = c.rounded()
                case "floor": r = c.rounded(.down)
                case "ceil": r = c.rounded(.up)
                default: throw ctx.fail("nearest_mode '\(nearestMode)' is not supported")
                }
                return Swift.min(Swift.max(Int(r), 0), n - 1)
            }
            let rows = try (0 ..< outH).map { try index(try source($0, n: h, m: outH, scale: scaleH), h) }
            let cols = try (0 ..< outW).map { try index(try source($0, n: w, m: outW, scale: scaleW), w) }
            guard h > 0 && w > 0 || outH * outW == 0 else { throw ctx.fail("cannot resize an empty input \(x.shape)") }
            return [ONNXValue(resizeNearest(x, rows: rows, columns: cols))]
        case "cubic", "bicubic":
            guard h > 0 && w > 0 else { throw ctx.fail("cannot resize an empty input \(x.shape)") }
            let a = try ctx.float("cubic_coeff_a", default: -0.75)
            let exclude = try ctx.int("exclude_outside", default: 0) != 0
            let rows = try (0 ..< outH).map { try source($0, n: h, m: outH, scale: scaleH) }
            let cols = try (0 ..< outW).map { try source($0, n: w, m: outW, scale: scaleW) }
            return [ONNXValue(SamplingOps.separable(x, rows: SamplingOps.cubicTaps(rows, n: h, a: a, excludeOutside: exclude),
                                                    cols: SamplingOps.cubicTaps(cols, n: w, a: a, excludeOutside: exclude)))]
        case "linear", "bilinear":
            guard h > 0 && w > 0 else { throw ctx.fail("cannot resize an empty input \(x.shape)") }
            let rows = try (0 ..< outH).map { try source($0, n: h, m: outH, scale: scaleH) }
            let cols = try (0 ..< outW).map { try source($0, n: w, m: outW, scale: scaleW) }
            return [ONNXValue(resizeBilinear(x, rows: rows, columns: cols))]
        default:
            throw ctx.fail("mode '\(mode)' is not supported (nearest, linear, cubic)")
        }
    }

    /// GridSample of [N, C, H, W] at a grid [N, Ho, Wo, 2]: the engine's grid sample for bilinear, zero padding,
    /// align_corners 0 (torch's F.grid_sample defaults, which multi-scale deformable attention uses), the general
    /// loop (SamplingOps.gridSample) for nearest and bicubic, border and reflection padding and align_corners 1.
    static let gridSample: ONNXOpImplementation = { ctx in
        let x = try ctx.tensor(0), grid = try ctx.tensor(1)
        let mode = try ctx.string("mode", default: ctx.opset >= 20 ? "linear" : "bilinear")
        let paddingMode = try ctx.string("padding_mode", default: "zeros")
        let align = try ctx.int("align_corners", default: 0)
        guard ["bilinear", "linear", "nearest", "bicubic", "cubic"].contains(mode), ["zeros", "border", "reflection"].contains(paddingMode),
              align == 0 || align == 1 else {
            throw ctx.fail("mode '\(mode)', padding_mode '\(paddingMode)', align_corners \(align) is not supported (modes linear, nearest, cubic; padding zeros, border, reflection)")
        }
        guard x.rank == 4, grid.rank == 4, grid.shape[3] == 2, grid.shape[0] == x.shape[0] else {
            throw ctx.fail("input \(x.shape) and grid \(grid.shape) must be [N, C, H, W] and [N, Ho, Wo, 2]")
        }
        try ctx.checkSize([x.shape[0], x.shape[1], grid.shape[1], grid.shape[2]])
        if mode == "bilinear" || mode == "linear", paddingMode == "zeros", align == 0 { return [ONNXValue(engineGridSample(x, grid: grid))] }
        return [ONNXValue(SamplingOps.gridSample(x, grid: grid, mode: mode, padding: paddingMode, alignCorners: align == 1))]
    }
}

// The engine's functions under names NNOps' statics do not shadow.
private func engineMax(_ x: Tensor, axis: Int) -> Tensor { max(x, axis: axis) }
private func engineSoftmax(_ x: Tensor, axis: Int) -> Tensor { softmax(x, axis: axis) }
private func engineGridSample(_ x: Tensor, grid: Tensor) -> Tensor { gridSample(x, grid: grid) }
