import Foundation
import Tensor

/// Netpbm images, read in Swift: P6 (binary RGB), P3 (ASCII RGB), P5 / P2 (gray), maxval up to 65535.
/// Samples are rescaled to 0...255 with rounding.
public enum PPMCodec {
    static func isPPM(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == UInt8(ascii: "P") && [UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "5"), UInt8(ascii: "6")].contains(data[data.startIndex + 1])
    }

    struct Header { var magic: UInt8; var width: Int; var height: Int; var maxval: Int; var dataStart: Int }

    static func header(_ b: [UInt8], file: String) throws -> Header {
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: file, problem: p) }
        guard b.count >= 2, b[0] == UInt8(ascii: "P") else { throw fail("not a PPM/PGM file") }
        var pos = 2
        func skipSpace() {
            while pos < b.count {
                if b[pos] == UInt8(ascii: "#") {
                    while pos < b.count, b[pos] != 0x0A { pos += 1 }
                } else if b[pos] == 0x20 || (0x09 ... 0x0D).contains(b[pos]) {
                    pos += 1
                } else { break }
            }
        }
        func number(_ what: String) throws -> Int {
            skipSpace()
            var v = 0, digits = 0
            while pos < b.count, (0x30 ... 0x39).contains(b[pos]) {
                v = v * 10 + Int(b[pos] - 0x30)
                digits += 1
                pos += 1
                guard v < 1 << 31 else { throw fail("the \(what) in the header is absurdly large") }
            }
            guard digits > 0 else { throw fail("the header lacks its \(what) (truncated or not a PPM)") }
            return v
        }
        let w = try number("width"), h = try number("height"), maxval = try number("maxval")
        guard (1 ... 65535).contains(maxval) else { throw fail("maxval \(maxval) is outside 1...65535") }
        guard pos < b.count else { throw fail("the file ends after its header") }
        pos += 1 // the single whitespace byte before binary data
        return Header(magic: b[1], width: w, height: h, maxval: maxval, dataStart: pos)
    }

    public static func info(_ data: Data, file: String) throws -> ImageInfo {
        let h = try header([UInt8](data.prefix(4096)), file: file)
        let gray = h.magic == UInt8(ascii: "2") || h.magic == UInt8(ascii: "5")
        return ImageInfo(format: gray ? "PGM" : "PPM", width: h.width, height: h.height, colorType: gray ? "gray" : "RGB",
                         bitDepth: h.maxval > 255 ? 16 : 8)
    }

    public static func decode(_ data: Data, file: String) throws -> RGBImage {
        func fail(_ p: String) -> FileFormatError { FileFormatError(file: file, problem: p) }
        let b = [UInt8](data)
        let h = try header(b, file: file)
        try ImageLimits.check(width: h.width, height: h.height, file: file)
        let channels = (h.magic == UInt8(ascii: "3") || h.magic == UInt8(ascii: "6")) ? 3 : 1
        let n = h.width * h.height * channels
        var samples = [Int](repeating: 0, count: n)
        if h.magic == UInt8(ascii: "6") || h.magic == UInt8(ascii: "5") {
            let bytesPer = h.maxval > 255 ? 2 : 1
            guard h.dataStart + n * bytesPer <= b.count else {
                throw fail("pixel data is truncated: \(b.count - h.dataStart) bytes for \(h.width)x\(h.height) needing \(n * bytesPer)")
            }
            for i in 0 ..< n {
                samples[i] = bytesPer == 1 ? Int(b[h.dataStart + i]) : Int(b[h.dataStart + 2 * i]) << 8 | Int(b[h.dataStart + 2 * i + 1])
            }
        } else {
            var pos = h.dataStart - 1
            for i in 0 ..< n {
                while pos < b.count, b[pos] == 0x20 || (0x09 ... 0x0D).contains(b[pos]) || b[pos] == UInt8(ascii: "#") {
                    if b[pos] == UInt8(ascii: "#") { while pos < b.count, b[pos] != 0x0A { pos += 1 } } else { pos += 1 }
                }
                var v = 0, digits = 0
                while pos < b.count, (0x30 ... 0x39).contains(b[pos]) {
                    v = min(v * 10 + Int(b[pos] - 0x30), 1 << 20)
                    digits += 1
                    pos += 1
                }
                guard digits > 0 else { throw fail("pixel data is truncated or not numeric at sample \(i) of \(n)") }
                samples[i] = v
            }
        }
        var rgb = [UInt8](repeating: 0, count: h.width * h.height * 3)
        let m = h.maxval
        for p in 0 ..< h.width * h.height {
            for c in 0 ..< 3 {
                let s = min(samples[p * channels + (channels == 3 ? c : 0)], m)
                rgb[3 * p + c] = UInt8((s * 255 + m / 2) / m)
            }
        }
        return RGBImage(width: h.width, height: h.height, pixels: rgb)
    }

    /// P6 bytes of an image (for tests and quick exports).
    public static func encode(_ image: RGBImage) -> Data {
        var d = Data("P6\n\(image.width) \(image.height)\n255\n".utf8)
        d.append(contentsOf: image.pixels)
        return d
    }
}
