import Foundation
import Tensor

/// ContextAggregation, the global context block of CONTAINER as YOLO tutorials graft it.
///
/// Gao et al., "CONTAINER: Context Aggregation Network" (arXiv 2106.01401); the block is the one seed 001
/// prints (mmcv `ConvModule`s without norm or activation, i.e. 1x1 convolutions with bias).
///
/// Four 1x1 convolutions: `a` (C -> 1) gives a gate, `k` (C -> 1) gives one score per position, turned into
/// global context weights by a softmax over all H*W positions; `v` (C -> C/r) gives values; the weighted sum of
/// the values over positions is one context vector y [C/r]; `m` (C/r -> C) maps it back and the gated result is
/// added to the input: `out = x + m(y) * sigmoid(a(x))`. `m` starts at zero, so an untrained block is the identity.
///
/// Shapes: x [N, C, H, W] -> [N, C, H, W]. Keys: `{a,k,v,m}.conv.{weight,bias}`.
/// Probes: `gate` sigmoid(a) [1, H, W], `context weights` softmax(k) [1, H, W], the context vector y [C/r].
public struct ContextAggregation: Layer {
    public let channels: Int, reduction: Int, interChannels: Int
    public let a: Conv2dParams, k: Conv2dParams, v: Conv2dParams, m: Conv2dParams

    public init(_ w: WeightScope, channels c: Int, reduction r: Int = 1) throws {
        channels = c
        reduction = r
        interChannels = max(c / max(r, 1), 1)
        // caffe2_xavier_init: kaiming_uniform_(a=1) = U(+-sqrt(3 / fan_in)), bias 0; constant_init(m, 0).
        func xavier(_ fanIn: Int) -> WeightInit {
            let b = (3 / Float(fanIn)).squareRoot()
            return .uniform(-b, b)
        }
        a = try Conv2dParams(w.scope("a").scope("conv"), in: c, out: 1, kernel: 1, bias: true, weightInit: xavier(c), biasInit: .zeros)
        k = try Conv2dParams(w.scope("k").scope("conv"), in: c, out: 1, kernel: 1, bias: true, weightInit: xavier(c), biasInit: .zeros)
        v = try Conv2dParams(w.scope("v").scope("conv"), in: c, out: interChannels, kernel: 1, bias: true, weightInit: xavier(c), biasInit: .zeros)
        m = try Conv2dParams(w.scope("m").scope("conv"), in: interChannels, out: c, kernel: 1, bias: true, weightInit: .zeros, biasInit: .zeros)
    }

    public var parameterCount: Int { a.parameterCount + k.parameterCount + v.parameterCount + m.parameterCount }

    /// The four convolutions plus the matrix product v @ k (C/r x H*W MACs), as thop counts them.
    public func flops(inputShape s: [Int]) -> Double {
        let n = Double(s[0]), h = s[2], wd = s[3]
        let convs = a.flops(height: h, width: wd) + k.flops(height: h, width: wd) + v.flops(height: h, width: wd)
            + m.flops(height: 1, width: 1)
        return n * (convs + 2 * Double(interChannels * h * wd))
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: channels, "ContextAggregation")
        let n = x.shape[0], h = x.shape[2], wd = x.shape[3]
        let gate = sigmoid(a(x))                                                   // [N, 1, H, W]
        let weights = softmax(k(x).reshaped([n, 1, h * wd, 1]), axis: 2)          // [N, 1, HW, 1]
        let values = v(x).reshaped([n, 1, interChannels, h * wd])                  // [N, 1, C/r, HW]
        let context = matmul(values, weights).reshaped([n, interChannels, 1, 1])   // [N, C/r, 1, 1]
        let y = x + m(context) * gate
        ctx.probe("gate: sigmoid(a(x))", .contextMap(unbatched(slice(gate, axis: 0, range: 0 ..< 1)), signed: false), name: "gate")
        ctx.probe("context weights: softmax(k(x)) over H*W (global)",
                  .contextMap(slice(weights, axis: 0, range: 0 ..< 1).reshaped([1, h, wd]), signed: false), name: "context_weights")
        ctx.probe("context vector v @ softmax(k)", .tensor(slice(context, axis: 0, range: 0 ..< 1).reshaped([interChannels])), name: "context")
        return y
    }
}
