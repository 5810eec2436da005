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
public struct ContextAggregation: UnaryModule {
    public let channels: Int, reduction: Int, interChannels: Int
    let a: Child<Conv2d>, k: Child<Conv2d>, v: Child<Conv2d>, m: Child<Conv2d>

    public init(_ w: WeightScope, channels c: Int, reduction r: Int = 1) throws {
        channels = c
        reduction = r
        let inter = max(c / max(r, 1), 1)
        interChannels = inter
        // caffe2_xavier_init: kaiming_uniform_(a=1) = U(+-sqrt(3 / fan_in)), bias 0; constant_init(m, 0).
        func xavier(_ fanIn: Int) -> WeightInit {
            let b = (3 / Float(fanIn)).squareRoot()
            return .uniform(-b, b)
        }
        a = try Child(w, "a.conv") { try Conv2d($0, c1: c, c2: 1, k: 1, weightInit: xavier(c), biasInit: .zeros) }
        k = try Child(w, "k.conv") { try Conv2d($0, c1: c, c2: 1, k: 1, weightInit: xavier(c), biasInit: .zeros) }
        v = try Child(w, "v.conv") { try Conv2d($0, c1: c, c2: inter, k: 1, weightInit: xavier(c), biasInit: .zeros) }
        m = try Child(w, "m.conv") { try Conv2d($0, c1: inter, c2: c, k: 1, weightInit: .zeros, biasInit: .zeros) }
    }

    /// The matrix product v @ softmax(k) (C/r x H*W multiply-adds per image), which the counter sees; the four
    /// convolutions are its children's.
    public func ownFlops(inputs: [[Int]], output s: [Int]) -> Double { Double(s[0]) * 2 * Double(interChannels * s[2] * s[3]) }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: channels, "ContextAggregation")
        let n = x.shape[0], h = x.shape[2], wd = x.shape[3]
        let gate = sigmoid(try a(x, ctx))                                                   // [N, 1, H, W]
        let weights = softmax(try k(x, ctx).reshaped([n, 1, h * wd, 1]), axis: 2)          // [N, 1, HW, 1]
        let values = try v(x, ctx).reshaped([n, 1, interChannels, h * wd])                  // [N, 1, C/r, HW]
        let context = matmul(values, weights).reshaped([n, interChannels, 1, 1])           // [N, C/r, 1, 1]
        let y = x + (try m(context, ctx)) * gate
        ctx.probe("gate: sigmoid(a(x))", .contextMap(unbatched(slice(gate, axis: 0, range: 0 ..< 1)), signed: false), name: "gate")
        ctx.probe("context weights: softmax(k(x)) over H*W (global)",
                  .contextMap(slice(weights, axis: 0, range: 0 ..< 1).reshaped([1, h, wd]), signed: false), name: "context_weights")
        ctx.probe("context vector v @ softmax(k)", .tensor(slice(context, axis: 0, range: 0 ..< 1).reshaped([interChannels])), name: "context")
        return y
    }
}
