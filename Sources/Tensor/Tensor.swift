import CKernels

/// A dense Float32 tensor: a shape and its values in row-major (C) order.
///
/// Activations are NCHW and convolution weights OIHW, the PyTorch layouts, so
/// checkpoints load without transposes. `data` is a Swift array, so a `Tensor`
/// is a value with copy-on-write storage and is `Sendable`.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public var data: [Float]
    /// A tensor of the shape pass (`Tensor.shapePass`): it has a shape and no values (`data` is empty).
    public private(set) var isShapeOnly = false

    /// A tensor with the given shape and values; `data.count` must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        check(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        check(Tensor.count(of: shape) == data.count,
                     "Tensor: shape \(shape) holds \(Tensor.count(of: shape)) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    private init(shape: [Int], checkedData: [Float]) {
        self.shape = shape
        self.data = checkedData
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        if ck_shape_pass() != 0 { self.init(shapeOnly: shape); return }
        self.init(shape: shape, data: [Float](repeating: 0, count: Tensor.count(of: shape)))
    }

    /// A tensor filled with one value.
    public init(repeating value: Float, shape: [Int]) {
        if ck_shape_pass() != 0 { self.init(shapeOnly: shape); return }
        self.init(shape: shape, data: [Float](repeating: value, count: Tensor.count(of: shape)))
    }

    /// A tensor with a shape and no values, as the shape pass makes them. Its dimensions are not checked: the
    /// shape pass reports a dimension below 1 where it appears instead of stopping inside an op.
    public init(shapeOnly shape: [Int]) {
        self.shape = shape
        self.data = []
        self.isShapeOnly = true
    }

    /// Runs `body` as a shape pass: on this thread, every op's output is a shape-only tensor whose shape is the one
    /// the op would have produced, and nothing is allocated or computed (an op makes its output through
    /// `init(shape:unsafeUninitialized:)`, which skips its body). What a model's forward pass returns this way
    /// gives every layer's output shape at any input size at almost no cost.
    public static func shapePass<T>(_ body: () throws -> T) rethrows -> T {
        if ck_shape_pass() == 0 { ck_shape_pass_clear() }
        ck_shape_pass_enter()
        defer { ck_shape_pass_leave() }
        return try body()
    }

    /// The first check an op failed in this thread's shape pass (inputs whose shapes do not fit), or nil.
    public static var shapePassProblem: String? { ck_shape_pass_problem().map { String(cString: $0) } }

    /// Whether the current thread is inside `shapePass`.
    public static var isInShapePass: Bool { ck_shape_pass() != 0 }

    /// What an op returns in a shape pass after one of its checks failed (the failure is kept and reported by the
    /// module tree): a shape-only tensor of the op's output rank with every dimension 1, so that code after it reads
    /// dimensions that exist.
    static func failedShape(rank: Int) -> Tensor { Tensor(shapeOnly: [Int](repeating: 1, count: Swift.max(rank, 0))) }

    /// A scalar (rank 0) tensor.
    public init(scalar: Float) {
        self.init(shape: [], data: [scalar])
    }

    /// A tensor whose storage is filled by `body`, which receives an uninitialised buffer of `count` floats
    /// and must write every element.
    /// In a shape pass, the tensor is shape-only and `body` is not called.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        if ck_shape_pass() != 0 { self.init(shapeOnly: shape); return }
        let n = Tensor.count(of: shape)
        self.init(shape: shape, checkedData: try [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            try body(buf)
            initialized = n
        })
    }

    public static func count(of shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Number of values (of the shape, for a shape-only tensor).
    public var count: Int { isShapeOnly ? Tensor.count(of: shape) : data.count }
    public var rank: Int { shape.count }

    /// Row-major strides of `shape`.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// Size of dimension `axis`; negative axes count from the end.
    public func dim(_ axis: Int) -> Int { shape[normalizedAxis(axis)] }

    /// Maps a possibly negative axis into 0..<rank.
    public func normalizedAxis(_ axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        // A shape pass goes on with an axis that exists (the failure is reported).
        guard check(a >= 0 && a < Swift.max(rank, 1), "Tensor: axis \(axis) out of range for shape \(shape)") else { return 0 }
        return a
    }

    /// The same values with a new shape; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            guard check(known > 0 && count % known == 0, "reshape: cannot infer \(newShape) from \(shape)")
            else { return .failedShape(rank: newShape.count) }
            s[i] = count / known
        }
        check(Tensor.count(of: s) == count, "reshape: \(shape) (\(count) values) to \(newShape)")
        var t = self
        t.shape = s
        return t
    }

    /// Element access by full index (slow; for tests and small lookups).
    public subscript(_ index: Int...) -> Float {
        get { data[flatIndex(index)] }
        set { data[flatIndex(index)] = newValue }
    }

    public func flatIndex(_ index: [Int]) -> Int {
        check(index.count == rank, "Tensor: index \(index) for shape \(shape)")
        var flat = 0
        for (i, v) in index.enumerated() {
            check(v >= 0 && v < shape[i], "Tensor: index \(index) out of bounds for shape \(shape)")
            flat = flat * shape[i] + v
        }
        return flat
    }

    public var description: String {
        let head = data.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", ..." : "")])"
    }

    /// Largest absolute value (0 for an empty tensor).
    public var maxAbs: Float {
        var m: Float = 0
        for v in data { m = Swift.max(m, Swift.abs(v)) }
        return m
    }
}
