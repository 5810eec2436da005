import Foundation
import Tensor

/// One level of the multi-scale input projection (transformers' `input_proj.{l}`: `nn.Sequential(Conv2d,
/// GroupNorm(32, d_model))`): a 1x1 conv from a backbone stage, or, for the extra levels, a 3x3 stride-2 conv
/// (padding 1) from the last backbone stage (then from the previous extra level).
///
/// x [1, C_in, H, W] -> [1, d, H', W'].
struct DDETRInputProjection: UnaryModule {
    let conv: Child<Conv2d>
    let norm: Child<GroupNorm>

    init(scope w: WeightScope, in i: Int, out o: Int, downsample: Bool) throws {
        let k = downsample ? 3 : 1
        conv = try Child(w, "0") {
            try Conv2d($0, c1: i, c2: o, k: k, stride: downsample ? 2 : 1, padding: downsample ? 1 : 0,
                       weightInit: .normal(mean: 0, std: 0.02), biasInit: .zeros)
        }
        norm = try Child(w, "1") { try GroupNorm($0, groups: 32, channels: o) }
    }

    var typeName: String { conv.module.k == 1 ? "Conv2d+GroupNorm" : "Conv2d(3x3,s2)+GroupNorm" }
    var kernel: Int { conv.module.k }
    var stride: Int { conv.module.stride }
    var inChannels: Int { conv.module.c1 }

    func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { try norm(conv(x, ctx), ctx) }
}
