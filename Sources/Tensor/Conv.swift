import CKernels
import Foundation

// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d), NCHW input, OIHW weight.

/// An activation conv2d applies to its output as part of the convolution: the bias add and the activation
/// run on each output tile right after its gemm, while it is in cache, instead of as passes of their own.
public enum ConvActivation: Sendable, Equatable {
    case identity, relu, silu, sigmoid

    /// The kind number of ck_bias_act_avx2.
    var kernelKind: Int32 {
        switch self {
        case .identity: return -1
        case .sigmoid: return 1
        case .silu: return 2
        case .relu: return 3
        }
    }
}

public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1, activation: ConvActivation = .identity) -> Tensor {
    conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
           dilation: (dilation, dilation), groups: groups, activation: activation)
}

public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                   dilation: (Int, Int), groups: Int, activation: ConvActivation = .identity) -> Tensor {
    let p = ConvProblem(x, weight, bias, stride, padding, dilation, groups)
    return Tensor(shape: [p.n, p.cout, p.g.outH, p.g.outW]) { out in
        if out.count == 0 { return }
        x.data.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                withOptionalBuffer(bias) { bp in
                    convForward(p, x: xp.baseAddress!, w: wp.baseAddress!, bias: bp, activation: activation, out: out.baseAddress!,
                                weights: weight.data)
                }
            }
        }
    }
}

