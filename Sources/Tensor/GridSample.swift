import Foundation

// Bilinear grid sampling (F.grid_sample, mode="bilinear", padding_mode="zeros", align_corners=False).

/// Four taps of a bilinear sample: flat offsets into an H x W plane and their weights; taps outside
/// the plane get weight 0 (and offset 0), which is zero padding.
struct BilinearTaps {
    var i00 = 0, i01 = 0, i10 = 0, i11 = 0
    var w00: Float = 0, w01: Float = 0, w10: Float = 0, w11: Float = 0

    init() {}

    /// Pixel coordinates (x, y) with pixel centres at integers.
    @inline(__always)
    init(x: Float, y: Float, h: Int, w: Int) {
        guard x.isFinite && y.isFinite && x > -1 && y > -1 && x < Float(w) && y < Float(h) else { return }
        let fx = x.rounded(.down), fy = y.rounded(.down)
        let x0 = Int(fx), y0 = Int(fy)
        let ax = x - fx, ay = y - fy
        let bx = 1 - ax, by = 1 - ay
        let inX0 = x0 >= 0, inX1 = x0 + 1 < w
        let inY0 = y0 >= 0, inY1 = y0 + 1 < h
        if inY0 && inX0 { i00 = y0 * w + x0; w00 = by * bx }
        if inY0 && inX1 { i01 = y0 * w + x0 + 1; w01 = by * ax }
        if inY1 && inX0 { i10 = (y0 + 1) * w + x0; w10 = ay * bx }
        if inY1 && inX1 { i11 = (y0 + 1) * w + x0 + 1; w11 = ay * ax }
    }

    @inline(__always)
    func sample(_ plane: UnsafePointer<Float>) -> Float {
        w00 * plane[i00] + w01 * plane[i01] + w10 * plane[i10] + w11 * plane[i11]
    }
}

/// x [N, C, H, W], grid [N, Ho, Wo, 2] holding (x, y) in [-1, 1] -> [N, C, Ho, Wo].
public func gridSample(_ x: Tensor, grid: Tensor) -> Tensor {
    guard check(x.rank == 4, "gridSample: input must be [N, C, H, W], got \(x.shape)"),
          check(grid.rank == 4 && grid.shape[3] == 2 && grid.shape[0] == x.shape[0],
                "gridSample: grid must be [N, Ho, Wo, 2] with N = \(x.shape[0]), got \(grid.shape)") else { return .failedShape(rank: 4) }
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let ho = grid.shape[1], wo = grid.shape[2]
    let points = ho * wo
    return Tensor(shape: [n, c, ho, wo]) { out in
        if out.count == 0 { return }
        if h == 0 || w == 0 { out.initialize(repeating: 0); return }
        let dst = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { xp in
            grid.data.withUnsafeBufferPointer { gp in
                var taps = [BilinearTaps](repeating: BilinearTaps(), count: points)
                for b in 0 ..< n {
                    for i in 0 ..< points {
                        let gx = gp[(b * points + i) * 2], gy = gp[(b * points + i) * 2 + 1]
                        taps[i] = BilinearTaps(x: ((gx + 1) * Float(w) - 1) / 2, y: ((gy + 1) * Float(h) - 1) / 2, h: h, w: w)
                    }
                    let src = xp.baseAddress! + b * c * h * w
                    taps.withUnsafeBufferPointer { tp in
                        let t = tp.baseAddress!
                        Parallel.forEach(c, cost: points * 8) { range in
                            for ch in range {
                                let plane = src + ch * h * w
                                let d = dst.base + (b * c + ch) * points
                                for i in 0 ..< points { d[i] = t[i].sample(plane) }
                            }
                        }
                    }
                }
            }
        }
    }
}
