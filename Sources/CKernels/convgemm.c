/* Convolution as a product with the im2col matrix, built 24 output pixels at a time ("implicit gemm").

   OpenBLAS multiplies the weights by an im2col matrix that the engine first writes out and that sgemm then
   copies again into its own packed layout; for the narrow convs of a detector's first stages (16-64 output
   channels, few input channels) those two passes over the big operand cost as much as the arithmetic.
   Here the im2col columns of 24 output pixels are written straight into the layout the micro-kernel
   reads (K rows of 24 floats, in L1/L2), or read where they lie in the input when they can be (see
   ck_interior_panel), and a 4 x 24 register block (12 accumulators) runs over all K for each group of four
   output channels, then adds the bias and applies the activation in registers before its stores. */
#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CK_AVX2 __attribute__((target("avx2,fma")))
#include "simd_math.h"

#define CK_BLOCK_PANELS 16                       /* panels filled together, at most */
#define CK_MAX_SEGMENTS (CK_BLOCK_PANELS * 25)   /* each panel: at most 24 runs, plus one */
#define CK_MAX_RUNS 1024

long ck_conv_block_panels(long k) {
    long nb = (48L * 1024) / (k > 0 ? k * 24 : 24);   /* about 192 KB of panels */
    return nb < 1 ? 1 : nb > CK_BLOCK_PANELS ? CK_BLOCK_PANELS : nb;
}

/* The same for the AVX-512 kernel, which takes the panels two at a time: an even number. */
long ck_conv_block_panels_avx512(long k) {
    const long nb = ck_conv_block_panels(k);
    return nb < 2 ? 2 : nb / 2 * 2;
}

void ck_pack_weights4(const float *w, long m, long k, float *ap) {
    for (long o0 = 0; o0 < m; o0 += 4) {
        float *dst = ap + o0 * k;
        for (long i = 0; i < k; i++) {
            for (long r = 0; r < 4; r++) dst[i * 4 + r] = o0 + r < m ? w[(o0 + r) * k + i] : 0.0f;
        }
    }
}

/* One run of output pixels inside one output row and one panel: lanes lane ..< lane + count of panel
   `panel`, output row i, output columns j ..< j + count. */
typedef struct { long panel, lane, i, j, count; } ck_segment;

/* For one segment and one kernel column: the first input column x0, and the lanes lo ..< hi whose input
   column lies inside the row (the others read padding). */
typedef struct { long x0, lo, hi; } ck_run;

static inline CK_AVX2 void ck_zero(float *dst, long n) {
    long t = 0;
    for (; t + 8 <= n; t += 8) _mm256_storeu_ps(dst + t, _mm256_setzero_ps());
    for (; t < n; t++) dst[t] = 0.0f;
}

/* dst[t] = row[x0 + t * sw] for lo <= t < hi, 0 for the other t < n; `avail` floats are readable from row. */
static inline CK_AVX2 void ck_copy_run(float *dst, const float *row, ck_run r, long n, long sw, long avail) {
    ck_zero(dst, r.lo);
    const float *src = row + r.x0;
    long t = r.lo;
    if (sw == 1) {
        for (; t + 8 <= r.hi; t += 8) _mm256_storeu_ps(dst + t, _mm256_loadu_ps(src + t));
        for (; t < r.hi; t++) dst[t] = src[t];
    } else if (sw == 2) {
        /* the even lanes of src[2t ..< 2t + 16], while those 16 floats are readable */
        for (; t + 8 <= r.hi && r.x0 + 2 * t + 16 <= avail; t += 8) {
            __m256 a = _mm256_loadu_ps(src + 2 * t), b = _mm256_loadu_ps(src + 2 * t + 8);
            __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
            _mm256_storeu_ps(dst + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
        }
        for (; t < r.hi; t++) dst[t] = src[2 * t];
    } else {
        for (; t < r.hi; t++) dst[t] = src[t * sw];
    }
    ck_zero(dst + r.hi, n - r.hi);
}


static inline ck_run ck_make_run(const ck_conv_geom *g, const ck_segment *s, long kj) {
    const long sw = g->sw, x0 = s->j * sw + kj * g->dw - g->pw, n = s->count;
    long lo = x0 < 0 ? (-x0 + sw - 1) / sw : 0;
    long hi = g->w - 1 - x0 < 0 ? 0 : (g->w - 1 - x0) / sw + 1;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi < lo) hi = lo;
    return (ck_run){x0, lo, hi};
}

/* The im2col columns of output pixels q0 ..< q0 + nv into panels of 24 lanes, panel[p][k][24] (the lanes
   past nv zero). Row by row of the im2col matrix, so the input is read in long runs; everything that depends
   only on the output pixel and the kernel column is worked out once per call. */
