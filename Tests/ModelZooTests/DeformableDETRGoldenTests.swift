import Foundation
import XCTest
@testable import ModelZoo
import Tensor

/// Deformable DETR against Hugging Face transformers (Tests/Fixtures/deformable, written by
/// scripts/fixtures/gen_deformable.py): each variant's saved config.json + model.safetensors is opened unchanged,
/// run on the same input, and every tensor must agree within 1e-3 of its largest magnitude.
final class DeformableDETRGoldenTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/deformable")

    struct Mismatch: Error, CustomStringConvertible { let description: String }

    /// Max abs error relative to the expected tensor's largest finite magnitude; infinities must match exactly.
    static func compare(_ name: String, _ got: Tensor?, _ want: Tensor, rel: Float = 1e-3) throws -> Float {
        guard let got else { throw Mismatch(description: "\(name): missing (expected shape \(want.shape))") }
        guard got.count == want.count else { throw Mismatch(description: "\(name): shape \(got.shape), expected \(want.shape)") }
        var scale: Float = 0
        for v in want.data where v.isFinite { scale = max(scale, abs(v)) }
        var worst: Float = 0, at = 0
        for i in 0 ..< want.count {
            let a = got.data[i], b = want.data[i]
            if !b.isFinite || !a.isFinite {
                if a != b { throw Mismatch(description: "\(name): element \(i) is \(a), expected \(b)") }
                continue
            }
            let e = abs(a - b)
            if e > worst { worst = e; at = i }
        }
        let tol = rel * max(scale, 1e-6)
        if worst > tol {
            throw Mismatch(description: "\(name) \(want.shape): max abs error \(worst) at element \(at) (got \(got.data[at]), expected \(want.data[at])) exceeds \(tol) = \(rel) x max |expected| \(scale)")
        }
        return worst / max(scale, 1e-6)
    }

    /// Runs the model in `dir` on its fixture input and compares everything; returns (name, relative error) pairs.
    static func check(directory dir: URL) throws -> [(String, Float)] {
        let model = try DeformableDETR.open(directory: dir)
        let expected = try SafetensorsFile(path: dir.appendingPathComponent("expected.safetensors").path).allTensors()
        let trace = Trace(keepTensors: true)
        // The golden detections are transformers' top 100 with threshold 0.
        let out = try model.forward(expected["pixel_values"]!, trace: trace, postprocess: PostprocessOptions(confidence: 0))
        let probes = trace.snapshot.probeTensors
        var results: [(String, Float)] = []
        var failures: [String] = []
        func cmp(_ name: String, _ got: Tensor?, _ want: Tensor?) {
            guard let want else { failures.append("\(name): not in the fixture"); return }
            do { results.append((name, try compare(name, got, want))) } catch { failures.append("\(error)") }
        }
        for key in ["encoder.last_hidden_state", "decoder.last_hidden_state", "logits", "pred_boxes"] {
            cmp(key, out.extras[key], expected[key])
        }
        let c = model.config
        for l in 0 ..< c.encoderLayers {
            for s in ["sampling_locations", "attention_weights"] {
                cmp("encoder.layers.\(l).\(s)", probes["encoder.layers.\(l).self_attn.\(s)"], expected["encoder.layers.\(l).\(s)"])
            }
        }
        let inter = expected["decoder.intermediate_reference_points"]!   // [1, layers, Q, 2|4]
        let hiddens = expected["decoder.intermediate_hidden_states"]!     // [1, layers, Q, d]
        cmp("init_reference_points", probes[c.twoStage ? "two_stage.init_reference_points" : "reference_points.init"], expected["init_reference_points"])
        for l in 0 ..< c.decoderLayers {
            for s in ["sampling_locations", "attention_weights"] {
                cmp("decoder.layers.\(l).\(s)", probes["decoder.layers.\(l).encoder_attn.\(s)"], expected["decoder.layers.\(l).\(s)"])
            }
            let step = trace.snapshot.steps.first { $0.path == "decoder.layers.\(l)" }
            cmp("decoder.intermediate_hidden_states[\(l)]", step?.output, slice(hiddens, axis: 1, range: l ..< l + 1))
            if c.withBoxRefine {
                cmp("decoder.intermediate_reference_points[\(l)]", probes["decoder.layers.\(l).boxes"],
                    slice(inter, axis: 1, range: l ..< l + 1))
            }
        }
        if c.twoStage, let cls = expected["enc_outputs_class"] {
            // The proposal scores are the top-K of the first class logit, sorted, through a sigmoid.
            let first = (0 ..< cls.shape[1]).map { cls.data[$0 * cls.shape[2]] }.sorted(by: >).prefix(c.twoStageNumProposals)
            let want = Tensor(shape: [first.count], data: first.map { 1 / (1 + Foundation.exp(-$0)) })
            cmp("two_stage.scores", probes["two_stage.query_selection.scores"], want)
        }
        // Detections: the same (label, box, score) rows, in the same order.
        let dets = expected["detections"]!
        let got = probes["detections"]
        cmp("detections", got, dets)
        if let got, got.count == dets.count {
            for i in 0 ..< dets.shape[0] where got.data[i * 6 + 5] != dets.data[i * 6 + 5] {
                failures.append("detection \(i): label \(got.data[i * 6 + 5]), expected \(dets.data[i * 6 + 5])")
                break
            }
        }
        if !failures.isEmpty {
            throw Mismatch(description: "\(dir.lastPathComponent): \(failures.count) mismatches:\n" + failures.joined(separator: "\n"))
        }
        return results
    }

    func run(_ variant: String) throws {
        let results = try Self.check(directory: Self.fixtures.appendingPathComponent(variant))
        XCTAssertGreaterThan(results.count, 8)
        let worst = results.max { $0.1 < $1.1 }!
        print("deformable \(variant): \(results.count) tensors, worst relative error \(worst.1) (\(worst.0))")
    }

    func testSingleScale() throws { try run("single-scale") }
    func testMultiScale() throws { try run("multi-scale") }
    func testBoxRefine() throws { try run("box-refine") }
    func testTwoStage() throws { try run("two-stage") }

    /// The full-size model written by `gen_deformable.py --full DIR`, when DEFORMABLE_DETR_FULL=DIR is set.
    func testFullSizeWhenProvided() throws {
        guard let dir = ProcessInfo.processInfo.environment["DEFORMABLE_DETR_FULL"], !dir.isEmpty else {
            throw XCTSkip("set DEFORMABLE_DETR_FULL to a directory written by gen_deformable.py --full")
        }
        let results = try Self.check(directory: URL(fileURLWithPath: dir))
        for (name, err) in results { print("full \(name): relative error \(err)") }
    }
}

