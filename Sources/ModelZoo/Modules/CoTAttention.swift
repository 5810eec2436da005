import Foundation
import Tensor

/// CoTAttention: the simplified Contextual Transformer block that YOLO / RT-DETR tutorials paste in
/// (xmu-xiaoma666/External-Attention-pytorch `model/attention/CoTAttention.py`).
///
/// Li et al., "Contextual Transformer Networks for Visual Recognition" (arXiv 2107.12292).
///
/// - static context `k1 = ReLU(BN(conv_kxk(x, groups 4)))`: each key sees its k x k neighbourhood;
/// - values `v = BN(conv_1x1(x))`;
/// - `att = conv_1x1(ReLU(BN(conv_1x1([k1, x]))))` gives C*k*k maps, averaged over the k*k window slots to one
///   map per channel, then a softmax over all H*W positions of that channel;
/// - dynamic context `k2 = softmax(att) * v` (element-wise), output `k1 + k2`.
///
/// How it differs from the paper's block (`CotLayer`, the official JDAI-CV/CoTNet code): there, the k*k weights
/// stay separate and aggregate the values over each pixel's own k x k window (a local, per-pixel convolution with
/// weights shared by groups of 8 channels), followed by BN + Swish, and k1 and k2 are fused by a learned
/// split-attention (radix 2) step. Here the window dimension is averaged away, the softmax runs over the whole
/// image per channel, the result only rescales v at each position (no neighbourhood aggregation), and the fusion is
/// a plain sum.
///
/// Shapes: x [N, C, H, W] -> [N, C, H, W] (C divisible by 4). Keys: `key_embed.{0,1}`, `value_embed.{0,1}`,
/// `attention_embed.{0,1,3}` (nn.Sequential indices).
/// Probes: `k1` static context [C, H, W], `k2` dynamic context [C, H, W], `attention` softmax map per channel
/// [C, H, W] and averaged over channels [1, H, W].
public struct CoTAttention: UnaryModule {
    public let channels: Int, kernel: Int
    /// key_embed (Conv2d, BN, ReLU), value_embed (Conv2d, BN), attention_embed.0-2 (Conv2d, BN, ReLU) as folded convs.
    let keyEmbed: Child<Conv>, valueEmbed: Child<Conv>, attentionEmbed0: Child<Conv>
    let attentionEmbed3: Child<Conv2d>

    /// `bnEps`: 1e-5 as the reference builds it; 1e-3 inside an ultralytics model (its `initialize_weights`).
    public init(_ w: WeightScope, channels c: Int, kernel k: Int = 3, bnEps: Float = 1e-5) throws {
        guard c % 4 == 0, c > 0 else { throw ModuleInputError("CoTAttention", "channels must be a positive multiple of 4 (groups 4), got \(c)") }
        guard k % 2 == 1 else { throw ModuleInputError("CoTAttention", "kernel size must be odd, got \(k)") }
        channels = c
        kernel = k
        keyEmbed = try Child(w, "key_embed") { try Conv($0, c1: c, c2: c, k: k, g: 4, act: .relu, eps: bnEps, keys: ("0", "1")) }
        valueEmbed = try Child(w, "value_embed") { try Conv($0, c1: c, c2: c, k: 1, act: .identity, eps: bnEps, keys: ("0", "1")) }
        attentionEmbed0 = try Child(w, "attention_embed") { try Conv($0, c1: 2 * c, c2: 2 * c / 4, k: 1, act: .relu, eps: bnEps, keys: ("0", "1")) }
        attentionEmbed3 = try Child(w, "attention_embed.3") { try Conv2d($0, c1: 2 * c / 4, c2: k * k * c, k: 1) }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: channels, "CoTAttention")
        let n = x.shape[0], c = channels, h = x.shape[2], wd = x.shape[3], kk = kernel * kernel
        let k1 = try keyEmbed(x, ctx)                                         // [N, C, H, W]
        let v = try valueEmbed(x, ctx).reshaped([n, c, h * wd])               // [N, C, HW]
        let att = try attentionEmbed3(attentionEmbed0(concat([k1, x], axis: 1), ctx), ctx)   // [N, C*kk, H, W]
        let attMean = mean(att.reshaped([n, c, kk, h * wd]), axis: 2)         // [N, C, HW]
        let weights = softmax(attMean, axis: -1)                              // softmax over positions
        let k2 = (weights * v).reshaped([n, c, h, wd])
        if ctx.trace != nil {
            let w0 = slice(weights, axis: 0, range: 0 ..< 1).reshaped([c, h, wd])
            ctx.probe("static context k1", .featureMap(unbatched(slice(k1, axis: 0, range: 0 ..< 1))), name: "k1")
            ctx.probe("dynamic context k2 = softmax(att) * v", .featureMap(unbatched(slice(k2, axis: 0, range: 0 ..< 1))), name: "k2")
            ctx.probe("attention weights: softmax over H*W, per channel", .contextMap(w0, signed: false), name: "attention")
            ctx.probe("attention weights averaged over channels", .contextMap(mean(w0, axis: 0, keepDims: true), signed: false), name: "attention_mean")
        }
        return k1 + k2
    }
}
