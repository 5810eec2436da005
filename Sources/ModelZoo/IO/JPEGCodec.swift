import CImage
import Foundation
import Tensor

/// JPEG through libjpeg-turbo's TurboJPEG API. TurboJPEG catches libjpeg's fatal errors with its own
/// setjmp inside C and returns -1 with a message, so no longjmp ever crosses Swift code (libjpeg's plain API
/// would need an error_exit that never returns).
///
/// Decoding uses the library defaults (accurate integer IDCT, fancy upsampling), as OpenCV's imread does,
/// so pixels match cv2 when both use libjpeg-turbo; the EXIF orientation is applied as imread applies it
/// (`info` reports the stored size). A JPEG that ends early is an error (libjpeg would only
/// warn and pad with grey); other warnings (e.g. extraneous bytes) are tolerated.
public enum JPEGCodec {
    static func isJPEG(_ data: Data) -> Bool { data.starts(with: [0xFF, 0xD8, 0xFF]) }

    public static func info(_ data: Data, file: String) throws -> ImageInfo {
        guard let handle = tjInitDecompress() else { throw FileFormatError(file: file, problem: "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        var w: Int32 = 0, h: Int32 = 0, sub: Int32 = 0, cs: Int32 = 0
        let r = data.withUnsafeBytes { raw in
            tjDecompressHeader3(handle, raw.bindMemory(to: UInt8.self).baseAddress, UInt(raw.count), &w, &h, &sub, &cs)
        }
        guard r == 0 else {
            throw FileFormatError(file: file, problem: "cannot read the JPEG header (\(message(handle)))")
        }
        let colour: String
        switch cs {
        case Int32(TJCS_GRAY.rawValue): colour = "gray"
        case Int32(TJCS_CMYK.rawValue): colour = "CMYK"
        case Int32(TJCS_YCCK.rawValue): colour = "YCCK"
        case Int32(TJCS_RGB.rawValue): colour = "RGB"
        default: colour = "YCbCr"
        }
        return ImageInfo(format: "JPEG", width: Int(w), height: Int(h), colorType: colour, bitDepth: 8)
    }

    public static func decode(_ data: Data, file: String) throws -> RGBImage {
        let header = try info(data, file: file)
        try ImageLimits.check(width: header.width, height: header.height, file: file)
        if header.colorType == "CMYK" || header.colorType == "YCCK" {
            throw FileFormatError(file: file, problem: "a \(header.colorType) JPEG; convert it to RGB first")
        }
        guard let handle = tjInitDecompress() else { throw FileFormatError(file: file, problem: "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        let w = header.width, h = header.height
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        let r = data.withUnsafeBytes { raw in
            rgb.withUnsafeMutableBytes { dst in
                tjDecompress2(handle, raw.bindMemory(to: UInt8.self).baseAddress, UInt(raw.count),
                              dst.bindMemory(to: UInt8.self).baseAddress, Int32(w), 0, Int32(h), Int32(TJPF_RGB.rawValue), 0)
            }
        }
        if r != 0 {
            let m = message(handle)
            let fatal = tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue)
            if fatal || m.localizedCaseInsensitiveContains("premature end") {
                throw FileFormatError(file: file, problem: "cannot decode the JPEG (\(m)\(fatal ? "" : "; the file is truncated"))")
            }
        }
        let decoded = RGBImage(width: w, height: h, pixels: rgb)
        if let o = ExifOrientation.read(jpeg: data) { return ExifOrientation.apply(o, to: decoded) }
        return decoded
    }

    private static func message(_ handle: tjhandle) -> String {
        guard let c = tjGetErrorStr2(handle) else { return "unknown libjpeg error" }
        return String(cString: c)
    }
}
