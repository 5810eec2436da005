import XCTest
import Foundation
@testable import Tensor

final class TensorCoreTests: XCTestCase {
    func testReshapeInfersDimension() {
        let t = Tensor(shape: [2, 3, 4], data: (0 ..< 24).map(Float.init))
        XCTAssertEqual(t.reshaped([6, -1]).shape, [6, 4])
        XCTAssertEqual(t[1, 2, 3], 23)
        XCTAssertEqual(t.strides, [12, 4, 1])
    }

    func testSafetensorsRoundTrip() throws {
        let a = Tensor(shape: [2, 2], data: [1, -2, 3.5, 4])
        let b = Tensor(shape: [3], data: [0, 1e-3, -7])
        let data = SafetensorsFile.serialize(["a": a, "b": b], metadata: ["k": "v"])
        let f = try SafetensorsFile(data: data, name: "mem")
        XCTAssertEqual(f.names, ["a", "b"])
        XCTAssertEqual(f.metadata["k"], "v")
        XCTAssertEqual(try f.tensor("a"), a)
        XCTAssertEqual(try f.tensor("b"), b)
    }

    func testSafetensorsRejectsHeaderLongerThanFile() {
        var d = Data()
        var n = UInt64(1000).littleEndian
        withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
        d.append(contentsOf: Array("{}".utf8))
        XCTAssertThrowsError(try SafetensorsFile(data: d, name: "bad.safetensors")) { err in
            XCTAssertTrue("\(err)".contains("bad.safetensors"))
            XCTAssertTrue("\(err)".contains("header claims 1000 bytes"))
        }
    }

    func testHalfConversion() {
        XCTAssertEqual(halfToFloat(0x3C00), 1)
        XCTAssertEqual(halfToFloat(0xC000), -2)
        XCTAssertEqual(halfToFloat(0x0001), Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(halfToFloat(0x7BFF), 65504)
    }

    /// A failed check inside a shape pass must stop the op before it reads dimensions its input lacks (the yaml fuzz
    /// target found upsampleNearest reading shape[3] of a rank-3 input: out of bounds in this -Ounchecked target).
    /// Every op returns a shape of its own rank, all ones, and the first failure is the one reported.
    func testAFailedCheckInAShapePassStopsTheOp() {
        let tokens = Tensor(shapeOnly: [1, 84, 6400])
        let (outputs, problem): ([[Int]], String?) = Tensor.shapePass {
            let up = upsampleNearest(tokens, scale: 2)
            let pooled = maxPool2d(tokens, kernel: 5, stride: 1, padding: 2)
            let conv = conv2d(tokens, weight: Tensor(shapeOnly: [8, 84, 3, 3]), bias: nil, stride: (1, 1), padding: (1, 1),
                              dilation: (1, 1), groups: 1)
            let lin = linear(Tensor(shapeOnly: []), weight: Tensor(shapeOnly: [4, 3]), bias: nil)
            let cat = concat([tokens, Tensor(shapeOnly: [1, 84])], axis: 1)
            let perm = permute(tokens, [0, 3, 1, 2])
            let inferred = Tensor(shapeOnly: [0, 5]).reshaped([0, -1])
            let pieces = chunk(tokens, 0, axis: 1)
            let axis = tokens.normalizedAxis(7)
            return ([up.shape, pooled.shape, conv.shape, lin.shape, cat.shape, perm.shape, inferred.shape,
                     pieces[0].shape, [axis]], Tensor.shapePassProblem)
        }
        XCTAssertEqual(outputs, [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1], [1, 1, 1], [1, 1, 1], [1, 1],
                                 [1, 1, 1], [0]])
        XCTAssertEqual(problem, "upsampleNearest: input must be [N, C, H, W], got [1, 84, 6400]")
    }
}