/// The timm key layout of the released SenseTime checkpoints (conv1/bn1, layer{s}.{b}.conv{i}/bn{i},
/// downsample.0/1): the fixture's transformers-layout weights renamed to timm names must give the same outputs.
final class DeformableDETRTimmLayoutTests: XCTestCase {
    static func timmName(_ key: String) -> String {
        let prefix = "model.backbone.conv_encoder.model."
        guard key.hasPrefix(prefix) else { return key }
        var k = String(key.dropFirst(prefix.count))
        func sub(_ pattern: String, _ template: String) {
            let re = try! NSRegularExpression(pattern: pattern)
            k = re.stringByReplacingMatches(in: k, range: NSRange(k.startIndex..., in: k), withTemplate: template)
        }
        sub(#"^embedder\.embedder\.convolution\."#, "conv1.")
        sub(#"^embedder\.embedder\.normalization\."#, "bn1.")
        sub(#"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\."#, "layerS$1.$2.downsample.0.")
        sub(#"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\."#, "layerS$1.$2.downsample.1.")
        sub(#"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\."#, "layerS$1.$2.convI$3.")
        sub(#"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\."#, "layerS$1.$2.bnI$3.")
        // Stage and conv indices are 1-based in timm.
        for n in (0 ..< 9).reversed() {
            k = k.replacingOccurrences(of: "layerS\(n).", with: "layer\(n + 1).")
            k = k.replacingOccurrences(of: ".convI\(n).", with: ".conv\(n + 1).").replacingOccurrences(of: ".bnI\(n).", with: ".bn\(n + 1).")
        }
        return prefix + k
    }

    func testTimmKeyLayoutGivesTheSameOutputs() throws {
        let dir = DeformableDETRGoldenTests.fixtures.appendingPathComponent("multi-scale")
        var config = try DeformableDETRConfig.load(dir.appendingPathComponent("config.json"))
        let tensors = try SafetensorsFile(path: dir.appendingPathComponent("model.safetensors").path).allTensors()
        var renamed: [String: Tensor] = [:]
        for (k, t) in tensors { renamed[Self.timmName(k)] = t }
        XCTAssertNotNil(renamed["model.backbone.conv_encoder.model.conv1.weight"])
        XCTAssertNotNil(renamed["model.backbone.conv_encoder.model.layer2.1.bn3.running_var"])
        XCTAssertNotNil(renamed["model.backbone.conv_encoder.model.layer2.0.downsample.0.weight"])
        let reference = try DeformableDETR.open(directory: dir)
        config.backbone.layout = .timm
        let timm = try DeformableDETR(config: config, store: WeightStore(.checkpoint(name: "renamed", tensors: renamed)))
        let input = try SafetensorsFile(path: dir.appendingPathComponent("expected.safetensors").path).tensor("pixel_values")
        let a = try reference.forward(input, trace: nil), b = try timm.forward(input, trace: nil)
        XCTAssertEqual(a.extras["logits"], b.extras["logits"])
        XCTAssertEqual(a.extras["pred_boxes"], b.extras["pred_boxes"])
        // And the transformers layout refuses the timm names (strict keys).
        XCTAssertThrowsError(try DeformableDETR(config: reference.config, store: WeightStore(.checkpoint(name: "renamed", tensors: renamed))))
    }
}
