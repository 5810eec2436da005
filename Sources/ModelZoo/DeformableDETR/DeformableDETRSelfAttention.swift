import Foundation
import Tensor

/// The decoder's multi-head self-attention over the object queries (transformers' `DeformableDetrSelfAttention`):
/// q = k = x + pos, v = x; `q_proj`, `k_proj`, `v_proj`, `out_proj` (`o_proj` in memory); scaled dot product, softmax over keys.
///
/// x [Q, d], pos [Q, d] -> ([Q, d], attention [heads, Q, Q]).
struct DDETRSelfAttention: Sendable {
    let qProj: DDETRLinear, kProj: DDETRLinear, vProj: DDETRLinear, oProj: DDETRLinear
    let heads: Int, dModel: Int

    init(scope: WeightScope, dModel d: Int, heads h: Int) throws {
        qProj = try DDETRLinear(scope: scope.scope("q_proj"), in: d, out: d)
        kProj = try DDETRLinear(scope: scope.scope("k_proj"), in: d, out: d)
        vProj = try DDETRLinear(scope: scope.scope("v_proj"), in: d, out: d)
        oProj = try DDETRLinear(scope: scope.scope("out_proj"), in: d, out: d)
        heads = h; dModel = d
    }

    var parameterCount: Int { 4 * qProj.parameterCount }
    func flops(queries q: Int) -> Double {
        4 * qProj.flops(rows: q) + 2 * 2 * Double(q * q * dModel)
    }

    func forward(_ x: Tensor, pos: Tensor) -> (Tensor, Tensor) {
        let q = x.shape[0], hd = dModel / heads
        let qk = x + pos
        // [Q, d] -> [heads, Q, hd]
        let qs = permute(qProj(qk).reshaped([q, heads, hd]), [1, 0, 2])
        let ks = permute(kProj(qk).reshaped([q, heads, hd]), [1, 0, 2])
        let vs = permute(vProj(x).reshaped([q, heads, hd]), [1, 0, 2])
        let scores = matmul(qs, ks, transposeB: true) * Float(1 / Double(hd).squareRoot())   // [heads, Q, Q]
        let attn = softmax(scores, axis: -1)
        let ctx = permute(matmul(attn, vs), [1, 0, 2]).reshaped([q, dModel])                   // [Q, d]
        return (oProj(ctx), attn)
    }
}
