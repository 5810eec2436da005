import Foundation
import Tensor

// Normalisation leaves of the module tree. Counts as the reference counter (thop) counts them: an affine norm is
// 4 ops per element, doubled as every count here (multiply-adds as 2).

/// Inference `nn.BatchNorm2d` over dim 1 (`weight`, `bias`, `running_mean`, `running_var`), PyTorch's defaults
/// when initialised (1, 0, 0, 1). Where a convolution precedes it, `Conv` folds it instead.
public struct BatchNorm2d: UnaryModule {
    public let gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor
    public let eps: Float
    public var channels: Int { gamma.count }

    public init(_ w: WeightScope, channels c: Int, eps: Float = 1e-5) throws {
        gamma = try w.tensor("weight", shape: [c], init: .ones)
        beta = try w.tensor("bias", shape: [c], init: .zeros)
        mean = try w.tensor("running_mean", shape: [c], init: .zeros)
        variance = try w.tensor("running_var", shape: [c], init: .ones)
        self.eps = eps
    }

    public var ownParameterCount: Int { 2 * channels }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { flops(elements: output.reduce(1, *)) }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { self(x) }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        batchNorm(x, gamma: gamma, beta: beta, mean: mean, variance: variance, eps: eps)
    }
    /// thop: 4 x elements (affine), doubled.
    public func flops(elements: Int) -> Double { 2 * 4 * Double(elements) }
}

/// `nn.LayerNorm` over the last dim (`weight`, `bias`, eps 1e-5).
public struct LayerNorm: UnaryModule {
    public let weight: Tensor, bias: Tensor
    public let eps: Float

    public init(_ w: WeightScope, dim: Int, eps: Float = 1e-5) throws {
        weight = try w.tensor("weight", shape: [dim], init: .ones)
        bias = try w.tensor("bias", shape: [dim], init: .zeros)
        self.eps = eps
    }

    public var ownParameterCount: Int { weight.count + bias.count }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { flops(elements: output.reduce(1, *)) }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { self(x) }
    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
    public func flops(elements: Int) -> Double { 2 * 4 * Double(elements) }
}

/// `nn.GroupNorm` over dim 1 (`weight`, `bias`). thop: affine, 4 ops per element, doubled.
public struct GroupNorm: UnaryModule {
    public let groups: Int
    public let weight: Tensor, bias: Tensor
    public let eps: Float

    public init(_ w: WeightScope, groups: Int, channels c: Int, eps: Float = 1e-5) throws {
        self.groups = groups
        weight = try w.tensor("weight", shape: [c], init: .ones)
        bias = try w.tensor("bias", shape: [c], init: .zeros)
        self.eps = eps
    }

    public var ownParameterCount: Int { weight.count + bias.count }
    public func ownFlops(inputs: [[Int]], output: [Int]) -> Double { 2 * 4 * Double(output.reduce(1, *)) }
    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}
