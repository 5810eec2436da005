import Foundation
import ModelZoo
import Tensor

/// The same visuals without a terminal: for `detr-tui render` (ANSI text, PNG pictures, JSON values).

public enum RenderWhat: String, CaseIterable, Sendable {
    case featuremap, attention, sampling, detections
    /// EigenCAM of a feature map (its first principal component, over the input image).
    case cam
    /// A DETR query's box after every decoder layer (iterative box refinement).
    case boxes
    /// The encoder tokens a two-stage DETR chose as decoder queries.
    case queries
    /// D-FINE's four edge distributions of a query in one decoder layer.
    case edges
}

public struct RenderSpec: Sendable {
    public var what: RenderWhat
    /// The layer index as the layer table numbers it (nil: the last layer for detections and sampling).
    public var layer: Int?
    public var channel: Int?
    public var head: Int?
    public var level: Int?
    public var query: Int?
    /// Which of the layer's probes of that kind (e.g. the decoder layer for sampling), from 0.
    public var probe: Int
    public var overImage: Bool
    public var colormap: Colormap
    /// The colour range rule (default: 1st-99th percentile, edge cells ignored).
    public var range: RangeMode
    /// With `what: .cam`: the CAM renormalised inside each detection box.
    public var camInBoxes: Bool
    /// With `what: .cam`: the component's sign rule.
    public var camSign: EigenCAM.Sign
    /// With `what: .boxes`: every query of the layer scoring at or above the threshold instead of one query's layers.
    public var allQueries: Bool = false

    public init(what: RenderWhat, layer: Int? = nil, channel: Int? = nil, head: Int? = nil, level: Int? = nil, query: Int? = nil,
                probe: Int = 0, overImage: Bool = false, colormap: Colormap = .viridis, range: RangeMode = .percentile,
                camInBoxes: Bool = false, camSign: EigenCAM.Sign = .lapack) {
        self.what = what
        self.layer = layer
        self.channel = channel
        self.head = head
        self.level = level
        self.query = query
        self.probe = probe
        self.overImage = overImage
        self.colormap = colormap
        self.range = range
        self.camInBoxes = camInBoxes
        self.camSign = camSign
    }
}

public struct ExportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

public enum Headless {
    /// Runs a model once and returns what the explorer would hold.
    public static func run(_ request: RunRequest, backend: Backend, postprocess: PostprocessOptions = PostprocessOptions()) throws -> (OpenedModel, RunResult) {
        var opened: OpenedModel?
        let result = try Runner.perform(request, backend: backend, postprocess: postprocess, opened: { opened = $0 })
        return (opened!, result)
    }