static CK_AVX2 void ck_fill_panels(const float *x, const ck_conv_geom *g, long q0, long nv, const char *skip,
                                   float *panel) {
    ck_segment seg[CK_MAX_SEGMENTS];
    long nseg = 0;
    for (long lane = 0, q = q0; lane < nv;) {
        const long i = q / g->out_w, j = q % g->out_w, in_panel = lane % 24;
        long count = g->out_w - j;
        if (count > nv - lane) count = nv - lane;
        if (count > 24 - in_panel) count = 24 - in_panel;
        if (!skip || !skip[lane / 24]) seg[nseg++] = (ck_segment){lane / 24, in_panel, i, j, count};
        lane += count; q += count;
    }
    ck_run runs[CK_MAX_RUNS];
    const long kw = g->kw, k = g->cin * g->kh * kw;
    const int table = nseg * kw <= CK_MAX_RUNS;
    for (long s = 0; table && s < nseg; s++) {
        for (long kj = 0; kj < kw; kj++) runs[s * kw + kj] = ck_make_run(g, &seg[s], kj);
    }
    const long plane = g->h * g->w, tail = nv % 24, last = nv / 24;
    /* The input rows of the next call's first output row are prefetched while this one is filled: the
       panels read many rows (channels x kernel rows) a little at a time, too many streams for the
       hardware prefetcher, and each new line would otherwise be a miss at full latency. */
    const long qn = q0 + nv, in = qn / g->out_w, jn = qn % g->out_w;
    const int ahead = in < g->out_h;
    long xa = jn * g->sw - g->pw, xb = (jn + nv) * g->sw + (kw - 1) * g->dw - g->pw;
    if (xa < 0) xa = 0;
    if (xb > g->w) xb = g->w;
    long r = 0;
    for (long c = 0; c < g->cin; c++) {
        const float *src = x + c * plane;
        for (long ki = 0; ki < g->kh; ki++) {
            const long yn = in * g->sh + ki * g->dh - g->ph;
            if (ahead && yn >= 0 && yn < g->h) {
                for (long t = xa; t < xb; t += 16) _mm_prefetch((const char *)(src + yn * g->w + t), _MM_HINT_T0);
            }
            for (long kj = 0; kj < kw; kj++, r++) {
                float *row = panel + r * 24;
                for (long s = 0; s < nseg; s++) {
                    float *dst = row + seg[s].panel * k * 24 + seg[s].lane;
                    const long y = seg[s].i * g->sh + ki * g->dh - g->ph;
                    if (y < 0 || y >= g->h) {
                        ck_zero(dst, seg[s].count);
                        continue;
                    }
                    ck_copy_run(dst, src + y * g->w, table ? runs[s * kw + kj] : ck_make_run(g, &seg[s], kj),
                                seg[s].count, g->sw, (g->h - y) * g->w);
                }
                if (tail) ck_zero(row + last * k * 24 + tail, 24 - tail);
            }
        }
    }
}

/* out rows 0 ..< rows (rows <= 4), columns 0 ..< cols (cols <= 24) = bias + a (k x 4 panel) * b (k rows of 24
   floats, ldb apart). */
