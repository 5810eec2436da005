import Foundation
import XCTest
@testable import ModelZoo
import Tensor

/// Deformable DETR without Python: configs, catalogue entries, parameter counts, default init and the trace.
final class DeformableDETRModelTests: XCTestCase {
    /// A small config (the fixture's shape) for fast default-init runs.
    static func smallConfig(levels: Int = 4, refine: Bool = false, twoStage: Bool = false) throws -> DeformableDETRConfig {
        let json = """
        {"model_type": "deformable_detr", "d_model": 32, "encoder_layers": 2, "decoder_layers": 2,
         "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
         "encoder_n_points": 2, "decoder_n_points": 2, "num_queries": 30, "two_stage_num_proposals": 30,
         "num_feature_levels": \(levels), "with_box_refine": \(refine), "two_stage": \(twoStage),
         "use_timm_backbone": false,
         "backbone_config": {"model_type": "resnet", "embedding_size": 16, "hidden_sizes": [16, 32, 64, 128],
                             "depths": [1, 2, 1, 1], "layer_type": "bottleneck",
                             "out_features": \(levels == 1 ? "[\"stage4\"]" : "[\"stage2\", \"stage3\", \"stage4\"]")},
         "id2label": {"0": "a", "1": "b", "2": "c"}}
        """
        return try DeformableDETRConfig.parse(json: Data(json.utf8), file: "small.json")
    }

    func testCatalogueEntriesAndConfigs() throws {
        let catalogue = try Catalogue.load()
        // Parameter counts of transformers' DeformableDetrForObjectDetection(config), sum of model.parameters().
        let reference = ["deformable-detr-single-scale": 34_066_593, "deformable-detr": 40_069_665,
                         "deformable-detr-box-refine": 40_732_725, "deformable-detr-two-stage": 41_181_529]
        for id in DeformableDETR.catalogueIDs {
            let entry = try XCTUnwrap(catalogue.entry(id), "no catalogue entry \(id)")
            XCTAssertEqual(entry.family, "Deformable DETR")
            XCTAssertEqual(entry.config, "models/\(id).json")
            let config = try DeformableDETRConfig.load(Assets.url(entry.config))
            XCTAssertEqual(config.numLabels, 91)
            XCTAssertEqual(config.classNames[1], "person")
            XCTAssertEqual(config.backbone.layout, .huggingFace)
            XCTAssertEqual(config.backbone.depths, [3, 4, 6, 3])
            let model = DeformableDETR.structure(config: config)
            XCTAssertEqual(model.parameterCount, reference[id], id)
            let table = model.layerTable(inputSize: GridSize(640, 640))
            XCTAssertEqual(table.reduce(0) { $0 + $1.params }, model.parameterCount, "\(id): layer table params")
            XCTAssertTrue(entry.reference?.contains(reference[id]!.formatted(.number.locale(Locale(identifier: "en_US")))) ?? false,
                          "\(id): the catalogue's reference figure")
        }
        let multi = try DeformableDETRConfig.load(Assets.url("models/deformable-detr.json"))
        XCTAssertEqual(multi.numFeatureLevels, 4)
        XCTAssertEqual(multi.backbone.outStages, [2, 3, 4])
        let two = try DeformableDETRConfig.load(Assets.url("models/deformable-detr-two-stage.json"))
        XCTAssertTrue(two.twoStage && two.withBoxRefine)
    }

