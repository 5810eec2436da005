import Foundation
import FuzzSupport
@testable import ONNX

/// libFuzzer entry: an ONNX model's protobuf, its graph checks, every initialiser's values, and the interpreter's
/// preparation (op lookup and constant folding, which runs the nodes whose inputs are all constants).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let model = try? ONNXModel(data: Data(bytes: data, count: size), file: "fuzz.onnx", directory: nil) {
        for i in model.initializers.values { _ = try? i.tensor() }
        _ = try? ONNXInterpreter(model: model)
    }
    return 0
}

@_cdecl("fuzz_onnx_main")
public func fuzzONNXMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzONNX)
}
