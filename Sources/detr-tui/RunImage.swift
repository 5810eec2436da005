import ArgumentParser
import Foundation
import ModelZoo
import Tensor

/// A model input, how it maps back to the image, and how it was made.
struct PreparedModelInput {
    var tensor: Tensor
    var transform: ImageTransform
    /// The input size after the model's rule (nil for a --input tensor, which is taken as it is).
    var imgsz: Int?
    /// How the input was made: letterbox, letterbox-square, stretch, shortest-edge or tensor.
    var resize: String
    /// One line for `run`: the input size used and how it was reached.
    var summary: String
}

/// Reads --input (key `images`, checked against the model's stride) or loads and preprocesses --image as the model's
/// family does at `imgsz` (nil: the model's default) after the model's size rule; `warn` gets the rule's warning
/// (e.g. a size rounded up to the stride).
func prepareInput(for net: any DetectionModel, image: String?, input: String?, imgsz: Int?, square: Bool = false,
                  warn: (String) -> Void = { _ in }) throws -> PreparedModelInput {
    if let input {
        let t = try readInputTensor(input, model: net).input
        let (h, w) = (t.shape[2], t.shape[3])
        return PreparedModelInput(tensor: t, transform: .identity(width: w, height: h), imgsz: nil, resize: "tensor",
                                  summary: "input \(w)x\(h) (width x height): the tensor from \(input) as it is")
    }
    guard let image else { throw CommandError("give --image or --input") }
    let checked = net.checkInputSize(imgsz ?? net.defaultInputSize)
    if let w = checked.warning { warn(w) }
    let picture = try ImageIO.load(path: image)
    let p = Preprocess.prepare(picture, for: net, size: checked.size, square: square)
    let (w, h) = (p.transform.inputWidth, p.transform.inputHeight)
    let size = checked.size
    let head = "input \(w)x\(h) (width x height): "
    let resize: String, how: String
    switch net.preprocessing {
    case .letterbox where square:
        resize = "letterbox-square"
        how = "the image letterboxed into the \(size)x\(size) square (--square)"
    case .letterbox:
        resize = "letterbox"
        how = "the image scaled to fit \(size) and padded to the nearest multiples of \(net.inputSizeRule.stride), as ultralytics' predict"
    case .stretch:
        resize = "stretch"
        how = "the image stretched to the \(size)x\(size) square" + (net.family == "RT-DETR" ? ", as ultralytics' predict for RT-DETR" : "")
    case .resizeSquare(let mean, _):
        resize = "resize-square"
        how = "the image resized to the \(size)x\(size) square" + (mean == nil ? "" : ", normalised by the processor's mean and std") + ", as transformers' RTDetrImageProcessor"
    case .resizeNormalize(let shortest, let maxSize):
        resize = "shortest-edge"
        how = "the image's shortest edge resized to \(size), the longest at most \(Preprocess.longestEdge(for: size, default: shortest, defaultMax: maxSize)), as transformers' image processor"
    }
    return PreparedModelInput(tensor: p.tensor, transform: p.transform, imgsz: size, resize: resize, summary: head + how)
}
