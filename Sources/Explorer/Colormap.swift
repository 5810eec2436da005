import Foundation
import Tensor

/// Colormaps, normalisation and the pixel pictures (RGBA buffers) every visual is first drawn as.

/// A colormap: 33 control points sampled from the published tables (matplotlib's viridis, inferno,
/// turbo and RdBu reversed as the diverging map), linearly interpolated into a 256-entry table.
public enum Colormap: String, CaseIterable, Sendable {
    case viridis, inferno, turbo, gray, diverging

    /// The maps `m` cycles through for unsigned data (diverging is chosen automatically for signed maps,
    /// and stays in the cycle).
    public var next: Colormap {
        let all = Colormap.allCases
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }

    static let controlPoints: [Colormap: [UInt32]] = [
        .viridis: [0x440154, 0x470d60, 0x48186a, 0x482374, 0x472d7b, 0x453781, 0x424086, 0x3e4989, 0x3b528b,
                   0x375b8d, 0x33638d, 0x2f6b8e, 0x2c728e, 0x297a8e, 0x26828e, 0x23898e, 0x21918c, 0x1f988b,
                   0x1fa088, 0x22a785, 0x28ae80, 0x32b67a, 0x3fbc73, 0x4ec36b, 0x5ec962, 0x70cf57, 0x84d44b,
                   0x98d83e, 0xaddc30, 0xc2df23, 0xd8e219, 0xece51b, 0xfde725],
        .inferno: [0x000004, 0x040312, 0x0b0724, 0x150b37, 0x210c4a, 0x2f0a5b, 0x3d0965, 0x4a0c6b, 0x57106e,
                   0x64156e, 0x71196e, 0x7d1e6d, 0x8a226a, 0x972766, 0xa32c61, 0xb0315b, 0xbc3754, 0xc73e4c,
                   0xd24644, 0xdb503b, 0xe45a31, 0xeb6628, 0xf1731d, 0xf68013, 0xf98e09, 0xfb9d07, 0xfcac11,
                   0xfbbc21, 0xf9cb35, 0xf5db4c, 0xf2ea69, 0xf3f68a, 0xfcffa4],
        .turbo: [0x30123b, 0x392a73, 0x4040a2, 0x4456c7, 0x466be3, 0x4680f6, 0x4294ff, 0x37a8fa, 0x28bceb,
                 0x1ccdd8, 0x18ddc2, 0x1fe9af, 0x32f298, 0x4ef97d, 0x6dfe62, 0x8bff4b, 0xa4fc3c, 0xb9f635,
                 0xcdec34, 0xdfdf37, 0xeecf3a, 0xf8be39, 0xfdac34, 0xfe962b, 0xfb7e21, 0xf46617, 0xeb500e,
                 0xdf3f08, 0xd02f05, 0xbe2102, 0xa91601, 0x920b01, 0x7a0403],
        .gray: [0x000000, 0xffffff],
        .diverging: [0x053061, 0x0e4179, 0x175290, 0x1f63a8, 0x2a71b2, 0x3480b9, 0x3f8ec0, 0x529dc8, 0x6bacd1,
                     0x84bcd9, 0x9bc9e0, 0xaed3e6, 0xc2ddec, 0xd4e6f1, 0xe0ecf3, 0xecf2f5, 0xf7f6f6, 0xf9eee7,
                     0xfbe5d8, 0xfddcc9, 0xfbccb4, 0xf8bb9e, 0xf5aa89, 0xee9677, 0xe48066, 0xdb6b55, 0xd05548,
                     0xc53e3d, 0xba2832, 0xab162a, 0x930e26, 0x7c0722, 0x67001f],
    ]

    static let tables: [Colormap: [(UInt8, UInt8, UInt8)]] = {
        var out: [Colormap: [(UInt8, UInt8, UInt8)]] = [:]
        for (map, points) in controlPoints {
            var table: [(UInt8, UInt8, UInt8)] = []
            table.reserveCapacity(256)
            let n = points.count - 1
            for i in 0 ..< 256 {
                let t = Double(i) / 255 * Double(n)
                let k = min(Int(t), n - 1)
                let f = t - Double(k)
                func ch(_ c: UInt32, _ shift: UInt32) -> Double { Double((c >> shift) & 0xff) }
                func mix(_ shift: UInt32) -> UInt8 {
                    UInt8((ch(points[k], shift) * (1 - f) + ch(points[k + 1], shift) * f).rounded())
                }
                table.append((mix(16), mix(8), mix(0)))
            }
            out[map] = table
        }
        return out
    }()

