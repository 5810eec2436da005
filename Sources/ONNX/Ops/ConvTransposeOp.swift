import Foundation
import Tensor

/// ConvTranspose (1-D and 2-D): the gradient of Conv with respect to its input, as torch's ConvTranspose2d exports it.
///
/// x [N, C, H, W], weight [C, M/group, kH, kW], bias [M] -> [N, M, Ho, Wo] with
/// Ho = stride * (H - 1) + output_padding + (kH - 1) * dilation + 1 - pad_begin - pad_end (or `output_shape`, the
/// padding then split as the spec says). Each group is one product Wᵀ X ([M/g·kH·kW, C/g] x [C/g, H·W], the engine's
/// matmul) scattered into the output (col2im).
/// Reference: the ONNX operator spec (ConvTranspose), torch.nn.ConvTranspose2d.
enum ConvTransposeOp {
    /// What a ConvTranspose of input shape `x` by weight shape `w` computes, 1-D lifted to 2-D (height 1).
    struct Geometry {
        var strides: [Int], dilations: [Int], begin: [Int], group: Int
        var n: Int, c: Int, h: Int, wd: Int, mg: Int, m: Int, kh: Int, kw: Int, oh: Int, ow: Int
        var oneD: Bool
        var outputShape: [Int] { oneD ? [n, m, ow] : [n, m, oh, ow] }
    }

    static func outputShape(_ ctx: ONNXOpContext, x: [Int], w: [Int]) throws -> [Int] { try geometry(ctx, x: x, w: w).outputShape }