    func testLayerTableShapesAndFlops() throws {
        let model = DeformableDETR.structure(config: try DeformableDETRConfig.load(Assets.url("models/deformable-detr.json")))
        let table = model.layerTable(inputSize: GridSize(640, 640))
        let byName = Dictionary(uniqueKeysWithValues: table.map { ($0.module, $0) })
        XCTAssertEqual(byName["backbone.stages.3"]?.outputShape, [1, 2048, 20, 20])
        XCTAssertEqual(byName["input_proj.3"]?.outputShape, [1, 256, 10, 10])
        XCTAssertEqual(byName["encoder.layers.0"]?.outputShape, [1, 8500, 256])   // 80^2 + 40^2 + 20^2 + 10^2
        XCTAssertEqual(byName["decoder.layers.5"]?.outputShape, [1, 300, 256])
        // ResNet-50 at 640x640: 4.09 GMACs at 224 scale by (640/224)^2, minus the classifier: about 33 GMACs.
        let backbone = table.filter { $0.module.hasPrefix("backbone") }.reduce(0) { $0 + $1.flops }
        XCTAssertEqual(backbone / 2e9, 33.4, accuracy: 1.0)
        // One encoder layer: linears over 8500 tokens (value, offsets, weights, output, fc1, fc2) + sampling + its two
        // residual sums + its two layer norms (8 per value, as thop counts them).
        let tokens = 8500.0, d = 256.0
        let linears = 2 * tokens * (d * d + d * 256 + d * 128 + d * d + 2 * d * 1024)
        let sampling = tokens * 8 * 4 * 4 * 32 * 10
        let encoder = try XCTUnwrap(byName["encoder.layers.0"])
        XCTAssertEqual(encoder.flops, linears + sampling + tokens * d * 4 + 2 * 8 * tokens * d, accuracy: 1)
        // Its sub-rows come from the module tree: the attention (its linears below it), the norms and the FFN.
        XCTAssertEqual(encoder.children.map(\.module), ["self_attn DeformableDetrMultiscaleDeformableAttention", "self_attn_layer_norm LayerNorm",
                                                        "fc1 Linear", "fc2 Linear", "final_layer_norm LayerNorm"])
        XCTAssertEqual(encoder.children[0].children.map(\.module), ["value_proj Linear", "sampling_offsets Linear", "attention_weights Linear", "output_proj Linear"])
        XCTAssertEqual(encoder.children[0].flops, 2 * tokens * (d * d + d * 256 + d * 128 + d * d) + sampling, accuracy: 1)
        XCTAssertEqual(encoder.children.reduce(0) { $0 + $1.params }, encoder.params)
        let decoder = try XCTUnwrap(byName["decoder.layers.0"])
        XCTAssertEqual(decoder.children.map(\.module).first, "self_attn DeformableDetrSelfAttention")
        XCTAssertEqual(decoder.children[0].children.map(\.module), ["q_proj Linear", "k_proj Linear", "v_proj Linear", "out_proj Linear"])
        XCTAssertEqual(byName["backbone.stages.0"]?.children.first?.children.count, 4, "bottleneck convs and shortcut as sub-rows")
    }

