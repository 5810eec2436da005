import Foundation
import Tensor

/// Einsum: a sum of products over named indices ("bhqd,bhkd->bhqk"), with `...` for leading broadcast dims and the
/// implicit output (the letters used once, sorted) when there is no `->`.
///
/// Two operands without repeated letters run as one batched matmul of the engine (letters in both and the output
/// are the batch, in both but not the output the contraction, in one only its rows or columns); any other equation
/// (one or three operands, a diagonal such as "ii->i") runs by the plain definition.
/// Reference: the ONNX operator spec (Einsum), numpy.einsum.
enum EinsumOp {
    struct Equation {
        var inputs: [[Character]]
        var output: [Character]
    }

    /// Parses the equation, replacing `...` by as many fresh capital-free symbols as each operand's extra dims.
    static func parse(_ ctx: ONNXOpContext, _ text: String, ranks: [Int]) throws -> Equation {
        let s = text.filter { !$0.isWhitespace }
        let sides = s.components(separatedBy: "->")
        guard sides.count <= 2 else { throw ctx.fail("equation '\(text)' has more than one '->'") }
        let terms = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard terms.count == ranks.count else { throw ctx.fail("equation '\(text)' names \(terms.count) operands, the node has \(ranks.count)") }
        // Ellipsis dims get the symbols "0", "1", ... (digits are not letters, so they cannot clash).
        var ellipsisRank = 0
        var inputs: [[Character]] = []
        for (t, r) in zip(terms, ranks) {
            let parts = t.components(separatedBy: "...")
            guard parts.count <= 2 else { throw ctx.fail("term '\(t)' of '\(text)' has more than one '...'") }
            let letters = parts.joined()
            guard letters.allSatisfy({ $0.isLetter && $0.isASCII }) else { throw ctx.fail("term '\(t)' of '\(text)' has a character that is not a letter") }
            if parts.count == 2 {
                let extra = r - letters.count
                guard extra <= 10 else { throw ctx.fail("term '\(t)' of '\(text)' stands for more than 10 dims with '...'") }
                guard extra >= 0 else { throw ctx.fail("term '\(t)' of '\(text)' has more letters than operand rank \(r)") }
                ellipsisRank = Swift.max(ellipsisRank, extra)
                // Right-aligned: the last `extra` of the ellipsis symbols.
                let syms = (0 ..< extra).map { Character(String(ellipsisSymbol(ellipsisRank: extra, i: $0))) }
                inputs.append(Array(parts[0]) + syms + Array(parts[1]))
            } else {
                guard letters.count == r else { throw ctx.fail("term '\(t)' of '\(text)' has \(letters.count) letters for an operand of rank \(r)") }
                inputs.append(Array(letters))
            }
        }
        var output: [Character]
        let ellipsis = (0 ..< ellipsisRank).map { Character(String(ellipsisSymbol(ellipsisRank: ellipsisRank, i: $0))) }
        if sides.count == 2 {
            let parts = sides[1].components(separatedBy: "...")
            guard parts.count <= 2, parts.joined().allSatisfy({ $0.isLetter && $0.isASCII }) else { throw ctx.fail("output '\(sides[1])' of '\(text)' is not letters with at most one '...'") }
            output = parts.count == 2 ? Array(parts[0]) + ellipsis + Array(parts[1]) : Array(parts[0])
            guard Set(output).count == output.count else { throw ctx.fail("output '\(sides[1])' of '\(text)' repeats a letter") }
            let used = Set(inputs.joined())
            for l in output where !used.contains(l) { throw ctx.fail("output letter '\(l)' of '\(text)' is not in any operand") }
        } else {
            var counts: [Character: Int] = [:]
            for l in inputs.joined() where l.isLetter { counts[l, default: 0] += 1 }
            output = ellipsis + counts.filter { $0.value == 1 }.keys.sorted()
        }
        return Equation(inputs: inputs, output: output)
    }

    /// The symbol of ellipsis dim `i` of an operand with `ellipsisRank` of them: aligned to the right, so that
    /// operands with fewer ellipsis dims broadcast against the trailing ones.
    static func ellipsisSymbol(ellipsisRank: Int, i: Int) -> Character {
        // Position from the right: the last ellipsis dim is "0".
        Character(String(ellipsisRank - 1 - i))
    }

    static let einsum: ONNXOpImplementation = { ctx in
        let xs = try (0 ..< ctx.inputs.count).map { try ctx.tensor($0) }
        let (eq, size, outShape) = try sizes(ctx, shapes: xs.map(\.shape))
        try ctx.checkSize(outShape)
        if xs.count == 2, let y = try matmulPath(ctx, eq, xs[0], xs[1], size: size) { return [ONNXValue(y)] }
        return [ONNXValue(try direct(ctx, eq, xs, size: size, outShape: outShape))]
    }

    static func outputShape(_ ctx: ONNXOpContext, shapes: [[Int]]) throws -> [Int] { try sizes(ctx, shapes: shapes).2 }