    /// A state showing `spec` for a finished run (the explorer's own selection logic).
    public static func state(opened: OpenedModel, result: RunResult, spec: RenderSpec, options: RenderOptions) throws -> State {
        var s = State(catalogue: Catalogue(entries: []), images: [], render: options)
        s.mode = .model
        s.focus = .visual
        s.modelID = opened.name
        // The run's own post-processing chose the detections (with the command's --conf): show them all.
        s.confidence = 0
        _ = update(&s, .opened(opened))
        _ = update(&s, .finished(result))
        s.notice = nil
        // Only the visual: no key hints, and no cursor unless a query places one.
        s.keyHints = false
        s.showCursor = spec.query != nil
        s.rangeMode = spec.range
        let rows = s.layerRows
        guard !rows.isEmpty else { throw ExportError("\(opened.name): the run recorded no layers") }
        let wanted = spec.layer ?? rows.last!.index
        guard let pos = rows.firstIndex(where: { $0.index == wanted }) else {
            throw ExportError("layer \(wanted): \(opened.name) has layers \(rows.first!.index)-\(rows.last!.index)")
        }
        s.layer = pos
        let sources = visualSources(s)
        var matches: [Int] = []
        for (i, _) in sources.enumerated() {
            s.visual = i
            switch (spec.what, currentVisualKind(s)) {
            case (.featuremap, .featureMap), (.attention, .attention), (.sampling, .sampling), (.detections, .detections), (.cam, .featureMap),
                 (.boxes, .refinedBoxes), (.queries, .querySelection), (.edges, .edgeDistributions):
                matches.append(i)
            case (.featuremap, .channelWeights), (.featuremap, .spatial):
                matches.append(i)
            default: break
            }
        }
        guard !matches.isEmpty else {
            let kinds = sources.map { source -> String in
                var t = s
                t.visual = sources.firstIndex(of: source)!
                return "\(sourceTitle(t, source)) [\(kindName(currentVisualKind(t)))]"
            }
            throw ExportError("layer \(wanted) (\(rows[pos].module)) has no \(spec.what.rawValue); it holds: \(kinds.isEmpty ? "nothing" : kinds.joined(separator: "; "))")
        }
        guard spec.probe >= 0, spec.probe < matches.count else {
            let listing = matches.enumerated().map { "\($0.offset) \(sourceTitle(s, sources[$0.element]))" }.joined(separator: "; ")
            throw ExportError("--probe \(spec.probe): layer \(wanted) has \(matches.count) \(spec.what.rawValue) visual(s): \(listing)")
        }
        s.visual = matches[spec.probe]
        s.colormap = spec.colormap
        s.overlay = spec.overImage
        s.aggregate = spec.allQueries
        if spec.what == .cam {
            s.cam = spec.camInBoxes ? .boxes : .cam
            s.camSign = spec.camSign
            if case .featureMap(let t, _) = currentVisualKind(s), case .failure(let e) = camMap(s, t) { throw e }
        }
        if let c = spec.channel {
            let n = channelCount(s)
            guard c >= 0, c < max(n, 1) else { throw ExportError("--channel \(c): layer \(wanted) has \(n) channels") }
            s.channel = c
        }
        if let h = spec.head {
            let n = headCount(s)
            guard h >= -1, h < n else { throw ExportError("--head \(h): this visual has \(n) heads") }
            s.head = h
        }
        if let l = spec.level {
            let n = levelCount(s)
            guard l >= -1, l < n else { throw ExportError("--level \(l): this visual has \(n) levels") }
            s.level = l
        }
        if let q = spec.query {
            switch currentVisualKind(s) {
            case .sampling(let sp):
                guard q >= 0, q < sp.queries else { throw ExportError("--query \(q): there are \(sp.queries) queries") }
                s.query = q
            case .refinedBoxes, .querySelection, .edgeDistributions:
                let n = queryCountOfVisual(s)
                guard q >= 0, q < n else { throw ExportError("--query \(q): there are \(n) queries") }
                s.query = q
            case .attention(_, let grid, _):
                guard q >= 0, q < grid.count else { throw ExportError("--query \(q): there are \(grid.count) queries") }
                s.cursor = (q % grid.width, q / grid.width)
            case .featureMap, .spatial:
                // A flat position on the map: the cursor, and the value under it.
                if let grid = cursorGrid(s) {
                    guard q >= 0, q < grid.count else { throw ExportError("--query \(q): the map has \(grid.count) positions") }
                    s.cursor = (q % grid.width, q / grid.width)
                }
            default:
                s.query = q
            }
        } else if case .sampling(let sp) = currentVisualKind(s), sp.queryLevels == nil,
                  let best = result.detections.max(by: { $0.score < $1.score }) {
            // Default to the query of the strongest detection.
            s.query = min(sp.queries - 1, best.source)
        } else if currentVisualKind(s).isDETRView, let best = result.detections.max(by: { $0.score < $1.score }) {
            s.query = min(max(0, queryCountOfVisual(s) - 1), best.source)
        }
        return s
    }

