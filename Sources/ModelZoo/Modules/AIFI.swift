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
public struct AIFI: UnaryModule {
    public let channels: Int, hidden: Int, heads: Int
    let ma: Child<MultiheadAttention>
    let fc1: Child<Linear>, fc2: Child<Linear>
    let norm1: Child<LayerNorm>, norm2: Child<LayerNorm>

    public init(_ w: WeightScope, channels c: Int, hidden cm: Int = 2048, heads: Int = 8) throws {
        guard c > 0, c % 4 == 0 else { throw ModuleInputError("AIFI", "channels must be a positive multiple of 4 (2-D sin-cos embedding), got \(c)") }
        guard heads > 0, c % heads == 0 else { throw ModuleInputError("AIFI", "channels (\(c)) must be divisible by the head count (\(heads))") }
        channels = c
        hidden = cm
        self.heads = heads
        ma = try Child(w, "ma") { try MultiheadAttention($0, embedDim: c, heads: heads) }
        fc1 = try Child(w, "fc1") { try Linear($0, in: c, out: cm) }
        fc2 = try Child(w, "fc2") { try Linear($0, in: cm, out: c) }
        norm1 = try Child(w, "norm1") { try LayerNorm($0, dim: c) }
        norm2 = try Child(w, "norm2") { try LayerNorm($0, dim: c) }
    }

    /// The two [HW, 1] x [1, C/4] products that build the position embedding, which the counter sees; the attention,
    /// linears and norms are its children's.
    public func ownFlops(inputs: [[Int]], output s: [Int]) -> Double { Double(s[0]) * 2 * Double(2 * s[2] * s[3] * (channels / 4)) }

    /// The 2-D sin-cos position embedding [H*W, C].
    public static func positionEmbedding(height h: Int, width w: Int, channels c: Int, temperature: Float = 10000) -> Tensor {
        if Tensor.isInShapePass { return Tensor(shapeOnly: [h * w, c]) }
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
            let attn = try ma([qk, qk, src], ctx)
            let attended = attn.main
            if b == 0, let weights = attn.extras["weights"] {
                ctx.probe("self-attention per head (query grid -> key grid)",
                          .attention(weights, query: GridSize(h, wd), key: GridSize(h, wd)), name: "attention")
            }
            var y = try norm1(src + attended, ctx)
            y = try norm2(y + fc2(gelu(fc1(y, ctx)), ctx), ctx)
            outs.append(permute(y, [1, 0]).reshaped([1, c, h, wd]))
        }
        return n == 1 ? outs[0] : concat(outs, axis: 0)
    }
}
