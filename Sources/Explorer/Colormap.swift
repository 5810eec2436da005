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

/// Which values a map's colour range spans (`%` cycles them; `render --range`).
public enum RangeMode: String, CaseIterable, Sendable {
    /// The true extremes of the map.
    case minmax
    /// The 1st to the 99th percentile of the map without its outermost ring of cells (where padding leaves
    /// artefacts): outliers saturate instead of squeezing every other value into a few colours.
    case percentile
    /// Zero in the middle, -m..m with m the larger of |p1| and |p99| (ring excluded); for signed maps.
    case symmetric

    /// The next mode in the cycle min/max -> percentile -> symmetric.
    public var next: RangeMode {
        let all = RangeMode.allCases
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }

    /// How the colour bar names the range.
    public var label: String {
        switch self {
        case .minmax: return "min–max"
        case .percentile: return "p1–p99"
        case .symmetric: return "±p99 symmetric"
        }
    }
}

/// How values are mapped to [0, 1].
public struct Normalization: Sendable, Equatable {
    public var lo: Float
    public var hi: Float
    public var signed: Bool
    /// The rule that chose lo and hi.
    public var mode: RangeMode
    /// The map's true extremes (every finite cell, the ring included).
    public var dataMin: Float
    public var dataMax: Float

    public init(lo: Float, hi: Float, signed: Bool, mode: RangeMode = .minmax, dataMin: Float? = nil, dataMax: Float? = nil) {
        self.lo = lo
        self.hi = hi
        self.signed = signed
        self.mode = mode
        self.dataMin = dataMin ?? lo
        self.dataMax = dataMax ?? hi
    }

    /// The value of a map whose values are all equal to 3 significant digits (nil otherwise): such a map is
    /// named, not drawn as one flat colour.
    public var constantValue: Float? {
        guard dataMin.isFinite, dataMax.isFinite else { return nil }
        return Normalization.sameTo3Digits(dataMin, dataMax) ? (dataMin + dataMax) / 2 : nil
    }

    static func sameTo3Digits(_ a: Float, _ b: Float) -> Bool {
        a == b || String(format: "%.3g", a) == String(format: "%.3g", b)
    }

    /// Min/max of the data; symmetric around zero (-m, m) when `signed`; with `clip` (a percentage such as 1)
    /// the range is the clip-th and (100 - clip)-th percentiles instead of the extremes.
    public static func fit(_ values: [Float], signed: Bool, clip: Float = 0) -> Normalization {
        var finite = values.filter { $0.isFinite }
        guard !finite.isEmpty else { return Normalization(lo: 0, hi: 1, signed: signed) }
        let dataMin = finite.min()!, dataMax = finite.max()!
        var lo = dataMin, hi = dataMax
        if clip > 0 { (lo, hi) = percentiles(&finite, clip) }
        if signed {
            let m = max(abs(lo), abs(hi))
            lo = -m; hi = m
        }
        return Normalization(lo: lo, hi: hi, signed: signed, mode: clip > 0 ? .percentile : .minmax, dataMin: dataMin, dataMax: dataMax)
    }

