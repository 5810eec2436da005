import Foundation
import ModelZoo
import Tensor

/// Two models' maps of an aligned pair of layers side by side (`render --compare B`): A's and B's map (a channel,
/// the mean or the max of the channels) in one shared colour range, and their difference B − A in the diverging
/// colormap, symmetric around zero.

public struct MapComparison: Sendable {
    public var a: ScalarMap
    public var b: ScalarMap
    /// B − A, cell by cell (signed).
    public var difference: ScalarMap
    /// The one range both maps are drawn with.
    public var shared: Normalization
    /// The difference's range, symmetric around zero.
    public var differenceRange: Normalization
    /// Titles: model, layer, path.
    public var titleA: String
    public var titleB: String
    /// "channel 3", "mean of channels" or "max of channels".
    public var what: String

    /// The largest |B − A|.
    public var maxAbsDifference: Float { difference.values.map(abs).max() ?? 0 }

    /// The cosine of the two maps as vectors (1 when both are zero).
    public var cosine: Float {
        var dot: Double = 0, na: Double = 0, nb: Double = 0
        for (x, y) in zip(a.values, b.values) { dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
        if na == 0 && nb == 0 { return 1 }
        guard na > 0, nb > 0 else { return 0 }
        return Float(dot / (na.squareRoot() * nb.squareRoot()))
    }
}

extension Headless {
    /// The layer of B aligned with layer `layerA` of A (by `LayerDiff.align` of the two layer tables), as B's
    /// layer-table index; an error naming what A's row became when it has no counterpart.
    public static func alignedLayer(_ layerA: Int, a: OpenedModel, b: OpenedModel) throws -> Int {
        guard let pos = a.rows.firstIndex(where: { $0.index == layerA }) else {
            throw ExportError("layer \(layerA): \(a.name) has layers \(a.rows.first?.index ?? 0)-\(a.rows.last?.index ?? 0)")
        }
        let aligned = LayerDiff.align(a.rows, b.rows)
        guard let row = aligned.first(where: { $0.a == pos }), let j = row.b else {
            throw ExportError("layer \(layerA) of \(a.name) (\(a.rows[pos].module)) has no counterpart in \(b.name): it is removed there")
        }
        return b.rows[j].index
    }

    /// The comparison of two states each showing a feature map (their channel mode and channel are A's).
    public static func comparison(_ a: State, _ b: State) throws -> MapComparison {
        guard case .featureMap(let ta, let sa) = currentVisualKind(a) else { throw ExportError("\(a.opened?.name ?? "A"): the layer shows no feature map") }
        guard case .featureMap(let tb, let sb) = currentVisualKind(b) else { throw ExportError("\(b.opened?.name ?? "B"): the aligned layer shows no feature map") }
        var sta = a, stb = b
        if sta.channelMode == .grid { sta.channelMode = .single }
        stb.channelMode = sta.channelMode
        stb.channel = sta.channel
        guard let ma = featureMapScalar(sta, ta, signed: sa), let mb = featureMapScalar(stb, tb, signed: sb) else {
            let cb = ScalarMap.chw(tb)?.0 ?? 0
            throw ExportError("channel \(sta.channel): \(b.opened?.name ?? "B")'s aligned layer has \(cb) channels")
        }
        guard ma.width == mb.width, ma.height == mb.height else {
            throw ExportError("the maps differ in size (\(ma.height)x\(ma.width) and \(mb.height)x\(mb.width)): compare at the same input size")
        }
        let diff = ScalarMap(width: ma.width, height: ma.height, values: zip(mb.values, ma.values).map { $0 - $1 }, signed: true)
        let what: String
        switch sta.channelMode {
        case .mean: what = "mean of channels"
        case .max: what = "max of channels"
        default: what = "channel \(sta.channel)"
        }
        func title(_ s: State) -> String {
            let rows = s.layerRows
            let row = s.layer < rows.count ? "layer \(rows[s.layer].index) \(shortModule(rows[s.layer].module))" : "layer"
            return "\(s.opened?.name ?? "") · \(row) · \(currentStep(s)?.path ?? "")"
        }
        return MapComparison(a: ma, b: mb, difference: diff, shared: Normalization.fit([ma, mb], mode: sta.rangeMode),
                             differenceRange: Normalization.fit([diff], mode: sta.rangeMode), titleA: title(sta), titleB: title(stb), what: what)
    }

