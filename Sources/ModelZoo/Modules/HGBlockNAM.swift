import Foundation
import Tensor

/// HGBlock with NAM inside: RT-DETR's HGNetv2 block with NAM channel attention on its output (seed 003's
/// "HGBlock secondary innovation").
///
/// The HGBlock itself is ultralytics' (`ultralytics/nn/modules/block.py`): n chained Conv (or LightConv) k x k
/// blocks with ReLU, every intermediate output concatenated with the input, a 1x1 squeeze conv (`sc`) to c2/2
/// and a 1x1 excitation conv (`ec`) to c2. NAM re-weights the excited channels by their batch-norm importance
/// (`sigmoid(w * BN(y)) * y`, see `NAM`) before the optional residual: `out = NAM(ec(sc(cat))) (+ x)`.
///
/// Shapes: x [N, c1, H, W] -> [N, c2, H, W]. Keys: HGBlock's (`m.{i}.conv/bn` or `m.{i}.conv1/conv2` for
/// LightConv, `sc`, `ec`) plus `nam.Channel_Att.bn2.*`. YAML: `[-1, n, HGBlock_NAM, [cm, c2, k, lightconv, shortcut]]`,
/// the arguments of HGBlock. Probes: NAM's, under `<path>.nam`.
public struct HGBlockNAM: Layer {
    enum Unit: Sendable {
        case conv(ConvBNAct)
        case light(ConvBNAct, ConvBNAct)
    }

    public let c1: Int, cm: Int, c2: Int, kernel: Int
    let units: [Unit]
    public let sc: ConvBNAct, ec: ConvBNAct
    public let nam: NAM
    public let add: Bool

    public init(_ w: WeightScope, c1: Int, cm: Int, c2: Int, k: Int = 3, n: Int = 6, lightconv: Bool = false, shortcut: Bool = false) throws {
        guard c1 > 0, cm > 0, c2 > 1, n > 0, k > 0 else { throw ModuleInputError("HGBlock_NAM", "channels, n and k must be positive (c1 \(c1), cm \(cm), c2 \(c2), n \(n), k \(k))") }
        self.c1 = c1; self.cm = cm; self.c2 = c2; kernel = k
        units = try (0 ..< n).map { i in
            let cin = i == 0 ? c1 : cm
            let s = w.scope("m").scope(i)
            if lightconv {
                // LightConv: 1x1 Conv without activation, then a depthwise k x k Conv with ReLU.
                return .light(try ConvBNAct(s.scope("conv1"), in: cin, out: cm, kernel: 1, act: .identity),
                              try ConvBNAct(s.scope("conv2"), in: cm, out: cm, kernel: k, groups: cm, act: .relu))
            }
            return .conv(try ConvBNAct(s, in: cin, out: cm, kernel: k, act: .relu))
        }
        sc = try ConvBNAct(w.scope("sc"), in: c1 + n * cm, out: c2 / 2, kernel: 1, act: .relu)
        ec = try ConvBNAct(w.scope("ec"), in: c2 / 2, out: c2, kernel: 1, act: .relu)
        nam = try NAM(w.scope("nam"), channels: c2, bnEps: 1e-3)  // ultralytics sets BN eps 1e-3 model-wide
        add = shortcut && c1 == c2
    }

    public var parameterCount: Int {
        units.reduce(0) { total, u in
            switch u {
            case .conv(let c): return total + c.parameterCount
            case .light(let a, let b): return total + a.parameterCount + b.parameterCount
            }
        } + sc.parameterCount + ec.parameterCount + nam.parameterCount
    }

    public func flops(inputShape s: [Int]) -> Double {
        let h = s[2], w = s[3]
        var f = 0.0
        for u in units {
            switch u {
            case .conv(let c): f += c.flops(height: h, width: w)
            case .light(let a, let b): f += a.flops(height: h, width: w) + b.flops(height: h, width: w)
            }
        }
        f += sc.flops(height: h, width: w) + ec.flops(height: h, width: w) + nam.flops(inputShape: [1, c2, h, w])
        return Double(s[0]) * f
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: c1, "HGBlock_NAM")
        var ys = [x]
        for u in units {
            let prev = ys[ys.count - 1]
            switch u {
            case .conv(let c): ys.append(c(prev))
            case .light(let a, let b): ys.append(b(a(prev)))
            }
        }
        let y = try nam.forward(ec(sc(concat(ys, axis: 1))), ctx.child("nam"))
        return add ? y + x : y
    }
}