    /// transformers' grid init: before training the sampling points of head h lie on the ray at angle 2*pi*h/heads,
    /// at 1, 2, ... pixels of each level from the reference point, with uniform weights.
    func testDefaultInitSamplesRingsAroundEachPixel() throws {
        let config = try Self.smallConfig()
        let model = try DeformableDETR(config: config, store: WeightStore(.initialise(seed: 3)))
        let trace = Trace(keepTensors: true)
        var rng = SplitMix64(seed: 9)
        let input = Tensor(shape: [1, 3, 96, 128], data: (0 ..< 3 * 96 * 128).map { _ in rng.nextNormal() })
        let out = try model.forward(input, trace: trace, postprocess: PostprocessOptions(confidence: 0))
        let snap = trace.snapshot
        guard case .sampling(let s) = try XCTUnwrap(snap.probes.first { $0.path == "encoder.layers.0.self_attn" }).data else {
            return XCTFail("encoder.layers.0.self_attn is not a sampling probe")
        }
        let shapes = model.levelShapes(inputHeight: 96, inputWidth: 128)
        XCTAssertEqual(s.levelShapes, shapes.map { GridSize($0.0, $0.1) })
        XCTAssertEqual(s.queryLevels, s.levelShapes)
        XCTAssertEqual(s.locations.shape, [shapes.reduce(0) { $0 + $1.0 * $1.1 }, 4, 4, 2, 2])
        let heads = 4, levels = 4, points = 2
        for q in [0, 37, s.queries - 1] {
            let rx = s.referencePoints[q, 0], ry = s.referencePoints[q, 1]
            for h in 0 ..< heads {
                let theta = Double(h) * 2 * Double.pi / Double(heads)
                let m = max(abs(cos(theta)), abs(sin(theta)))
                for l in 0 ..< levels {
                    for p in 0 ..< points {
                        let ex = rx + Float(cos(theta) / m) * Float(p + 1) / Float(shapes[l].1)
                        let ey = ry + Float(sin(theta) / m) * Float(p + 1) / Float(shapes[l].0)
                        XCTAssertEqual(s.locations[q, h, l, p, 0], ex, accuracy: 1e-5)
                        XCTAssertEqual(s.locations[q, h, l, p, 1], ey, accuracy: 1e-5)
                        XCTAssertEqual(s.weights[q, h, l, p], 1 / Float(levels * points), accuracy: 1e-6)
                    }
                }
            }
        }
        XCTAssertNotNil(snap.probes.first { $0.path == "decoder.layers.1.encoder_attn" })
        // The first pixel's reference is the centre of the top-left cell of level 0.
        XCTAssertEqual(s.referencePoints[0, 0], 0.5 / Float(shapes[0].1), accuracy: 1e-7)

        // The trace: steps in order, extras, decoder probes, detections.
        let paths = snap.steps.map(\.path)
        XCTAssertEqual(paths.first, "backbone.embedder")
        XCTAssertTrue(paths.contains("encoder.layers.1") && paths.contains("decoder.layers.1") && paths.contains("input_proj.3"))
        XCTAssertEqual(paths.suffix(2), ["class_embed", "bbox_embed"])
        XCTAssertEqual(out.extras["logits"]?.shape, [1, 30, 3])
        XCTAssertEqual(out.extras["pred_boxes"]?.shape, [1, 30, 4])
        XCTAssertEqual(out.extras["encoder.last_hidden_state"]?.shape, [1, s.queries, 32])
        XCTAssertEqual(out.extras["decoder.last_hidden_state"]?.shape, [1, 30, 32])
        XCTAssertEqual(out.output.shape, [1, 30, 7])
        let dumps = snap.probeTensors
        XCTAssertEqual(dumps["decoder.layers.1.encoder_attn.sampling_locations"]?.shape, [1, 30, 4, 4, 2, 2])
        XCTAssertEqual(dumps["decoder.layers.1.encoder_attn.attention_weights"]?.shape, [1, 30, 4, 4, 2])
        XCTAssertEqual(dumps["encoder.output.0"]?.shape, [32, shapes[0].0, shapes[0].1])
        XCTAssertEqual(out.detections.count, 90)   // min(100, 30 queries x 3 classes), threshold 0
        // transformers' default threshold 0.5 keeps the rows above it, in the same order.
        let kept = model.detections(from: out, inputSize: GridSize(96, 128), options: PostprocessOptions())
        XCTAssertEqual(kept, out.detections.filter { $0.score > 0.5 })
        let scores = out.detections.map(\.score)
        XCTAssertEqual(scores, scores.sorted(by: >))
        for det in out.detections { XCTAssertTrue(det.x1 <= det.x2 && det.y1 <= det.y2) }

        // Without tensors, the trace keeps steps but no probes (the encoder sampling alone is large).
        let light = Trace(keepTensors: false)
        _ = try model.forward(input, trace: light)
        XCTAssertTrue(light.snapshot.probes.isEmpty)
        XCTAssertEqual(light.snapshot.steps.count, snap.steps.count)
        XCTAssertNil(light.snapshot.steps[0].output)
    }

    func testTwoStageAndRefineTraceProbes() throws {
        let model = try DeformableDETR(config: try Self.smallConfig(refine: true, twoStage: true), store: WeightStore(.initialise(seed: 4)))
        let trace = Trace(keepTensors: true)
        _ = try model.forward(Tensor(repeating: 0.3, shape: [1, 3, 128, 128]), trace: trace)
        let dumps = trace.snapshot.probeTensors
        XCTAssertEqual(dumps["two_stage.query_selection.boxes"]?.shape, [30, 4])
        XCTAssertEqual(dumps["two_stage.query_selection.scores"]?.shape, [30])
        XCTAssertEqual(dumps["decoder.layers.0.boxes"]?.shape, [30, 4])
        XCTAssertEqual(dumps["decoder.layers.0.encoder_attn.reference_points"]?.shape, [1, 30, 4])
        let scores = try XCTUnwrap(dumps["two_stage.query_selection.scores"]).data
        XCTAssertEqual(scores, scores.sorted(by: >))
    }

