import XCTest
@testable import Tensor
import CKernels

/// The element-wise, reduction, row-softmax, norm and depthwise loops of each kernel set (AVX-512, AVX2, portable)
/// against plain Double math, over odd lengths (1, 15, 16, 17, 33, ... : every tail of 8 and 16 lanes), broadcast
/// patterns and NaN / inf inputs. A set the processor cannot run, or the environment turned off, skips and says so.
final class VectorKernelTests: XCTestCase {
    /// Skips, saying so, when this process cannot run `kernels`.
    func require(_ kernels: KernelSet) throws {
        try XCTSkipUnless(kernels.isSupported, "this processor cannot run the \(kernels.rawValue) kernels (CPU: \(CPUInfo.current.name))")
        try XCTSkipUnless(kernels.isEnabled, "the \(kernels.rawValue) kernels are turned off (kernels in use: \(KernelSet.active.rawValue))")
    }

    static let lengths = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100]

    /// Same bits, or both NaN; +0 and -0 count as equal.
    func same(_ a: Float, _ b: Float) -> Bool { a == b || (a.isNaN && b.isNaN) }

    /// Random values with a NaN, +inf, -inf and -0 among them (for length 8 and more).
    func values(_ n: Int, _ rng: inout SplitMix64, specials: Bool) -> [Float] {
        var v = (0 ..< n).map { _ in rng.float() * 10 }
        if specials && n >= 8 {
            v[rng.int(0 ... n - 1)] = .nan
            v[rng.int(0 ... n - 1)] = .infinity
            v[rng.int(0 ... n - 1)] = -.infinity
            v[rng.int(0 ... n - 1)] = -0.0
        }
        return v
    }

    // MARK: element-wise

    typealias BinaryCase = (name: String, ref: @Sendable (Float, Float) -> Float,
                            run: @Sendable (Tensor, Tensor, KernelSet) -> Tensor, code: Int32)
    static let binaryOps: [BinaryCase] = [
        ("add", { Float(Double($0) + Double($1)) }, { broadcastBinary($0, $1, AddOp.self, kernels: $2) }, CK_BIN_ADD),
        ("sub", { Float(Double($0) - Double($1)) }, { broadcastBinary($0, $1, SubOp.self, kernels: $2) }, CK_BIN_SUB),
        ("mul", { Float(Double($0) * Double($1)) }, { broadcastBinary($0, $1, MulOp.self, kernels: $2) }, CK_BIN_MUL),
        ("div", { Float(Double($0) / Double($1)) }, { broadcastBinary($0, $1, DivOp.self, kernels: $2) }, CK_BIN_DIV),
        ("maximum", { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }, { broadcastBinary($0, $1, MaxOp.self, kernels: $2) }, CK_BIN_MAX),
        ("minimum", { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }, { broadcastBinary($0, $1, MinOp.self, kernels: $2) }, CK_BIN_MIN),
        ("relu-max", { $1 > $0 ? $1 : $0 }, { broadcastBinary($0, $1, MaxKeepNaNOp.self, kernels: $2) }, CK_BIN_MAX_KEEP_X),
    ]

    /// Every op on same shapes, a scalar on either side, a row ([r, n] with [n]), a column ([r, n] with [r, 1]), a
    /// per-channel vector ([2, c, h, w] with [1, c, 1, 1]), an outer product of broadcasts ([3, 1, n] with [1, 4, n])
    /// and a strided case the kernels do not take ([n, 3] with [1, 3]); results exact (one rounding, as Double math
    /// rounded), NaN where torch gives NaN.
    func checkBinary(_ set: KernelSet) throws {
        try require(set)
        var rng = SplitMix64(seed: 41)
        for n in Self.lengths {
            let r = rng.int(1 ... 5)
            let pairs: [([Int], [Int])] = [([n], [n]), ([r, n], [r, n]), ([n], [1]), ([1], [n]), ([r, n], [n]), ([n], [r, n]),
                                           ([r, n], [r, 1]), ([2, r, n, 3], [1, r, 1, 1]), ([2, 3, n], [1, 3, 1]),
                                           ([3, 1, n], [1, 4, n]), ([n, 3], [1, 3]), ([r, 1], [1, n])]
            for (sa, sb) in pairs {
                let a = Tensor(shape: sa, data: values(sa.reduce(1, *), &rng, specials: true))
                let b = Tensor(shape: sb, data: values(sb.reduce(1, *), &rng, specials: n % 2 == 1))
                let shape = broadcastShape(sa, sb)
                let xa = broadcast(a, to: shape), xb = broadcast(b, to: shape)
                for op in Self.binaryOps {
                    let got = op.run(a, b, set)
                    XCTAssertEqual(got.shape, shape)
                    guard got.shape == shape else { continue }
                    for i in 0 ..< got.count where !same(got.data[i], op.ref(xa.data[i], xb.data[i])) {
                        XCTFail("\(set.rawValue) \(op.name) \(sa) with \(sb): element \(i): \(xa.data[i]), \(xb.data[i]) gives \(got.data[i]), want \(op.ref(xa.data[i], xb.data[i]))")
                        break
                    }
                }
            }
        }
        // The kernels straight: every length from 0 to 40 and every stride pattern, nothing written past the end.
        guard set != .portable else { return }
        for n in 0 ... 40 {
            let x = values(n + 1, &rng, specials: true), y = values(n + 1, &rng, specials: true)
            for op in Self.binaryOps {
                for (sx, sy) in [(1, 1), (1, 0), (0, 1), (0, 0)] {
                    var d = [Float](repeating: -7, count: n + 1)
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeBufferPointer { yp in
                            d.withUnsafeMutableBufferPointer {
                                binaryKernel(set, op.code, xp.baseAddress!, sx, yp.baseAddress!, sy, $0.baseAddress!, n)
                            }
                        }
                    }
                    for i in 0 ..< n where !same(d[i], op.ref(x[i * sx], y[i * sy])) {
                        XCTFail("\(set.rawValue) ck_binary \(op.name) n \(n) strides \(sx), \(sy): element \(i) gives \(d[i])")
                        break
                    }
                    XCTAssertEqual(d[n], -7, "\(set.rawValue) ck_binary \(op.name) n \(n) wrote past the end")
                }
            }
        }
    }

    func testBinaryOpsAVX512() throws { try checkBinary(.avx512) }
    func testBinaryOpsAVX2() throws { try checkBinary(.avx2) }
    func testBinaryOpsPortable() throws { try checkBinary(.portable) }

    // MARK: reductions

    /// sum, mean, max and min along the last axis (rows of every length), the first (columns of every width: the
    /// 64-column blocks and their tails) and a middle one, against Double sums (|error| <= 1e-6 * sum of |x|) and
    /// exact extremes; a NaN anywhere in a row or column makes its max and min NaN. The last block reduced alone gives
    /// the same bits as among the others (the order of a sum does not depend on the split across cores).
    func checkReductions(_ set: KernelSet) throws {
        try require(set)
        var rng = SplitMix64(seed: 42)
        for n in Self.lengths {
            let m = rng.int(1 ... 70)
            // [2000, n] along 1: enough work to be split across cores
            for (shape, axis) in [([m, n], 1), ([n, m], 0), ([2, n, m], 1), ([3, m, n], 2), ([n], 0), ([n, 1], 0), ([2000, n], 1)] {
                let count = shape.reduce(1, *)
                let x = Tensor(shape: shape, data: values(count, &rng, specials: false).enumerated().map { i, v in
                    // a NaN in some rows or columns only, so that others stay finite
                    n > 8 && i % 37 == 5 ? .nan : v
                })
                let len = shape[axis], inner = shape[(axis + 1)...].reduce(1, *), outer = count / (len * inner)
                let results = [("sum", reduceAxis(x, axis: axis, keepDims: false, SumReduce.self, kernels: set)),
                               ("mean", reduceAxis(x, axis: axis, keepDims: false, MeanReduce.self, kernels: set)),
                               ("max", reduceAxis(x, axis: axis, keepDims: false, MaxReduce.self, kernels: set)),
                               ("min", reduceAxis(x, axis: axis, keepDims: false, MinReduce.self, kernels: set))]
                // the last block alone gives the same bits as among the others (however the rows were split across cores)
                let lastBlock = Tensor(shape: [1, len, inner], data: Array(x.data[(outer - 1) * len * inner ..< count]))
                for (name, t) in results {
                    let op: (Tensor) -> Tensor = switch name {
                    case "sum": { reduceAxis($0, axis: 1, keepDims: false, SumReduce.self, kernels: set) }
                    case "mean": { reduceAxis($0, axis: 1, keepDims: false, MeanReduce.self, kernels: set) }
                    case "max": { reduceAxis($0, axis: 1, keepDims: false, MaxReduce.self, kernels: set) }
                    default: { reduceAxis($0, axis: 1, keepDims: false, MinReduce.self, kernels: set) }
                    }
                    let alone = op(lastBlock)
                    for j in 0 ..< inner {
                        let a = alone.data[j], b = t.data[(outer - 1) * inner + j]
                        XCTAssertTrue(a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN), "\(set.rawValue) \(name) of \(shape) along \(axis): the last block alone differs at \(j)")
                    }
                }
                for o in 0 ..< outer {
                    for j in 0 ..< inner {
                        let col = (0 ..< len).map { x.data[(o * len + $0) * inner + j] }
                        let sum = col.reduce(0.0) { $0 + Double($1) }, mag = col.reduce(0.0) { $0 + Swift.abs(Double($1)) }
                        let hasNaN = col.contains { $0.isNaN }
                        let at = o * inner + j
                        for (name, t) in results {
                            let got = t.data[at]
                            let what = "\(set.rawValue) \(name) of \(shape) along \(axis) at \(o), \(j)"
                            if hasNaN { XCTAssertTrue(got.isNaN, "\(what): \(got), want NaN"); continue }
                            switch name {
                            case "sum": XCTAssertEqual(Double(got), sum, accuracy: 4e-6 * Swift.max(mag, 1), what)
                            case "mean": XCTAssertEqual(Double(got), sum / Double(len), accuracy: 4e-6 * Swift.max(mag, 1) / Double(len), what)
                            case "max": XCTAssertEqual(got, col.max()!, what)
                            default: XCTAssertEqual(got, col.min()!, what)
                            }
                        }
                    }
                }
            }
        }
    }

    func testReductionsAVX512() throws { try checkReductions(.avx512) }
    func testReductionsAVX2() throws { try checkReductions(.avx2) }
    func testReductionsPortable() throws { try checkReductions(.portable) }

    // MARK: row softmax

    /// Softmax along the last axis: rows of every length, logits up to +-40 (a large max subtracted), a row with a NaN
    /// and one of all -inf (NaN throughout, as torch), against Double math (|error| <= 1e-6); split across cores or
    /// not, every row the same bits (one row run alone gives what it gave among the others).
    func checkSoftmaxRows(_ set: KernelSet) throws {
        try require(set)
        var rng = SplitMix64(seed: 43)
        for n in Self.lengths + [300, 1000] {
            let rows = rng.int(1 ... 6) + (n < 64 ? 300 : 0)
            var x = (0 ..< rows * n).map { _ in rng.float() * 40 }
            if rows > 2 {
                x[n + rng.int(0 ... n - 1)] = .nan
                for i in 0 ..< n { x[2 * n + i] = -.infinity }
            }
            if n > 3 { x[0] = -.infinity }
            let t = Tensor(shape: [rows, n], data: x)
            let y = softmax(t, axis: 1, kernels: set)
            for r in 0 ..< rows {
                let row = (0 ..< n).map { Double(x[r * n + $0]) }
                if row.contains(where: \.isNaN) || row.allSatisfy({ $0 == -.infinity }) {
                    for i in 0 ..< n { XCTAssertTrue(y.data[r * n + i].isNaN, "\(set.rawValue) softmax n \(n) row \(r) (NaN or all -inf) gives \(y.data[r * n + i])") }
                    continue
                }
                let m = row.max()!, e = row.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                for i in 0 ..< n where Swift.abs(Double(y.data[r * n + i]) - e[i] / z) > 1e-6 {
                    XCTFail("\(set.rawValue) softmax n \(n) row \(r) element \(i): \(y.data[r * n + i]), want \(e[i] / z)")
                    break
                }
            }
            let last = Tensor(shape: [1, n], data: Array(x[(rows - 1) * n ..< rows * n]))
            let alone = softmax(last, axis: 1, kernels: set)
            for i in 0 ..< n {
                let a = alone.data[i], b = y.data[(rows - 1) * n + i]
                XCTAssertTrue(a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN), "\(set.rawValue) softmax n \(n): the last row alone differs at \(i)")
            }
        }
    }

    func testSoftmaxRowsAVX512() throws { try checkSoftmaxRows(.avx512) }
    func testSoftmaxRowsAVX2() throws { try checkSoftmaxRows(.avx2) }
    func testSoftmaxRowsPortable() throws { try checkSoftmaxRows(.portable) }

    // MARK: norms

    /// Layer norm (with and without weight and bias; rows offset by up to 100 so the mean matters), batch norm and
    /// group norm against Double math; a layer-norm row alone gives the same bits as among rows split across cores.
    func checkNorms(_ set: KernelSet) throws {
        try require(set)
        var rng = SplitMix64(seed: 44)
        for n in Self.lengths + [256] {
            let rows = rng.int(1 ... 9) + 8192 / n   // enough work to be split across cores
            let offsets = (0 ..< rows).map { _ in rng.float() * 100 }
            let x = Tensor(shape: [rows, n], data: (0 ..< rows * n).map { offsets[$0 / n] + rng.float() * 3 })
            let w = rng.tensor([n]), b = rng.tensor([n])
            for (trial, (wt, bt)) in [(w, b), (nil, nil), (w, nil), (nil, b)].enumerated() {
                let eps: Float = trial == 1 ? 1e-6 : 1e-5
                let y = layerNorm(x, weight: wt, bias: bt, eps: eps, kernels: set)
                let last = layerNorm(Tensor(shape: [1, n], data: Array(x.data[(rows - 1) * n ..< rows * n])), weight: wt, bias: bt, eps: eps, kernels: set)
                XCTAssertEqual(last.data.map(\.bitPattern), y.data[(rows - 1) * n ..< rows * n].map(\.bitPattern),
                               "\(set.rawValue) layer norm n \(n): the last row alone differs")
                for r in 0 ..< rows {
                    let row = (0 ..< n).map { Double(x.data[r * n + $0]) }
                    let m = row.reduce(0, +) / Double(n), v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n)
                    let inv = 1 / (v + Double(eps)).squareRoot()
                    for i in 0 ..< n {
                        let want = (row[i] - m) * inv * Double(wt?.data[i] ?? 1) + Double(bt?.data[i] ?? 0)
                        // the input is known to about 100 * 2^-24; normalised, that error grows by inv
                        if Swift.abs(Double(y.data[r * n + i]) - want) > 2e-5 * Swift.max(1, 100 * inv) {
                            XCTFail("\(set.rawValue) layer norm n \(n) trial \(trial) row \(r) element \(i): \(y.data[r * n + i]), want \(want)")
                            break
                        }
                    }
                }
            }
            // batch norm and group norm on [2, c, h, w] with h * w = n
            let c = 4
            let x4 = Tensor(shape: [2, c, 1, n], data: (0 ..< 2 * c * n).map { _ in rng.float() * 5 + 2 })
            let gamma = rng.tensor([c]), beta = rng.tensor([c]), mean = rng.tensor([c])
            let variance = Tensor(shape: [c], data: (0 ..< c).map { _ in rng.nextFloat() + 0.1 })
            let bn = batchNorm(x4, gamma: gamma, beta: beta, mean: mean, variance: variance, eps: 1e-5, kernels: set)
            for i in 0 ..< x4.count {
                let ch = i / n % c
                let s = Double(gamma.data[ch]) / (Double(variance.data[ch]) + 1e-5).squareRoot()
                let want = (Double(x4.data[i]) - Double(mean.data[ch])) * s + Double(beta.data[ch])
                XCTAssertEqual(Double(bn.data[i]), want, accuracy: 1e-5 * Swift.max(1, Swift.abs(want)), "\(set.rawValue) batch norm n \(n) at \(i)")
            }
            let gn = groupNorm(x4, groups: 2, weight: gamma, bias: beta, eps: 1e-5, kernels: set)
            for img in 0 ..< 2 {
                for grp in 0 ..< 2 {
                    let base = (img * c + grp * 2) * n
                    let vals = (0 ..< 2 * n).map { Double(x4.data[base + $0]) }
                    let m = vals.reduce(0, +) / Double(2 * n), v = vals.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(2 * n)
                    for i in 0 ..< 2 * n {
                        let ch = grp * 2 + i / n
                        let want = (vals[i] - m) / (v + 1e-5).squareRoot() * Double(gamma.data[ch]) + Double(beta.data[ch])
                        XCTAssertEqual(Double(gn.data[base + i]), want, accuracy: 2e-5, "\(set.rawValue) group norm n \(n) image \(img) group \(grp) at \(i)")
                    }
                }
            }
        }
    }

    func testNormsAVX512() throws { try checkNorms(.avx512) }
    func testNormsAVX2() throws { try checkNorms(.avx2) }
    func testNormsPortable() throws { try checkNorms(.portable) }

    // MARK: depthwise

    /// Depthwise convs on `set`: kernels 3, 5 and 7 (and 3x5, dilation 2: the general loops), strides 1 and 2, output
    /// widths of every tail for 8 and 16 lanes and of more than one 32-column block, heights that leave rows after the
    /// blocks of four and two, one or two outputs per channel, a batch of two, with and without bias, every activation
    /// (fused into the AVX-512 kernels); the 3x3 stride-2 planes the direct kernel reads in place included (even
    /// widths; AVX2 from 16 on).
    func checkDepthwise(_ set: KernelSet) throws {
        try require(set)
        var rng = SplitMix64(seed: 45)
        let activations: [ConvActivation] = [.identity, .relu, .silu, .sigmoid]
        var direct = 0
        for trial in 0 ..< 90 {
            let (kh, kw, dil): (Int, Int, Int) = trial % 15 == 14 ? (3, 5, 1) : trial % 15 == 13 ? (3, 3, 2) : [(3, 3, 1), (5, 5, 1), (7, 7, 1)][trial % 3]
            let stride = kw == 7 ? 1 : (trial / 3) % 2 + 1
            let c = rng.int(1 ... 3), mult = trial % 4 == 3 ? 2 : 1
            let h = rng.int(1 ... 13)
            let w = trial % 6 == 3 ? 2 * rng.int(1 ... 40)
                : trial % 2 == 0 ? [1, 2, 7, 15, 16, 17, 18, 31, 32, 33, 34, 40, 48, 66][trial / 2 % 14] : rng.int(1 ... 80)
            let x = rng.tensor([2, c, h, w]), wt = rng.tensor([c * mult, 1, kh, kw])
            let b = trial % 5 == 2 ? nil : rng.tensor([c * mult])
            let act = activations[trial % 4]
            let pad = (kh / 2 * dil, kw / 2 * dil)
            let p = ConvProblem(x, wt, b, (stride, stride), pad, (dil, dil), c)
            if usesDirectStride2(p, kernels: set) { direct += 1 }
            var out = [Float](repeating: .nan, count: 2 * c * mult * p.outPlane)
            x.data.withUnsafeBufferPointer { xp in
                wt.data.withUnsafeBufferPointer { wp in
                    withOptionalBuffer(b) { bp in
                        out.withUnsafeMutableBufferPointer {
                            depthwiseConv(p, x: xp.baseAddress!, w: wp.baseAddress!, bias: bp, activation: act, out: $0.baseAddress!, kernels: set)
                        }
                    }
                }
            }
            let ref = conv2dReference(x, weight: wt, bias: b, stride: (stride, stride), padding: pad, dilation: (dil, dil), groups: c)
            let what = "\(set.rawValue) depthwise k\(kh)x\(kw) s\(stride) d\(dil) \(c)x\(mult) \(h)x\(w) \(act)"
            XCTAssertEqual(ref.count, out.count, what)
            for i in 0 ..< ref.count {
                let v = Double(ref.data[i])
                let want: Double
                switch act {
                case .identity: want = v
                case .relu: want = Swift.max(v, 0)
                case .silu: want = v / (1 + Foundation.exp(-v))
                case .sigmoid: want = 1 / (1 + Foundation.exp(-v))
                }
                if !(Swift.abs(Double(out[i]) - want) <= 1e-5 * Swift.max(1, Swift.abs(want))) {
                    XCTFail("\(what): element \(i) is \(out[i]), want \(want)")
                    break
                }
            }
        }
        if set != .portable { XCTAssertGreaterThan(direct, 3, "\(set.rawValue): too few cases ran the direct stride-2 kernel") }
    }

    func testDepthwiseAVX512() throws { try checkDepthwise(.avx512) }
    func testDepthwiseAVX2() throws { try checkDepthwise(.avx2) }
    func testDepthwisePortable() throws { try checkDepthwise(.portable) }
}
