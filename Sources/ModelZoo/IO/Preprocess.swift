import Foundation
import Tensor

/// An image turned into a model input: the [1, 3, H, W] tensor and the map back to image pixels.
public struct PreparedInput: Sendable {
    public var tensor: Tensor
    public var transform: ImageTransform
    /// The resized (and padded) RGB image the tensor was made from, for drawing.
    public var image: RGBImage
}

/// Preprocessing as each model family does it.
public enum Preprocess {
    /// An image as `model`'s family prepares it, as its reference predictor does: `size` (nil: the model's default)
    /// goes through the model's `InputSizeRule` first (stride rounding); YOLO letterboxes to the smallest
    /// stride-multiple rectangle (the square with `square`), RT-DETR stretches to the square, the DETR family
    /// resizes its shortest edge to the size.
    public static func prepare(_ image: RGBImage, for model: any DetectionModel, size: Int? = nil, square: Bool = false) -> PreparedInput {
        let s = model.checkInputSize(size ?? model.defaultInputSize).size
        return prepare(image, model.preprocessing, size: s, stride: model.inputSizeRule.stride, square: square)
    }

    /// Dispatches on a model's `Preprocessing`. `size`: the letterbox's or stretch's target side (a multiple of
    /// `stride`), or the DETR family's shortest edge. `square`: YOLO's letterbox pads to size x size instead of
    /// the smallest rectangle of `stride` multiples (ultralytics' `LetterBox(auto=True)` in its predictor).
    public static func prepare(_ image: RGBImage, _ kind: Preprocessing, size: Int, stride: Int = 32, square: Bool = false) -> PreparedInput {
        switch kind {
        case .letterbox: return letterbox(image, size: size, auto: !square, stride: stride)
        case .stretch: return stretch(image, size: size)
        case .resizeSquare(let mean, let std): return resizeSquare(image, size: size, mean: mean, std: std)
        case .resizeNormalize(let shortest, let maxSize):
            return resizeNormalize(image, shortestEdge: size, longestEdge: longestEdge(for: size, default: shortest, defaultMax: maxSize))
        }
    }

    /// The (height, width) `prepare` makes of an image of `imageWidth` x `imageHeight` (no pixels touched).
    public static func inputSize(imageWidth w: Int, imageHeight h: Int, _ kind: Preprocessing, size: Int, stride: Int = 32,
                                 square: Bool = false) -> GridSize {
        switch kind {
        case .letterbox:
            let g = letterboxGeometry(imageWidth: w, imageHeight: h, height: size, width: size, auto: !square, stride: stride)
            return GridSize(g.outputHeight, g.outputWidth)
        case .stretch, .resizeSquare: return GridSize(size, size)
        case .resizeNormalize(let shortest, let maxSize):
            let (oh, ow) = detrSize(height: h, width: w, shortestEdge: size, longestEdge: longestEdge(for: size, default: shortest, defaultMax: maxSize))
            return GridSize(oh, ow)
        }
    }

    /// The DETR family's longest-edge cap for a shortest edge of `size`: `defaultMax` at the default size, else the
    /// same proportion (800 -> 1333, 400 -> 667).
    public static func longestEdge(for size: Int, default shortest: Int, defaultMax: Int) -> Int {
        size == shortest ? defaultMax : max(size, Int((Double(size) * Double(defaultMax) / Double(shortest)).rounded()))
    }

    /// Where ultralytics' LetterBox puts an image: the resized size and the padding on each side.
    public struct LetterboxGeometry: Sendable, Equatable {
        public var ratio: Double
        public var resizedWidth: Int, resizedHeight: Int
        public var top: Int, bottom: Int, left: Int, right: Int
        public var outputWidth: Int { resizedWidth + left + right }
        public var outputHeight: Int { resizedHeight + top + bottom }
    }

