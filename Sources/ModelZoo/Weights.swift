import Foundation
import Tensor

/// An error about a model's weights: names the key path, the problem and the file.
public struct WeightError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problems: [String]
    public init(file: String, problems: [String]) {
        self.file = file
        self.problems = problems
    }
    public var description: String {
        let shown = problems.prefix(20).map { "  " + $0 }.joined(separator: "\n")
        let more = problems.count > 20 ? "\n  ... and \(problems.count - 20) more" : ""
        return "\(file): the weights do not fit the model (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n\(shown)\(more)"
    }
}

/// A model that asks for more parameters than the machine's memory budget (or for a shape whose size
/// overflows): thrown when the request is made, before its tensor is allocated.
public struct WeightBudgetError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let shape: [Int]
    /// Values already asked for before this request.
    public let requestedBefore: Int
    public let budget: Int
    public var description: String {
        let size = Budget.product(shape).map { "\($0) values" } ?? "a size that overflows 64-bit arithmetic"
        let whose = budget == Budget.modelBytes / 4 ? ", half this machine's memory" : ""
        return "the model's parameters do not fit this machine: '\(key)' of shape \(shape) (\(size)) after \(requestedBefore) values would pass the budget of \(budget) values (\(Budget.describe(bytes: budget * 4)) as Float32\(whose))"
    }
}

/// How a parameter is initialised when no checkpoint supplies it (following the reference
/// implementation's own init for that parameter).
public enum WeightInit: Sendable {
    case zeros
    case ones
    case constant(Float)
    case uniform(Float, Float)
    case normal(mean: Float, std: Float)
    /// PyTorch's default for Conv2d/Linear weights and biases: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    case kaimingUniform(fanIn: Int)
    /// Glorot: U(-a, a) with a = gain * sqrt(6 / (fanIn + fanOut)).
    case xavierUniform(fanIn: Int, fanOut: Int, gain: Float = 1)
    /// An explicit value (e.g. MSDeformAttn's grid init of its sampling offsets bias).
    case value(Tensor)
}

/// Where a model's parameters come from: a checkpoint (strict: every key must exist with the right
/// shape, and every key must be used) or a seeded, deterministic default initialisation.
///
/// Modules ask for tensors through a `WeightScope`, naming each by the checkpoint's own key. The same
/// code path builds a model from a file or from the default init.
public final class WeightStore: @unchecked Sendable {
    public enum Source: Sendable {
        /// Tensors from a file; `name` is the file path used in errors.
        case checkpoint(name: String, tensors: [String: Tensor])
        /// Seeded default init.
        case initialise(seed: UInt64)
    }

    public let source: Source
    private var used: Set<String> = []
    private var problems: [String] = []
    private let lock = NSLock()
    /// Keys to ignore when checking that every checkpoint key was used (e.g. BN's num_batches_tracked).
    public var ignoredSuffixes: [String] = ["num_batches_tracked"]
    /// Key prefixes of the checkpoint to ignore entirely (e.g. a training-only head).
    public var ignoredPrefixes: [String] = []

    public init(_ source: Source) { self.source = source }

    public var fileName: String {
        switch source {
        case .checkpoint(let name, _): return name
        case .initialise(let seed): return "default initialisation (seed \(seed))"
        }
    }

    public var isDefaultInit: Bool {
        if case .initialise = source { return true }
        return false
    }

    public var root: WeightScope { WeightScope(store: self, prefix: "") }

    /// The most parameter values one model may ask for (`Budget.modelBytes` as Float32); a request past it
    /// throws `WeightBudgetError` before anything is allocated.
    public var budgetElements = Budget.modelBytes / MemoryLayout<Float>.size
    /// Parameter values asked for so far.
    public private(set) var requestedElements = 0

    /// Weights shared from another model (`compare --share-weights`), used with the default initialisation only: a key
    /// for which `sharedTensor` gives a tensor of the shape asked for takes it; else a key for which `sharedSeedKey`
    /// names another key takes that key's seeded init (so two untrained models get the same weights in the rows they
    /// have in common); every other key keeps its own seeded init.
    public var sharedTensor: (@Sendable (String) -> Tensor?)?
    public var sharedSeedKey: (@Sendable (String) -> String?)?
    /// How many tensors came from `sharedTensors` or `seedKeys`, and how many were asked for in all.
    public private(set) var sharedCount = 0
    public private(set) var requestedCount = 0

