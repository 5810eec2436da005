import Foundation

/// Image resizing as the reference preprocessors do it, bit for bit where practical.
public enum ImageResize {
    /// Bilinear resize as OpenCV's `cv2.resize(..., interpolation=cv2.INTER_LINEAR)` computes it for 8-bit images:
    /// half-pixel centres (src = (dst + 0.5) * scale - 0.5; columns clamp their weights at the borders, rows clamp
    /// only the row index), weights quantised to 11 bits,
    /// a horizontal pass into 32-bit sums, then the vertical pass with OpenCV's rounding
    /// `((b0 * (S0 >> 4)) >> 16) + ((b1 * (S1 >> 4)) >> 16) + 2) >> 2`.
    ///
    /// Known difference: for an exact 2x downscale in both directions OpenCV switches to its INTER_AREA fast
    /// path; the values are the same 2x2 means up to rounding (at most 1 apart). No antialiasing, as in OpenCV.
    public static func bilinearCV(_ src: RGBImage, width dw: Int, height dh: Int) -> RGBImage {
        precondition(dw > 0 && dh > 0, "resize to an empty size")
        if dw == src.width && dh == src.height { return src }
        let sw = src.width, sh = src.height
        let coefScale: Float = 2048
        func table(_ dsize: Int, _ ssize: Int, clampWeights: Bool) -> (idx: [Int], a0: [Int32], a1: [Int32]) {
            let scale = Double(ssize) / Double(dsize)
            var idx = [Int](repeating: 0, count: dsize)
            var a0 = [Int32](repeating: 0, count: dsize), a1 = [Int32](repeating: 0, count: dsize)
            for d in 0 ..< dsize {
                var f = Float((Double(d) + 0.5) * scale - 0.5)
                var s = Int(f.rounded(.down))
                f -= Float(s)
                // Columns clamp the weight at the borders; rows keep it and clamp the row index instead
                // (OpenCV's resizeGeneric_ does exactly this asymmetric thing).
                if clampWeights {
                    if s < 0 { f = 0; s = 0 }
                    if s >= ssize - 1 { f = 0; s = ssize - 1 }
                }
                idx[d] = s
                a0[d] = Int32(((1 - f) * coefScale).rounded(.toNearestOrEven))
                a1[d] = Int32((f * coefScale).rounded(.toNearestOrEven))
            }
            return (idx, a0, a1)
        }
        let (xi, xa0, xa1) = table(dw, sw, clampWeights: true)
        let (yi, ya0, ya1) = table(dh, sh, clampWeights: false)
        // Horizontal pass for every source row a destination row uses.
        var rowCache: [Int: [Int32]] = [:]
        func hrow(_ y: Int) -> [Int32] {
            if let r = rowCache[y] { return r }
            var out = [Int32](repeating: 0, count: dw * 3)
            src.pixels.withUnsafeBufferPointer { p in
                let base = y * sw * 3
                for x in 0 ..< dw {
                    let s = xi[x]
                    let s1 = min(s + 1, sw - 1)
                    for c in 0 ..< 3 {
                        out[x * 3 + c] = Int32(p[base + s * 3 + c]) * xa0[x] + Int32(p[base + s1 * 3 + c]) * xa1[x]
                    }
                }
            }
            rowCache[y] = out
            return out
        }
        var dst = [UInt8](repeating: 0, count: dw * dh * 3)
        for y in 0 ..< dh {
            let s = yi[y]
            let r0 = hrow(min(max(s, 0), sh - 1)), r1 = hrow(min(max(s + 1, 0), sh - 1))
            let b0 = ya0[y], b1 = ya1[y]
            let base = y * dw * 3
            for i in 0 ..< dw * 3 {
                let v = (((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2
                dst[base + i] = UInt8(clamping: v)
            }
            // Rows above the current source row are no longer needed.
            if y + 1 < dh, yi[y + 1] > s, s >= 0 { rowCache[s] = nil }
        }
        return RGBImage(width: dw, height: dh, pixels: dst)
    }

    /// Fixed-point precision of antialiased resize weights.
    public enum WeightPrecision: Sendable {
        /// Pillow's 22 fractional bits.
        case pillow
        /// torchvision's uint8 kernel (after Pillow-SIMD): int16 weights with as many fractional bits as the
        /// largest weight allows.
        case torchvision
    }

    /// Antialiased bilinear resize as Pillow's `Image.resize(..., BILINEAR)` or torchvision's antialiased uint8
    /// `resize` compute it: a triangle filter whose support widens with the downscale factor, fixed-point
    /// weights, a horizontal pass then a vertical one, each rounded to 8 bits. The two differ only in the
    /// weights' precision (measured: identical to each on a 200x150 -> 40x30 test image; they differ from each
    /// other by one step on 13 of 3600 values).
    public static func bilinearPIL(_ src: RGBImage, width dw: Int, height dh: Int, precision mode: WeightPrecision = .pillow) -> RGBImage {
        precondition(dw > 0 && dh > 0, "resize to an empty size")
        if dw == src.width && dh == src.height { return src }
        func coefficients(_ inSize: Int, _ outSize: Int) -> (bounds: [(Int, Int)], k: [[Int32]], precision: Int) {
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = 1.0 * filterScale
            var bounds: [(Int, Int)] = []
            var weights: [[Double]] = []
            for o in 0 ..< outSize {
                let center = (Double(o) + 0.5) * scale
                let ss = 1 / filterScale
                var xmin = Int(center - support + 0.5)
                if xmin < 0 { xmin = 0 }
                var xmax = Int(center + support + 0.5)
                if xmax > inSize { xmax = inSize }
                xmax -= xmin
                var w = [Double](repeating: 0, count: xmax)
                var total = 0.0
                for x in 0 ..< xmax {
                    let t = abs((Double(x + xmin) - center + 0.5) * ss)
                    let v = t < 1 ? 1 - t : 0
                    w[x] = v
                    total += v
                }
                bounds.append((xmin, xmax))
                weights.append(w.map { total != 0 ? $0 / total : 0 })
            }
            var precision = 22
            if mode == .torchvision {
                let wmax = weights.flatMap { $0 }.max() ?? 1
                precision = 0
                // torchvision's _compute_indices_int16_weights_aa: the most bits (up to 22) that keep the largest weight
                // within int16 (a cap of 15 instead differed by one step on 110 of 27,648 values of a 600x400 -> 96x96 resize).
                while precision < 22, Int(0.5 + wmax * Double(1 << (precision + 1))) < (1 << 15) { precision += 1 }
            }
            let one = Double(1 << precision)
            let ks = weights.map { w in w.map { n in Int32(n < 0 ? Int(-0.5 + n * one) : Int(0.5 + n * one)) } }
            return (bounds, ks, precision)
        }
        func clip8(_ v: Int64, _ precision: Int) -> UInt8 { UInt8(clamping: v >> Int64(precision)) }
        // Horizontal pass.
        var mid = src
        if dw != src.width {
            let (b, k, precision) = coefficients(src.width, dw)
            let half = Int64(1) << Int64(precision - 1)
            var out = [UInt8](repeating: 0, count: dw * src.height * 3)
            for y in 0 ..< src.height {
                for x in 0 ..< dw {
                    let (x0, n) = b[x]
                    for c in 0 ..< 3 {
                        var acc = half
                        for i in 0 ..< n { acc += Int64(src.pixels[(y * src.width + x0 + i) * 3 + c]) * Int64(k[x][i]) }
                        out[(y * dw + x) * 3 + c] = clip8(acc, precision)
                    }
                }
            }
            mid = RGBImage(width: dw, height: src.height, pixels: out)
        }
        // Vertical pass.
        if dh != mid.height {
            let (b, k, precision) = coefficients(mid.height, dh)
            let half = Int64(1) << Int64(precision - 1)
            var out = [UInt8](repeating: 0, count: dw * dh * 3)
            for y in 0 ..< dh {
                let (y0, n) = b[y]
                for x in 0 ..< dw * 3 {
                    var acc = half
                    for i in 0 ..< n { acc += Int64(mid.pixels[(y0 + i) * dw * 3 + x]) * Int64(k[y][i]) }
                    out[y * dw * 3 + x] = clip8(acc, precision)
                }
            }
            mid = RGBImage(width: dw, height: dh, pixels: out)
        }
        return mid
    }
}