    func testSingleScaleHasOneLevel() throws {
        let model = try DeformableDETR(config: try Self.smallConfig(levels: 1), store: WeightStore(.initialise(seed: 5)))
        XCTAssertEqual(model.levelShapes(inputHeight: 128, inputWidth: 128).count, 1)
        let out = try model.forward(Tensor(repeating: 0.1, shape: [1, 3, 128, 128]), trace: nil)
        XCTAssertEqual(out.extras["encoder.last_hidden_state"]?.shape, [1, 16, 32])   // 128 / 32 = 4
    }

    func testConfigErrorsNameTheFileAndProblem() {
        func error(_ json: String) -> String {
            do { _ = try DeformableDETRConfig.parse(json: Data(json.utf8), file: "bad/config.json"); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(error("[1, 2]").contains("bad/config.json: not a JSON object"))
        XCTAssertTrue(error(#"{"model_type": "detr"}"#).contains("expected 'deformable_detr'"))
        XCTAssertTrue(error(#"{"two_stage": true}"#).contains("two_stage requires with_box_refine"))
        XCTAssertTrue(error(#"{"d_model": 48}"#).contains("multiple of 32"))
        XCTAssertTrue(error(#"{"d_model": "big"}"#).contains("'d_model' must be an integer"))
        XCTAssertTrue(error(#"{"backbone": "vit_base"}"#).contains("timm backbone 'vit_base' is not supported"))
        XCTAssertTrue(error(#"{"backbone_config": {"model_type": "resnet", "out_features": ["stage9"]}}"#).contains("'stage9' is not a stage"))
        XCTAssertTrue(error(#"{"decoder_layers": 1099511627776}"#).contains("decoder_layers 1099511627776 is more than this tool builds"))
        XCTAssertTrue(error(#"{"encoder_n_points": 1099511627776}"#).contains("encoder_n_points"))
        // A million levels built a million input projections for minutes (found by scripts/fuzz/hf_config_fields.py).
        XCTAssertTrue(error(#"{"num_feature_levels": 1000000}"#).contains("num_feature_levels 1000000 is more than this tool builds"))
    }

    func testMissingWeightsAndWrongInput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ddetr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"model_type": "deformable_detr"}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertTrue(DeformableDETR.isModelDirectory(dir))
        XCTAssertThrowsError(try DeformableDETR.open(directory: dir)) { XCTAssertTrue("\($0)".contains("no model.safetensors")) }
        // A checkpoint with a stray key and a missing one: every problem named with the file.
        try SafetensorsFile.write(["model.level_embed": Tensor(zeros: [4, 256]), "stray.weight": Tensor(zeros: [2])],
                                  to: dir.appendingPathComponent("model.safetensors").path)
        XCTAssertThrowsError(try DeformableDETR.open(directory: dir)) { err in
            guard let w = err as? WeightError else { return XCTFail("\(err)") }
            XCTAssertTrue(w.file.hasSuffix("model.safetensors"))
            XCTAssertTrue(w.problems.contains("unused key 'stray.weight' (shape [2]) is not part of the model"))
            // No backbone_config: transformers' default timm ResNet-50, whose keys are conv1, bn1, layer1...
            XCTAssertTrue(w.problems.contains { $0.hasPrefix("missing key 'model.backbone.conv_encoder.model.conv1.weight'") })
            XCTAssertTrue(w.problems.contains { $0.hasPrefix("missing key 'model.backbone.conv_encoder.model.layer4.2.bn3.running_var'") })
            XCTAssertTrue(w.problems.contains { $0.hasPrefix("missing key 'model.backbone.conv_encoder.model.layer2.0.downsample.0.weight'") })
        }
        let model = try DeformableDETR(config: try Self.smallConfig(), store: WeightStore(.initialise(seed: 1)))
        XCTAssertThrowsError(try model.forward(Tensor(zeros: [1, 1, 64, 64]), trace: nil))
        XCTAssertThrowsError(try model.forward(Tensor(zeros: [1, 3, 16, 16]), trace: nil))
    }
}