    /// LetterBox.get_params: r = min(H/h, W/w), the resized size (round(w*r), round(h*r)) (at least 1), the padding
    /// (all of it, or with `auto` only its remainder modulo `stride`) split round(d/2 - 0.1) before and
    /// round(d/2 + 0.1) after (Python's round: half to even).
    public static func letterboxGeometry(imageWidth w: Int, imageHeight h: Int, height: Int, width: Int, auto: Bool,
                                         stride: Int) -> LetterboxGeometry {
        let r = min(Double(height) / Double(h), Double(width) / Double(w))
        let nw = max(Int((Double(w) * r).rounded(.toNearestOrEven)), 1)
        let nh = max(Int((Double(h) * r).rounded(.toNearestOrEven)), 1)
        var dw = Double(width - nw), dh = Double(height - nh)
        if auto {
            // np.mod: the remainder has the divisor's sign (a resized side may exceed the target by rounding).
            let s = max(stride, 1)
            dw = Double(((width - nw) % s + s) % s)
            dh = Double(((height - nh) % s + s) % s)
        }
        dw /= 2
        dh /= 2
        return LetterboxGeometry(ratio: r, resizedWidth: nw, resizedHeight: nh,
                                 top: Int((dh - 0.1).rounded(.toNearestOrEven)), bottom: Int((dh + 0.1).rounded(.toNearestOrEven)),
                                 left: Int((dw - 0.1).rounded(.toNearestOrEven)), right: Int((dw + 0.1).rounded(.toNearestOrEven)))
    }

    /// Ultralytics' LetterBox (center, scaleup, pad value 114): scale r = min(H/h, W/w), resize to
    /// (round(w*r), round(h*r)) with cv2 INTER_LINEAR, pad top/left round(d/2 - 0.1) and bottom/right
    /// round(d/2 + 0.1) (Python's round: half to even), then RGB / 255. With `auto`, padding is reduced to
    /// the remainder modulo `stride` (the rectangular inference ultralytics' predictor uses for .pt models). The
    /// transform back to the image uses each axis's own scale (resized / original side), as scale_boxes does.
    public static func letterbox(_ image: RGBImage, size: Int, auto: Bool = false, stride: Int = 32, padValue: UInt8 = 114) -> PreparedInput {
        letterbox(image, height: size, width: size, auto: auto, stride: stride, padValue: padValue)
    }

    public static func letterbox(_ image: RGBImage, height: Int, width: Int, auto: Bool = false, stride: Int = 32, padValue: UInt8 = 114) -> PreparedInput {
        let h = image.height, w = image.width
        let g = letterboxGeometry(imageWidth: w, imageHeight: h, height: height, width: width, auto: auto, stride: stride)
        let nw = g.resizedWidth, nh = g.resizedHeight, top = g.top, left = g.left
        let resized = ImageResize.bilinearCV(image, width: nw, height: nh)
        let ow = g.outputWidth, oh = g.outputHeight
        var padded = RGBImage(width: ow, height: oh, fill: (padValue, padValue, padValue))
        for y in 0 ..< nh {
            let srcBase = y * nw * 3, dstBase = ((y + top) * ow + left) * 3
            padded.pixels.replaceSubrange(dstBase ..< dstBase + nw * 3, with: resized.pixels[srcBase ..< srcBase + nw * 3])
        }
        // Per-axis scales of the rounded resize, as ultralytics' scale_boxes maps boxes back ("LetterBox rounds each side").
        let t = ImageTransform(scaleX: Float(nw) / Float(w), scaleY: Float(nh) / Float(h), padX: Float(left), padY: Float(top),
                               imageWidth: w, imageHeight: h, inputWidth: ow, inputHeight: oh)
        return PreparedInput(tensor: tensor(padded, mean: nil, std: nil), transform: t, image: padded)
    }

    /// RT-DETR's preprocessing (LetterBox with scale_fill): stretch to size x size with cv2 INTER_LINEAR, RGB / 255.
    public static func stretch(_ image: RGBImage, size: Int) -> PreparedInput {
        let resized = ImageResize.bilinearCV(image, width: size, height: size)
        let t = ImageTransform(scaleX: Float(size) / Float(image.width), scaleY: Float(size) / Float(image.height), padX: 0, padY: 0,
                               imageWidth: image.width, imageHeight: image.height, inputWidth: size, inputHeight: size)
        return PreparedInput(tensor: tensor(resized, mean: nil, std: nil), transform: t, image: resized)
    }