    /// The range of one or more maps drawn with the same colours (a grid's shared range): the true extremes
    /// over every cell, the statistics of `mode` over the cells inside each map's outermost ring (maps of at
    /// least 4x4 cells; smaller ones count whole). Signed maps, and every map in symmetric mode, get a range
    /// symmetric around zero. A percentile range that collapses to one value (a map constant inside its ring)
    /// falls back to the extremes.
    public static func fit(_ maps: [ScalarMap], mode: RangeMode) -> Normalization {
        let signed = mode == .symmetric || maps.contains { $0.signed }
        var all = Float.infinity, top = -Float.infinity
        for m in maps {
            m.values.withUnsafeBufferPointer { v in
                for x in v where x.isFinite {
                    all = min(all, x)
                    top = max(top, x)
                }
            }
        }
        // The finite cells inside each map's ring, written straight into one buffer; past `percentileSample`
        // cells every k-th one (a grid page of large maps), which moves the percentiles by a fraction of a rank.
        func ring(_ m: ScalarMap) -> Int { m.width >= 4 && m.height >= 4 ? 1 : 0 }
        let cells = mode == .minmax ? 0 : maps.reduce(0) { $0 + ($1.width - 2 * ring($1)) * ($1.height - 2 * ring($1)) }
        let step = max(1, (cells + percentileSample - 1) / percentileSample)
        var inner = [Float](unsafeUninitializedCapacity: (cells + step - 1) / step) { buf, count in
            var n = 0, k = 0
            for m in maps where cells > 0 {
                let r = ring(m)
                m.values.withUnsafeBufferPointer { v in
                    for y in r ..< m.height - r {
                        let row = y * m.width
                        for x in r ..< m.width - r {
                            defer { k += 1 }
                            guard k % step == 0, v[row + x].isFinite else { continue }
                            buf[n] = v[row + x]
                            n += 1
                        }
                    }
                }
            }
            count = n
        }
        guard all <= top else { return Normalization(lo: 0, hi: 1, signed: signed, mode: mode, dataMin: 0, dataMax: 0) }
        var lo = all, hi = top
        if mode != .minmax, !inner.isEmpty {
            let (a, b) = percentiles(&inner, 1)
            if b > a { lo = a; hi = b }
        }
        if signed {
            let m = max(abs(lo), abs(hi))
            lo = -m; hi = m
        }
        return Normalization(lo: lo, hi: hi, signed: signed, mode: mode, dataMin: all, dataMax: top)
    }

    /// Up to this many cells the percentiles are exact.
    static let percentileSample = 1 << 18

    /// The clip-th and (100 - clip)-th percentiles (nearest rank of the sorted values), found by selection in
    /// linear time; `values` is reordered.
    static func percentiles(_ values: inout [Float], _ clip: Float) -> (Float, Float) {
        let n = values.count
        let a = Int((Float(n - 1) * clip / 100).rounded())
        let b = max(a, Int((Float(n - 1) * (100 - clip) / 100).rounded()))
        return values.withUnsafeMutableBufferPointer { p in
            let lo = select(p, a, from: 0, to: n - 1)
            let hi = select(p, b, from: a, to: n - 1)
            return (lo, hi)
        }
    }

