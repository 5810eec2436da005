import Foundation
import FuzzSupport
@testable import ModelZoo
@testable import ONNX
import Tensor

/// libFuzzer entry: an ONNX model's protobuf, its graph checks, every initialiser's values, the interpreter's
/// preparation (op lookup and constant folding, which runs the nodes whose inputs are all constants), and what
/// opening it in the explorer does before any image: the detector's reading of the graph (inputs, metadata, rows),
/// static shape inference, node FLOPs and the grid trace of the layer table, at two input sizes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let model = try? ONNXModel(data: Data(bytes: data, count: size), file: "fuzz.onnx", directory: nil) else { return 0 }
    for i in model.initializers.values { _ = try? i.tensor() }
    guard (try? ONNXInterpreter(model: model)) != nil,
          let detector = try? ONNXDetectionModel(model: model, path: "fuzz.onnx") else { return 0 }
    for side in [32, 64] { _ = detector.layerTable(inputSize: GridSize(side, side + 32)) }
    return 0
}

@_cdecl("fuzz_onnx_main")
public func fuzzONNXMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzONNX)
}
