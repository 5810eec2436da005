import Foundation

/// An error opening or decoding a user's file (checkpoint, config, image).
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

/// Reads a whole file for decoding. The file is only ever opened for reading; large files are
/// memory-mapped. A directory, a missing file or an unreadable one becomes a `FileFormatError`.
func readUserFile(_ path: String, maxBytes: Int = Int.max) throws -> Data {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw FileFormatError(file: path, problem: "no such file")
    }
    if isDir.boolValue { throw FileFormatError(file: path, problem: "is a directory, not a file") }
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    if size > maxBytes {
        throw FileFormatError(file: path, problem: "file is \(size) bytes, more than the \(maxBytes)-byte limit for this kind of file")
    }
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path), options: size > (1 << 20) ? .alwaysMapped : [])
    } catch {
        throw FileFormatError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
    }
}
