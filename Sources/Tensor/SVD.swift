import CLAPACK
import Foundation

// The singular value decomposition through LAPACK (OpenBLAS's bundled reference LAPACK). This is the only file
// that talks to CLAPACK.

/// A = U * diag(S) * Vᵀ of an m x n matrix by LAPACK's `sgesdd` (divide and conquer), the routine
/// `numpy.linalg.svd` runs on float32 matrices: the same algorithm on the same column-major matrix, so the
/// singular vectors come out with the same signs, which matters wherever a sign is not otherwise fixed
/// (EigenCAM's projection on the first right-singular vector).
public enum SVD {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The singular values (descending) and the right-singular vectors as the rows of Vᵀ.
    public struct Decomposition: Sendable {
        /// min(m, n) singular values, largest first.
        public var singularValues: [Float]
        /// Vᵀ, min(m, n) x n, row-major: row i is the i-th right-singular vector.
        public var vt: [Float]
        public var columns: Int

        /// Right-singular vector `i` (n values).
        public func rightVector(_ i: Int) -> [Float] { Array(vt[i * columns ..< (i + 1) * columns]) }
    }

    /// Decomposes the m x n matrix `a` given column-major (element (i, j) at a[i + j * m]; a [C, H, W] tensor is
    /// the column-major [H * W, C] matrix). Computes the thin U (`jobz = 'S'`, as `full_matrices=False`; its
    /// first min(m, n) columns and Vᵀ's rows are those of the full decomposition) and throws when LAPACK reports
    /// that the iteration did not converge.
    public static func decompose(columnMajor a: [Float], rows m: Int, columns n: Int) throws -> Decomposition {
        precondition(a.count == m * n, "SVD: \(a.count) values for a \(m) x \(n) matrix")
        guard m > 0, n > 0 else { return Decomposition(singularValues: [], vt: [], columns: n) }
        guard m <= Int(Int32.max) / max(n, 1) else {
            throw Failure(description: "SVD: a \(m) x \(n) matrix is too large for LAPACK's 32-bit indices")
        }
        let k = min(m, n)
        var work = a
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: m * k)
        var vt = [Float](repeating: 0, count: k * n)
        var iwork = [Int32](repeating: 0, count: 8 * k)
        var jobz: CChar = CChar(UInt8(ascii: "S"))
        var mm = Int32(m), nn = Int32(n), lda = Int32(m), ldu = Int32(m), ldvt = Int32(k)
        try withWorkspace("sgesdd", m, n) { w, lwork, info in
            sgesdd_(&jobz, &mm, &nn, &work, &lda, &s, &u, &ldu, &vt, &ldvt, w, lwork, &iwork, info, 1)
        }
        // Vᵀ from column-major (k x n, leading dimension k) to row-major.
        var rows = [Float](repeating: 0, count: k * n)
        for i in 0 ..< k { for j in 0 ..< n { rows[i * n + j] = vt[i + j * k] } }
        return Decomposition(singularValues: s, vt: rows, columns: n)
    }

    /// The first right-singular vector (and the singular values) as `decompose` gives them, with less work when one
    /// side is much longer than the other. `sgesdd` itself first reduces an m x n matrix with m >= ⌊11n/6⌋ to the R of
    /// its QR factorisation and decomposes R (and with n >= ⌊11m/6⌋ to the L of its LQ factorisation, Vᵀ then being
    /// Vᵀ_L times Q); doing that reduction here and decomposing only R (or L, then applying Q to one vector) is the
    /// same arithmetic without forming the long U or the whole of Vᵀ.
    public static func firstRightSingularVector(columnMajor a: [Float], rows m: Int, columns n: Int) throws -> (vector: [Float], singularValues: [Float]) {
        precondition(a.count == m * n, "SVD: \(a.count) values for a \(m) x \(n) matrix")
        let mnthr = min(m, n) * 11 / 6
        guard m > 0, n > 0, m <= Int(Int32.max) / max(n, 1), (m >= n && m >= mnthr && m > n) || (m < n && n >= mnthr) else {
            let d = try decompose(columnMajor: a, rows: m, columns: n)
            return (d.singularValues.isEmpty ? [] : d.rightVector(0), d.singularValues)
        }
        var work = a
        var mm = Int32(m), nn = Int32(n), lda = Int32(m)
        let k = min(m, n)
        var tau = [Float](repeating: 0, count: k)
        if m > n {
            try withWorkspace("sgeqrf", m, n) { w, lwork, info in sgeqrf_(&mm, &nn, &work, &lda, &tau, w, lwork, info) }
            // R: the upper triangle, n x n.
            var r = [Float](repeating: 0, count: n * n)
            for j in 0 ..< n { for i in 0 ... j { r[i + j * n] = work[i + j * m] } }
            let d = try decompose(columnMajor: r, rows: n, columns: n)
            return (d.rightVector(0), d.singularValues)
        }
        try withWorkspace("sgelqf", m, n) { w, lwork, info in sgelqf_(&mm, &nn, &work, &lda, &tau, w, lwork, info) }
        // L: the lower triangle, m x m.
        var l = [Float](repeating: 0, count: m * m)
        for j in 0 ..< m { for i in j ..< m { l[i + j * m] = work[i + j * m] } }
        let d = try decompose(columnMajor: l, rows: m, columns: m)
        // The first row of Vᵀ = Vᵀ_L * Q: [v_L, 0, ..., 0] (1 x n) times Q.
        var v = d.rightVector(0) + [Float](repeating: 0, count: n - m)
        var side: CChar = CChar(UInt8(ascii: "R")), trans: CChar = CChar(UInt8(ascii: "N"))
        var one: Int32 = 1, kk = Int32(m)
        try withWorkspace("sormlq", m, n) { w, lwork, info in
            sormlq_(&side, &trans, &one, &nn, &kk, &work, &lda, &tau, &v, &one, w, lwork, info, 1, 1)
        }
        return (v, d.singularValues)
    }

    /// Runs a LAPACK routine as LAPACK asks: once with LWORK = -1 (the optimal workspace size comes back in WORK[0]),
    /// then with that workspace. `call(work, lwork, info)`; an INFO other than 0 throws, naming `op` and the shape.
    static func withWorkspace(_ op: String, _ m: Int, _ n: Int,
                              _ call: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Void) throws {
        var query: Float = 0, lwork: Int32 = -1, info: Int32 = 0
        call(&query, &lwork, &info)
        guard info == 0 else { throw Failure(description: "SVD: \(op) workspace query for a \(m) x \(n) matrix failed (info \(info))") }
        lwork = Int32(max(1, Int(query.rounded(.up))))
        var scratch = [Float](repeating: 0, count: Int(lwork))
        scratch.withUnsafeMutableBufferPointer { call($0.baseAddress!, &lwork, &info) }
        if info > 0 { throw Failure(description: "SVD: \(op) did not converge on a \(m) x \(n) matrix (info \(info))") }
        guard info == 0 else { throw Failure(description: "SVD: \(op) rejected argument \(-info) for a \(m) x \(n) matrix") }
    }
}