static inline CK_AVX2 void ck_kernel_4x24(long k, const float *a, const float *b, long ldb, const long *off,
                                          const float *bias, int act, long rows, float *out, long ldo, long cols) {
    /* The accumulators start at zero and the bias is added after the loop: started from the same bias
       register, clang coalesces them and rotates registers through the loop (with a spill). */
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
    /* The loop is written out in assembly: with 12 accumulators, 3 panel vectors and a broadcast it needs
       all 16 vector registers, and clang's register allocation rotates values through them (with a spill)
       at a third of the speed. */
#define CK_FMA_ROWS                                              \
    "vbroadcastss (%[a]), %%ymm15\n\t"                           \
    "vfmadd231ps %%ymm12, %%ymm15, %[c00]\n\t"                   \
    "vfmadd231ps %%ymm13, %%ymm15, %[c01]\n\t"                   \
    "vfmadd231ps %%ymm14, %%ymm15, %[c02]\n\t"                   \
    "vbroadcastss 4(%[a]), %%ymm15\n\t"                          \
    "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"                   \
    "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"                   \
    "vfmadd231ps %%ymm14, %%ymm15, %[c12]\n\t"                   \
    "vbroadcastss 8(%[a]), %%ymm15\n\t"                          \
    "vfmadd231ps %%ymm12, %%ymm15, %[c20]\n\t"                   \
    "vfmadd231ps %%ymm13, %%ymm15, %[c21]\n\t"                   \
    "vfmadd231ps %%ymm14, %%ymm15, %[c22]\n\t"                   \
    "vbroadcastss 12(%[a]), %%ymm15\n\t"                         \
    "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"                   \
    "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"                   \
    "vfmadd231ps %%ymm14, %%ymm15, %[c32]\n\t"                   \
    "add $16, %[a]\n\t"
#define CK_ACCUMULATORS                                                                                       \
    [c00] "+x"(c00), [c01] "+x"(c01), [c02] "+x"(c02), [c10] "+x"(c10), [c11] "+x"(c11), [c12] "+x"(c12),     \
    [c20] "+x"(c20), [c21] "+x"(c21), [c22] "+x"(c22), [c30] "+x"(c30), [c31] "+x"(c31), [c32] "+x"(c32)
    long n = k;
    if (n > 0 && off) {
        /* row i of the right side at b + off[i] (a conv's taps read in place) */
        __asm__ volatile(
            "1:\n\t"
            "mov (%[off]), %%rax\n\t"
            "vmovups (%[b],%%rax,4), %%ymm12\n\t"
            "vmovups 32(%[b],%%rax,4), %%ymm13\n\t"
            "vmovups 64(%[b],%%rax,4), %%ymm14\n\t"
            CK_FMA_ROWS
            "add $8, %[off]\n\t"
            "dec %[n]\n\t"
            "jnz 1b\n\t"
            : [a] "+r"(a), [off] "+r"(off), [n] "+r"(n), CK_ACCUMULATORS
            : [b] "r"(b)
            : "rax", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    } else if (n > 0) {
        const long ldb_bytes = ldb * (long)sizeof(float);
        __asm__ volatile(
            "1:\n\t"
            "vmovups (%[b]), %%ymm12\n\t"
            "vmovups 32(%[b]), %%ymm13\n\t"
            "vmovups 64(%[b]), %%ymm14\n\t"
            CK_FMA_ROWS
            "add %[ldb], %[b]\n\t"
            "dec %[n]\n\t"
            "jnz 1b\n\t"
            : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n), CK_ACCUMULATORS
            : [ldb] "r"(ldb_bytes)
            : "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    }
#undef CK_FMA_ROWS
#undef CK_ACCUMULATORS
    if (bias) {
        __m256 v = _mm256_set1_ps(bias[0]);
        c00 = _mm256_add_ps(c00, v); c01 = _mm256_add_ps(c01, v); c02 = _mm256_add_ps(c02, v);
        v = _mm256_set1_ps(rows > 1 ? bias[1] : 0.0f);
        c10 = _mm256_add_ps(c10, v); c11 = _mm256_add_ps(c11, v); c12 = _mm256_add_ps(c12, v);
        v = _mm256_set1_ps(rows > 2 ? bias[2] : 0.0f);
        c20 = _mm256_add_ps(c20, v); c21 = _mm256_add_ps(c21, v); c22 = _mm256_add_ps(c22, v);
        v = _mm256_set1_ps(rows > 3 ? bias[3] : 0.0f);
        c30 = _mm256_add_ps(c30, v); c31 = _mm256_add_ps(c31, v); c32 = _mm256_add_ps(c32, v);
    }
    if (act >= 0) {
#define CK_ACT(v) v = act == 3 ? ck_relu8(v) : ck_act8(v, act)
        CK_ACT(c00); CK_ACT(c01); CK_ACT(c02); CK_ACT(c10); CK_ACT(c11); CK_ACT(c12);
        CK_ACT(c20); CK_ACT(c21); CK_ACT(c22); CK_ACT(c30); CK_ACT(c31); CK_ACT(c32);
#undef CK_ACT
    }
    if (rows == 4 && cols == 24) {
        _mm256_storeu_ps(out, c00); _mm256_storeu_ps(out + 8, c01); _mm256_storeu_ps(out + 16, c02);
        out += ldo;
        _mm256_storeu_ps(out, c10); _mm256_storeu_ps(out + 8, c11); _mm256_storeu_ps(out + 16, c12);
        out += ldo;
        _mm256_storeu_ps(out, c20); _mm256_storeu_ps(out + 8, c21); _mm256_storeu_ps(out + 16, c22);
        out += ldo;
        _mm256_storeu_ps(out, c30); _mm256_storeu_ps(out + 8, c31); _mm256_storeu_ps(out + 16, c32);
        return;
    }
    float t[4][24];
    _mm256_storeu_ps(t[0], c00); _mm256_storeu_ps(t[0] + 8, c01); _mm256_storeu_ps(t[0] + 16, c02);
    _mm256_storeu_ps(t[1], c10); _mm256_storeu_ps(t[1] + 8, c11); _mm256_storeu_ps(t[1] + 16, c12);
    _mm256_storeu_ps(t[2], c20); _mm256_storeu_ps(t[2] + 8, c21); _mm256_storeu_ps(t[2] + 16, c22);
    _mm256_storeu_ps(t[3], c30); _mm256_storeu_ps(t[3] + 8, c31); _mm256_storeu_ps(t[3] + 16, c32);
    for (long r = 0; r < rows; r++) memcpy(out + r * ldo, t[r], (size_t)cols * sizeof(float));
}


/* The AVX-512 micro-kernel: out rows 0 ..< rows (rows <= 8), columns 0 ..< cols (cols <= 48) = act(alpha a (k x 8) * b
   (k rows of 48 floats) + beta out + bias), an 8 x 48 register block (24 zmm accumulators of the 32 registers, three panel vectors and
   a broadcast), from the operands the AVX2 kernel reads, unchanged: the 8 rows are two 4-row weight panels (a0, a1;
   a1 = a0 when rows <= 4) and the 48 columns two 24-wide panels (b0, b1; b1 = b0 when cols <= 24), row i of each at
   + off[i] (taps read in place) or + i * ldb. Lanes 16 ..< 32 straddle the panels: the last 8 floats of b0's row and
   the first 8 of b1's, one load with an insert. */
static CK_AVX512 __attribute__((noinline)) void ck_kernel_8x48(long k, const float *a0, const float *a1,
                                                               const float *b0, const float *b1, long ldb,
                                                               const long *off, const float *bias, int act, long rows,
                                                               float *out, long ldo, long cols, float alpha,
                                                               float beta, const float *col_bias) {
    /* Every loop over the 24 accumulators is unrolled in full (constant bounds, no early exit), so that they stay in
       registers: with a `break` on `rows` in the epilogue clang kept them in a stack array, zeroed by a memset call
       and stored and reloaded around the K loop on every call (2% of yolov8n's time in memset alone). */
    __m512 c[8][3];
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++)
#pragma clang loop unroll(full)
        for (int v = 0; v < 3; v++) c[r][v] = _mm512_setzero_ps();
#define CK_STEP(o)                                                                                                  \
    do {                                                                                                            \
        const float *p0 = b0 + (o), *p1 = b1 + (o);                                                                 \
        const __m512 x0 = _mm512_loadu_ps(p0);                                                                      \
        const __m512 x1 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p0 + 16)), _mm256_loadu_ps(p1), 1); \
        const __m512 x2 = _mm512_loadu_ps(p1 + 8);                                                                  \
        for (int r = 0; r < 8; r++) {                                                                               \
            const __m512 s = _mm512_set1_ps(r < 4 ? a0[r] : a1[r - 4]);                                             \
            c[r][0] = _mm512_fmadd_ps(x0, s, c[r][0]);                                                              \
            c[r][1] = _mm512_fmadd_ps(x1, s, c[r][1]);                                                              \
            c[r][2] = _mm512_fmadd_ps(x2, s, c[r][2]);                                                              \
        }                                                                                                           \
        a0 += 4; a1 += 4;                                                                                           \
    } while (0)
    if (off) {
        for (long i = 0; i < k; i++) CK_STEP(off[i]);
    } else {
        for (long i = 0; i < k; i++) CK_STEP(i * ldb);
    }
#undef CK_STEP
    const __mmask16 m0 = ck_lanes16(cols), m1 = ck_lanes16(cols - 16), m2 = ck_lanes16(cols - 32);
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++) {
        if (r >= rows) continue;
        const __m512 b = _mm512_set1_ps(bias ? bias[r] : 0.0f);
#pragma clang loop unroll(full)
        for (int v = 0; v < 3; v++) {
            __m512 x = c[r][v];
            if (alpha != 1.0f) x = _mm512_mul_ps(x, _mm512_set1_ps(alpha));
            if (beta != 0.0f)
                x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(v == 0 ? m0 : v == 1 ? m1 : m2, out + r * ldo + 16 * v),
                                    _mm512_set1_ps(beta), x);
            x = _mm512_add_ps(x, b);
            if (col_bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(v == 0 ? m0 : v == 1 ? m1 : m2, col_bias + 16 * v));
            if (act == 3) x = ck_relu16(x);
            else if (act >= 0) x = ck_act16(x, act);
            c[r][v] = x;
        }
        float *o = out + r * ldo;
        if (cols == 48) {
            _mm512_storeu_ps(o, c[r][0]); _mm512_storeu_ps(o + 16, c[r][1]); _mm512_storeu_ps(o + 32, c[r][2]);
        } else {
            _mm512_mask_storeu_ps(o, m0, c[r][0]);
            _mm512_mask_storeu_ps(o + 16, m1, c[r][1]);
            _mm512_mask_storeu_ps(o + 32, m2, c[r][2]);
        }
    }
}

