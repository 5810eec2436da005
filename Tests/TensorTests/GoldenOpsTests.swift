import Foundation
import XCTest
@testable import Tensor

/// Every op against PyTorch: Tests/Fixtures/ops/*.safetensors, written by scripts/fixtures/gen_ops.py.
final class GoldenOpsTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/ops").standardized

    struct Case {
        let name: String
        let op: String
        let args: [String: Any]
        let tolerance: String
        let inputs: [Tensor]
        let outputs: [Tensor]

        func int(_ k: String) -> Int { (args[k] as! NSNumber).intValue }
        func float(_ k: String) -> Float { (args[k] as! NSNumber).floatValue }
        func bool(_ k: String) -> Bool { (args[k] as! NSNumber).boolValue }
        func ints(_ k: String) -> [Int] { (args[k] as! [NSNumber]).map(\.intValue) }
        func pair(_ k: String) -> (Int, Int) { let v = ints(k); return (v[0], v[1]) }
    }

    func loadCases(_ family: String) throws -> [Case] {
        let path = Self.directory.appendingPathComponent("\(family).safetensors").path
        let file = try SafetensorsFile(path: path)
        let json = try XCTUnwrap(file.metadata["cases"], "\(path): no `cases` metadata")
        let table = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [String: Any]])
        return try table.keys.sorted().map { name in
            let spec = table[name]!
            var ins: [Tensor] = [], outs: [Tensor] = []
            while file.contains("\(name).in\(ins.count)") { ins.append(try file.tensor("\(name).in\(ins.count)")) }
            while file.contains("\(name).out\(outs.count)") { outs.append(try file.tensor("\(name).out\(outs.count)")) }
            return Case(name: name, op: spec["op"] as! String, args: spec["args"] as? [String: Any] ?? [:],
                        tolerance: spec["tol"] as! String, inputs: ins, outputs: outs)
        }
    }

    /// Runs the case's op in Swift.
    func run(_ c: Case) -> [Tensor] {
        let x = c.inputs
        switch c.op {
        case "add": return [x[0] + x[1]]
        case "sub": return [x[0] - x[1]]
        case "mul": return [x[0] * x[1]]
        case "div": return [x[0] / x[1]]
        case "maximum": return [maximum(x[0], x[1])]
        case "minimum": return [minimum(x[0], x[1])]
        case "addScalar": return [x[0] + c.float("scalar")]
        case "subScalar": return [x[0] - c.float("scalar")]
        case "mulScalar": return [x[0] * c.float("scalar")]
        case "divScalar": return [x[0] / c.float("scalar")]
        case "scalarSub": return [c.float("scalar") - x[0]]
        case "scalarDiv": return [c.float("scalar") / x[0]]
        case "neg": return [-x[0]]
        case "clamp": return [clamp(x[0], min: c.float("min"), max: c.float("max"))]
        case "relu": return [relu(x[0])]
        case "silu": return [silu(x[0])]
        case "gelu": return [gelu(x[0])]
        case "sigmoid": return [sigmoid(x[0])]
        case "hardswish": return [hardswish(x[0])]
        case "tanh": return [tanh(x[0])]
        case "exp": return [exp(x[0])]
        case "log": return [log(x[0])]
        case "abs": return [abs(x[0])]
        case "sqrt": return [sqrt(x[0])]
        case "leakyRelu": return [leakyRelu(x[0], slope: c.float("slope"))]
        case "inverseSigmoid": return [inverseSigmoid(x[0], eps: c.float("eps"))]
        case "sum": return [sum(x[0], axis: c.int("axis"), keepDims: c.bool("keepDims"))]
        case "mean": return [mean(x[0], axis: c.int("axis"), keepDims: c.bool("keepDims"))]
        case "max": return [max(x[0], axis: c.int("axis"), keepDims: c.bool("keepDims"))]
        case "min": return [min(x[0], axis: c.int("axis"), keepDims: c.bool("keepDims"))]
        case "argmax": return [argmax(x[0], axis: c.int("axis"))]
        case "softmax": return [softmax(x[0], axis: c.int("axis"))]
        case "concat": return [concat(x, axis: c.int("axis"))]
        case "split": return split(x[0], sizes: c.ints("sizes"), axis: c.int("axis"))
        case "chunk": return chunk(x[0], c.int("parts"), axis: c.int("axis"))
        case "slice": return [slice(x[0], axis: c.int("axis"), range: c.int("lower") ..< c.int("upper"))]
        case "permute": return [permute(x[0], c.ints("dims"))]
        case "transpose": return [transpose(x[0], c.int("a"), c.int("b"))]
        case "topK":
            let r = topK(x[0], k: c.int("k"), axis: c.int("axis"), largest: c.bool("largest"))
            return [r.values, r.indices]
        case "gather": return [gather(x[0], axis: c.int("axis"), indices: x[1])]
        case "indexSelect": return [indexSelect(x[0], axis: c.int("axis"), indices: c.ints("indices"))]
        case "conv2d":
            return [conv2d(x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil, stride: c.pair("stride"),
                           padding: c.pair("padding"), dilation: c.pair("dilation"), groups: c.int("groups"))]
        case "batchNorm":
            return [batchNorm(x[0], gamma: x[1], beta: x[2], mean: x[3], variance: x[4], eps: c.float("eps"))]
        case "foldBatchNorm":
            let hasBias = x.count == 7
            let bn = Array(x[(hasBias ? 3 : 2)...])
            let f = foldBatchNorm(weight: x[1], bias: hasBias ? x[2] : nil, gamma: bn[0], beta: bn[1], mean: bn[2],
                                  variance: bn[3], eps: c.float("eps"))
            return [conv2d(x[0], weight: f.weight, bias: f.bias, padding: c.int("padding"))]
        case "layerNorm":
            return [layerNorm(x[0], weight: x.count > 1 ? x[1] : nil, bias: x.count > 2 ? x[2] : nil, eps: c.float("eps"))]
        case "groupNorm":
            return [groupNorm(x[0], groups: c.int("groups"), weight: x[1], bias: x[2], eps: c.float("eps"))]
        case "maxPool2d":
            return [maxPool2d(x[0], kernel: c.int("kernel"), stride: c.int("stride"), padding: c.int("padding"),
                              ceilMode: c.bool("ceilMode"))]
        case "avgPool2d":
            return [avgPool2d(x[0], kernel: c.int("kernel"), stride: c.int("stride"), padding: c.int("padding"),
                              ceilMode: c.bool("ceilMode"), countIncludePad: c.bool("countIncludePad"))]
        case "adaptiveAvgPool2d": return [adaptiveAvgPool2d(x[0], outputSize: c.pair("outputSize"))]
        case "upsampleNearest": return [upsampleNearest(x[0], scale: c.int("scale"))]
        case "linear": return [linear(x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil)]
        case "matmul": return [matmul(x[0], x[1], transposeA: c.bool("transposeA"), transposeB: c.bool("transposeB"))]
        case "gridSample": return [gridSample(x[0], grid: x[1])]
        case "unfold":
            return [unfold(x[0], kernel: c.int("kernel"), dilation: c.int("dilation"), padding: c.int("padding"),
                           stride: c.int("stride"))]
        case "msda":
            let shapes = (c.args["levelShapes"] as! [[NSNumber]]).map { ($0[0].intValue, $0[1].intValue) }
            return [multiScaleDeformableAttention(value: x[0], levelShapes: shapes, samplingLocations: x[1], attentionWeights: x[2]),
                    multiScaleDeformableAttentionReference(value: x[0], levelShapes: shapes, samplingLocations: x[1],
                                                           attentionWeights: x[2])]
        default:
            XCTFail("unknown op \(c.op) in case \(c.name)")
            return []
        }
    }

    func checkFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try loadCases(family)
        XCTAssertFalse(cases.isEmpty, "\(family): no cases", file: file, line: line)
        for c in cases {
            var got = run(c)
            // msda returns the fast and the reference path; both must match the one expected output.
            var expected = c.outputs
            if c.op == "msda" { expected = [expected[0], expected[0]] }
            XCTAssertEqual(got.count, expected.count, "\(family)/\(c.name): \(got.count) outputs, expected \(expected.count)",
                           file: file, line: line)
            got = Array(got.prefix(expected.count))
            for (i, (g, e)) in zip(got, expected).enumerated() {
                if let problem = compare(g, e, tolerance: c.tolerance) {
                    XCTFail("\(family)/\(c.name) output \(i) (\(c.op)): \(problem)", file: file, line: line)
                }
            }
        }
    }

    /// nil when `got` matches `expected`, otherwise where and by how much it does not.
    func compare(_ got: Tensor, _ expected: Tensor, tolerance: String) -> String? {
        guard got.shape == expected.shape else { return "shape \(got.shape), expected \(expected.shape)" }
        let scale = expected.maxAbs
        var worst = -1, worstExcess: Float = 0
        for i in 0 ..< expected.count {
            let g = got.data[i], e = expected.data[i]
            if g == e || (g.isNaN && e.isNaN) { continue }
            let allowed: Float = tolerance == "elementwise" ? 1e-5 * Swift.abs(e) + 1e-7 : 1e-4 * scale + 1e-7
            let err = Swift.abs(g - e)
            if !(err <= allowed) && (worst < 0 || err / allowed > worstExcess) { worst = i; worstExcess = err / allowed }
        }
        if worst < 0 { return nil }
        var index: [Int] = [], rest = worst
        for s in expected.strides { index.append(rest / Swift.max(s, 1)); rest %= Swift.max(s, 1) }
        return "at \(index) got \(got.data[worst]), expected \(expected.data[worst]) (\(worstExcess)x the \(tolerance) tolerance)"
    }

    func testElementwise() throws { try checkFamily("elementwise") }
    func testReduce() throws { try checkFamily("reduce") }
    func testShape() throws { try checkFamily("shape") }
    func testConv() throws { try checkFamily("conv") }
    func testNorm() throws { try checkFamily("norm") }
    func testPool() throws { try checkFamily("pool") }
    func testGemm() throws { try checkFamily("gemm") }
    func testSampling() throws { try checkFamily("sampling") }
}
