import Foundation
import SwiftProtobuf
import XCTest
@testable import ONNX
import Tensor

/// Builds small ONNX models in memory for the reader's tests (hostile ones included).
enum ONNXBuilder {
    struct Node {
        var op: String
        var name: String
        var inputs: [String]
        var outputs: [String]
        var ints: [String: [Int]] = [:]
    }

    /// dims: -1 is a symbolic dim ("d<position>").
    static func valueInfo(_ name: String, _ dims: [Int]?) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = 1
        if let dims {
            var s = Onnx_TensorShapeProto()
            s.dim = dims.enumerated().map { i, d in
                var dim = Onnx_TensorShapeProto.Dimension()
                if d >= 0 { dim.dimValue = Int64(d) } else { dim.dimParam = "d\(i)" }
                return dim
            }
            t.shape = s
        }
        v.type.tensorType = t
        return v
    }

    static func floats(_ name: String, dims: [Int64], raw: Data) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = 1
        t.dims = dims
        t.rawData = raw
        return t
    }

    static func proto(nodes: [Node], inputs: [(String, [Int]?)], outputs: [String], initializers: [Onnx_TensorProto] = [],
                      opset: Int = 18) -> Onnx_ModelProto {
        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.producerName = "ONNXBuilder"
        var o = Onnx_OperatorSetIdProto()
        o.version = Int64(opset)
        m.opsetImport = [o]
        var g = Onnx_GraphProto()
        g.name = "test"
        g.input = inputs.map { valueInfo($0.0, $0.1) }
        g.output = outputs.map { valueInfo($0, nil) }
        g.initializer = initializers
        g.node = nodes.map { n in
            var p = Onnx_NodeProto()
            p.opType = n.op
            p.name = n.name
            p.input = n.inputs
            p.output = n.outputs
            p.attribute = n.ints.map { k, v in
                var a = Onnx_AttributeProto()
                a.name = k
                a.type = .ints
                a.ints = v.map { Int64($0) }
                return a
            }
            return p
        }
        m.graph = g
        return m
    }

    static func model(nodes: [Node], inputs: [(String, [Int]?)], outputs: [String], initializers: [Onnx_TensorProto] = [],
                      opset: Int = 18) -> Data {
        try! proto(nodes: nodes, inputs: inputs, outputs: outputs, initializers: initializers, opset: opset).serializedData()
    }
}

