import CBLAS
import CKernels
import Foundation

// Matrix products through OpenBLAS. This is the only file that talks to CBLAS.

/// The engine does its own splitting across cores (by rows or columns of the output, by conv tiles,
/// by batch), so OpenBLAS runs single-threaded: two thread pools on two cores would oversubscribe them.
private let blasSingleThreaded: Void = { openblas_set_num_threads(1) }()

/// What the loaded OpenBLAS says about itself.
public enum BLASLibrary {
    /// The name of the kernel set ("core") OpenBLAS chose when it was loaded, e.g. "Haswell", "SkylakeX", or
    /// "Prescott" when it did not recognise the processor: read from the library (openblas_get_corename).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The library's build configuration (openblas_get_config), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Prescott".
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// Whether the library carries kernels for several processors and picks them at load time (DYNAMIC_ARCH):
    /// only then does OPENBLAS_CORETYPE choose among them.
    public static var choosesCoreAtLoad: Bool { configuration.contains("DYNAMIC_ARCH") }
}

/// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major, on the calling thread.
/// op(A) is m x k (A is k x m when transA); op(B) is k x n (B is n x k when transB).
/// With the AVX-512 kernels, by the engine's own micro-kernel (ck_sgemm_avx512; `ownGemm`), else by OpenBLAS.
/// `columnBias` (n floats, only with `ownGemm`) is added to every row of C in the micro-kernel's epilogue.
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, columnBias: UnsafePointer<Float>? = nil) {
    _ = blasSingleThreaded
    if m == 0 || n == 0 { return }
    if ownGemm {
        ck_sgemm_bias_avx512(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, columnBias)
        return
    }
    precondition(columnBias == nil, "sgemm: a column bias needs the engine's AVX-512 gemm")
    if k == 0 {
        for i in 0 ..< m { for j in 0 ..< n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Whether `sgemm` runs on the engine's AVX-512 micro-kernel rather than OpenBLAS: with the AVX-512 kernels, unless
/// DETR_TUI_GEMM=blas. Measured on AMD EPYC family 26 model 2 (Zen 5), one thread, 1024^3, alternating: 62-118 GFLOP/s
/// against OpenBLAS 0.3.21's Haswell kernels' 53-57 and its SkylakeX kernels' 87-109 (a machine shared with builds).
let ownGemm = hasAVX512 && ProcessInfo.processInfo.environment["DETR_TUI_GEMM"] != "blas"

/// The same product split across cores: by rows of C when it is taller than wide, else by columns.
func parallelSgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                   a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                   beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, columnBias: UnsafePointer<Float>? = nil) {
    let work = m * n * Swift.max(k, 1)
    let parts = Swift.min(Parallel.cores, work < 1 << 18 ? 1 : Parallel.cores)
    if parts <= 1 || (m < 16 && n < 64) {
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
              beta: beta, c: c, ldc: ldc, columnBias: columnBias)
        return
    }
    let out = SharedPointer(c)
    let pa = ConstPointer(a), pb = ConstPointer(b), cb = columnBias.map { ConstPointer($0) }
    if m >= n {
        let blocks = (m + 7) / 8
        Parallel.forEach(parts, cost: Parallel.threshold) { range in
            for part in range {
                let m0 = Swift.min(m, blocks * part / parts * 8), m1 = Swift.min(m, blocks * (part + 1) / parts * 8)
                if m0 >= m1 { continue }
                sgemm(transA: transA, transB: transB, m: m1 - m0, n: n, k: k, alpha: alpha,
                      a: pa.base + (transA ? m0 : m0 * lda), lda: lda, b: pb.base, ldb: ldb,
                      beta: beta, c: out.base + m0 * ldc, ldc: ldc, columnBias: cb?.base)
            }
        }
    } else {
        let blocks = (n + 15) / 16
        Parallel.forEach(parts, cost: Parallel.threshold) { range in
            for part in range {
                let n0 = Swift.min(n, blocks * part / parts * 16), n1 = Swift.min(n, blocks * (part + 1) / parts * 16)
                if n0 >= n1 { continue }
                sgemm(transA: transA, transB: transB, m: m, n: n1 - n0, k: k, alpha: alpha,
                      a: pa.base, lda: lda, b: pb.base + (transB ? n0 * ldb : n0), ldb: ldb,
                      beta: beta, c: out.base + n0, ldc: ldc, columnBias: cb.map { $0.base + n0 })
            }
        }
    }
}

/// A plain square-ish product with whatever threads OpenBLAS currently has (see `withBlasThreads`).
func sgemmThreaded(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, c, Int32(n))
}

/// Runs `body` with OpenBLAS allowed `threads` threads (for measuring its own threaded rate).
func withBlasThreads<R>(_ threads: Int, _ body: () -> R) -> R {
    _ = blasSingleThreaded
    openblas_set_num_threads(Int32(threads))
    defer { openblas_set_num_threads(1) }
    return body()
}

