import XCTest
@testable import Tensor

/// The multi-scale deformable sampling kernels of msda.c (AVX-512, AVX2, portable) against the grid_sample
/// reference (`multiScaleDeformableAttentionReference`), on each kernel set this process may run.
final class DeformableKernelTests: XCTestCase {
    /// The kernel sets to test here, and the ones skipped with the reason.
    func kernelSets() -> (run: [KernelSet], skipped: [String]) {
        var run: [KernelSet] = [], skipped: [String] = []
        for k in KernelSet.allCases {
            if !k.isSupported { skipped.append("\(k.rawValue): this processor cannot run it") }
            else if !k.isEnabled { skipped.append("\(k.rawValue): turned off (kernels in use: \(KernelSet.active.rawValue))") }
            else { run.append(k) }
        }
        return (run, skipped)
    }

    func assertClose(_ a: Tensor, _ b: Tensor, _ what: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what(), file: file, line: line)
        guard a.shape == b.shape else { return }
        var worst: Float = 0, at = 0, scale: Float = 1e-6
        for i in 0 ..< a.count {
            scale = Swift.max(scale, Swift.abs(b.data[i]))
            let e = Swift.abs(a.data[i] - b.data[i])
            if !(e <= worst) { worst = e; at = i }   // a NaN counts as the worst
        }
        XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(what()): worst error \(worst) at flat index \(at) (scale \(scale))",
                                 file: file, line: line)
    }

    /// A location coordinate for a level of `size` cells: random in [-0.2, 1.2] (some outside), or exactly on a
    /// border case: the map's edges 0 and 1, a pixel centre, half a pixel outside either edge (the last place with
    /// any weight, exclusive), just inside those, or a non-finite value (no contribution).
    func coordinate(_ rng: inout SplitMix64, size: Int) -> Float {
        let s = Float(size)
        switch rng.int(0 ... 15) {
        case 0: return 0
        case 1: return 1
        case 2: return (Float(rng.int(0 ... size - 1)) + 0.5) / s
        case 3: return -0.5 / s
        case 4: return (s + 0.5) / s
        case 5: return (-0.5 + 1e-3) / s
        case 6: return (s + 0.5 - 1e-3) / s
        case 7: return [Float.nan, .infinity, -.infinity][rng.int(0 ... 2)]
        default: return rng.nextFloat() * 1.4 - 0.2
        }
    }

    /// Odd shapes: head widths around the vector lengths (1-9, 15-17, 31-33, 63-65 and wider than one 64-channel
    /// block), one to four heads, levels of one to nine cells a side (1x1 levels: every tap on a border), one to four
    /// points, batches of two; points on the borders, outside and non-finite.
    func testKernelsMatchGridSampleReference() throws {
        let (sets, skipped) = kernelSets()
        let dims = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 63, 64, 65, 80, 100, 130]
        for kernels in sets {
            var rng = SplitMix64(seed: 41)
            for (trial, dim) in (dims + dims).enumerated() {
                let n = rng.int(1 ... 2), heads = rng.int(1 ... 4)
                let levels = (0 ..< rng.int(1 ... 4)).map { _ in (rng.int(1 ... 9), rng.int(1 ... 9)) }
                let points = rng.int(1 ... 4), q = rng.int(1 ... 30)
                let s = levels.reduce(0) { $0 + $1.0 * $1.1 }
                let value = rng.tensor([n, s, heads, dim])
                var loc = [Float]()
                for _ in 0 ..< n * q * heads {
                    for (h, w) in levels {
                        for _ in 0 ..< points { loc += [coordinate(&rng, size: w), coordinate(&rng, size: h)] }
                    }
                }
                let locations = Tensor(shape: [n, q, heads, levels.count, points, 2], data: loc)
                let weights = rng.tensor([n, q, heads, levels.count, points])
                let fast = multiScaleDeformableAttention(value: value, levelShapes: levels, samplingLocations: locations,
                                                         attentionWeights: weights, kernels: kernels)
                let ref = multiScaleDeformableAttentionReference(value: value, levelShapes: levels, samplingLocations: locations,
                                                                 attentionWeights: weights)
                assertClose(fast, ref, "\(kernels.rawValue) trial \(trial): n \(n) levels \(levels) heads \(heads) dim \(dim) points \(points) q \(q)")
            }
        }
        if !skipped.isEmpty { print("DeformableKernelTests: not tested: \(skipped.joined(separator: "; "))") }
        try XCTSkipIf(sets.isEmpty, "no kernel set runs here")
    }

    /// `columns`: the heads' channels read in place from a wider value row (several attentions' values side by side,
    /// as RT-DETR's decoder stacks its layers' value_proj) give what the same columns cut out give, on every kernel
    /// set: first, middle and last columns of rows of 3 to 5 groups, head widths 1 to 40, batches of two.
    func testColumnsOfAWiderValueMatchTheCutOutColumns() throws {
        let (sets, _) = kernelSets()
        for kernels in sets {
            var rng = SplitMix64(seed: 43)
            for trial in 0 ..< 24 {
                let n = rng.int(1 ... 2), heads = rng.int(1 ... 3), dim = [1, 3, 8, 16, 17, 32, 40][trial % 7]
                let groups = rng.int(3 ... 5), g = [0, 1, groups - 1][trial % 3]
                let levels = (0 ..< rng.int(1 ... 3)).map { _ in (rng.int(1 ... 7), rng.int(1 ... 7)) }
                let points = rng.int(1 ... 4), q = rng.int(1 ... 20)
                let s = levels.reduce(0) { $0 + $1.0 * $1.1 }, width = heads * dim
                let wide = rng.tensor([n, s, groups * width])
                let locations = rng.tensor([n, q, heads, levels.count, points, 2]) * 0.7 + 0.5
                let weights = rng.tensor([n, q, heads, levels.count, points])
                let columns = g * width ..< (g + 1) * width
                let inPlace = multiScaleDeformableAttention(value: wide, levelShapes: levels, samplingLocations: locations,
                                                            attentionWeights: weights, columns: columns, kernels: kernels)
                let cut = slice(wide, axis: 2, range: columns).reshaped([n, s, heads, dim])
                let expected = multiScaleDeformableAttention(value: cut, levelShapes: levels, samplingLocations: locations,
                                                             attentionWeights: weights, kernels: kernels)
                XCTAssertEqual(inPlace.shape, expected.shape)
                XCTAssertEqual(inPlace.data, expected.data, "\(kernels.rawValue) trial \(trial): group \(g) of \(groups), heads \(heads) dim \(dim)")
            }
        }
        try XCTSkipIf(sets.isEmpty, "no kernel set runs here")
    }

    /// A tap outside the map is not read: NaN and infinite values in the tokens next to a level's border stay out of
    /// the sum of points whose taps there lie outside (grid_sample's zero padding), on every kernel set.
    func testTapsOutsideTheMapAreNotRead() throws {
        let (sets, _) = kernelSets()
        // One 3x4 level, one head of 5 channels; a location (lx, ly) in [0, 1] is pixel (lx * 4 - 0.5, ly * 3 - 0.5).
        let h = 3, w = 4, dim = 5
        var value = [Float](repeating: 1, count: h * w * dim)
        // Token 0 (row 0, column 0) poisoned: a point whose only inside tap is token 11 (row 2, column 3) must not
        // see it, nor the next point, half a pixel below the map's lower-right corner.
        for c in 0 ..< dim { value[c] = .nan; value[11 * dim + c] = Float(c + 1) }
        // pixel (3.25, 2.25), then (3.5, 2.5): only the tap (3, 2) is inside for either
        let loc: [Float] = [Float(3.75 / 4.0), Float(2.75 / 3.0), Float(4.0 / 4.0), Float(3.0 / 3.0)]
        let locations = Tensor(shape: [1, 1, 1, 1, 2, 2], data: loc)
        let weights = Tensor(shape: [1, 1, 1, 1, 2], data: [1, 2])
        for kernels in sets {
            let out = multiScaleDeformableAttention(value: Tensor(shape: [1, h * w, 1, dim], data: value), levelShapes: [(h, w)],
                                                    samplingLocations: locations, attentionWeights: weights, kernels: kernels)
            // (1 - 0.25)^2 of token 11 for the first point, (1 - 0.5)^2 for the second (weight 2)
            let share: Float = 0.75 * 0.75 + 2 * 0.25
            let expected = (0 ..< dim).map { Float($0 + 1) * share }
            for c in 0 ..< dim {
                XCTAssertEqual(out.data[c], expected[c], accuracy: 1e-5, "\(kernels.rawValue) channel \(c)")
            }
        }
        try XCTSkipIf(sets.isEmpty, "no kernel set runs here")
    }
}
