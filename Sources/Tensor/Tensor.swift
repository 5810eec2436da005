/// A dense Float32 tensor: a shape and its values in row-major (C) order.
///
/// Activations are NCHW and convolution weights OIHW, the PyTorch layouts, so
/// checkpoints load without transposes. `data` is a Swift array, so a `Tensor`
/// is a value with copy-on-write storage and is `Sendable`.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public var data: [Float]

    /// A tensor with the given shape and values; `data.count` must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        check(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        check(Tensor.count(of: shape) == data.count,
                     "Tensor: shape \(shape) holds \(Tensor.count(of: shape)) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: Tensor.count(of: shape)))
    }

    /// A tensor filled with one value.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: value, count: Tensor.count(of: shape)))
    }

    /// A scalar (rank 0) tensor.
    public init(scalar: Float) {
        self.init(shape: [], data: [scalar])
    }

    /// A tensor whose storage is filled by `body`, which receives an uninitialised buffer of `count` floats
    /// and must write every element.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let n = Tensor.count(of: shape)
        self.shape = shape
        self.data = try [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            try body(buf)
            initialized = n
        }
    }

    public static func count(of shape: [Int]) -> Int { shape.reduce(1, *) }

    public var count: Int { data.count }
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
        check(a >= 0 && a < Swift.max(rank, 1), "Tensor: axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// The same values with a new shape; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            check(known > 0 && count % known == 0, "reshape: cannot infer \(newShape) from \(shape)")
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
