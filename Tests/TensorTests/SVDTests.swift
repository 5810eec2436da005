import XCTest
@testable import Tensor

/// LAPACK's SVD through OpenBLAS: the first right-singular vector is one (AᵀA v = s₀² v, unit length), and the
/// shortcut through QR / LQ gives exactly the vector `sgesdd` gives, sign included, on tall, wide and square
/// matrices on both sides of sgesdd's 11/6 threshold and of its divide-and-conquer size (25).
final class SVDTests: XCTestCase {
    func matrix(_ m: Int, _ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0 ..< m * n).map { _ in rng.nextNormal() }
    }

    func testFirstRightSingularVectorIsAnEigenvectorOfTheGram() throws {
        for (m, n) in [(40, 7), (7, 40), (30, 30), (90, 40), (33, 1), (1, 9)] {
            let a = matrix(m, n, seed: UInt64(m * 100 + n))
            let d = try SVD.decompose(columnMajor: a, rows: m, columns: n)
            let v = d.rightVector(0), s0 = d.singularValues[0]
            XCTAssertEqual(v.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-4)
            XCTAssertEqual(d.singularValues, d.singularValues.sorted(by: >))
            // A v, then Aᵀ (A v): column-major a[i + j * m].
            let av = (0 ..< m).map { i in (0 ..< n).reduce(Float(0)) { $0 + a[i + $1 * m] * v[$1] } }
            let atav = (0 ..< n).map { j in (0 ..< m).reduce(Float(0)) { $0 + a[$1 + j * m] * av[$1] } }
            for j in 0 ..< n { XCTAssertEqual(atav[j], s0 * s0 * v[j], accuracy: 1e-3 * s0 * s0, "\(m)x\(n) [\(j)]") }
        }
    }

    func testShortcutGivesSgesddsVectorWithItsSign() throws {
        var worst: Float = 0, cases = 0
        for (m, n) in [(45, 7), (24, 1), (6, 33), (92, 40), (400, 64), (64, 400), (57, 31), (40, 92), (300, 30), (31, 300), (50, 50), (60, 40)] {
            for seed in 0 ..< 3 {
                let a = matrix(m, n, seed: UInt64(seed * 7919 + m * 31 + n))
                let full = try SVD.decompose(columnMajor: a, rows: m, columns: n)
                let fast = try SVD.firstRightSingularVector(columnMajor: a, rows: m, columns: n)
                let d = zip(full.rightVector(0), fast.vector).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(d, 1e-3, "\(m)x\(n) seed \(seed): the vectors differ by \(d) (a flipped sign differs by up to 2)")
                XCTAssertEqual(fast.singularValues[0], full.singularValues[0], accuracy: 1e-4 * full.singularValues[0])
                worst = max(worst, d)
                cases += 1
            }
        }
        print(String(format: "SVD shortcut vs sgesdd: %d matrices, max |diff| %.2g", cases, worst))
    }
}
