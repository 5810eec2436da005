import Foundation
import XCTest
import Tensor
@testable import ModelZoo

/// Seeded mutation tests: corrupted pickles, checkpoints, YAML and images must give errors, never crash.
final class IOFuzzTests: XCTestCase {
    func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = bytes
        switch rng.below(4) {
        case 0: b = Array(b.prefix(rng.below(b.count)))
        case 1:
            for _ in 0 ..< 1 + rng.below(4) where !b.isEmpty { b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next()) }
        case 2:
            let i = rng.below(b.count), n = min(1 + rng.below(16), b.count - i)
            b.removeSubrange(i ..< i + n)
        default:
            let i = rng.below(b.count), j = rng.below(b.count)
            if i < j { b.insert(contentsOf: b[i ..< min(j, i + 32)], at: j) }
        }
        return b
    }

    /// data.pkl of a stored (uncompressed) torch.save zip, located through the central directory (torch's
    /// writer leaves the sizes in local headers as zero).
    func dataPickle(_ path: String) throws -> [UInt8] {
        let z = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func u16(_ o: Int) -> Int { Int(z[o]) | Int(z[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        let eocd = try XCTUnwrap((0 ... z.count - 22).reversed().first { u32($0) == 0x0605_4B50 })
        var cd = u32(eocd + 16)
        for _ in 0 ..< u16(eocd + 10) {
            XCTAssertEqual(u32(cd), 0x0201_4B50)
            let size = u32(cd + 20), nameLen = u16(cd + 28), extraLen = u16(cd + 30), commentLen = u16(cd + 32)
            let local = u32(cd + 42)
            let name = String(decoding: z[cd + 46 ..< cd + 46 + nameLen], as: UTF8.self)
            if name.hasSuffix("/data.pkl") {
                let start = local + 30 + u16(local + 26) + u16(local + 28)
                return Array(z[start ..< start + size])
            }
            cd += 46 + nameLen + extraLen + commentLen
        }
        throw FileFormatError(file: path, problem: "no data.pkl")
    }

    func testMutatedPicklesNeverCrash() throws {
        let original = try dataPickle(IOFixtures.path("ultra_tiny_best.pt"))
        var rng = SplitMix64(seed: 42)
        var errors = 0, opened = 0
        let sizes = Dictionary(uniqueKeysWithValues: (0 ..< 200).map { (String($0), 1 << 20) })
        for _ in 0 ..< 60 {
            let bytes = mutate(original, &rng)
            do {
                let v = try Unpickler(data: Data(bytes), file: "fuzz") { pid in
                    try TorchArchive.storage(from: pid, sizes: sizes, file: "fuzz")
                }.load()
                if case .object(let o)? = v["model"] {
                    var out: [(String, TorchTensorRef)] = []
                    var seen = 0
                    try? Checkpoint.collectState(o, prefix: "", into: &out, depth: 0, visited: &seen, file: "fuzz")
                    _ = o.attribute("yaml")?.configValue()
                }
                opened += 1
            } catch is FileFormatError {
                errors += 1
            }
        }
        print("IO-measure fuzz pickles: \(original.count) bytes, \(errors) errors, \(opened) opened")
        XCTAssertEqual(errors + opened, 60)
        XCTAssertGreaterThan(errors, 5)
    }

    func testMutatedCheckpointFilesNeverCrash() throws {
        let originals = try ["state_dict.pt", "state_dict_legacy.pt"].map {
            [UInt8](try Data(contentsOf: URL(fileURLWithPath: IOFixtures.path($0))))
        }
        let dir = try IOFixtures.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 7)
        for i in 0 ..< 120 {
            let path = dir.appendingPathComponent("m\(i).pt").path
            try Data(mutate(originals[i % 2], &rng)).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Checkpoint.open(path: path).tensors
            } catch let e as FileFormatError {
                XCTAssertTrue(e.file.hasPrefix(path), e.description)
            }
        }
    }

    func testMutatedImagesAndYAMLNeverCrash() throws {
        var rng = SplitMix64(seed: 3)
        for name in ["rgb.png", "palette.png", "photo.jpg", "exif6.jpg", "p6.ppm", "p3.ppm"] {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: IOFixtures.path("images/" + name))))
            for _ in 0 ..< 30 {
                do {
                    let img = try ImageIO.decode(Data(mutate(original, &rng)), file: name)
                    XCTAssertEqual(img.pixels.count, img.width * img.height * 3)
                } catch is FileFormatError {}
            }
        }
        let yaml = [UInt8](try Data(contentsOf: URL(fileURLWithPath: IOFixtures.path("ultra_tiny.yaml"))))
        for _ in 0 ..< 200 {
            do {
                _ = try ModelSpec.parse(yaml: String(decoding: mutate(yaml, &rng), as: UTF8.self), file: "fuzz.yaml")
            } catch is FileFormatError {}
        }
    }
}

/// Seeded mutations (SplitMix64), so every run mutates the same way.
extension SplitMix64 {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}
