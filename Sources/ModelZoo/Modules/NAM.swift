import Foundation
import Tensor

/// NAM channel attention (normalisation-based attention).
///
/// Liu et al., "NAM: Normalization-based Attention Module" (arXiv 2111.12419); official code
/// Christian-lyc/NAM `MODELS/attention.py` (`Channel_Att`, wrapped as `Att` / the tutorials' `NAMAttention`).
///
/// The batch norm's own scale factors say how much each channel varies, and NAM turns them into channel
/// importances: `w_c = |gamma_c| / sum_j |gamma_j|`, then `out = sigmoid(w * BN(x)) * x`.
/// Only the channel branch exists in the official code, and only it is implemented here.
///
/// Shapes: x [N, C, H, W] -> [N, C, H, W]. Keys: `Channel_Att.bn2.{weight,bias,running_mean,running_var}`.
/// Probes: `channel weights` [C] (a bar chart), the gate `sigmoid(w * BN(x))` [C, H, W], the gated map [C, H, W].
public struct NAM: UnaryModule {
    public let channels: Int
    let bn: Child<BatchNorm2d>
    /// |gamma| / sum |gamma|, fixed at load time.
    public let channelWeights: Tensor

    /// `bnEps`: 1e-5 as the reference builds it; 1e-3 inside an ultralytics model, whose `initialize_weights`
    /// sets every BatchNorm2d's eps to 1e-3 (the registry passes that).
    public init(_ w: WeightScope, channels c: Int, bnEps: Float = 1e-5) throws {
        channels = c
        bn = try Child(w, "Channel_Att.bn2") { try BatchNorm2d($0, channels: c, eps: bnEps) }
        let a = abs(bn.module.gamma)
        let total = a.data.reduce(0, +)
        channelWeights = a * (total > 0 ? 1 / total : 0)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: channels, "NAM")
        let gate = sigmoid(try bn(x, ctx) * channelWeights.reshaped([1, channels, 1, 1]))
        let y = gate * x
        ctx.probe("channel weights: |gamma| / sum |gamma|", .channelWeights(channelWeights), name: "channel_weights")
        ctx.probe("gate: sigmoid(w * BN(x))", .contextMap(unbatched(slice(gate, axis: 0, range: 0 ..< 1)), signed: false), name: "gate")
        ctx.probe("gated map sigmoid(w * BN(x)) * x", .featureMap(unbatched(slice(y, axis: 0, range: 0 ..< 1))), name: "gated")
        return y
    }
}
