import Foundation
import Tensor

/// EigenCAM: where a layer "looks", without gradients or a class target: the projection of the layer's
/// activations on their first principal component, upsampled to the input.
///
/// Computed step by step as jacobgil/pytorch-grad-cam computes it (`EigenCAM.get_cam_image` ->
/// `utils/svd_on_activations.get_2d_projection`, then `BaseCAM.compute_cam_per_layer` and
/// `aggregate_multi_layers` with `utils/image.scale_cam_image`):
/// 1. activations [C, H, W]; NaN -> 0; viewed as the [H*W, C] matrix and centred (each channel minus its mean);
/// 2. the first right-singular vector v of that matrix (LAPACK `sgesdd`, as `np.linalg.svd`, so v has the sign
///    that code gets: EigenCAM itself applies no sign correction);
/// 3. the projection centred @ v as an [H, W] map; ReLU;
/// 4. `scale_cam_image`: minus its minimum, divided by (1e-7 + its maximum), resized to the input's width and
///    height with `cv2.resize` (bilinear, half-pixel centres, edges clamped);
/// 5. `aggregate_multi_layers` for the one layer: ReLU and `scale_cam_image` again, at the input size.
///
/// Shapes: activations [C, H, W] or [1, C, H, W] -> CAM [inputH, inputW] in [0, 1].
/// References: Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components" (IJCNN 2020,
/// arXiv:2008.00299); pytorch-grad-cam (eigen_cam.py, utils/svd_on_activations.py, utils/image.py, base_cam.py).
public enum EigenCAM {
    /// A single-channel map, row-major.
    public struct Map: Sendable, Equatable {
        public var width: Int
        public var height: Int
        public var values: [Float]

        public init(width: Int, height: Int, values: [Float]) {
            precondition(values.count == width * height, "EigenCAM.Map: \(values.count) values for \(height)x\(width)")
            self.width = width
            self.height = height
            self.values = values
        }

        public subscript(x: Int, y: Int) -> Float { values[y * width + x] }
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// [C, H, W] of a feature map given as [C, H, W] or [1, C, H, W]; nil for anything else.
    public static func dimensions(_ t: Tensor) -> (c: Int, h: Int, w: Int)? {
        if t.rank == 4, t.shape[0] == 1 { return (t.shape[1], t.shape[2], t.shape[3]) }
        if t.rank == 3 { return (t.shape[0], t.shape[1], t.shape[2]) }
        return nil
    }

    /// The first principal component of a layer's activations: the projection on it, and how much of the
    /// activations' variance it carries.
    public struct Component: Sendable, Equatable {
        /// Steps 1-3 before the ReLU, [H, W].
        public var projection: Map
        /// s₀² / Σ sᵢ² of the centred matrix's singular values (0 for a constant or zero map).
        public var explained: Float
    }

    /// Which sign the component gets.
    public enum Sign: String, Sendable, CaseIterable {
        /// As LAPACK's SVD returns the vector, as pytorch-grad-cam leaves it (no correction). For matrices with
        /// min(H*W, C) > 25 the sign can differ between LAPACK releases, and so between numpy builds.
        case lapack
        /// Flipped, if need be, so that the projection correlates positively with the channel-mean map (the issue's
        /// "sign chosen so the map correlates with the activations"); the same on every LAPACK.
        case activations
    }

    /// Steps 1-3 before the ReLU: the activations' projection on their first principal component, [H, W]
    /// (`get_2d_projection` for one image). A constant or zero map projects to zeros.
    public static func projection(_ t: Tensor, sign: Sign = .lapack) throws -> Map { try firstComponent(t, sign: sign).projection }