    /// transformers' RTDetrImageProcessor: resize to size x size (antialiased bilinear on 8-bit values, its torchvision
    /// backend), RGB / 255, then (v - mean) / std when given.
    public static func resizeSquare(_ image: RGBImage, size: Int, mean: [Float]?, std: [Float]?) -> PreparedInput {
        let resized = ImageResize.bilinearPIL(image, width: size, height: size, precision: .torchvision)
        let t = ImageTransform(scaleX: Float(size) / Float(image.width), scaleY: Float(size) / Float(image.height), padX: 0, padY: 0,
                               imageWidth: image.width, imageHeight: image.height, inputWidth: size, inputHeight: size)
        return PreparedInput(tensor: tensor(resized, mean: mean, std: std), transform: t, image: resized)
    }

    /// The output (height, width) of the Hugging Face DETR resize: shortest edge to `shortestEdge` unless the
    /// longest would then exceed `longestEdge` (transformers' get_size_with_aspect_ratio, truncating like `int()`).
    public static func detrSize(height: Int, width: Int, shortestEdge: Int, longestEdge: Int?) -> (height: Int, width: Int) {
        var size = shortestEdge
        var raw: Double?
        if let maxSize = longestEdge {
            let mn = Double(min(height, width)), mx = Double(max(height, width))
            if mx / mn * Double(size) > Double(maxSize) {
                raw = Double(maxSize) * mn / mx
                size = Int(raw!.rounded(.toNearestOrEven))
            }
        }
        if (height <= width && height == size) || (width <= height && width == size) { return (height, width) }
        if width < height {
            let oh = raw.map { Int($0 * Double(height) / Double(width)) } ?? Int(Double(size) * Double(height) / Double(width))
            return (oh, size)
        }
        let ow = raw.map { Int($0 * Double(width) / Double(height)) } ?? Int(Double(size) * Double(width) / Double(height))
        return (size, ow)
    }

    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// Hugging Face DETR / Deformable DETR preprocessing: resize (antialiased bilinear on 8-bit values, as
    /// transformers' default torchvision backend does; `.pillow` precision gives its PIL backend) so the shortest edge is `shortestEdge` and the longest at most `longestEdge`, then
    /// RGB / 255 and ImageNet mean/std. No padding (a single image is its own batch maximum).
    public static func resizeNormalize(_ image: RGBImage, shortestEdge: Int, longestEdge: Int?,
                                       precision: ImageResize.WeightPrecision = .torchvision) -> PreparedInput {
        let (oh, ow) = detrSize(height: image.height, width: image.width, shortestEdge: shortestEdge, longestEdge: longestEdge)
        let resized = ImageResize.bilinearPIL(image, width: ow, height: oh, precision: precision)
        let t = ImageTransform(scaleX: Float(ow) / Float(image.width), scaleY: Float(oh) / Float(image.height), padX: 0, padY: 0,
                               imageWidth: image.width, imageHeight: image.height, inputWidth: ow, inputHeight: oh)
        return PreparedInput(tensor: tensor(resized, mean: imagenetMean, std: imagenetStd), transform: t, image: resized)
    }

    /// [1, 3, H, W] from RGB bytes: v / 255, then (v - mean) / std when given.
    public static func tensor(_ image: RGBImage, mean: [Float]?, std: [Float]?) -> Tensor {
        let hw = image.width * image.height
        return Tensor(shape: [1, 3, image.height, image.width]) { out in
            for c in 0 ..< 3 {
                let m = mean?[c] ?? 0, s = std?[c] ?? 1
                for i in 0 ..< hw {
                    let v = Float(image.pixels[3 * i + c]) / 255
                    out[c * hw + i] = mean == nil ? v : (v - m) / s
                }
            }
        }
    }
}
