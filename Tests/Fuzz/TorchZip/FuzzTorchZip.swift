import Foundation
import FuzzSupport
@testable import ModelZoo

/// The file each input is written to (the torch reader opens files, not bytes).
let torchZipPath = FileManager.default.temporaryDirectory.appendingPathComponent("detr-tui-fuzz-\(getpid()).pt").path

/// libFuzzer entry: a torch.save file (zip or legacy) opened as a checkpoint, every tensor verified.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorchZip(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // Plain POSIX writes: FileManager.createFile writes atomically (a temporary file and a rename) each time.
    let fd = open(torchZipPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return 0 }
    let written = write(fd, data, size)
    close(fd)
    guard written == size else { return 0 }
    if let ckpt = try? Checkpoint.open(path: torchZipPath) {
        _ = try? ckpt.verify()
        _ = try? ckpt.modelSpec()
    }
    return 0
}

@_cdecl("fuzz_torchzip_main")
public func fuzzTorchZipMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzTorchZip)
}
