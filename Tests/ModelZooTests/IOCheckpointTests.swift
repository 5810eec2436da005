import Foundation
import XCTest
import Tensor
@testable import ModelZoo

final class IOCheckpointTests: XCTestCase {
    func testPlainStateDictMatchesTorch() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("state_dict.pt"))
        let expected = try SafetensorsFile(path: IOFixtures.path("state_dict.expected.safetensors"))
        XCTAssertEqual(ckpt.format, .torch)
        XCTAssertEqual(Set(ckpt.keys), Set(expected.names))
        XCTAssertEqual(ckpt.info["fp16.weight"]?.dtype, "F16")
        XCTAssertEqual(ckpt.info["bf16.weight"]?.dtype, "BF16")
        XCTAssertEqual(ckpt.info["counter"]?.dtype, "I64")
        XCTAssertEqual(ckpt.info["transposed"]?.shape, [5, 3])
        let tensors = try ckpt.tensors
        for name in expected.names {
            assertClose(tensors[name]!, try expected.tensor(name), name)
        }
        // Keys keep the file's order.
        XCTAssertEqual(ckpt.keys.first, "fp32.weight")
    }

    func testLegacyTorchSaveFormat() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("state_dict_legacy.pt"))
        XCTAssertEqual(ckpt.format, .torch)
        let expected = try SafetensorsFile(path: IOFixtures.path("state_dict.expected.safetensors"))
        XCTAssertEqual(Set(ckpt.keys), Set(expected.names))
        let tensors = try ckpt.tensors
        for name in expected.names {
            assertClose(tensors[name]!, try expected.tensor(name), name)
        }
        // Cut short: the last storage is missing.
        let dir = try IOFixtures.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cut = dir.appendingPathComponent("cut.pt").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: IOFixtures.path("state_dict_legacy.pt")))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: cut))
        assertFileError(cut, ["truncated"]) { try Checkpoint.open(path: cut) }
    }

    func testWrappedStateDictProtocol5() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("state_dict_p5.pt"))
        XCTAssertEqual(ckpt.source, "state_dict")
        XCTAssertEqual(ckpt.metadata["epoch"], "3")
        let expected = try SafetensorsFile(path: IOFixtures.path("state_dict.expected.safetensors"))
        for name in expected.names {
            assertClose(try ckpt.tensor(name), try expected.tensor(name), name)
        }
    }

    func testNestedStateDictAndSafetensorsWithAnotherExtension() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("nested.pt"))
        XCTAssertEqual(ckpt.source, "model")
        XCTAssertEqual(ckpt.keys, ["backbone.w", "head.b"])
        let dir = try IOFixtures.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let renamed = dir.appendingPathComponent("weights.bin").path
        try FileManager.default.copyItem(atPath: IOFixtures.path("hf_tiny/model.safetensors"), toPath: renamed)
        XCTAssertEqual(try Checkpoint.open(path: renamed).format, .safetensors)
        let text = dir.appendingPathComponent("notes.txt").path
        try Data("just some text, long enough".utf8).write(to: URL(fileURLWithPath: text))
        assertFileError(text, ["not a checkpoint"]) { try Checkpoint.open(path: text) }
    }

    func testUntypedStorageV3IsReportedByDtype() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("uint16.pt"))
        XCTAssertEqual(ckpt.info["u16"], TensorInfo(dtype: "U16", shape: [2, 3]))
        XCTAssertEqual(try ckpt.tensor("f").data, [1, 1])
        assertFileError(IOFixtures.path("uint16.pt"), ["u16", "U16"]) { try ckpt.tensor("u16") }
    }

    func testUltralyticsBestPt() throws {
        let path = IOFixtures.path("ultra_tiny_best.pt")
        let ckpt = try Checkpoint.open(path: path)
        XCTAssertEqual(ckpt.format, .ultralytics)
        XCTAssertEqual(ckpt.source, "model")
        XCTAssertEqual(ckpt.classNames, ["cat", "dog", "traffic light"])
        XCTAssertEqual(ckpt.task, "detect")
        XCTAssertEqual(ckpt.metadata["stride"], "4,8")
        XCTAssertEqual(ckpt.info["model.0.conv.weight"]?.dtype, "F16")
        let expected = try SafetensorsFile(path: IOFixtures.path("ultra_tiny.expected.safetensors"))
        XCTAssertEqual(ckpt.keys, expected.names.sorted { a, b in ckpt.keys.firstIndex(of: a) ?? 0 < ckpt.keys.firstIndex(of: b) ?? 0 })
        XCTAssertEqual(Set(ckpt.keys), Set(expected.names))
        let tensors = try ckpt.tensors
        for name in expected.names {
            assertClose(tensors[name]!, try expected.tensor(name), name)
        }
        // The embedded YAML opens as a typed spec.
        let spec = try XCTUnwrap(try ckpt.modelSpec())
        XCTAssertEqual(spec.nc, 3)
        XCTAssertEqual(spec.scale, "n")
        XCTAssertEqual(spec.backbone.count, 5)
        XCTAssertEqual(spec.head.count, 4)
        XCTAssertEqual(spec.head[3].module, "Detect")
        XCTAssertEqual(spec.head[3].from, [7, 4])
        XCTAssertEqual(spec.head[3].args, [.identifier("nc")])
        XCTAssertEqual(spec.head[0].args, [.null, .int(2), .string("nearest")])
        let s = try spec.resolvedScale()
        XCTAssertEqual(s.width, 0.25)
    }

    func testEmbeddedYAMLFeedsTheGraphBuilderSpec() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("ultra_tiny_best.pt"))
        let spec = try XCTUnwrap(try ckpt.modelSpec())
        XCTAssertEqual(spec.nc, 3)
        XCTAssertEqual(spec.layers.count, 9)
        let graph = try UltralyticsGraph(spec: spec, weights: WeightStore(.initialise(seed: 0)))
        XCTAssertEqual(graph.nodes.count, 9)
    }

    func testUltralyticsLastPtUsesEMA() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("ultra_tiny_last.pt"))
        XCTAssertEqual(ckpt.format, .ultralytics)
        XCTAssertEqual(ckpt.source, "ema")
        XCTAssertTrue(ckpt.warnings.contains { $0.contains("EMA") })
        let expected = try SafetensorsFile(path: IOFixtures.path("ultra_tiny.expected.safetensors"))
        let key = "model.2.m.0.cv1.conv.weight"
        assertClose(try ckpt.tensor(key), try expected.tensor(key), key)
        XCTAssertEqual(ckpt.metadata["train_args.imgsz"], "64")
    }

    func testSafetensorsAndHuggingFaceDirectory() throws {
        let st = try Checkpoint.open(path: IOFixtures.path("ultra_tiny.expected.safetensors"))
        XCTAssertEqual(st.format, .safetensors)
        XCTAssertNotNil(st.metadata["names"])
        let hf = try Checkpoint.open(path: IOFixtures.path("hf_tiny"))
        XCTAssertEqual(hf.format, .huggingFace)
        XCTAssertEqual(hf.classNames, ["N/A", "person", "bicycle"])
        XCTAssertEqual(hf.config?["model_type"], .string("deformable_detr"))
        XCTAssertEqual(hf.info["model.input_proj.0.0.weight"]?.shape, [8, 4, 1, 1])
        XCTAssertEqual(try hf.tensor("class_embed.0.bias").data, [0, 0, 0])
    }

    func testWeightStoreTakesCheckpointTensors() throws {
        let ckpt = try Checkpoint.open(path: IOFixtures.path("ultra_tiny_best.pt"))
        let store = WeightStore(.checkpoint(name: ckpt.path, tensors: try ckpt.tensors))
        let w = try store.root.scope("model").scope(0).tensor("conv.weight", shape: [8, 3, 3, 3], init: .zeros)
        XCTAssertEqual(w.shape, [8, 3, 3, 3])
    }

    func testUnpicklerBasics() throws {
        // {'a': [1, 2.5, None, True], 'b': (b'xy', 'z')}, protocol 2, with memo sharing.
        let bytes: [UInt8] = [0x80, 0x02, 0x7D, 0x71, 0x00, 0x28, 0x58, 0x01, 0, 0, 0, 0x61, 0x5D, 0x71, 0x01, 0x28,
                              0x4B, 0x01, 0x47, 0x40, 0x04, 0, 0, 0, 0, 0, 0, 0x4E, 0x88, 0x65,
                              0x58, 0x01, 0, 0, 0, 0x62, 0x43, 0x02, 0x78, 0x79, 0x68, 0x01, 0x86, 0x75, 0x2E]
        let v = try Unpickler(data: Data(bytes), file: "mem").load()
        guard case .list(let a)? = v["a"] else { return XCTFail("a is not a list: \(v)") }
        XCTAssertEqual(a.count, 4)
        XCTAssertEqual(a[1].doubleValue, 2.5)
        guard case .tuple(let b)? = v["b"], case .list(let shared) = b[1] else { return XCTFail("b: \(v)") }
        XCTAssertEqual(shared.count, 4, "the memoised list is seen with the items appended after it was stored")
    }

    func testUnknownClassesBecomeInertObjectsWithState() throws {
        // NEWOBJ of mypkg.Thing, then BUILD with {'x': 1}.
        var bytes: [UInt8] = [0x80, 0x02, 0x63]
        bytes += Array("mypkg\nThing\n".utf8)
        bytes += [0x29, 0x81, 0x7D, 0x58, 0x01, 0, 0, 0, 0x78, 0x4B, 0x01, 0x73, 0x62, 0x2E]
        let u = Unpickler(data: Data(bytes), file: "mem")
        let v = try u.load()
        guard case .object(let o) = v else { return XCTFail("\(v)") }
        XCTAssertEqual(o.className, "mypkg.Thing")
        XCTAssertEqual(o.attribute("x")?.intValue, 1)
        XCTAssertEqual(u.inertGlobals, ["mypkg.Thing"])
        XCTAssertTrue(u.dangerousCalls.isEmpty)
    }
}
