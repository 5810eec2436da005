import CKernels
import XCTest
@testable import Tensor

/// Small hand-checked cases for every op family (the PyTorch golden tests cover the odd shapes).
final class OpsSanityTests: XCTestCase {
    func t(_ shape: [Int], _ values: [Float]) -> Tensor { Tensor(shape: shape, data: values) }
    func iota(_ shape: [Int]) -> Tensor { Tensor(shape: shape, data: (0 ..< shape.reduce(1, *)).map(Float.init)) }

    func testBroadcastArithmetic() {
        let a = iota([2, 3])
        XCTAssertEqual((a + t([3], [10, 20, 30])).data, [10, 21, 32, 13, 24, 35])
        XCTAssertEqual((a * t([2, 1], [1, -1])).data, [0, 1, 2, -3, -4, -5])
        XCTAssertEqual((t([2, 1], [1, 2]) - t([1, 3], [0, 1, 2])).data, [1, 0, -1, 2, 1, 0])
        XCTAssertEqual((2 / t([2], [1, 4])).data, [2, 0.5])
        XCTAssertEqual((-a).data, [0, -1, -2, -3, -4, -5])
        XCTAssertEqual((-t([1], [0])).data[0].sign, .minus)
        XCTAssertEqual(maximum(a, Tensor(scalar: 2.5)).data, [2.5, 2.5, 2.5, 3, 4, 5])
        XCTAssertEqual(clamp(a, min: 1, max: 3).data, [1, 1, 2, 3, 3, 3])
        let b = iota([2, 1, 3, 1]) + iota([4, 1, 1])
        XCTAssertEqual(b.shape, [2, 4, 3, 1])
        XCTAssertEqual(b[1, 2, 1, 0], 4 + 2)
    }