    /// The colour for t in [0, 1] (clamped; NaN gives the lowest colour).
    public func color(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let table = Colormap.tables[self]!
        guard t.isFinite else { return table[0] }
        let i = Int((min(max(t, 0), 1) * 255).rounded())
        return table[i]
    }
}

/// How values are mapped to [0, 1].
public struct Normalization: Sendable, Equatable {
    public var lo: Float
    public var hi: Float
    public var signed: Bool

    public init(lo: Float, hi: Float, signed: Bool) {
        self.lo = lo
        self.hi = hi
        self.signed = signed
    }

    /// Min/max of the data; symmetric around zero (-m, m) when `signed`; with `clip` (a percentage such as 1)
    /// the range is the clip-th and (100 - clip)-th percentiles instead of the extremes.
    public static func fit(_ values: [Float], signed: Bool, clip: Float = 0) -> Normalization {
        let finite = values.filter { $0.isFinite }
        guard !finite.isEmpty else { return Normalization(lo: 0, hi: 1, signed: signed) }
        var lo: Float, hi: Float
        if clip > 0 {
            let sorted = finite.sorted()
            let a = Int((Float(sorted.count - 1) * clip / 100).rounded())
            let b = Int((Float(sorted.count - 1) * (100 - clip) / 100).rounded())
            lo = sorted[a]; hi = sorted[max(a, b)]
        } else {
            lo = finite.min()!; hi = finite.max()!
        }
        if signed {
            let m = max(abs(lo), abs(hi))
            lo = -m; hi = m
        }
        return Normalization(lo: lo, hi: hi, signed: signed)
    }

    public func apply(_ v: Float) -> Float {
        let span = hi - lo
        guard span > 0 else { return signed ? 0.5 : 0 }
        return (v - lo) / span
    }
}

/// An RGBA picture, 8 bits per channel, unassociated alpha, row-major.
public struct Picture: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var rgba: [UInt8]

    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        self.width = width
        self.height = height
        let n = max(0, width * height)
        rgba = [UInt8](unsafeUninitializedCapacity: n * 4) { buf, count in
            let word = UInt32(fill.0) | UInt32(fill.1) << 8 | UInt32(fill.2) << 16 | 0xff00_0000
            UnsafeMutableRawBufferPointer(buf).bindMemory(to: UInt32.self).initialize(repeating: word)
            count = n * 4
        }
    }

    public func pixel(_ x: Int, _ y: Int) -> (UInt8, UInt8, UInt8) {
        let i = 4 * (y * width + x)
        return (rgba[i], rgba[i + 1], rgba[i + 2])
    }

    public mutating func setPixel(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 4 * (y * width + x)
        rgba[i] = c.0; rgba[i + 1] = c.1; rgba[i + 2] = c.2; rgba[i + 3] = 255
    }
}

/// A 2-D scalar map to draw: values [height * width], row-major.
public struct ScalarMap: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var values: [Float]
    public var signed: Bool

    public init(width: Int, height: Int, values: [Float], signed: Bool = false) {
        precondition(values.count == width * height, "ScalarMap: \(values.count) values for \(height)x\(width)")
        self.width = width
        self.height = height
        self.values = values
        self.signed = signed
    }

    public func value(x: Int, y: Int) -> Float { values[y * width + x] }

    /// Channel `c` of a [C, H, W] or [1, C, H, W] tensor.
    public static func channel(_ t: Tensor, _ c: Int) -> ScalarMap? {
        guard let (C, H, W) = chw(t), c >= 0, c < C else { return nil }
        let base = c * H * W
        return ScalarMap(width: W, height: H, values: Array(t.data[base ..< base + H * W]))
    }

    /// Mean or max over the channels of a [C, H, W] tensor.
    public static func reduce(_ t: Tensor, max useMax: Bool) -> ScalarMap? {
        guard let (C, H, W) = chw(t), C > 0 else { return nil }
        var out = [Float](repeating: useMax ? -.infinity : 0, count: H * W)
        t.data.withUnsafeBufferPointer { p in
            for c in 0 ..< C {
                let base = c * H * W
                if useMax {
                    for i in 0 ..< H * W where p[base + i] > out[i] { out[i] = p[base + i] }
                } else {
                    for i in 0 ..< H * W { out[i] += p[base + i] }
                }
            }
        }
        if !useMax { for i in out.indices { out[i] /= Float(C) } }
        return ScalarMap(width: W, height: H, values: out)
    }

    /// (C, H, W) of a rank-3 or batch-1 rank-4 tensor; a rank-2 tensor is one channel.
    static func chw(_ t: Tensor) -> (Int, Int, Int)? {
        switch t.rank {
        case 4 where t.shape[0] == 1: return (t.shape[1], t.shape[2], t.shape[3])
        case 3: return (t.shape[0], t.shape[1], t.shape[2])
        case 2: return (1, t.shape[0], t.shape[1])
        default: return nil
        }
    }
}

