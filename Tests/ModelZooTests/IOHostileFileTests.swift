import Foundation
import XCTest
import Tensor
@testable import ModelZoo

/// Hostile and mistyped files, one family of the crashes found by fuzzing each: every one is a
/// `FileFormatError` (or a build error naming the file and the row), never a trap or an allocation abort.
final class IOHostileFileTests: XCTestCase {
    // MARK: - Pickled tensors

    /// A protocol-2 pickle of `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`
    /// over a FloatStorage '0' of `numel` elements; integers as LONG1 so that any 64-bit value fits.
    static func tensorPickle(offset: Int, size: [Int], stride: [Int], numel: Int) -> [UInt8] {
        func str(_ s: String) -> [UInt8] { [0x58] + withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8) }
        func int(_ v: Int) -> [UInt8] { [0x8A, 8] + withUnsafeBytes(of: Int64(v).littleEndian, Array.init) }
        var b: [UInt8] = [0x80, 0x02, 0x63] + Array("torch._utils\n_rebuild_tensor_v2\n".utf8)
        b += [0x28] // MARK: the arguments
        b += [0x28] + str("storage") + [0x63] + Array("torch\nFloatStorage\n".utf8) + str("0") + str("cpu") + int(numel) + [0x74, 0x51]
        b += int(offset)
        b += [0x28] + size.flatMap(int) + [0x74]
        b += [0x28] + stride.flatMap(int) + [0x74]
        b += [0x89] + [0x63] + Array("collections\nOrderedDict\n".utf8) + [0x29, 0x52]
        b += [0x74, 0x52, 0x2E]
        return b
    }

    func unpickle(_ bytes: [UInt8], numel: Int) throws -> PickleValue {
        try Unpickler(data: Data(bytes), file: "t.pkl") { pid in
            try TorchArchive.storage(from: pid, sizes: ["0": numel * 4], file: "t.pkl")
        }.load()
    }

    /// Found by the unpickler fuzz target: a dict given itself as BUILD state doubles at every BUILD (40 of them would
    /// ask for 2^40 entries; the fuzzer's input asked malloc for 4 GB). Container growth counts against maxValues.
    /// Found by the YAML fuzz target: an HGBlock with an even kernel (2) grows its convs' maps by one row and column,
    /// so its own concat of the input and the conv outputs cannot fit: the shape pass reports the op's failed check
    /// as an error naming the layer instead of stopping the process.
    func testAShapeMismatchInsideABlockIsAnError() throws {
        let yaml = """
            nc: 2
            backbone:
              - [-1, 1, HGStem, [8, 16]]
              - [-1, 2, HGBlock, [8, 16, 2, False, False]]
            head:
              - [[1], 1, Detect, [nc]]
            """
        XCTAssertThrowsError(try UltralyticsModel(name: "even", spec: try ModelSpec.parse(yaml: yaml, file: "even.yaml"),
                                                  weights: WeightStore(.initialise(seed: 0)))) { e in
            XCTAssertTrue("\(e)".contains("even.yaml: layer 1: at 640x640 model.1") && "\(e)".contains("concat: shape"), "\(e)")
        }
    }

    /// Found by the YAML fuzz target: a repeated RTDETRDecoder (n = 2) became an nn.Sequential whose second copy got
    /// the first's [1, queries, 4 + nc] output, and its stated shape arithmetic read a fourth dimension that was not
    /// there. A module of several inputs cannot be repeated, and RTDETRDecoder checks that it is fed feature maps.
    func testRepeatedMultiInputHeadsAreRefused() throws {
        let yaml = """
            nc: 2
            backbone:
              - [-1, 1, HGStem, [8, 16]]
              - [-1, 2, HGBlock, [8, 16, 3, False, False]]
              - [-2, 1, Conv, [32, 3, 2]]
            head:
              - [[0, 2], 2, RTDETRDecoder, [nc, 64, 10, 2, 2, 1, 64]]
            """
        XCTAssertThrowsError(try UltralyticsModel(name: "rep", spec: try ModelSpec.parse(yaml: yaml, file: "rep.yaml"),
                                                  weights: WeightStore(.initialise(seed: 0)))) { e in
            XCTAssertTrue("\(e)".contains("rep.yaml: layer 3: RTDETRDecoder takes 2 inputs, so it cannot be repeated"), "\(e)")
        }
        let fed = yaml.replacingOccurrences(of: "[[0, 2], 2, RTDETRDecoder", with: "[[0, 2], 1, RTDETRDecoder")
            + "\n  - [[3, 2], 1, RTDETRDecoder, [nc, 64, 10, 2, 2, 1, 64]]"
        XCTAssertThrowsError(try UltralyticsModel(name: "fed", spec: try ModelSpec.parse(yaml: fed, file: "fed.yaml"),
                                                  weights: WeightStore(.initialise(seed: 0)))) { e in
            XCTAssertTrue("\(e)".contains("fed.yaml: layer 4: at 640x640 model.4 (RTDETRDecoder): input 0 must be [N, 6, H, W], got [1, 10, 6]"), "\(e)")
        }
    }

    func testContainersThatDoubleThemselvesAreRefused() throws {
        // PROTO 2, EMPTY_DICT, BININT1 1, BININT1 2, SETITEM, 40 x DUP, 40 x BUILD, STOP
        let bytes: [UInt8] = [0x80, 2, 0x7D, 0x4B, 1, 0x4B, 2, 0x73] + [UInt8](repeating: 0x32, count: 40)
            + [UInt8](repeating: 0x62, count: 40) + [0x2E]
        XCTAssertThrowsError(try Unpickler(bytes: bytes, start: 0, file: "doubling.pkl").load()) { e in
            XCTAssertTrue("\(e)".contains("doubling.pkl") && "\(e)".contains("beyond"), "\(e)")
        }
        // The same with a few BUILDs stays a small dict.
        let small: [UInt8] = [0x80, 2, 0x7D, 0x4B, 1, 0x4B, 2, 0x73, 0x32, 0x32, 0x62, 0x62, 0x2E]
        XCTAssertNoThrow(try Unpickler(bytes: small, start: 0, file: "small.pkl").load())
    }

    func testTensorViewsWhoseArithmeticOverflowAreRefused() throws {
        // A well-formed view still opens: the helper makes what torch writes.
        let ok = try unpickle(Self.tensorPickle(offset: 1, size: [2, 3], stride: [3, 1], numel: 7), numel: 7)
        guard case .tensor(let t) = ok else { return XCTFail("not a tensor: \(ok)") }
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.requiredElements, 7)
        let cases: [(Int, [Int], [Int])] = [
            (Int.max - 1, [2], [1]),                 // offset + reach passes Int.max
            (0, [4], [1 << 62]),                     // (size - 1) * stride overflows
            (0, [3, 3], [Int.max / 2, Int.max / 2]), // the sum of the reaches overflows
            (Int.max, [1], [1]),                     // offset + 1 overflows
        ]
        for (offset, size, stride) in cases {
            assertFileError("t.pkl", ["overflow"]) {
                try unpickle(Self.tensorPickle(offset: offset, size: size, stride: stride, numel: 4), numel: 4)
            }
        }
        assertFileError("t.pkl", ["absurdly large"]) {
            try unpickle(Self.tensorPickle(offset: 0, size: [1 << 32, 1 << 32], stride: [0, 0], numel: 1), numel: 1)
        }
    }

    /// A stored (uncompressed) zip of `entries`, as torch.save writes them (CRCs are not checked by the reader).
    static func storedZip(_ entries: [(String, [UInt8])]) -> Data {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
        var out: [UInt8] = [], central: [UInt8] = []
        for (name, data) in entries {
            let offset = out.count, n = Array(name.utf8)
            let common = u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0) + u32(data.count) + u32(data.count) + u16(n.count) + u16(0)
            out += u32(0x0403_4B50) + common + n + data
            central += u32(0x0201_4B50) + u16(20) + common + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset) + n
        }
        let cdStart = out.count
        out += central + u32(0x0605_4B50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count) + u32(central.count) + u32(cdStart) + u16(0)
        return Data(out)
    }

    func testZeroStrideViewIsVerifiedWithoutExpandingIt() throws {
        // {'w': a [2^28, 16] view with stride [0, 1] of 16 stored floats (one of them NaN)}: 2^32 values, 16 GB
        // as Float32. Verification reads the 16; materialising it is refused by the per-tensor budget.
        var pkl: [UInt8] = [0x80, 0x02, 0x7D, 0x58, 1, 0, 0, 0, UInt8(ascii: "w")]
        pkl += Self.tensorPickle(offset: 0, size: [1 << 28, 16], stride: [0, 1], numel: 16).dropFirst(2).dropLast()
        pkl += [0x73, 0x2E] // SETITEM, STOP
        var floats = [Float](repeating: 1, count: 16)
        floats[3] = .nan
        let storage = floats.withUnsafeBytes { Array($0) }
        let dir = try IOFixtures.tempDirectory()
        let path = dir.appendingPathComponent("zero_stride.pt").path
        try Self.storedZip([("archive/data.pkl", pkl), ("archive/data/0", storage)]).write(to: URL(fileURLWithPath: path))
        let ckpt = try Checkpoint.open(path: path)
        XCTAssertEqual(ckpt.info["w"]?.shape, [1 << 28, 16])
        let v = try ckpt.verify()
        XCTAssertEqual(v.tensors, 1)
        XCTAssertEqual(v.values, 1 << 32)
        XCTAssertEqual(v.nonFinite, 1)
        assertFileError(path, ["'w'", "budget for one tensor"]) { try ckpt.tensor("w") }
    }

    func testZip64DirectoryOffsetsPastTheFileAreRefused() {
        // Found by the torchzip fuzz target: a ZIP64 end-of-directory record whose directory offset is near 2^64,
        // which the zip library converted to off_t with a trap.
        let f = IOFixtures.broken("zip64_directory_offset.pt")
        assertFileError(f, ["not a readable zip archive", "outside the 3709-byte file"]) { try Checkpoint.open(path: f) }
        // Found by the same target once that was fixed: a directory entry cut short, whose name length the check
        // itself read past the directory (a trap converting the out-of-range marker to Int).
        let g = IOFixtures.broken("zip_short_directory_entry.pt")
        assertFileError(g, []) { try Checkpoint.open(path: g) }
        // Every small torch fixture still opens through the same check.
        for name in ["state_dict.pt", "state_dict_p5.pt", "nested.pt", "uint16.pt", "ultra_tiny_best.pt"] {
            XCTAssertNoThrow(try Checkpoint.open(path: IOFixtures.path(name)), name)
        }
    }

    // MARK: - safetensors

    func safetensors(_ header: String, data: Int = 16) -> Data {
        var h = Data(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = Data(withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init))
        out.append(h)
        out.append(Data(count: data))
        return out
    }

    func testSafetensorsHeaderIntegersAreWholeAndChecked() throws {
        // The well-formed version of the same header opens.
        XCTAssertNoThrow(try SafetensorsFile(data: safetensors(#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#), name: "ok.safetensors"))
        assertFileError("frac.safetensors", ["'a'", "data_offsets"]) {
            try SafetensorsFile(data: safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8.5]}}"#), name: "frac.safetensors")
        }
        assertFileError("fracshape.safetensors", ["'a'", "shape"]) {
            try SafetensorsFile(data: safetensors(#"{"a":{"dtype":"F32","shape":[1.5,2],"data_offsets":[0,8]}}"#), name: "fracshape.safetensors")
        }
        assertFileError("huge.safetensors", ["'a'", "data_offsets"]) {
            try SafetensorsFile(data: safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e30]}}"#), name: "huge.safetensors")
        }
        assertFileError("dup.safetensors", ["'a'", "more than once"]) {
            try SafetensorsFile(data: safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"\u0061":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#), name: "dup.safetensors")
        }
        assertFileError("overflow.safetensors", ["'a'", "overflows"]) {
            try SafetensorsFile(data: safetensors(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#), name: "overflow.safetensors")
        }
        assertFileError("overflow2.safetensors", ["'a'", "overflows"]) {
            try SafetensorsFile(data: safetensors(#"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#), name: "overflow2.safetensors")
        }
    }

    func testWritersNameTheMissingDirectory() throws {
        let dir = try IOFixtures.tempDirectory()
        let missing = dir.appendingPathComponent("no/such/dir/out.safetensors").path
        assertFileError(missing, ["cannot write", "no such directory", "no/such/dir"]) {
            try SafetensorsFile.write(["x": Tensor(zeros: [2])], to: missing)
        }
        let png = dir.appendingPathComponent("missing/out.png").path
        assertFileError(png, ["cannot write the png", "no such directory"]) {
            try PNGCodec.write(rgba: [UInt8](repeating: 255, count: 16), width: 2, height: 2, to: png)
        }
        assertFileError(dir.path, ["is a directory"]) {
            try SafetensorsFile.write(["x": Tensor(zeros: [2])], to: dir.path)
        }
    }

    // MARK: - Model YAML

    func testDeeplyNestedYAMLIsRefusedBeforeParsing() {
        let brackets = "nc: 1\nbackbone: " + String(repeating: "[", count: 100_000) + "\n"
        assertFileError("deep.yaml", ["nesting", "200"]) { try ModelSpec.parse(yaml: brackets, file: "deep.yaml") }
        var blocks = "nc: 1\nbackbone:\n"
        for i in 0 ..< 5000 { blocks += String(repeating: " ", count: i + 1) + "-\n" }
        assertFileError("blocks.yaml", ["nesting"]) { try ModelSpec.parse(yaml: blocks, file: "blocks.yaml") }
        let compact = "nc: 1\nbackbone:\n  " + String(repeating: "- ", count: 5000) + "x\n"
        assertFileError("compact.yaml", ["nesting"]) { try ModelSpec.parse(yaml: compact, file: "compact.yaml") }
        // Brackets inside quotes, comments and plain scalars do not count; a real config parses.
        let fine = "nc: 1 # [[[[[\nname: 'a [[[[ b'\nnote: x[[[[\nbackbone:\n  - [-1, 1, Conv, [8, 3, 2]]\nhead:\n  - [-1, 1, Conv, [8, 3, 1]]\n"
        XCTAssertNoThrow(try ModelSpec.parse(yaml: fine, file: "fine.yaml"))
        // The line itself is one level, each bracket one more.
        XCTAssertNil(ConfigValue.nestingDepth(String(repeating: "[", count: 199), limit: 200))
        XCTAssertEqual(ConfigValue.nestingDepth(String(repeating: "[", count: 200), limit: 200)?.depth, 201)
    }

    func yaml(backbone: String, head: String = "  - [-1, 1, Conv, [8, 1, 1]]", extra: String = "nc: 2") -> String {
        "\(extra)\nbackbone:\n\(backbone)\nhead:\n\(head)\n"
    }

    func build(_ text: String, file: String = "m.yaml", budget: Int? = nil) throws -> UltralyticsModel {
        let spec = try ModelSpec.parse(yaml: text, file: file)
        let weights = WeightStore(.initialise(seed: 0))
        if let budget { weights.budgetElements = budget }
        return try UltralyticsModel(name: file, spec: spec, weights: weights)
    }

    /// Asserts that building `text` fails with an error naming m.yaml and every fragment.
    func assertRefused(_ text: String, _ fragments: [String], budget: Int? = nil, line: UInt = #line) {
        do {
            _ = try build(text, budget: budget)
            XCTFail("built a model from\n\(text)", line: line)
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("m.yaml"), message, line: line)
            for f in fragments { XCTAssertTrue(message.contains(f), "'\(message)' does not mention '\(f)'", line: line) }
        }
    }

    func testExtremeSpecValuesAreRefused() throws {
        // The model these variations start from builds.
        XCTAssertNoThrow(try build(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]")))
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", head: "  - [-9223372036854775808, 1, Conv, [8, 1, 1]]"), ["'from'"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", head: "  - [[-1, -9223372036854775807], 1, Concat, [1]]"), ["'from'"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, -3, 2]]"), ["argument 1 (k) is -3"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 0, 2]]"), ["argument 1 (k) is 0"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 0]]"), ["argument 2 (s) is 0"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, -2]]"), ["argument 2 (s) is -2"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 100000, 1]]"), ["(k) is 100000"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [-8, 3, 1]]"), ["(c2) is -8"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [1000000000000, 3, 1]]"), ["(c2) is 1000000000000"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", extra: "nc: -3"), ["nc must be"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", extra: "nc: 1000000000000"), ["nc must be"])
        assertRefused(yaml(backbone: "  - [-1, 1000000000, Conv, [8, 3, 2]]"), ["'repeats'"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", head: "  - [-1, 1, nn.Upsample, [None, 1000000, nearest]]"), ["scale_factor"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", extra: "nc: 2\nmax_channels: 1e300\nscales:\n  n: [1, 1, 1e300]"), ["max_channels"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", extra: "nc: 2\ndepth_multiple: 1e300"), ["depth_multiple"])
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", head: "  - [-1, 1, Detect, [nc]]", extra: "nc: 2\nreg_max: 100000000"), ["reg_max"])
    }

    func testModelsTooLargeForTheMachineAreRefusedBeforeAllocation() throws {
        // Each value within its own limit, together far past the memory: 65536 x 65536 x 255 x 255 weights
        // (1 PB), refused when the tensor is asked for, before it is allocated.
        let start = Date()
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [65536, 1, 1]]\n  - [-1, 1, Conv, [65536, 255, 1]]"), ["layer 1", "do not fit this machine", "model.1.conv.weight"])
        // Repeats of a block whose total passes the budget stop at the first copy that would pass it (a budget of
        // 10M values here, so that the test allocates little: the row's first build and 15 copies of 256 x 256 x 3 x 3
        // (+ BN) fit, the 16th copy does not).
        let repeated = yaml(backbone: "  - [-1, 1, Conv, [256, 1, 1]]\n  - [-1, 1000, Conv, [256, 3, 1]]")
        assertRefused(repeated, ["layer 1", "do not fit this machine", "model.1.15.conv.weight"], budget: 10_000_000)
        XCTAssertNoThrow(try build(yaml(backbone: "  - [-1, 1, Conv, [256, 1, 1]]\n  - [-1, 10, Conv, [256, 3, 1]]"), budget: 10_000_000))
        // Activations: each 255x upsample is a legal layer; four of them at 640x640 need far more than the memory.
        let up = "  - [-1, 1, nn.Upsample, [None, 255, nearest]]"
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 2]]", head: [up, up, up, up].joined(separator: "\n")), ["does not fit this machine", "640x640"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "refusals must come before the allocations")
    }

    func testGroupsAndEmptyOutputsAreRefused() throws {
        assertRefused(yaml(backbone: "  - [-1, 1, Conv, [8, 3, 1, 1, 3]]"), ["layer 0", "groups must divide 3 -> 8"])
        // Unpadded 255x255 kernels: 640 -> 386 -> 132 -> nothing.
        let big = "  - [-1, 1, Conv, [8, 255, 1, 0]]"
        XCTAssertNoThrow(try build(yaml(backbone: [big, big].joined(separator: "\n"))))
        assertRefused(yaml(backbone: [big, big, big].joined(separator: "\n")), ["layer 2", "too small for the model's kernels"])
        // The same model sized at a smaller input refuses it at the forward pass, before running anything.
        let model = try build(yaml(backbone: [big, big].joined(separator: "\n")))
        XCTAssertThrowsError(try model.forward(Tensor(zeros: [1, 3, 256, 256]), trace: nil)) { e in
            XCTAssertTrue("\(e)".contains("at 256x256"), "\(e)")
        }
        // The shape pass sizes every layer's output without running anything.
        let values: Int = try model.graph.shapes(inputShape: [1, 3, 640, 640]).values
        let expected: Int = 8 * 386 * 386 + 8 * 132 * 132 + 8 * 132 * 132
        XCTAssertEqual(values, expected)
    }

    func testBudgetsFollowThePhysicalMemory() {
        XCTAssertGreaterThan(Budget.physicalMemoryBytes, 1 << 28)
        XCTAssertEqual(Budget.modelBytes, Budget.physicalMemoryBytes / 2)
        XCTAssertNil(Budget.product([1 << 32, 1 << 32]))
        XCTAssertEqual(Budget.product([3, 4]), 12)
    }
}