    /// The kind of a visual as `--what` names it (channel and spatial weights are drawn as feature maps).
    static func kindName(_ kind: VisualKind) -> String {
        switch kind {
        case .featureMap: return "featuremap"
        case .attention: return "attention"
        case .sampling: return "sampling"
        case .detections: return "detections"
        case .channelWeights, .spatial: return "featuremap"
        case .refinedBoxes: return "boxes"
        case .querySelection: return "queries"
        case .edgeDistributions: return "edges"
        default: return "tensor"
        }
    }

    /// The visual as a screen `width` columns wide (title, map, colour bar and range, info lines).
    public static func screen(_ s: State, width: Int) -> Screen {
        var st = s
        let w = max(20, width)
        var aspect: Double = 1
        if let (geo, _) = visualGeometry(st, Rect(x: 0, y: 0, width: w + 2, height: 1000)) {
            aspect = Double(geo.mapWidth / geo.mapHeight)
        }
        var mapRows = Int((Double(w) / (2 * aspect)).rounded())
        if case .channelWeights = currentVisualKind(st) { mapRows = 12 }
        if case .other = currentVisualKind(st) { mapRows = 2 }
        let kind = currentVisualKind(st)
        if kind.isDETRView, let input = inputGrid(st) {
            // The image beside its side list: as many rows as the image needs at the width left to it, and enough
            // for the list (the edge charts, a query's layers).
            let lw = sideListWidth(Rect(x: 0, y: 0, width: w, height: 1), wanted: sideListWanted(kind))
            let geo = MapGeometry.fit(width: input.width, height: input.height, in: Rect(x: 0, y: 0, width: max(1, w - lw - 1), height: 1000))
            mapRows = max(geo.rect.height, detrSideListRows(st, kind))
        }
        let h = max(6, mapRows) + 5
        st.size = (w, h)
        var screen = Screen(width: w, height: h)
        // The visual pane without its frame: the pane rect is one cell larger on every side.
        drawVisual(st, into: &screen, inner: Rect(x: 0, y: 0, width: w, height: h), paneRect: Rect(x: -1, y: -1, width: w + 2, height: h + 2))
        return screen
    }

    /// The visual as a picture: the map at `scale` pixels per map cell (or the input image at its own size),
    /// with sampling points, reference points and boxes drawn in pixels.
    public static func picture(_ s: State, scale given: Int? = nil) -> Picture {
        let image = s.result?.image
        let input = inputGrid(s) ?? GridSize(640, 640)
        switch currentVisualKind(s) {
        case .featureMap(let t, _) where camShown(s):
            guard case .success(let (map, _)) = camMap(s, t) else { return Picture(width: 1, height: 1) }
            let top = Painter.paint(map, colormap: s.colormap, norm: camNormalization(map), width: input.width, height: input.height)
            var pic = image.map { Painter.blend(Painter.greyImage($0, width: input.width, height: input.height), top, alpha: 0.6) } ?? top
            if s.cam == .boxes { drawDetectionPixels(&pic, currentDetections(s)) }
            return pic
        case .featureMap(let t, let signed):
            if s.channelMode == .grid { return Picture(width: 1, height: 1) }
            guard let map = featureMapScalar(s, t, signed: signed) else { return Picture(width: 1, height: 1) }
            return paintMap(s, map, scale: given, image: image, input: input)
        case .spatial(let t):
            let map = spatialScalar(t)
            return paintMap(s, map, scale: given, image: nil, input: input)
        case .attention(let t, let q, let k):
            let values = attentionValues(s, t, query: q)
            return paintMap(s, ScalarMap(width: k.width, height: k.height, values: values), scale: given, image: image, input: input)
        case .channelWeights(let t):
            var pic = Picture(width: max(1, t.count * 4), height: 100, fill: (255, 255, 255))
            let hi = max(t.data.map(abs).max() ?? 1, 1e-12)
            for (c, v) in t.data.enumerated() {
                let h = Int(abs(v) / hi * 100)
                let col = Colormap.viridis.color(0.25 + 0.75 * abs(v) / hi)
                for y in (100 - h) ..< 100 { for x in c * 4 ..< c * 4 + 3 { pic.setPixel(x, y, col) } }
            }
            return pic
        case .sampling(let sp):
            var pic = image.map { Painter.image($0, width: input.width, height: input.height) } ?? Picture(width: input.width, height: input.height, fill: (32, 32, 32))
            drawSamplingPixels(&pic, s, sp)
            return pic
        case .detections(let dets):
            var pic = image.map { Painter.image($0, width: input.width, height: input.height) } ?? Picture(width: input.width, height: input.height, fill: (32, 32, 32))
            drawDetectionPixels(&pic, dets)
            return pic
        case .refinedBoxes, .querySelection, .edgeDistributions:
            var pic = image.map { Painter.image($0, width: input.width, height: input.height) } ?? Picture(width: input.width, height: input.height, fill: (32, 32, 32))
            drawDETRPixels(&pic, s)
            return pic
        case .other, .none:
            return Picture(width: 1, height: 1)
        }
    }