    /// One operand a single number (the flat loops): either side, ranks that do and do not broadcast the shape up,
    /// an empty tensor; ReLU as max(x, 0) keeps NaN and maps -inf and negatives to 0.
    func testSingleNumberOperands() {
        let a = iota([2, 3])
        XCTAssertEqual((a * t([1, 1], [2])).data, [0, 2, 4, 6, 8, 10])
        XCTAssertEqual((a * t([1, 1], [2])).shape, [2, 3])
        XCTAssertEqual((t([1, 1, 1], [1]) + a).shape, [1, 2, 3])
        XCTAssertEqual((t([1, 1, 1], [1]) + a).data, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual((t([1], [10]) - a).data, [10, 9, 8, 7, 6, 5])
        XCTAssertEqual((a - 1).data, [-1, 0, 1, 2, 3, 4])
        XCTAssertEqual((Tensor(zeros: [0, 3]) + 1).shape, [0, 3])
        XCTAssertEqual((t([1], [3]) * t([1, 1], [2])).data, [6])
        let r = relu(t([5], [-.infinity, -2, 0, 3, .nan]))
        XCTAssertEqual(Array(r.data[0 ..< 4]), [0, 0, 0, 3])
        XCTAssertTrue(r.data[4].isNaN)
        XCTAssertTrue(maximum(t([2], [.nan, 1]), Tensor(scalar: 0)).data[0].isNaN)
    }

    func testActivationsAndSoftmax() {
        let x = t([4], [-2, -0.5, 0, 1.5])
        XCTAssertEqual(relu(x).data, [0, 0, 0, 1.5])
        XCTAssertEqual(hardswish(x).data[3], 1.5 * 4.5 / 6, accuracy: 1e-6)
        XCTAssertEqual(gelu(t([1], [1])).data[0], 0.8413447, accuracy: 1e-6)
        XCTAssertEqual(silu(t([1], [1])).data[0], 0.7310586, accuracy: 1e-6)
        let s = softmax(iota([2, 3]), axis: 0)
        XCTAssertEqual(s[0, 1] + s[1, 1], 1, accuracy: 1e-6)
        XCTAssertEqual(s[1, 0], 1 / (1 + expf(-3)), accuracy: 1e-6)
        XCTAssertEqual(inverseSigmoid(sigmoid(t([1], [0.3]))).data[0], 0.3, accuracy: 1e-5)
        // A masked attention row (-inf past the eight-lane loop too): the masked entries get 0, the rest share 1;
        // the largest entry in the tail; a row with a NaN is NaN.
        var row = [Float](repeating: -.infinity, count: 19)
        row[2] = 1; row[17] = 1; row[18] = 3
        let masked = softmax(t([1, 19], row), axis: -1)
        XCTAssertEqual(masked.data[2], masked.data[17])
        XCTAssertEqual(masked.data[18], 1 / (1 + 2 * expf(-2)), accuracy: 1e-6)
        XCTAssertEqual(masked.data.filter { $0 == 0 }.count, 16)
        XCTAssertTrue(softmax(t([1, 9], [0, 1, 2, 3, .nan, 5, 6, 7, 8]), axis: -1).data.allSatisfy { $0.isNaN })
    }

    func testReductions() {
        let x = iota([2, 3, 2])
        XCTAssertEqual(sum(x, axis: 1).data, [6, 9, 24, 27])
        XCTAssertEqual(mean(x, axis: -1, keepDims: true).shape, [2, 3, 1])
        XCTAssertEqual(max(x, axis: 0).data, [6, 7, 8, 9, 10, 11])
        XCTAssertEqual(min(x, axis: 2).data, [0, 2, 4, 6, 8, 10])
        XCTAssertEqual(argmax(t([2, 3], [1, 5, 5, 7, 0, 2]), axis: 1).data, [1, 0])
        // Rows of 19 along the last axis (eight running values, then the tail): the extreme in either part, a NaN in
        // either part wins, and the same along a middle axis.
        var rows = (0 ..< 4 * 19).map { Float($0 % 19) - 9 }
        rows[0 * 19 + 3] = 50; rows[1 * 19 + 17] = -50; rows[2 * 19 + 5] = .nan; rows[3 * 19 + 18] = .nan
        let r = t([4, 19], rows)
        let mx = max(r, axis: 1), mn = min(r, axis: 1)
        XCTAssertEqual(Array(mx.data[0 ..< 2]), [50, 9])
        XCTAssertEqual(Array(mn.data[0 ..< 2]), [-9, -50])
        XCTAssertTrue(mx.data[2].isNaN && mx.data[3].isNaN && mn.data[2].isNaN && mn.data[3].isNaN)
        XCTAssertEqual(sum(r, axis: 1).data[1], -58)   // -9 ... 9 with the 8 made -50
        let mid = max(t([1, 3, 2], [1, .nan, 4, 2, 3, 0]), axis: 1)
        XCTAssertEqual(mid.data[0], 4)
        XCTAssertTrue(mid.data[1].isNaN)
    }

    /// Transposes through the tiled path (sizes around its 32 x 32 tiles, a leading size-1 dimension) and a batched
    /// one through the general path, against the index formula.
    func testTransposes() {
        for (rows, cols) in [(37, 45), (32, 64), (1, 70), (70, 1), (5, 3)] {
            let x = iota([1, rows, cols])
            let y = permute(x, [0, 2, 1])
            XCTAssertEqual(y.shape, [1, cols, rows])
            XCTAssertEqual(y.data, (0 ..< cols * rows).map { Float(($0 % rows) * cols + $0 / rows) }, "\(rows)x\(cols)")
        }
        let b = permute(iota([2, 3, 4]), [0, 2, 1])
        XCTAssertEqual(b[1, 3, 2], iota([2, 3, 4])[1, 2, 3])
    }

    func testShapeOps() {
        let x = iota([2, 3])
        XCTAssertEqual(concat([x, x], axis: 1).data, [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
        XCTAssertEqual(transpose(x, 0, 1).data, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(chunk(iota([5]), 2, axis: 0).map(\.shape), [[3], [2]])
        XCTAssertEqual(split(x, sizes: [1, 2], axis: 1)[1].data, [1, 2, 4, 5])
        XCTAssertEqual(indexSelect(x, axis: 1, indices: [2, 0]).data, [2, 0, 5, 3])
        XCTAssertEqual(gather(x, axis: 1, indices: t([2, 2], [2, 2, 0, 1])).data, [2, 2, 3, 4])
        let (v, i) = topK(t([1, 5], [3, 9, 1, 9, 4]), k: 3)
        XCTAssertEqual(v.data, [9, 9, 4])
        XCTAssertEqual(i.data, [1, 3, 4])
        XCTAssertEqual(permute(iota([2, 3, 4]), [2, 0, 1])[3, 1, 2], iota([2, 3, 4])[1, 2, 3])
    }

    func testGemmOps() {
        let a = iota([2, 2, 3]), b = iota([3, 2])
        let c = matmul(a, b)
        XCTAssertEqual(c.shape, [2, 2, 2])
        XCTAssertEqual(c.data, [10, 13, 28, 40, 46, 67, 64, 94])
        XCTAssertEqual(matmul(a, transpose(b, 0, 1), transposeB: true).data, c.data)
        let l = linear(t([1, 2], [1, 2]), weight: t([3, 2], [1, 0, 0, 1, 1, 1]), bias: t([3], [0, 10, 100]))
        XCTAssertEqual(l.data, [1, 12, 103])
    }

    func testConvAgainstReference() {
        let x = Tensor(shape: [1, 4, 5, 6], data: (0 ..< 120).map { Float(($0 * 7) % 11) - 5 })
        let w = Tensor(shape: [6, 2, 3, 3], data: (0 ..< 108).map { Float(($0 * 5) % 7) - 3 })
        let bias = t([6], [1, 2, 3, 4, 5, 6])
        let fast = conv2d(x, weight: w, bias: bias, stride: 2, padding: 1, groups: 2)
        let ref = conv2dReference(x, weight: w, bias: bias, stride: (2, 2), padding: (1, 1), dilation: (1, 1), groups: 2)
        XCTAssertEqual(fast.shape, [1, 6, 3, 3])
        XCTAssertEqual(fast.data, ref.data)
        let u = unfold(iota([1, 1, 3, 3]), kernel: 2)
        XCTAssertEqual(u.shape, [1, 4, 4])
        XCTAssertEqual(u.data, [0, 1, 3, 4, 1, 2, 4, 5, 3, 4, 6, 7, 4, 5, 7, 8])
    }

    func testPoolingAndNorms() {
        let x = iota([1, 1, 4, 4])
        XCTAssertEqual(maxPool2d(x, kernel: 2, stride: 2).data, [5, 7, 13, 15])
        XCTAssertEqual(avgPool2d(x, kernel: 2, stride: 2).data, [2.5, 4.5, 10.5, 12.5])
        XCTAssertEqual(adaptiveAvgPool2d(x, outputSize: (1, 1)).data, [7.5])
        XCTAssertEqual(upsampleNearest(t([1, 1, 1, 2], [1, 2]), scale: 2).data, [1, 1, 2, 2, 1, 1, 2, 2])
        let ln = layerNorm(t([1, 2], [1, 3]), weight: nil, bias: nil, eps: 0)
        XCTAssertEqual(ln.data, [-1, 1])
        let bn = batchNorm(t([1, 1, 1, 1], [3]), gamma: t([1], [2]), beta: t([1], [1]), mean: t([1], [1]), variance: t([1], [4]), eps: 0)
        XCTAssertEqual(bn.data, [3])
        let gn = groupNorm(t([1, 2, 1, 1], [1, 3]), groups: 1, weight: nil, bias: nil, eps: 0)
        XCTAssertEqual(gn.data, [-1, 1])
    }

    func testSamplingOps() {
        let x = iota([1, 1, 2, 2])
        // Pixel centres sit at (2i + 1) / W - 1; the centre of the map averages all four.
        let g = gridSample(x, grid: t([1, 1, 3, 2], [-0.5, -0.5, 0, 0, 5, 5]))
        XCTAssertEqual(g.data, [0, 1.5, 0])
        let value = Tensor(shape: [1, 4, 1, 1], data: [0, 1, 2, 3])
        let loc = t([1, 1, 1, 1, 1, 2], [0.5, 0.5])
        let out = multiScaleDeformableAttention(value: value, levelShapes: [(2, 2)], samplingLocations: loc,
                                                attentionWeights: t([1, 1, 1, 1, 1], [2]))
        XCTAssertEqual(out.data, [3])
    }

    /// The memory floor of `bench ops` (ck_stream) reads every input and writes every output: its sum is exact on
    /// small integers, and no output keeps the NaN it started with, for lengths around its 32-float steps and
    /// 1024-float chunks, more outputs than inputs and none of either.
    func testStreamReadsEveryInputAndWritesEveryOutput() {
        for avx2: Int32 in hasAVX2FMA ? [0, 1] : [0] {
            for (n, m) in [(0, 0), (0, 5), (7, 0), (33, 9), (1024, 1024), (1057, 300), (3000, 5000), (4096, 1)] {
                let input = (0 ..< n).map { Float($0 % 7) }
                var out = [Float](repeating: .nan, count: m)
                let sum = input.withUnsafeBufferPointer { i in
                    out.withUnsafeMutableBufferPointer { o in ck_stream(i.baseAddress, n, o.baseAddress, m, avx2) }
                }
                XCTAssertEqual(sum, input.reduce(0, +), "sum, n \(n) m \(m) avx2 \(avx2)")
                XCTAssertFalse(out.contains { $0.isNaN }, "outputs left unwritten, n \(n) m \(m) avx2 \(avx2)")
            }
        }
    }
}
