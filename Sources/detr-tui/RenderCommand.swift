import ArgumentParser
import Explorer
import Foundation
import ModelZoo
import Tensor

/// `detr-tui render`: one visual of one layer, as ANSI text, a PNG picture or JSON numbers.
struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Render one layer's feature map, EigenCAM, attention, sampling points, detections or DETR decoder views.",
        discussion: """
            Runs MODEL once on the image (or a preprocessed tensor) and draws what the explorer would show for \
            --layer. Examples:
              detr-tui render rtdetr-l --image assets/images/chelsea.png --layer 3 --what featuremap --channel 5
              detr-tui render rtdetr-l --image cat.jpg --layer 28 --what sampling --head 2 --format png --out s.png
              detr-tui render yolov8n --image cat.jpg --layer 21 --what cam --format png --out cam.png
              detr-tui render rtdetr-l --compare rtdetr-l-cot --image cat.jpg --layer 5 --reduce mean
              detr-tui render ./rtdetr_r18vd --image cat.jpg --layer 6 --what boxes --probe 3 --query 12
              detr-tui render ./rtdetr_r18vd --image cat.jpg --layer 5 --what queries --level 1
            --what boxes draws a DETR query's box after every decoder layer (--probe picks the layer shown \
            solid; --all-queries draws every query of that layer scoring at least --conf), queries the encoder \
            tokens a two-stage DETR chose as queries, edges D-FINE's four edge distributions of a query.
            """)

    @OptionGroup var source: ModelOptions

    @OptionGroup var inputs: InputOptions

    @OptionGroup var thresholds: ThresholdOptions

    @Option(name: .long, help: "The layer, numbered as in the layer table (default: the last).")
    var layer: Int?

    @Option(name: .long, help: "What to draw: featuremap, cam (EigenCAM over the image), attention, sampling, detections, boxes (a DETR query's box after every decoder layer), queries (the query selection) or edges (D-FINE's edge distributions).")
    var what: RenderWhat

    @Option(name: .long, help: "Feature map channel (default 0).")
    var channel: Int?

    @Option(name: .long, help: "Feature map reduction instead of one channel: mean or max.")
    var reduce: String?

    @Option(name: .long, help: "Attention head (default: all heads; -1 = all).")
    var head: Int?

    @Option(name: .long, help: "Sampling level, or the one level --what queries shows (default: all levels; -1 = all).")
    var level: Int?

    @Option(name: .long, help: "Query: a decoder query for sampling, boxes, queries and edges (default: the best detection's), or a flat query position for attention.")
    var query: Int?

    @Option(name: .long, help: "Which of the layer's visuals of that kind, from 0 (e.g. the decoder layer for sampling).")
    var probe: Int = 0

    @Flag(name: .long, help: "Lay the map over the input image.")
    var overImage = false

    @Flag(name: .long, help: "With --what boxes: every query of the layer scoring at least --conf, instead of one query's box after every layer.")
    var allQueries = false

    @Flag(name: .long, help: "With --what cam: renormalise the CAM inside each detection box (zero outside them).")
    var inBoxes = false

    @Option(name: .long, help: "With --what cam: the component's sign, lapack (as LAPACK's SVD gives it, as pytorch-grad-cam) or activations (so that the CAM correlates with the channel mean).")
    var camSign: EigenCAM.Sign = .lapack

    @Option(name: .long, help: ArgumentHelp("A second model (catalogue id, YAML, checkpoint or HF directory) run on the same input: the aligned layer's map of both in one colour range, and B − A.", valueName: "B"))
    var compare: String?

    @Option(name: .long, help: "Weights for the --compare model.")
    var compareWeights: String?

    @Flag(name: .long, help: "With --compare: B takes A's weights in every row aligned with a row of A of the same type (as compare --share-weights).")
    var shareWeights = false

    @Option(name: .long, help: "Colormap: viridis, inferno, turbo, gray or diverging.")
    var colormap: Colormap = .viridis

    @Option(name: .long, help: "Colour range: percentile (default: 1st-99th percentile, the outermost ring of cells ignored), minmax, or symmetric (zero in the middle, for signed maps).")
    var range: RangeMode = .percentile

    @Option(name: .long, help: "Output format: ansi (default), png or json.")
    var format: Format = .ansi

    @Option(name: .long, help: "Write to this file instead of standard output (required for png). An existing file is not overwritten.")
    var out: String?

    @Option(name: .long, help: "Width in terminal columns for ansi (default 80).")
    var width: Int = 80

    @OptionGroup var display: DisplayOptions

    enum Format: String, ExpressibleByArgument, CaseIterable { case ansi, png, json }

    func validate() throws {
        if format == .png && out == nil { throw ValidationError("--format png needs --out FILE") }
        if width < 20 || width > 1000 { throw ValidationError("--width must be from 20 to 1000") }
        if let r = reduce, r != "mean", r != "max" { throw ValidationError("--reduce must be mean or max") }
        if inBoxes && what != .cam { throw ValidationError("--in-boxes goes with --what cam") }
        if allQueries && what != .boxes { throw ValidationError("--all-queries goes with --what boxes") }
        if camSign != .lapack && what != .cam { throw ValidationError("--cam-sign goes with --what cam") }
        if compare != nil && what != .featuremap { throw ValidationError("--compare draws feature maps: use --what featuremap") }
        if compareWeights != nil && compare == nil { throw ValidationError("--compare-weights goes with --compare") }
        if shareWeights && (compare == nil || compareWeights != nil) {
            throw ValidationError("--share-weights goes with --compare and gives B A's weights (not with --compare-weights)")
        }
        if let out, FileManager.default.fileExists(atPath: out) {
            throw ValidationError("\(out) exists; choose another --out (files are never overwritten)")
        }
    }

    func run() throws {
        do {
            try render()
        } catch let e as ValidationError {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func render() throws {
        if inputs.input != nil, let n = inputs.imgsz { warn("--imgsz \(n) is ignored with --input (the tensor is used as it is)") }
        var backend = Backend.standard(inputTensor: inputs.input, square: inputs.square, warn: { warn($0) })
        let untrained = SharedFlag()
        let openModel = backend.open
        let first = SharedModel()
        backend.open = { model, weights in
            let net = try openModel(model, weights)
            if net.isUntrained && !net.classNames.isEmpty { untrained.set() }
            first.setIfEmpty(net)
            return net
        }
        let request = RunRequest(model: try source.resolvedModel(), weights: source.weights, image: inputs.image, inputSize: inputs.imgsz)
        let (opened, result) = try Headless.run(request, backend: backend, postprocess: thresholds.options)
        if what == .detections, untrained.isSet { warn(untrainedNote) }
        var spec = RenderSpec(what: what, layer: layer, channel: channel, head: head, level: level, query: query,
                              probe: probe, overImage: overImage, colormap: colormap, range: range, camInBoxes: inBoxes, camSign: camSign)
        spec.allQueries = allQueries
        var options = display.renderOptions
        if out != nil && display.colors == nil && !display.noColor { options.colorMode = .truecolor }
        var state = try Headless.state(opened: opened, result: result, spec: spec, options: options)
        if let r = reduce, let mode = ChannelMode(rawValue: r) { state.channelMode = mode }
        if let other = compare {
            let requestB = RunRequest(model: other, weights: compareWeights, image: inputs.image, inputSize: inputs.imgsz)
            var backendB = backend
            if shareWeights, let netA = first.value {
                let (weightsA, specA) = (source.weights, request.model)
                backendB.open = { model, _ in try WeightSharing.open(model, sharingFrom: netA, weightsA: weightsA, aSpec: specA).model }
            }
            let (openedB, resultB) = try Headless.run(requestB, backend: backendB, postprocess: thresholds.options)
            var specB = spec
            specB.layer = try Headless.alignedLayer(state.layerRows[state.layer].index, a: opened, b: openedB)
            let stateB = try Headless.state(opened: openedB, result: resultB, spec: specB, options: options)
            let c = try Headless.comparison(state, stateB)
            let data: Data
            switch format {
            case .ansi: data = Data(Renderer.ansi(Headless.comparisonScreen(c, state: state, width: width), mode: options.colorMode).utf8)
            case .json: data = try Headless.comparisonJSON(c) + Data("\n".utf8)
            case .png: data = try encodePNG(Headless.comparisonPicture(c, colormap: colormap))
            }
            try emit(data)
            return
        }
        let data: Data
        switch format {
        case .ansi:
            data = Data(Renderer.ansi(Headless.screen(state, width: width), mode: options.colorMode).utf8)
        case .json:
            data = try Headless.json(state) + Data("\n".utf8)
        case .png:
            data = try encodePNG(Headless.picture(state))
        }
        try emit(data)
    }

    func emit(_ data: Data) throws {
        if let out {
            try writeUserFile(data, to: out, what: format == .png ? "PNG" : "output")
        } else {
            try writeStandardOutput(data, command: "render")
        }
    }
}

extension RenderWhat: ExpressibleByArgument {}
extension EigenCAM.Sign: ExpressibleByArgument {}
extension Colormap: ExpressibleByArgument {}
extension RangeMode: ExpressibleByArgument {}

/// PNG bytes of a picture (RGBA, 8 bits).
func encodePNG(_ pic: Picture) throws -> Data {
    try PNGCodec.encode(rgba: pic.rgba, width: pic.width, height: pic.height)
}

/// The first model a `@Sendable` closure opened.
final class SharedModel: @unchecked Sendable {
    private let lock = NSLock()
    private var model: (any DetectionModel)?
    func setIfEmpty(_ m: any DetectionModel) { lock.lock(); if model == nil { model = m }; lock.unlock() }
    var value: (any DetectionModel)? { lock.lock(); defer { lock.unlock() }; return model }
}

/// A flag set from a `@Sendable` closure.
final class SharedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