    /// Boxes and labels of detections in input pixels, weakest first so the strongest end on top, as in the terminal.
    static func drawDetectionPixels(_ pic: inout Picture, _ dets: [Detection]) {
        for d in dets.sorted(by: { $0.score < $1.score }) {
            let c: (UInt8, UInt8, UInt8)
            if case .rgb(let r, let g, let b) = classColor(d.classIndex) { c = (r, g, b) } else { c = (255, 0, 0) }
            strokeRect(&pic, x1: Int(d.x1), y1: Int(d.y1), x2: Int(d.x2), y2: Int(d.y2), color: c, thickness: 2)
            drawLabel(&pic, detectionLabel(d), x: Int(d.x1), boxTop: Int(d.y1), color: c)
        }
    }

    /// Pixels per map cell for PNG export: whole numbers, the longer side near 1024 pixels.
    public static func pngScale(width: Int, height: Int) -> Int { max(1, min(32, 1024 / max(1, max(width, height)))) }

    static func paintMap(_ s: State, _ map: ScalarMap, scale given: Int?, image: Tensor?, input: GridSize) -> Picture {
        let scale = given ?? pngScale(width: map.width, height: map.height)
        let norm = Normalization.fit([map], mode: s.rangeMode)
        let cmap = effectiveColormap(s, signed: norm.signed)
        if s.overlay, let image {
            let top = Painter.paint(map, colormap: cmap, norm: norm, width: input.width, height: input.height)
            return Painter.blend(Painter.greyImage(image, width: input.width, height: input.height), top, alpha: 0.6)
        }
        return Painter.paint(map, colormap: cmap, norm: norm, width: map.width * scale, height: map.height * scale)
    }

    static func attentionValues(_ s: State, _ t: Tensor, query: GridSize) -> [Float] {
        let heads = t.shape[0], Q = t.shape[1], K = t.shape[2]
        let q = min(Q - 1, max(0, s.cursor.y) * query.width + max(0, s.cursor.x))
        let hs = s.head >= 0 ? [s.head] : Array(0 ..< heads)
        var values = [Float](repeating: 0, count: K)
        for h in hs { for k in 0 ..< K { values[k] += t.data[(h * Q + q) * K + k] } }
        return values.map { $0 / Float(hs.count) }
    }