/// Malformed and hostile files: each is an error naming the file and the problem, nothing sized from an
/// unchecked number.
final class ONNXReaderTests: XCTestCase {
    func assertFails(_ data: Data, directory: String? = nil, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ONNXModel(data: data, file: "hostile.onnx", directory: directory), file: file, line: line) { e in
            let s = "\(e)"
            XCTAssertTrue(e is FileFormatError, "\(type(of: e)): \(s)", file: file, line: line)
            XCTAssertTrue(s.hasPrefix("hostile.onnx: "), s, file: file, line: line)
            for want in expected { XCTAssertTrue(s.contains(want), "'\(want)' not in: \(s)", file: file, line: line) }
        }
    }

    let relu = ONNXBuilder.Node(op: "Relu", name: "/model.0/act/Relu", inputs: ["x"], outputs: ["y"])

    func testReadsAFixture() throws {
        let m = try ONNXModel.load(path: ONNXFixtures.path("ops/conv.onnx"))
        XCTAssertEqual(m.opset, 18)
        XCTAssertEqual(m.producerName, "gen_onnx_ops")
        XCTAssertEqual(m.inputs.map(\.name), ["x"])
        XCTAssertEqual(m.inputs[0].dims, [.value(1), .value(3), .value(11), .value(9)])
        XCTAssertEqual(m.initializerNames, ["w", "b"])
        XCTAssertEqual(m.parameterCount, 5 * 3 * 3 * 3 + 5)
        XCTAssertEqual(m.opHistogram, ["Conv": 1])
        XCTAssertEqual(m.modulePaths, ["conv"])
    }

    func testModulePathsFromNodeNames() {
        XCTAssertEqual(ONNXNode.modulePath(of: "/model.10/m/m.0/attn/Softmax"), "model.10.m.0.attn")
        XCTAssertEqual(ONNXNode.modulePath(of: "/model.22/Concat_3"), "model.22")
        XCTAssertEqual(ONNXNode.modulePath(of: "/Concat"), "")
        XCTAssertEqual(ONNXNode.modulePath(of: "Conv_0"), "")
    }

    func testSymbolicDimsAreKept() throws {
        let m = try ONNXModel(data: ONNXBuilder.model(nodes: [relu], inputs: [("x", [1, 3, -1, -1])], outputs: ["y"]), file: "a.onnx", directory: nil)
        XCTAssertEqual(m.inputs[0].shapeDescription, "[1, 3, d2, d3]")
    }

    func testTruncatedProtobuf() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: ONNXFixtures.path("ops/conv.onnx")))
        assertFails(data.prefix(data.count / 2), ["not a valid ONNX protobuf"])
        assertFails(Data(), ["empty"])
        assertFails(Data("header claims".utf8), ["not a valid ONNX protobuf"])
    }

    func testDeclaredSizeBeyondData() {
        let w = ONNXBuilder.floats("w", dims: [1000], raw: Data(count: 8))
        assertFails(ONNXBuilder.model(nodes: [relu], inputs: [("x", [2])], outputs: ["y"], initializers: [w]),
                    ["tensor 'w'", "declares 1000 values", "holds 8 bytes"])
        var typed = Onnx_TensorProto()
        typed.name = "t"; typed.dataType = 1; typed.dims = [3]; typed.floatData = [1]
        assertFails(ONNXBuilder.model(nodes: [relu], inputs: [("x", [2])], outputs: ["y"], initializers: [typed]),
                    ["tensor 't'", "declares 3 values", "holds 1 float_data"])
    }

    func testOverflowingAndHugeDims() {
        let w = ONNXBuilder.floats("w", dims: [1 << 40, 1 << 40], raw: Data())
        assertFails(ONNXBuilder.model(nodes: [relu], inputs: [("x", [2])], outputs: ["y"], initializers: [w]), ["tensor 'w'", "overflow"])
        let big = ONNXBuilder.floats("big", dims: [1 << 30, 1 << 20], raw: Data())
        assertFails(ONNXBuilder.model(nodes: [relu], inputs: [("x", [2])], outputs: ["y"], initializers: [big]), ["tensor 'big'", "more than"])
        let neg = ONNXBuilder.floats("neg", dims: [-4], raw: Data())
        assertFails(ONNXBuilder.model(nodes: [relu], inputs: [("x", [2])], outputs: ["y"], initializers: [neg]), ["negative dimension"])
    }

    func testCycleAndUndefinedInput() {
        let a = ONNXBuilder.Node(op: "Add", name: "/a/Add", inputs: ["x", "c"], outputs: ["b"])
        let b = ONNXBuilder.Node(op: "Relu", name: "/b/Relu", inputs: ["b"], outputs: ["c"])
        assertFails(ONNXBuilder.model(nodes: [a, b], inputs: [("x", [2])], outputs: ["c"]), ["cycle", "/a/Add", "/b/Relu"])
        let lost = ONNXBuilder.Node(op: "Relu", name: "/lost/Relu", inputs: ["nowhere"], outputs: ["y"])
        assertFails(ONNXBuilder.model(nodes: [lost], inputs: [("x", [2])], outputs: ["y"]), ["/lost/Relu", "'nowhere'", "defines"])
        assertFails(ONNXBuilder.model(nodes: [relu], inputs: [("x", [2])], outputs: ["z"]), ["graph output 'z'"])
        let twice = ONNXBuilder.Node(op: "Relu", name: "/twice/Relu", inputs: ["x"], outputs: ["y"])
        assertFails(ONNXBuilder.model(nodes: [relu, twice], inputs: [("x", [2])], outputs: ["y"]), ["produced by two nodes"])
    }

    func external(_ location: String, offset: Int = 0, length: Int = 16) -> Data {
        var t = Onnx_TensorProto()
        t.name = "w"; t.dataType = 1; t.dims = [4]
        t.dataLocation = .external
        t.externalData = [("location", location), ("offset", "\(offset)"), ("length", "\(length)")].map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k; e.value = v
            return e
        }
        return ONNXBuilder.model(nodes: [relu], inputs: [("x", [2])], outputs: ["y"], initializers: [t])
    }

    func testExternalData() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-ext-\(getpid())")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("model"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let values: [Float] = [1, 2, 3, 4, 5]
        try values.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("model/weights.bin"))
        try Data("secret".utf8).write(to: dir.appendingPathComponent("outside.bin"))
        let folder = dir.appendingPathComponent("model").path
        // Read lazily: the values come from the file only when asked for, at the offset given.
        let m = try ONNXModel(data: external("weights.bin", offset: 4), file: "hostile.onnx", directory: folder)
        XCTAssertEqual(try m.initializers["w"]!.tensor().data, [2, 3, 4, 5])
        assertFails(external("missing.bin"), directory: folder, ["tensor 'w'", "'missing.bin' is missing"])
        assertFails(external("../outside.bin"), directory: folder, ["'../outside.bin' leaves the model's folder"])
        assertFails(external("/etc/passwd"), directory: folder, ["not relative"])
        assertFails(external("weights.bin", offset: 8), directory: folder, ["runs past the end"])
        assertFails(external("weights.bin", offset: 0, length: 12), directory: folder, ["holds 12 bytes for 4 values"])
        assertFails(external("weights.bin", offset: Int.max - 2), directory: folder, ["runs past the end"])
        // A symbolic link inside the folder that points out of it is refused too.
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("model/link.bin").path,
                                                   withDestinationPath: dir.appendingPathComponent("outside.bin").path)
        assertFails(external("link.bin"), directory: folder, ["leaves the model's folder"])
    }

    func testMissingFileIsNamed() {
        XCTAssertThrowsError(try ONNXModel.load(path: "/nonexistent/model.onnx")) { e in
            XCTAssertEqual("\(e)", "/nonexistent/model.onnx: no such file")
        }
    }
}
