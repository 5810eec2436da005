import XCTest
@testable import Tensor
import CKernels

/// The row-band convs (ck_conv_bands_avx2 / _avx512 in CKernels/convgemm.c, `usesRowBands`) against the direct
/// reference, over seeded random shapes: stride 1 and 2, kernels 1 (padded or strided: not a plain 1x1) to 5 and
/// non-square, padding 0-2 (and unequal on the two axes), widths 1-130, odd heights, 1-70 input channels, output
/// channels not a multiple of 8 (nor of 4), every activation, with and without bias, batches of 1 and 2, bands of
/// one row up to the whole map (a band's last tile past its grid, tiles crossing rows, rows narrower than a tile), and
/// two groups.
/// (An extension of FastPathPropertyTests, for its tolerance and reference activation.)
extension FastPathPropertyTests {
    func testRowBandsMatchReference() throws {
        try checkRowBands(.avx2)
    }

    func testRowBandsMatchReferenceAVX512() throws {
        try checkRowBands(.avx512)
    }

    /// conv2d takes the row bands for the stride-2 and narrow stride-1 3x3 convs of a detector's large maps and for
    /// those of small maps up to K = 1152 (so that the property test above tests the path the models run), and not for
    /// dilated ones.
    func testRowBandsRouting() throws {
        try XCTSkipUnless(hasAVX2FMA && bandMode == "", "the row bands are off here (AVX2: \(hasAVX2FMA), DETR_TUI_CONV_BANDS=\(bandMode))")
        func problem(_ cin: Int, _ cout: Int, _ h: Int, stride: Int, dilation: Int = 1) -> ConvProblem {
            ConvProblem(Tensor(zeros: [1, cin, h, h]), Tensor(zeros: [cout, cin, 3, 3]), nil, (stride, stride), (1, 1),
                        (dilation, dilation), 1)
        }
        let s2 = problem(16, 32, 320, stride: 2), s1 = problem(16, 16, 160, stride: 1)
        XCTAssertTrue(usesPanels(s2) && usesRowBands(s2), "16->32 3x3 s2 at 320x320")
        XCTAssertTrue(usesPanels(s1) && usesRowBands(s1) && !usesWinograd(s1), "16->16 3x3 s1 at 160x160")
        let small = problem(128, 128, 40, stride: 2)
        XCTAssertTrue(usesPanels(small) && usesRowBands(small), "128->128 3x3 s2 at 40x40")
        XCTAssertTrue(usesPanels(problem(256, 256, 40, stride: 2)), "256->256 3x3 s2 at 40x40 (K above 1152)")
        XCTAssertFalse(usesPanels(problem(2048, 256, 20, stride: 2)), "2048->256 3x3 s2 at 20x20 (K above 4608)")
        XCTAssertFalse(usesRowBands(problem(16, 16, 160, stride: 1, dilation: 2)), "dilation 2")
        XCTAssertFalse(usesRowBands(ConvProblem(Tensor(zeros: [1, 8, 20, 20]), Tensor(zeros: [8, 8, 1, 1]), nil, (1, 1),
                                                (0, 0), (1, 1), 1)), "a plain 1x1")
    }

    func checkRowBands(_ kernels: KernelSet) throws {
        try XCTSkipUnless(kernels.isSupported, "this processor cannot run the \(kernels.rawValue) kernels (CPU: \(CPUInfo.current.name))")
        try XCTSkipUnless(kernels.isEnabled, "the \(kernels.rawValue) kernels are turned off (kernels in use: \(KernelSet.active.rawValue))")
        var rng = SplitMix64(seed: 1515)
        // Fixed cases first (the detector shapes, scaled down, and the edges), then random ones.
        var cases: [(cin: Int, cout: Int, kh: Int, kw: Int, s: Int, ph: Int, pw: Int, h: Int, w: Int, rows: Int?)] = [
            (3, 16, 3, 3, 2, 1, 1, 65, 130, nil), (16, 32, 3, 3, 2, 1, 1, 41, 80, nil), (16, 16, 3, 3, 1, 1, 1, 33, 40, nil),
            (32, 20, 3, 3, 1, 1, 1, 17, 81, 3), (64, 13, 3, 3, 2, 1, 1, 21, 40, 1), (5, 7, 2, 2, 1, 0, 0, 31, 57, nil),
            (1, 9, 1, 1, 2, 0, 0, 9, 1, nil), (2, 3, 3, 3, 1, 1, 1, 1, 1, nil), (4, 5, 5, 5, 2, 2, 2, 15, 3, 2),
            (70, 11, 3, 3, 2, 1, 1, 13, 47, 4), (6, 10, 1, 1, 1, 1, 1, 7, 23, nil), (9, 12, 3, 5, 1, 1, 2, 11, 29, 5),
            (8, 15, 5, 3, 2, 0, 1, 19, 33, nil), (3, 8, 3, 3, 2, 2, 0, 9, 64, 2),
            (160, 12, 3, 3, 2, 1, 1, 11, 9, nil), (300, 9, 3, 3, 1, 1, 1, 6, 7, 2),   // K 1440 and 2700
        ]
        for _ in 0 ..< 26 {
            let k = [1, 2, 3, 3, 3, 5][rng.int(0 ... 6 - 1)], s = 1 + rng.int(0 ... 2 - 1), ph = rng.int(0 ... 3 - 1), pw = rng.int(0 ... 3 - 1)
            let h = Swift.max(k - 2 * ph, 0) + 1 + 2 * rng.int(0 ... 20 - 1), w = Swift.max(k - 2 * pw, 0) + 1 + rng.int(0 ... 130 - k - 1)
            let cin = 1 + rng.int(0 ... 70 - 1), cout = 1 + rng.int(0 ... 30 - 1)
            let outH = (h + 2 * ph - k) / s + 1
            cases.append((cin, cout + (cout % 8 == 0 ? 1 : 0), k, k, s, ph, pw, h, Swift.min(w, 130),
                          rng.int(0 ... 3 - 1) == 0 ? 1 + rng.int(0 ... outH - 1) : nil))
        }
        // Two groups (each group's band read from its own channels) for the last two.
        cases += [(12, 10, 3, 3, 2, 1, 1, 20, 33, nil), (8, 6, 3, 3, 1, 1, 1, 9, 50, 2)]
        for (i, c) in cases.enumerated() {
            let act = Self.activations[i % 4], groups = i >= cases.count - 2 ? 2 : 1
            let x = rng.tensor([1 + i % 2, c.cin, c.h, c.w])
            let wt = rng.tensor([c.cout, c.cin / groups, c.kh, c.kw])
            let b = i % 3 == 2 ? nil : rng.tensor([c.cout])
            let p = ConvProblem(x, wt, b, (c.s, c.s), (c.ph, c.pw), (1, 1), groups)
            guard p.g.outH > 0 && p.g.outW > 0 else { continue }
            let fast = Tensor(shape: [p.n, p.cout, p.g.outH, p.g.outW]) { out in
                x.data.withUnsafeBufferPointer { xp in
                    wt.data.withUnsafeBufferPointer { wp in
                        withOptionalBuffer(b) { bp in
                            panelConv(p, x: xp.baseAddress!, w: wp.baseAddress!, bias: bp, activation: act, out: out.baseAddress!,
                                      kernels: kernels, rowBands: true, rowsPerBand: c.rows)
                        }
                    }
                }
            }
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (c.s, c.s), padding: (c.ph, c.pw), dilation: (1, 1),
                                      groups: groups)
            assertClose(fast, referenceActivated(ref, act), "\(kernels.rawValue) row bands case \(i) \(c) groups \(groups) \(act)")
        }
    }
}
