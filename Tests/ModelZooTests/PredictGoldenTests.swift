import Foundation
import Tensor
import XCTest
@testable import ModelZoo

/// The whole predict path against ultralytics' own `predict` (scripts/fixtures/gen_predict.py): a tiny YOLOv8 and a
/// tiny RT-DETR trained briefly on synthetic rectangles, three non-square images (451x300, 600x400, 300x451) at
/// imgsz 160. Each case checks, in order, the preprocessed input (bytes of the predictor's LetterBox / stretch), the
/// raw model output on ultralytics' own input, and the detections in image pixels, so that a failure says which
/// stage differs.
final class PredictGoldenTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/predict")
    static let images = ["wide", "coffee", "tall"]

    func path(_ name: String) -> String { Self.dir.appendingPathComponent(name).path }

    /// Detections of one image through the same steps as `detr-tui run`: decode, prepare, forward, back to image pixels.
    func predict(_ model: any DetectionModel, image: String, imgsz: Int) throws -> (PreparedInput, ModelOutput, [Detection]) {
        let picture = try ImageIO.load(path: path("\(image).png"))
        let prepared = Preprocess.prepare(picture, for: model, size: imgsz)
        let out = try model.forward(prepared.tensor, trace: nil)
        let dets = out.detections.map { d -> Detection in
            var m = d
            (m.x1, m.y1) = prepared.transform.toImage(x: d.x1, y: d.y1)
            (m.x2, m.y2) = prepared.transform.toImage(x: d.x2, y: d.y2)
            return m
        }
        return (prepared, out, dets)
    }

    /// The measured agreement of one model over the three images.
    struct Agreement { var inputBytesDiffering = 0; var output: Float = 0; var score: Float = 0; var box: Float = 0; var detections = 0 }

    func check(_ kind: String, outputTolerance: Float, file: StaticString = #filePath, line: UInt = #line) throws -> Agreement {
        let golden = try SafetensorsFile(path: path("golden.safetensors"))
        let imgsz = try XCTUnwrap(Int(golden.metadata["imgsz"] ?? ""))
        let model = try openModel(path("\(kind).pt"))
        XCTAssertFalse(model.isUntrained)
        XCTAssertEqual(model.classNames, ["red", "green", "blue"])
        var agreement = Agreement()
        for image in Self.images {
            let key = "\(kind).\(image)"
            let (prepared, out, dets) = try predict(model, image: image, imgsz: imgsz)
            // 1. Preprocessing: ultralytics' input, byte for byte.
            let expectedInput = try ImageIO.load(path: path("\(key).input.png"))
            XCTAssertEqual([prepared.image.height, prepared.image.width], [expectedInput.height, expectedInput.width],
                           "\(key): input size", file: file, line: line)
            guard prepared.image.pixels.count == expectedInput.pixels.count else { continue }
            let differing = zip(prepared.image.pixels, expectedInput.pixels).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(key): \(differing) input bytes differ from ultralytics' preprocessing", file: file, line: line)
            agreement.inputBytesDiffering += differing

            // 2. The model on ultralytics' own input.
            let reference = Preprocess.tensor(expectedInput, mean: nil, std: nil)
            let raw = try model.forward(reference, trace: nil).output
            let want = try golden.tensor("\(key).output")
            XCTAssertEqual(raw.shape, want.shape, "\(key): output shape", file: file, line: line)
            if raw.shape == want.shape {
                let diff = zip(raw.data, want.data).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(diff, outputTolerance, "\(key): raw output differs by \(diff)", file: file, line: line)
                agreement.output = max(agreement.output, diff)
            }
            XCTAssertEqual(out.output.shape, want.shape)

            // 3. Detections in image pixels: the same rows (x1, y1, x2, y2, score, class) in the same order.
            let expected = try golden.tensor("\(key).detections")
            let n = expected.shape[0]
            XCTAssertEqual(dets.count, n, "\(key): \(dets.count) detections, ultralytics has \(n)", file: file, line: line)
            agreement.detections += n
            for (i, d) in dets.prefix(n).enumerated() {
                let e = Array(expected.data[i * 6 ..< i * 6 + 6])
                XCTAssertEqual(Float(d.classIndex), e[5], "\(key): detection \(i) class", file: file, line: line)
                agreement.score = max(agreement.score, abs(d.score - e[4]))
                agreement.box = max(agreement.box, zip([d.x1, d.y1, d.x2, d.y2], e[0 ..< 4]).map { abs($0 - $1) }.max()!)
            }
        }
        print(String(format: "PREDICT %@: %d detections, input bytes differing %d, raw output max |diff| %.2g, scores %.2g, boxes %.2g px",
                     kind, agreement.detections, agreement.inputBytesDiffering, agreement.output, agreement.score, agreement.box))
        return agreement
    }

    func testYOLOPredictEqualsUltralytics() throws {
        // Measured: input bytes identical, raw output (boxes in input pixels) 1.2e-4, scores 5.4e-7, boxes 4.6e-5 px.
        let a = try check("yolo", outputTolerance: 1e-3)
        XCTAssertGreaterThan(a.detections, 0, "the trained fixture detects the rectangles")
        XCTAssertLessThanOrEqual(a.score, 1e-4)
        XCTAssertLessThanOrEqual(a.box, 1e-2)
    }

    /// A YOLO11 checkpoint as ultralytics 8.4 saves it after training (strip_optimizer: the fp16 model with C3k2,
    /// C2PSA and the DWConv class branch), opened from the file alone.
    func testYOLO11PredictEqualsUltralytics() throws {
        let a = try check("yolo11", outputTolerance: 1e-3)
        XCTAssertEqual(try openModel(path("yolo11.pt")).family, "YOLO11")
        XCTAssertGreaterThan(a.detections, 0, "the trained fixture detects the rectangles")
        XCTAssertLessThanOrEqual(a.score, 1e-4)
        XCTAssertLessThanOrEqual(a.box, 1e-2)
        print("YOLO11 predict: \(a)")
    }

    func testRTDETRPredictEqualsUltralytics() throws {
        // Measured: input bytes identical, raw output (normalised boxes, scores) 1.5e-4, scores 7.4e-5, boxes 0.043 px.
        let a = try check("rtdetr", outputTolerance: 1e-3)
        XCTAssertGreaterThan(a.detections, 0, "the trained fixture detects the rectangles")
        XCTAssertLessThanOrEqual(a.score, 5e-4)
        XCTAssertLessThanOrEqual(a.box, 0.2)
    }

    /// The rectangle: the letterbox of a 451x300 image at 320 is 320x224, of a 300x451 one 224x320; --square keeps
    /// 320x320; RT-DETR stretches to the square.
    func testInputSizesFollowTheFamilyRule() throws {
        let yolo = try openModel(path("yolo.pt")), rtdetr = try openModel(path("rtdetr.pt"))
        XCTAssertEqual(yolo.inputSize(imageWidth: 451, imageHeight: 300, size: 320), GridSize(224, 320))
        XCTAssertEqual(yolo.inputSize(imageWidth: 300, imageHeight: 451, size: 320), GridSize(320, 224))
        XCTAssertEqual(yolo.inputSize(imageWidth: 451, imageHeight: 300, size: 320, square: true), GridSize(320, 320))
        XCTAssertEqual(yolo.inputSize(imageWidth: 600, imageHeight: 400), GridSize(448, 640))
        XCTAssertEqual(rtdetr.inputSize(imageWidth: 451, imageHeight: 300, size: 320), GridSize(320, 320))
        // check_imgsz: rounded up to the stride with a warning.
        XCTAssertEqual(yolo.checkInputSize(33), CheckedInputSize(size: 64, warning: "input size 33 must be a multiple of the model's max stride 32: using 64"))
        XCTAssertEqual(yolo.checkInputSize(100).size, 128)
        XCTAssertNil(yolo.checkInputSize(320).warning)
        XCTAssertEqual(yolo.checkInputSize(0).size, 32)
    }

    /// Thresholds: a higher confidence keeps exactly the detections above it; a lower IoU suppresses more.
    func testThresholdsFilterDetections() throws {
        let model = try openModel(path("yolo.pt"))
        let (prepared, out, _) = try predict(model, image: "wide", imgsz: 160)
        let size = GridSize(prepared.tensor.shape[2], prepared.tensor.shape[3])
        let loose = model.detections(from: out, inputSize: size, options: PostprocessOptions(confidence: 0.01))
        XCTAssertGreaterThan(loose.count, out.detections.count)
        XCTAssertEqual(loose.filter { $0.score > 0.25 }, out.detections)
        let strict = model.detections(from: out, inputSize: size, options: PostprocessOptions(confidence: 0.01, iou: 0.1))
        XCTAssertLessThan(strict.count, loose.count)
        let capped = model.detections(from: out, inputSize: size, options: PostprocessOptions(confidence: 0.01, maxDetections: 2))
        XCTAssertEqual(capped, Array(loose.prefix(2)))
    }

    /// Inputs a model cannot take are thrown errors before the forward pass (they used to stop inside concat).
    func testInputsOffTheStrideAreErrors() throws {
        for kind in ["yolo", "rtdetr"] {
            let model = try openModel(path("\(kind).pt"))
            for (h, w) in [(33, 33), (64, 48), (40, 64), (100, 100)] {
                XCTAssertThrowsError(try model.forward(Tensor(zeros: [1, 3, h, w]), trace: nil), "\(kind) \(h)x\(w)") { error in
                    XCTAssertTrue("\(error)".contains("max stride 32"), "\(error)")
                }
            }
            XCTAssertNoThrow(try model.forward(Tensor(zeros: [1, 3, 64, 96]), trace: nil))
        }
    }

    /// A YAML whose Concat joins maps of different strides is an error at the forward pass, not a stop inside concat.
    func testMismatchedConcatIsAnError() throws {
        let yaml = """
            nc: 3
            backbone:
              - [-1, 1, Conv, [8, 3, 2]]
              - [-1, 1, Conv, [8, 3, 2]]
            head:
              - [[-1, 0], 1, Concat, [1]]
              - [[2], 1, Detect, [nc]]
            """
        // The shape pass at build time finds it, before anything runs.
        XCTAssertThrowsError(try UltralyticsModel(name: "odd", spec: try ModelSpec.parse(yaml: yaml, file: "odd.yaml"),
                                                  weights: WeightStore(.initialise(seed: 0)))) { error in
            XCTAssertTrue("\(error)".contains("odd.yaml: layer 2: at 640x640 model.2 (Concat): gets [1, 8, 160, 160] and [1, 8, 320, 320]"), "\(error)")
        }
    }

    /// Deformable DETR's size is the shortest edge, the longest capped at the same proportion as 1333 of 800.
    func testDeformableDETRSizeIsTheShortestEdge() {
        let kind = Preprocessing.resizeNormalize(size: 800, maxSize: 1333)
        XCTAssertEqual(Preprocess.inputSize(imageWidth: 600, imageHeight: 400, kind, size: 800), GridSize(800, 1200))
        XCTAssertEqual(Preprocess.inputSize(imageWidth: 600, imageHeight: 400, kind, size: 200), GridSize(200, 300))
        XCTAssertEqual(Preprocess.inputSize(imageWidth: 1000, imageHeight: 200, kind, size: 400), GridSize(133, 667))
        XCTAssertEqual(InputSizeRule.shortestEdge(size: 800, maxSize: 1333).check(33), CheckedInputSize(size: 33, warning: nil))
        XCTAssertEqual(InputSizeRule.shortestEdge(size: 800, maxSize: 1333).check(8).size, 32)
    }

    /// A module alone takes an image or its feature map, of any size (checked through the protocol, as the runner does).
    func testModuleTakesImagesOfAnySize() throws {
        let m: any DetectionModel = try openModel("nam")
        XCTAssertNoThrow(try m.validateInput([1, 3, 100, 60]))
        XCTAssertNoThrow(try m.validateInput([1, m.inputChannels, 33, 33]))
        XCTAssertThrowsError(try m.validateInput([1, 5, 32, 32]))
        XCTAssertEqual(m.checkInputSize(33), CheckedInputSize(size: 33, warning: nil))
    }

    /// The seeded default initialisation is flagged; a checkpoint is not.
    func testUntrainedWeightsAreFlagged() throws {
        XCTAssertTrue(try openModel(IOFixtures.path("ultra_tiny.yaml")).isUntrained)
        XCTAssertFalse(try openModel(IOFixtures.path("ultra_tiny_best.pt")).isUntrained)
    }
}
