import Foundation
import XCTest
import Tensor
@testable import ModelZoo

/// Image decoding and preprocessing against OpenCV / ultralytics / transformers (fixtures by gen_checkpoints.py).
final class IOImageTests: XCTestCase {
    static let expected = try! SafetensorsFile(path: IOFixtures.path("images/expected.safetensors"))

    func image(_ name: String) throws -> RGBImage { try ImageIO.load(path: IOFixtures.path("images/" + name)) }

    /// Max abs difference between an image and an expected [H, W, 3] tensor of 0...255 values.
    func maxDiff(_ img: RGBImage, _ key: String) throws -> Float {
        let t = try Self.expected.tensor(key)
        XCTAssertEqual(t.shape, [img.height, img.width, 3], key)
        guard t.shape == [img.height, img.width, 3] else { return .infinity }
        var m: Float = 0
        for i in 0 ..< t.count { m = max(m, abs(Float(img.pixels[i]) - t.data[i])) }
        return m
    }

    func testDecodesEveryColourTypeLikeOpenCV() throws {
        for name in ["rgb.png", "gray.png", "rgba.png", "palette.png", "gray_alpha.png", "photo.jpg", "gray.jpg"] {
            XCTAssertEqual(try maxDiff(try image(name), name), 0, name)
        }
        // 16-bit: libpng rounds where OpenCV shifts; at most 1 apart.
        let d16 = try maxDiff(try image("rgb16.png"), "rgb16.png")
        print("IO-measure rgb16.png: max |libpng - cv2| = \(d16)")
        XCTAssertLessThanOrEqual(d16, 1)
        XCTAssertEqual(try maxDiff(try image("p6.ppm"), "p6.ppm"), 0)
        XCTAssertEqual(try maxDiff(try image("p3.ppm"), "p6.ppm"), 0)
    }

    func testExifOrientationIsAppliedLikeOpenCV() throws {
        for o in 2 ... 8 {
            let name = "exif\(o).jpg"
            XCTAssertEqual(ExifOrientation.read(jpeg: try Data(contentsOf: URL(fileURLWithPath: IOFixtures.path("images/" + name)))), o)
            XCTAssertEqual(try maxDiff(try image(name), name), 0, name)
        }
        XCTAssertNil(ExifOrientation.read(jpeg: try Data(contentsOf: URL(fileURLWithPath: IOFixtures.path("images/photo.jpg")))))
    }

    func testInfoReportsSizeAndColourType() throws {
        let cases: [(String, String, String, Int)] = [("rgb.png", "PNG", "RGB", 8), ("gray.png", "PNG", "gray", 8),
                                                      ("rgba.png", "PNG", "RGBA", 8), ("palette.png", "PNG", "palette", 4),
                                                      ("gray_alpha.png", "PNG", "gray+alpha", 8), ("rgb16.png", "PNG", "RGB", 16),
                                                      ("photo.jpg", "JPEG", "YCbCr", 8), ("gray.jpg", "JPEG", "gray", 8),
                                                      ("p6.ppm", "PPM", "RGB", 8)]
        for (name, format, colour, depth) in cases {
            let info = try ImageIO.info(path: IOFixtures.path("images/" + name))
            XCTAssertEqual(info, ImageInfo(format: format, width: 61, height: 47, colorType: colour, bitDepth: depth), name)
        }
    }

    func testPNGRoundTrip() throws {
        let img = try image("rgb.png")
        let data = try PNGCodec.encode(img)
        XCTAssertEqual(try ImageIO.decode(data, file: "mem.png"), img)
        let rgbaData = try PNGCodec.encode(rgba: img.rgba, width: img.width, height: img.height)
        XCTAssertEqual(try ImageIO.decode(rgbaData, file: "mem.png"), img)
        let dir = try IOFixtures.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.png").path
        try PNGCodec.write(rgba: img.rgba, width: img.width, height: img.height, to: out)
        XCTAssertEqual(try ImageIO.load(path: out), img)
    }

