import Foundation
import FuzzSupport
@testable import ModelZoo

/// libFuzzer entry: the restricted unpickler on arbitrary bytes, resolving torch's persistent ids against
/// storages of a fixed size, as data.pkl inside a torch.save archive would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUnpickler(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let unpickler = Unpickler(data: bytes, file: "fuzz.pkl") { pid in
        try TorchArchive.storage(from: pid, sizes: ["0": 64, "1": 4096, "2": 1 << 20], file: "fuzz.pkl")
    }
    if let value = try? unpickler.load() {
        // What Checkpoint.open does next with a state dict.
        _ = Checkpoint.tensorDict(value)
        _ = value.configValue()
    }
    return 0
}

@_cdecl("fuzz_unpickler_main")
public func fuzzUnpicklerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzUnpickler)
}
