import Foundation
import Tensor

/// One level of the multi-scale input projection (transformers' `input_proj.{l}`: `nn.Sequential(Conv2d,
/// GroupNorm(32, d_model))`): a 1x1 conv from a backbone stage, or, for the extra levels, a 3x3 stride-2 conv
/// (padding 1) from the last backbone stage (then from the previous extra level).
///
/// x [1, C_in, H, W] -> [1, d, H', W'].
struct DDETRInputProjection: Sendable {
    let convWeight: Tensor, convBias: Tensor
    let groupNormWeight: Tensor, groupNormBias: Tensor
    let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int

    init(scope: WeightScope, in i: Int, out o: Int, downsample: Bool) throws {
        kernel = downsample ? 3 : 1
        stride = downsample ? 2 : 1
        padding = downsample ? 1 : 0
        inChannels = i; outChannels = o
        convWeight = try scope.scope("0").tensor("weight", shape: [o, i, kernel, kernel], init: .normal(mean: 0, std: 0.02))
        convBias = try scope.scope("0").tensor("bias", shape: [o], init: .zeros)
        groupNormWeight = try scope.scope("1").tensor("weight", shape: [o], init: .ones)
        groupNormBias = try scope.scope("1").tensor("bias", shape: [o], init: .zeros)
    }

    var parameterCount: Int { outChannels * inChannels * kernel * kernel + 3 * outChannels }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    func flops(_ h: Int, _ w: Int) -> Double {
        let (ho, wo) = outputSize(h, w)
        return 2 * Double(outChannels * inChannels * kernel * kernel * ho * wo) + 8 * Double(outChannels * ho * wo)
    }

    func forward(_ x: Tensor) -> Tensor {
        let y = conv2d(x, weight: convWeight, bias: convBias, stride: stride, padding: padding)
        return groupNorm(y, groups: 32, weight: groupNormWeight, bias: groupNormBias, eps: 1e-5)
    }
}