/// Paints maps and images into pictures with nearest-neighbour scaling, so that each map cell covers a
/// whole block of pixels and overlays can be placed exactly.
public enum Painter {
    /// The map scaled to `width` x `height` pixels through `colormap`.
    public static func paint(_ map: ScalarMap, colormap: Colormap, norm: Normalization, width: Int, height: Int) -> Picture {
        var pic = Picture(width: width, height: height)
        paint(map, colormap: colormap, norm: norm, into: &pic, x: 0, y: 0, width: width, height: height)
        return pic
    }

    /// The map scaled to `width` x `height` pixels through `colormap`, painted into `pic` at (x, y)
    /// (clipped to the picture).
    public static func paint(_ map: ScalarMap, colormap: Colormap, norm: Normalization, into pic: inout Picture,
                             x x0: Int, y y0: Int, width: Int, height: Int) {
        guard map.width > 0, map.height > 0, width > 0, height > 0, x0 >= 0, y0 >= 0 else { return }
        let w = min(width, pic.width - x0), h = min(height, pic.height - y0)
        guard w > 0, h > 0 else { return }
        let table = Colormap.tables[colormap]!
        // The colormap as RGBA words in memory order (little-endian), opaque.
        var words = [UInt32](repeating: 0, count: 256)
        for k in 0 ..< 256 { words[k] = UInt32(table[k].0) | UInt32(table[k].1) << 8 | UInt32(table[k].2) << 16 | 0xff00_0000 }
        var xs = [Int](repeating: 0, count: w)
        for x in 0 ..< w { xs[x] = min(map.width - 1, x * map.width / width) }
        let span = norm.hi - norm.lo
        let inv: Float = span > 0 ? 255 / span : 0
        let flat: Int = norm.signed ? 128 : 0
        let stride = pic.width
        // One colour per map cell of a row, then whole pixel rows copied for repeated map rows.
        var rowColors = [UInt32](repeating: 0, count: map.width)
        pic.rgba.withUnsafeMutableBytes { raw in
            let out = raw.bindMemory(to: UInt32.self).baseAddress!
            map.values.withUnsafeBufferPointer { vals in
                var lastRow = -1
                for y in 0 ..< h {
                    let row = out + (y0 + y) * stride + x0
                    let my = min(map.height - 1, y * map.height / height)
                    if my == lastRow {
                        row.update(from: row - stride, count: w)
                        continue
                    }
                    lastRow = my
                    for mx in 0 ..< map.width {
                        let v = vals[my * map.width + mx]
                        var k = flat
                        if span > 0, v.isFinite { k = Int(((v - norm.lo) * inv).rounded()); k = min(255, max(0, k)) }
                        rowColors[mx] = words[k]
                    }
                    for x in 0 ..< w { row[x] = rowColors[xs[x]] }
                }
            }
        }
    }