    static func drawSamplingPixels(_ pic: inout Picture, _ s: State, _ sp: SamplingPoints) {
        let q = max(0, min(sp.queries - 1, s.query))
        let H = sp.heads, L = sp.levels, P = sp.points
        let heads = s.head >= 0 ? [s.head] : Array(0 ..< H)
        let levels = s.level >= 0 ? [s.level] : Array(0 ..< L)
        var maxW: Float = 1e-12
        for h in heads { for l in levels { for p in 0 ..< P { maxW = max(maxW, sp.weights.data[((q * H + h) * L + l) * P + p]) } } }
        for h in heads {
            for l in levels {
                for p in 0 ..< P {
                    let wi = ((q * H + h) * L + l) * P + p
                    let x = Int(sp.locations.data[2 * wi] * Float(pic.width)), y = Int(sp.locations.data[2 * wi + 1] * Float(pic.height))
                    guard case .rgb(let r, let g, let b) = HeadColors.color(head: h, shade: sp.weights.data[wi] / maxW) else { continue }
                    let radius = 2 + Int(3 * sp.weights.data[wi] / maxW)
                    for dy in -radius ... radius { for dx in -radius ... radius where dx * dx + dy * dy <= radius * radius {
                        pic.setPixel(x + dx, y + dy, (r, g, b))
                    } }
                }
            }
        }
        let rd = sp.referencePoints.shape.last ?? 2
        let rx = Int(sp.referencePoints.data[q * rd] * Float(pic.width)), ry = Int(sp.referencePoints.data[q * rd + 1] * Float(pic.height))
        for d in -8 ... 8 {
            for t in -1 ... 1 {
                pic.setPixel(rx + d, ry + t, (255, 255, 255))
                pic.setPixel(rx + t, ry + d, (255, 255, 255))
            }
        }
    }

    static func strokeRect(_ pic: inout Picture, x1: Int, y1: Int, x2: Int, y2: Int, color: (UInt8, UInt8, UInt8), thickness: Int) {
        for t in 0 ..< thickness {
            for x in x1 ... max(x1, x2) { pic.setPixel(x, y1 + t, color); pic.setPixel(x, y2 - t, color) }
            for y in y1 ... max(y1, y2) { pic.setPixel(x1 + t, y, color); pic.setPixel(x2 - t, y, color) }
        }
    }

    /// The colour range a map is drawn with: its rule, the range, and the value of a constant map.
    static func rangeJSON(_ n: Normalization) -> [String: Any] {
        var out: [String: Any] = ["mode": n.mode.rawValue, "lo": Double(n.lo), "hi": Double(n.hi)]
        if let v = n.constantValue { out["constant"] = Double(v) }
        return out
    }