/* One tile of the product for the drivers below: rows o ..< o + (wide ? 8 : 4) (at most m) of the weights packed by
   ck_pack_weights4 (ap, k columns), times one panel b0 (cols <= 24) or, with `wide` (the AVX-512 kernel), two
   adjacent panels b0 and b1 (cols <= 48; b1 = b0 for one), written to out (rows ldo apart). */
static inline CK_AVX2 void ck_tile(int wide, long k, const float *ap, long o, long m, const float *b0, const float *b1,
                                   long ldb, const long *off, const float *bias, int act, float *out, long ldo, long cols) {
    const long rows = m - o < (wide ? 8 : 4) ? m - o : (wide ? 8 : 4);
    if (wide) {
        ck_kernel_8x48(k, ap + o * k, rows > 4 ? ap + (o + 4) * k : ap + o * k, b0, b1, ldb, off, bias ? bias + o : 0,
                       act, rows, out + o * ldo, ldo, cols, 1.0f, 0.0f, 0);
    } else {
        ck_kernel_4x24(k, ap + o * k, b0, ldb, off, bias ? bias + o : 0, act, rows, out + o * ldo, ldo, cols);
    }
}


/* C (m x n, ldc) = alpha op(A) op(B) + beta C, op(X) = X or its transpose, as cblas_sgemm row-major, on one thread,
   by the AVX-512 micro-kernel: K in blocks of CK_GEMM_KC, each block's op(B) packed into panels of 24 columns
   (kc x 24, zero past n) once and op(A) in blocks of CK_GEMM_MC rows packed by fours (zero past m), then every
   pair of panels of B (48 columns, kept in L1) runs down the block's rows eight at a time (A's block in L2). The
   first K block applies beta, the others add. */
#define CK_GEMM_KC 192
#define CK_GEMM_MC 144

/* Eight floats of each of four rows (r[0 ..< 4], each from its own pointer) stored as eight groups of four:
   dst[4 i + t] = r[t][i] (a 4 x 8 transpose). */
static inline CK_AVX2 void ck_transpose4x8(const float *r0, const float *r1, const float *r2, const float *r3,
                                           float *dst) {
    const __m256 a = _mm256_loadu_ps(r0), b = _mm256_loadu_ps(r1), c = _mm256_loadu_ps(r2), d = _mm256_loadu_ps(r3);
    const __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
    const __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
    _mm256_storeu_ps(dst + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(dst + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
}

/* Rows m0 ..< m0 + rows, columns p0 ..< p0 + kc of op(A) into panels of four rows, ap [ceil(rows / 4)][kc][4] (rows
   past the end zero). */
static inline CK_AVX2 void ck_pack_a4(int trans, const float *a, long lda, long m0, long rows, long p0, long kc,
                                      float *ap) {
    for (long o0 = 0; o0 < rows; o0 += 4) {
        float *dst = ap + o0 * kc;
        long i = 0;
        if (!trans && o0 + 4 <= rows) {
            const float *r = a + (m0 + o0) * lda + p0;
            for (; i + 8 <= kc; i += 8) ck_transpose4x8(r + i, r + lda + i, r + 2 * lda + i, r + 3 * lda + i, dst + 4 * i);
        } else if (trans && o0 + 4 <= rows) {
            /* op(A)[row][col] = a[col * lda + row]: four consecutive floats of one line of a */
            for (; i < kc; i++) _mm_storeu_ps(dst + 4 * i, _mm_loadu_ps(a + (p0 + i) * lda + m0 + o0));
        }
        for (; i < kc; i++) {
            for (long r = 0; r < 4; r++) {
                const long row = m0 + o0 + r, col = p0 + i;
                dst[i * 4 + r] = o0 + r < rows ? (trans ? a[col * lda + row] : a[row * lda + col]) : 0.0f;
            }
        }
    }
}

static inline CK_AVX2 void ck_pack_b24(int trans, const float *b, long ldb, long n, long p0, long kc, float *bp) {
    const long panels = (n + 23) / 24;
    for (long p = 0; p < panels; p++) {
        const long j0 = p * 24, cols = n - j0 < 24 ? n - j0 : 24;
        float *dst = bp + p * kc * 24;
        if (!trans) {
            for (long i = 0; i < kc; i++) {
                const float *src = b + (p0 + i) * ldb + j0;
                if (cols == 24) {
                    _mm256_storeu_ps(dst + i * 24, _mm256_loadu_ps(src));
                    _mm256_storeu_ps(dst + i * 24 + 8, _mm256_loadu_ps(src + 8));
                    _mm256_storeu_ps(dst + i * 24 + 16, _mm256_loadu_ps(src + 16));
                } else {
                    for (long j = 0; j < 24; j++) dst[i * 24 + j] = j < cols ? src[j] : 0.0f;
                }
            }
        } else if (cols == 24) {
            /* op(B)[i][j] = b[j * ldb + i]: row j of b gives column j of the panel, four rows at a time */
            long i = 0;
            for (; i + 8 <= kc; i += 8) {
                for (long j = 0; j < 24; j += 4) {
                    float t[32];
                    const float *r = b + (j0 + j) * ldb + p0 + i;
                    ck_transpose4x8(r, r + ldb, r + 2 * ldb, r + 3 * ldb, t);
                    for (long q = 0; q < 8; q++) _mm_storeu_ps(dst + (i + q) * 24 + j, _mm_loadu_ps(t + 4 * q));
                }
            }
            for (; i < kc; i++)
                for (long j = 0; j < 24; j++) dst[i * 24 + j] = b[(j0 + j) * ldb + p0 + i];
        } else {
            for (long j = 0; j < 24; j++) {
                const float *src = b + (j0 + j) * ldb + p0;
                if (j < cols) {
                    for (long i = 0; i < kc; i++) dst[i * 24 + j] = src[i];
                } else {
                    for (long i = 0; i < kc; i++) dst[i * 24 + j] = 0.0f;
                }
            }
        }
    }
}

CK_AVX2 void ck_sgemm_avx512(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                             const float *b, long ldb, float beta, float *c, long ldc) {
    ck_sgemm_bias_avx512(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0);
}

CK_AVX2 void ck_sgemm_bias_avx512(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                                  const float *b, long ldb, float beta, float *c, long ldc, const float *col_bias) {
    if (m <= 0 || n <= 0) return;
    const long panels = (n + 23) / 24;
    const long kc_max = k < CK_GEMM_KC ? (k > 0 ? k : 1) : CK_GEMM_KC;
    float *bp = malloc((size_t)(panels * 24 * kc_max) * sizeof(float));
    float *ap = malloc((size_t)(((CK_GEMM_MC + 3) / 4 * 4) * kc_max) * sizeof(float));
    if (k <= 0) {
        /* no products: C = beta C */
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++)
                c[i * ldc + j] = (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]) + (col_bias ? col_bias[j] : 0.0f);
    }
    for (long p0 = 0; p0 < k; p0 += CK_GEMM_KC) {
        const long kc = k - p0 < CK_GEMM_KC ? k - p0 : CK_GEMM_KC;
        const float bt = p0 == 0 ? beta : 1.0f;
        /* the column bias with the last block's products */
        const float *cb = p0 + kc >= k ? col_bias : 0;
        ck_pack_b24(trans_b, b, ldb, n, p0, kc, bp);
        for (long m0 = 0; m0 < m; m0 += CK_GEMM_MC) {
            const long mc = m - m0 < CK_GEMM_MC ? m - m0 : CK_GEMM_MC;
            ck_pack_a4(trans_a, a, lda, m0, mc, p0, kc, ap);
            for (long p = 0; p < panels; p += 2) {
                const long j0 = p * 24, cols = n - j0 < 48 ? n - j0 : 48;
                const float *b0 = bp + p * kc * 24, *b1 = p + 1 < panels ? b0 + kc * 24 : b0;
                for (long o = 0; o < mc; o += 8) {
                    const long rows = mc - o < 8 ? mc - o : 8;
                    ck_kernel_8x48(kc, ap + o * kc, rows > 4 ? ap + (o + 4) * kc : ap + o * kc, b0, b1, 24, 0, 0, -1,
                                   rows, c + (m0 + o) * ldc + j0, ldc, cols, alpha, bt, cb ? cb + j0 : 0);
                }
            }
        }
    }
    free(ap);
    free(bp);
}

