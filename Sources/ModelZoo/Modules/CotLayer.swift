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
public struct CotLayer: Layer {
    public let channels: Int, kernel: Int, shareGroups: Int, attnChannels: Int
    public let keyEmbed: FoldedConvBN, embed0: FoldedConvBN
    public let embed3: Conv2dParams
    public let embedNormWeight: Tensor, embedNormBias: Tensor
    public let conv1x1: FoldedConvBN
    public let bn: BatchNorm2dParams
    public let se0: FoldedConvBN
    public let se3: Conv2dParams

    /// `bnEps`: 1e-5 as the reference builds it; 1e-3 inside an ultralytics model (its `initialize_weights`).
    public init(_ w: WeightScope, channels c: Int, kernel k: Int = 3, bnEps: Float = 1e-5) throws {
        guard c % 8 == 0, c > 0 else { throw ModuleInputError("CotLayer", "channels must be a positive multiple of 8 (share_planes 8, groups 4), got \(c)") }
        guard k % 2 == 1 else { throw ModuleInputError("CotLayer", "kernel size must be odd, got \(k)") }
        channels = c
        kernel = k
        shareGroups = c / 8
        keyEmbed = try FoldedConvBN(w.scope("key_embed"), convKey: "0", bnKey: "1", in: c, out: c, kernel: k, groups: 4, bnEps: bnEps)
        embed0 = try FoldedConvBN(w.scope("embed"), convKey: "0", bnKey: "1", in: 2 * c, out: c / 2, kernel: 1, bnEps: bnEps)
        embed3 = try Conv2dParams(w.scope("embed").scope("3"), in: c / 2, out: k * k * c / 8, kernel: 1, bias: true)
        embedNormWeight = try w.scope("embed").scope("4").tensor("weight", shape: [k * k * c / 8], init: .ones)
        embedNormBias = try w.scope("embed").scope("4").tensor("bias", shape: [k * k * c / 8], init: .zeros)
        conv1x1 = try FoldedConvBN(w.scope("conv1x1"), convKey: "0", bnKey: "1", in: c, out: c, kernel: 1, bnEps: bnEps)
        bn = try BatchNorm2dParams(w.scope("bn"), channels: c, eps: bnEps)
        attnChannels = max(c * 2 / 4, 32)
        se0 = try FoldedConvBN(w.scope("se"), convKey: "0", bnKey: "1", in: c, out: attnChannels, kernel: 1, convBias: true, bnEps: bnEps)
        se3 = try Conv2dParams(w.scope("se").scope("3"), in: attnChannels, out: 2 * c, kernel: 1, bias: true)
    }

    public var parameterCount: Int {
        keyEmbed.parameterCount + embed0.parameterCount + embed3.parameterCount + embedNormWeight.count + embedNormBias.count
            + conv1x1.parameterCount + bn.parameterCount + se0.parameterCount + se3.parameterCount
    }

    /// Convolutions and norms as thop counts them. thop has no rule for the local aggregation (a custom op in the
    /// reference), so it is not counted here either; it would add C x H x W x k*k multiply-adds.
    public func flops(inputShape s: [Int]) -> Double {
        let h = s[2], wd = s[3], kk = kernel * kernel
        let perImage = keyEmbed.flops(height: h, width: wd) + embed0.flops(height: h, width: wd) + embed3.flops(height: h, width: wd)
            + 2 * 4 * Double(kk * channels / 8 * h * wd) + conv1x1.flops(height: h, width: wd) + bn.flops(elements: channels * h * wd)
            + se0.flops(height: 1, width: 1) + se3.flops(height: 1, width: 1)
        return Double(s[0]) * perImage
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
        let k = relu(keyEmbed(x))                                                      // [N, C, H, W]
        let e = embed3(relu(embed0(concat([x, k], axis: 1))))                          // [N, kk*C/8, H, W]
        let w = groupNorm(e, groups: shareGroups, weight: embedNormWeight, bias: embedNormBias, eps: 1e-5)
        let v = conv1x1(x)
        let k2 = silu(bn(aggregate(v, weights: w.reshaped([n, shareGroups, kk, h, wd]))))
        let gap = mean((k2 + k).reshaped([n, c, h * wd]), axis: 2).reshaped([n, c, 1, 1])
        let logits = se3(relu(se0(gap))).reshaped([n, c, 2])
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