    /// The visual's numbers as JSON.
    public static func json(_ s: State) throws -> Data {
        var out: [String: Any] = [:]
        let rows = s.layerRows
        if s.layer < rows.count {
            out["layer"] = rows[s.layer].index
            out["module"] = rows[s.layer].module
        }
        out["model"] = s.opened?.name ?? ""
        if let p = currentProbe(s) { out["probe"] = p.path; out["label"] = p.label }
        func rows2D(_ v: [Float], _ w: Int) -> [[Double]] {
            stride(from: 0, to: v.count, by: max(1, w)).map { i in v[i ..< min(v.count, i + w)].map { Double($0) } }
        }
        switch currentVisualKind(s) {
        case .featureMap(let t, _) where camShown(s):
            guard case .success(let (map, comp)) = camMap(s, t) else { throw ExportError("EigenCAM of \(t.shape) failed") }
            out["what"] = "cam"
            out["method"] = "EigenCAM"
            out["shape"] = t.shape
            out["explained_variance"] = Double(comp.explained)
            out["sign"] = s.camSign.rawValue
            out["projection"] = rows2D(comp.projection.values, comp.projection.width)
            out["size"] = [map.height, map.width]
            if s.cam == .boxes {
                out["boxes"] = currentDetections(s).map { d -> [Int] in let b = EigenCAM.Box(d); return [b.x1, b.y1, b.x2, b.y2] }
            }
            out["values"] = rows2D(map.values, map.width)
        case .featureMap(let t, let signed):
            out["what"] = "featuremap"
            out["shape"] = t.shape
            out["signed"] = signed
            var st = s
            if st.channelMode == .grid { st.channelMode = .single }
            if let m = featureMapScalar(st, t, signed: signed) {
                out["channel"] = st.channelMode == .single ? st.channel : nil
                out["reduce"] = st.channelMode == .single ? nil : st.channelMode.rawValue
                out["min"] = Double(m.values.min() ?? 0)
                out["max"] = Double(m.values.max() ?? 0)
                out["range"] = rangeJSON(Normalization.fit([m], mode: st.rangeMode))
                out["values"] = rows2D(m.values, m.width)
            }
        case .spatial(let t):
            out["what"] = "spatial_weights"
            out["range"] = rangeJSON(Normalization.fit([spatialScalar(t)], mode: s.rangeMode))
            out["values"] = rows2D(t.data, t.shape[1])
        case .channelWeights(let t):
            out["what"] = "channel_weights"
            out["values"] = t.data.map { Double($0) }
        case .attention(let t, let q, let k):
            out["what"] = "attention"
            out["heads"] = t.shape[0]
            out["head"] = s.head >= 0 ? s.head : "mean"
            let qi = min(q.count - 1, s.cursor.y * q.width + s.cursor.x)
            out["query"] = qi
            out["query_grid"] = [q.height, q.width]
            out["key_grid"] = [k.height, k.width]
            let weights = attentionValues(s, t, query: q)
            out["range"] = rangeJSON(Normalization.fit([ScalarMap(width: k.width, height: k.height, values: weights)], mode: s.rangeMode))
            out["weights"] = rows2D(weights, k.width)
        case .sampling(let sp):
            out["what"] = "sampling"
            let q = max(0, min(sp.queries - 1, s.query))
            out["query"] = q
            out["queries"] = sp.queries
            out["heads"] = sp.heads
            out["levels"] = sp.levels
            out["level_shapes"] = sp.levelShapes.map { [$0.height, $0.width] }
            let rd = sp.referencePoints.shape.last ?? 2
            out["reference_point"] = (0 ..< rd).map { Double(sp.referencePoints.data[q * rd + $0]) }
            var points: [[String: Any]] = []
            let H = sp.heads, L = sp.levels, P = sp.points
            for h in 0 ..< H where s.head < 0 || s.head == h {
                for l in 0 ..< L where s.level < 0 || s.level == l {
                    for p in 0 ..< P {
                        let wi = ((q * H + h) * L + l) * P + p
                        points.append(["head": h, "level": l, "point": p, "x": Double(sp.locations.data[2 * wi]),
                                       "y": Double(sp.locations.data[2 * wi + 1]), "weight": Double(sp.weights.data[wi])])
                    }
                }
            }
            out["points"] = points
        case .detections(let dets):
            out["what"] = "detections"
            out["detections"] = dets.map { d -> [String: Any] in
                ["class": d.className, "class_index": d.classIndex, "score": Double(d.score),
                 "box": [Double(d.x1), Double(d.y1), Double(d.x2), Double(d.y2)], "query": d.source]
            }
        case .refinedBoxes, .querySelection, .edgeDistributions:
            try detrJSON(s, into: &out)
        case .other(let t):
            out["what"] = "tensor"
            out["shape"] = t.shape
        case .none(let m):
            throw ExportError(m)
        }
        return try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
    }
}

// MARK: - Detection labels in pictures

/// A detection's label as the terminal and PNG export write it: class and score ("person 0.90").
func detectionLabel(_ d: Detection) -> String { "\(d.className) \(String(format: "%.2f", d.score))" }

extension Headless {
    /// Pixels per font pixel for labels in a picture of this width: 1 below 500 pixels, then one more per 500.
    static func labelScale(width: Int) -> Int { max(1, min(4, 1 + width / 500)) }

