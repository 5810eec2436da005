import Foundation
import FuzzSupport
@testable import ModelZoo

/// libFuzzer entry: a model YAML parsed, checked against the registry, and built with the default init
/// under a small parameter budget (16M values), then sized by the shape pass at 640x640.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelYAML(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let text = String(data: Data(bytes: data, count: size), encoding: .utf8),
          let spec = try? ModelSpec.parse(yaml: text, file: "fuzz.yaml") else { return 0 }
    _ = try? spec.validate(knownModules: Set(UltralyticsRegistry.knownModules))
    let weights = WeightStore(.initialise(seed: 0))
    weights.budgetElements = 16 << 20
    if let model = try? UltralyticsModel(name: "fuzz.yaml", spec: spec, weights: weights) {
        _ = model.layerTable(inputSize: GridSize(64, 64))
    }
    return 0
}

@_cdecl("fuzz_yaml_main")
public func fuzzModelYAMLMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzModelYAML)
}
