import Foundation
import Tensor

/// Opens images by content: PNG, JPEG or PPM/PGM. Files are only read. Sizes are checked against
/// `ImageLimits` from the header, before any pixel buffer is allocated.
public enum ImageIO {
    /// The largest image file read (256 MB).
    public static let maxFileBytes = 256 << 20

    /// Decodes an image file to 8-bit RGB.
    public static func load(path: String) throws -> RGBImage {
        let data = try readUserFile(path, maxBytes: maxFileBytes)
        return try decode(data, file: path)
    }

    /// Decodes image bytes; `file` names them in errors.
    public static func decode(_ data: Data, file: String) throws -> RGBImage {
        if data.isEmpty { throw FileFormatError(file: file, problem: "the file is empty") }
        if PNGCodec.isPNG(data) { return try PNGCodec.decode(data, file: file) }
        if JPEGCodec.isJPEG(data) { return try JPEGCodec.decode(data, file: file) }
        if PPMCodec.isPPM(data) { return try PPMCodec.decode(data, file: file) }
        throw FileFormatError(file: file, problem: "not a PNG, JPEG or PPM image")
    }

    /// Size and colour type from the header, without decoding pixels.
    public static func info(path: String) throws -> ImageInfo {
        let data = try readUserFile(path, maxBytes: maxFileBytes)
        if data.isEmpty { throw FileFormatError(file: path, problem: "the file is empty") }
        if PNGCodec.isPNG(data) { return try PNGCodec.info(data, file: path) }
        if JPEGCodec.isJPEG(data) { return try JPEGCodec.info(data, file: path) }
        if PPMCodec.isPPM(data) { return try PPMCodec.info(data, file: path) }
        throw FileFormatError(file: path, problem: "not a PNG, JPEG or PPM image")
    }

    /// Whether the file starts like an image this reader knows.
    public static func looksLikeImage(path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let head = h.readData(ofLength: 8)
        return PNGCodec.isPNG(head) || JPEGCodec.isJPEG(head) || PPMCodec.isPPM(head)
    }
}
