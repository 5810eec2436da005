import Explorer
import Foundation
import ModelZoo
import Tensor

extension Backend {
    /// Models through ModelZoo's `openModel`, images through its loader and the family's preprocessing.
    static var standard: Backend {
        Backend(
            open: { model, weights in
                throw ExplorerError("\(model): no model builder is available in this build yet")
            },
            prepare: { image, model, size in
                throw ExplorerError("no image loader is available in this build yet")
            })
    }
}

struct ExplorerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
