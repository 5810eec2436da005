import CKernels
import Foundation

// Normalisation layers (inference).

/// Folds an inference batch norm into the preceding convolution: w' = w * s, b' = (b - mean) * s + beta,
/// with s = gamma / sqrt(var + eps) per output channel.
public func foldBatchNorm(weight: Tensor, bias: Tensor?, gamma: Tensor, beta: Tensor, mean: Tensor,
                          variance: Tensor, eps: Float) -> (weight: Tensor, bias: Tensor) {
    let cout = weight.shape[0]
    check(gamma.count == cout && beta.count == cout && mean.count == cout && variance.count == cout,
                 "foldBatchNorm: batch norm parameters do not have \(cout) channels")
    if let bias { check(bias.count == cout, "foldBatchNorm: bias \(bias.shape) for \(cout) channels") }
    let per = weight.count / Swift.max(cout, 1)
    var w = weight
    var b = [Float](repeating: 0, count: cout)
    for o in 0 ..< cout {
        let s = gamma.data[o] / sqrtf(variance.data[o] + eps)
        for i in 0 ..< per { w.data[o * per + i] *= s }
        b[o] = ((bias?.data[o] ?? 0) - mean.data[o]) * s + beta.data[o]
    }
    return (w, Tensor(shape: [cout], data: b))
}

/// out[i] = x[i] * scale + shift for i < n: ck_affine of `kernels` (one rounding) or a Swift loop (portable, two).
@inline(__always)
func affine(_ x: UnsafePointer<Float>, _ n: Int, _ scale: Float, _ shift: Float, _ out: UnsafeMutablePointer<Float>, _ kernels: KernelSet) {
    switch kernels {
    case .avx512: ck_affine_avx512(x, n, scale, shift, out)
    case .avx2: ck_affine_avx2(x, n, scale, shift, out)
    case .portable: for i in 0 ..< n { out[i] = x[i] * scale + shift }
    }
}

/// Inference batch norm over dimension 1 of [N, C, ...].
public func batchNorm(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, eps: Float) -> Tensor {
    batchNorm(x, gamma: gamma, beta: beta, mean: mean, variance: variance, eps: eps, kernels: .active)
}

/// batchNorm on `kernels` (a test's choice).
func batchNorm(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, eps: Float, kernels: KernelSet) -> Tensor {
    guard check(x.rank >= 2, "batchNorm: input needs [N, C, ...], got \(x.shape)") else { return .failedShape(rank: 2) }
    let c = x.shape[1]
    check(gamma.count == c && beta.count == c && mean.count == c && variance.count == c,
                 "batchNorm: parameters do not have \(c) channels")
    let inner = x.shape[2...].reduce(1, *)
    var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
    for i in 0 ..< c {
        scale[i] = gamma.data[i] / sqrtf(variance.data[i] + eps)
        shift[i] = beta.data[i] - mean.data[i] * scale[i]
    }
    return Tensor(shape: x.shape) { out in
        if out.count == 0 { return }
        let d = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { p in
            scale.withUnsafeBufferPointer { sp in
                shift.withUnsafeBufferPointer { tp in
                    let src = ConstPointer(p.baseAddress!), sc = ConstPointer(sp.baseAddress!), sh = ConstPointer(tp.baseAddress!)
                    Parallel.forEach(x.shape[0] * c, cost: inner * 2) { planes in
                        for pl in planes {
                            let ch = pl % c, base = pl * inner
                            affine(src.base + base, inner, sc.base[ch], sh.base[ch], d.base + base, kernels)
                        }
                    }
                }
            }
        }
    }
}

/// Layer norm over the last dimension (biased variance, as torch).
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    layerNorm(x, weight: weight, bias: bias, eps: eps, kernels: .active)
}

