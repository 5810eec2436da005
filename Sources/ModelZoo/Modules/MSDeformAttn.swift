import Foundation
import Tensor

/// MSDeformAttn run alone on one feature map, as the module catalogue entry shows it: the map [1, d, H, W] and
/// `levels - 1` 2x average-pooled copies form the value pyramid; every pixel of every level is a query (its own
/// feature, no position embedding) with its pixel centre as 2-d reference point, as in Deformable DETR's encoder.
/// Output: the attended features of the finest level, [N, d, H, W]. Keys as `MSDeformAttn`. Probe: the sampling
/// points of every pixel query under `<path>.sampling` (queries ordered level by level, row-major).
/// Sub-rows: the attention's linears (ultralytics' MSDeformAttn keys sit at the top, so they are this module's
/// children); FLOPs as ultralytics counts them: the linears over every pixel query.
public struct MSDeformAttnLayer: UnaryModule {
    public let attn: MSDeformAttention

    public init(_ w: WeightScope, dModel d: Int = 256, levels: Int = 4, heads: Int = 8, points: Int = 4) throws {
        attn = try MSDeformAttention(w, dModel: d, levels: levels, heads: heads, points: points)
    }

    public var typeName: String { "MSDeformAttn" }
    public var children: [(key: String, module: any Module)] { attn.children }

    func levelShapes(_ h: Int, _ w: Int) -> [GridSize] {
        var shapes = [GridSize(h, w)]
        while shapes.count < attn.levels {
            let last = shapes[shapes.count - 1]
            shapes.append(GridSize(max(last.height / 2, 1), max(last.width / 2, 1)))
        }
        return shapes
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) throws -> Tensor {
        try expectNCHW(x, channels: attn.dModel, "MSDeformAttn")
        let n = x.shape[0], d = attn.dModel
        let shapes = levelShapes(x.shape[2], x.shape[3])
        let minSide = 1 << (attn.levels - 1)
        guard x.shape[2] >= minSide, x.shape[3] >= minSide else {
            throw ModuleInputError("MSDeformAttn", "a \(attn.levels)-level pyramid needs a map of at least \(minSide)x\(minSide), got \(x.shape[2])x\(x.shape[3])")
        }
        var maps = [x]
        for _ in shapes.dropFirst() { maps.append(avgPool2d(maps[maps.count - 1], kernel: 2, stride: 2)) }
        // [N, d, H, W] -> [N, H*W, d], levels concatenated
        let value = concat(maps.map { permute($0.reshaped([n, d, -1]), [0, 2, 1]) }, axis: 1)
        let total = shapes.reduce(0) { $0 + $1.count }
        var reference = Tensor(shapeOnly: [n, total, 2])
        if !Tensor.isInShapePass {
            var refs: [Float] = []
            refs.reserveCapacity(2 * total)
            for s in shapes {
                for yy in 0 ..< s.height { for xx in 0 ..< s.width { refs += [(Float(xx) + 0.5) / Float(s.width), (Float(yy) + 0.5) / Float(s.height)] } }
            }
            reference = concat([Tensor](repeating: Tensor(shape: [1, total, 2], data: refs), count: n), axis: 0)
        }
        let out = try attn.attend(query: value, reference: reference, value: value, levelShapes: shapes, ctx, queryLevels: shapes,
                                  probeName: "sampling").output
        let first = slice(out, axis: 1, range: 0 ..< shapes[0].count)                 // [N, HW, d]
        return permute(first, [0, 2, 1]).reshaped([n, d, shapes[0].height, shapes[0].width])
    }
}
