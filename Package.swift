// swift-tools-version:6.0
import Foundation
import PackageDescription

let package = Package(
    name: "detr-tui",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "detr-tui", targets: ["detr-tui"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // LAPACK from the same OpenBLAS (the SVD behind EigenCAM); only Tensor/SVD.swift imports it.
        .systemLibrary(name: "CLAPACK", path: "Sources/CLAPACK", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CNcurses", path: "Sources/CNcurses", pkgConfig: "ncursesw",
                       providers: [.apt(["libncurses-dev"])]),
        .systemLibrary(name: "CChafa", path: "Sources/CChafa", pkgConfig: "chafa",
                       providers: [.apt(["libchafa-dev", "libglib2.0-dev"])]),
        .systemLibrary(name: "CImage", path: "Sources/CImage",
                       providers: [.apt(["libpng-dev", "libjpeg-dev", "libturbojpeg0-dev"])]),
        .target(name: "CKernels", path: "Sources/CKernels", linkerSettings: [.linkedLibrary("m")]),
        .target(name: "CTerminalGuard", path: "Sources/CTerminalGuard"),
        .target(name: "Tensor", dependencies: ["CBLAS", "CLAPACK", "CKernels"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        // ONNX files: the onnx.proto messages (generated once, committed) and an interpreter over Tensor's ops.
        .target(name: "ONNX", dependencies: ["Tensor", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "ModelZoo", dependencies: [
            "Tensor", "CImage", "ONNX",
            .product(name: "Yams", package: "Yams"),
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["Ultralytics/FLOPS.md"]),
        .target(name: "Explorer", dependencies: ["ModelZoo", "Tensor", "CNcurses", "CChafa", "CTerminalGuard"]),
        .executableTarget(name: "detr-tui", dependencies: [
            "Explorer", "ModelZoo", "ONNX", "Tensor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // A loopback HTTP server for the download tests (in no product; listens on 127.0.0.1 only).
        .target(name: "LoopbackHTTP", path: "Tests/LoopbackHTTP"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX", "ModelZoo", "Tensor"]),
        .testTarget(name: "ModelZooTests", dependencies: ["ModelZoo", "Tensor", "LoopbackHTTP"]),
        .testTarget(name: "ExplorerTests", dependencies: ["Explorer", "ModelZoo", "Tensor"], exclude: ["Snapshots"]),
        .testTarget(name: "CLITests", dependencies: ["detr-tui", "ModelZoo", "Explorer", "LoopbackHTTP"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (Tests/Fuzz), declared only for `make fuzz`, which sets DETR_TUI_FUZZ and builds them with
// -sanitize=fuzzer,address in their own scratch path: `swift build` and `make test` never see them.
if ProcessInfo.processInfo.environment["DETR_TUI_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzSupport", path: "Tests/Fuzz/Support"))
    for (name, dir, deps) in [("fuzz-unpickler", "Unpickler", ["ModelZoo"]), ("fuzz-torchzip", "TorchZip", ["ModelZoo"]),
                              ("fuzz-safetensors", "Safetensors", ["Tensor"]), ("fuzz-yaml", "ModelYAML", ["ModelZoo"]),
                              ("fuzz-image", "Image", ["ModelZoo"]), ("fuzz-onnx", "ONNX", ["ONNX", "ModelZoo"])] {
        package.targets.append(.executableTarget(name: name, dependencies: (deps + ["FuzzSupport"]).map { .target(name: $0) }, path: "Tests/Fuzz/\(dir)",
                                                 swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