/// A 1x1 convolution (stride 1, one group) of the channel-wise concatenation of `parts` (each a tensor and
/// the range of its channels to take), without building the concatenation: the product is summed over the
/// parts, each against its block of weight columns, tile by tile, and bias and activation finish each tile.
/// Equal to conv2d(concat(parts), weight:, bias:, activation:) up to float rounding.
/// With the AVX2 or AVX-512 kernels (`kernels`: the active set unless a test chooses) it is the 1x1 panel conv with each
/// input channel's plane read where it lies (ck_conv1x1_rows: weights packed once, bias and activation in registers);
/// portably, one gemm per part into the output, then bias and activation.
public func conv1x1(concatenating parts: [(Tensor, Range<Int>)], weight: Tensor, bias: Tensor?,
                    activation act: ConvActivation = .identity, kernels: KernelSet = .active) -> Tensor {
    guard check(!parts.isEmpty && parts.allSatisfy { $0.0.rank == 4 }, "conv1x1(concatenating:): parts must be [N, C, H, W]")
    else { return .failedShape(rank: 4) }
    let first = parts[0].0
    let n = first.shape[0], h = first.shape[2], w = first.shape[3], plane = h * w
    let cin = parts.reduce(0) { $0 + $1.1.count }
    check(parts.allSatisfy { $0.0.shape[0] == n && $0.0.shape[2] == h && $0.0.shape[3] == w
                             && $0.1.lowerBound >= 0 && $0.1.upperBound <= $0.0.shape[1] },
          "conv1x1(concatenating:): parts \(parts.map { ($0.0.shape, $0.1) }) do not line up")
    guard check(weight.rank == 4 && weight.shape[1] == cin && weight.shape[2] == 1 && weight.shape[3] == 1,
                "conv1x1(concatenating:): weight \(weight.shape) for \(cin) input channels") else { return .failedShape(rank: 4) }
    let cout = weight.shape[0]
    if let bias { check(bias.count == cout, "conv1x1(concatenating:): bias \(bias.shape) for \(cout) outputs") }
    if Tensor.isInShapePass { return Tensor(shapeOnly: [n, cout, h, w]) }
    // Raw pointers to every part, kept alive by `parts` for the duration of the call.
    let pointers: [(ConstPointer, Int, Int, Int)] = parts.map { t, r in
        (ConstPointer(t.data.withUnsafeBufferPointer { $0.baseAddress! }), t.shape[1], r.lowerBound, r.count)
    }
    if kernels != .portable {
        return withExtendedLifetime(parts) {
            conv1x1Rows(pointers, n: n, h: h, w: w, weight: weight, bias: bias, activation: act, wide: kernels == .avx512)
        }
    }
    return withExtendedLifetime(parts) {
        Tensor(shape: [n, cout, h, w]) { out in
            guard let o = out.baseAddress else { return }
            weight.data.withUnsafeBufferPointer { wbuf in
                withOptionalBuffer(bias) { bp in
                    let wp = ConstPointer(wbuf.baseAddress!), d = SharedPointer(o), bc = bp.map { ConstPointer($0) }
                    for b in 0 ..< n {
                        let dst = d.base + b * cout * plane
                        forEachPixelTile(plane: plane, rows: cout, parallel: cout * plane * cin >= 1 << 18) { t in
                            var col = 0
                            for (k, (src, channels, start, count)) in pointers.enumerated() {
                                sgemm(m: cout, n: t.count, k: count, a: wp.base + col, lda: cin,
                                      b: src.base + (b * channels + start) * plane + t.lowerBound, ldb: plane,
                                      beta: k == 0 ? 0 : 1, c: dst + t.lowerBound, ldc: plane)
                                col += count
                            }
                            for oc in 0 ..< cout {
                                biasActivate(dst + oc * plane + t.lowerBound, t.count, bc?.base[oc] ?? 0, act)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// conv1x1(concatenating:) by ck_conv1x1_rows: the input channels' planes (each part: its base, channel count, first
/// channel and number of channels) for every image, the output pixels split across cores in whole panels, as panelConv.
private func conv1x1Rows(_ parts: [(ConstPointer, Int, Int, Int)], n: Int, h: Int, w: Int, weight: Tensor, bias: Tensor?,
                         activation act: ConvActivation, wide: Bool) -> Tensor {
    let plane = h * w
    let cout = weight.shape[0], kdim = weight.shape[1]
    let groupFloats = (cout + 3) / 4 * 4 * kdim
    let packed = weight.data.withUnsafeBufferPointer { wp in
        WeightCache.shared.packed(weight.data, layout: .init(name: "panels", dims: [1, cout, kdim]), count: groupFloats) {
            ck_pack_weights4(wp.baseAddress!, cout, kdim, $0)
        }
    }
    let unit = wide ? 48 : 24, panels = (plane + unit - 1) / unit
    let chunks = cout * plane * kdim < 1 << 18 ? 1 : Swift.min(Parallel.cores, panels)
    let scratchPanels = wide ? ck_conv_block_panels_avx512(kdim) : ck_conv_block_panels(kdim)
    let rowsFn = wide ? ck_conv1x1_rows_avx512 : ck_conv1x1_rows_avx2
    return withExtendedLifetime(packed) {
        Tensor(shape: [n, cout, h, w]) { out in
            guard out.count > 0 else { return }
            let d = SharedPointer(out.baseAddress!), ap = ConstPointer(packed.base)
            withOptionalBuffer(bias) { bp in
                let bc = bp.map { ConstPointer($0) }
                for b in 0 ..< n {
                    // Input channel i of image b: its plane in the part that holds it.
                    var rows: [UnsafePointer<Float>?] = []
                    rows.reserveCapacity(kdim)
                    for (src, channels, start, count) in parts {
                        for c in start ..< start + count { rows.append(src.base + (b * channels + c) * plane) }
                    }
                    rows.withUnsafeBufferPointer { rp in
                        let rowPointers = RowPointers(base: rp.baseAddress!)
                        Parallel.forEach(chunks, cost: Parallel.threshold) { range in
                            let panel = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(kdim, 1) * 24 * scratchPanels)
                            defer { panel.deallocate() }
                            for part in range {
                                let p0 = Swift.min(plane, panels * part / chunks * unit)
                                let p1 = Swift.min(plane, panels * (part + 1) / chunks * unit)
                                if p0 >= p1 { continue }
                                rowsFn(rowPointers.base, kdim, ap.base, cout, bc?.base, act.kernelKind, d.base + b * cout * plane,
                                       plane, p0, p1, panel)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The input planes' addresses for ck_conv1x1_rows, shared by the cores (read only).
private struct RowPointers: @unchecked Sendable {
    let base: UnsafePointer<UnsafePointer<Float>?>
}

/// Runs `body` over tiles of `plane` output pixels, each core taking a run of them (when `parallel`), the tiles
/// small enough that `rows` output rows of a tile stay in cache for the bias/activation epilogue.
@inline(__always)
func forEachPixelTile(plane: Int, rows: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
    let parts = parallel ? Parallel.cores : 1
    let tile = Swift.max(256, (convTileFloats / 2) / Swift.max(rows, 1))
    Parallel.forEach(parts, cost: Parallel.threshold) { range in
        for part in range {
            let p1 = plane * (part + 1) / parts
            var t0 = plane * part / parts
            while t0 < p1 {
                let t1 = Swift.min(t0 + tile, p1)
                body(t0 ..< t1)
                t0 = t1
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
        // In a shape pass a failed check leaves a 1x1 problem (output [1, 1, 1, 1]); the failure is reported.
        guard check(x.rank == 4, "conv2d: input must be [N, C, H, W], got \(x.shape)"),
              check(weight.rank == 4, "conv2d: weight must be [Cout, Cin/groups, kH, kW], got \(weight.shape)"),
              check(groups > 0 && x.shape[1] % groups == 0 && weight.shape[0] % groups == 0,
                    "conv2d: groups \(groups) must divide input channels \(x.shape[1]) and output channels \(weight.shape[0])"),
              check(weight.shape[1] * groups == x.shape[1],
                    "conv2d: weight \(weight.shape) with groups \(groups) does not match input channels \(x.shape[1])"),
              check(stride.0 > 0 && stride.1 > 0 && dilation.0 > 0 && dilation.1 > 0 && padding.0 >= 0 && padding.1 >= 0,
                    "conv2d: stride and dilation must be positive, padding non-negative")
        else {
            n = 1; cin = 1; cout = 1; self.groups = 1
            g = Window(kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, h: 1, w: 1)
            return
        }
        if let bias { check(bias.count == weight.shape[0], "conv2d: bias \(bias.shape) for \(weight.shape[0]) output channels") }
        n = x.shape[0]; cin = x.shape[1]; cout = weight.shape[0]; self.groups = groups
        g = Window(kh: weight.shape[2], kw: weight.shape[3], sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1,
                   dh: dilation.0, dw: dilation.1, h: x.shape[2], w: x.shape[3])
        // The shape pass reports an empty output where it appears (the module tree's call records it).
        check(g.outH > 0 && g.outW > 0 || Tensor.isInShapePass, "conv2d: kernel \(weight.shape[2])x\(weight.shape[3]) does not fit input \(x.shape) with padding \(padding)")
    }
}

@inline(__always)
func withOptionalBuffer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.data.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// act(x + bias) over `count` floats in place (nothing when there is neither).
@inline(__always)
func biasActivate(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ bias: Float, _ act: ConvActivation) {
    if act == .identity && bias == 0 { return }
    if hasAVX512 {
        ck_bias_act_avx512(p, count, bias, act.kernelKind)
        return
    }
    if hasAVX2FMA {
        ck_bias_act_avx2(p, count, bias, act.kernelKind)
        return
    }
    for i in 0 ..< count {
        let v = p[i] + bias
        switch act {
        case .identity: p[i] = v
        case .relu: p[i] = v > 0 || v.isNaN ? v : 0
        case .silu: p[i] = v * sigmoidScalar(v)
        case .sigmoid: p[i] = sigmoidScalar(v)
        }
    }
}

/// The convolution itself, by kind:
/// - depthwise (groups == input channels): direct sliding window per plane, planes across cores;
/// - Winograd F(2x2, 3x3) for 3x3 stride-1 convs with channels enough (`usesWinograd`);
/// - an implicit gemm with the engine's own micro-kernel for the narrow convs of large maps and small 1x1
///   convs (`usesPanels`), output pixels split across cores in panels of 24;
/// - 1x1 with 1 to 3 output channels (`usesFewOutputs`): a weighted sum of the input planes;
/// - 1x1, stride 1, unpadded: a plain gemm on the input, in tiles of output pixels;
/// - otherwise im2col + sgemm per group, in tiles of output pixels small enough for the cache, the
///   pixels split across cores (each core gets its own tile buffer and single-threaded gemms).
/// Bias and activation are applied to each output tile right after its gemm (in registers by the panels).
/// `weights`: the array `w` points into, when the caller has it: Winograd's transformed kernels and the panels'
/// packed weights are then kept in `WeightCache.shared` for the next call with the same weights.
func convForward(_ p: ConvProblem, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 activation act: ConvActivation = .identity, out: UnsafeMutablePointer<Float>, weights: [Float]? = nil) {
    if p.groups > 1 && p.groups == p.cin {
        depthwiseConv(p, x: x, w: w, bias: bias, activation: act, out: out)
        return
    }
    if usesWinograd(p) {
        winogradConv(p, x: x, w: w, bias: bias, activation: act, out: out, weights: weights)
        return
    }
    if usesFewOutputs(p) {
        fewOutputsConv(p, x: x, w: w, bias: bias, activation: act, out: out)
        return
    }
    if usesPanels(p) {
        panelConv(p, x: x, w: w, bias: bias, activation: act, out: out, weights: weights)
        return
    }
    let g = p.g
    let kdim = p.cinG * p.kernelSize
    let plane = p.outPlane
    let pointwise = isPointwise(g)
    let bp = bias.map { ConstPointer($0) }
    for b in 0 ..< p.n {
        for gi in 0 ..< p.groups {
            let src = x + (b * p.cin + gi * p.cinG) * p.inPlane
            let dst = out + (b * p.cout + gi * p.coutG) * plane
            let wg = w + gi * p.coutG * kdim
            let s = ConstPointer(src), wp = ConstPointer(wg), d = SharedPointer(dst)
            /// Bias and activation on rows `rows`, pixels `pixels` of this group's output.
            func finish(_ rows: Range<Int>, _ pixels: Range<Int>) {
                for o in rows {
                    biasActivate(d.base + o * plane + pixels.lowerBound, pixels.count, bp?.base[gi * p.coutG + o] ?? 0, act)
                }
            }
            let work = p.coutG * plane * Swift.max(kdim, 1)
            if pointwise {
                let parts = work < 1 << 18 ? 1 : Parallel.cores
                if p.coutG >= plane {
                    // Few pixels, many channels: each core takes a block of output channels.
                    let blocks = (p.coutG + 7) / 8
                    Parallel.forEach(parts, cost: Parallel.threshold) { range in
                        for part in range {
                            let m0 = Swift.min(p.coutG, blocks * part / parts * 8), m1 = Swift.min(p.coutG, blocks * (part + 1) / parts * 8)
                            if m0 >= m1 { continue }
                            sgemm(m: m1 - m0, n: plane, k: kdim, a: wp.base + m0 * kdim, lda: kdim, b: s.base, ldb: plane,
                                  c: d.base + m0 * plane, ldc: plane)
                            finish(m0 ..< m1, 0 ..< plane)
                        }
                    }
                } else {
                    forEachPixelTile(plane: plane, rows: p.coutG, parallel: parts > 1) { t in
                        sgemm(m: p.coutG, n: t.count, k: kdim, a: wp.base, lda: kdim, b: s.base + t.lowerBound, ldb: plane,
                              c: d.base + t.lowerBound, ldc: plane)
                        finish(0 ..< p.coutG, t)
                    }
                }
                continue
            }
            // Tile width: about `convTileFloats` of im2col per tile, at least `convTileMin` pixels.
            let tile = Swift.min(plane, Swift.max(convTileMin, convTileFloats / Swift.max(kdim, 1)))
            let tiles = (plane + tile - 1) / tile
            let parts = work < 1 << 20 ? 1 : Swift.min(Parallel.cores, tiles > 1 ? tiles : (plane >= 32 ? Parallel.cores : 1))
            Parallel.forEach(parts, cost: Parallel.threshold) { range in
                for part in range {
                    let p0 = plane * part / parts, p1 = plane * (part + 1) / parts
                    if p0 >= p1 { continue }
                    let width = Swift.min(tile, p1 - p0)
                    let col = UnsafeMutablePointer<Float>.allocate(capacity: kdim * width)
                    defer { col.deallocate() }
                    var t0 = p0
                    while t0 < p1 {
                        let t1 = Swift.min(t0 + width, p1)
                        im2colTile(s.base, g, rows: 0 ..< kdim, pixels: t0 ..< t1, into: col, ld: t1 - t0)
                        sgemm(m: p.coutG, n: t1 - t0, k: kdim, a: wp.base, lda: kdim, b: col, ldb: t1 - t0,
                              c: d.base + t0, ldc: plane)
                        finish(0 ..< p.coutG, t0 ..< t1)
                        t0 = t1
                    }
                }
            }
        }
    }
}

/// Depthwise convolution (groups == input channels; each input channel feeds cout / cin outputs).
/// Each input plane is copied once into a zero-padded buffer, so the sliding window needs no bounds
/// tests; eight output pixels (sixteen with AVX-512) are accumulated at a time in SIMD registers over all kernel taps
/// (stride 2 picks the even lanes of two loads). Planes are spread across cores. `kernels`: the active set unless a
/// test chooses; the AVX-512 kernels apply bias and activation to the sums before storing them, the others in a pass
/// over each plane after it.
func depthwiseConv(_ p: ConvProblem, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                   activation act: ConvActivation = .identity, out: UnsafeMutablePointer<Float>, kernels: KernelSet = .active) {
    let g = p.g
    let oh = g.outH, ow = g.outW, taps = g.kh * g.kw
    let mult = p.coutG
    let hp = g.h + 2 * g.ph, wpad = g.w + 2 * g.pw
    let slack = 32   // SIMD loads at the end of the last row may reach past it (the lanes are unused)
    let s = ConstPointer(x), wp = ConstPointer(w), d = SharedPointer(out)
    let b = bias.map { ConstPointer($0) }
    if usesDirectStride2(p, kernels: kernels) {
        // 3x3 stride 2 (the downsampling depthwise convs) read straight from the input: the padded copy of each
        // plane was a pass of its own over an input that only streams through (see usesDirectStride2).
        Parallel.forEach(p.n * p.cout, cost: oh * ow * taps * 2) { planes in
            func input(_ pl: Int) -> UnsafePointer<Float> { s.base + (pl / p.cout * p.cin + pl % p.cout / mult) * p.inPlane }
            for pl in planes {
                let dst = d.base + pl * oh * ow, o = pl % p.cout
                let next = pl + 1 < planes.upperBound ? input(pl + 1) : nil
                if kernels == .avx512 {
                    ck_depthwise3x3s2_avx512(dst, input(pl), g.h, g.w, wp.base + o * taps, b?.base[o] ?? 0, act.kernelKind, next)
                } else {
                    ck_depthwise3x3s2_avx2(dst, input(pl), g.h, g.w, wp.base + o * taps, b?.base[o] ?? 0, next)
                    biasActivate(dst, oh * ow, 0, act)
                }
            }
        }
        return
    }
    Parallel.forEach(p.n * p.cout, cost: oh * ow * taps * 2) { planes in
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: hp * wpad + slack)
        defer { padded.deallocate() }
        padded.initialize(repeating: 0, count: hp * wpad + slack)
        var loaded = -1
        for pl in planes {
            let n = pl / p.cout, o = pl % p.cout
            let plane = n * p.cin + o / mult
            if plane != loaded {
                let src = s.base + plane * p.inPlane
                if kernels != .portable {
                    ck_copy_plane_avx2(padded, wpad, src, g.h, g.w, g.ph, g.pw)
                } else {
                    for y in 0 ..< g.h { (padded + (y + g.ph) * wpad + g.pw).update(from: src + y * g.w, count: g.w) }
                }
                loaded = plane
            }
            let dst = d.base + pl * oh * ow
            let kern = wp.base + o * taps
            let b0 = b?.base[o] ?? 0
            if kernels == .avx512 {
                ck_depthwise_plane_avx512(dst, padded, wpad, kern, b0, act.kernelKind, oh, ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw)
                continue
            }
            if kernels == .avx2 {
                ck_depthwise_plane_avx2(dst, padded, wpad, kern, b0, oh, ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw)
            } else {
                switch (g.kw, g.sw, g.dw, g.dh) {
                case (3, 1, 1, 1): depthwisePlane(dst, padded, kern, b0, g, rowLength: wpad, kw: 3, stride: 1)
                case (5, 1, 1, 1): depthwisePlane(dst, padded, kern, b0, g, rowLength: wpad, kw: 5, stride: 1)
                case (3, 2, 1, 1): depthwisePlane(dst, padded, kern, b0, g, rowLength: wpad, kw: 3, stride: 2)
                case (5, 2, 1, 1): depthwisePlane(dst, padded, kern, b0, g, rowLength: wpad, kw: 5, stride: 2)
                default: depthwisePlaneGeneral(dst, padded, kern, b0, g, rowLength: wpad)
                }
            }
            biasActivate(dst, oh * ow, 0, act)
        }
    }
}

/// Whether a depthwise conv runs by ck_depthwise3x3s2_avx2 (or _avx512) on `kernels`: 3x3, stride 2, padding 1,
/// dilation 1, on planes of an even width (AVX2: of 16 or more; the AVX-512 kernel masks its tails). Measured with `bench ops` against the padded copies, alternating, best of rounds of
/// ten: 1024 planes of 40x40 0.19-0.24 vs 0.31-0.35 ms, 512 of 80x80 0.35-0.52 vs 0.41-0.57, 128 of 160x160
/// 0.45-0.52 vs 0.48-0.65 (the kernel walks each plane in strips; the one it replaced, by rows, lost to the copies
/// on 160x160).
func usesDirectStride2(_ p: ConvProblem, kernels: KernelSet = .active) -> Bool {
    let g = p.g
    return kernels != .portable && g.kh == 3 && g.kw == 3 && g.sh == 2 && g.sw == 2 && g.ph == 1 && g.pw == 1 && g.dh == 1
        && g.dw == 1 && g.w % 2 == 0 && g.w >= (kernels == .avx512 ? 2 : 16)
}

/// im2col tile budget (floats) and minimum tile width (pixels): 512 KB tiles measured as good as
/// 2-8 MB ones here (within noise), and keep each core's tile in its L2.
let convTileFloats = 1 << 17
let convTileMin = 128

/// Whether a conv runs as Winograd F(2x2, 3x3): a 3x3 kernel, stride 1, dilation 1, one group, and channels
/// enough for its 16 products to pay for the transforms. With the engine's micro-kernel and vector transforms
/// (AVX2), from 48 channels on any map: measured with `bench ops` against the panels, alternating, four rounds of
/// four, 48->48 at 160x160 165 vs 148 GFLOP/s, 64->64 at 80x80 154 vs 143, 96->96 at 80x80 188 vs 145, 128->64
/// 180 vs 140 (32->32 at 160x160 106 vs 140, so not below 48). With sgemm and scalar transforms (no AVX2) from 128
/// channels, or 64 on maps up to 40x40 (256->256 at 80x80 / 40x40 / 20x20 44 / 12.9 / 3.5 ms against 61 / 15.6 /
/// 4.0 by im2col; 64->64 at 80x80 99 against 69 as panels). DETR_TUI_NO_WINOGRAD=1 turns it off.
func usesWinograd(_ p: ConvProblem) -> Bool {
    let g = p.g
    guard winogradEnabled && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1
        && p.groups == 1 && p.outPlane >= 64 else { return false }
    if hasAVX2FMA && winogradKernel { return p.cin >= 48 && p.cout >= 48 }
    return (p.cin >= 128 && p.cout >= 128) || (p.cin >= 64 && p.cout >= 64 && p.outPlane <= 1600)
}

let winogradEnabled = ProcessInfo.processInfo.environment["DETR_TUI_NO_WINOGRAD"] == nil

/// A 3x3 stride-1 convolution by Winograd F(2x2, 3x3) (see CKernels/winograd.c): the weights transformed
/// (once per weight array when `weights` is given: `WeightCache`), then per block of whole tile rows (spread across
/// cores) the input tiles transformed, 16 sgemms over the input channels, the outputs transformed back, and bias
/// and activation applied to the output rows while they are in cache (in L1, inside the AVX-512 output transform).
/// 2.25 times fewer multiplies than im2col + gemm; the error stays near float rounding (checked against the direct
/// reference by the property tests). `kernels`: the kernel set of the products and transforms (the active one;
/// tests choose each the processor runs).
func winogradConv(_ p: ConvProblem, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                  activation act: ConvActivation, out: UnsafeMutablePointer<Float>, kernels: KernelSet = .active,
                  weights: [Float]? = nil) {
    let g = p.g
    let oh = g.outH, ow = g.outW, cin = p.cin, cout = p.cout
    let tilesX = (ow + 1) / 2, tilesY = (oh + 1) / 2
    let packed: Int32 = kernels != .portable && winogradKernel ? 1 : 0
    let gemm = kernels == .avx512 ? ck_wino_gemm_avx512 : ck_wino_gemm_avx2
    let input = kernels == .avx512 ? ck_wino_input_avx512 : ck_wino_input_avx2
    let kind = act.kernelKind
    /// The packed path's output transform for blocks of whole tile rows, with bias and activation: fused into the
    /// AVX-512 transform (on the rows just written), a pass over the block's rows after the AVX2 one.
    func output(_ m: UnsafePointer<Float>, _ cout: Int, _ o0: Int, _ o1: Int, _ oh: Int, _ ow: Int, _ tilesX: Int, _ t0: Int,
                _ tb: Int, _ out: UnsafeMutablePointer<Float>) {
        if kernels == .avx512 {
            ck_wino_output_avx512(m, cout, o0, o1, oh, ow, tilesX, t0, tb, bias, kind, out)
            return
        }
        ck_wino_output_avx2(m, cout, o0, o1, oh, ow, tilesX, t0, tb, out)
        let y0 = 2 * (t0 / tilesX), y1 = Swift.min(oh, 2 * ((t0 + tb) / tilesX))
        for o in o0 ..< o1 { biasActivate(out + o * oh * ow + y0 * ow, (y1 - y0) * ow, bias?[o] ?? 0, act) }
    }
    let cout4 = packed == 1 ? (cout + 3) / 4 * 4 : cout
    let wp = ConstPointer(w)
    /// The transformed kernels U into `u`: output channels split across cores in fours (the packed layout's groups).
    func transform(_ u: UnsafeMutablePointer<Float>) {
        if cout4 > cout { u.initialize(repeating: 0, count: 16 * cout4 * cin) }
        let up = SharedPointer(u)
        Parallel.forEach((cout + 3) / 4, cost: cin * 256) { r in
            let o0 = r.lowerBound * 4, o1 = Swift.min(cout, r.upperBound * 4)
            if packed == 1 {
                ck_wino_weights_avx2(wp.base, cout, cin, o0, o1, up.base)
            } else {
                ck_wino_weights(wp.base, cout, cin, o0, o1, up.base)
            }
        }
    }
    let transformed: WeightCache.PackedWeights
    if let weights {
        transformed = WeightCache.shared.packed(weights, layout: .init(name: "winograd", dims: [Int(packed), cout, cin]),
                                                count: 16 * cout4 * cin, make: transform)
    } else {
        transformed = WeightCache.PackedWeights.unshared(count: 16 * cout4 * cin, make: transform)
    }
    let u = transformed.base
    // Blocks of whole tile rows: transformed inputs and products of a block within about 4 MB, and at
    // least as many blocks as cores.
    let fit = Swift.max(1, (1 << 20) / (16 * (cin + cout) * tilesX))
    let rowsPerBlock = Swift.max(1, Swift.min(fit, (tilesY + Parallel.cores - 1) / Parallel.cores))
    let blocks = (tilesY + rowsPerBlock - 1) / rowsPerBlock
    let maxTiles = rowsPerBlock * tilesX
    let bp = bias.map { ConstPointer($0) }
    let uc = ConstPointer(u)
    defer { withExtendedLifetime(transformed) {} }
    if packed == 1 && tilesX * tilesY <= winogradWholeMapTiles {
        // Small maps (up to 24x24): the cores split the input channels for the input transform, then the output
        // channels for the products, the output transform, bias and activation, over all the map's tiles at once.
        // Split by tiles, each core's share would be a few panels of 24 with a mostly empty last one (20x20:
        // 50 tiles a core in 3 panels, against 100 in 5).
        let tiles = tilesX * tilesY, panels = (tiles + 23) / 24
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * cin * panels * 24)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * cout * tiles)
        defer { v.deallocate(); m.deallocate() }
        let vs = SharedPointer(v), ms = SharedPointer(m)
        let quads = (cout + 3) / 4
        for b in 0 ..< p.n {
            let src = ConstPointer(x + b * cin * g.h * g.w), dst = SharedPointer(out + b * cout * oh * ow)
            Parallel.forEach(cin, cost: tiles * 64) { r in
                // Channels c0 ..< c1 of the packed V: the same layout with the channel offset applied.
                input(src.base + r.lowerBound * g.h * g.w, r.count, g.h, g.w, g.ph, g.pw, tilesX, 0, tiles,
                      cin, vs.base + r.lowerBound * 24)
            }
            Parallel.forEach(quads, cost: cin * tiles * 32) { r in
                let o0 = r.lowerBound * 4, o1 = Swift.min(cout, r.upperBound * 4)
                gemm(uc.base, vs.base, cout, cin, tiles, o0, o1, ms.base)
                output(ms.base, cout, o0, o1, oh, ow, tilesX, 0, tiles, dst.base)
            }
        }
        return
    }
    for b in 0 ..< p.n {
        let src = ConstPointer(x + b * cin * g.h * g.w), dst = SharedPointer(out + b * cout * oh * ow)
        Parallel.forEach(blocks, cost: Parallel.threshold) { range in
            let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * cin * ((maxTiles + 23) / 24 * 24))
            let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * cout * maxTiles)
            defer { v.deallocate(); m.deallocate() }
            for block in range {
                let ty0 = block * rowsPerBlock, ty1 = Swift.min(tilesY, ty0 + rowsPerBlock)
                let t0 = ty0 * tilesX, tb = (ty1 - ty0) * tilesX
                if packed == 1 {
                    input(src.base, cin, g.h, g.w, g.ph, g.pw, tilesX, t0, tb, cin, v)
                    gemm(uc.base, v, cout, cin, tb, 0, cout, m)
                    output(m, cout, 0, cout, oh, ow, tilesX, t0, tb, dst.base)
                    continue
                }
                ck_wino_input(src.base, cin, g.h, g.w, g.ph, g.pw, tilesX, t0, tb, v)
                for xi in 0 ..< 16 {
                    sgemm(m: cout, n: tb, k: cin, a: uc.base + xi * cout * cin, lda: cin, b: v + xi * cin * tb, ldb: tb,
                          c: m + xi * cout * tb, ldc: tb)
                }
                ck_wino_output(m, cout, 0, cout, oh, ow, tilesX, t0, tb, dst.base)
                let y0 = 2 * ty0, y1 = Swift.min(oh, 2 * ty1)
                for o in 0 ..< cout {
                    biasActivate(dst.base + o * oh * ow + y0 * ow, (y1 - y0) * ow, bp?.base[o] ?? 0, act)
                }
            }
        }
    }
}

/// Maps of at most this many Winograd tiles (24x24 outputs) run the products over all their tiles at once.
let winogradWholeMapTiles = 144

/// Whether Winograd's products run on the engine's micro-kernel (DETR_TUI_WINOGRAD_SGEMM=1: on OpenBLAS sgemm,
/// with the scalar transforms, for comparison).
let winogradKernel = ProcessInfo.processInfo.environment["DETR_TUI_WINOGRAD_SGEMM"] == nil

/// Whether a conv runs as an implicit gemm with the engine's own micro-kernel (CKernels/convgemm.c) rather than
/// im2col + OpenBLAS, which writes the im2col matrix and then packs it again. Measured with `bench ops`
/// (DETR_TUI_CONV_PANELS=0 and default alternating, best of 7 runs, with and without a SiLU epilogue) and
/// `bench yolov8n` / `bench rtdetr-l` per layer:
/// - wins on the narrow convs of the early, large maps (16->32 k2 at 320x320 108 vs 86 GFLOP/s, 32->16 k2 84
///   vs 68, 64->128 k3 s2 at 160x160 127 vs 105, with SiLU 128 vs 82 for 32->32 k3 at 160x160) and on small
///   1x1 convs (64->64 at 20x20 101 vs 88, the DFL's 16->1 20 vs 11);
/// - about even (within this machine's noise) on the wider convs of 40x40 and 80x80 maps;
/// - loses where a panel of im2col columns outgrows the caches (K = cin * kh * kw above ~1152: 512->64 k3 at
///   20x20 65 vs 98) and on k x k convs of maps under 32x32 (64->64 k3 at 20x20 71 vs 85), which keep OpenBLAS.
/// With the row bands (`usesRowBands`: no gathers) also the k x k convs of smaller maps up to the same K: measured on
/// one core's CPU time against the gathered panels and OpenBLAS (best of 10): 128->128 k3 s2 from 40x40 0.66-0.72 ms
/// vs 0.76-0.90 and 0.87-1.31, 32->32 k3 at 20x20 0.048 vs 0.091 and 0.146; yolov8n's layers 7 and 19 (128->256 and
/// 128->128 k3 s2 from 40x40), 2 threads, medians of 10 rounds on a loaded machine, 1.56 / 0.73 ms vs 2.00 / 1.25.
/// Since the products outside the panels run on the engine's own gemm rather than OpenBLAS (AVX-512), which packs the
/// whole weight matrix again for every tile of pixels, also the banded convs of any K and every 1x1: rtdetr-l, 2 threads,
/// two alternating rounds of five runs against the K <= 1152 limit (Zen 5, medians ms): 256->256 k3 s2 from 80x80
/// 7.07 / 6.06 vs 8.20 / 8.26, from 40x40 1.64 / 1.44 vs 2.37 / 2.19, the 2048->256 1x1 at 20x20 1.29 / 1.34 vs
/// 1.40 / 1.51, the last HGBlock 16.6 / 16.1 vs 18.0 / 17.8, the last RepC3 4.5 / 4.0 vs 5.2 / 4.9; yolov8n even.
/// The bands up to K = 4608 (ResNet-50's 512-channel 3x3 s2 as fast as before): Deformable DETR's 2048->256 3x3 s2
/// from 20x20 (K = 18432, a panel of 3.5 MB) took 11.0 ms on them against 6.5-7.0 as im2col tiles.
/// DETR_TUI_CONV_PANELS=0 turns it off, =all uses it for every conv that is neither depthwise nor Winograd.
func usesPanels(_ p: ConvProblem) -> Bool {
    guard hasAVX2FMA else { return false }
    switch panelMode {
    case "0": return false
    case "all": return true
    default:
        let k = p.cinG * p.kernelSize
        return isPointwise(p.g) || (k <= 4608 && usesRowBands(p)) || (k <= 1152 && p.outPlane >= 1024)
    }
}

/// 1 to 3 output channels of a 1x1 conv (the DFL's 16->1): a weighted sum of the input planes, the pixels split
/// across cores in runs of eight.
func fewOutputsConv(_ p: ConvProblem, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                    activation act: ConvActivation, out: UnsafeMutablePointer<Float>) {
    let s = ConstPointer(x), wp = ConstPointer(w), d = SharedPointer(out), b = bias.map { ConstPointer($0) }
    let plane = p.outPlane, parts = Parallel.cores
    for n in 0 ..< p.n {
        Parallel.forEach(parts, cost: plane * p.cin * p.cout * 2 / parts) { range in
            for part in range {
                let p0 = plane / 8 * part / parts * 8, p1 = part + 1 == parts ? plane : plane / 8 * (part + 1) / parts * 8
                let dst = d.base + n * p.cout * plane
                ck_conv1x1_few_avx2(dst, s.base + n * p.cin * plane, wp.base, b?.base, p.cin, p.cout, plane, p0, p1)
                for o in 0 ..< p.cout { biasActivate(dst + o * plane + p0, p1 - p0, 0, act) }
            }
        }
    }
}

/// Whether a conv runs by ck_conv1x1_few_avx2: 1x1, stride 1, unpadded, one group, 1 to 3 output channels, where
/// the micro-kernel's tiles of four output channels would be mostly empty and the conv is bound by reading its
/// input. Measured with `bench ops` against the panels, alternating, four rounds of ten: the DFL's 16->1 over 4x8400
/// 0.030-0.039 ms vs 0.037-0.046 (its memory floor 0.021-0.030).
func usesFewOutputs(_ p: ConvProblem) -> Bool {
    hasAVX2FMA && p.groups == 1 && p.cout <= 3 && isPointwise(p.g)
}

/// A 1x1 conv with stride 1 and no padding: a plain product with the input planes.
@inline(__always)
func isPointwise(_ g: Window) -> Bool {
    g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1
}

/// Whether the 1x1 panels read the input in place rather than copied (see ck_conv1x1_panels_avx2): only for
/// the fewest input channels. Since the copy is inline vector moves, measured alternating (nine rounds of six):
/// the DFL's 16->1 15-17 GFLOP/s in place vs 12 copied, while 32->48 at 160x160 108-113 vs 127-130 and 128->80 at
/// 40x40 129-132 vs 143-146 copied; 64->64 and 128->80 at 20x20 even.
func panelsInPlace(_ p: ConvProblem) -> Bool {
    p.cinG <= 16
}

let panelMode = ProcessInfo.processInfo.environment["DETR_TUI_CONV_PANELS"] ?? ""

/// Whether a conv on the panels runs by ck_conv_bands_avx2 (or _avx512): dilation 1, stride 1 or 2 alike along both
/// axes, not a plain 1x1. The output rows go in bands, each band's padded input copied once (split by row and column
/// parity for stride 2) into rows as long as a row of the output grid plus the kernel's reach, so that every panel
/// reads its taps in place and runs across output rows: no gathers, and no mostly empty last panel of a narrow row.
/// Measured on one core's CPU time (best of 8-15, the gathered panels / ck_conv_s2band / the bands, AVX-512, outputs
/// bit-identical): 16->32 k3 s2 from 320x320 2.6-3.7 / 2.6-3.1 / 1.7-2.5 ms, 64->64 k3 s2 from 80x80 0.85-1.05 /
/// 0.81-1.08 / 0.65-0.85, 16->16 k3 at 160x160 1.00-1.06 / - / 0.64-0.68, 32->32 k3 at 80x80 0.99-1.32 / - / 0.56-0.68;
/// the 3->16 stem from 640x640 even with ck_conv_s2band (1.27 both). Whole models, 2 threads, alternating with the
/// build before the bands, medians of the round medians on a loaded machine (load 4-5 on 2 vCPUs): yolov8n 107.6 vs
/// 114.9 ms (12 rounds), yolo11n 87.0 vs 95.9, yolo26n 78.4 vs 100.8 (6 rounds); rtdetr-l within its noise.
/// They replaced ck_conv_s2band (one output row per band, wasting most of a 48-wide panel on rows under 128).
/// DETR_TUI_CONV_BANDS=0 turns it off (the gathered panels), =s2 keeps it to stride 2.
func usesRowBands(_ p: ConvProblem) -> Bool {
    let g = p.g
    guard hasAVX2FMA && bandMode != "0" && g.dh == 1 && g.dw == 1 && g.sh == g.sw && !isPointwise(g) else { return false }
    switch g.sh {
    case 2: return true
    case 1: return bandMode != "s2"
    default: return false
    }
}

let bandMode = ProcessInfo.processInfo.environment["DETR_TUI_CONV_BANDS"] ?? ""

/// Output rows per band of ck_conv_bands for parts of `partRows` rows (ck_bands_rows): the band's copy of the input
/// within about 512 KB (in L2 while every block of output channels reads it; 256 KB measured no better: 16->32 k3 s2
/// from 320x320 2.5 vs 1.7 ms, 64->64 from 80x80 0.85 vs 0.65), the fewest tiles over the part.
func bandRows(_ geom: ck_conv_geom, partRows: Int, wide: Bool) -> Int {
    var geo = geom
    return ck_bands_rows(&geo, partRows, wide ? 1 : 0, 1 << 17)
}

/// The conv by ck_conv_panels_avx2: weights packed in panels of four output channels (once per weight array when
/// `weights` is given: `WeightCache`), the
/// output pixels split across cores in whole panels of 24, each core with its own K x 24 panel buffer; or, for
/// the convs of `usesRowBands`, by ck_conv_bands, the output rows split across cores.
/// `kernels`: the micro-kernel's set, AVX2 (4 x 24 blocks) or AVX-512 (8 x 48, the pixels split across cores in
/// pairs of panels); the active one unless a test chooses. `rowBands` (dilation 1, stride 1 or 2 alike on both axes,
/// not a plain 1x1): whether ck_conv_bands runs it, as `usesRowBands` decides unless a test chooses, and
/// `rowsPerBand` its output rows per band (`bandRows` unless a test chooses).
func panelConv(_ p: ConvProblem, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
               activation act: ConvActivation, out: UnsafeMutablePointer<Float>, kernels: KernelSet = .active,
               weights: [Float]? = nil, rowBands: Bool? = nil, rowsPerBand: Int? = nil) {
    let g = p.g
    let kdim = p.cinG * p.kernelSize, plane = p.outPlane, m = p.coutG
    let groupFloats = (m + 3) / 4 * 4 * kdim
    /// Every group's weights packed in fours, one group after another.
    func pack(_ into: UnsafeMutablePointer<Float>) {
        for gi in 0 ..< p.groups { ck_pack_weights4(w + gi * m * kdim, m, kdim, into + gi * groupFloats) }
    }
    let packedWeights = weights.map {
        WeightCache.shared.packed($0, layout: .init(name: "panels", dims: [p.groups, m, kdim]), count: p.groups * groupFloats,
                                  make: pack)
    } ?? WeightCache.PackedWeights.unshared(count: p.groups * groupFloats, make: pack)
    defer { withExtendedLifetime(packedWeights) {} }
    let geom = ck_conv_geom(cin: p.cinG, h: g.h, w: g.w, kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw, ph: g.ph, pw: g.pw,
                            dh: g.dh, dw: g.dw, out_h: g.outH, out_w: g.outW)
    let wide = kernels == .avx512
    let unit = wide ? 48 : 24
    let panels = (plane + unit - 1) / unit
    let pointwise = isPointwise(g), inPlace: Int32 = panelsInPlace(p) ? 1 : 0
    let scratchPanels = wide ? ck_conv_block_panels_avx512(kdim) : ck_conv_block_panels(kdim)
    let panels1x1 = wide ? ck_conv1x1_panels_avx512 : ck_conv1x1_panels_avx2
    let panelsKxK = wide ? ck_conv_panels_avx512 : ck_conv_panels_avx2
    let work = m * plane * Swift.max(kdim, 1)
    let parts = work < 1 << 18 ? 1 : Swift.min(Parallel.cores, panels)
    let kind = act.kernelKind
    let rowBands = rowBands ?? usesRowBands(p)
    let bands = wide ? ck_conv_bands_avx512 : ck_conv_bands_avx2
    for gi in 0 ..< p.groups {
        let ap = ConstPointer(packedWeights.base + gi * groupFloats)
        let bg = bias.map { ConstPointer($0 + gi * m) }
        for b in 0 ..< p.n {
            let src = ConstPointer(x + (b * p.cin + gi * p.cinG) * p.inPlane)
            let dst = SharedPointer(out + (b * p.cout + gi * m) * plane)
            if rowBands {
                let rowsParts = Swift.min(parts, g.outH)
                let rows = rowsPerBand ?? bandRows(geom, partRows: (g.outH + rowsParts - 1) / rowsParts, wide: wide)
                Parallel.forEach(rowsParts, cost: Parallel.threshold) { range in
                    var geo = geom
                    let band = UnsafeMutablePointer<Float>.allocate(capacity: ck_bands_floats(&geo, rows))
                    defer { band.deallocate() }
                    for part in range {
                        bands(src.base, &geo, ap.base, m, bg?.base, kind, dst.base,
                              g.outH * part / rowsParts, g.outH * (part + 1) / rowsParts, rows, band)
                    }
                }
                continue
            }
            Parallel.forEach(parts, cost: Parallel.threshold) { range in
                let panel = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(kdim, 1) * 24 * scratchPanels)
                defer { panel.deallocate() }
                var geo = geom
                for part in range {
                    let p0 = Swift.min(plane, panels * part / parts * unit)
                    let p1 = Swift.min(plane, panels * (part + 1) / parts * unit)
                    if p0 >= p1 { continue }
                    if pointwise {
                        panels1x1(src.base, kdim, plane, ap.base, m, bg?.base, kind, dst.base, p0, p1, inPlace, panel)
                    } else {
                        panelsKxK(src.base, &geo, ap.base, m, bg?.base, kind, dst.base, p0, p1, panel)
                    }
                }
            }
        }
    }
}


@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// One output plane of a depthwise conv with dilation 1, a kw-wide kernel and stride 1 or 2, reading a
/// zero-padded input plane. Written for constant kw and stride so the tap loops unroll.
@inline(__always)
private func depthwisePlane(_ dst: UnsafeMutablePointer<Float>, _ padded: UnsafePointer<Float>, _ kern: UnsafePointer<Float>,
                            _ bias: Float, _ g: Window, rowLength: Int, kw: Int, stride: Int) {
    let oh = g.outH, ow = g.outW, kh = g.kh
    for i in 0 ..< oh {
        let line = dst + i * ow
        let top = padded + i * stride * rowLength
        var j = 0
        while j + 8 <= ow {
            var acc = SIMD8<Float>(repeating: bias)
            for ki in 0 ..< kh {
                let r = top + ki * rowLength + j * stride
                let k = kern + ki * kw
                for kj in 0 ..< kw {
                    let v: SIMD8<Float>
                    if stride == 1 {
                        v = load8(r + kj)
                    } else {
                        v = SIMD8(lowHalf: load8(r + kj).evenHalf, highHalf: load8(r + kj + 8).evenHalf)
                    }
                    acc += SIMD8(repeating: k[kj]) * v
                }
            }
            UnsafeMutableRawPointer(line + j).storeBytes(of: acc, as: SIMD8<Float>.self)
            j += 8
        }
        while j < ow {
            var acc = bias
            for ki in 0 ..< kh {
                let r = top + ki * rowLength + j * stride
                let k = kern + ki * kw
                for kj in 0 ..< kw { acc += k[kj] * r[kj] }
            }
            line[j] = acc
            j += 1
        }
    }
}

/// Any kernel, stride and dilation, on a zero-padded input plane.
private func depthwisePlaneGeneral(_ dst: UnsafeMutablePointer<Float>, _ padded: UnsafePointer<Float>,
                                   _ kern: UnsafePointer<Float>, _ bias: Float, _ g: Window, rowLength: Int) {
    let oh = g.outH, ow = g.outW
    for i in 0 ..< oh {
        let line = dst + i * ow
        line.initialize(repeating: bias, count: ow)
        for ki in 0 ..< g.kh {
            let r = padded + (i * g.sh + ki * g.dh) * rowLength
            for kj in 0 ..< g.kw {
                let wv = kern[ki * g.kw + kj], q = r + kj * g.dw
                for j in 0 ..< ow { line[j] += wv * q[j * g.sw] }
            }
        }
    }
}

/// The plain path (im2col of the whole input + one sgemm per image and group), kept to test the
/// tiled and direct paths against.
public func conv2dIm2col(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                         dilation: (Int, Int), groups: Int) -> Tensor {
    let p = ConvProblem(x, weight, bias, stride, padding, dilation, groups)
    let kdim = p.cinG * p.kernelSize
    return Tensor(shape: [p.n, p.cout, p.g.outH, p.g.outW]) { out in
        if out.count == 0 { return }
        var col = [Float](repeating: 0, count: kdim * p.outPlane)
        x.data.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                col.withUnsafeMutableBufferPointer { cp in
                    for b in 0 ..< p.n {
                        for gi in 0 ..< p.groups {
                            let dst = out.baseAddress! + (b * p.cout + gi * p.coutG) * p.outPlane
                            for o in 0 ..< p.coutG {
                                (dst + o * p.outPlane).initialize(repeating: bias?.data[gi * p.coutG + o] ?? 0, count: p.outPlane)
                            }
                            im2col(xp.baseAddress! + (b * p.cin + gi * p.cinG) * p.inPlane, channels: p.cinG, p.g, into: cp.baseAddress!)
                            sgemm(m: p.coutG, n: p.outPlane, k: kdim, a: wp.baseAddress! + gi * p.coutG * kdim, lda: kdim,
                                  b: cp.baseAddress!, ldb: p.outPlane, beta: 1, c: dst, ldc: p.outPlane)
                        }
                    }
                }
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
