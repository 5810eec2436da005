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
}
