import Foundation
import Tensor

/// CotLayer: the Contextual Transformer block of the paper's own code (JDAI-CV/CoTNet `models/cotnet.py`),
/// which CoTNet puts in place of the 3x3 convolution of every ResNet bottleneck.
///
/// Li et al., "Contextual Transformer Networks for Visual Recognition" (arXiv 2107.12292).
///
/// - static context `k = ReLU(BN(conv_kxk(x, groups 4)))`;
/// - local attention weights from `[x, k]` (query first): 1x1 conv to C/2 + BN + ReLU, 1x1 conv (bias) to
///   k*k*C/8 + GroupNorm(C/8 groups): for every pixel, k*k weights per group of channels; channel c uses weight
///   set `c mod C/8` (`share_planes` 8);
/// - values `v = BN(conv_1x1(x))`; dynamic context: each output pixel is the weighted sum of v over that pixel's
///   k x k window, zero-padded (the CUDA `LocalConvolution` / aggregation_zeropad kernel), then BN + Swish;
/// - fusion (split attention, radix 2): `s = mean_HW(k2 + k)`, `se(s)` -> [C, 2] logits, softmax over the two,
///   `out = a0 * k2 + a1 * k`.
///
/// Unlike `CoTAttention` (the tutorials' simplified form) the window weights are kept per pixel and per window
/// slot and they aggregate a neighbourhood; the two contexts are fused by learned per-channel weights.
///
/// Shapes: x [N, C, H, W] -> [N, C, H, W] (C divisible by 8). Keys: `key_embed.{0,1}`, `embed.{0,1,3,4}`,
/// `conv1x1.{0,1}`, `bn`, `se.{0,1,3}`.
/// Probes: `k1` static context, `k2` dynamic context (after BN + Swish), the local attention weights
/// [C/8 * k*k, H, W] and their mean over channel groups [k*k, H, W], and the radix fusion weights [C, 2].
public struct CotLayer: UnaryModule {
    public let channels: Int, kernel: Int, shareGroups: Int, attnChannels: Int
    /// key_embed (Conv2d, BN, ReLU), embed.0-2 (Conv2d, BN, ReLU), conv1x1 (Conv2d, BN) and se.0-2 (Conv2d with
    /// bias, BN, ReLU) as folded convs.
    let keyEmbed: Child<Conv>, embed0: Child<Conv>
    let embed3: Child<Conv2d>
    let embedNorm: Child<GroupNorm>
    let conv1x1: Child<Conv>
    let bn: Child<BatchNorm2d>
    let se0: Child<Conv>
    let se3: Child<Conv2d>

    /// `bnEps`: 1e-5 as the reference builds it; 1e-3 inside an ultralytics model (its `initialize_weights`).
    public init(_ w: WeightScope, channels c: Int, kernel k: Int = 3, bnEps: Float = 1e-5) throws {
        guard c % 8 == 0, c > 0 else { throw ModuleInputError("CotLayer", "channels must be a positive multiple of 8 (share_planes 8, groups 4), got \(c)") }
        guard k % 2 == 1 else { throw ModuleInputError("CotLayer", "kernel size must be odd, got \(k)") }
        channels = c
        kernel = k
        let groups = c / 8
        shareGroups = groups
        let attn = max(c * 2 / 4, 32)
        attnChannels = attn
        keyEmbed = try Child(w, "key_embed") { try Conv($0, c1: c, c2: c, k: k, g: 4, act: .relu, eps: bnEps, keys: ("0", "1")) }
        embed0 = try Child(w, "embed") { try Conv($0, c1: 2 * c, c2: c / 2, k: 1, act: .relu, eps: bnEps, keys: ("0", "1")) }
        embed3 = try Child(w, "embed.3") { try Conv2d($0, c1: c / 2, c2: k * k * c / 8, k: 1) }
        embedNorm = try Child(w, "embed.4") { try GroupNorm($0, groups: groups, channels: k * k * c / 8) }
        conv1x1 = try Child(w, "conv1x1") { try Conv($0, c1: c, c2: c, k: 1, act: .identity, eps: bnEps, keys: ("0", "1")) }
        bn = try Child(w, "bn") { try BatchNorm2d($0, channels: c, eps: bnEps) }
        se0 = try Child(w, "se") { try Conv($0, c1: c, c2: attn, k: 1, act: .relu, eps: bnEps, keys: ("0", "1"), convBias: true) }
        se3 = try Child(w, "se.3") { try Conv2d($0, c1: attn, c2: 2 * c, k: 1) }
    }

    /// The zero-padded local aggregation: v [N, C, H, W], weights [N, C/8, k*k, H, W] -> [N, C, H, W], where
    /// out[c, y, x] = sum over window slots (i, j) of weights[c mod C/8, i*k + j, y, x] * v[c, y + i - k/2, x + j - k/2].
    func aggregate(_ v: Tensor, weights: Tensor) -> Tensor {
        let n = v.shape[0], c = channels, h = v.shape[2], wd = v.shape[3], kk = kernel * kernel, g = shareGroups
        let cols = unfold(v, kernel: kernel, padding: kernel / 2).reshaped([n, c / g, g, kk, h * wd])   // channel = r*g + j
        let wts = weights.reshaped([n, 1, g, kk, h * wd])
        return sum(cols * wts, axis: 3).reshaped([n, c, h, wd])
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: channels, "CotLayer")
        let n = x.shape[0], c = channels, h = x.shape[2], wd = x.shape[3], kk = kernel * kernel
        let k = try keyEmbed(x, ctx)                                                   // [N, C, H, W]
        let e = try embed3(embed0(concat([x, k], axis: 1), ctx), ctx)                  // [N, kk*C/8, H, W]
        let w = try embedNorm(e, ctx)
        let v = try conv1x1(x, ctx)
        let k2 = silu(try bn(aggregate(v, weights: w.reshaped([n, shareGroups, kk, h, wd])), ctx))
        let gap = mean((k2 + k).reshaped([n, c, h * wd]), axis: 2).reshaped([n, c, 1, 1])
        let logits = try se3(se0(gap, ctx), ctx).reshaped([n, c, 2])
        let radix = softmax(logits, axis: 2)                                            // [N, C, 2]
        let a0 = slice(radix, axis: 2, range: 0 ..< 1).reshaped([n, c, 1, 1])
        let a1 = slice(radix, axis: 2, range: 1 ..< 2).reshaped([n, c, 1, 1])
        let out = k2 * a0 + k * a1
        if ctx.trace != nil {
            let w0 = slice(w, axis: 0, range: 0 ..< 1).reshaped([shareGroups * kk, h, wd])
            ctx.probe("static context k1", .featureMap(unbatched(slice(k, axis: 0, range: 0 ..< 1))), name: "k1")
            ctx.probe("dynamic context k2 (local aggregation, BN, Swish)", .featureMap(unbatched(slice(k2, axis: 0, range: 0 ..< 1))), name: "k2")
            ctx.probe("local attention weights [group*k*k, H, W]", .contextMap(w0, signed: true), name: "attention")
            ctx.probe("local attention weights averaged over channel groups [k*k, H, W]",
                      .contextMap(mean(w0.reshaped([shareGroups, kk, h, wd]), axis: 0), signed: true), name: "attention_mean")
            ctx.probe("radix fusion weights [C, 2] (k2, k1)", .tensor(unbatched(slice(radix, axis: 0, range: 0 ..< 1))), name: "radix")
        }
        return out
    }
}