/// x [..., in] times weight [out, in] transposed, plus bias [out].
/// `outputs`: only those output features (rows of `weight`, entries of `bias`), read in place: a block of a stacked
/// projection without copying its weights out.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, outputs: Range<Int>? = nil) -> Tensor {
    guard check(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)") else { return .failedShape(rank: Swift.max(x.rank, 1)) }
    let allOut = weight.shape[0], inF = weight.shape[1]
    let rowsOut = outputs ?? 0 ..< allOut
    guard check(rowsOut.lowerBound >= 0 && rowsOut.upperBound <= allOut, "linear: outputs \(rowsOut) of \(allOut)"),
          check(x.rank >= 1 && x.shape[x.rank - 1] == inF, "linear: input \(x.shape) does not end in \(inF)")
    else { return .failedShape(rank: Swift.max(x.rank, 1)) }
    if let bias { check(bias.count == allOut, "linear: bias \(bias.shape) for \(allOut) outputs") }
    let outF = rowsOut.count, w0 = rowsOut.lowerBound * inF, b0 = rowsOut.lowerBound
    let rows = x.count / Swift.max(inF, 1)
    var shape = x.shape
    shape[shape.count - 1] = outF
    return Tensor(shape: shape) { out in
        guard let c = out.baseAddress else { return }
        // The engine's gemm adds the bias in its epilogue (no pass that writes it into every row first).
        if ownGemm, inF > 0, let bias {
            x.data.withUnsafeBufferPointer { xp in
                weight.data.withUnsafeBufferPointer { wp in
                    bias.data.withUnsafeBufferPointer { bp in
                        parallelSgemm(transB: true, m: rows, n: outF, k: inF, a: xp.baseAddress!, lda: inF,
                                      b: wp.baseAddress! + w0, ldb: inF, c: c, ldc: outF, columnBias: bp.baseAddress! + b0)
                    }
                }
            }
            return
        }
        if let bias {
            bias.data.withUnsafeBufferPointer { bp in
                for r in 0 ..< rows { (c + r * outF).update(from: bp.baseAddress! + b0, count: outF) }
            }
        } else if inF == 0 {
            out.initialize(repeating: 0)
        }
        if inF == 0 { return }
        x.data.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                parallelSgemm(transB: true, m: rows, n: outF, k: inF, a: xp.baseAddress!, lda: inF,
                      b: wp.baseAddress! + w0, ldb: inF, beta: bias == nil ? 0 : 1, c: c, ldc: outF)
            }
        }
    }
}

/// Batched matrix product [..., M, K] x [..., K, N] -> [..., M, N]; batch dimensions broadcast.
/// transposeA / transposeB read a as [..., K, M] / b as [..., N, K].
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    guard check(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank >= 2, got \(a.shape) and \(b.shape)")
    else { return .failedShape(rank: Swift.max(a.rank, b.rank, 2)) }
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
                    parallelSgemm(transB: transposeB, m: nb * m, n: n, k: k, a: pa, lda: transposeA ? m : k,
                          b: pb, ldb: transposeB ? k : n, c: c, ldc: n)
                    return
                }
                // Offsets of every batch entry, then the entries spread over the cores (each a
                // single-threaded gemm); a lone large product is split inside instead.
                var offsets = [(Int, Int)]()
                offsets.reserveCapacity(nb)
                var idx = [Int](repeating: 0, count: batch.count)
                for _ in 0 ..< nb {
                    var offA = 0, offB = 0
                    for d in 0 ..< batch.count { offA += idx[d] * sa[d]; offB += idx[d] * sb[d] }
                    offsets.append((offA * m * k, offB * k * n))
                    var d = batch.count - 1
                    while d >= 0 { idx[d] += 1; if idx[d] < batch[d] { break }; idx[d] = 0; d -= 1 }
                }
                if nb == 1 {
                    parallelSgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, a: pa + offsets[0].0,
                                  lda: transposeA ? m : k, b: pb + offsets[0].1, ldb: transposeB ? k : n, c: c, ldc: n)
                    return
                }
                let out = SharedPointer(c), ca = ConstPointer(pa), cb = ConstPointer(pb)
                offsets.withUnsafeBufferPointer { op in
                    let offs = ConstPairs(op.baseAddress!)
                    Parallel.forEach(nb, cost: m * n * k) { range in
                        for i in range {
                            sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                                  a: ca.base + offs.base[i].0, lda: transposeA ? m : k,
                                  b: cb.base + offs.base[i].1, ldb: transposeB ? k : n,
                                  c: out.base + i * m * n, ldc: n)
                        }
                    }
                }
            }
        }
    }
}
