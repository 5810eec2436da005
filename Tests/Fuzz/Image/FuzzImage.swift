import Foundation
import FuzzSupport
@testable import ModelZoo

/// libFuzzer entry: PNG, JPEG and PPM/PGM decoding (header info, then pixels with the EXIF orientation).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    if PNGCodec.isPNG(bytes) { _ = try? PNGCodec.info(bytes, file: "fuzz") }
    if JPEGCodec.isJPEG(bytes) { _ = try? JPEGCodec.info(bytes, file: "fuzz") }
    if PPMCodec.isPPM(bytes) { _ = try? PPMCodec.info(bytes, file: "fuzz") }
    _ = try? ImageIO.decode(bytes, file: "fuzz")
    return 0
}

@_cdecl("fuzz_image_main")
public func fuzzImageMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzImage)
}