    /// The comparison as text cells `width` columns wide: A, B (one colour bar for both) and B − A, stacked.
    public static func comparisonScreen(_ c: MapComparison, state: State, width: Int) -> Screen {
        let w = max(20, width)
        let mapRows = max(3, min(40, Int((Double(w) * Double(c.a.height) / Double(c.a.width) / 2).rounded())))
        // A's title and map, B's title and map, their one colour bar and range, a blank row, the difference's.
        let yB = mapRows + 1, bar = yB + mapRows + 1, yD = bar + 3
        var screen = Screen(width: w, height: yD + mapRows + 3)
        var st = state
        st.keyHints = false
        st.showCursor = false
        st.overlay = false
        for (y, title, map) in [(0, "A: " + c.titleA, c.a), (yB, "B: " + c.titleB, c.b)] {
            screen.text(0, y, clip(title + " · " + c.what, w), st.theme.style(.header), maxWidth: w)
            let geo = MapGeometry.fit(width: map.width, height: map.height, in: Rect(x: 0, y: y + 1, width: w, height: mapRows))
            drawMap(st, map, geo: geo, into: &screen, barRow: bar, x: 0, width: w, norm: c.shared)
        }
        screen.text(0, yD, clip("B − A · " + c.what + " · max |B − A| " + fmt(c.maxAbsDifference) + String(format: " · cosine %.4f", c.cosine), w),
                    st.theme.style(.header), maxWidth: w)
        st.colormap = .diverging
        let geo = MapGeometry.fit(width: c.difference.width, height: c.difference.height, in: Rect(x: 0, y: yD + 1, width: w, height: mapRows))
        drawMap(st, c.difference, geo: geo, into: &screen, barRow: yD + mapRows + 1, x: 0, width: w, norm: c.differenceRange)
        return screen
    }

    /// A, B and B − A side by side, each at a whole number of pixels per map cell, 8 pixels apart.
    public static func comparisonPicture(_ c: MapComparison, colormap: Colormap) -> Picture {
        let scale = pngScale(width: c.a.width * 3, height: c.a.height)
        let pw = c.a.width * scale, ph = c.a.height * scale, gap = 8
        var pic = Picture(width: 3 * pw + 2 * gap, height: ph, fill: (255, 255, 255))
        let cmap = colormap == .viridis && c.shared.signed ? Colormap.diverging : colormap
        Painter.paint(c.a, colormap: cmap, norm: c.shared, into: &pic, x: 0, y: 0, width: pw, height: ph)
        Painter.paint(c.b, colormap: cmap, norm: c.shared, into: &pic, x: pw + gap, y: 0, width: pw, height: ph)
        Painter.paint(c.difference, colormap: .diverging, norm: c.differenceRange, into: &pic, x: 2 * (pw + gap), y: 0, width: pw, height: ph)
        return pic
    }

    /// The comparison's numbers as JSON.
    public static func comparisonJSON(_ c: MapComparison) throws -> Data {
        func rows2D(_ m: ScalarMap) -> [[Double]] {
            stride(from: 0, to: m.values.count, by: max(1, m.width)).map { i in m.values[i ..< i + m.width].map { Double($0) } }
        }
        let out: [String: Any] = [
            "what": "compare", "map": c.what,
            "a": ["title": c.titleA, "values": rows2D(c.a)], "b": ["title": c.titleB, "values": rows2D(c.b)],
            "range": rangeJSON(c.shared),
            "difference": ["values": rows2D(c.difference), "range": rangeJSON(c.differenceRange)],
            "max_abs_difference": Double(c.maxAbsDifference), "cosine": Double(c.cosine),
        ]
        return try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
    }
}
