import Foundation
import Tensor

/// `Concat` along a dimension (1 = channels). Its inputs must agree off that dimension: a mismatch (an input
/// size the model's strides do not divide) is a thrown error, in the shape pass before anything runs.
public struct Concat: Module {
    public let dimension: Int

    public func forward(_ inputs: [Tensor], _ ctx: ForwardContext) throws -> LayerOutput {
        let first = inputs[0].shape
        let axis = dimension < 0 ? first.count + dimension : dimension
        for other in inputs.map(\.shape) where other.count != first.count || other.indices.contains(where: { $0 != axis && other[$0] != first[$0] }) {
            throw ModuleInputError(ctx.path.isEmpty ? "Concat" : "\(ctx.path) (Concat)",
                                   "gets \(inputs.map { "\($0.shape)" }.joined(separator: " and ")): the shapes do not fit together")
        }
        return LayerOutput(concat(inputs, axis: dimension))
    }

    /// `[dimension]`.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        let d = try ctx.int(0, default: 1, name: "dimension", range: -4 ... 3)
        return BuiltLayer(Concat(dimension: d), outputChannels: ctx.inputChannels.reduce(0, +), arguments: ctx.args)
    }
}

/// `nn.Upsample(scale_factor=s, mode="nearest")`.
public struct Upsample: UnaryModule {
    public let scale: Int

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor { upsampleNearest(x, scale: scale) }

    /// `[None, scale, 'nearest']`: an integer scale, nearest only.
    static func build(_ ctx: BuildContext) throws -> BuiltLayer {
        guard let a = ctx.arg(1), let s = a.doubleValue, s >= 1, s == s.rounded() else {
            throw ctx.error("only an integer scale_factor is supported (args [None, scale, 'nearest'])")
        }
        guard s <= Double(ModelSpec.Limits.kernel) else {
            throw ctx.error("scale_factor \(ConfigValue.format(s)) is more than the \(ModelSpec.Limits.kernel) this tool accepts")
        }
        if let mode = ctx.arg(2), mode != .string("nearest") { throw ctx.error("only mode 'nearest' is supported, got \(mode)") }
        return BuiltLayer(Upsample(scale: Int(s)), outputChannels: ctx.c1, arguments: ctx.args)
    }
}

extension Child where M == Conv {
    /// This 1x1 conv on the channel concatenation of `parts` ([N, C_i, H, W] each). In a forward pass with a fused
    /// activation it reads every part where it lies (conv1x1 over parts: SPPF's cv2, HGBlock's sc), without writing the
    /// concatenation; otherwise (the shape pass, other activations) it runs on the concat.
    func overChannels(of parts: [Tensor], _ ctx: ForwardContext) throws -> Tensor {
        let conv = module
        guard let act = conv.act.fused, conv.k == 1, conv.s == 1, conv.p == 0, conv.g == 1, conv.d == 1, ctx.recorder == nil else {
            return try self(concat(parts, axis: 1), ctx)
        }
        return conv1x1(concatenating: parts.map { ($0, 0 ..< $0.shape[1]) }, weight: conv.weight, bias: conv.bias, activation: act)
    }
}
