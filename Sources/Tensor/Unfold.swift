import CKernels
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

/// Writes rows `rows` of the im2col matrix of `channels` planes of `src` ([channels, h, w]), restricted to
/// the output pixels `pixels`, into `col` (row r - rows.lowerBound, column p - pixels.lowerBound, row
/// length `ld`). Row r is (channel, ki, kj); values outside the image are zero. Runs on the calling thread.
@inline(__always)
func im2colTile(_ src: UnsafePointer<Float>, _ g: Window, rows: Range<Int>, pixels: Range<Int>,
                into col: UnsafeMutablePointer<Float>, ld: Int) {
    let oh = g.outH, ow = g.outW
    if pixels.isEmpty { return }
    let firstRow = pixels.lowerBound / ow, lastRow = (pixels.upperBound - 1) / ow
    for r in rows {
        let c = r / (g.kh * g.kw), ki = (r / g.kw) % g.kh, kj = r % g.kw
        let plane = src + c * g.h * g.w
        let row = col + (r - rows.lowerBound) * ld - pixels.lowerBound
        // Output columns whose input column falls inside [0, w).
        let dx = kj * g.dw - g.pw
        var jLo = 0, jHi = ow
        while jLo < ow && jLo * g.sw + dx < 0 { jLo += 1 }
        while jHi > jLo && (jHi - 1) * g.sw + dx >= g.w { jHi -= 1 }
        for i in firstRow ... lastRow where i < oh {
            let a = Swift.max(pixels.lowerBound - i * ow, 0), b = Swift.min(pixels.upperBound - i * ow, ow)
            let line = row + i * ow
            let y = i * g.sh + ki * g.dh - g.ph
            if y < 0 || y >= g.h {
                (line + a).initialize(repeating: 0, count: b - a)
                continue
            }
            let srcLine = plane + y * g.w + dx
            let lo = Swift.min(Swift.max(jLo, a), b), hi = Swift.max(Swift.min(jHi, b), lo)
            for j in a ..< lo { line[j] = 0 }
            if g.sw == 1 {
                (line + lo).update(from: srcLine + lo, count: hi - lo)
            } else if g.sw == 2 && hasAVX2FMA {
                if hi > lo { ck_gather_stride2_avx2(line + lo, srcLine + 2 * lo, hi - lo) }
            } else {
                for j in lo ..< hi { line[j] = srcLine[j * g.sw] }
            }
            for j in hi ..< b { line[j] = 0 }
        }
    }
}

/// The whole im2col matrix ([channels * kh * kw, outH * outW]), rows split across cores.
func im2col(_ src: UnsafePointer<Float>, channels: Int, _ g: Window, into col: UnsafeMutablePointer<Float>) {
    let plane = g.outH * g.outW
    let dst = SharedPointer(col), s = ConstPointer(src)
    Parallel.forEach(channels * g.kh * g.kw, cost: plane) { range in
        im2colTile(s.base, g, rows: range, pixels: 0 ..< plane, into: dst.base + range.lowerBound * plane, ld: plane)
    }
}

/// F.unfold with a square kernel: [N, C, H, W] -> [N, C * k * k, L].
public func unfold(_ x: Tensor, kernel: Int, dilation: Int = 1, padding: Int = 0, stride: Int = 1) -> Tensor {
    guard check(x.rank == 4, "unfold: input must be [N, C, H, W], got \(x.shape)"),
          check(kernel > 0 && dilation > 0 && stride > 0 && padding >= 0, "unfold: bad kernel/dilation/stride/padding")
    else { return .failedShape(rank: 3) }
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
