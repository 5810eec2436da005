import XCTest
import Foundation
@testable import Tensor
import CKernels

/// The exact GELU (x * Phi(x)) of each kernel set against the double-precision value 0.5 x erfc(-x / sqrt 2):
/// a dense sweep of [-15, 15], every 1021st float of either sign up to 1e5 (tails and tiny inputs), NaN, +-inf,
/// +-0 and every tail length of the 16- and 8-lane loops. A set the processor cannot run, or the environment turned
/// off, skips and says so.
final class GeluKernelTests: XCTestCase {
    /// Skips, saying so, when this process cannot run `kernels`.
    func require(_ kernels: KernelSet) throws {
        try XCTSkipUnless(kernels.isSupported, "this processor cannot run the \(kernels.rawValue) kernels (CPU: \(CPUInfo.current.name))")
        try XCTSkipUnless(kernels.isEnabled, "the \(kernels.rawValue) kernels are turned off (kernels in use: \(KernelSet.active.rawValue))")
    }

    /// The reference, computed in Double and rounded once.
    static func reference(_ x: Float) -> Float {
        let d = Double(x)
        return Float(0.5 * d * erfc(-d / 2.0.squareRoot()))
    }

    /// The distance between two finite floats in units in the last place (0 for +0 and -0).
    static func ulps(_ a: Float, _ b: Float) -> Int64 {
        func ordered(_ v: Float) -> Int64 {
            let bits = Int64(Int32(bitPattern: v.bitPattern))
            return bits < 0 ? -(bits & 0x7fff_ffff) : bits
        }
        return Swift.abs(ordered(a) - ordered(b))
    }

    /// The inputs: a dense sweep, strided bit patterns of both signs (1e-45 ... 1e5) and the specials.
    static let inputs: [Float] = {
        var xs: [Float] = []
        let steps = 600_000
        for i in 0 ... steps { xs.append(-15 + 30 * Float(i) / Float(steps)) }
        var bits: UInt32 = 1
        while bits < Float(1e5).bitPattern {
            xs.append(Float(bitPattern: bits)); xs.append(-Float(bitPattern: bits))
            bits += 1021
        }
        xs += [0, -0.0, 1, -1, Float(1).nextUp, Float(-1).nextDown, .infinity, -.infinity, .nan,
               .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude]
        return xs
    }()

    /// Runs `kernels`' GELU over `xs` through the Tensor entry point (split across cores).
    func run(_ xs: [Float], _ kernels: KernelSet) -> [Float] {
        gelu(Tensor(shape: [xs.count], data: xs), kernels: kernels).data
    }

    /// Checks every output: NaN for NaN and -inf (x * Phi(x) written out: -inf * 0), +inf for +inf, else within
    /// `maxUlps` of the reference, or both under `flush` in magnitude (the far negative tail).
    func check(_ kernels: KernelSet, maxUlps: Int64, flush: Float) {
        let xs = Self.inputs
        let ys = run(xs, kernels)
        var worst: Int64 = 0, worstAt: Float = 0, failures = 0
        for (x, y) in zip(xs, ys) {
            if x.isNaN || x == -.infinity {
                if !y.isNaN { failures += 1; XCTFail("\(kernels.rawValue): gelu(\(x)) = \(y), expected NaN") }
                continue
            }
            if x == .infinity {
                if y != .infinity { failures += 1; XCTFail("\(kernels.rawValue): gelu(inf) = \(y)") }
                continue
            }
            let r = Self.reference(x)
            if y.isNaN || y.isInfinite {
                failures += 1
                if failures < 10 { XCTFail("\(kernels.rawValue): gelu(\(x)) = \(y), expected \(r)") }
                continue
            }
            if Swift.abs(r) < flush && Swift.abs(y) < flush { continue }
            let u = Self.ulps(y, r)
            if u > worst { worst = u; worstAt = x }
            if u > maxUlps {
                failures += 1
                if failures < 10 { XCTFail("\(kernels.rawValue): gelu(\(x)) = \(y), reference \(r): \(u) ulp") }
            }
        }
        print("GELU \(kernels.rawValue): worst \(worst) ulp at x = \(worstAt) over \(xs.count) inputs")
    }

    /// The vector kernels: within 6 ulp (5 measured); in the far negative tail (|result| under FLT_MIN / 2, x below
    /// -13.2136: the kernel's exponential flushes to 0 there) the result may be -0.
    func testGeluAVX512MatchesDoublePrecision() throws { try require(.avx512); check(.avx512, maxUlps: 6, flush: Float.leastNormalMagnitude / 2) }
    func testGeluAVX2MatchesDoublePrecision() throws { try require(.avx2); check(.avx2, maxUlps: 6, flush: Float.leastNormalMagnitude / 2) }
    /// The portable path (erfcf of a rounded x / sqrt 2: its error grows with x^2 in the negative tail).
    func testGeluPortableMatchesDoublePrecision() { check(.portable, maxUlps: 400, flush: 0) }

    /// Every tail length of the 16- and 8-lane loops gives the same bits as the same inputs in a long run, and the
    /// floats after the end are not written.
    func checkTails(_ kernels: KernelSet) {
        var rng = SplitMix64(seed: 15)
        let xs = (0 ..< 64).map { _ in Float(rng.int(-6000 ... 6000)) / 1000 }
        let full = run(xs, kernels)
        for n in 1 ... 40 {
            var out = [Float](repeating: 12345, count: n + 3)
            xs.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    switch kernels {
                    case .avx512: ck_gelu_avx512(dst.baseAddress!, src.baseAddress!, n)
                    case .avx2: ck_gelu_avx2(dst.baseAddress!, src.baseAddress!, n)
                    case .portable: break
                    }
                }
            }
            for i in 0 ..< n where out[i].bitPattern != full[i].bitPattern {
                XCTFail("\(kernels.rawValue), length \(n): element \(i) is \(out[i]), the long run gives \(full[i])")
            }
            XCTAssertEqual(Array(out[n...]), [12345, 12345, 12345], "\(kernels.rawValue), length \(n): wrote past the end")
        }
    }
    func testGeluTailsAVX512() throws { try require(.avx512); checkTails(.avx512) }
    func testGeluTailsAVX2() throws { try require(.avx2); checkTails(.avx2) }
}
