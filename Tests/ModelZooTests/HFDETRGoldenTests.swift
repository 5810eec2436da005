import Foundation
import XCTest
@testable import ModelZoo
import Tensor

/// The Hugging Face real-time DETRs against transformers (Tests/Fixtures/hfdetr, written by
/// scripts/fixtures/gen_hf_detr.py from tiny random-init configs with perturbed batch-norm statistics): each saved
/// directory is opened unchanged through the model_type registry, run on the fixture's input, and compared layer by
/// layer (backbone maps, encoder projections, AIFI attention, encoder outputs, query selection, every decoder
/// layer's sampling locations, attention weights, boxes and logits) within 1e-4 of each tensor's largest magnitude.
final class HFDETRGoldenTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hfdetr")

    /// A JSON object as config.json parses (through JSONSerialization, as the loader reads files).
    static func parse(_ object: Any) throws -> ConfigValue {
        ConfigValue(json: try JSONSerialization.jsonObject(with: try JSONSerialization.data(withJSONObject: object)))
    }

    static func expected(_ name: String) throws -> [String: Tensor] {
        try SafetensorsFile(path: fixtures.appendingPathComponent("\(name)/expected.safetensors").path).allTensors()
    }

    /// The rows of an [S, 4] anchor-coordinate tensor whose anchors are invalid (transformers: the largest float)
    /// set to 0 in both tensors, after checking they are invalid in both.
    static func maskInvalid(_ got: Tensor, _ want: Tensor) throws -> (Tensor, Tensor) {
        var g = got.reshaped([got.count]), w = want.reshaped([want.count])
        for i in 0 ..< w.count where Swift.abs(w.data[i]) > 1e37 {
            guard Swift.abs(g.data[i]) > 1e37 else {
                throw DeformableDETRGoldenTests.Mismatch(description: "element \(i) is \(g.data[i]), expected an invalid anchor (\(w.data[i]))")
            }
            g.data[i] = 0
            w.data[i] = 0
        }
        return (g, w)
    }

    /// Opens `dir` (a fixture directory) and compares every tensor with the goldens of `goldens`.
    static func checkRTDETR(_ dir: String, goldens: String = "rt-detr") throws -> [(String, Float)] {
        let want = try expected(goldens)
        let model = try openModel(fixtures.appendingPathComponent(dir).path)
        guard let net = model as? HFRTDETR else { throw DeformableDETRGoldenTests.Mismatch(description: "\(dir) opened as \(type(of: model))") }
        let trace = Trace(keepTensors: true)
        let out = try net.forward(want["pixel_values"]!, trace: trace, postprocess: PostprocessOptions(confidence: 0))
        let probes = trace.snapshot.probeTensors
        var results: [(String, Float)] = [], failures: [String] = []
        func cmp(_ name: String, _ got: Tensor?, _ expected: Tensor?, rel: Float = 1e-4) {
            guard let expected else { failures.append("\(name): not in the fixture"); return }
            do { results.append((name, try DeformableDETRGoldenTests.compare(name, got, expected, rel: rel))) } catch { failures.append("\(error)") }
        }
        for i in 0 ..< 3 {
            cmp("backbone.feature_maps.\(i)", out.extras["backbone.feature_maps.\(i)"], want["backbone.feature_maps.\(i)"])
            cmp("encoder.input_proj.\(i)", out.extras["encoder.input_proj.\(i)"], want["encoder.input_proj.\(i)"])
            cmp("encoder.last_hidden_state.\(i)", out.extras["encoder.last_hidden_state.\(i)"], want["encoder.last_hidden_state.\(i)"])
        }
        cmp("encoder.aifi.0.attention", probes["model.encoder.encoder.0.layers.0.attention"], want["encoder.aifi.0.attention"])
        cmp("enc_outputs_class", out.extras["enc_outputs_class"], want["enc_outputs_class"])
        if let g = out.extras["enc_outputs_coord_logits"], let w = want["enc_outputs_coord_logits"] {
            do {
                let (a, b) = try maskInvalid(g, w)
                cmp("enc_outputs_coord_logits (valid anchors)", a, b)
            } catch { failures.append("enc_outputs_coord_logits: \(error)") }
        }
        cmp("enc_topk_indices", out.extras["indices"], want["enc_topk_indices"], rel: 0)
        cmp("init_reference_points", out.extras["reference_logits"], want["init_reference_points"])
        let boxes = want["intermediate_reference_points"]!, logits = want["intermediate_logits"]!
        for l in 0 ..< net.config.decoderLayers {
            for s in ["sampling_locations", "attention_weights"] {
                cmp("decoder.layers.\(l).\(s)", probes["model.decoder.layers.\(l).encoder_attn.\(s)"], want["decoder.layers.\(l).\(s)"])
            }
            cmp("intermediate_reference_points[\(l)]", out.extras["decoder.boxes.\(l)"], slice(boxes, axis: 1, range: l ..< l + 1))
            cmp("intermediate_logits[\(l)]", out.extras["decoder.logits.\(l)"], slice(logits, axis: 1, range: l ..< l + 1))
        }
        cmp("logits", out.extras["logits"], want["logits"])
        cmp("pred_boxes", out.extras["pred_boxes"], want["pred_boxes"])
        // post_process_object_detection(threshold=0, target size = the input): x1, y1, x2, y2, score, label.
        var rows: [Float] = []
        for d in out.detections { rows += [d.x1, d.y1, d.x2, d.y2, d.score, Float(d.classIndex)] }
        cmp("detections", Tensor(shape: [out.detections.count, 6], data: rows), want["detections"])
        if net.parameterCount != Int(want["params"]!.data[0]) {
            failures.append("params: \(net.parameterCount), transformers counts \(Int(want["params"]!.data[0]))")
        }
        if !failures.isEmpty { throw DeformableDETRGoldenTests.Mismatch(description: failures.joined(separator: "\n")) }
        return results
    }

    func testRTDETRMatchesTransformersLayerByLayer() throws {
        let results = try Self.checkRTDETR("rt-detr")
        XCTAssertGreaterThan(results.count, 20)
    }

    func testRTDETRv2WithDiscreteSamplingMatchesTransformers() throws {
        // RT-DETRv2: ResNet-50-vd-style bottleneck backbone, normalising image processor, decoder_method "discrete",
        // decoder_offset_scale and the n_points_scale buffer of the shared attention.
        let results = try Self.checkRTDETR("rt-detr-v2", goldens: "rt-detr-v2")
        XCTAssertGreaterThan(results.count, 20)
    }

    func testRTDETRFromPytorchModelBin() throws {
        // The same weights saved by torch.save (pytorch_model.bin), read through the restricted unpickler.
        _ = try Self.checkRTDETR("rt-detr-bin")
    }

    func testRTDETRFromShardedSafetensors() throws {
        // model.safetensors split into two shards with a model.safetensors.index.json, as save_pretrained shards.
        let src = Self.fixtures.appendingPathComponent("rt-detr")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hfdetr-sharded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for f in ["config.json", "preprocessor_config.json"] {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        let all = try SafetensorsFile(path: src.appendingPathComponent("model.safetensors").path).allTensors()
        let keys = all.keys.sorted()
        let half = keys.count / 2
        var map: [String: String] = [:]
        for (i, part) in [Array(keys[..<half]), Array(keys[half...])].enumerated() {
            let file = "model-0000\(i + 1)-of-00002.safetensors"
            try SafetensorsFile.write(Dictionary(uniqueKeysWithValues: part.map { ($0, all[$0]!) }), to: dir.appendingPathComponent(file).path)
            for k in part { map[k] = file }
        }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": [:] as [String: Any], "weight_map": map])
        try index.write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let model = try openModel(dir.path)
        let want = try Self.expected("rt-detr")
        let out = try model.forward(want["pixel_values"]!, trace: nil)
        _ = try DeformableDETRGoldenTests.compare("logits", out.extras["logits"], want["logits"]!, rel: 1e-4)
    }

    func testUnknownModelTypeNamesItAndTheKnownOnes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hfdetr-unknown-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"model_type": "yolos"}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try openModel(dir.path)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("'yolos'"), text)
            for known in ["deformable_detr", "rt_detr", "rt_detr_v2"] { XCTAssertTrue(text.contains(known), text) }
            XCTAssertTrue(text.contains("config.json"), text)
        }
    }

    func testDirectoryWithoutConfigIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hfdetr-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try openModel(dir.path)) { e in XCTAssertTrue("\(e)".contains("config.json"), "\(e)") }
    }

    func testImageProcessorConfigIsRead() throws {
        let pre = try HuggingFaceDirectory(Self.fixtures.appendingPathComponent("rt-detr")).preprocessor
        XCTAssertEqual(pre.height, 640)
        XCTAssertEqual(pre.preprocessing, .resizeSquare(mean: nil, std: nil))
        let v2 = try HuggingFaceDirectory(Self.fixtures.appendingPathComponent("rt-detr-v2")).preprocessor
        XCTAssertTrue(v2.doNormalize)
        XCTAssertEqual(v2.preprocessing, .resizeSquare(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]))
        // Without a preprocessor_config.json: RTDetrImageProcessor's defaults.
        XCTAssertEqual(ImageProcessorConfig().preprocessing, .resizeSquare(mean: nil, std: nil))
        let bad = try Self.parse(["size": ["height": 640, "width": 480]])
        XCTAssertThrowsError(try ImageProcessorConfig(json: bad, file: "p.json")) { e in XCTAssertTrue("\(e)".contains("640x480"), "\(e)") }
    }

    func testLayerTableSumsToTheParameterCount() throws {
        let model = try openModel(Self.fixtures.appendingPathComponent("rt-detr").path) as! HFRTDETR
        let rows = model.layerTable(inputSize: GridSize(64, 96))
        XCTAssertEqual(rows.map(\.module).first, "model.backbone.model RTDetrResNetBackbone")
        XCTAssertTrue(rows.contains { $0.module.hasPrefix("model.decoder ") })
        // Every parameter sits in a row (the training-only denoising_class_embed in its own), as transformers counts them.
        XCTAssertEqual(rows.reduce(0) { $0 + $1.params }, 55_271)
        XCTAssertEqual(rows.last?.module, "model.denoising_class_embed Embedding")
        let decoder = try XCTUnwrap(rows.first { $0.module.hasPrefix("model.decoder ") })
        XCTAssertEqual(decoder.outputShape, [12, 5])
        XCTAssertEqual(decoder.children.filter { $0.module.hasPrefix("layers.") }.count, 2)
        XCTAssertTrue(rows.dropLast().allSatisfy { $0.flops > 0 }, "\(rows.map { ($0.module, $0.flops) })")
    }

    func testConfigFieldsAreCheckedWithClearErrors() throws {
        let url = Self.fixtures.appendingPathComponent("rt-detr/config.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func fails(_ change: (inout [String: Any]) -> Void, _ mention: String) {
            var j = json
            change(&j)
            XCTAssertThrowsError(try RTDetrConfig(json: Self.parse(j), file: "config.json")) { e in
                XCTAssertTrue("\(e)".contains(mention), "\(e)")
            }
        }
        fails({ $0["encoder_in_channels"] = [1, 2, 3] }, "encoder_in_channels")
        fails({ $0["decoder_activation_function"] = "mish" }, "mish")
        fails({ $0["with_box_refine"] = false }, "with_box_refine")
        fails({ $0["d_model"] = 15 }, "d_model")
    }
}