/* Whether the 24 output pixels from q (stride 1 along rows) lie in one output row with every tap of theirs inside the
   input, and can be read in place: row r of their im2col columns is then x + base + off[r]. */
static inline long ck_interior_panel(const ck_conv_geom *g, long q, long cols, long *base) {
    if (cols != 24 || g->sw != 1) return 0;
    const long i = q / g->out_w, j = q % g->out_w;
    if (j + 24 > g->out_w) return 0;
    const long y0 = i * g->sh - g->ph, x0 = j - g->pw;
    if (y0 < 0 || y0 + (g->kh - 1) * g->dh >= g->h || x0 < 0 || x0 + 23 + (g->kw - 1) * g->dw >= g->w) return 0;
    *base = y0 * g->w + x0;
    return 1;
}

/* The drivers take `wide`: 0 runs the AVX2 kernel (4 x 24), 1 the AVX-512 one (8 x 48, two panels at a time). */
static inline CK_AVX2 void ck_conv_panels(int wide, const float *x, const ck_conv_geom *g, const float *ap, long m,
                                          const float *bias, int act, float *out, long p0, long p1, float *panel) {
    const long k = g->cin * g->kh * g->kw, ldo = g->out_h * g->out_w;
    const long block = (wide ? ck_conv_block_panels_avx512(k) : ck_conv_block_panels(k)) * 24;
    long *off = g->sw == 1 ? malloc((size_t)k * sizeof(long)) : 0;
    if (off) {
        long r = 0;
        for (long c = 0; c < g->cin; c++)
            for (long ki = 0; ki < g->kh; ki++)
                for (long kj = 0; kj < g->kw; kj++) off[r++] = c * g->h * g->w + ki * g->dh * g->w + kj * g->dw;
    }
    char skip[CK_BLOCK_PANELS];
    long base[CK_BLOCK_PANELS];
    for (long q0 = p0; q0 < p1; q0 += block) {
        const long nv = p1 - q0 < block ? p1 - q0 : block;
        long direct_panels = 0;
        for (long q = 0; q < nv; q += 24) {
            const long cols = nv - q < 24 ? nv - q : 24;
            skip[q / 24] = (char)(off && ck_interior_panel(g, q0 + q, cols, &base[q / 24]));
            direct_panels += skip[q / 24];
        }
        if (direct_panels * 24 < nv) ck_fill_panels(x, g, q0, nv, skip, panel);
        /* Output channels outside, panels inside: each output row gets the block's pixels in one run of whole
           cache lines (panel by panel, the 4 x 24 stores of many rows a plane apart evict each other's
           partly written lines when planes are a multiple of 4 KB). */
        for (long o = 0; o < m; o += wide ? 8 : 4) {
            for (long q = 0; q < nv;) {
                const long p = q / 24;
                /* two panels when wide and both are read the same way (in place or from the panel buffer) */
                const int pair = wide && q + 24 < nv && skip[p] == skip[p + 1];
                const long cols = nv - q < (pair ? 48 : 24) ? nv - q : (pair ? 48 : 24);
                const int direct = skip[p];
                const float *b0 = direct ? x + base[p] : panel + p * k * 24;
                const float *b1 = !pair ? b0 : direct ? x + base[p + 1] : panel + (p + 1) * k * 24;
                ck_tile(wide, k, ap, o, m, b0, b1, 24, direct ? off : 0, bias, act, out + q0 + q, ldo, cols);
                q += pair ? 48 : 24;
            }
        }
    }
    free(off);
}

