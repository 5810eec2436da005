import Foundation

/// EXIF orientation of JPEG files (tag 0x0112 in the APP1 "Exif" segment), applied after decoding as
/// OpenCV's imread does by default (ultralytics reads images with it), so a phone photo stored sideways
/// comes out upright.
public enum ExifOrientation {
    /// The orientation value 1...8 in a JPEG's EXIF data, or nil when there is none (or it is malformed).
    public static func read(jpeg data: Data) -> Int? {
        let b = [UInt8](data.prefix(256 * 1024))
        guard b.count > 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var pos = 2
        while pos + 4 <= b.count {
            guard b[pos] == 0xFF else { return nil }
            let marker = b[pos + 1]
            if marker == 0xFF { pos += 1; continue }
            if marker == 0xDA || marker == 0xD9 { return nil } // start of scan / end of image
            let length = Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            guard length >= 2 else { return nil }
            let start = pos + 4, end = min(pos + 2 + length, b.count)
            if marker == 0xE1, end - start >= 14, Array(b[start ..< start + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
                return orientation(tiff: Array(b[start + 6 ..< end]))
            }
            pos += 2 + length
        }
        return nil
    }

    static func orientation(tiff t: [UInt8]) -> Int? {
        guard t.count >= 8 else { return nil }
        let little: Bool
        switch (t[0], t[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for i in 0 ..< min(count, 1000) {
            let e = ifd + 2 + 12 * i
            guard let tag = u16(e) else { return nil }
            if tag == 0x0112 {
                guard let type = u16(e + 2), type == 3, let v = u16(e + 8), (1 ... 8).contains(v) else { return nil }
                return v
            }
        }
        return nil
    }

    /// The image turned upright for an EXIF orientation (2...8; 1 and unknown values leave it as is).
    public static func apply(_ orientation: Int, to img: RGBImage) -> RGBImage {
        guard (2 ... 8).contains(orientation) else { return img }
        let w = img.width, h = img.height
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: ow * oh * 3)
        for y in 0 ..< oh {
            for x in 0 ..< ow {
                let sx: Int, sy: Int
                switch orientation {
                case 2: (sx, sy) = (w - 1 - x, y)
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                case 4: (sx, sy) = (x, h - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, h - 1 - x)
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                default: (sx, sy) = (w - 1 - y, x) // 8
                }
                let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                out[d] = img.pixels[s]
                out[d + 1] = img.pixels[s + 1]
                out[d + 2] = img.pixels[s + 2]
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