/// The catalogue's Hugging Face entries: their transformers-form configs open through the registry, and the
/// parameter counts equal transformers' (gen_hf_detr.py --params, counted on the meta device).
final class HFDETRCatalogueTests: XCTestCase {
    func testCatalogueParamsEqualTransformers() throws {
        // (id, transformers' sum(p.numel() for p in model.parameters()))
        for (id, want) in [("rtdetr-r18vd", 20_174_608), ("rtdetr-r34vd", 31_424_388), ("rtdetr-v2-r18vd", 20_174_608)] {
            let entry = try XCTUnwrap(try Catalogue.load().entry(id), id)
            XCTAssertTrue(entry.reference?.contains(grouped(want)) == true, "\(id): \(entry.reference ?? "")")
            let dir = try HuggingFaceDirectory(configFile: Assets.url(entry.config).path)
            let config = try RTDetrConfig(json: dir.config, file: dir.configPath)
            // The structure alone: an empty checkpoint hands out zeros, unchecked.
            let model = try HFRTDETR(config: config, store: WeightStore(.checkpoint(name: "structure", tensors: [:])), name: id, verify: false)
            XCTAssertEqual(model.parameterCount, want, id)
            XCTAssertEqual(model.classNames.first, "person", id)
        }
    }

    func testDFineEntryNamesTheMissingFamily() throws {
        XCTAssertThrowsError(try openModel("dfine-n")) { e in
            XCTAssertTrue("\(e)".contains("'d_fine'") && "\(e)".contains("rt_detr_v2"), "\(e)")
        }
    }

    func grouped(_ n: Int) -> String {
        let f = NumberFormatter()
        f.numberStyle = .decimal
        f.groupingSeparator = ","
        f.usesGroupingSeparator = true
        return f.string(from: NSNumber(value: n)) ?? String(n)
    }
}
