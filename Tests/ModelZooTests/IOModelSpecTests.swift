import Foundation
import XCTest
@testable import ModelZoo

final class IOModelSpecTests: XCTestCase {
    let known: Set<String> = ["Conv", "C2f", "SPPF", "nn.Upsample", "Concat", "Detect"]

    func testParsesTinyYAML() throws {
        let spec = try ModelSpec.load(path: IOFixtures.path("ultra_tiny.yaml"))
        XCTAssertEqual(spec.nc, 3)
        XCTAssertEqual(spec.scales.map(\.name), ["n", "s"])
        XCTAssertEqual(spec.scales[1].scale, ModelScale(depth: 0.33, width: 0.5, maxChannels: 1024))
        XCTAssertNil(spec.scale)
        XCTAssertEqual(try spec.resolvedScale().name, "n")
        XCTAssertEqual(try spec.resolvedScale("s").width, 0.5)
        XCTAssertEqual(spec.layers.count, 9)
        let up = spec.head[0]
        XCTAssertEqual(up.index, 5)
        XCTAssertEqual(up.module, "nn.Upsample")
        XCTAssertEqual(up.baseModuleName, "Upsample")
        XCTAssertEqual(up.args, [.null, .int(2), .string("nearest")])
        XCTAssertEqual(spec.head[1].from, [-1, 2])
        XCTAssertTrue(spec.head[1].fromIsList)
        XCTAssertEqual(spec.head[3].args, [.identifier("nc")])
        XCTAssertEqual(spec.backbone[2].args, [.int(64), .bool(true)])
        XCTAssertNoThrow(try spec.validate(knownModules: known))
    }

    func testScaleGuessedFromFileName() throws {
        let text = try String(contentsOfFile: IOFixtures.path("ultra_tiny.yaml"), encoding: .utf8)
        XCTAssertEqual(try ModelSpec.parse(yaml: text, file: "yolov8s.yaml").scale, "s")
        XCTAssertEqual(ModelSpec.guessScale(fromFileName: "path/rtdetr-l.yaml"), "l")
        XCTAssertEqual(ModelSpec.guessScale(fromFileName: "yolov8n-cot.yaml"), "n")
    }

    func testUnknownModuleNamesFileRowAndKnownNames() {
        let file = IOFixtures.broken("unknown_module.yaml")
        assertFileError(file, ["head row 0 (layer 1)", "FancyAttention", "Known modules", "C2f, Concat, Conv"]) {
            try ModelSpec.load(path: file).validate(knownModules: known)
        }
    }

    func testMalformedRowTabsAndMissingHead() {
        assertFileError(IOFixtures.broken("bad_row.yaml"), ["backbone row 1", "4 fields"]) { try ModelSpec.load(path: IOFixtures.broken("bad_row.yaml")) }
        assertFileError(IOFixtures.broken("tabs.yaml"), ["line 3", "tab"]) { try ModelSpec.load(path: IOFixtures.broken("tabs.yaml")) }
        assertFileError(IOFixtures.broken("no_head.yaml"), ["no 'head' section"]) { try ModelSpec.load(path: IOFixtures.broken("no_head.yaml")) }
    }

    func testRowFieldErrors() {
        let cases: [(String, [String])] = [
            ("backbone:\n  - [-1, 0, Conv, [8]]\nhead:\n  - [-1, 1, Detect, [nc]]\n", ["backbone row 0", "repeats"]),
            ("backbone:\n  - [-1, 1, 5, [8]]\nhead:\n  - [-1, 1, Detect, [nc]]\n", ["module"]),
            ("backbone:\n  - [-1, 1, Conv, 8]\nhead:\n  - [-1, 1, Detect, [nc]]\n", ["'args' must be a list"]),
            ("backbone:\n  - [-1, 1, Conv, [8]]\nhead:\n  - [3, 1, Detect, [nc]]\n", ["head row 0 (layer 1)", "'from' 3"]),
            ("backbone: []\nhead: []\n", ["'backbone' has no rows"]),
            ("scales:\n  n: [0.33, 0.25]\nbackbone:\n  - [-1, 1, Conv, [8]]\nhead: []\n", ["scale 'n'"]),
            ("- 1\n- 2\n", ["mapping"]),
            ("backbone: [\n", ["not valid YAML"]),
        ]
        for (text, fragments) in cases {
            assertFileError("mem.yaml", fragments) { try ModelSpec.parse(yaml: text, file: "mem.yaml") }
        }
    }

    func testLiteralArguments() {
        XCTAssertEqual(LayerArg.literal("None"), .null)
        XCTAssertEqual(LayerArg.literal("1e-3"), .float(0.001))
        XCTAssertEqual(LayerArg.literal("nc"), .identifier("nc"))
        XCTAssertEqual(LayerArg.literal("nearest"), .string("nearest"))
        XCTAssertEqual(LayerArg.literal("False"), .bool(false))
        XCTAssertEqual(LayerArg.literal("[1, 2]"), .list([.int(1), .int(2)]))
    }
}
