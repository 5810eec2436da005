import XCTest
@testable import Tensor
import CKernels

/// The fast paths (tiled im2col + gemm split across cores, 1x1 gemm, direct depthwise, split gemms,
/// direct deformable attention) against the plain references, over many seeded random shapes.
final class FastPathPropertyTests: XCTestCase {
    /// max |a - b| <= 1e-4 * max |b| (gemm-based tolerance), with a message naming the case.
    func assertClose(_ a: Tensor, _ b: Tensor, _ what: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what(), file: file, line: line)
        guard a.shape == b.shape else { return }
        let scale = Swift.max(b.maxAbs, 1e-6)
        var worst: Float = 0, at = 0
        for i in 0 ..< a.count where Swift.abs(a.data[i] - b.data[i]) > worst { worst = Swift.abs(a.data[i] - b.data[i]); at = i }
        XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "\(what()): worst error \(worst) at flat index \(at) (scale \(scale))",
                                 file: file, line: line)
    }

    /// The reference conv followed by the activation, element by element in Double.
    func referenceActivated(_ t: Tensor, _ act: ConvActivation) -> Tensor {
        Tensor(shape: t.shape, data: t.data.map { v in
            let x = Double(v)
            switch act {
            case .identity: return v
            case .relu: return v > 0 ? v : 0
            case .silu: return Float(x / (1 + Foundation.exp(-x)))
            case .sigmoid: return Float(1 / (1 + Foundation.exp(-x)))
            }
        })
    }

    static let activations: [ConvActivation] = [.identity, .relu, .silu, .sigmoid]

    func testConvPathsMatchReference() {
        var rng = SplitMix64(seed: 2024)
        for trial in 0 ..< 120 {
            let kind = trial % 4   // 0 general, 1 pointwise, 2 depthwise, 3 grouped
            let groups = kind == 2 ? rng.int(1 ... 12) : (kind == 3 ? rng.int(2 ... 4) : 1)
            let cin = kind == 2 ? groups : groups * rng.int(1 ... 9)
            let cout = kind == 2 ? groups * rng.int(1 ... 2) : groups * rng.int(1 ... 9)
            let k = kind == 1 ? 1 : [1, 2, 3, 3, 5, 7][rng.int(0 ... 5)]
            let kw = trial % 7 == 0 ? rng.int(1 ... 4) : k
            let stride = kind == 1 ? 1 : rng.int(1 ... 3)
            let dilation = kind == 1 || trial % 5 != 0 ? 1 : rng.int(1 ... 3)
            let pad = kind == 1 ? 0 : rng.int(0 ... k)
            let padW = kw == k ? pad : rng.int(0 ... kw)
            let h = rng.int(1 ... 19) + dilation * (k - 1), w = rng.int(1 ... 23) + dilation * (kw - 1)
            let n = rng.int(1 ... 2)
            let x = rng.tensor([n, cin, h, w])
            let wt = rng.tensor([cout, cin / groups, k, kw])
            let bias = trial % 3 == 0 ? nil : rng.tensor([cout])
            let act = Self.activations[(trial / 4) % 4]
            let args = "trial \(trial): x \(x.shape) w \(wt.shape) stride \(stride) pad (\(pad), \(padW)) dilation \(dilation) groups \(groups) \(act)"
            let fast = conv2d(x, weight: wt, bias: bias, stride: (stride, stride), padding: (pad, padW),
                              dilation: (dilation, dilation), groups: groups, activation: act)
            let ref = conv2dReference(x, weight: wt, bias: bias, stride: (stride, stride), padding: (pad, padW),
                                      dilation: (dilation, dilation), groups: groups)
            assertClose(fast, referenceActivated(ref, act), "conv2d " + args)
            if trial % 4 == 0 {
                let plain = conv2dIm2col(x, weight: wt, bias: bias, stride: (stride, stride), padding: (pad, padW),
                                         dilation: (dilation, dilation), groups: groups)
                assertClose(plain, ref, "conv2dIm2col " + args)
            }
        }
    }

    /// Large enough that the tiled path uses several tiles and both cores, and depthwise planes split.
    func testLargeConvsMatchReference() {
        XCTAssertTrue(usesWinograd(ConvProblem(Tensor(zeros: [1, 128, 20, 20]), Tensor(zeros: [128, 128, 3, 3]), nil,
                                               (1, 1), (1, 1), (1, 1), 1)), "the Winograd cases below would not test it")
        XCTAssertTrue(usesWinograd(ConvProblem(Tensor(zeros: [1, 64, 20, 20]), Tensor(zeros: [72, 64, 3, 3]), nil,
                                               (1, 1), (1, 1), (1, 1), 1)), "nor the 64-channel ones")
        var rng = SplitMix64(seed: 7)
        let cases: [(cin: Int, cout: Int, k: Int, s: Int, p: Int, g: Int, h: Int, w: Int)] = [
            (16, 24, 3, 1, 1, 1, 40, 37), (8, 16, 3, 2, 1, 1, 61, 64), (64, 32, 1, 1, 0, 1, 30, 30),
            (96, 8, 1, 1, 0, 1, 9, 11), (24, 24, 5, 1, 2, 24, 33, 35), (40, 40, 3, 2, 1, 40, 41, 38),
            (20, 20, 5, 2, 2, 20, 30, 29), (16, 16, 3, 1, 1, 16, 12, 71), (3, 16, 3, 2, 1, 1, 64, 64),
            (256, 512, 1, 1, 0, 1, 8, 8), (32, 48, 1, 1, 0, 1, 67, 71),
            // Winograd F(2x2, 3x3): odd and even sizes, padding 0, 1 and 2, both cores.
            (128, 128, 3, 1, 1, 1, 20, 20), (136, 144, 3, 1, 1, 1, 17, 23), (128, 160, 3, 1, 0, 1, 12, 9),
            (144, 128, 3, 1, 2, 1, 9, 14), (64, 72, 3, 1, 1, 1, 20, 20), (96, 64, 3, 1, 1, 1, 13, 17),
            // More tiles than one pass over the whole map takes: blocks of tile rows split across the cores,
            // output channels not a multiple of 4.
            (64, 64, 3, 1, 1, 1, 30, 34), (130, 130, 3, 1, 1, 1, 26, 26),
        ]
        for (i, c) in cases.enumerated() {
            let act = Self.activations[i % 4]
            let x = rng.tensor([1, c.cin, c.h, c.w])
            let wt = rng.tensor([c.cout, c.cin / c.g, c.k, c.k])
            let b = rng.tensor([c.cout])
            let fast = conv2d(x, weight: wt, bias: b, stride: c.s, padding: c.p, groups: c.g, activation: act)
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (c.s, c.s), padding: (c.p, c.p), dilation: (1, 1), groups: c.g)
            assertClose(fast, referenceActivated(ref, act), "conv \(c) \(act)")
        }
    }

    /// Winograd over a batch of two: the whole-map pass (up to 144 tiles) and the blocks of tile rows, each image
    /// through the same transformed weights and scratch.
    func testWinogradOverBatchMatchesReference() {
        var rng = SplitMix64(seed: 13)
        for (cin, cout, h, w) in [(64, 68, 20, 20), (64, 64, 30, 34)] {
            let x = rng.tensor([2, cin, h, w]), wt = rng.tensor([cout, cin, 3, 3]), b = rng.tensor([cout])
            XCTAssertTrue(usesWinograd(ConvProblem(x, wt, b, (1, 1), (1, 1), (1, 1), 1)), "\(cin)->\(cout) would not test it")
            let fast = conv2d(x, weight: wt, bias: b, stride: 1, padding: 1, activation: .silu)
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
            assertClose(fast, referenceActivated(ref, .silu), "Winograd batch of 2, \(cin)->\(cout) at \(h)x\(w)")
        }
    }

    /// Stride-1 depthwise planes whose last 16 columns and the group after them run as one block of three groups
    /// (output widths 17 to 24, and 40: 16, then 24 as one block), next to widths that do not (16, 41), with kernels
    /// 3, 5 and 7, heights that leave rows after the blocks of four, and a bias.
    func testDepthwiseThreeGroupBlocksMatchReference() {
        var rng = SplitMix64(seed: 13)
        for (i, (k, oh, ow)) in [(3, 6, 17), (5, 20, 20), (5, 7, 24), (7, 5, 21), (3, 9, 40), (5, 3, 16), (3, 5, 41)].enumerated() {
            let x = rng.tensor([1, 3, oh, ow]), wt = rng.tensor([3, 1, k, k]), b = rng.tensor([3])
            let act = Self.activations[i % 4]
            let fast = conv2d(x, weight: wt, bias: b, stride: 1, padding: k / 2, groups: 3, activation: act)
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (1, 1), padding: (k / 2, k / 2), dilation: (1, 1), groups: 3)
            assertClose(fast, referenceActivated(ref, act), "depthwise k\(k) \(oh)x\(ow) \(act)")
        }
    }

    /// 1x1 convs with 1 to 3 output channels (ck_conv1x1_few_avx2, the DFL's path): planes shorter than one run of
    /// eight, between runs and past the 64-pixel blocks, with and without bias, a batch of two, every activation.
    func testFewOutputChannelsMatchReference() throws {
        try XCTSkipUnless(hasAVX2FMA, "the kernel needs AVX2 and FMA")
        var rng = SplitMix64(seed: 9)
        let cases: [(cin: Int, cout: Int, h: Int, w: Int)] = [(16, 1, 4, 33), (3, 2, 1, 5), (7, 3, 9, 11), (1, 1, 8, 16),
                                                              (32, 2, 3, 70), (16, 1, 1, 1)]
        for (i, c) in cases.enumerated() {
            let act = Self.activations[i % 4]
            let x = rng.tensor([2, c.cin, c.h, c.w]), wt = rng.tensor([c.cout, c.cin, 1, 1])
            let b = i % 2 == 0 ? nil : rng.tensor([c.cout])
            XCTAssertTrue(usesFewOutputs(ConvProblem(x, wt, b, (1, 1), (0, 0), (1, 1), 1)), "case \(c) would not test it")
            let fast = conv2d(x, weight: wt, bias: b, activation: act)
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
            assertClose(fast, referenceActivated(ref, act), "\(c.cin)->\(c.cout) at \(c.h)x\(c.w) \(act)")
        }
    }

    /// The 3x3 stride-2 depthwise kernel that reads the unpadded input (ck_depthwise3x3s2_avx2): odd and even
    /// heights (one and two rows included), the narrowest width it takes (16, one strip of eight outputs), strips
    /// of 16 only (64 wide), strips of 16 then of 8 overlapping the one before (34, 40, 130), two strips of 8 after
    /// the 16 (60), two outputs per input channel, a batch of two, every activation.
    func testDirectStride2DepthwiseMatchesReference() throws {
        try XCTSkipUnless(hasAVX2FMA, "the direct kernel needs AVX2 and FMA")
        var rng = SplitMix64(seed: 5)
        let cases: [(cin: Int, mult: Int, h: Int, w: Int)] = [(8, 2, 17, 16), (24, 1, 20, 34), (4, 1, 33, 48), (6, 1, 2, 40),
                                                              (5, 2, 1, 18), (3, 1, 9, 130), (2, 1, 6, 64), (3, 1, 7, 60)]
        for (i, c) in cases.enumerated() {
            let act = Self.activations[i % 4]
            let x = rng.tensor([2, c.cin, c.h, c.w])
            let wt = rng.tensor([c.cin * c.mult, 1, 3, 3])
            let b = i == 2 ? nil : rng.tensor([c.cin * c.mult])
            XCTAssertTrue(usesDirectStride2(ConvProblem(x, wt, b, (2, 2), (1, 1), (1, 1), c.cin)), "case \(c) would not test it")
            let fast = conv2d(x, weight: wt, bias: b, stride: 2, padding: 1, groups: c.cin, activation: act)
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (2, 2), padding: (1, 1), dilation: (1, 1), groups: c.cin)
            assertClose(fast, referenceActivated(ref, act), "direct stride-2 depthwise \(c) \(act)")
        }
    }

    /// Max pooling (eight outputs at a time where a stride-1 window lies inside the row) against a direct loop over
    /// each window, with NaNs (which must win) and -inf among the inputs, ceil mode, padding, strides 1 and 2.
    func testMaxPoolMatchesDirectLoop() {
        var rng = SplitMix64(seed: 77)
        for trial in 0 ..< 40 {
            let k = rng.int(1 ... 5), s = trial % 3 == 2 ? 2 : 1, pad = rng.int(0 ... k / 2), ceil = trial % 2 == 1
            let h = rng.int(k ... 30), w = rng.int(k ... 45)
            var x = rng.tensor([2, 3, h, w])
            for _ in 0 ..< 3 { x.data[rng.int(0 ... x.count - 1)] = .nan; x.data[rng.int(0 ... x.count - 1)] = -.infinity }
            let y = maxPool2d(x, kernel: k, stride: s, padding: pad, ceilMode: ceil)
            let oh = y.shape[2], ow = y.shape[3]
            for pl in 0 ..< 6 {
                for i in 0 ..< oh {
                    for j in 0 ..< ow {
                        var m = -Float.infinity
                        for yy in Swift.max(0, i * s - pad) ..< Swift.min(h, i * s - pad + k) {
                            for xx in Swift.max(0, j * s - pad) ..< Swift.min(w, j * s - pad + k) {
                                let v = x.data[(pl * h + yy) * w + xx]
                                if v > m || v.isNaN { m = v }
                            }
                        }
                        let got = y.data[(pl * oh + i) * ow + j]
                        XCTAssertTrue(got == m || (got.isNaN && m.isNaN),
                                      "trial \(trial) k \(k) s \(s) p \(pad) ceil \(ceil) \(h)x\(w): (\(pl), \(i), \(j)) \(got) vs \(m)")
                    }
                }
            }
        }
    }

    /// The implicit-gemm path (CKernels/convgemm.c) on its own, whatever the rule that picks it (the row bands, which
    /// would take the stride-1 and stride-2 cases by default, are tested by testRowBandsMatchReference in ConvBandTests.swift): panels filled
    /// from rows with padding (up to 3 around a 3x3 kernel: whole rows and columns of taps in the padding), stride 2
    /// (gathered, kernels 3 and 5, odd and even widths) and 3 and dilation, panels read in place (stride 1 away from the
    /// border), 1x1 read in place or copied and its partial last panel, output channels not a multiple of 4; the row
    /// bands off (ConvBandTests tests them), so that the gathers stay tested.
    func testPanelConvsMatchReference() throws {
        try checkPanelConvs(.avx2)
    }

    /// The same cases on the AVX-512 micro-kernel (8 x 48, two panels at a time: pairs read in place, from the
    /// panel buffer, mixed pairs split, a lone last panel, output channels in eights with 1 to 7 left over).
    func testPanelConvsMatchReferenceAVX512() throws {
        try checkPanelConvs(.avx512)
    }

    /// Skips, saying so, when the processor cannot run `kernels` or the environment turned them off
    /// (DETR_TUI_NO_AVX512, DETR_TUI_NO_AVX2: the suite run as on a processor without them).
    func requireKernels(_ kernels: KernelSet) throws {
        try XCTSkipUnless(kernels.isSupported, "this processor cannot run the \(kernels.rawValue) kernels (CPU: \(CPUInfo.current.name))")
        try XCTSkipUnless(kernels.isEnabled, "the \(kernels.rawValue) kernels are turned off (kernels in use: \(KernelSet.active.rawValue))")
    }

    func checkPanelConvs(_ kernels: KernelSet) throws {
        try requireKernels(kernels)
        var rng = SplitMix64(seed: 31)
        let cases: [(cin: Int, cout: Int, kh: Int, kw: Int, s: Int, p: Int, d: Int, g: Int, h: Int, w: Int)] = [
            (16, 32, 3, 3, 1, 1, 1, 1, 40, 61), (5, 7, 3, 3, 2, 1, 1, 1, 33, 70), (3, 13, 3, 3, 2, 1, 1, 1, 64, 64),
            (16, 32, 2, 2, 1, 0, 1, 1, 33, 57), (8, 6, 5, 5, 1, 2, 1, 1, 30, 81), (4, 9, 3, 3, 1, 2, 2, 1, 29, 50),
            (6, 5, 3, 3, 3, 1, 1, 1, 31, 77), (12, 10, 3, 5, 1, 1, 1, 2, 26, 60), (32, 48, 1, 1, 1, 0, 1, 1, 41, 43),
            (16, 1, 1, 1, 1, 0, 1, 1, 4, 8400), (64, 64, 3, 3, 1, 1, 1, 1, 20, 20), (7, 3, 1, 1, 2, 0, 1, 1, 25, 49),
            (2, 8, 7, 7, 1, 3, 1, 1, 40, 100), (20, 12, 3, 3, 1, 0, 1, 1, 5, 30), (72, 22, 1, 1, 1, 0, 1, 1, 66, 70),
            (130, 9, 1, 1, 1, 0, 1, 1, 11, 13), (3, 8, 3, 3, 2, 1, 1, 1, 61, 130), (2, 5, 5, 5, 2, 2, 1, 1, 40, 121),
            (3, 4, 3, 3, 2, 0, 2, 1, 30, 117), (12, 10, 1, 1, 1, 0, 1, 1, 30, 41), (12, 8, 3, 3, 2, 1, 1, 1, 30, 50),
            (10, 6, 3, 3, 2, 1, 1, 1, 9, 260), (9, 5, 3, 3, 2, 0, 1, 1, 12, 259), (8, 6, 3, 3, 2, 1, 1, 2, 20, 40),
            (10, 9, 5, 5, 2, 2, 1, 1, 27, 45), (16, 5, 3, 3, 2, 0, 1, 1, 19, 37), (9, 4, 3, 3, 1, 3, 1, 1, 7, 11),
            (11, 6, 3, 3, 2, 1, 1, 1, 40, 81), (1400, 10, 1, 1, 1, 0, 1, 1, 5, 7),
        ]
        for (i, c) in cases.enumerated() {
            let act = Self.activations[i % 4]
            let x = rng.tensor([1 + i % 2, c.cin, c.h, c.w])
            let wt = rng.tensor([c.cout, c.cin / c.g, c.kh, c.kw])
            let b = i % 3 == 2 ? nil : rng.tensor([c.cout])
            let p = ConvProblem(x, wt, b, (c.s, c.s), (c.p, c.p), (c.d, c.d), c.g)
            let fast = Tensor(shape: [p.n, p.cout, p.g.outH, p.g.outW]) { out in
                x.data.withUnsafeBufferPointer { xp in
                    wt.data.withUnsafeBufferPointer { wp in
                        withOptionalBuffer(b) { bp in
                            panelConv(p, x: xp.baseAddress!, w: wp.baseAddress!, bias: bp, activation: act, out: out.baseAddress!,
                                      kernels: kernels, rowBands: false)
                        }
                    }
                }
            }
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (c.s, c.s), padding: (c.p, c.p),
                                      dilation: (c.d, c.d), groups: c.g)
            assertClose(fast, referenceActivated(ref, act), "\(kernels.rawValue) panels \(c) \(act)")
        }
    }

    /// Winograd's products on each kernel set the processor runs, against the direct reference: the whole-map pass
    /// (an odd number of 24-tile panels, a lone last panel for the AVX-512 pairs) and blocks of tile rows, output
    /// channels not a multiple of 8 (nor of 4).
    func testWinogradKernelSetsMatchReference() throws {
        var tested: [String] = []
        for kernels in [KernelSet.avx2, .avx512] where kernels.isSupported && kernels.isEnabled {
            var rng = SplitMix64(seed: 17)
            // Rows of 65 tiles (the AVX-512 input transform's sixteen at a time, an odd width's last tile alone) and of
            // 34 (its output transform's sixteen at a time, the last group overlapping, and the input's eight).
            for (i, (cin, cout, h, w)) in [(48, 52, 20, 20), (64, 70, 9, 31), (50, 66, 30, 34), (72, 48, 13, 17),
                                           (48, 50, 7, 129), (56, 52, 10, 67), (49, 48, 4, 160)].enumerated() {
                let act = Self.activations[i % 4]
                let x = rng.tensor([1, cin, h, w]), wt = rng.tensor([cout, cin, 3, 3]), b = rng.tensor([cout])
                let p = ConvProblem(x, wt, b, (1, 1), (1, 1), (1, 1), 1)
                let fast = Tensor(shape: [1, cout, h, w]) { out in
                    x.data.withUnsafeBufferPointer { xp in
                        wt.data.withUnsafeBufferPointer { wp in
                            b.data.withUnsafeBufferPointer { bp in
                                winogradConv(p, x: xp.baseAddress!, w: wp.baseAddress!, bias: bp.baseAddress!, activation: act,
                                             out: out.baseAddress!, kernels: kernels)
                            }
                        }
                    }
                }
                let ref = conv2dReference(x, weight: wt, bias: b, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
                assertClose(fast, referenceActivated(ref, act), "\(kernels.rawValue) Winograd \(cin)->\(cout) at \(h)x\(w) \(act)")
            }
            tested.append(kernels.rawValue)
        }
        try XCTSkipIf(tested.isEmpty, "neither the AVX2 nor the AVX-512 kernels run here (CPU: \(CPUInfo.current.name); kernels in use: \(KernelSet.active.rawValue))")
    }

    /// conv2d keeps Winograd's transformed kernels and the panels' packed weights per weight array
    /// (`WeightCache.shared`): a second call with the same weights finds them and gives the same output, and weights
    /// changed in place (a new array after copy-on-write) are rearranged again, not taken from the entry of the old.
    func testWeightCacheFindsSameWeightsAndNotChangedOnes() {
        var rng = SplitMix64(seed: 77)
        // Winograd (3x3, 48 channels) and the panels (1x1 onto a 40x40 map).
        for (cin, cout, k, h) in [(48, 52, 3, 20), (16, 24, 1, 40)] {
            let x = rng.tensor([1, cin, h, h]), b = rng.tensor([cout])
            var wt = rng.tensor([cout, cin, k, k])
            let p = ConvProblem(x, wt, b, (1, 1), (k / 2, k / 2), (1, 1), 1)
            XCTAssertTrue(!hasAVX2FMA || (k == 3 ? usesWinograd(p) : usesPanels(p)), "\(cin)->\(cout) k\(k) would not test it")
            let before = WeightCache.shared.contents.entries
            let first = conv2d(x, weight: wt, bias: b, padding: k / 2, activation: .silu)
            let cached = WeightCache.shared.contents.entries
            let second = conv2d(x, weight: wt, bias: b, padding: k / 2, activation: .silu)
            XCTAssertEqual(first, second, "\(cin)->\(cout) k\(k): the call with cached weights differs")
            if hasAVX2FMA {
                XCTAssertEqual(cached, before + 1, "\(cin)->\(cout) k\(k): one entry for the weights")
                XCTAssertEqual(WeightCache.shared.contents.entries, cached, "\(cin)->\(cout) k\(k): the second call made another")
            }
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (1, 1), padding: (k / 2, k / 2), dilation: (1, 1), groups: 1)
            assertClose(second, referenceActivated(ref, .silu), "\(cin)->\(cout) k\(k) cached")
            let keep = wt   // shares the storage, so the write below copies it
            wt.data[5] += 3
            let changed = conv2d(x, weight: wt, bias: b, padding: k / 2, activation: .silu)
            let ref2 = conv2dReference(x, weight: wt, bias: b, stride: (1, 1), padding: (k / 2, k / 2), dilation: (1, 1), groups: 1)
            assertClose(changed, referenceActivated(ref2, .silu), "\(cin)->\(cout) k\(k) after a weight changed")
            XCTAssertEqual(conv2d(x, weight: keep, bias: b, padding: k / 2, activation: .silu), first, "the old weights' entry")
        }
    }

    /// A cache over its budget drops the least recently used entries; what a caller holds stays valid.
    func testWeightCacheBudgetDropsLeastRecentlyUsed() {
        let cache = WeightCache(budget: 3 * 100 * 4)
        let arrays = (0 ..< 4).map { i in [Float](repeating: Float(i), count: 10) }
        func get(_ i: Int) -> WeightCache.PackedWeights {
            cache.packed(arrays[i], layout: .init(name: "test", dims: []), count: 100) { p in
                for j in 0 ..< 100 { p[j] = arrays[i][0] + Float(j) }
            }
        }
        let zero = get(0)
        _ = get(1); _ = get(2)
        XCTAssertTrue(get(0) === zero, "entry 0 found again")
        _ = get(3)   // over budget: entry 1, least recently used, goes
        XCTAssertEqual(cache.contents.entries, 3)
        XCTAssertTrue(get(0) === zero, "entry 0 kept (used after 1)")
        XCTAssertEqual(zero.base[99], 99, "a held entry stays readable")
        let big = cache.packed([1, 2], layout: .init(name: "test", dims: []), count: 1000) { p in p.initialize(repeating: 7, count: 1000) }
        XCTAssertEqual(big.base[999], 7, "over the whole budget: made, not kept")
        XCTAssertEqual(cache.contents.entries, 3)
    }

    /// The engine's AVX-512 gemm (ck_sgemm_avx512, what `sgemm` runs with the AVX-512 kernels) against a naive
    /// product in Double: both transposes, alpha and beta (0 with NaN in C beforehand, which must not leak), row lengths
    /// past the matrices' widths (whose extra columns must stay untouched), K over several blocks of 192, M over
    /// several blocks of 144, N with every remainder of 24 and 48; every other trial with a column bias
    /// (ck_sgemm_bias_avx512: added once, in the last K block's epilogue), k = 0 among them.
    func testAVX512GemmMatchesNaive() throws {
        try requireKernels(.avx512)
        var rng = SplitMix64(seed: 41)
        for trial in 0 ..< 60 {
            let ta = rng.int(0 ... 1) == 1, tb = rng.int(0 ... 1) == 1
            let m = trial % 6 == 0 ? rng.int(140 ... 300) : rng.int(1 ... 40)
            let n = rng.int(1 ... 100), k = trial == 7 ? 0 : trial % 5 == 0 ? rng.int(190 ... 420) : rng.int(1 ... 50)
            let columnBias: [Float]? = trial % 2 == 1 ? (0 ..< n).map { _ in rng.nextFloat() * 4 - 2 } : nil
            let alpha: Float = trial % 3 == 0 ? 1 : rng.nextFloat() + 0.5
            let beta: Float = [0, 1, -0.75][trial % 3]
            let lda = (ta ? m : k) + rng.int(0 ... 2), ldb = (tb ? k : n) + rng.int(0 ... 2), ldc = n + rng.int(0 ... 2)
            let a = (0 ..< (ta ? k : m) * lda).map { _ in rng.nextFloat() * 2 - 1 }
            let b = (0 ..< (tb ? n : k) * ldb).map { _ in rng.nextFloat() * 2 - 1 }
            let c0 = (0 ..< m * ldc).map { _ in beta == 0 ? Float.nan : rng.nextFloat() * 2 - 1 }
            var c = c0
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        if let columnBias {
                            columnBias.withUnsafeBufferPointer {
                                ck_sgemm_bias_avx512(ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, ap.baseAddress, lda, bp.baseAddress,
                                                     ldb, beta, cp.baseAddress, ldc, $0.baseAddress)
                            }
                        } else {
                            ck_sgemm_avx512(ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, ap.baseAddress, lda, bp.baseAddress, ldb, beta,
                                            cp.baseAddress, ldc)
                        }
                    }
                }
            }
            var worst: Double = 0
            for i in 0 ..< m {
                for j in 0 ..< ldc {
                    if j >= n {
                        XCTAssertTrue(c[i * ldc + j].bitPattern == c0[i * ldc + j].bitPattern, "trial \(trial): C[\(i)][\(j)] past n changed")
                        continue
                    }
                    var sum: Double = 0
                    for p in 0 ..< k {
                        sum += Double(ta ? a[p * lda + i] : a[i * lda + p]) * Double(tb ? b[j * ldb + p] : b[p * ldb + j])
                    }
                    let want = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j]))
                        + Double(columnBias?[j] ?? 0)
                    let err = Swift.abs(Double(c[i * ldc + j]) - want)
                    worst = err.isNaN ? .infinity : Swift.max(worst, err)
                }
            }
            XCTAssertLessThanOrEqual(worst, 1e-4 * Double(Swift.max(k, 1)).squareRoot(),
                                     "trial \(trial): transA \(ta) transB \(tb) m \(m) n \(n) k \(k) alpha \(alpha) beta \(beta) column bias \(columnBias != nil)")
        }
    }

    /// The vector exp, sigmoid, SiLU and the bias + activation epilogue of each kernel set the processor runs, against
    /// Double math, over every length from 0 to 70 (tails of every size for 8 and 16 lanes), arguments from -100 to
    /// 100 with -inf, +inf and NaN among them.
    func testVectorActivationsMatchDoubleMath() throws {
        typealias Fn = (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) -> Void
        typealias BiasFn = (UnsafeMutablePointer<Float>?, Int, Float, Int32) -> Void
        let sets: [(KernelSet, exp: Fn, sigmoid: Fn, silu: Fn, biasAct: BiasFn)] = [
            (.avx2, { ck_exp_avx2($0, $1, $2) }, { ck_sigmoid_avx2($0, $1, $2) }, { ck_silu_avx2($0, $1, $2) },
             { ck_bias_act_avx2($0, $1, $2, $3) }),
            (.avx512, { ck_exp_avx512($0, $1, $2) }, { ck_sigmoid_avx512($0, $1, $2) }, { ck_silu_avx512($0, $1, $2) },
             { ck_bias_act_avx512($0, $1, $2, $3) }),
        ]
        func close(_ got: Float, _ want: Double) -> Bool {
            if want.isNaN { return got.isNaN }
            // exp's argument is clamped at 88.3: results from exp(88.3) up stand for overflow
            if want >= 2.1e38 { return got >= 2.1e38 }
            if want.isInfinite { return got == Float(want) }
            return Swift.abs(Double(got) - want) <= 1e-6 * Swift.max(1, Swift.abs(want)) || Swift.abs(want) < 1e-37
        }
        // SiLU of -inf is left out (-inf / (1 + e^88.3) in the vector lanes, NaN in the AVX2 scalar tail)
        func silu(_ v: Double) -> Double { v == -.infinity ? .nan : v / (1 + Foundation.exp(-v)) }
        var rng = SplitMix64(seed: 3)
        var tested: [String] = []
        for set in sets where set.0.isSupported && set.0.isEnabled {
            for n in 0 ... 70 {
                var x = (0 ..< n).map { _ in rng.nextFloat() * 200 - 100 }
                if n > 3 { x[0] = -.infinity; x[1] = .nan; x[n - 1] = .infinity }
                let xs = x.map(Double.init)
                for (name, fn, ref) in [("exp", set.exp, { (v: Double) in Foundation.exp(v) }),
                                        ("sigmoid", set.sigmoid, { (v: Double) in 1 / (1 + Foundation.exp(-v)) }),
                                        ("silu", set.silu, silu)] {
                    var y = [Float](repeating: -7, count: n + 1)
                    x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { fn($0.baseAddress, xp.baseAddress, n) } }
                    for i in 0 ..< n where !(name == "silu" && xs[i] == -.infinity) && !close(y[i], ref(xs[i])) {
                        XCTFail("\(set.0.rawValue) \(name) n \(n): x[\(i)] = \(x[i]) gives \(y[i]), want \(ref(xs[i]))")
                    }
                    XCTAssertEqual(y[n], -7, "\(set.0.rawValue) \(name) n \(n) wrote past the end")
                }
                for (kind, ref) in [(Int32(-1), { (v: Double) in v }), (1, { 1 / (1 + Foundation.exp(-$0)) }),
                                    (2, silu), (3, { $0 > 0 || $0.isNaN ? $0 : 0 })] {
                    var y = x + [-7]
                    y.withUnsafeMutableBufferPointer { set.biasAct($0.baseAddress, n, 0.25, kind) }
                    for i in 0 ..< n where !(kind == 2 && xs[i] == -.infinity) && !close(y[i], ref(xs[i] + 0.25)) {
                        XCTFail("\(set.0.rawValue) bias + activation \(kind) n \(n): x[\(i)] = \(x[i]) gives \(y[i]), want \(ref(xs[i] + 0.25))")
                    }
                    XCTAssertEqual(y[n], -7, "\(set.0.rawValue) bias + activation \(kind) n \(n) wrote past the end")
                }
            }
            tested.append(set.0.rawValue)
        }
        try XCTSkipIf(tested.isEmpty, "neither the AVX2 nor the AVX-512 kernels run here (CPU: \(CPUInfo.current.name); kernels in use: \(KernelSet.active.rawValue))")
    }

    /// Softmax down columns and its expectation form (the DFL) on each kernel set the processor runs, against Double
    /// math: 1 to 19 rows, column runs of every tail length for 8 and 16 lanes (starting past column 0 too), logits
    /// up to +-40 (a large max subtracted), a column with NaN (NaN throughout, as torch) and one of all -inf; the
    /// columns outside the run are left alone. Then softmax(_:axis:) on inner axes and softmaxExpectation against
    /// the same math through the tensors.
    func testSoftmaxColumnsMatchDoubleMath() throws {
        var rng = SplitMix64(seed: 15)
        var tested: [String] = []
        for set in KernelSet.allCases where set.isSupported && set.isEnabled {
            for trial in 0 ..< 60 {
                let n = [1, 2, 3, 7, 16, 17, 19][trial % 7], ld = rng.int(1 ... 53)
                let j0 = rng.int(0 ... Swift.min(3, ld - 1)), j1 = rng.int(j0 ... ld)
                var x = (0 ..< n * ld).map { _ in rng.float() * 40 }
                if trial % 5 == 4 && j1 > j0 { x[rng.int(0 ... n - 1) * ld + j0] = .nan }
                if trial % 6 == 5 && j1 - j0 > 1 { for i in 0 ..< n { x[i * ld + j1 - 1] = -.infinity } }
                let weights = (0 ..< n).map { _ in rng.float() * 5 }
                var probs = [Float](repeating: -7, count: n * ld), expect = [Float](repeating: -7, count: ld)
                x.withUnsafeBufferPointer { xp in
                    probs.withUnsafeMutableBufferPointer { softmaxColumns(xp.baseAddress!, n: n, ld: ld, columns: j0 ..< j1, weights: nil, into: $0.baseAddress!, kernels: set) }
                    weights.withUnsafeBufferPointer { wp in
                        expect.withUnsafeMutableBufferPointer { softmaxColumns(xp.baseAddress!, n: n, ld: ld, columns: j0 ..< j1, weights: wp.baseAddress!, into: $0.baseAddress!, kernels: set) }
                    }
                }
                let what = "\(set.rawValue) trial \(trial): \(n) rows, ld \(ld), columns \(j0) ..< \(j1)"
                for j in 0 ..< ld {
                    guard (j0 ..< j1).contains(j) else {
                        XCTAssertEqual(expect[j], -7, "\(what): column \(j) outside the run written")
                        for i in 0 ..< n { XCTAssertEqual(probs[i * ld + j], -7, "\(what): column \(j) outside the run written") }
                        continue
                    }
                    let col = (0 ..< n).map { Double(x[$0 * ld + j]) }
                    if col.contains(where: \.isNaN) || col.allSatisfy({ $0 == -.infinity }) {
                        XCTAssertTrue(expect[j].isNaN, "\(what): column \(j) (NaN or all -inf) gives \(expect[j])")
                        for i in 0 ..< n { XCTAssertTrue(probs[i * ld + j].isNaN, "\(what): column \(j) row \(i) gives \(probs[i * ld + j])") }
                        continue
                    }
                    let m = col.max()!, e = col.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                    for i in 0 ..< n where Swift.abs(Double(probs[i * ld + j]) - e[i] / z) > 1e-6 {
                        XCTFail("\(what): softmax column \(j) row \(i) = \(probs[i * ld + j]), want \(e[i] / z)")
                    }
                    let want = zip(e, weights).map { $0 * Double($1) }.reduce(0, +) / z
                    XCTAssertEqual(Double(expect[j]), want, accuracy: 1e-5 * 5, "\(what): expectation of column \(j)")
                }
            }
            tested.append(set.rawValue)
        }
        // The tensor ops (the active set): softmax on an inner axis and the DFL's expectation, against Double math.
        let x = rng.tensor([2, 4, 16, 301]).data.map { $0 * 20 }
        let t = Tensor(shape: [2, 4, 16, 301], data: x)
        let bins = (0 ..< 16).map(Float.init)
        let sm = softmax(t, axis: 2), ex = softmaxExpectation(t, axis: 2, weights: bins)
        XCTAssertEqual(ex.shape, [2, 4, 301])
        for o in 0 ..< 8 {
            for j in 0 ..< 301 {
                let col = (0 ..< 16).map { Double(x[(o * 16 + $0) * 301 + j]) }
                let m = col.max()!, e = col.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                for i in 0 ..< 16 { XCTAssertEqual(Double(sm.data[(o * 16 + i) * 301 + j]), e[i] / z, accuracy: 1e-6) }
                XCTAssertEqual(Double(ex.data[o * 301 + j]), zip(e, bins).map { $0 * Double($1) }.reduce(0, +) / z, accuracy: 1e-4)
            }
        }
        XCTAssertEqual(tested.count, KernelSet.allCases.filter { $0.isSupported && $0.isEnabled }.count)
        if tested.count < KernelSet.allCases.count {
            print("testSoftmaxColumnsMatchDoubleMath: ran \(tested) only; the other kernel sets are not run here (CPU: \(CPUInfo.current.name); kernels in use: \(KernelSet.active.rawValue))")
        }
    }

    /// The 1x1 conv over a concatenation it never builds, against conv2d of the built concatenation.
    /// On each kernel set the processor runs: the panels reading every channel's plane where it lies (AVX2, AVX-512:
    /// output channels not a multiple of 4 or 8, pixel counts with partial panels and pairs) and the gemms (portable).
    func testConv1x1OverPartsMatchesConvOfConcat() {
        var rng = SplitMix64(seed: 99)
        let sets = KernelSet.allCases.filter { $0.isSupported && $0.isEnabled }
        for (trial, (channels, cout, h, w)) in [([4, 3], 5, 7, 9), ([16, 8, 8], 24, 40, 41), ([64, 32, 32, 32], 48, 33, 35),
                                               ([2], 3, 1, 1), ([32, 32], 64, 80, 80), ([8, 24, 5], 13, 11, 13)].enumerated() {
            let n = trial == 1 ? 2 : 1
            let whole = channels.map { rng.tensor([n, $0 + 2, h, w]) }
            // Take all but the first and last channel of each part.
            let parts = zip(whole, channels).map { ($0, 1 ..< 1 + $1) }
            let built = concat(parts.map { slice($0.0, axis: 1, range: $0.1) }, axis: 1)
            let wt = rng.tensor([cout, channels.reduce(0, +), 1, 1])
            let b = rng.tensor([cout])
            let act = Self.activations[trial % 4]
            let ref = conv2dReference(built, weight: wt, bias: b, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
            for set in sets {
                let fast = conv1x1(concatenating: parts, weight: wt, bias: trial == 5 ? nil : b, activation: act, kernels: set)
                let want = trial == 5 ? conv2dReference(built, weight: wt, bias: nil, stride: (1, 1), padding: (0, 0),
                                                        dilation: (1, 1), groups: 1) : ref
                assertClose(fast, referenceActivated(want, act), "\(set.rawValue): parts \(channels) -> \(cout) at \(h)x\(w), \(act)")
            }
        }
    }

    /// The worker pool: every index visited once, loops nested inside loops (run by the caller) and loops
    /// started from several threads at once (the pool takes one, the others run inline) all complete.
    func testParallelLoopsNestAndRunFromSeveralThreads() {
        let n = 10_007
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
        defer { hits.deallocate() }
        hits.initialize(repeating: 0, count: n)
        let h = IntPointer(hits)
        Parallel.forEach(n, cost: 1 << 12) { r in
            for i in r {
                h.base[i] += 1
                if i % 1000 == 0 {
                    var inner = 0
                    Parallel.forEach(64, cost: 1 << 12) { r2 in inner += r2.count }
                    h.base[i] += inner - 64
                }
            }
        }
        XCTAssertTrue((0 ..< n).allSatisfy { hits[$0] == 1 })
        let sums = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        defer { sums.deallocate() }
        let s = IntPointer(sums)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            var total = 0
            for round in 0 ..< 200 {
                let parts = UnsafeMutablePointer<Int>.allocate(capacity: 2048)
                parts.initialize(repeating: 0, count: 2048)
                let pp = IntPointer(parts)
                Parallel.forEach(2048, cost: 1 << 12) { r in for i in r { pp.base[i] = i + round } }
                for i in 0 ..< 2048 { total += parts[i] }
                parts.deallocate()
            }
            s.base[t] = total
        }
        let expected = (0 ..< 200).reduce(0) { $0 + 2047 * 2048 / 2 + 2048 * $1 }
        for t in 0 ..< 4 { XCTAssertEqual(sums[t], expected, "thread \(t)") }
    }

    struct IntPointer: @unchecked Sendable {
        let base: UnsafeMutablePointer<Int>
        init(_ base: UnsafeMutablePointer<Int>) { self.base = base }
    }

    func naiveMatmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool, transB: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0 ..< m {
            for j in 0 ..< n {
                var acc: Double = 0
                for t in 0 ..< k {
                    let av = transA ? a[t * m + i] : a[i * k + t]
                    let bv = transB ? b[j * k + t] : b[t * n + j]
                    acc += Double(av) * Double(bv)
                }
                c[i * n + j] = Float(acc)
            }
        }
        return c
    }

    func testMatmulAndLinearMatchNaive() {
        var rng = SplitMix64(seed: 99)
        for trial in 0 ..< 40 {
            let m = rng.int(1 ... (trial % 5 == 0 ? 300 : 40)), n = rng.int(1 ... (trial % 7 == 0 ? 300 : 40))
            let k = rng.int(1 ... 70)
            let batch = rng.int(1 ... 3)
            let ta = trial % 2 == 1, tb = trial % 3 == 1
            let a = rng.tensor([batch, ta ? k : m, ta ? m : k])
            let bShared = trial % 4 == 0
            let b = bShared ? rng.tensor([tb ? n : k, tb ? k : n]) : rng.tensor([batch, tb ? n : k, tb ? k : n])
            let c = matmul(a, b, transposeA: ta, transposeB: tb)
            var expected: [Float] = []
            for i in 0 ..< batch {
                let ai = Array(a.data[(i * m * k) ..< ((i + 1) * m * k)])
                let bi = bShared ? b.data : Array(b.data[(i * k * n) ..< ((i + 1) * k * n)])
                expected += naiveMatmul(ai, bi, m: m, n: n, k: k, transA: ta, transB: tb)
            }
            assertClose(c, Tensor(shape: [batch, m, n], data: expected), "matmul trial \(trial) m \(m) n \(n) k \(k) tA \(ta) tB \(tb)")
        }
        for trial in 0 ..< 10 {
            let rows = rng.int(1 ... 500), fin = rng.int(1 ... 64), fout = rng.int(1 ... 300)
            let x = rng.tensor([rows, fin]), w = rng.tensor([fout, fin]), b = rng.tensor([fout])
            var expected = naiveMatmul(x.data, w.data, m: rows, n: fout, k: fin, transA: false, transB: true)
            for r in 0 ..< rows { for o in 0 ..< fout { expected[r * fout + o] += b.data[o] } }
            assertClose(linear(x, weight: w, bias: b), Tensor(shape: [rows, fout], data: expected), "linear trial \(trial)")
        }
    }

    func testDeformableAttentionMatchesGridSampleReference() {
        var rng = SplitMix64(seed: 5)
        for trial in 0 ..< 25 {
            let n = rng.int(1 ... 2), heads = rng.int(1 ... 4), dim = rng.int(1 ... 9)
            let levels = (0 ..< rng.int(1 ... 4)).map { _ in (rng.int(1 ... 9), rng.int(1 ... 9)) }
            let points = rng.int(1 ... 4), q = rng.int(1 ... 30)
            let s = levels.reduce(0) { $0 + $1.0 * $1.1 }
            let value = rng.tensor([n, s, heads, dim])
            // locations in [-0.2, 1.2]: some points fall outside their level
            let loc = rng.tensor([n, q, heads, levels.count, points, 2]) * 0.7 + 0.5
            let weights = rng.tensor([n, q, heads, levels.count, points])
            let fast = multiScaleDeformableAttention(value: value, levelShapes: levels, samplingLocations: loc, attentionWeights: weights)
            let ref = multiScaleDeformableAttentionReference(value: value, levelShapes: levels, samplingLocations: loc,
                                                             attentionWeights: weights)
            assertClose(fast, ref, "msda trial \(trial) levels \(levels) heads \(heads) dim \(dim) points \(points) q \(q)")
        }
    }

    func testBroadcastAndPermuteMatchIndexing() {
        var rng = SplitMix64(seed: 11)
        for trial in 0 ..< 60 {
            let rank = rng.int(1 ... 4)
            let shape = (0 ..< rank).map { _ in rng.int(1 ... 4) }
            let other = shape.map { rng.int(0 ... 2) == 0 ? 1 : $0 }
            let a = rng.tensor(shape), b = rng.tensor(Array(other.suffix(rng.int(0 ... rank))))
            let sum = a + b
            let bs = broadcastStrides(b.shape, to: shape)
            for i in 0 ..< a.count {
                var rest = i, off = 0
                for (d, st) in a.strides.enumerated() { off += (rest / st) * bs[d]; rest %= st }
                XCTAssertEqual(sum.data[i], a.data[i] + b.data[off], "broadcast trial \(trial) \(a.shape) + \(b.shape) at \(i)")
            }
            let dims = Array(0 ..< rank).shuffled(using: &rng)
            let p = permute(a, dims)
            for i in 0 ..< p.count {
                var rest = i, off = 0
                for (d, st) in p.strides.enumerated() { off += (rest / st) * a.strides[dims[d]]; rest %= st }
                XCTAssertEqual(p.data[i], a.data[off], "permute trial \(trial) \(a.shape) by \(dims)")
            }
        }
    }

    /// padConstant (rows split across cores) and concat (pieces of 64K floats split across cores) against element-by-
    /// element references, over random ranks 1-4, pads on every dimension and sizes large enough to run in parallel.
    func testPadAndConcatMatchElementwiseReferences() throws {
        var rng = SplitMix64(seed: 31)
        func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        for trial in 0 ..< 40 {
            let r = 1 + trial % 4
            let shape = (0 ..< r).map { d in d == r - 1 ? 1 + int(300) : 1 + int(trial < 20 ? 4 : 40) }
            let x = Tensor(shape: shape, data: (0 ..< shape.reduce(1, *)).map { _ in rng.nextFloat() * 2 - 1 })
            let before = (0 ..< r).map { _ in int(3) }, after = (0 ..< r).map { _ in int(3) }
            let y = padConstant(x, before: before, after: after, value: -7)
            let outShape = (0 ..< r).map { shape[$0] + before[$0] + after[$0] }
            XCTAssertEqual(y.shape, outShape)
            var idx = [Int](repeating: 0, count: r)
            for flat in 0 ..< y.count {
                var rest = flat
                for d in stride(from: r - 1, through: 0, by: -1) { idx[d] = rest % outShape[d]; rest /= outShape[d] }
                let src = (0 ..< r).map { idx[$0] - before[$0] }
                let inside = (0 ..< r).allSatisfy { src[$0] >= 0 && src[$0] < shape[$0] }
                let want = inside ? x.data[src.enumerated().reduce(0) { $0 * shape[$1.offset] + $1.element }] : -7
                guard y.data[flat] == want else { return XCTFail("pad \(shape) \(before) \(after): index \(idx) is \(y.data[flat]), expected \(want)") }
            }
            // Concatenate it with a copy of itself and a third part along a random axis.
            let axis = int(r)
            var third = shape
            third[axis] = 1 + int(3)
            let z = Tensor(shape: third, data: (0 ..< third.reduce(1, *)).map { _ in rng.nextFloat() })
            let c = concat([x, x, z], axis: axis)
            let inner = shape[(axis + 1)...].reduce(1, *), outer = shape[..<axis].reduce(1, *)
            var want: [Float] = []
            for o in 0 ..< outer {
                for t in [x, x, z] {
                    let block = t.shape[axis] * inner
                    want += t.data[o * block ..< (o + 1) * block]
                }
            }
            XCTAssertEqual(c.data, want, "concat of \(shape) and \(third) along \(axis)")
        }
    }

    /// slice, split and concat on blocks above the 64K-float pieces the cores copy (copyBlocks): odd sizes, so that
    /// pieces end inside rows and the last piece of a block is partial; every value against index arithmetic.
    func testSliceSplitAndConcatOfLargeBlocksMatchIndexing() {
        var rng = SplitMix64(seed: 45)
        for trial in 0 ..< 8 {
            let shape = [1 + trial % 2, rng.int(5 ... 9), rng.int(97 ... 170), rng.int(101 ... 163)]
            let x = rng.tensor(shape)
            let plane = shape[2] * shape[3], c = shape[1]
            // Channels lo..<hi of every batch: one block of (hi - lo) planes per batch.
            let lo = rng.int(0 ... 2), hi = c - rng.int(0 ... 1)
            let s = slice(x, axis: 1, range: lo ..< hi)
            XCTAssertEqual(s.shape, [shape[0], hi - lo, shape[2], shape[3]])
            var want: [Float] = []
            for b in 0 ..< shape[0] { want += x.data[(b * c + lo) * plane ..< (b * c + hi) * plane] }
            XCTAssertEqual(s.data, want, "slice \(lo)..<\(hi) of \(shape)")
            // Split along the rows and put back together: the input again.
            let first = rng.int(1 ... shape[2] - 1)
            let parts = split(x, sizes: [first, shape[2] - first], axis: 2)
            for (p, part) in parts.enumerated() {
                let rows = p == 0 ? 0 ..< first : first ..< shape[2]
                for pl in 0 ..< shape[0] * c {
                    let got = Array(part.data[pl * rows.count * shape[3] ..< (pl + 1) * rows.count * shape[3]])
                    let ref = Array(x.data[pl * plane + rows.lowerBound * shape[3] ..< pl * plane + rows.upperBound * shape[3]])
                    guard got == ref else { return XCTFail("split \(shape) at row \(first): part \(p), plane \(pl) differs") }
                }
            }
            XCTAssertEqual(concat(parts, axis: 2).data, x.data, "split and concat of \(shape) at row \(first)")
            // Channels concatenated with the slice: x's planes of each batch, then the slice's.
            let cat = concat([x, s], axis: 1)
            var catWant: [Float] = []
            for b in 0 ..< shape[0] {
                catWant += x.data[b * c * plane ..< (b + 1) * c * plane]
                catWant += s.data[b * (hi - lo) * plane ..< (b + 1) * (hi - lo) * plane]
            }
            XCTAssertEqual(cat.data, catWant, "concat of \(shape) and its channels \(lo)..<\(hi)")
        }
    }
}

/// Seeded shapes and values, the same on every run.
extension SplitMix64 {
    mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { nextFloat() * 2 - 1 }
    mutating func tensor(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, data: (0 ..< shape.reduce(1, *)).map { _ in float() })
    }
}
