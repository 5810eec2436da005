import Foundation

// im2col: k x k patches laid out as columns. F.unfold and conv2d share it.

/// Geometry of a 2-D sliding window.
struct Window: Sendable {
    var kh: Int, kw: Int
    var sh: Int, sw: Int
    var ph: Int, pw: Int
    var dh: Int, dw: Int
    var h: Int, w: Int
    var outH: Int { (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1 }
    var outW: Int { (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1 }
}

/// Writes the patches of `channels` planes of `src` ([channels, h, w]) into `col`
/// ([channels * kh * kw, outH * outW]), zero outside the image. Rows are split across cores.
func im2col(_ src: UnsafePointer<Float>, channels: Int, _ g: Window, into col: UnsafeMutablePointer<Float>) {
    let oh = g.outH, ow = g.outW
    let rows = channels * g.kh * g.kw
    let dst = SharedPointer(col)
    Parallel.forEach(rows, cost: oh * ow) { range in
        for r in range {
            let c = r / (g.kh * g.kw), ki = (r / g.kw) % g.kh, kj = r % g.kw
            let plane = src + c * g.h * g.w
            let row = dst.base + r * oh * ow
            // Output columns whose input column is inside [0, w).
            let dx = kj * g.dw - g.pw
            var jLo = 0, jHi = ow
            while jLo < ow && jLo * g.sw + dx < 0 { jLo += 1 }
            while jHi > jLo && (jHi - 1) * g.sw + dx >= g.w { jHi -= 1 }
            for i in 0 ..< oh {
                let y = i * g.sh + ki * g.dh - g.ph
                let line = row + i * ow
                if y < 0 || y >= g.h {
                    line.initialize(repeating: 0, count: ow)
                    continue
                }
                let srcLine = plane + y * g.w + dx
                for j in 0 ..< jLo { line[j] = 0 }
                if g.sw == 1 {
                    (line + jLo).update(from: srcLine + jLo, count: jHi - jLo)
                } else {
                    for j in jLo ..< jHi { line[j] = srcLine[j * g.sw] }
                }
                for j in jHi ..< ow { line[j] = 0 }
            }
        }
    }
}

/// F.unfold with a square kernel: [N, C, H, W] -> [N, C * k * k, L].
public func unfold(_ x: Tensor, kernel: Int, dilation: Int = 1, padding: Int = 0, stride: Int = 1) -> Tensor {
    check(x.rank == 4, "unfold: input must be [N, C, H, W], got \(x.shape)")
    check(kernel > 0 && dilation > 0 && stride > 0 && padding >= 0, "unfold: bad kernel/dilation/stride/padding")
    let n = x.shape[0], c = x.shape[1]
    let g = Window(kh: kernel, kw: kernel, sh: stride, sw: stride, ph: padding, pw: padding,
                   dh: dilation, dw: dilation, h: x.shape[2], w: x.shape[3])
    check(g.outH > 0 && g.outW > 0, "unfold: kernel \(kernel) does not fit input \(x.shape)")
    let rows = c * kernel * kernel, l = g.outH * g.outW
    return Tensor(shape: [n, rows, l]) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { p in
            for b in 0 ..< n {
                im2col(p.baseAddress! + b * c * g.h * g.w, channels: c, g, into: out.baseAddress! + b * rows * l)
            }
        }
    }
}
