import Foundation
import Tensor

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