    /// The projection (steps 1-3 before the ReLU) and the fraction of variance the component explains.
    public static func firstComponent(_ t: Tensor, sign: Sign = .lapack) throws -> Component {
        guard let (c, h, w) = dimensions(t) else {
            throw Failure(description: "EigenCAM: a feature map [C, H, W] or [1, C, H, W] is needed, not \(t.shape)")
        }
        let m = h * w
        guard c > 0, m > 0 else { throw Failure(description: "EigenCAM: the feature map \(t.shape) is empty") }
        // [C, H, W] contiguous is the column-major [H*W, C] matrix: column c is channel c.
        var a = t.data
        for k in a.indices where a[k].isNaN { a[k] = 0 }
        for ch in 0 ..< c {
            var sum: Double = 0
            for i in 0 ..< m { sum += Double(a[ch * m + i]) }
            let mean = Float(sum / Double(m))
            for i in 0 ..< m { a[ch * m + i] -= mean }
        }
        let (v, singularValues) = try SVD.firstRightSingularVector(columnMajor: a, rows: m, columns: c)
        var out = [Float](repeating: 0, count: m)
        var agreement: Double = 0
        for i in 0 ..< m {
            var s: Double = 0, mean: Double = 0
            for ch in 0 ..< c { s += Double(a[ch * m + i]) * Double(v[ch]); mean += Double(a[ch * m + i]) }
            out[i] = Float(s)
            agreement += s * mean
        }
        // The centred channel-mean map is Σ_c a[., c] / C: a negative dot product with it flips the component.
        if sign == .activations, agreement < 0 { out = out.map { -$0 } }
        let total = singularValues.reduce(0) { $0 + Double($1) * Double($1) }
        let first = Double(singularValues.first ?? 0)
        return Component(projection: Map(width: w, height: h, values: out), explained: total > 0 ? Float(first * first / total) : 0)
    }

    /// The layer's EigenCAM at the input size (steps 1-5), values in [0, 1].
    public static func cam(_ t: Tensor, inputSize: GridSize) throws -> Map {
        try cam(projection: projection(t), inputSize: inputSize)
    }

    /// Steps 3-5 from the projection: ReLU, scaled and resized to the input, scaled again.
    public static func cam(projection: Map, inputSize: GridSize) throws -> Map {
        guard inputSize.width > 0, inputSize.height > 0 else {
            throw Failure(description: "EigenCAM: the input size \(inputSize.height)x\(inputSize.width) is empty")
        }
        var p = projection
        p.values = p.values.map { max($0, 0) }
        var scaled = scale(p, to: inputSize)
        scaled.values = scaled.values.map { max($0, 0) }
        return scale(scaled, to: nil)
    }

    /// `scale_cam_image` on one map: minus its minimum, divided by (1e-7 + the new maximum), then (with a
    /// size) resized bilinearly as `cv2.resize(img, (width, height))` does for float32 images.
    public static func scale(_ map: Map, to size: GridSize?) -> Map {
        var v = map.values
        let lo = v.min() ?? 0
        for k in v.indices { v[k] -= lo }
        let d = Float(1e-7) + (v.max() ?? 0)
        for k in v.indices { v[k] /= d }
        let out = Map(width: map.width, height: map.height, values: v)
        guard let size, size.width != map.width || size.height != map.height else { return out }
        return resize(out, width: size.width, height: size.height)
    }

    /// Bilinear resize with half-pixel centres (source = (dest + 0.5) * scale - 0.5, clamped to the edges), as
    /// OpenCV's `cv2.resize(..., INTER_LINEAR)` computes it for float32 images (a horizontal pass, then a
    /// vertical one, weights in float).
    public static func resize(_ map: Map, width dw: Int, height dh: Int) -> Map {
        precondition(dw > 0 && dh > 0, "EigenCAM.resize to an empty size")
        func taps(_ dsize: Int, _ ssize: Int) -> [(Int, Int, Float, Float)] {
            let scale = Double(ssize) / Double(dsize)
            return (0 ..< dsize).map { d in
                var f = Float((Double(d) + 0.5) * scale - 0.5)
                var s = Int(f.rounded(.down))
                f -= Float(s)
                if s < 0 { f = 0; s = 0 }
                if s >= ssize - 1 { f = 0; s = ssize - 1 }
                return (s, min(s + 1, ssize - 1), 1 - f, f)
            }
        }
        let xs = taps(dw, map.width), ys = taps(dh, map.height)
        // The horizontal pass over every source row, then the vertical blend of two of them per output row.
        var rows = [Float](repeating: 0, count: map.height * dw)
        for y in 0 ..< map.height {
            for (x, (s0, s1, a0, a1)) in xs.enumerated() {
                rows[y * dw + x] = map.values[y * map.width + s0] * a0 + map.values[y * map.width + s1] * a1
            }
        }
        var out = [Float](repeating: 0, count: dw * dh)
        for (y, (r0, r1, b0, b1)) in ys.enumerated() {
            for x in 0 ..< dw { out[y * dw + x] = rows[r0 * dw + x] * b0 + rows[r1 * dw + x] * b1 }
        }
        return Map(width: dw, height: dh, values: out)
    }