/// layerNorm on `kernels`: ck_layernorm (AVX-512, AVX2) or the Swift loops (portable).
func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float, kernels: KernelSet) -> Tensor {
    guard check(x.rank >= 1, "layerNorm: scalar input") else { return .failedShape(rank: 1) }
    let d = x.shape[x.rank - 1]
    if let weight { check(weight.count == d, "layerNorm: weight \(weight.shape) for last dimension \(d)") }
    if let bias { check(bias.count == d, "layerNorm: bias \(bias.shape) for last dimension \(d)") }
    let rows = d == 0 ? 0 : x.count / d
    return Tensor(shape: x.shape) { out in
        let dst = SharedPointer(out.baseAddress ?? UnsafeMutablePointer(bitPattern: 16)!)
        x.data.withUnsafeBufferPointer { p in
            withOptionalBuffer(weight) { wp in
                withOptionalBuffer(bias) { bp in
                    guard let src = p.baseAddress else { return }
                    Parallel.forEach(rows, cost: d * 4) { range in
                        if kernels != .portable {
                            let s = src + range.lowerBound * d, o = dst.base + range.lowerBound * d
                            if kernels == .avx512 {
                                ck_layernorm_avx512(s, range.count, d, wp, bp, eps, o)
                            } else {
                                ck_layernorm_avx2(s, range.count, d, wp, bp, eps, o)
                            }
                            return
                        }
                        for r in range {
                            let s = src + r * d, o = dst.base + r * d
                            let m = rowSum(s, d, around: 0, squared: false) / Float(d)
                            let inv = 1 / sqrtf(rowSum(s, d, around: m, squared: true) / Float(d) + eps)
                            var i = 0
                            if let wp, let bp {   // the usual case, eight at a time
                                let sr = UnsafeRawPointer(s), wr = UnsafeRawPointer(wp), br = UnsafeRawPointer(bp)
                                let mv = SIMD8<Float>(repeating: m), iv = SIMD8<Float>(repeating: inv)
                                let orw = UnsafeMutableRawPointer(o)
                                while i + 8 <= d {
                                    let y = (sr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - mv) * iv
                                        * wr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                                        + br.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                                    orw.storeBytes(of: y, toByteOffset: i * 4, as: SIMD8<Float>.self)
                                    i += 8
                                }
                            }
                            for i in i ..< d {
                                var y = (s[i] - m) * inv
                                if let wp { y *= wp[i] }
                                if let bp { y += bp[i] }
                                o[i] = y
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The sum of p[0 ..< n] (squared: of (p[i] - around)^2) in eight partial sums, so the adds do not wait on each
/// other: one running sum made layer norm wait four cycles an element (8400x256 2.7-3.8 ms).
@inline(__always)
func rowSum(_ p: UnsafePointer<Float>, _ n: Int, around c: Float, squared: Bool) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    let raw = UnsafeRawPointer(p), cv = SIMD8<Float>(repeating: c)
    var i = 0
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - cv
        acc += squared ? v * v : v
        i += 8
    }
    var total = acc.sum()
    while i < n { let t = p[i] - c; total += squared ? t * t : t; i += 1 }
    return total
}

/// Group norm over [N, C, ...]: statistics per (image, group of C / groups channels); affine per channel.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, kernels: .active)
}

/// groupNorm on `kernels`: statistics by ck_moments and the per-channel step by ck_affine (AVX-512, AVX2), or Swift
/// loops (portable); both take the statistics in Double.
func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float, kernels: KernelSet) -> Tensor {
    guard check(x.rank >= 2, "groupNorm: input needs [N, C, ...], got \(x.shape)") else { return .failedShape(rank: 2) }
    let n = x.shape[0], c = x.shape[1]
    guard check(groups > 0 && c % groups == 0, "groupNorm: \(groups) groups do not divide \(c) channels") else { return .failedShape(rank: x.rank) }
    if let weight { check(weight.count == c, "groupNorm: weight \(weight.shape) for \(c) channels") }
    if let bias { check(bias.count == c, "groupNorm: bias \(bias.shape) for \(c) channels") }
    let inner = x.shape[2...].reduce(1, *)
    let cg = c / groups
    let size = cg * inner
    return Tensor(shape: x.shape) { out in
        if out.count == 0 { return }
        let dst = SharedPointer(out.baseAddress!)
        x.data.withUnsafeBufferPointer { p in
            withOptionalBuffer(weight) { wp in
                withOptionalBuffer(bias) { bp in
                    let src = p.baseAddress!
                    Parallel.forEach(n * groups, cost: size * 4) { range in
                        for ng in range {
                            let s = src + ng * size, o = dst.base + ng * size
                            // Two-pass statistics in Double for stability on large groups.
                            var m: Double = 0, v: Double = 0
                            switch kernels {
                            case .avx512: ck_moments_avx512(s, size, &m, &v)
                            case .avx2: ck_moments_avx2(s, size, &m, &v)
                            case .portable:
                                for i in 0 ..< size { m += Double(s[i]) }
                                m /= Double(size)
                                for i in 0 ..< size { let t = Double(s[i]) - m; v += t * t }
                                v /= Double(size)
                            }
                            let inv = Float(1 / (v + Double(eps)).squareRoot())
                            let mf = Float(m)
                            let gi = ng % groups
                            for cc in 0 ..< cg {
                                let ch = gi * cg + cc
                                let a = inv * (wp?[ch] ?? 1)
                                let b = (bp?[ch] ?? 0) - mf * a
                                affine(s + cc * inner, inner, a, b, o + cc * inner, kernels)
                            }
                        }
                    }
                }
            }
        }
    }
}