    func testLetterboxMatchesUltralytics() throws {
        let img = try image("rgb.png")
        for (size, key) in [(64, "letterbox64"), (96, "letterbox96")] {
            let p = Preprocess.letterbox(img, size: size)
            XCTAssertEqual(p.tensor.shape, [1, 3, size, size])
            let d = try maxDiff(p.image, key)
            print("IO-measure \(key): max |swift - ultralytics| = \(d)")
            XCTAssertEqual(d, 0, "\(key): bilinear resize differs from cv2 by \(d)")
            // The tensor is the padded image / 255, channel-major.
            XCTAssertEqual(p.tensor[0, 1, 0, 0], Float(p.image[0, 0].1) / 255)
        }
        // 61x47 into 64: r = 64/61, new size 64x49, pad 7.5 -> top 7, bottom 8.
        let p = Preprocess.letterbox(img, size: 64)
        XCTAssertEqual(p.transform.padY, 7)
        XCTAssertEqual(p.transform.padX, 0)
        XCTAssertEqual(p.image[10, 3].0, 114)
        // Back to the image with each axis's own scale (64/61 across, 49/47 down), as ultralytics' scale_boxes.
        let (x, y) = p.transform.toImage(x: 32, y: 7 + 24.5)
        XCTAssertEqual(x, 32 * 61 / 64, accuracy: 1e-4)
        XCTAssertEqual(y, 24.5 * 47 / 49, accuracy: 1e-4)
    }

    func testStretchMatchesCV2() throws {
        let small = Preprocess.stretch(try image("rgb.png"), size: 40)
        XCTAssertEqual(try maxDiff(small.image, "stretch40"), 0)
        let big = Preprocess.stretch(try image("big.png"), size: 64)
        let d = try maxDiff(big.image, "stretch64_big")
        print("IO-measure stretch40: \(try maxDiff(small.image, "stretch40")), stretch64_big: \(d)")
        XCTAssertEqual(d, 0, "downscale by 3.1x differs from cv2 by \(d)")
        XCTAssertEqual(big.transform.scaleX, 64 / 200)
        XCTAssertEqual(big.transform.scaleY, 64 / 150)
    }

    func testDetrResizeNormalizeMatchesTransformers() throws {
        let img = try image("big.png")
        XCTAssertEqual(Preprocess.detrSize(height: 150, width: 200, shortestEdge: 32, longestEdge: 40).height, 30)
        XCTAssertEqual(Preprocess.detrSize(height: 480, width: 640, shortestEdge: 800, longestEdge: 1333).width, 1066)
        let p = Preprocess.resizeNormalize(img, shortestEdge: 32, longestEdge: 40)
        let ref = try Self.expected.tensor("detr32")
        XCTAssertEqual(p.tensor.shape, [1] + ref.shape)
        // Exact up to float rounding of the normalisation (one 8-bit step would be 1/255/0.229 = 0.017).
        var m: Float = 0
        for i in 0 ..< ref.count { m = max(m, abs(p.tensor.data[i] - ref.data[i])) }
        print("IO-measure detr32: max |swift - transformers| = \(m)")
        XCTAssertLessThanOrEqual(m, 1e-5, "antialiased resize differs from transformers by \(m)")
    }

    func testDetrUpscaleAndPillowPrecision() throws {
        let p = Preprocess.resizeNormalize(try image("rgb.png"), shortestEdge: 64, longestEdge: 100)
        let ref = try Self.expected.tensor("detr64_up")
        XCTAssertEqual(p.tensor.shape, [1] + ref.shape)
        var m: Float = 0
        for i in 0 ..< ref.count { m = max(m, abs(p.tensor.data[i] - ref.data[i])) }
        XCTAssertLessThanOrEqual(m, 1e-5, "upscaling differs from transformers by \(m)")
        let pil = ImageResize.bilinearPIL(try image("big.png"), width: 40, height: 30, precision: .pillow)
        XCTAssertEqual(try maxDiff(pil, "pil40x30"), 0)
    }

    func testBrokenImages() {
        let huge = IOFixtures.broken("huge.png")
        assertFileError(huge, ["100000x100000", "refused before decoding"]) { try ImageIO.load(path: huge) }
        let tj = IOFixtures.broken("truncated.jpg")
        assertFileError(tj, ["jpeg", "truncated"]) { try ImageIO.load(path: tj) }
        let tp = IOFixtures.broken("truncated.png")
        assertFileError(tp, ["png"]) { try ImageIO.load(path: tp) }
        let txt = IOFixtures.broken("not_an_image.png")
        assertFileError(txt, ["not a PNG, JPEG or PPM"]) { try ImageIO.load(path: txt) }
        assertFileError(IOFixtures.broken("empty.pt"), ["empty"]) { try ImageIO.load(path: IOFixtures.broken("empty.pt")) }
        assertFileError("mem.ppm", ["truncated"]) { try ImageIO.decode(Data("P6\n4 4\n255\nabc".utf8), file: "mem.ppm") }
        assertFileError("mem.ppm", ["refused"]) { try ImageIO.decode(Data("P6\n100000 100000\n255\n".utf8), file: "mem.ppm") }
    }

    func testSampleImagesOpen() throws {
        for url in Assets.sampleImages {
            let img = try ImageIO.load(path: url.path)
            XCTAssertGreaterThan(img.width * img.height, 0, url.lastPathComponent)
        }
    }
}
