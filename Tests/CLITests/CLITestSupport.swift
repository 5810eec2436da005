import XCTest
import Foundation

/// Runs the built detr-tui binary and captures its output.
enum CLI {
    /// The directory holding the built products (where the test bundle is).
    static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }

    static var binary: URL { productsDirectory.appendingPathComponent("detr-tui") }

    /// The repository root (tests run from a checkout).
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    struct Result { let status: Int32; let stdout: String; let stderr: String; let stdoutData: Data }

    /// `environment` is added to the test's own; the variables in `unsetting` are left out.
    static func run(_ args: [String], environment: [String: String] = [:], unsetting: [String] = []) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = root
        var env = ProcessInfo.processInfo.environment
        for k in unsetting { env[k] = nil }
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self), stdoutData: o)
    }
}
