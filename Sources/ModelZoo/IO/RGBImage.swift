import Foundation
import Tensor

/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// width * height * 3 bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A uniform image.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8)) {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0 ..< width * height {
            p[3 * i] = fill.0
            p[3 * i + 1] = fill.1
            p[3 * i + 2] = fill.2
        }
        self.init(width: width, height: height, pixels: p)
    }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// RGBA bytes with opaque alpha (for PNG export and terminal rendering).
    public var rgba: [UInt8] {
        var out = [UInt8](repeating: 255, count: width * height * 4)
        for i in 0 ..< width * height {
            out[4 * i] = pixels[3 * i]
            out[4 * i + 1] = pixels[3 * i + 1]
            out[4 * i + 2] = pixels[3 * i + 2]
        }
        return out
    }
}

/// What an image file holds, read from its header.
public struct ImageInfo: Sendable, Equatable, Codable {
    /// PNG, JPEG or PPM.
    public var format: String
    public var width: Int
    public var height: Int
    /// gray, gray+alpha, RGB, RGBA, palette, palette+alpha (PNG transparency), CMYK, YCbCr (JPEG colour).
    public var colorType: String
    /// Bits per channel (8 or 16; 1, 2, 4 for low-depth PNGs).
    public var bitDepth: Int
}

/// Limits applied before any pixel buffer is allocated.
public enum ImageLimits {
    /// The largest side accepted.
    public static let maxSide = 32_768
    /// The most pixels accepted (e.g. 8192 x 8192).
    public static let maxPixels = 8192 * 8192

    /// Throws when a decoder would refuse an image of this size.
    public static func check(width: Int, height: Int, file: String) throws {
        guard width > 0, height > 0 else {
            throw FileFormatError(file: file, problem: "the image header gives an empty size \(width)x\(height)")
        }
        guard width <= maxSide, height <= maxSide, width * height <= maxPixels else {
            throw FileFormatError(file: file, problem: "the image claims \(width)x\(height) pixels, more than the \(maxPixels)-pixel limit (refused before decoding)")
        }
    }
}
