import Explorer
import Foundation
import ModelZoo
import Tensor

extension Backend {
    /// Models through ModelZoo's `openModel`, images through its loader and the family's preprocessing at the size
    /// the model's rule makes of the requested one (`warn` gets the rule's warning, e.g. a size rounded up to the
    /// stride); `square` keeps YOLO's square letterbox. With `inputTensor`, the input is read from a safetensors file
    /// (key `images`, [1, C, H, W], checked against the model's stride) instead.
    static func standard(inputTensor: String? = nil, square: Bool = false, warn: (@Sendable (String) -> Void)? = nil) -> Backend {
        Backend(
            open: { model, weights in
                try openModel(model, weights: weights)
            },
            prepare: { image, model, size in
                if let inputTensor { return try readInputTensor(inputTensor, model: model) }
                guard let image else { throw CommandError("no image chosen (i picks a sample, I types a path)") }
                let prepared = try prepareInput(for: model, image: image, input: nil, imgsz: size, square: square, warn: { warn?($0) })
                return (prepared.tensor, displayImage(prepared.tensor, preprocessing: model.preprocessing))
            })
    }

    static var standard: Backend { standard() }
}

/// Reads a preprocessed input from a safetensors file, checks it against the model (channels, stride) and makes an
/// RGB picture of it for overlays.
func readInputTensor(_ path: String, model: any DetectionModel) throws -> (input: Tensor, display: Tensor?) {
    guard FileManager.default.fileExists(atPath: path) else { throw CommandError("\(path): no such file") }
    let file = try SafetensorsFile(path: path)
    guard file.contains("images") else {
        throw CommandError("\(path): no tensor named \"images\" (it holds: \(file.names.sorted().joined(separator: ", ")))")
    }
    let t = try file.tensor("images")
    do {
        try model.validateInput(t.shape)
    } catch {
        throw CommandError("\(path): \"images\" \(t.shape) does not fit \(error); pad or resize it, or give the picture with --image")
    }
    return (t, displayImage(t, preprocessing: model.preprocessing))
}

/// An RGB picture in [0, 1] of a model input (undoing ImageNet normalisation where the family applies it).
func displayImage(_ input: Tensor, preprocessing: Preprocessing) -> Tensor? {
    guard input.rank == 4, input.shape[1] == 3 else { return nil }
    let (h, w) = (input.shape[2], input.shape[3])
    var data = Array(input.data[0 ..< 3 * h * w])
    if case .resizeNormalize = preprocessing {
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        for c in 0 ..< 3 { for i in 0 ..< h * w { data[c * h * w + i] = data[c * h * w + i] * std[c] + mean[c] } }
    }
    return Tensor(shape: [3, h, w], data: data)
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