    /// The k-th smallest of p[from...to] (Hoare's selection with a median-of-three pivot); afterwards the
    /// values before k are not larger and those after it not smaller.
    static func select(_ p: UnsafeMutableBufferPointer<Float>, _ k: Int, from: Int, to: Int) -> Float {
        var l = from, r = to
        while l < r {
            let m = l + (r - l) / 2
            if p[m] < p[l] { p.swapAt(m, l) }
            if p[r] < p[l] { p.swapAt(r, l) }
            if p[r] < p[m] { p.swapAt(r, m) }
            let pivot = p[m]
            var i = l, j = r
            while i <= j {
                while p[i] < pivot { i += 1 }
                while p[j] > pivot { j -= 1 }
                if i <= j { p.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { r = j } else if k >= i { l = i } else { return p[k] }
        }
        return p[k]
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
        let key = StorageKey([rgb.data], [width, height])
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

    static let imageCache = LRUCache<StorageKey, Picture>(capacity: 4)

    /// The image as `image` draws it, in grey (Rec. 709 luminance): what a map is laid over, so that the
    /// colours on screen are the colormap's and not the photo's.
    public static func greyImage(_ rgb: Tensor, width: Int, height: Int) -> Picture {
        let key = StorageKey([rgb.data], [width, height])
        if let hit = greyCache.get(key) { return hit }
        var pic = image(rgb, width: width, height: height)
        pic.rgba.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 4) {
                let l = (54 * UInt32(p[i]) + 183 * UInt32(p[i + 1]) + 19 * UInt32(p[i + 2]) + 128) >> 8
                let v = UInt8(min(255, l))
                p[i] = v; p[i + 1] = v; p[i + 2] = v
            }
        }
        greyCache.put(key, pic)
        return pic
    }

    static let greyCache = LRUCache<StorageKey, Picture>(capacity: 4)

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

/// The colour ramp maps are drawn with on an 8-colour terminal: a few of the eight ANSI colours in the
/// colormap's order, with the shade glyphs ░ ▒ ▓ mixing each neighbouring pair (foreground over background), so
/// that a ramp of n colours shows 4(n-1)+1 levels instead of the two or three colours viridis quantises to.
public struct Ramp8: Sendable, Equatable {
    /// ANSI colour indices (0 black, 1 red, 2 green, 3 yellow, 4 blue, 5 magenta, 6 cyan, 7 white), low to high.
    public var colors: [UInt8]

    static let names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]
    static let shades: [Unicode.Scalar] = [" ", "░", "▒", "▓"]

    /// The ramp standing for a colormap: its hues in order, dark to bright where the colormap is.
    public init(_ colormap: Colormap) {
        switch colormap {
        case .viridis: colors = [0, 4, 6, 2, 3]
        case .inferno: colors = [0, 5, 1, 3, 7]
        case .turbo: colors = [4, 6, 2, 3, 1]
        case .gray: colors = [0, 7]
        case .diverging: colors = [4, 7, 1]
        }
    }

    /// The colours by name, as the colour bar states them ("black-blue-cyan-green-yellow").
    public var name: String { colors.map { Ramp8.names[Int($0)] }.joined(separator: "-") }

    /// Distinct levels the ramp shows.
    public var levels: Int { 4 * (colors.count - 1) + 1 }

    /// The cell for t in [0, 1] (clamped; NaN gives the lowest level).
    public func cell(_ t: Float) -> Cell {
        let u = t.isFinite ? min(max(t, 0), 1) : 0
        let level = Int((u * Float(levels - 1)).rounded())
        let k = min(colors.count - 2, level / 4), shade = level - 4 * k
        if shade == 0 { return Cell(" ", bg: .index(colors[k])) }
        if shade == 4 { return Cell(" ", bg: .index(colors[k + 1])) }
        return Cell(Ramp8.shades[shade], fg: .index(colors[k + 1]), bg: .index(colors[k]))
    }

    /// The map drawn into `cols` x `rows` cells: each cell the mean of the map cells it covers (at least the
    /// one under its centre).
    public func cells(_ map: ScalarMap, norm: Normalization, cols: Int, rows: Int) -> [Cell] {
        guard cols > 0, rows > 0, map.width > 0, map.height > 0 else { return [] }
        let means = Renderer.cellMeans(width: map.width, height: map.height, cols: cols, rows: rows) { x, y in
            let v = map.values[y * map.width + x]
            return v.isFinite ? v : nil
        }
        return means.map { cell($0.isFinite ? norm.apply($0) : .nan) }
    }

    /// A colour bar of `width` cells, low to high.
    public func bar(width: Int) -> [Cell] {
        (0 ..< max(0, width)).map { cell(width > 1 ? Float($0) / Float(width - 1) : 0) }
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

/// A cache key that names tensors by their storage (each buffer's address and length) and other numbers. It keeps
/// the buffers alive as long as it exists, so no other tensor can be given one of those addresses while a cache
/// entry names it: an address alone names whatever the allocator puts there next (a second model's image of the
/// same size was drawn from the first one's cached picture).
public struct StorageKey: Hashable, Sendable {
    public let numbers: [Int]
    private let buffers: [[Float]]

    public init(_ arrays: [[Float]], _ extra: [Int] = []) {
        buffers = arrays
        numbers = arrays.map { a in a.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) } } + arrays.map(\.count) + extra
    }

    public static func == (a: StorageKey, b: StorageKey) -> Bool { a.numbers == b.numbers }
    public func hash(into hasher: inout Hasher) { hasher.combine(numbers) }
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
