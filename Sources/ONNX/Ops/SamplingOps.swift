import Foundation
import Tensor

/// The general cases of Resize, GridSample and pooling that the engine's fast ops do not take: cubic resizing,
/// GridSample's nearest and bicubic modes with border and reflection padding and align_corners, pooling with
/// rectangular kernels, asymmetric pads, dilations and ceil_mode. Plain loops over [N·C] planes.
/// Reference: the ONNX operator specs (Resize, GridSample, MaxPool, AveragePool) and onnxruntime's CPU kernels,
/// which the single-op goldens of scripts/fixtures/gen_onnx_ops.py check.
enum SamplingOps {
    /// The cubic convolution weights of the four taps at offsets -1, 0, 1, 2 from floor(x), t = x - floor(x).
    @inline(__always)
    static func cubicWeights(_ t: Float, a: Float) -> [Float] {
        func near(_ d: Float) -> Float { ((a + 2) * d - (a + 3)) * d * d + 1 }          // |d| <= 1
        func far(_ d: Float) -> Float { ((a * d - 5 * a) * d + 8 * a) * d - 4 * a }      // 1 < |d| < 2
        return [far(t + 1), near(t), near(1 - t), far(2 - t)]
    }

    /// Per output index along one axis: the source indices and their weights.
    struct Taps {
        var index: [[Int]]
        var weight: [[Float]]
    }

    /// Cubic taps along an axis of length `n` for source coordinates `coords` (edge indices clamped, or with
    /// `excludeOutside` the outside taps dropped and the rest renormalised).
    static func cubicTaps(_ coords: [Float], n: Int, a: Float, excludeOutside: Bool) -> Taps {
        var idx: [[Int]] = [], wts: [[Float]] = []
        for c in coords {
            let f = c.rounded(.down), t = c - f, x0 = Int(f)
            var w = cubicWeights(t, a: a)
            var ii: [Int] = []
            for k in 0 ..< 4 {
                let i = x0 - 1 + k
                if excludeOutside, i < 0 || i >= n { w[k] = 0 }
                ii.append(Swift.min(Swift.max(i, 0), n - 1))
            }
            if excludeOutside {
                let s = w.reduce(0, +)
                if s != 0 { w = w.map { $0 / s } }
            }
            idx.append(ii); wts.append(w)
        }
        return Taps(index: idx, weight: wts)
    }

    /// A separable resize of the last two dims of x [N, C, H, W]: output (i, j) = Σ rows.weight[i][a] ·
    /// cols.weight[j][b] · x[rows.index[i][a], cols.index[j][b]].
    static func separable(_ x: Tensor, rows: Taps, cols: Taps) -> Tensor {
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let oh = rows.index.count, ow = cols.index.count
        // Along W first: [planes, H, oW], then along H.
        var tmp = [Float](repeating: 0, count: planes * h * ow)
        x.data.withUnsafeBufferPointer { xp in
            for p in 0 ..< planes * h {
                let src = xp.baseAddress! + p * w
                for j in 0 ..< ow {
                    var s: Float = 0
                    for (i, wt) in zip(cols.index[j], cols.weight[j]) { s += wt * src[i] }
                    tmp[p * ow + j] = s
                }
            }
        }
        var out = [Float](repeating: 0, count: planes * oh * ow)
        for p in 0 ..< planes {
            for i in 0 ..< oh {
                for (r, wt) in zip(rows.index[i], rows.weight[i]) {
                    let src = (p * h + r) * ow, dst = (p * oh + i) * ow
                    for j in 0 ..< ow { out[dst + j] += wt * tmp[src + j] }
                }
            }
        }
        return Tensor(shape: [x.shape[0], x.shape[1], oh, ow], data: out)
    }

    // MARK: GridSample

