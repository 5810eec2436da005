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
        var info: Int32 = 0
        // Workspace query, then the decomposition.
        var query: Float = 0
        var lwork: Int32 = -1
        sgesdd_(&jobz, &mm, &nn, &work, &lda, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &iwork, &info, 1)
        guard info == 0 else { throw Failure(description: "SVD: sgesdd workspace query of a \(m) x \(n) matrix failed (info \(info))") }
        lwork = Int32(max(1, Int(query.rounded(.up))))
        var scratch = [Float](repeating: 0, count: Int(lwork))
        sgesdd_(&jobz, &mm, &nn, &work, &lda, &s, &u, &ldu, &vt, &ldvt, &scratch, &lwork, &iwork, &info, 1)
        if info > 0 { throw Failure(description: "SVD: sgesdd did not converge on a \(m) x \(n) matrix (info \(info))") }
        guard info == 0 else { throw Failure(description: "SVD: sgesdd rejected argument \(-info) for a \(m) x \(n) matrix") }
        // Vᵀ from column-major (k x n, leading dimension k) to row-major.
        var rows = [Float](repeating: 0, count: k * n)
        for i in 0 ..< k { for j in 0 ..< n { rows[i * n + j] = vt[i + j * k] } }
        return Decomposition(singularValues: s, vt: rows, columns: n)
    }
}