    /// An RGB image tensor [1, 3, H, W] or [3, H, W] with values in [0, 1] scaled to `width` x `height`
    /// (nearest neighbour; remembered for the last few sizes, since the same image is drawn at every keypress).
    public static func image(_ rgb: Tensor, width: Int, height: Int) -> Picture {
        let key = rgb.data.withUnsafeBufferPointer { p in
            [Int(bitPattern: p.baseAddress), p.count, width, height]
        }
        if let hit = imageCache.get(key) { return hit }
        var pic = Picture(width: width, height: height)
        guard let (C, H, W) = ScalarMap.chw(rgb), C >= 1, width > 0, height > 0 else { return pic }
        let plane = H * W
        var xs = [Int](repeating: 0, count: width)
        for x in 0 ..< width { xs[x] = min(W - 1, x * W / width) }
        rgb.data.withUnsafeBufferPointer { p in
            pic.rgba.withUnsafeMutableBufferPointer { out in
                for y in 0 ..< height {
                    let sy = min(H - 1, y * H / height)
                    var i = y * width * 4
                    for x in 0 ..< width {
                        let base = sy * W + xs[x]
                        for c in 0 ..< 3 {
                            let v = p[min(c, C - 1) * plane + base]
                            out[i + c] = UInt8(max(0, min(255, v * 255 + 0.5)))
                        }
                        out[i + 3] = 255
                        i += 4
                    }
                }
            }
        }
        imageCache.put(key, pic)
        return pic
    }

    static let imageCache = LRUCache<[Int], Picture>(capacity: 4)

    /// `top` blended over `base` with opacity `alpha` (same sizes), in 8-bit fixed point.
    public static func blend(_ base: Picture, _ top: Picture, alpha: Float) -> Picture {
        guard base.width == top.width, base.height == top.height else { return top }
        var out = base
        let a = UInt32((max(0, min(1, alpha)) * 256).rounded()), b = 256 - a
        out.rgba.withUnsafeMutableBytes { o in
            top.rgba.withUnsafeBytes { t in
                let ow = o.bindMemory(to: UInt32.self), tw = t.bindMemory(to: UInt32.self)
                for i in 0 ..< ow.count {
                    let x = ow[i], y = tw[i]
                    // Red and blue in one word, green in another: each product fits in 16 bits.
                    let rb = (((x & 0x00ff_00ff) &* b &+ (y & 0x00ff_00ff) &* a &+ 0x0080_0080) >> 8) & 0x00ff_00ff
                    let g = (((x & 0x0000_ff00) &* b &+ (y & 0x0000_ff00) &* a &+ 0x0000_8000) >> 8) & 0x0000_ff00
                    ow[i] = rb | g | (x & 0xff00_0000)
                }
            }
        }
        return out
    }

    /// A horizontal colour bar, `width` x `height` pixels.
    public static func colorBar(_ colormap: Colormap, width: Int, height: Int) -> Picture {
        var pic = Picture(width: width, height: height)
        for x in 0 ..< width {
            let c = colormap.color(width > 1 ? Float(x) / Float(width - 1) : 0)
            for y in 0 ..< height { pic.setPixel(x, y, c) }
        }
        return pic
    }
}

/// Distinct colours for attention heads (up to 8, then repeating), bright enough on dark backgrounds.
public enum HeadColors {
    public static let palette: [UInt32] = [0xff5f5f, 0x5fd7ff, 0xffd75f, 0x87ff87, 0xd787ff, 0xffaf5f, 0x5fffd7, 0xff87d7]

    /// The head's colour shaded by a weight in [0, 1] (dark for small weights, full for the largest).
    public static func color(head: Int, shade: Float) -> CellColor {
        let c = palette[((head % palette.count) + palette.count) % palette.count]
        let s = 0.35 + 0.65 * max(0, min(1, shade))
        func ch(_ shift: UInt32) -> UInt8 { UInt8((Float((c >> shift) & 0xff) * s).rounded()) }
        return .rgb(ch(16), ch(8), ch(0))
    }
}

/// A small thread-safe least-recently-used cache (memoises pure rendering steps).
final class LRUCache<Key: Hashable, Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Key, Value)] = []
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func get(_ key: Key) -> Value? {
        lock.lock(); defer { lock.unlock() }
        guard let i = items.firstIndex(where: { $0.0 == key }) else { return nil }
        let item = items.remove(at: i)
        items.append(item)
        return item.1
    }

    func put(_ key: Key, _ value: Value) {
        lock.lock(); defer { lock.unlock() }
        items.removeAll { $0.0 == key }
        items.append((key, value))
        if items.count > capacity { items.removeFirst(items.count - capacity) }
    }
}