    /// A box in input pixels, as whole pixels [x1, x2) x [y1, y2) (the reference truncates the detection's
    /// corners with `int()`); clamped to the map.
    public struct Box: Sendable, Equatable {
        public var x1: Int, y1: Int, x2: Int, y2: Int
        public init(x1: Int, y1: Int, x2: Int, y2: Int) { self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2 }

        /// A detection's box truncated toward zero, as `int(xmin)` etc.
        public init(_ d: Detection) { self.init(x1: Int(d.x1), y1: Int(d.y1), x2: Int(d.x2), y2: Int(d.y2)) }
    }

    /// How the CAM inside a box is renormalised.
    public enum BoxScaling: String, Sendable, CaseIterable {
        /// Exactly as pytorch-grad-cam's `renormalize_cam_in_bounding_boxes` (its object-detection tutorial):
        /// `scale_cam_image` on the box's 2-D crop iterates the crop's rows, so each row of each box is scaled to
        /// [0, 1] on its own, and so is each row of the final maximum over the boxes.
        case rows
        /// Each box's crop scaled to [0, 1] as a whole, then the maximum over boxes scaled as a whole.
        case box
    }

    /// The CAM inside each box renormalised separately and zero outside every box: per box a map that is zero
    /// outside it and the box's scaled crop inside; their element-wise maximum; scaled again. No boxes: zeros.
    public static func renormalized(_ cam: Map, boxes: [Box], scaling: BoxScaling = .rows) -> Map {
        let w = cam.width, h = cam.height
        var best = [Float](repeating: 0, count: w * h)
        // Python slices clamp to the array; an empty slice changes nothing.
        func clampX(_ v: Int) -> Int { max(0, min(w, v)) }
        func clampY(_ v: Int) -> Int { max(0, min(h, v)) }
        for b in boxes {
            let x1 = clampX(b.x1), x2 = clampX(b.x2), y1 = clampY(b.y1), y2 = clampY(b.y2)
            guard x2 > x1, y2 > y1 else { continue }
            var crop: [Float] = []
            crop.reserveCapacity((x2 - x1) * (y2 - y1))
            for y in y1 ..< y2 { crop += cam.values[y * w + x1 ..< y * w + x2] }
            let scaled = scaleRows(Map(width: x2 - x1, height: y2 - y1, values: crop), asOne: scaling == .box)
            for y in y1 ..< y2 {
                for x in x1 ..< x2 { best[y * w + x] = max(best[y * w + x], scaled[x - x1, y - y1]) }
            }
        }
        return scaleRows(Map(width: w, height: h, values: best), asOne: scaling == .box)
    }

    /// `scale_cam_image` on a 2-D array: each row on its own (or, `asOne`, the whole map as one image).
    static func scaleRows(_ map: Map, asOne: Bool) -> Map {
        if asOne { return scale(map, to: nil) }
        var v = map.values
        for y in 0 ..< map.height {
            let row = scale(Map(width: map.width, height: 1, values: Array(v[y * map.width ..< (y + 1) * map.width])), to: nil)
            v.replaceSubrange(y * map.width ..< (y + 1) * map.width, with: row.values)
        }
        return Map(width: map.width, height: map.height, values: v)
    }
}
