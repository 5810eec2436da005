import Foundation
import FuzzSupport
@testable import Tensor

/// libFuzzer entry: a safetensors file's header and every tensor in it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let file = try? SafetensorsFile(data: Data(bytes: data, count: size), name: "fuzz.safetensors") {
        for name in file.names { _ = try? file.tensor(name) }
    }
    return 0
}

@_cdecl("fuzz_safetensors_main")
public func fuzzSafetensorsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzSafetensors)
}
