import Foundation
import Tensor

/// Two models' layer tables side by side: rows aligned by module type and position where the architectures
/// match, inserted and removed blocks marked, changed arguments flagged, and (after a run of both on the
/// same input) how similar each aligned pair's outputs are.

/// How an aligned pair of rows relates.
public enum RowChange: String, Sendable, Codable {
    /// Same module type and arguments.
    case same
    /// Same module type, other arguments (or parameter count).
    case changed
    /// Only in the second model (an inserted block).
    case added
    /// Only in the first model.
    case removed
    /// Different module types at a place both models have a row.
    case replaced
}

/// One line of the diff: a row of A, of B, or both.
public struct AlignedRow: Sendable, Equatable {
    public var change: RowChange
    /// Positions in A's and B's layer tables.
    public var a: Int?
    public var b: Int?

    public init(change: RowChange, a: Int?, b: Int?) {
        self.change = change
        self.a = a
        self.b = b
    }
}

public enum LayerDiff {
    /// Aligns two layer tables (a global alignment that rewards rows of the same module type, more when their
    /// arguments are equal too, so that an inserted CoT or NAM block shifts the rest without breaking the match).
    public static func align(_ a: [LayerRow], _ b: [LayerRow]) -> [AlignedRow] {
        let n = a.count, m = b.count
        func score(_ i: Int, _ j: Int) -> Int {
            guard a[i].typeName == b[j].typeName else { return -1 }
            return a[i].arguments == b[j].arguments && a[i].params == b[j].params ? 4 : 2
        }
        // best[i][j]: the best score aligning a[i...] with b[j...].
        var best = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                best[i][j] = max(best[i + 1][j + 1] + score(i, j), best[i + 1][j], best[i][j + 1])
            }
        }
        var out: [AlignedRow] = []
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, best[i][j] == best[i + 1][j + 1] + score(i, j) {
                let s = score(i, j)
                out.append(AlignedRow(change: s == 4 ? .same : (s == 2 ? .changed : .replaced), a: i, b: j))
                i += 1; j += 1
            } else if i < n, best[i][j] == best[i + 1][j] {
                out.append(AlignedRow(change: .removed, a: i, b: nil))
                i += 1
            } else {
                out.append(AlignedRow(change: .added, a: nil, b: j))
                j += 1
            }
        }
        // A row removed where another is added is one block replaced by another.
        var merged: [AlignedRow] = []
        for row in out {
            if row.change == .added, let last = merged.last, last.change == .removed {
                merged[merged.count - 1] = AlignedRow(change: .replaced, a: last.a, b: row.b)
            } else {
                merged.append(row)
            }
        }
        return merged
    }

    /// How alike two outputs of aligned layers are, in [-1, 1]: the cosine of their channel means when both
    /// are [1, C, H, W] maps with the same C, else of their channel-averaged maps when H and W agree, else of
    /// the flat tensors when their sizes agree; nil when nothing matches in shape.
    public static func similarity(_ x: Tensor, _ y: Tensor) -> Float? {
        func cosine(_ u: [Float], _ v: [Float]) -> Float? {
            guard u.count == v.count, !u.isEmpty else { return nil }
            var dot: Double = 0, nu: Double = 0, nv: Double = 0
            for k in u.indices {
                dot += Double(u[k]) * Double(v[k]); nu += Double(u[k]) * Double(u[k]); nv += Double(v[k]) * Double(v[k])
            }
            if nu == 0 && nv == 0 { return 1 }
            guard nu > 0, nv > 0 else { return 0 }
            return Float(dot / (nu.squareRoot() * nv.squareRoot()))
        }
        if x.rank == 4, y.rank == 4, x.shape[0] == 1, y.shape[0] == 1 {
            if x.shape[1] == y.shape[1] { return cosine(channelMeans(x), channelMeans(y)) }
            if x.shape[2] == y.shape[2], x.shape[3] == y.shape[3] { return cosine(meanMap(x), meanMap(y)) }
            return nil
        }
        return x.count == y.count ? cosine(x.data, y.data) : nil
    }

    /// [1, C, H, W] -> the C channel means.
    static func channelMeans(_ t: Tensor) -> [Float] {
        let c = t.shape[1], hw = t.shape[2] * t.shape[3]
        let d = t.data
        return (0 ..< c).map { ch in
            var s: Double = 0
            for k in 0 ..< hw { s += Double(d[ch * hw + k]) }
            return Float(s / Double(max(hw, 1)))
        }
    }

    /// [1, C, H, W] -> the [H * W] map averaged over channels.
    static func meanMap(_ t: Tensor) -> [Float] {
        let c = t.shape[1], hw = t.shape[2] * t.shape[3]
        let d = t.data
        var out = [Double](repeating: 0, count: hw)
        for ch in 0 ..< c { for k in 0 ..< hw { out[k] += Double(d[ch * hw + k]) } }
        return out.map { Float($0 / Double(max(c, 1))) }
    }
}

