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
                let probe = probes["model.decoder.layers.\(l).encoder_attn.\(s)"]
                cmp("decoder.layers.\(l).\(s)", probe.map { unpad($0, pointsPerLevel: net.config.decoderPointsPerLevel) }, want["decoder.layers.\(l).\(s)"])
            }
            if net.config.isDFine {
                // Every layer's accumulated corner logits, their per-edge softmax and the boxes (the probes and the extras).
                let layer = "model.decoder.layers.\(l)"
                cmp("decoder.layers.\(l).pred_corners", out.extras["decoder.corners.\(l)"], want["decoder.layers.\(l).pred_corners"])
                cmp("decoder.layers.\(l).distributions", probes["\(layer).distributions"], want["decoder.layers.\(l).distributions"])
                cmp("decoder.layers.\(l).distributions.boxes", probes["\(layer).distributions.boxes"], want["decoder.layers.\(l).boxes"])
                cmp("decoder.layers.\(l).boxes (refined boxes probe)", probes["\(layer).boxes"], want["decoder.layers.\(l).boxes"])
                cmp("decoder.layers.\(l).boxes", out.extras["decoder.boxes.\(l)"], want["decoder.layers.\(l).boxes"])
                if probes["\(layer).boxes.scores"]?.shape != [net.config.numQueries] { failures.append("\(layer).boxes: no [Q] scores") }
                continue
            }
            cmp("intermediate_reference_points[\(l)]", out.extras["decoder.boxes.\(l)"], slice(boxes, axis: 1, range: l ..< l + 1))
            cmp("intermediate_logits[\(l)]", out.extras["decoder.logits.\(l)"], slice(logits, axis: 1, range: l ..< l + 1))
        }
        if net.config.isDFine {
            // Eval mode keeps the eval layer's (the last) outputs only.
            let last = net.config.evalIdx
            cmp("intermediate_reference_points[eval]", out.extras["decoder.boxes.\(last)"], boxes)
            cmp("intermediate_logits[eval]", out.extras["decoder.logits.\(last)"], logits)
            cmp("intermediate_predicted_corners[eval]", out.extras["decoder.corners.\(last)"], want["intermediate_predicted_corners"])
            cmp("decoder.initial_boxes (pre_bbox_head)", out.extras["decoder.initial_boxes"], want["decoder.initial_boxes"])
            if case .edgeDistributions(let e)? = trace.snapshot.probes.first(where: { $0.path == "model.decoder.layers.0.distributions" })?.data {
                cmp("decoder.project (W(n))", e.binValues, want["decoder.project"])
            } else {
                failures.append("model.decoder.layers.0.distributions: not an edge-distributions probe")
            }
        }
        if case .querySelection(let q)? = trace.snapshot.probes.first(where: { $0.path == "model.query_selection" })?.data {
            cmp("query_selection.indices", Tensor(shape: [q.indices.count], data: q.indices.map(Float.init)), want["enc_topk_indices"], rel: 0)
            cmp("query_selection.boxes", q.boxes, sigmoid(want["init_reference_points"]!))
        } else {
            failures.append("model.query_selection: no query-selection probe")
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

    /// The sampling probe's [1, Q, heads, L, maxP, (2)] (a level's unused slots padded) as the reference's
    /// [1, Q, heads, sum(P_l), (2)]; unchanged when every level has the same count.
    static func unpad(_ t: Tensor, pointsPerLevel: [Int]) -> Tensor {
        guard Set(pointsPerLevel).count > 1 else { return t }
        let q = t.shape[1], h = t.shape[2], levels = t.shape[3], maxP = t.shape[4], c = t.rank == 6 ? t.shape[5] : 1
        var out: [Float] = []
        for i in 0 ..< q * h {
            for l in 0 ..< levels {
                for p in 0 ..< pointsPerLevel[l] {
                    let base = ((i * levels + l) * maxP + p) * c
                    out += t.data[base ..< base + c]
                }
            }
        }
        return Tensor(shape: [1, q, h, pointsPerLevel.reduce(0, +)] + (t.rank == 6 ? [c] : []), data: out)
    }

    /// A checker that `change` to a fixture's config.json makes RTDetrConfig refuse it with an error mentioning `mention`.
    static func configRefusal(_ fixture: String) throws -> ((inout [String: Any]) -> Void, String) throws -> Void {
        let url = fixtures.appendingPathComponent("\(fixture)/config.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return { change, mention in
            var j = json
            change(&j)
            guard let value = try? Self.parse(j) else { return XCTFail("\(fixture): the changed config is not JSON") }
            XCTAssertThrowsError(try RTDetrConfig(json: value, file: "config.json")) { e in
                XCTAssertTrue("\(e)".contains(mention), "\(e)")
            }
        }
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

    func testDFineMatchesTransformersLayerByLayer() throws {
        // D-FINE: HGNetV2 backbone with LAB, RepNCSPELAN4 / SCDown encoder blocks, per-level points [3, 6, 3] without
        // value/output projections, the gate, fine-grained distribution refinement over 9 bins, pre_bbox_head and LQE;
        // every layer's distributions and boxes (gen_hf_detr.py rebuilds them from transformers' own heads).
        let results = try Self.checkRTDETR("d-fine", goldens: "d-fine")
        XCTAssertGreaterThan(results.count, 30)
        if let worst = results.max(by: { $0.1 < $1.1 }) {
            print("d-fine: \(results.count) tensors, worst relative error \(worst.1) (\(worst.0))")
        }
        let model = try openModel(Self.fixtures.appendingPathComponent("d-fine").path)
        XCTAssertEqual(model.family, "D-FINE")
    }

    func testDFineLayerTableAndShapePass() throws {
        let model = try openModel(Self.fixtures.appendingPathComponent("d-fine").path) as! HFRTDETR
        let rows = model.layerTable(inputSize: GridSize(64, 96))
        XCTAssertEqual(rows.first?.module, "model.backbone.model HGNetV2Backbone")
        XCTAssertEqual(rows.reduce(0) { $0 + $1.params }, 53_573)
        let encoder = try XCTUnwrap(rows.first { $0.module.hasPrefix("model.encoder ") })
        XCTAssertEqual(encoder.module, "model.encoder DFineHybridEncoder")
        XCTAssertTrue(encoder.children.contains { $0.module.contains("DFineRepNCSPELAN4") }, "\(encoder.children.map(\.module))")
        XCTAssertTrue(encoder.children.contains { $0.module.contains("DFineSCDown") }, "\(encoder.children.map(\.module))")
        let decoder = try XCTUnwrap(rows.first { $0.module.hasPrefix("model.decoder ") })
        XCTAssertEqual(decoder.module, "model.decoder DFineDecoder")
        XCTAssertEqual(decoder.outputShape, [12, 5])
        // d_model equals the encoder's width: decoder_input_proj is an identity, no rows.
        XCTAssertFalse(rows.contains { $0.module.hasPrefix("model.decoder_input_proj") })
        XCTAssertTrue(rows.dropLast().allSatisfy { $0.flops > 0 }, "\(rows.map { ($0.module, $0.flops) })")
    }

    func testDFineWeightingFunctionAndDistanceToBox() throws {
        // W(n) for max_num_bins 32, up 0.5, reg_scale 4 (D-FINE's defaults): symmetric, 0 in the middle, +-4 outside.
        let w = dFineWeightingFunction(maxNumBins: 32, up: 0.5, regScale: 4).data
        XCTAssertEqual(w.count, 33)
        XCTAssertEqual(w[16], 0)
        XCTAssertEqual(w[0], -4)
        XCTAssertEqual(w[32], 4)
        for i in 0 ..< 16 { XCTAssertEqual(w[i], -w[32 - i], accuracy: 1e-6) }
        XCTAssertTrue(zip(w, w.dropFirst()).allSatisfy { $0 < $1 })
        // Zero distances leave a box unchanged; a distance of reg_scale / 2 on the right edge widens it by half its width.
        let box = Tensor(shape: [1, 4], data: [0.5, 0.4, 0.2, 0.1])
        for (a, b) in zip(dFineDistanceToBox(box, Tensor(shape: [1, 4], data: [0, 0, 0, 0]), regScale: 4).data, box.data) {
            XCTAssertEqual(a, b, accuracy: 1e-6)
        }
        let wider = dFineDistanceToBox(box, Tensor(shape: [1, 4], data: [0, 0, 2, 0]), regScale: 4).data
        XCTAssertEqual(wider[2], 0.3, accuracy: 1e-6)
        XCTAssertEqual(wider[0], 0.55, accuracy: 1e-6)
    }

    func testDFineConfigFieldsAreCheckedWithClearErrors() throws {
        let fails = try Self.configRefusal("d-fine")
        try fails({ $0["eval_idx"] = 0 }, "eval_idx")
        try fails({ $0["max_num_bins"] = 7 }, "max_num_bins")
        try fails({ $0["decoder_n_points"] = [3, 6] }, "decoder_n_points")
        try fails({ $0["decoder_method"] = "nearest" }, "decoder_method")
        try fails({ $0["depth_mult"] = 0.1 }, "depth_mult")
        try fails({ $0["depth_mult"] = 1e30 }, "depth_mult")
        try fails({ $0["lqe_layers"] = 1_099_511_627_776 }, "lqe_layers")
        try fails({ $0["decoder_in_channels"] = [16, 16, 24] }, "decoder_in_channels")
        try fails({ var b = $0["backbone_config"] as! [String: Any]; b["stage_kernel_size"] = [3, 3]; $0["backbone_config"] = b }, "stage_kernel_size")
        try fails({ var b = $0["backbone_config"] as! [String: Any]; b["model_type"] = "resnet"; $0["backbone_config"] = b }, "hgnet_v2")
        try fails({ var b = $0["backbone_config"] as! [String: Any]; b["hidden_sizes"] = [24, 32, 44, 48]; $0["backbone_config"] = b }, "hidden_sizes")
        try fails({ var b = $0["backbone_config"] as! [String: Any]; b["stage_in_channels"] = [16, 24, 33, 40]; $0["backbone_config"] = b }, "stage_in_channels")
    }

    func testDFineDefaultInitShowsTheSamplingGrid() throws {
        // The seeded default init (transformers' _init_weights): zero offset weights and the grid bias, so that every
        // query's points lie on rays around its box centre, per level 1 ... P_l steps of box size / P_l * offset scale / 2.
        let dir = try HuggingFaceDirectory(Self.fixtures.appendingPathComponent("d-fine"))
        let config = try RTDetrConfig(json: dir.config, file: dir.configPath)
        let model = try HFRTDETR(config: config, store: WeightStore(.initialise(seed: 7)), name: "d-fine-init")
        XCTAssertTrue(model.isUntrained)
        XCTAssertEqual(model.parameterCount, 53_573)
        let trace = Trace(keepTensors: true)
        _ = try model.forward(Tensor(repeating: 0.5, shape: [1, 3, 64, 96]), trace: trace, postprocess: PostprocessOptions(confidence: 0))
        guard case .sampling(let s)? = trace.snapshot.probes.first(where: { $0.path == "model.decoder.layers.0.encoder_attn" })?.data else {
            return XCTFail("no sampling probe for decoder layer 0")
        }
        // Head 0 points along +x: y stays at the reference, x grows by equal steps within a level.
        let loc = s.locations, ref = s.referencePoints
        XCTAssertEqual(loc.shape, [12, 2, 3, 6, 2])
        let rx = ref.data[0], ry = ref.data[1]
        let x0 = loc.data[0] - rx, x1 = loc.data[2] - rx, x2 = loc.data[4] - rx
        XCTAssertEqual(loc.data[1], ry, accuracy: 1e-6)
        XCTAssertGreaterThan(x0, 0)
        XCTAssertEqual(x1, 2 * x0, accuracy: 1e-5)
        XCTAssertEqual(x2, 3 * x0, accuracy: 1e-5)
    }

    func testImageProcessorResizeMatchesTransformersOnARealImage() throws {
        // RTDetrImageProcessor on coffee.png (600x400): stretched to the square (bilinear), rescaled, and normalised in
        // the second case; pixel_values within 1e-4 of transformers' (gen_hf_detr.py --processor).
        let want = try SafetensorsFile(path: Self.fixtures.appendingPathComponent("processor/coffee.safetensors").path).allTensors()
        let image = try ImageIO.load(path: Self.fixtures.deletingLastPathComponent().appendingPathComponent("predict/coffee.png").path)
        for (key, size, pre) in [("pixel_values.96", 96, ImageProcessorConfig().preprocessing),
                                 ("pixel_values.160.norm", 160, Preprocessing.resizeSquare(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]))] {
            let got = Preprocess.prepare(image, pre, size: size).tensor
            let err = try DeformableDETRGoldenTests.compare(key, got, want[key]!, rel: 1e-4)
            XCTAssertLessThan(err, 1e-4, key)
        }
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
        let fails = try Self.configRefusal("rt-detr")
        try fails({ $0["encoder_in_channels"] = [1, 2, 3] }, "encoder_in_channels")
        try fails({ $0["decoder_activation_function"] = "mish" }, "mish")
        try fails({ $0["with_box_refine"] = false }, "with_box_refine")
        try fails({ $0["d_model"] = 15 }, "d_model")
        // Checked before a per-level list is sized by it (a negative count trapped, a huge one would allocate terabytes).
        try fails({ $0["num_feature_levels"] = -1_099_511_627_776 }, "num_feature_levels")
        try fails({ $0["num_feature_levels"] = 1_099_511_627_776 }, "num_feature_levels")
        try fails({ $0["hidden_expansion"] = 1e30 }, "hidden_expansion")
        try fails({ $0["encoder_layers"] = 1_000_000 }, "encoder_layers")
        try fails({ $0["decoder_layers"] = 1_099_511_627_776 }, "decoder_layers")
        try fails({ $0["decoder_n_points"] = 1_099_511_627_776 }, "decoder_n_points")
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

    func testDFineEntriesOpenWithTransformersParams() throws {
        // D-FINE n/s/m/l/x as transformers' conversion script configures them: params equal DFineForObjectDetection's
        // (gen_hf_detr.py --params, counted on the meta device).
        for (id, want) in [("dfine-n", 3_770_421), ("dfine-s", 10_309_605), ("dfine-m", 19_563_368), ("dfine-l", 31_244_152), ("dfine-x", 62_621_560)] {
            let entry = try XCTUnwrap(try Catalogue.load().entry(id), id)
            let dir = try HuggingFaceDirectory(configFile: Assets.url(entry.config).path)
            let config = try RTDetrConfig(json: dir.config, file: dir.configPath)
            // The seeded default init (an empty checkpoint's zeros would make reg_scale and up zero, refused).
            let model = try HFRTDETR(config: config, store: WeightStore(.initialise(seed: 0)), name: id)
            XCTAssertEqual(model.parameterCount, want, id)
            XCTAssertEqual(model.family, "D-FINE", id)
            XCTAssertTrue(entry.reference?.contains(grouped(want)) == true, "\(id): \(entry.reference ?? "")")
        }
        // One opens through the registry with its seeded init.
        let n = try openModel("dfine-n")
        XCTAssertEqual(n.family, "D-FINE")
    }

    func grouped(_ n: Int) -> String {
        let f = NumberFormatter()
        f.numberStyle = .decimal
        f.groupingSeparator = ","
        f.usesGroupingSeparator = true
        return f.string(from: NSNumber(value: n)) ?? String(n)
    }
}
