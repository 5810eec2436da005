import Foundation
import Tensor

/// AIFI: attention-based intra-scale feature interaction, RT-DETR's encoder on its coarsest feature map.
///
/// Zhao et al., "DETRs Beat YOLOs on Real-time Object Detection" (arXiv 2304.08069); ultralytics
/// `ultralytics/nn/modules/transformer.py` (`AIFI`, a `TransformerEncoderLayer`).
///
/// The map is flattened to H*W tokens of C channels; a fixed 2-D sin-cos position embedding (temperature 10000)
/// is added to queries and keys (not values); one post-norm transformer encoder layer follows: 8-head
/// `nn.MultiheadAttention`, residual + LayerNorm, FFN `fc2(GELU(fc1(x)))`, residual + LayerNorm.
/// Position embedding of token (row r, column c): `[sin(r w), cos(r w), sin(c w), cos(c w)]` with
/// `w_i = 1 / 10000^(i / (C/4))`, i < C/4 (the row block first, as the installed ultralytics builds it).
///
/// Shapes: x [N, C, H, W] -> [N, C, H, W] (C divisible by 4 and by the head count).
/// Keys: `ma.in_proj_weight`, `ma.in_proj_bias`, `ma.out_proj.{weight,bias}`, `fc1`, `fc2`, `norm1`, `norm2`.
/// Probes: dense attention [heads, H*W, H*W] (query grid -> key grid), averaged over heads by the explorer.
public struct AIFI: Layer {
    public let channels: Int, hidden: Int, heads: Int
    public let attention: MultiheadAttentionParams
    public let fc1: LinearParams, fc2: LinearParams
    public let norm1: LayerNormParams, norm2: LayerNormParams

    public init(_ w: WeightScope, channels c: Int, hidden cm: Int = 2048, heads: Int = 8) throws {
        guard c > 0, c % 4 == 0 else { throw ModuleInputError("AIFI", "channels must be a positive multiple of 4 (2-D sin-cos embedding), got \(c)") }
        guard heads > 0, c % heads == 0 else { throw ModuleInputError("AIFI", "channels (\(c)) must be divisible by the head count (\(heads))") }
        channels = c
        hidden = cm
        self.heads = heads
        attention = try MultiheadAttentionParams(w.scope("ma"), embedDim: c, heads: heads)
        fc1 = try LinearParams(w.scope("fc1"), in: c, out: cm)
        fc2 = try LinearParams(w.scope("fc2"), in: cm, out: c)
        norm1 = try LayerNormParams(w.scope("norm1"), dim: c)
        norm2 = try LayerNormParams(w.scope("norm2"), dim: c)
    }

    public var parameterCount: Int {
        attention.parameterCount + fc1.parameterCount + fc2.parameterCount + norm1.parameterCount + norm2.parameterCount
    }

    /// thop: the nn.MultiheadAttention rule (projections, QK^T and AV products, softmax), the two linears, the two
    /// affine layer norms, and the two [HW, 1] x [1, C/4] products that build the position embedding.
    public func flops(inputShape s: [Int]) -> Double {
        let t = s[2] * s[3], c = channels
        let perImage = attention.flops(queries: t, keys: t) + fc1.flops(tokens: t) + fc2.flops(tokens: t)
            + norm1.flops(elements: t * c) + norm2.flops(elements: t * c) + 2 * Double(2 * t * (c / 4))
        return Double(s[0]) * perImage
    }

    /// The 2-D sin-cos position embedding [H*W, C].
    public static func positionEmbedding(height h: Int, width w: Int, channels c: Int, temperature: Float = 10000) -> Tensor {
        let d = c / 4
        let omega = (0 ..< d).map { 1 / Foundation.pow(temperature, Float($0) / Float(d)) }
        var data = [Float](repeating: 0, count: h * w * c)
        for r in 0 ..< h {
            for col in 0 ..< w {
                let base = (r * w + col) * c
                for i in 0 ..< d {
                    let a = Float(r) * omega[i], b = Float(col) * omega[i]
                    data[base + i] = Foundation.sin(a)
                    data[base + d + i] = Foundation.cos(a)
                    data[base + 2 * d + i] = Foundation.sin(b)
                    data[base + 3 * d + i] = Foundation.cos(b)
                }
            }
        }
        return Tensor(shape: [h * w, c], data: data)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: channels, "AIFI")
        let n = x.shape[0], c = channels, h = x.shape[2], wd = x.shape[3], t = h * wd
        let pos = AIFI.positionEmbedding(height: h, width: wd, channels: c)
        var outs: [Tensor] = []
        for b in 0 ..< n {
            let src = permute(slice(x, axis: 0, range: b ..< b + 1).reshaped([c, t]), [1, 0])   // [T, C]
            let qk = src + pos
            let (attended, weights) = attention.attend(query: qk, key: qk, value: src)
            if b == 0 {
                ctx.probe("self-attention per head (query grid -> key grid)",
                          .attention(weights, query: GridSize(h, wd), key: GridSize(h, wd)), name: "attention")
            }
            var y = norm1(src + attended)
            y = norm2(y + fc2(gelu(fc1(y))))
            outs.append(permute(y, [1, 0]).reshaped([1, c, h, wd]))
        }
        return n == 1 ? outs[0] : concat(outs, axis: 0)
    }
}