/// B rebuilt with A's weights in the rows the two have in common (`compare --share-weights`), so that two variants
/// can be compared where only the inserted or replaced blocks differ: two untrained models otherwise share weights
/// only up to the first inserted block (each key's seeded init follows its row number, which the insertion shifts).
public enum WeightSharing {
    public struct Shared {
        public let model: any DetectionModel
        /// Tensors of B taken from A, and B's tensors in all.
        public let shared: Int
        public let total: Int
    }

    /// B (an ultralytics-family model without weights of its own: a catalogue id or a YAML) built with, in every row
    /// aligned with a row of A of the same module type, A's tensors of that row (A's checkpoint's tensors, or for
    /// an untrained A the same seeded init); its other rows keep their own seeded init. A tensor whose shape differs
    /// (a changed argument) keeps B's own. B takes A's class names when its head has as many classes.
    public static func open(_ b: String, sharingFrom a: any DetectionModel, weightsA: String?, aSpec: String, seed: UInt64 = 0) throws -> Shared {
        let (name, spec, scale) = try ultralyticsSpec(b)
        let probe = try UltralyticsModel(name: name, spec: spec, scale: scale, weights: WeightStore(.initialise(seed: seed)), names: nil)
        let grid = GridSize(a.defaultInputSize, a.defaultInputSize)
        let rowsA = a.layerTable(inputSize: grid), rowsB = probe.layerTable(inputSize: grid)
        // B's row index -> A's row index, for rows of the same type.
        var fromA: [Int: Int] = [:]
        for row in LayerDiff.align(rowsA, rowsB) where row.change == .same || row.change == .changed {
            if let i = row.a, let j = row.b { fromA[rowsB[j].index] = rowsA[i].index }
        }
        /// "model.J.rest" of B -> "model.I.rest" of A for an aligned row J of B.
        let map = fromA
        let keyInA: @Sendable (String) -> String? = { keyB in
            let parts = keyB.split(separator: ".", maxSplits: 2)
            guard parts.count == 3, parts[0] == "model", let j = Int(parts[1]), let i = map[j] else { return nil }
            return "model.\(i).\(parts[2])"
        }
        let store = WeightStore(.initialise(seed: seed))
        if let file = try checkpointOf(aSpec, weights: weightsA) {
            // A's own tensors, read under A's keys.
            let tensors = try Checkpoint.open(path: file).tensors
            store.sharedTensor = { keyInA($0).flatMap { tensors[$0] } }
        } else {
            // Untrained A: its seeded init of the same row.
            store.sharedSeedKey = keyInA
        }
        // A's class names too (they name the outputs of the head B shares when the class counts agree).
        let model = try UltralyticsModel(name: name, spec: spec, scale: scale, weights: store, names: a.classNames)
        return Shared(model: model, shared: store.sharedCount, total: store.requestedCount)
    }
}

extension WeightSharing {
    /// The model spec of an ultralytics-family MODEL that has no weights of its own (a catalogue id or a YAML).
    public static func ultralyticsSpec(_ spec: String) throws -> (String, ModelSpec, String?) {
        switch try ModelReference.resolve(spec) {
        case .catalogue(let entry) where entry.config.hasSuffix(".yaml") || entry.config.hasSuffix(".yml"):
            return (entry.id, try ModelSpec.load(path: Assets.url(entry.config).path), entry.scale)
        case .yaml(let path):
            return (((path as NSString).lastPathComponent as NSString).deletingPathExtension, try ModelSpec.load(path: path), nil)
        case .checkpoint:
            throw FileFormatError(file: spec, problem: "has weights of its own: --share-weights gives A's weights to a B without them (a catalogue id or a YAML)")
        default:
            throw FileFormatError(file: spec, problem: "--share-weights works on ultralytics-family models (YOLOv8, RT-DETR): catalogue ids and YAMLs")
        }
    }

    /// The checkpoint A's weights come from: --weights, or A itself when it is a checkpoint; nil when A is untrained.
    static func checkpointOf(_ spec: String, weights: String?) throws -> String? {
        if let weights { return weights }
        if case .checkpoint(let path) = try ModelReference.resolve(spec) { return path }
        return nil
    }
}