    /// A label drawn as the terminal does: dark text on a strip of the box's colour, on the box's top edge
    /// (above it when there is room, else just inside), cut at the picture's right edge.
    static func drawLabel(_ pic: inout Picture, _ text: String, x: Int, boxTop: Int, color: (UInt8, UInt8, UInt8)) {
        let k = labelScale(width: pic.width)
        let h = (BitmapFont.height + 2) * k
        let w = (text.unicodeScalars.count * (BitmapFont.width + 1) + 1) * k
        let x0 = max(0, min(x, pic.width - 1)), y0 = boxTop - h >= 0 ? boxTop - h : max(0, boxTop)
        for y in y0 ..< min(pic.height, y0 + h) { for xx in x0 ..< min(pic.width, x0 + w) { pic.setPixel(xx, y, color) } }
        BitmapFont.draw(text, into: &pic, x: x0 + k, y: y0 + k, scale: k, color: (0, 0, 0))
    }
}

/// A 5x7 pixel font (lower-case letters, digits and the punctuation of class names and scores; upper case is
/// drawn as lower case, anything else as "?"), for labels in exported pictures.
enum BitmapFont {
    static let width = 5, height = 7

    /// Each glyph as 7 rows of 5 columns, "#" = ink.
    static let glyphs: [Character: [String]] = [
        "a": [".....", ".....", ".###.", "....#", ".####", "#...#", ".####"],
        "b": ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."],
        "c": [".....", ".....", ".###.", "#....", "#....", "#...#", ".###."],
        "d": ["....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"],
        "e": [".....", ".....", ".###.", "#...#", "#####", "#....", ".###."],
        "f": ["..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."],
        "g": [".....", ".####", "#...#", "#...#", ".####", "....#", ".###."],
        "h": ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"],
        "i": ["..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."],
        "j": ["...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."],
        "k": ["#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."],
        "l": [".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."],
        "m": [".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"],
        "n": [".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"],
        "o": [".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."],
        "p": [".....", "####.", "#...#", "#...#", "####.", "#....", "#...."],
        "q": [".....", ".####", "#...#", "#...#", ".####", "....#", "....#"],
        "r": [".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."],
        "s": [".....", ".....", ".###.", "#....", ".###.", "....#", "####."],
        "t": [".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."],
        "u": [".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"],
        "v": [".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."],
        "w": [".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."],
        "x": [".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"],
        "y": [".....", "#...#", "#...#", "#...#", ".####", "....#", ".###."],
        "z": [".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"],
        "0": [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."],
        "1": ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
        "2": [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"],
        "3": ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."],
        "4": ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."],
        "5": ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."],
        "6": ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."],
        "7": ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."],
        "8": [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."],
        "9": [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."],
        " ": [".....", ".....", ".....", ".....", ".....", ".....", "....."],
        ".": [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."],
        ",": [".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."],
        "-": [".....", ".....", ".....", "#####", ".....", ".....", "....."],
        "_": [".....", ".....", ".....", ".....", ".....", ".....", "#####"],
        ":": [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."],
        "(": ["...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."],
        ")": [".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."],
        "/": [".....", "....#", "...#.", "..#..", ".#...", "#....", "....."],
        "%": ["##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"],
        "'": ["..#..", "..#..", ".#...", ".....", ".....", ".....", "....."],
        "?": [".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."],
    ]

    /// The glyph drawn for a character.
    static func glyph(_ c: Character) -> [String] {
        glyphs[Character(c.lowercased())] ?? glyphs["?"]!
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel `scale` x `scale` pixels, one blank
    /// column between glyphs; clipped to the picture.
    static func draw(_ text: String, into pic: inout Picture, x: Int, y: Int, scale k: Int, color: (UInt8, UInt8, UInt8)) {
        for (i, ch) in text.enumerated() {
            let gx = x + i * (width + 1) * k
            guard gx < pic.width else { break }
            for (row, line) in glyph(ch).enumerated() {
                for (col, dot) in line.enumerated() where dot == "#" {
                    for dy in 0 ..< k { for dx in 0 ..< k { pic.setPixel(gx + col * k + dx, y + row * k + dy, color) } }
                }
            }
        }
    }
}
