import CBLAS
import Foundation

// Matrix products through OpenBLAS. This is the only file that talks to CBLAS.

/// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major.
/// op(A) is m x k (A is k x m when transA); op(B) is k x n (B is n x k when transB).
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        for i in 0 ..< m { for j in 0 ..< n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Threads OpenBLAS may use (its own pool).
public var blasThreads: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(newValue)) }
}

/// x [..., in] times weight [out, in] transposed, plus bias [out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    check(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
    let outF = weight.shape[0], inF = weight.shape[1]
    check(x.rank >= 1 && x.shape[x.rank - 1] == inF, "linear: input \(x.shape) does not end in \(inF)")
    if let bias { check(bias.count == outF, "linear: bias \(bias.shape) for \(outF) outputs") }
    let rows = x.count / Swift.max(inF, 1)
    var shape = x.shape
    shape[shape.count - 1] = outF
    return Tensor(shape: shape) { out in
        guard let c = out.baseAddress else { return }
        if let bias {
            bias.data.withUnsafeBufferPointer { bp in
                for r in 0 ..< rows { (c + r * outF).update(from: bp.baseAddress!, count: outF) }
            }
        } else if inF == 0 {
            out.initialize(repeating: 0)
        }
        if inF == 0 { return }
        x.data.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                sgemm(transB: true, m: rows, n: outF, k: inF, a: xp.baseAddress!, lda: inF,
                      b: wp.baseAddress!, ldb: inF, beta: bias == nil ? 0 : 1, c: c, ldc: outF)
            }
        }
    }
}

/// Batched matrix product [..., M, K] x [..., K, N] -> [..., M, N]; batch dimensions broadcast.
/// transposeA / transposeB read a as [..., K, M] / b as [..., N, K].
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    check(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank >= 2, got \(a.shape) and \(b.shape)")
    let ar = a.rank, br = b.rank
    let m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2]
    let k = transposeA ? a.shape[ar - 2] : a.shape[ar - 1]
    let kb = transposeB ? b.shape[br - 1] : b.shape[br - 2]
    let n = transposeB ? b.shape[br - 2] : b.shape[br - 1]
    check(k == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") x \(b.shape)\(transposeB ? "ᵀ" : "")")
    let batchA = Array(a.shape[..<(ar - 2)]), batchB = Array(b.shape[..<(br - 2)])
    let batch = broadcastShape(batchA, batchB)
    let nb = batch.reduce(1, *)
    let sa = broadcastStrides(batchA, to: batch), sb = broadcastStrides(batchB, to: batch)
    return Tensor(shape: batch + [m, n]) { out in
        guard let c = out.baseAddress else { return }
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                let pa = ap.baseAddress!, pb = bp.baseAddress!
                // b shared by every batch and a not transposed: one tall gemm.
                if batchB.reduce(1, *) == 1 && !transposeA && batchA.reduce(1, *) == nb {
                    sgemm(transB: transposeB, m: nb * m, n: n, k: k, a: pa, lda: transposeA ? m : k,
                          b: pb, ldb: transposeB ? k : n, c: c, ldc: n)
                    return
                }
                var idx = [Int](repeating: 0, count: batch.count)
                for i in 0 ..< nb {
                    var offA = 0, offB = 0
                    for d in 0 ..< batch.count { offA += idx[d] * sa[d]; offB += idx[d] * sb[d] }
                    sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                          a: pa + offA * m * k, lda: transposeA ? m : k,
                          b: pb + offB * k * n, ldb: transposeB ? k : n,
                          c: c + i * m * n, ldc: n)
                    var d = batch.count - 1
                    while d >= 0 { idx[d] += 1; if idx[d] < batch[d] { break }; idx[d] = 0; d -= 1 }
                }
            }
        }
    }
}