    /// GridSample over [N, C, H, W] with a grid [N, Ho, Wo, 2] of (x, y) in [-1, 1]: modes bilinear (linear),
    /// nearest, bicubic (cubic); padding zeros, border, reflection; align_corners 0 or 1.
    static func gridSample(_ x: Tensor, grid: Tensor, mode: String, padding: String, alignCorners: Bool) -> Tensor {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let ho = grid.shape[1], wo = grid.shape[2], points = ho * wo
        var out = [Float](repeating: 0, count: n * c * points)
        if h == 0 || w == 0 { return Tensor(shape: [n, c, ho, wo], data: out) }
        /// Grid value in [-1, 1] -> pixel coordinate.
        func unnormalize(_ g: Float, _ size: Int) -> Float {
            alignCorners ? (g + 1) / 2 * Float(size - 1) : ((g + 1) * Float(size) - 1) / 2
        }
        /// Reflects a coordinate into [lo, hi] (torch's reflect_coordinates, in doubled units).
        func reflect(_ v: Float, _ lo: Float, _ hi: Float) -> Float {
            if lo == hi { return 0 }
            let span = hi - lo
            var d = Swift.abs(v - lo)
            let flips = (d / span).rounded(.down)
            d -= flips * span
            return Int(flips) % 2 == 0 ? lo + d : hi - d
        }
        /// The padding mode applied to a coordinate (border: clamp; reflection: reflect then clamp).
        func pad(_ v: Float, _ size: Int) -> Float {
            switch padding {
            case "border": return Swift.min(Swift.max(v, 0), Float(size - 1))
            case "reflection":
                let r = alignCorners ? reflect(v, 0, Float(size - 1)) : reflect(v, -0.5, Float(size) - 0.5)
                return Swift.min(Swift.max(r, 0), Float(size - 1))
            default: return v
            }
        }
        x.data.withUnsafeBufferPointer { xp in
            grid.data.withUnsafeBufferPointer { gp in
                for b in 0 ..< n {
                    for p in 0 ..< points {
                        let gx = gp[(b * points + p) * 2], gy = gp[(b * points + p) * 2 + 1]
                        var fx = unnormalize(gx, w), fy = unnormalize(gy, h)
                        /// The value at integer pixel (iy, ix) of plane `ch`, padded as the mode says.
                        @inline(__always) func at(_ ch: Int, _ iy: Int, _ ix: Int) -> Float {
                            var iy = iy, ix = ix
                            if iy < 0 || iy >= h || ix < 0 || ix >= w {
                                switch padding {
                                case "border":
                                    iy = Swift.min(Swift.max(iy, 0), h - 1); ix = Swift.min(Swift.max(ix, 0), w - 1)
                                case "reflection":
                                    iy = Int(pad(Float(iy), h)); ix = Int(pad(Float(ix), w))
                                default: return 0
                                }
                            }
                            return xp[((b * c + ch) * h + iy) * w + ix]
                        }
                        let dst = b * c * points + p
                        switch mode {
                        case "nearest":
                            fx = pad(fx, w); fy = pad(fy, h)
                            guard fx.isFinite, fy.isFinite else { continue }
                            let ix = Int(fx.rounded(.toNearestOrEven)), iy = Int(fy.rounded(.toNearestOrEven))
                            for ch in 0 ..< c { out[dst + ch * points] = at(ch, iy, ix) }
                        case "bicubic", "cubic":
                            guard fx.isFinite, fy.isFinite, Swift.abs(fx) < 1e7, Swift.abs(fy) < 1e7 else { continue }
                            let x0 = fx.rounded(.down), y0 = fy.rounded(.down)
                            let wx = cubicWeights(fx - x0, a: -0.75), wy = cubicWeights(fy - y0, a: -0.75)
                            let ix = Int(x0) - 1, iy = Int(y0) - 1
                            for ch in 0 ..< c {
                                var s: Float = 0
                                for i in 0 ..< 4 {
                                    var r: Float = 0
                                    for j in 0 ..< 4 { r += wx[j] * at(ch, iy + i, ix + j) }
                                    s += wy[i] * r
                                }
                                out[dst + ch * points] = s
                            }
                        default:
                            fx = pad(fx, w); fy = pad(fy, h)
                            guard fx.isFinite, fy.isFinite, Swift.abs(fx) < 1e7, Swift.abs(fy) < 1e7 else { continue }
                            let x0 = fx.rounded(.down), y0 = fy.rounded(.down)
                            let ax = fx - x0, ay = fy - y0, ix = Int(x0), iy = Int(y0)
                            for ch in 0 ..< c {
                                let v = (1 - ay) * ((1 - ax) * at(ch, iy, ix) + ax * at(ch, iy, ix + 1))
                                    + ay * ((1 - ax) * at(ch, iy + 1, ix) + ax * at(ch, iy + 1, ix + 1))
                                out[dst + ch * points] = v
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, c, ho, wo], data: out)
    }

    // MARK: Pooling

    /// 2-D max or average pooling of [N, C, H, W] with any kernel, strides, dilations, (begin, end) pads and
    /// ceil_mode; in ceil mode a window that would start inside the end padding is dropped. The average divides by
    /// the window's cells inside the input, or (count_include_pad) inside the padded input.
    static func pool(_ x: Tensor, kernel: [Int], strides: [Int], dilations: [Int], pads: [(Int, Int)], ceil: Bool,
                     max: Bool, includePad: Bool) -> Tensor {
        let n = x.shape[0], c = x.shape[1]
        let sizes = [x.shape[2], x.shape[3]]
        let outSizes = outputSizes(sizes: sizes, kernel: kernel, strides: strides, dilations: dilations, pads: pads, ceil: ceil)
        let oh = outSizes[0], ow = outSizes[1], h = sizes[0], w = sizes[1]
        var out = [Float](repeating: 0, count: n * c * oh * ow)
        x.data.withUnsafeBufferPointer { xp in
            for p in 0 ..< n * c {
                let plane = xp.baseAddress! + p * h * w
                for i in 0 ..< oh {
                    let y0 = i * strides[0] - pads[0].0
                    for j in 0 ..< ow {
                        let x0 = j * strides[1] - pads[1].0
                        var best = -Float.infinity, sum: Float = 0, count = 0, padded = 0
                        for ki in 0 ..< kernel[0] {
                            let y = y0 + ki * dilations[0]
                            for kj in 0 ..< kernel[1] {
                                let xx = x0 + kj * dilations[1]
                                if y >= -pads[0].0, y < h + pads[0].1, xx >= -pads[1].0, xx < w + pads[1].1 { padded += 1 }
                                guard y >= 0, y < h, xx >= 0, xx < w else { continue }
                                let v = plane[y * w + xx]
                                if v > best || v.isNaN { best = v }
                                sum += v
                                count += 1
                            }
                        }
                        out[(p * oh + i) * ow + j] = max ? best : sum / Float(Swift.max(includePad ? padded : count, 1))
                    }
                }
            }
        }
        return Tensor(shape: [n, c, oh, ow], data: out)
    }

    /// Output length of each pooled axis (floor or ceil; in ceil mode the last window must start before the end
    /// padding).
    static func outputSizes(sizes: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [(Int, Int)], ceil: Bool) -> [Int] {
        (0 ..< sizes.count).map { a in
            let span = sizes[a] + pads[a].0 + pads[a].1 - ((kernel[a] - 1) * dilations[a] + 1)
            var o = (ceil ? (span + strides[a] - 1) / strides[a] : span / strides[a]) + 1
            if ceil, (o - 1) * strides[a] >= sizes[a] + pads[a].0 { o -= 1 }
            return Swift.max(o, 0)
        }
    }
}