CK_AVX2 void ck_conv_panels_avx2(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                                 int act, float *out, long p0, long p1, float *panel) {
    ck_conv_panels(0, x, g, ap, m, bias, act, out, p0, p1, panel);
}

CK_AVX2 void ck_conv_panels_avx512(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                                   int act, float *out, long p0, long p1, float *panel) {
    ck_conv_panels(1, x, g, ap, m, bias, act, out, p0, p1, panel);
}

/* Padded input row Y (input row Y - ph, zero outside the plane and its columns) split by column parity:
   e[t] = P[2t], o[t] = P[2t + 1] for t < ld, P[k] = row[k - pw]. */
static inline CK_AVX2 void ck_band_row(const float *x, const ck_conv_geom *g, long c, long Y, long ld, float *e,
                                       float *o) {
    const long y = Y - g->ph;
    if (y < 0 || y >= g->h) {
        ck_zero(e, ld);
        ck_zero(o, ld);
        return;
    }
    const float *row = x + (c * g->h + y) * g->w;
    const long pw = g->pw, w = g->w;
    long t = 0;
    /* scalar until P[2t] is inside the row, vectors while P[2t .. 2t + 15] is, scalar after */
    for (; t < ld && 2 * t - pw < 0; t++) {
        e[t] = 0.0f;
        o[t] = 2 * t + 1 - pw >= 0 && 2 * t + 1 - pw < w ? row[2 * t + 1 - pw] : 0.0f;
    }
    for (; t + 8 <= ld && 2 * t - pw + 16 <= w; t += 8) {
        const __m256 a = _mm256_loadu_ps(row + 2 * t - pw), b = _mm256_loadu_ps(row + 2 * t - pw + 8);
        _mm256_storeu_ps(e + t, ck_in_order(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))));
        _mm256_storeu_ps(o + t, ck_in_order(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
    }
    for (; t < ld; t++) {
        const long k = 2 * t - pw;
        e[t] = k < w ? row[k] : 0.0f;
        o[t] = k + 1 < w ? row[k + 1] : 0.0f;
    }
}

/* Row bands: output rows in bands of `rows`, each band's input copied once (zero padding included) into
   sub-planes whose rows are as long as a row of a grid of output pixels, L = out_w + (kw - 1) / s wide (s = the
   stride, 1 or 2; stride 2 splits the padded input by row and column parity, so that every tap reads stride 1).
   Output pixel (i, j) of the band is lane i * L + j of the grid, and tap (c, ki, kj) of lane q is
   sub-plane (c, ki % s, kj % s) at row ki / s, column kj / s, plus q: one offset per tap, so every panel of 24
   lanes reads in place, across output rows (a 48-lane tile covers 1.2 rows of 40 instead of one row and a mostly
   empty panel). The last (kw - 1) / s lanes of each grid row are not output pixels: tiles that hold them, or that
   cross a row, are written to a scratch tile and their output pixels copied out. */
long ck_bands_ld(const ck_conv_geom *g) { return g->out_w + (g->kw - 1) / g->sw; }

long ck_bands_floats(const ck_conv_geom *g, long rows) {
    const long s = g->sw;
    return g->cin * s * s * (rows + (g->kh - 1) / s) * ck_bands_ld(g) + 64;
}

long ck_bands_rows(const ck_conv_geom *g, long part_rows, int wide, long budget) {
    const long s = g->sw, L = ck_bands_ld(g), step = wide ? 48 : 24, per_row = g->cin * s * s * L;
    long most = budget / (per_row > 0 ? per_row : 1);
    if (most > part_rows) most = part_rows;
    if (most < 1) most = 1;
    long best = 1, best_tiles = -1;
    for (long r = 1; r <= most; r++) {
        /* tiles over the part's rows in bands of r (the last band shorter): fewest, then the longest bands */
        const long full = part_rows / r, rest = part_rows % r;
        const long tiles = full * ((r * L + step - 1) / step) + (rest * L + step - 1) / step;
        if (best_tiles < 0 || tiles <= best_tiles) {
            best = r;
            best_tiles = tiles;
        }
    }
    return best;
}

/* Padded input row Y (input row Y - ph; zeros outside the plane) of channel c, columns 0 ..< ld, stride 1. */
static inline CK_AVX2 void ck_padded_row(const float *x, const ck_conv_geom *g, long c, long Y, long ld, float *dst) {
    const long y = Y - g->ph;
    if (y < 0 || y >= g->h) {
        ck_zero(dst, ld);
        return;
    }
    const float *row = x + (c * g->h + y) * g->w;
    const long pw = g->pw, n = g->w < ld - pw ? g->w : ld - pw;
    ck_zero(dst, pw < ld ? pw : ld);
    if (n > 0) memcpy(dst + pw, row, (size_t)n * sizeof(float));
    if (pw + n < ld) ck_zero(dst + pw + (n > 0 ? n : 0), ld - pw - (n > 0 ? n : 0));
}