    static func geometry(_ ctx: ONNXOpContext, x xs: [Int], w ws: [Int]) throws -> Geometry {
        var x = xs, w = ws
        guard x.count == 3 || x.count == 4, w.count == x.count else {
            throw ctx.fail("only 1-D and 2-D transposed convolutions are supported: input \(x), weight \(w)")
        }
        let oneD = x.count == 3
        let spatial = oneD ? 1 : 2
        func attr(_ name: String, _ d: Int) throws -> [Int] {
            let v = try ctx.ints(name) ?? [Int](repeating: d, count: spatial)
            guard v.count == spatial else { throw ctx.fail("\(name) \(v) must have \(spatial) values") }
            return oneD ? [d == 1 ? 1 : 0] + v : v
        }
        let strides = try attr("strides", 1), dilations = try attr("dilations", 1), outputPadding = try attr("output_padding", 0)
        if oneD {
            x = [x[0], x[1], 1, x[2]]
            w = [w[0], w[1], 1, w[2]]
        }
        guard (strides + dilations).allSatisfy({ $0 >= 1 }), outputPadding.allSatisfy({ $0 >= 0 }) else {
            throw ctx.fail("strides \(strides) and dilations \(dilations) must be positive, output_padding \(outputPadding) not negative")
        }
        let group = try ctx.int("group", default: 1)
        let n = x[0], c = x[1], h = x[2], wd = x[3]
        guard group >= 1, c % group == 0, w[0] == c else {
            throw ctx.fail("weight \(ws) with group \(group) does not fit input \(xs)")
        }
        let mg = w[1], m = mg * group, kh = w[2], kw = w[3]
        if let ks = try ctx.ints("kernel_shape"), ks != (oneD ? [kw] : [kh, kw]) {
            throw ctx.fail("kernel_shape \(ks) differs from the weight \(ws)")
        }
        let inSizes = [h, wd], kernel = [kh, kw]
        var full = [0, 0]
        for a in 0 ..< 2 {
            let span: Int = (kernel[a] - 1) * dilations[a] + 1
            full[a] = strides[a] * (inSizes[a] - 1) + outputPadding[a] + span
        }
        // Padding from pads, output_shape or auto_pad.
        let autoPad = try ctx.string("auto_pad", default: "NOTSET")
        var begin = [0, 0], end = [0, 0]
        var target: [Int]? = try ctx.ints("output_shape").map { Array($0.suffix(spatial)) }
        if let t = target, t.count != spatial { throw ctx.fail("output_shape \(t) must end with \(spatial) spatial sizes") }
        if target == nil, autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            target = (2 - spatial ..< 2).map { (a: Int) -> Int in inSizes[a] * strides[a] }
        }
        if var t = target {
            if oneD { t = [1] + t }
            for a in 0 ..< 2 {
                let total = full[a] - t[a]
                let small = total / 2, large = total - total / 2
                (begin[a], end[a]) = autoPad == "SAME_UPPER" ? (small, large) : (large, small)
            }
        } else {
            guard ["NOTSET", "VALID"].contains(autoPad) else { throw ctx.fail("auto_pad '\(autoPad)' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER") }
            if autoPad == "NOTSET" {
                let pads = try ctx.ints("pads") ?? [Int](repeating: 0, count: 2 * spatial)
                guard pads.count == 2 * spatial, pads.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("pads \(pads) for \(spatial) spatial axes") }
                if oneD { begin = [0, pads[0]]; end = [0, pads[1]] } else { begin = [pads[0], pads[1]]; end = [pads[2], pads[3]] }
            }
        }
        let oh = full[0] - begin[0] - end[0], ow = full[1] - begin[1] - end[1]
        guard oh >= 0, ow >= 0 else { throw ctx.fail("padding \(begin) \(end) leaves no output for input \(xs) and weight \(ws)") }
        return Geometry(strides: strides, dilations: dilations, begin: begin, group: group, n: n, c: c, h: h, wd: wd, mg: mg, m: m,
                        kh: kh, kw: kw, oh: oh, ow: ow, oneD: oneD)
    }

    static let convTranspose: ONNXOpImplementation = { ctx in
        var x = try ctx.tensor(0), w = try ctx.tensor(1)
        let b = ctx.optional(2)?.tensor
        let g = try geometry(ctx, x: x.shape, w: w.shape)
        let oneD = g.oneD
        if oneD {
            x = x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]])
            w = w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]])
        }
        let (strides, dilations, begin, group) = (g.strides, g.dilations, g.begin, g.group)
        let (n, c, h, wd, mg, m, kh, kw, oh, ow) = (g.n, g.c, g.h, g.wd, g.mg, g.m, g.kh, g.kw, g.oh, g.ow)
        if let b { guard b.count == m else { throw ctx.fail("bias \(b.shape) for \(m) output channels") } }
        try ctx.checkSize([n, m, oh, ow])
        try ctx.checkSize([mg * kh * kw, h * wd])
        let cg = c / group, sh = strides[0], sw = strides[1], dh = dilations[0], dw = dilations[1]
        var out = [Float](repeating: 0, count: n * m * oh * ow)
        let wFlat = w.reshaped([c, mg * kh * kw])
        for bi in 0 ..< n {
            for g in 0 ..< group {
                // [C/g, M/g·kH·kW]ᵀ x [C/g, H·W] -> columns [M/g·kH·kW, H·W].
                let wg = group == 1 ? wFlat : slice(wFlat, axis: 0, range: g * cg ..< (g + 1) * cg)
                let xg = slice(x, axis: 0, range: bi ..< bi + 1).reshaped([c, h * wd])
                let cols = matmul(wg, group == 1 ? xg : slice(xg, axis: 0, range: g * cg ..< (g + 1) * cg), transposeA: true)
                cols.data.withUnsafeBufferPointer { cp in
                    out.withUnsafeMutableBufferPointer { op in
                        for mm in 0 ..< mg {
                            let plane = op.baseAddress! + ((bi * m) + g * mg + mm) * oh * ow
                            for i in 0 ..< kh {
                                for j in 0 ..< kw {
                                    let row = cp.baseAddress! + ((mm * kh + i) * kw + j) * h * wd
                                    for y in 0 ..< h {
                                        let oy = y * sh + i * dh - begin[0]
                                        guard oy >= 0, oy < oh else { continue }
                                        for xx in 0 ..< wd {
                                            let ox = xx * sw + j * dw - begin[1]
                                            if ox >= 0, ox < ow { plane[oy * ow + ox] += row[y * wd + xx] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let b {
            for bi in 0 ..< n { for ch in 0 ..< m {
                let v = b.data[ch], o = (bi * m + ch) * oh * ow
                for k in 0 ..< oh * ow { out[o + k] += v }
            } }
        }
        let y = Tensor(shape: oneD ? [n, m, ow] : [n, m, oh, ow], data: out)
        return [ONNXValue(y)]
    }
}
