import Foundation

/// Limits that input files are checked against before anything is allocated or computed from them.
///
/// Every integer a file supplies (a pickled tensor's size and stride, a safetensors shape, a model YAML's
/// channels and repeats, an image's width and height) goes through checked arithmetic and one of these
/// budgets, so that a hostile or mistyped file is refused with an error instead of trapping or aborting
/// on an allocation the machine cannot make.
public enum Budget {
    /// Physical memory of this machine in bytes (sysconf), or 8 GiB when the OS does not say.
    public static let physicalMemoryBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 8 << 30 }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : bytes
    }()

    /// The most memory one model (its parameters plus its activations at the chosen input size) may take:
    /// half the machine's memory, so the explorer, the decoded image and the OS keep the rest.
    public static var modelBytes: Int { physicalMemoryBytes / 2 }

    /// The most one tensor read from a file may take as Float32 (a quarter of the machine's memory).
    public static var tensorBytes: Int { physicalMemoryBytes / 4 }

    /// "12.3 GB", for messages.
    public static func describe(bytes: Int) -> String {
        let b = Double(bytes)
        if b >= 1e12 { return String(format: "%.1f TB", b / 1e12) }
        if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
        if b >= 1e6 { return String(format: "%.1f MB", b / 1e6) }
        return "\(bytes) bytes"
    }

    /// The product of `dims` (an element count), or nil when it overflows 64-bit arithmetic.
    public static func product(_ dims: [Int]) -> Int? {
        var n = 1
        for d in dims {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }
}

/// Writes `data` to a user's path, atomically. A failure is one `FileFormatError` naming the path and the
/// reason ("no such directory 'out'", "permission denied", "no space left on device"), never a raw
/// Foundation error.
public func writeUserFile(_ data: Data, to path: String, what: String = "file") throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent().path
    var isDir: ObjCBool = false
    if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
        throw FileFormatError(file: path, problem: "cannot write the \(what): no such directory '\(dir)'")
    }
    if !isDir.boolValue {
        throw FileFormatError(file: path, problem: "cannot write the \(what): '\(dir)' is not a directory")
    }
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
        throw FileFormatError(file: path, problem: "cannot write the \(what): the path is a directory")
    }
    do {
        try data.write(to: url, options: .atomic)
    } catch {
        throw FileFormatError(file: path, problem: "cannot write the \(what): \(fileErrorReason(error))")
    }
}

/// The POSIX reason behind a Foundation file error ("permission denied", "no space left on device"), else its
/// description.
public func fileErrorReason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code))).lowercased()
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))).lowercased() }
    switch CocoaError.Code(rawValue: ns.code) {
    case .fileWriteNoPermission: return "permission denied"
    case .fileWriteOutOfSpace: return "no space left on device"
    case .fileWriteVolumeReadOnly: return "read-only file system"
    case .fileNoSuchFile, .fileWriteInvalidFileName: return "no such file or directory"
    default: return ns.localizedDescription
    }
}