static inline CK_AVX2 void ck_conv_bands(int wide, const float *x, const ck_conv_geom *g, const float *ap, long m,
                                         const float *bias, int act, float *out, long i0, long i1, long rows,
                                         float *band) {
    const long s = g->sw, L = ck_bands_ld(g), k = g->cin * g->kh * g->kw, ow = g->out_w, plane = g->out_h * ow;
    const long rr = rows + (g->kh - 1) / s, sub = rr * L, step = wide ? 48 : 24, mr = wide ? 8 : 4;
    /* lanes past a band's last grid row (the last tile's) read up to 64 floats past the sub-planes: all zero once */
    memset(band, 0, (size_t)ck_bands_floats(g, rows) * sizeof(float));
    long *off = malloc((size_t)k * sizeof(long));
    long r = 0;
    for (long c = 0; c < g->cin; c++)
        for (long ki = 0; ki < g->kh; ki++)
            for (long kj = 0; kj < g->kw; kj++) off[r++] = ((c * s + ki % s) * s + kj % s) * sub + ki / s * L + kj / s;
    float tile[8 * 48];
    for (long b0 = i0; b0 < i1; b0 += rows) {
        const long nr = i1 - b0 < rows ? i1 - b0 : rows, filled = nr + (g->kh - 1) / s, lanes = nr * L;
        for (long c = 0; c < g->cin; c++) {
            for (long a = 0; a < s; a++) {
                float *dst = band + (c * s + a) * s * sub;
                for (long ra = 0; ra < filled; ra++) {
                    const long Y = s * (b0 + ra) + a;
                    if (s == 1) ck_padded_row(x, g, c, Y, L, dst + ra * L);
                    else ck_band_row(x, g, c, Y, L, dst + ra * L, dst + sub + ra * L);
                }
            }
        }
        for (long o = 0; o < m; o += mr) {
            const long nrow = m - o < mr ? m - o : mr;
            for (long q = 0; q < lanes; q += step) {
                const long cols = lanes - q < step ? lanes - q : step, i = q / L, j = q % L;
                const float *b0p = band + q, *b1p = cols > 24 ? band + q + 24 : band + q;
                if (j + cols <= ow) {
                    ck_tile(wide, k, ap, o, m, b0p, b1p, 0, off, bias, act, out + (b0 + i) * ow + j, plane, cols);
                    continue;
                }
                ck_tile(wide, k, ap + o * k, 0, nrow, b0p, b1p, 0, off, bias ? bias + o : 0, act, tile, 48, cols);
                /* the tile's output pixels, row by row of the grid */
                for (long t = 0; t < cols;) {
                    const long qi = (q + t) / L, qj = (q + t) % L;
                    const long run = L - qj < cols - t ? L - qj : cols - t;
                    if (qj < ow) {
                        const long n = ow - qj < run ? ow - qj : run;
                        float *dst = out + o * plane + (b0 + qi) * ow + qj;
                        for (long rw = 0; rw < nrow; rw++)
                            memcpy(dst + rw * plane, tile + rw * 48 + t, (size_t)n * sizeof(float));
                    }
                    t += run;
                }
            }
        }
    }
    free(off);
}

CK_AVX2 void ck_conv_bands_avx2(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                                int act, float *out, long i0, long i1, long rows, float *band) {
    ck_conv_bands(0, x, g, ap, m, bias, act, out, i0, i1, rows, band);
}

CK_AVX2 void ck_conv_bands_avx512(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                                  int act, float *out, long i0, long i1, long rows, float *band) {
    ck_conv_bands(1, x, g, ap, m, bias, act, out, i0, i1, rows, band);
}

/* The 1x1 case needs no im2col: row k of the product's right side is input channel k. With `in_place` the
   kernel reads the input planes where they lie (best for few channels: each panel touches 2 lines a channel,
   and with many channels, or planes a multiple of 4 KB apart, those lines evict each other); otherwise, and
   always for the last, partial panel (reading it in place could run past the end of the input), the 24
   columns are copied into `panel` (ck_conv_block_panels(k) * k * 24 floats) first. As above, blocks of
   panels with the output channels outside. */
static inline CK_AVX2 void ck_conv1x1_panels(int wide, const float *x, const float *const *rows, long k, long plane,
                                             const float *ap, long m, const float *bias, int act, float *out, long p0,
                                             long p1, int in_place, float *panel) {
    const long block = (wide ? ck_conv_block_panels_avx512(k) : ck_conv_block_panels(k)) * 24;
    for (long q0 = p0; q0 < p1; q0 += block) {
        const long nv = p1 - q0 < block ? p1 - q0 : block;
        for (long q = 0; q < nv; q += 24) {
            const long cols = nv - q < 24 ? nv - q : 24;
            if (cols == 24 && in_place) continue;
            float *dst = panel + (q / 24) * k * 24;
            /* input channel i's pixels from q0 + q: a row of x, or of its own tensor (rows[i]) */
#define CK_ROW(i) (rows ? rows[i] + q0 + q : x + (i) * plane + q0 + q)
            if (cols == 24) {
                /* inline: a memcpy call per 96 bytes cost a fifth of the kernel's time (128->80 at 80x80) */
                for (long i = 0; i < k; i++, dst += 24) {
                    const float *src = CK_ROW(i);
                    _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
                    _mm256_storeu_ps(dst + 8, _mm256_loadu_ps(src + 8));
                    _mm256_storeu_ps(dst + 16, _mm256_loadu_ps(src + 16));
                }
                continue;
            }
            for (long i = 0; i < k; i++) {
                memcpy(dst + i * 24, CK_ROW(i), (size_t)cols * sizeof(float));
                ck_zero(dst + i * 24 + cols, 24 - cols);
            }
#undef CK_ROW
        }
        for (long o = 0; o < m; o += wide ? 8 : 4) {
            for (long q = 0; q < nv;) {
                const long c0 = nv - q < 24 ? nv - q : 24;
                const int here = c0 == 24 && in_place;
                /* a second panel when wide and read the same way (in place only when whole) */
                const int pair = wide && q + 24 < nv && (nv - q - 24 >= 24 && in_place) == here;
                const long cols = pair ? (nv - q < 48 ? nv - q : 48) : c0;
                const float *b0 = here ? x + q0 + q : panel + (q / 24) * k * 24;
                const float *b1 = !pair ? b0 : here ? b0 + 24 : panel + (q / 24 + 1) * k * 24;
                ck_tile(wide, k, ap, o, m, b0, b1, here ? plane : 24, 0, bias, act, out + q0 + q, plane, cols);
                q += pair ? 48 : 24;
            }
        }
    }
}

CK_AVX2 void ck_conv1x1_panels_avx2(const float *x, long k, long plane, const float *ap, long m, const float *bias,
                                    int act, float *out, long p0, long p1, int in_place, float *panel) {
    ck_conv1x1_panels(0, x, 0, k, plane, ap, m, bias, act, out, p0, p1, in_place, panel);
}

