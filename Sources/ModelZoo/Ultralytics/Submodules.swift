import Foundation

/// A block that can list its direct sub-modules (by their key names) with the input shape each receives, so that a
/// layer table row can be expanded (`cv1`, `m.0`, `cv2`, ...).
public protocol SubmoduleListing {
    func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])]
}

extension SubmoduleListing where Self: UnaryBlock {
    /// Rows for the sub-modules (recursively), in execution order.
    func childRows(inputShape: [Int]) -> [LayerRow] { submoduleRows(submodules(inputShapes: [inputShape])) }
}

func submoduleRows(_ subs: [(name: String, block: any UnaryBlock, input: [Int])]) -> [LayerRow] {
    subs.enumerated().map { j, s in
        let grandchildren = (s.block as? any SubmoduleListing).map { submoduleRows($0.submodules(inputShapes: [s.input])) } ?? []
        return LayerRow(index: j, from: [], repeats: 1, params: s.block.parameterCount, module: s.name + " " + blockTypeName(s.block),
                        arguments: "", flops: s.block.flops(inputShape: s.input), outputShape: s.block.outputShape(inputShape: s.input),
                        children: grandchildren)
    }
}

/// The reference's class name for a block (ultralytics' names; ConvBlock is its `Conv`).
func blockTypeName(_ b: any UnaryBlock) -> String {
    switch b {
    case is ConvBlock: return "Conv"
    case is PlainConv: return "Conv2d"
    case is ResNetBottleneck: return "ResNetBlock"
    case is Chain: return "Sequential"
    default: return String(describing: type(of: b))
    }
}

/// Chains a list of named blocks from an input shape.
private func chained(_ blocks: [(String, any UnaryBlock)], from input: [Int]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
    var s = input
    var out: [(name: String, block: any UnaryBlock, input: [Int])] = []
    for (n, b) in blocks {
        out.append((n, b, s))
        s = b.outputShape(inputShape: s)
    }
    return out
}

extension LightConv: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        chained([("conv1", conv1), ("conv2", conv2)], from: inputShapes[0])
    }
}

extension Bottleneck: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        chained([("cv1", cv1), ("cv2", cv2)], from: inputShapes[0])
    }
}

extension C2f: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        let x = inputShapes[0], half = [x[0], c, x[2], x[3]]
        return [("cv1", cv1, x)] + m.enumerated().map { ("m.\($0)", $1 as any UnaryBlock, half) }
            + [("cv2", cv2, [x[0], (2 + m.count) * c, x[2], x[3]])]
    }
}

extension SPPF: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        let x = inputShapes[0]
        return [("cv1", cv1, x), ("cv2", cv2, [x[0], cv1.c2 * (n + 1), x[2], x[3]])]
    }
}

extension HGStem: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        let x = inputShapes[0]
        let s1 = stem1.outputShape(inputShape: x)
        let padded = [s1[0], s1[1], s1[2] + 1, s1[3] + 1]
        let a = stem2a.outputShape(inputShape: padded)
        let cat = [s1[0], 2 * s1[1], s1[2], s1[3]]
        return [("stem1", stem1, x), ("stem2a", stem2a, padded), ("stem2b", stem2b, [a[0], a[1], a[2] + 1, a[3] + 1]),
                ("stem3", stem3, cat), ("stem4", stem4, stem3.outputShape(inputShape: cat))]
    }
}

extension HGBlock: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        let x = inputShapes[0]
        return chained(m.enumerated().map { ("m.\($0)", $1) }, from: x)
            + [("sc", sc, [x[0], c1 + m.count * cm, x[2], x[3]]), ("ec", ec, [x[0], c2 / 2, x[2], x[3]])]
    }
}

extension RepC3: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        let x = inputShapes[0], mid = [x[0], c, x[2], x[3]]
        var out: [(name: String, block: any UnaryBlock, input: [Int])] = [("cv1", cv1, x)]
        out += m.enumerated().map { ("m.\($0)", $1 as any UnaryBlock, mid) }
        out.append(("cv2", cv2, x))
        if let cv3 { out.append(("cv3", cv3, mid)) }
        return out
    }
}

extension ResNetBottleneck: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        let x = inputShapes[0]
        var out = chained([("cv1", cv1), ("cv2", cv2), ("cv3", cv3)], from: x)
        if let shortcut { out.append(("shortcut.0", shortcut, x)) }
        return out
    }
}

extension ResNetLayer: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        if let stem { return [("layer.0", stem, inputShapes[0])] }
        return chained(blocks.enumerated().map { ("layer.\($0)", $1) }, from: inputShapes[0])
    }
}

extension Chain: SubmoduleListing {
    func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        chained(blocks.enumerated().map { (String($0), $1) }, from: inputShapes[0])
    }
}

extension DetectHead: SubmoduleListing {
    public func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        inputShapes.enumerated().map { ("cv2.\($0)", box[$0] as any UnaryBlock, $1) }
            + inputShapes.enumerated().map { ("cv3.\($0)", cls[$0] as any UnaryBlock, $1) }
    }
}

extension SequentialGraphLayer: SubmoduleListing {
    func submodules(inputShapes: [[Int]]) -> [(name: String, block: any UnaryBlock, input: [Int])] {
        var s = inputShapes[0]
        var out: [(name: String, block: any UnaryBlock, input: [Int])] = []
        for (j, l) in layers.enumerated() {
            if let b = l as? any UnaryBlock { out.append((String(j), b, s)) }
            s = l.outputShape(inputShapes: [s])
        }
        return out
    }
}
