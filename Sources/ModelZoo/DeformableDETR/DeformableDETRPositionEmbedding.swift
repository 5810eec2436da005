import Foundation
import Tensor

/// The sine position embedding of DETR, normalised (transformers' `DeformableDetrSinePositionEmbedding` with
/// normalize=True, scale 2*pi, temperature 10000), for a single unpadded image (an all-ones pixel mask):
/// y = (row + 0.5) / (H + 1e-6) * 2*pi, x likewise; channel c of `features` (= d_model/2) is sin (c even) or
/// cos (c odd) of y / 10000^(2*floor(c/2)/features); the y channels come first, then the x channels.
///
/// Returns [H*W, 2*features], row-major over (row, column), ready to add to a flattened level.
enum DDETRSinePositionEmbedding {
    static func flattened(height h: Int, width w: Int, features f: Int, temperature: Float = 10000) -> Tensor {
        let scale = Float(2 * Double.pi), eps: Float = 1e-6
        // torch: dim_t float32, temperature ** (2 * floor(i/2) / f)
        let dimT: [Float] = (0 ..< f).map { i in Foundation.pow(temperature, Float(2 * (i / 2)) / Float(f)) }
        let ys: [Float] = (0 ..< h).map { (Float($0 + 1) - 0.5) / (Float(h) + eps) * scale }
        let xs: [Float] = (0 ..< w).map { (Float($0 + 1) - 0.5) / (Float(w) + eps) * scale }
        // One row of sin/cos per coordinate value, reused across the grid.
        func table(_ vals: [Float]) -> [Float] {
            var t = [Float](repeating: 0, count: vals.count * f)
            for (n, v) in vals.enumerated() {
                for c in 0 ..< f {
                    let a = v / dimT[c]
                    t[n * f + c] = c % 2 == 0 ? Foundation.sin(a) : Foundation.cos(a)
                }
            }
            return t
        }
        let ty = table(ys), tx = table(xs)
        let d = 2 * f
        return Tensor(shape: [h * w, d]) { out in
            for r in 0 ..< h {
                for c in 0 ..< w {
                    let base = (r * w + c) * d
                    for k in 0 ..< f {
                        out[base + k] = ty[r * f + k]
                        out[base + f + k] = tx[c * f + k]
                    }
                }
            }
        }
    }

    /// The proposal position embedding of two-stage Deformable DETR (transformers' `get_proposal_pos_embed`):
    /// logits [K, 4] -> sigmoid * 2*pi -> for each of the 4 coordinates, `features` interleaved sin/cos values with
    /// temperature 10000 -> [K, 4*features].
    static func proposals(_ logits: Tensor, features f: Int) -> Tensor {
        let k = logits.shape[0]
        let scale = Float(2 * Double.pi)
        let dimT: [Float] = (0 ..< f).map { i in Foundation.pow(Float(10000), Float(2 * (i / 2)) / Float(f)) }
        return Tensor(shape: [k, 4 * f]) { out in
            for q in 0 ..< k {
                for j in 0 ..< 4 {
                    let x = logits.data[q * 4 + j]
                    let p = (1 / (1 + Foundation.exp(-x))) * scale
                    for c in 0 ..< f {
                        let a = p / dimT[c]
                        out[q * 4 * f + j * f + c] = c % 2 == 0 ? Foundation.sin(a) : Foundation.cos(a)
                    }
                }
            }
        }
    }
}