CK_AVX2 void ck_conv1x1_panels_avx512(const float *x, long k, long plane, const float *ap, long m, const float *bias,
                                      int act, float *out, long p0, long p1, int in_place, float *panel) {
    ck_conv1x1_panels(1, x, 0, k, plane, ap, m, bias, act, out, p0, p1, in_place, panel);
}

CK_AVX2 void ck_conv1x1_rows_avx2(const float *const *rows, long k, const float *ap, long m, const float *bias, int act,
                                  float *out, long plane, long p0, long p1, float *panel) {
    ck_conv1x1_panels(0, 0, rows, k, plane, ap, m, bias, act, out, p0, p1, 0, panel);
}

CK_AVX2 void ck_conv1x1_rows_avx512(const float *const *rows, long k, const float *ap, long m, const float *bias, int act,
                                    float *out, long plane, long p0, long p1, float *panel) {
    ck_conv1x1_panels(1, 0, rows, k, plane, ap, m, bias, act, out, p0, p1, 0, panel);
}

static inline CK_AVX2 void ck_wino_gemm(int wide, const float *u, const float *v, long cout, long cin, long tb, long o0,
                                        long o1, float *m) {
    const long cout4 = (cout + 3) / 4 * 4, panels = (tb + 23) / 24;
    for (long xi = 0; xi < 16; xi++) {
        const float *ux = u + xi * cout4 * cin, *vx = v + xi * panels * 24 * cin;
        float *mx = m + xi * cout * tb;
        for (long o = o0; o < o1; o += wide ? 8 : 4) {
            for (long p = 0; p < panels;) {
                const int pair = wide && p + 1 < panels;
                const long cols = tb - p * 24 < (pair ? 48 : 24) ? tb - p * 24 : (pair ? 48 : 24);
                const float *b0 = vx + p * cin * 24;
                ck_tile(wide, cin, ux, o, o1, b0, pair ? b0 + cin * 24 : b0, 24, 0, 0, -1, mx + p * 24, tb, cols);
                p += pair ? 2 : 1;
            }
        }
    }
}

CK_AVX2 void ck_wino_gemm_avx2(const float *u, const float *v, long cout, long cin, long tb, long o0, long o1, float *m) {
    ck_wino_gemm(0, u, v, cout, cin, tb, o0, o1, m);
}

CK_AVX2 void ck_wino_gemm_avx512(const float *u, const float *v, long cout, long cin, long tb, long o0, long o1, float *m) {
    ck_wino_gemm(1, u, v, cout, cin, tb, o0, o1, m);
}

#else


void ck_wino_gemm_avx2(const float *u, const float *v, long cout, long cin, long tb, long o0, long o1, float *m) {
    (void)u; (void)v; (void)cout; (void)cin; (void)tb; (void)o0; (void)o1; (void)m;
}

void ck_conv1x1_panels_avx2(const float *x, long k, long plane, const float *ap, long m, const float *bias,
                            int act, float *out, long p0, long p1, int in_place, float *panel) {
    (void)in_place; (void)x; (void)k; (void)plane; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)p0; (void)p1; (void)panel;
}
long ck_conv_block_panels(long k) { (void)k; return 1; }
long ck_conv_block_panels_avx512(long k) { (void)k; return 2; }
void ck_sgemm_avx512(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                     const float *b, long ldb, float beta, float *c, long ldc) {
    (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc;
}
void ck_sgemm_bias_avx512(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                          const float *b, long ldb, float beta, float *c, long ldc, const float *col_bias) {
    (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc; (void)col_bias;
}
void ck_conv_panels_avx512(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                           int act, float *out, long p0, long p1, float *panel) {
    (void)x; (void)g; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)p0; (void)p1; (void)panel;
}
void ck_conv1x1_panels_avx512(const float *x, long k, long plane, const float *ap, long m, const float *bias,
                              int act, float *out, long p0, long p1, int in_place, float *panel) {
    (void)in_place; (void)x; (void)k; (void)plane; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)p0; (void)p1; (void)panel;
}
void ck_conv1x1_rows_avx2(const float *const *rows, long k, const float *ap, long m, const float *bias, int act,
                          float *out, long plane, long p0, long p1, float *panel) {
    (void)rows; (void)k; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)plane; (void)p0; (void)p1; (void)panel;
}
void ck_conv1x1_rows_avx512(const float *const *rows, long k, const float *ap, long m, const float *bias, int act,
                            float *out, long plane, long p0, long p1, float *panel) {
    (void)rows; (void)k; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)plane; (void)p0; (void)p1; (void)panel;
}
long ck_bands_ld(const ck_conv_geom *g) { (void)g; return 0; }
long ck_bands_floats(const ck_conv_geom *g, long rows) { (void)g; (void)rows; return 0; }
long ck_bands_rows(const ck_conv_geom *g, long part_rows, int wide, long budget) {
    (void)g; (void)part_rows; (void)wide; (void)budget;
    return 1;
}
void ck_conv_bands_avx2(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                        int act, float *out, long i0, long i1, long rows, float *band) {
    (void)x; (void)g; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)i0; (void)i1; (void)rows; (void)band;
}
void ck_conv_bands_avx512(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                          int act, float *out, long i0, long i1, long rows, float *band) {
    (void)x; (void)g; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)i0; (void)i1; (void)rows; (void)band;
}
void ck_wino_gemm_avx512(const float *u, const float *v, long cout, long cin, long tb, long o0, long o1, float *m) {
    (void)u; (void)v; (void)cout; (void)cin; (void)tb; (void)o0; (void)o1; (void)m;
}
void ck_pack_weights4(const float *w, long m, long k, float *ap) { (void)w; (void)m; (void)k; (void)ap; }
void ck_conv_panels_avx2(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                         int act, float *out, long p0, long p1, float *panel) {
    (void)x; (void)g; (void)ap; (void)m; (void)bias; (void)act; (void)out; (void)p0; (void)p1; (void)panel;
}

#endif
