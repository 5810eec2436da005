import Foundation

// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d), NCHW input, OIHW weight.

public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1) -> Tensor {
    conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
           dilation: (dilation, dilation), groups: groups)
}

public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                   dilation: (Int, Int), groups: Int) -> Tensor {
    let p = ConvProblem(x, weight, bias, stride, padding, dilation, groups)
    return Tensor(shape: [p.n, p.cout, p.g.outH, p.g.outW]) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                withOptionalBuffer(bias) { bp in
                    convForward(p, x: xp.baseAddress!, w: wp.baseAddress!, bias: bp, out: out.baseAddress!)
                }
            }
        }
    }
}

/// Checked shapes of one convolution.
struct ConvProblem: Sendable {
    var n: Int, cin: Int, cout: Int, groups: Int
    var g: Window
    var cinG: Int { cin / groups }
    var coutG: Int { cout / groups }
    var kernelSize: Int { g.kh * g.kw }
    var outPlane: Int { g.outH * g.outW }
    var inPlane: Int { g.h * g.w }

    init(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ stride: (Int, Int), _ padding: (Int, Int),
         _ dilation: (Int, Int), _ groups: Int) {
        check(x.rank == 4, "conv2d: input must be [N, C, H, W], got \(x.shape)")
        check(weight.rank == 4, "conv2d: weight must be [Cout, Cin/groups, kH, kW], got \(weight.shape)")
        check(groups > 0 && x.shape[1] % groups == 0 && weight.shape[0] % groups == 0,
                     "conv2d: groups \(groups) must divide input channels \(x.shape[1]) and output channels \(weight.shape[0])")
        check(weight.shape[1] * groups == x.shape[1],
                     "conv2d: weight \(weight.shape) with groups \(groups) does not match input channels \(x.shape[1])")
        check(stride.0 > 0 && stride.1 > 0 && dilation.0 > 0 && dilation.1 > 0 && padding.0 >= 0 && padding.1 >= 0,
                     "conv2d: stride and dilation must be positive, padding non-negative")
        if let bias { check(bias.count == weight.shape[0], "conv2d: bias \(bias.shape) for \(weight.shape[0]) output channels") }
        n = x.shape[0]; cin = x.shape[1]; cout = weight.shape[0]; self.groups = groups
        g = Window(kh: weight.shape[2], kw: weight.shape[3], sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1,
                   dh: dilation.0, dw: dilation.1, h: x.shape[2], w: x.shape[3])
        check(g.outH > 0 && g.outW > 0, "conv2d: kernel \(weight.shape[2])x\(weight.shape[3]) does not fit input \(x.shape) with padding \(padding)")
    }
}

@inline(__always)
func withOptionalBuffer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.data.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// The convolution itself: im2col + sgemm per image and group (a 1x1, stride-1, unpadded kernel
/// multiplies the input directly).
func convForward(_ p: ConvProblem, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 out: UnsafeMutablePointer<Float>) {
    let g = p.g
    let kdim = p.cinG * p.kernelSize
    let pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0
    var col = [Float]()
    if !pointwise { col = [Float](repeating: 0, count: kdim * p.outPlane) }
    col.withUnsafeMutableBufferPointer { cp in
        for b in 0 ..< p.n {
            for gi in 0 ..< p.groups {
                let src = x + (b * p.cin + gi * p.cinG) * p.inPlane
                let dst = out + (b * p.cout + gi * p.coutG) * p.outPlane
                if let bias {
                    for o in 0 ..< p.coutG { (dst + o * p.outPlane).initialize(repeating: bias[gi * p.coutG + o], count: p.outPlane) }
                }
                let colPtr: UnsafePointer<Float>
                if pointwise {
                    colPtr = src
                } else {
                    im2col(src, channels: p.cinG, g, into: cp.baseAddress!)
                    colPtr = UnsafePointer(cp.baseAddress!)
                }
                sgemm(m: p.coutG, n: p.outPlane, k: kdim, a: w + gi * p.coutG * kdim, lda: kdim,
                      b: colPtr, ldb: p.outPlane, beta: bias == nil ? 0 : 1, c: dst, ldc: p.outPlane)
            }
        }
    }
}

/// Direct seven-loop convolution, the plain reference the fast paths are tested against.
public func conv2dReference(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                            dilation: (Int, Int), groups: Int) -> Tensor {
    let p = ConvProblem(x, weight, bias, stride, padding, dilation, groups)
    let g = p.g
    var out = Tensor(zeros: [p.n, p.cout, g.outH, g.outW])
    for b in 0 ..< p.n {
        for o in 0 ..< p.cout {
            let gi = o / p.coutG
            for i in 0 ..< g.outH {
                for j in 0 ..< g.outW {
                    var acc: Double = bias.map { Double($0.data[o]) } ?? 0
                    for c in 0 ..< p.cinG {
                        for ki in 0 ..< g.kh {
                            let y = i * g.sh - g.ph + ki * g.dh
                            if y < 0 || y >= g.h { continue }
                            for kj in 0 ..< g.kw {
                                let xx = j * g.sw - g.pw + kj * g.dw
                                if xx < 0 || xx >= g.w { continue }
                                let xv = x.data[((b * p.cin + gi * p.cinG + c) * g.h + y) * g.w + xx]
                                let wv = weight.data[((o * p.cinG + c) * g.kh + ki) * g.kw + kj]
                                acc += Double(xv) * Double(wv)
                            }
                        }
                    }
                    out.data[((b * p.cout + o) * g.outH + i) * g.outW + j] = Float(acc)
                }
            }
        }
    }
    return out
}
