import Foundation

// Pooling and nearest upsampling on [N, C, H, W].

/// Output length of a pooling window along one axis, with torch's ceil_mode rule (the last window
/// must start inside the input or the left padding).
func poolOutputSize(_ n: Int, kernel: Int, stride: Int, padding: Int, ceilMode: Bool) -> Int {
    let span = n + 2 * padding - kernel
    var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
    if ceilMode && (out - 1) * stride >= n + padding { out -= 1 }
    return out
}

/// False (in a shape pass) when a check failed.
private func poolCheck(_ x: Tensor, _ name: String, kernel: Int, stride: Int, padding: Int) -> Bool {
    check(x.rank == 4, "\(name): input must be [N, C, H, W], got \(x.shape)")
        && check(kernel > 0 && stride > 0, "\(name): kernel and stride must be positive")
        && check(padding >= 0 && padding * 2 <= kernel, "\(name): padding \(padding) must be at most half the kernel \(kernel)")
        && check(x.shape[2] + 2 * padding >= kernel && x.shape[3] + 2 * padding >= kernel,
                 "\(name): kernel \(kernel) larger than padded input \(x.shape)")
}

/// Max pooling; padding counts as -infinity. Separable: a max along each row's windows, then down the
/// columns (k + k comparisons per output instead of k * k).
public func maxPool2d(_ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false) -> Tensor {
    guard poolCheck(x, "maxPool2d", kernel: kernel, stride: stride, padding: padding) else { return .failedShape(rank: 4) }
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let oh = poolOutputSize(h, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    let ow = poolOutputSize(w, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    return Tensor(shape: [x.shape[0], x.shape[1], oh, ow]) { out in
        if out.count == 0 { return }
        let dst = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { p in
            let src = ConstPointer(p.baseAddress!)
            Parallel.forEach(planes, cost: (h + oh) * ow * kernel) { range in
                let rows = UnsafeMutablePointer<Float>.allocate(capacity: h * ow)
                defer { rows.deallocate() }
                // Stride 1: the outputs whose window lies inside the row, eight at a time.
                let inside = stride == 1 ? Swift.max(0, padding) ..< Swift.max(padding, Swift.min(ow, w - kernel + padding + 1)) : 0 ..< 0
                for pl in range {
                    let s = src.base + pl * h * w, d = dst.base + pl * oh * ow
                    for y in 0 ..< h {
                        let line = s + y * w, r = rows + y * ow
                        var j = 0
                        while j < ow {
                            if j >= inside.lowerBound && j + 8 <= inside.upperBound {
                                var m = SIMD8<Float>(repeating: -.infinity)
                                for k in 0 ..< kernel { poolMax(&m, load8(line + j - padding + k)) }
                                UnsafeMutableRawPointer(r + j).storeBytes(of: m, as: SIMD8<Float>.self)
                                j += 8
                                continue
                            }
                            let x0 = Swift.max(j * stride - padding, 0), x1 = Swift.min(j * stride - padding + kernel, w)
                            var m = -Float.infinity
                            for xx in x0 ..< x1 { let v = line[xx]; if v > m || v.isNaN { m = v } }
                            r[j] = m
                            j += 1
                        }
                    }
                    for i in 0 ..< oh {
                        let y0 = Swift.max(i * stride - padding, 0), y1 = Swift.min(i * stride - padding + kernel, h)
                        let o = d + i * ow
                        var j = 0
                        while j + 8 <= ow {
                            var m = SIMD8<Float>(repeating: -.infinity)
                            for y in y0 ..< y1 { poolMax(&m, load8(rows + y * ow + j)) }
                            UnsafeMutableRawPointer(o + j).storeBytes(of: m, as: SIMD8<Float>.self)
                            j += 8
                        }
                        for jj in j ..< ow {
                            var m = -Float.infinity
                            for y in y0 ..< y1 { let v = rows[y * ow + jj]; if v > m || v.isNaN { m = v } }
                            o[jj] = m
                        }
                    }
                }
            }
        }
    }
}

/// m = max(m, v) lane by lane, a NaN in v taking over (as torch's max pooling propagates NaN).
@inline(__always)
private func poolMax(_ m: inout SIMD8<Float>, _ v: SIMD8<Float>) {
    m.replace(with: v, where: (v .> m) .| (v .!= v))
}

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Average pooling with torch's divisor rules (count_include_pad counts the padding but not the
/// part of a ceil_mode window that hangs past it).
public func avgPool2d(_ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false,
                      countIncludePad: Bool = true) -> Tensor {
    guard poolCheck(x, "avgPool2d", kernel: kernel, stride: stride, padding: padding) else { return .failedShape(rank: 4) }
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let oh = poolOutputSize(h, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    let ow = poolOutputSize(w, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    return Tensor(shape: [x.shape[0], x.shape[1], oh, ow]) { out in
        if out.count == 0 { return }
        let dst = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { p in
            let src = p.baseAddress!
            Parallel.forEach(planes, cost: oh * ow * kernel * kernel) { range in
                for pl in range {
                    let s = src + pl * h * w, d = dst.base + pl * oh * ow
                    for i in 0 ..< oh {
                        var y0 = i * stride - padding, y1 = Swift.min(y0 + kernel, h + padding)
                        let padH = y1 - y0
                        y0 = Swift.max(y0, 0); y1 = Swift.min(y1, h)
                        for j in 0 ..< ow {
                            var x0 = j * stride - padding, x1 = Swift.min(x0 + kernel, w + padding)
                            let padW = x1 - x0
                            x0 = Swift.max(x0, 0); x1 = Swift.min(x1, w)
                            var acc: Float = 0
                            for y in y0 ..< y1 { for xx in x0 ..< x1 { acc += s[y * w + xx] } }
                            let divisor = countIncludePad ? padH * padW : (y1 - y0) * (x1 - x0)
                            d[i * ow + j] = acc / Float(divisor)
                        }
                    }
                }
            }
        }
    }
}

/// Adaptive average pooling: output cell i covers [floor(i*H/out), ceil((i+1)*H/out)).
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) -> Tensor {
    guard check(x.rank == 4, "adaptiveAvgPool2d: input must be [N, C, H, W], got \(x.shape)") else { return .failedShape(rank: 4) }
    let (oh, ow) = outputSize
    check(oh > 0 && ow > 0, "adaptiveAvgPool2d: output size must be positive")
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    check(h > 0 && w > 0, "adaptiveAvgPool2d: empty input \(x.shape)")
    return Tensor(shape: [x.shape[0], x.shape[1], oh, ow]) { out in
        if out.count == 0 { return }
        let dst = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { p in
            let src = p.baseAddress!
            Parallel.forEach(planes, cost: h * w) { range in
                for pl in range {
                    let s = src + pl * h * w, d = dst.base + pl * oh * ow
                    for i in 0 ..< oh {
                        let y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh
                        for j in 0 ..< ow {
                            let x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow
                            var acc: Float = 0
                            for y in y0 ..< y1 { for xx in x0 ..< x1 { acc += s[y * w + xx] } }
                            d[i * ow + j] = acc / Float((y1 - y0) * (x1 - x0))
                        }
                    }
                }
            }
        }
    }
}

/// Nearest-neighbour upsampling by an integer factor (nn.Upsample(scale_factor=s, mode="nearest")).
public func upsampleNearest(_ x: Tensor, scale: Int) -> Tensor {
    guard check(x.rank == 4, "upsampleNearest: input must be [N, C, H, W], got \(x.shape)") else { return .failedShape(rank: 4) }
    guard check(scale > 0, "upsampleNearest: scale must be positive") else { return .failedShape(rank: 4) }
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let oh = h * scale, ow = w * scale
    return Tensor(shape: [x.shape[0], x.shape[1], oh, ow]) { out in
        if out.count == 0 { return }
        let dst = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { p in
            let src = p.baseAddress!
            Parallel.forEach(planes, cost: oh * ow) { range in
                for pl in range {
                    let s = src + pl * h * w, d = dst.base + pl * oh * ow
                    for y in 0 ..< h {
                        let line = d + y * scale * ow
                        for xx in 0 ..< w {
                            let v = s[y * w + xx]
                            for k in 0 ..< scale { line[xx * scale + k] = v }
                        }
                        for r in 1 ..< scale { (line + r * ow).update(from: line, count: ow) }
                    }
                }
            }
        }
    }
}

/// Nearest-neighbour resampling of [N, C, H, W] to [N, C, rows.count, columns.count]: output row i reads input row
/// `rows[i]`, output column j input column `columns[j]` (the caller's coordinate rule picks them; each must lie in
/// the input). An integer upscale with floor indices is `upsampleNearest`.
public func resizeNearest(_ x: Tensor, rows: [Int], columns: [Int]) -> Tensor {
    guard check(x.rank == 4, "resizeNearest: input must be [N, C, H, W], got \(x.shape)") else { return .failedShape(rank: 4) }
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    check(rows.allSatisfy { $0 >= 0 && $0 < h } && columns.allSatisfy { $0 >= 0 && $0 < w },
          "resizeNearest: an index lies outside the input \(x.shape)")
    let oh = rows.count, ow = columns.count
    return Tensor(shape: [x.shape[0], x.shape[1], oh, ow]) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { p in
            for pl in 0 ..< planes {
                let s = p.baseAddress! + pl * h * w, d = out.baseAddress! + pl * oh * ow
                for i in 0 ..< oh {
                    let line = s + rows[i] * w
                    for j in 0 ..< ow { d[i * ow + j] = line[columns[j]] }
                }
            }
        }
    }
}

/// Bilinear resampling of [N, C, H, W] to [N, C, rows.count, columns.count]: output row i samples input row
/// coordinate `rows[i]` (in input pixels, clamped into [0, H - 1]), likewise columns.
public func resizeBilinear(_ x: Tensor, rows: [Float], columns: [Float]) -> Tensor {
    guard check(x.rank == 4, "resizeBilinear: input must be [N, C, H, W], got \(x.shape)") else { return .failedShape(rank: 4) }
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let oh = rows.count, ow = columns.count
    func taps(_ c: Float, _ n: Int) -> (Int, Int, Float) {
        let v = Swift.min(Swift.max(c.isNaN ? 0 : c, 0), Float(n - 1))
        let i0 = Int(v.rounded(.down)), i1 = Swift.min(i0 + 1, n - 1)
        return (i0, i1, v - Float(i0))
    }
    return Tensor(shape: [x.shape[0], x.shape[1], oh, ow]) { out in
        if out.count == 0 { return }
        let ys = rows.map { taps($0, h) }, xs = columns.map { taps($0, w) }
        x.data.withUnsafeBufferPointer { p in
            for pl in 0 ..< planes {
                let s = p.baseAddress! + pl * h * w, d = out.baseAddress! + pl * oh * ow
                for i in 0 ..< oh {
                    let (y0, y1, fy) = ys[i]
                    for j in 0 ..< ow {
                        let (x0, x1, fx) = xs[j]
                        let top = s[y0 * w + x0] * (1 - fx) + s[y0 * w + x1] * fx
                        let bottom = s[y1 * w + x0] * (1 - fx) + s[y1 * w + x1] * fx
                        d[i * ow + j] = top * (1 - fy) + bottom * fy
                    }
                }
            }
        }
    }
}
