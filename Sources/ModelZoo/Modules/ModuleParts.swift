import Foundation
import Tensor

// Small building blocks the attention modules are made of, each loading its parameters under PyTorch's own
// key names (`weight`, `bias`, `running_mean`, `running_var`, `in_proj_weight`, ...).
//
// Parameters are counted as PyTorch does (`sum(p.numel() for p in m.parameters())`): batch-norm weight and bias
// count, running statistics do not; MSDeformAttn's and RTDETRDecoder's every tensor counts (the decoder's
// `denoising_class_embed` too, though eval never uses it).
//
// FLOPs follow the counter whose figures ultralytics prints (thop, as ultralytics calls it) so that a model's
// total agrees with `model.info()`; a multiply-add is one op there and every function here returns 2 x ops:
// - convolution: output elements x (Cin / groups) x k x k (bias not counted); linear: tokens x out x in;
// - batch / layer / group norm: 2 x elements, doubled when affine (4 x elements);
// - nn.MultiheadAttention (AIFI, the decoder's self-attention): the q/k/v and output projections, the two
//   attention products QK^T and AV (2 x T x S x E), and the softmax, T x heads x (3S - 1);
// - a bare matrix product (ContextAggregation's v @ softmax(k), AIFI's position-embedding outer products):
//   output elements x contracted length;
// - MSDeformAttn: its four linears only. The bilinear sampling and weighting (per query, head, level and point:
//   4 taps + 1 weight per value channel) is a functional op that counter does not see, so it is not in the
//   totals; `MSDeformAttn.samplingFlops` gives it (2 x Q x heads x levels x points x headDim x 5);
// - CotLayer's local aggregation (the reference's custom CUDA op) likewise is not counted (it would be
//   C x H x W x k*k multiply-adds); F.softmax, element-wise products, sigmoid, ReLU, GELU, SiLU: 0;
// - average pooling (CoTNet's 3x3/2 before the CoT block): one add per input element of every window, padding
//   included, and one divide per output.
// The golden tests check each module's count against the counter's own figure for the same module and input.

/// Drops a leading batch dim of 1 for probes ([1, ...] -> [...]).
func unbatched(_ t: Tensor) -> Tensor {
    t.shape.first == 1 ? t.reshaped(Array(t.shape.dropFirst())) : t
}

/// A shape error a module raises on an input it cannot take (never a crash).
public struct ModuleInputError: Error, CustomStringConvertible, Sendable {
    public let module: String
    public let problem: String
    public init(_ module: String, _ problem: String) {
        self.module = module
        self.problem = problem
    }
    public var description: String { "\(module): \(problem)" }
}

func expectNCHW(_ x: Tensor, channels: Int, _ name: String) throws {
    guard x.rank == 4 else { throw ModuleInputError(name, "expects an NCHW tensor, got shape \(x.shape)") }
    guard x.shape[1] == channels else {
        throw ModuleInputError(name, "expects \(channels) input channels, got \(x.shape[1]) (shape \(x.shape))")
    }
}
