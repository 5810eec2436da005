import Foundation

/// An error opening or decoding a user's file (checkpoint, config, image, catalogue entry, safetensors).
/// It always names the file and says what is wrong with it.
public struct FileFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file the problem was found in (as the user gave it).
    public let file: String
    /// What is wrong, in a sentence fragment ("truncated zip archive", ...).
    public let problem: String

    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(file): \(problem)" }
}

extension FileFormatError: LocalizedError {
    public var errorDescription: String? { description }
}
