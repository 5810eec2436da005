import CImage
import Foundation
import Tensor

/// PNG through libpng's simplified `png_image` API, which keeps libpng's setjmp/longjmp error handling
/// inside C and reports failures as return codes with a message, so Swift frames are never jumped over.
///
/// Decoding gives 8-bit RGB: grayscale is replicated, palettes expanded, alpha dropped (as cv2.imread with
/// IMREAD_COLOR does: no compositing), 16-bit samples scaled to 8 bits. 16-bit files without colour-space
/// chunks are read as sRGB-encoded (PNG_IMAGE_FLAG_16BIT_sRGB), so their values are rescaled, not gamma
/// converted. Differences from OpenCV: libpng rounds 16 -> 8 bits (v * 255 / 65535) where OpenCV shifts (v >> 8),
/// so values can differ by 1; a file with a non-sRGB gAMA chunk is converted to sRGB by libpng, OpenCV ignores it.
public enum PNGCodec {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    static let formatRGBA: UInt32 = 3 // PNG_FORMAT_RGBA = COLOR | ALPHA
    static let formatRGB: UInt32 = 2
    static let flag16BitSRGB: UInt32 = 0x04

    static func isPNG(_ data: Data) -> Bool { data.starts(with: signature) }

    /// Header facts from IHDR (no decoding).
    public static func info(_ data: Data, file: String) throws -> ImageInfo {
        let b = [UInt8](data.prefix(33))
        guard b.count >= 33, b.starts(with: signature), Array(b[12 ..< 16]) == Array("IHDR".utf8) else {
            throw FileFormatError(file: file, problem: "not a PNG file, or its header is truncated")
        }
        func be32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        let depth = Int(b[24])
        let colour: String
        switch b[25] {
        case 0: colour = "gray"
        case 2: colour = "RGB"
        case 3: colour = "palette"
        case 4: colour = "gray+alpha"
        case 6: colour = "RGBA"
        default: throw FileFormatError(file: file, problem: "PNG colour type \(b[25]) is invalid")
        }
        return ImageInfo(format: "PNG", width: be32(16), height: be32(20), colorType: colour, bitDepth: depth)
    }

    public static func decode(_ data: Data, file: String) throws -> RGBImage {
        let header = try info(data, file: file)
        try ImageLimits.check(width: header.width, height: header.height, file: file)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { raw in
            png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count)
        }
        guard begun != 0 else {
            let message = messageOf(&image)
            png_image_free(&image)
            throw FileFormatError(file: file, problem: "cannot read the PNG header (\(message))")
        }
        let w = Int(image.width), h = Int(image.height)
        do {
            try ImageLimits.check(width: w, height: h, file: file)
        } catch {
            png_image_free(&image)
            throw error
        }
        if header.bitDepth == 16 { image.flags |= flag16BitSRGB }
        image.format = formatRGBA
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        let ok = data.withUnsafeBytes { _ in
            rgba.withUnsafeMutableBytes { dst in
                png_image_finish_read(&image, nil, dst.baseAddress, 0, nil)
            }
        }
        guard ok != 0 else {
            let message = messageOf(&image)
            png_image_free(&image)
            throw FileFormatError(file: file, problem: "cannot decode the PNG (\(message); truncated or corrupt?)")
        }
        png_image_free(&image)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0 ..< w * h {
            rgb[3 * i] = rgba[4 * i]
            rgb[3 * i + 1] = rgba[4 * i + 1]
            rgb[3 * i + 2] = rgba[4 * i + 2]
        }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    /// Encodes 8-bit RGBA (width * height * 4 bytes) as PNG data.
    public static func encode(rgba: [UInt8], width: Int, height: Int) throws -> Data {
        try encode(pixels: rgba, width: width, height: height, format: formatRGBA, channels: 4)
    }

    /// Encodes 8-bit RGB as PNG data.
    public static func encode(_ image: RGBImage) throws -> Data {
        try encode(pixels: image.pixels, width: image.width, height: image.height, format: formatRGB, channels: 3)
    }

    static func encode(pixels: [UInt8], width: Int, height: Int, format: UInt32, channels: Int) throws -> Data {
        precondition(pixels.count == width * height * channels, "PNG encode: \(pixels.count) bytes for \(width)x\(height)x\(channels)")
        guard width > 0, height > 0 else { throw FileFormatError(file: "<png>", problem: "cannot encode an empty image") }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        var size: png_alloc_size_t = 0
        let stride = Int32(width * channels)
        var ok = pixels.withUnsafeBytes { src in
            png_image_write_to_memory(&image, nil, &size, 0, src.baseAddress, stride, nil)
        }
        guard ok != 0, size > 0 else {
            let m = messageOf(&image)
            png_image_free(&image)
            throw FileFormatError(file: "<png>", problem: "PNG encoding failed (\(m))")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        ok = pixels.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, stride, nil)
            }
        }
        let m = messageOf(&image)
        png_image_free(&image)
        guard ok != 0 else { throw FileFormatError(file: "<png>", problem: "PNG encoding failed (\(m))") }
        return Data(out.prefix(Int(size)))
    }

    /// Writes RGBA pixels to a PNG file (a new file or one the caller chose to replace).
    public static func write(rgba: [UInt8], width: Int, height: Int, to path: String) throws {
        let data = try encode(rgba: rgba, width: width, height: height)
        try writeUserFile(data, to: path, what: "PNG")
    }

    private static func messageOf(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let s = String(decoding: bytes, as: UTF8.self)
            return s.isEmpty ? "unknown libpng error" : s
        }
    }
}