    /// The tensor stored under `key`, checked against `shape`. With the default init, it is made from `initialiser`.
    /// A missing key or a wrong shape is recorded (and a zero tensor of `shape` returned) so that every problem
    /// is reported at once by `finish()`. A shape whose size overflows, or that takes the model past
    /// `budgetElements`, throws `WeightBudgetError` before anything is allocated.
    public func tensor(_ key: String, shape: [Int], init initialiser: WeightInit) throws -> Tensor {
        try reserve(key, shape: shape)
        switch source {
        case .initialise(let seed):
            let shared = sharedTensor?(key).flatMap { $0.shape == shape ? $0 : nil }
            let alias = shared == nil ? sharedSeedKey?(key) : nil
            lock.lock()
            requestedCount += 1
            if shared != nil || alias != nil { sharedCount += 1 }
            lock.unlock()
            if let shared { return shared }
            return WeightStore.make(initialiser, shape: shape, seed: seed ^ stableHash(alias ?? key))
        case .checkpoint(_, let tensors):
            lock.lock(); defer { lock.unlock() }
            used.insert(key)
            guard let t = tensors[key] else {
                problems.append("missing key '\(key)' (expected shape \(shape))")
                return Tensor(zeros: shape)
            }
            if t.shape != shape {
                // Accept a scalar stored as [1] or a vector with trailing singleton dims when the counts agree.
                if t.count == Tensor.count(of: shape) && (t.shape.filter { $0 != 1 } == shape.filter { $0 != 1 }) {
                    return t.reshaped(shape)
                }
                problems.append("key '\(key)' has shape \(t.shape), the model expects \(shape)")
                return Tensor(zeros: shape)
            }
            return t
        }
    }

    private func reserve(_ key: String, shape: [Int]) throws {
        lock.lock(); defer { lock.unlock() }
        guard shape.allSatisfy({ $0 >= 0 }), let n = Budget.product(shape),
              case let (total, false) = requestedElements.addingReportingOverflow(n), total <= budgetElements else {
            throw WeightBudgetError(key: key, shape: shape, requestedBefore: requestedElements, budget: budgetElements)
        }
        requestedElements = total
    }

    /// Whether the checkpoint has a key (always false for the default init).
    public func has(_ key: String) -> Bool {
        if case .checkpoint(_, let tensors) = source { return tensors[key] != nil }
        return false
    }

    /// Throws a `WeightError` listing every missing, wrong-shape and unused key.
    public func finish() throws {
        guard case .checkpoint(let name, let tensors) = source else { return }
        lock.lock(); defer { lock.unlock() }
        var all = problems
        let unused = tensors.keys.filter { k in
            !used.contains(k) && !ignoredSuffixes.contains(where: { k.hasSuffix($0) })
                && !ignoredPrefixes.contains(where: { k.hasPrefix($0) })
        }.sorted()
        all += unused.map { "unused key '\($0)' (shape \(tensors[$0]!.shape)) is not part of the model" }
        if !all.isEmpty { throw WeightError(file: name, problems: all) }
    }

    static func make(_ initialiser: WeightInit, shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let n = Tensor.count(of: shape)
        switch initialiser {
        case .zeros: return Tensor(zeros: shape)
        case .ones: return Tensor(repeating: 1, shape: shape)
        case .constant(let v): return Tensor(repeating: v, shape: shape)
        case .uniform(let lo, let hi):
            return Tensor(shape: shape, data: (0 ..< n).map { _ in lo + (hi - lo) * rng.nextFloat() })
        case .normal(let mean, let std):
            return Tensor(shape: shape, data: (0 ..< n).map { _ in mean + std * rng.nextNormal() })
        case .kaimingUniform(let fanIn):
            let b = 1 / Float(max(fanIn, 1)).squareRoot()
            return Tensor(shape: shape, data: (0 ..< n).map { _ in -b + 2 * b * rng.nextFloat() })
        case .xavierUniform(let fanIn, let fanOut, let gain):
            let a = gain * (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
            return Tensor(shape: shape, data: (0 ..< n).map { _ in -a + 2 * a * rng.nextFloat() })
        case .value(let t):
            precondition(t.count == n, "WeightInit.value: \(t.shape) for \(shape)")
            return t.reshaped(shape)
        }
    }
}

/// A key prefix into a `WeightStore`, like a directory: `scope("cv1").tensor("conv.weight", ...)` reads `cv1.conv.weight`.
public struct WeightScope: Sendable {
    public let store: WeightStore
    public let prefix: String

    public func scope(_ name: String) -> WeightScope {
        WeightScope(store: store, prefix: key(name))
    }

    public func scope(_ index: Int) -> WeightScope { scope(String(index)) }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    public func tensor(_ name: String, shape: [Int], init initialiser: WeightInit) throws -> Tensor {
        try store.tensor(key(name), shape: shape, init: initialiser)
    }

    public func has(_ name: String) -> Bool { store.has(key(name)) }
}

/// FNV-1a: a hash of a key that is the same on every run (Swift's Hasher is randomly seeded).
public func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01B3
    }
    return h
}