    /// The parsed equation, the size of every symbol (size-1 dims broadcast) and the output shape.
    static func sizes(_ ctx: ONNXOpContext, shapes: [[Int]]) throws -> (Equation, [Character: Int], [Int]) {
        let equation = try ctx.string("equation", default: "")
        guard !shapes.isEmpty else { throw ctx.fail("Einsum needs at least one operand") }
        let eq = try parse(ctx, equation, ranks: shapes.map(\.count))
        var size: [Character: Int] = [:]
        for (t, x) in zip(eq.inputs, shapes) {
            for (l, d) in zip(t, x) {
                if let s = size[l], s != d {
                    guard s == 1 || d == 1 else { throw ctx.fail("index '\(l)' of '\(equation)' is \(s) in one operand and \(d) in another") }
                    size[l] = Swift.max(s, d)
                } else if size[l] == nil { size[l] = d }
            }
        }
        return (eq, size, eq.output.map { size[$0]! })
    }

    /// Two operands without repeated letters or broadcast size-1 dims: permute, reshape, one batched matmul.
    static func matmulPath(_ ctx: ONNXOpContext, _ eq: Equation, _ a: Tensor, _ b: Tensor, size: [Character: Int]) throws -> Tensor? {
        var ta = eq.inputs[0], tb = eq.inputs[1]
        let out = eq.output
        guard Set(ta).count == ta.count, Set(tb).count == tb.count else { return nil }
        for (t, x) in [(ta, a), (tb, b)] { for (l, d) in zip(t, x.shape) where d != size[l] { return nil } }
        let sa = Set(ta), sb = Set(tb), so = Set(out)
        // Letters only in one operand and not in the output are summed there first.
        var a = a, b = b
        for l in ta where !sb.contains(l) && !so.contains(l) {
            let i = ta.firstIndex(of: l)!
            a = sum(a, axis: i); ta.remove(at: i)
        }
        for l in tb where !sa.contains(l) && !so.contains(l) {
            let i = tb.firstIndex(of: l)!
            b = sum(b, axis: i); tb.remove(at: i)
        }
        let batch = out.filter { ta.contains($0) && tb.contains($0) }
        let rows = out.filter { ta.contains($0) && !tb.contains($0) }
        let cols = out.filter { tb.contains($0) && !ta.contains($0) }
        let inner = ta.filter { tb.contains($0) && !so.contains($0) }
        func count(_ ls: [Character]) -> Int { ls.reduce(1) { $0 * size[$1]! } }
        let pa: [Int] = (batch + rows + inner).map { l in ta.firstIndex(of: l)! }
        let pb: [Int] = (batch + inner + cols).map { l in tb.firstIndex(of: l)! }
        let am = permute(a, pa).reshaped([count(batch), count(rows), count(inner)])
        let bm = permute(b, pb).reshaped([count(batch), count(inner), count(cols)])
        let y = matmul(am, bm).reshaped((batch + rows + cols).map { size[$0]! })
        let order = batch + rows + cols
        return permute(y, out.map { order.firstIndex(of: $0)! })
    }

    /// The definition: every combination of every symbol's index, products of the operands summed into the output.
    static func direct(_ ctx: ONNXOpContext, _ eq: Equation, _ xs: [Tensor], size: [Character: Int], outShape: [Int]) throws -> Tensor {
        var symbols = eq.output
        for t in eq.inputs { for l in t where !symbols.contains(l) { symbols.append(l) } }
        let dims = symbols.map { size[$0]! }
        guard let total = Budget.product(dims), total <= 1 << 31 else { throw ctx.fail("the equation would take more than 2^31 products") }
        // Per operand, the stride of each symbol (0 where a dim broadcasts or the symbol is absent).
        let strides: [[Int]] = zip(eq.inputs, xs).map { t, x in
            let st = x.strides
            return symbols.map { l in
                var s = 0
                for (k, m) in t.enumerated() where m == l && x.shape[k] != 1 { s += st[k] }
                return s
            }
        }
        let outStrides = symbols.indices.map { i -> Int in
            i < eq.output.count ? outShape[(i + 1)...].reduce(1, *) : 0
        }
        var out = [Float](repeating: 0, count: outShape.reduce(1, *))
        if total == 0 { return Tensor(shape: outShape, data: out) }
        var index = [Int](repeating: 0, count: symbols.count)
        var offsets = [Int](repeating: 0, count: xs.count)
        var o = 0
        let datas = xs.map(\.data)
        for _ in 0 ..< total {
            var p: Float = 1
            for k in 0 ..< xs.count { p *= datas[k][offsets[k]] }
            out[o] += p
            // Next index, last symbol fastest.
            var d = symbols.count - 1
            while d >= 0 {
                index[d] += 1
                o += outStrides[d]
                for k in 0 ..< xs.count { offsets[k] += strides[k][d] }
                if index[d] < dims[d] { break }
                o -= outStrides[d] * dims[d]
                for k in 0 ..< xs.count { offsets[k] -= strides[k][d] * dims[d] }
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(shape: outShape, data: out)
    }
}
