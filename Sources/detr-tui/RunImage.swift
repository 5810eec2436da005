import ArgumentParser
import Foundation
import ModelZoo

/// Loads an image and preprocesses it as the model's family does (letterbox for YOLOv8, stretch for RT-DETR,
/// resize + ImageNet normalisation for Deformable DETR).
func prepareImage(path: String, for net: any DetectionModel, size: Int) throws -> PreparedModelInput {
    let image = try ImageIO.load(path: path)
    let prepared = Preprocess.prepare(image, net.preprocessing, size: size)
    return PreparedModelInput(tensor: prepared.tensor, transform: prepared.transform)
}
