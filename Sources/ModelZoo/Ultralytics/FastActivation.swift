import Foundation
import Tensor

// In-place activations for the conv blocks' outputs: the conv result is a fresh tensor, so applying the
// activation in place saves an allocation and a pass, and the SIMD exp below keeps SiLU from costing more than
// the convolution feeding it. Accuracy: relative error of exp about 2e-7 over the range used (|x| <= 87).

/// e^x for 8 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n by building the exponent.
@inline(__always)
func simdExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var v = x
    v.replace(with: SIMD8<Float>(repeating: -87.3), where: v .< -87.3)
    v.replace(with: SIMD8<Float>(repeating: 88.3), where: v .> 88.3)
    // n = round(v / ln2) by the 1.5 * 2^23 trick: the sum's low mantissa bits hold n.
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let t = v * 1.442_695_04 + magic
    let n = t - magic
    // ln2 split in two parts so that v - n ln2 stays exact
    var r = v - n * 0.693_145_75
    r = r - n * 1.428_606_8e-6
    var p = SIMD8<Float>(repeating: 1.0 / 720)
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let ti = unsafeBitCast(t, to: SIMD8<Int32>.self)
    let bits = (ti &- SIMD8<Int32>(repeating: 0x4B40_0000) &+ SIMD8<Int32>(repeating: 127)) &<< SIMD8<Int32>(repeating: 23)
    return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
}

/// Applies `act` to `t` in place (the tensor must not be shared, e.g. a conv output just made).
func activateInPlace(_ t: inout Tensor, _ act: Activation) {
    switch act {
    case .identity: return
    case .silu, .relu, .sigmoid:
        let n = t.count
        let parts = n >= 1 << 15 ? 2 : 1
        t.data.withUnsafeMutableBufferPointer { buf in
            let base = SendablePointer(buf.baseAddress!)
            let chunk = (n / parts + 7) & ~7
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = part * chunk, end = min(n, start + chunk)
                guard start < end else { return }
                applyRange(base.p + start, end - start, act)
            }
        }
    default:
        t = act.apply(t)
    }
}

struct SendablePointer: @unchecked Sendable {
    let p: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { self.p = p }
}

@inline(__always)
private func applyRange(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ act: Activation) {
    var i = 0
    let raw = UnsafeMutableRawPointer(p)
    switch act {
    case .silu:
        while i + 8 <= count {
            let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: x / (1 + simdExp(-x)), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { let x = p[i]; p[i] = x / (1 + Foundation.exp(-x)); i += 1 }
    case .sigmoid:
        while i + 8 <= count {
            let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: 1 / (1 + simdExp(-x)), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { p[i] = 1 / (1 + Foundation.exp(-p[i])); i += 1 }
    case .relu:
        let zero = SIMD8<Float>(repeating: 0)
        while i + 8 <= count {
            let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: x.replacing(with: zero, where: x .< zero), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { if p[i] < 0 { p[i] = 0 }; i += 1 }
    default:
        break
    }
}
