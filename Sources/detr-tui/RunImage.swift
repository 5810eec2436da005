import ArgumentParser
import Foundation
import ModelZoo

/// Loads an image and preprocesses it as the model's family does.
func prepareImage(path: String, for net: any DetectionModel, size: Int) throws -> PreparedModelInput {
    throw ValidationError("\(path): image decoding is not linked in this build yet; pass a preprocessed tensor with --input")
}
