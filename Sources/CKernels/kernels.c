#include "CKernels.h"
#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define CK_AVX2 __attribute__((target("avx2,fma")))
#include "simd_math.h"

/* The even-indexed floats of p[0..15], in order. */
static inline CK_AVX2 __m256 ck_evens(const float *p) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    return ck_in_order(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));   /* a0 a2 b0 b2 | a4 a6 b4 b6 */
}

/* Stride 2 without the final permute: the even (odd = 0) or odd (odd = 1) floats of p[0..15] in the order
   e0 e1 e4 e5 | e2 e3 e6 e7 that _mm256_shuffle_ps leaves them in. Every tap of a stride-2 row is gathered
   in this order and the sum is put in order once (ck_unraw), which halves the shuffle work per tap; an odd
   tap reuses the loads of the even tap before it. */
static inline CK_AVX2 __m256 ck_raw(const float *p, int odd) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    return odd ? _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)) : _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
}

/* Output rows i0 ..< i0 + R, columns j + 8 v ..< j + 8 v + 8 (v < V) of a depthwise plane (kernel width KW, stride SW
   along rows), the last group at j + last instead (last = 8 (V - 1) but for a group overlapping the one before). R rows
   at once give R x V independent sums: one sum alone waits on each FMA's latency (kh * KW of them in a chain), which
   made the narrow maps of a detector's last stage run at a quarter of the FMA rate. */
static inline __attribute__((always_inline)) CK_AVX2 void ck_dw_block(float *out, long ow, const float *in, long ld, const float *k, float bias,
                                       long i0, long j, long last, long kh, long sh, long dh, const long R,
                                       const long V, const long KW, const long SW) {
    __m256 acc[4][3];
    for (long r = 0; r < R; r++)
        for (long v = 0; v < V; v++) acc[r][v] = _mm256_set1_ps(bias);
    if (SW == 1 && KW <= 5 && kh == KW && sh == 1 && dh == 1) {
        /* Square kernels up to 5x5 with stride 1: each input row is loaded once per kernel column for every output
           row of the block that uses it (R + KW - 1 loads where the loop below makes R KW), the KW weights of the
           column in registers. The loads were the limit: a 20x20 plane with a 5x5 kernel 0.31 vs 0.42 us on one
           core, 40x40 0.92 vs 1.37, 20x20 with 3x3 0.15 vs 0.20. */
        for (long kj = 0; kj < KW; kj++) {
            __m256 wv[5];
            for (long ki = 0; ki < KW; ki++) wv[ki] = _mm256_broadcast_ss(k + ki * KW + kj);
            for (long y = 0; y < R + KW - 1; y++) {
                const float *row = in + (i0 + y) * ld + j + kj;
                for (long v = 0; v < V; v++) {
                    const __m256 x = _mm256_loadu_ps(row + (v == V - 1 ? last : 8 * v));
                    for (long r = 0; r < R; r++)
                        if (y - r >= 0 && y - r < KW) acc[r][v] = _mm256_fmadd_ps(wv[y - r], x, acc[r][v]);
                }
            }
        }
    } else for (long ki = 0; ki < kh; ki++) {
        for (long kj = 0; kj < KW; kj++) {
            const __m256 w = _mm256_broadcast_ss(k + ki * KW + kj);
            for (long r = 0; r < R; r++) {
                const float *row = in + ((i0 + r) * sh + ki * dh) * ld + j * SW;
                for (long v = 0; v < V; v++) {
                    const long c = v == V - 1 ? last : 8 * v;
                    const __m256 x = SW == 1 ? _mm256_loadu_ps(row + kj + c)
                                             : ck_raw(row + (kj & ~1L) + 2 * c, (int)(kj & 1));
                    acc[r][v] = _mm256_fmadd_ps(w, x, acc[r][v]);
                }
            }
        }
    }
    for (long r = 0; r < R; r++) {
        for (long v = 0; v < V; v++) {
            const long c = v == V - 1 ? last : 8 * v;
            _mm256_storeu_ps(out + (i0 + r) * ow + j + c, SW == 1 ? acc[r][v] : ck_in_order(acc[r][v]));
        }
    }
}

/* Rows i0 ..< i0 + R of the plane: 16 columns at a time, then the last partial group recomputed as the final 8
   columns of the row (outputs are written, not accumulated, so overlapping columns get the same values again),
   then (rows under 8 wide) one column at a time. With stride 1, the last 16 columns and the (partial) group after them
   go as one block of three groups: a block of one group alone has only R sums in flight (a 20-wide row ran its
   last 8 columns at half the FMA rate). */
static inline __attribute__((always_inline)) CK_AVX2 void ck_dw_rows(float *out, const float *in, long ld, const float *k, float bias, long i0,
                                      long ow, long kh, long sh, long dh, const long R, const long KW, const long SW) {
    long j = 0;
    for (; j + 16 <= ow; j += 16) {
        if (SW == 1 && ow - j > 16 && ow - j <= 24) {
            ck_dw_block(out, ow, in, ld, k, bias, i0, j, ow - 8 - j, kh, sh, dh, R, 3, KW, SW);
            j = ow;
            break;
        }
        ck_dw_block(out, ow, in, ld, k, bias, i0, j, 8, kh, sh, dh, R, 2, KW, SW);
    }
    for (; j < ow && ow >= 8; j += 8) {
        if (j + 8 > ow) j = ow - 8;
        ck_dw_block(out, ow, in, ld, k, bias, i0, j, 0, kh, sh, dh, R, 1, KW, SW);
    }
    for (; j < ow; j++) {
        for (long r = 0; r < R; r++) {
            float acc = bias;
            for (long ki = 0; ki < kh; ki++) {
                const float *row = in + ((i0 + r) * sh + ki * dh) * ld + j * SW;
                for (long kj = 0; kj < KW; kj++) acc += k[ki * KW + kj] * row[kj];
            }
            out[(i0 + r) * ow + j] = acc;
        }
    }
}

/* The plane for a fixed kernel width KW and stride SW (dilation 1 along rows), so the tap loops unroll. */
static inline __attribute__((always_inline)) CK_AVX2 void ck_plane_fixed(float *out, const float *in, long ld, const float *k, float bias,
                                          long oh, long ow, long kh, long sh, long dh, const long KW, const long SW) {
    long i = 0;
    if (SW == 1) {
        for (; i + 4 <= oh; i += 4) ck_dw_rows(out, in, ld, k, bias, i, ow, kh, sh, dh, 4, KW, SW);
    } else {
        for (; i + 2 <= oh; i += 2) ck_dw_rows(out, in, ld, k, bias, i, ow, kh, sh, dh, 2, KW, SW);
    }
    for (; i < oh; i++) ck_dw_rows(out, in, ld, k, bias, i, ow, kh, sh, dh, 1, KW, SW);
}

CK_AVX2 void ck_depthwise_plane_avx2(float *out, const float *in, long ld, const float *k, float bias,
                                     long oh, long ow, long kh, long kw, long sh, long sw, long dh, long dw) {
    if (dw == 1 && sw == 1 && kw == 3) { ck_plane_fixed(out, in, ld, k, bias, oh, ow, kh, sh, dh, 3, 1); return; }
    if (dw == 1 && sw == 1 && kw == 5) { ck_plane_fixed(out, in, ld, k, bias, oh, ow, kh, sh, dh, 5, 1); return; }
    if (dw == 1 && sw == 2 && kw == 3) { ck_plane_fixed(out, in, ld, k, bias, oh, ow, kh, sh, dh, 3, 2); return; }
    if (dw == 1 && sw == 2 && kw == 5) { ck_plane_fixed(out, in, ld, k, bias, oh, ow, kh, sh, dh, 5, 2); return; }
    if (dw == 1 && sw == 1 && kw == 7) { ck_plane_fixed(out, in, ld, k, bias, oh, ow, kh, sh, dh, 7, 1); return; }
    /* Anything else: plain loops (the compiler vectorises the stride-1 case). */
    for (long i = 0; i < oh; i++) {
        float *line = out + i * ow;
        for (long j = 0; j < ow; j++) line[j] = bias;
        for (long ki = 0; ki < kh; ki++) {
            const float *r = in + (i * sh + ki * dh) * ld;
            for (long kj = 0; kj < kw; kj++) {
                const float w = k[ki * kw + kj], *q = r + kj * dw;
                for (long j = 0; j < ow; j++) line[j] += w * q[j * sw];
            }
        }
    }
}

/* The three taps of a 3x3 stride-2 kernel along one input row for eight output columns j ..< j + 8, p pointing at
   input column 2j: columns 2j - 1 + kj + 2t (t < 8) for kj = 0, 1, 2, in shuffle order (e0 e1 e4 e5 | e2 e3 e6 e7,
   put in order once per sum by ck_in_order). FIRST (j = 0): column -1 is the zero padding, so the loads at p - 2
   become a permute of the load at p with its second lane zeroed (a masked load there cost a third of the plane's
   time on 80x80). The loads never reach past column 2j + 15. */
static inline __attribute__((always_inline)) CK_AVX2 void ck_s2_taps(const float *p, const int FIRST, __m256 t[3]) {
    const __m256 c = _mm256_loadu_ps(p), d = _mm256_loadu_ps(p + 8);
    const __m256 a = FIRST ? _mm256_blend_ps(_mm256_setzero_ps(),
                                             _mm256_permutevar8x32_ps(c, _mm256_setr_epi32(0, 0, 0, 1, 2, 3, 4, 5)), 0xFC)
                           : _mm256_loadu_ps(p - 2);
    t[0] = _mm256_shuffle_ps(a, _mm256_loadu_ps(p + 6), _MM_SHUFFLE(3, 1, 3, 1));
    t[1] = _mm256_shuffle_ps(c, d, _MM_SHUFFLE(2, 0, 2, 0));
    t[2] = _mm256_shuffle_ps(c, d, _MM_SHUFFLE(3, 1, 3, 1));
}

/* Output columns j ..< j + 8 V of every row of a 3x3 stride-2 depthwise plane, walking down the plane with the nine
   weights in registers: x and out point at input column 2j of row 0 and output column j. Output row i sums input
   rows 2i - 1, 2i and 2i + 1; row 2i + 1 is read once for both output rows that use it (its kernel row 0 part is
   carried to the next step as p0), so each step reads two input rows. Three short FMA chains per step instead of
   one of nine. Each step fetches the pfLines lines at `pf` into L2 and moves `pf` past them (pfLines 0: none). */
static inline __attribute__((always_inline)) CK_AVX2 void ck_s2_strip(float *out, long ow, const float *x, long h, long w,
                                                                       const float *k, float bias, const char *pf,
                                                                       long pfLines, const int FIRST, const long V) {
    __m256 wk[9];
    for (int t = 0; t < 9; t++) wk[t] = _mm256_broadcast_ss(k + t);
    const __m256 vb = _mm256_set1_ps(bias);
    __m256 p0[2] = {vb, vb};   /* row -1 is padding */
    for (long i = 0; i < h / 2; i++) {
        for (long l = 0; l < pfLines; l++, pf += 64) _mm_prefetch(pf, _MM_HINT_T1);
        for (long v = 0; v < V; v++) {
            __m256 t[3], u[3];
            ck_s2_taps(x + 16 * v, FIRST && v == 0, t);
            ck_s2_taps(x + w + 16 * v, FIRST && v == 0, u);
            __m256 a = _mm256_fmadd_ps(wk[3], t[0], p0[v]);
            a = _mm256_fmadd_ps(wk[4], t[1], a);
            a = _mm256_fmadd_ps(wk[5], t[2], a);
            __m256 b = _mm256_mul_ps(wk[6], u[0]);
            b = _mm256_fmadd_ps(wk[7], u[1], b);
            b = _mm256_fmadd_ps(wk[8], u[2], b);
            __m256 c = _mm256_fmadd_ps(wk[0], u[0], vb);
            c = _mm256_fmadd_ps(wk[1], u[1], c);
            p0[v] = _mm256_fmadd_ps(wk[2], u[2], c);
            _mm256_storeu_ps(out + 8 * v, ck_in_order(_mm256_add_ps(a, b)));
        }
        x += 2 * w;
        out += ow;
    }
    if (h & 1) {   /* the last output row: input row h is padding */
        for (long v = 0; v < V; v++) {
            __m256 t[3];
            ck_s2_taps(x + 16 * v, FIRST && v == 0, t);
            __m256 a = _mm256_fmadd_ps(wk[3], t[0], p0[v]);
            a = _mm256_fmadd_ps(wk[4], t[1], a);
            a = _mm256_fmadd_ps(wk[5], t[2], a);
            _mm256_storeu_ps(out + 8 * v, ck_in_order(a));
        }
    }
}

CK_AVX2 void ck_depthwise3x3s2_avx2(float *out, const float *x, long h, long w, const float *k, float bias,
                                    const float *next) {
    const long ow = w / 2;
    /* Strips of 16 columns, then of 8; a last partial strip overlaps the one before (the same values again). The
       next plane's h * w / 16 lines are fetched into L2 over the strips' steps: read a strip at a time, a plane
       coming from memory would otherwise be waited for line by line. */
    const long strips = ow / 16 + (ow % 16 > 8 ? 2 : ow % 16 > 0 ? 1 : 0);
    const long steps = strips * (h / 2) > 0 ? strips * (h / 2) : 1;
    const long pfLines = next ? (h * w / 16 + steps - 1) / steps : 0, pfStrip = 64 * pfLines * (h / 2);
    const char *pf = (const char *)next;
    long j = 0;
    if (ow >= 16) {
        ck_s2_strip(out, ow, x, h, w, k, bias, pf, pfLines, 1, 2);
        for (j = 16; j + 16 <= ow; j += 16) {
            pf += pfStrip;
            ck_s2_strip(out + j, ow, x + 2 * j, h, w, k, bias, pf, pfLines, 0, 2);
        }
    } else {
        ck_s2_strip(out, ow, x, h, w, k, bias, pf, pfLines, 1, 1);
        j = 8;
    }
    for (; j < ow; j += 8) {
        if (j + 8 > ow) j = ow - 8;
        pf += pfStrip;
        ck_s2_strip(out + j, ow, x + 2 * j, h, w, k, bias, pf, pfLines, 0, 1);
    }
}

CK_AVX2 void ck_copy_plane_avx2(float *dst, long ld, const float *src, long h, long w, long ph, long pw) {
    for (long y = 0; y < h; y++) {
        float *d = dst + (y + ph) * ld + pw;
        const float *s = src + y * w;
        long x = 0;
        for (; x + 8 <= w; x += 8) _mm256_storeu_ps(d + x, _mm256_loadu_ps(s + x));
        for (; x < w; x++) d[x] = s[x];
    }
}

CK_AVX2 void ck_gather_stride2_avx2(float *dst, const float *src, long n) {
    long j = 0;
    for (; j + 9 <= n; j += 8) _mm256_storeu_ps(dst + j, ck_evens(src + 2 * j));   /* reads src[2j .. 2j + 15] */
    for (; j < n; j++) dst[j] = src[2 * j];
}

static inline CK_AVX2 void ck_act(float *dst, const float *src, long n, int kind) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ck_act8(_mm256_loadu_ps(src + i), kind));
    if (i < n) {
        float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long t = 0; t < n - i; t++) tmp[t] = src[i + t];
        _mm256_storeu_ps(tmp, ck_act8(_mm256_loadu_ps(tmp), kind));
        for (long t = 0; t < n - i; t++) dst[i + t] = tmp[t];
    }
}

CK_AVX2 void ck_exp_avx2(float *dst, const float *src, long n) { ck_act(dst, src, n, 0); }
CK_AVX2 void ck_sigmoid_avx2(float *dst, const float *src, long n) { ck_act(dst, src, n, 1); }
CK_AVX2 void ck_silu_avx2(float *dst, const float *src, long n) { ck_act(dst, src, n, 2); }

CK_AVX2 void ck_bias_act_avx2(float *p, long n, float bias, int kind) {
    __m256 b = _mm256_set1_ps(bias);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_add_ps(_mm256_loadu_ps(p + i), b);
        if (kind == 3) {
            x = ck_relu8(x);
        } else if (kind >= 0) {
            x = ck_act8(x, kind);
        }
        _mm256_storeu_ps(p + i, x);
    }
    for (; i < n; i++) {
        float x = p[i] + bias;
        if (kind == 3) x = (x > 0 || x != x) ? x : 0;
        else if (kind == 1) x = 1.0f / (1.0f + expf(-x));
        else if (kind == 2) x = x / (1.0f + expf(-x));
        else if (kind == 0) x = expf(x);
        p[i] = x;
    }
}

CK_AVX2 void ck_softmax_cols_avx2(const float *s, long n, long ld, long j0, long j1, const float *weights, float *d) {
    for (long j = j0; j < j1; j += 8) {
        const __m256i lanes = ck_lanes8(j1 - j);
        __m256 m = _mm256_set1_ps(-INFINITY);
        for (long i = 0; i < n; i++) m = _mm256_max_ps(m, _mm256_maskload_ps(s + i * ld + j, lanes));
        __m256 z = _mm256_setzero_ps(), acc = _mm256_setzero_ps();
        for (long i = 0; i < n; i++) {
            const __m256 e = ck_act8(_mm256_sub_ps(_mm256_maskload_ps(s + i * ld + j, lanes), m), 0);
            z = _mm256_add_ps(z, e);
            if (weights) acc = _mm256_fmadd_ps(e, _mm256_set1_ps(weights[i]), acc);
            else _mm256_maskstore_ps(d + i * ld + j, lanes, e);
        }
        if (weights) {
            _mm256_maskstore_ps(d + j, lanes, _mm256_div_ps(acc, z));
            continue;
        }
        const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), z);
        for (long i = 0; i < n; i++)
            _mm256_maskstore_ps(d + i * ld + j, lanes, _mm256_mul_ps(_mm256_maskload_ps(d + i * ld + j, lanes), inv));
    }
}

/* The AVX-512 versions: sixteen lanes, the tail by masked loads and stores (no scalar loop, so every element goes
   through the same vector math). */
static inline CK_AVX512 __m512 ck_act16_kind(__m512 x, int kind) {
    return kind == 3 ? ck_relu16(x) : kind >= 0 ? ck_act16(x, kind) : x;
}

static inline CK_AVX512 void ck_act_avx512(float *dst, const float *src, long n, float bias, int kind) {
    const __m512 b = _mm512_set1_ps(bias);
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 x0 = _mm512_add_ps(_mm512_loadu_ps(src + i), b), x1 = _mm512_add_ps(_mm512_loadu_ps(src + i + 16), b);
        _mm512_storeu_ps(dst + i, ck_act16_kind(x0, kind));
        _mm512_storeu_ps(dst + i + 16, ck_act16_kind(x1, kind));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = ck_lanes16(n - i);
        _mm512_mask_storeu_ps(dst + i, m, ck_act16_kind(_mm512_add_ps(_mm512_maskz_loadu_ps(m, src + i), b), kind));
    }
}

CK_AVX512 void ck_exp_avx512(float *dst, const float *src, long n) { ck_act_avx512(dst, src, n, 0.0f, 0); }
CK_AVX512 void ck_sigmoid_avx512(float *dst, const float *src, long n) { ck_act_avx512(dst, src, n, 0.0f, 1); }
CK_AVX512 void ck_silu_avx512(float *dst, const float *src, long n) { ck_act_avx512(dst, src, n, 0.0f, 2); }
CK_AVX512 void ck_bias_act_avx512(float *p, long n, float bias, int kind) { ck_act_avx512(p, p, n, bias, kind); }

CK_AVX512 void ck_softmax_cols_avx512(const float *s, long n, long ld, long j0, long j1, const float *weights, float *d) {
    for (long j = j0; j < j1; j += 16) {
        const __mmask16 lanes = ck_lanes16(j1 - j);
        __m512 m = _mm512_set1_ps(-INFINITY);
        for (long i = 0; i < n; i++) m = _mm512_max_ps(m, _mm512_maskz_loadu_ps(lanes, s + i * ld + j));
        __m512 z = _mm512_setzero_ps(), acc = _mm512_setzero_ps();
        for (long i = 0; i < n; i++) {
            const __m512 e = ck_act16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, s + i * ld + j), m), 0);
            z = _mm512_add_ps(z, e);
            if (weights) acc = _mm512_fmadd_ps(e, _mm512_set1_ps(weights[i]), acc);
            else _mm512_mask_storeu_ps(d + i * ld + j, lanes, e);
        }
        if (weights) {
            _mm512_mask_storeu_ps(d + j, lanes, _mm512_div_ps(acc, z));
            continue;
        }
        const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), z);
        for (long i = 0; i < n; i++)
            _mm512_mask_storeu_ps(d + i * ld + j, lanes, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, d + i * ld + j), inv));
    }
}

/* ---- Depthwise on sixteen lanes (AVX-512): the same blocks as the AVX2 kernels above, with masked tails instead of
   overlapping groups, and bias and activation (ck_act16_kind) applied to the sums before they are stored. ---- */

/* The even (odd = 0) or odd (odd = 1) floats of the 32 in lo:hi, in order. */
static inline __attribute__((always_inline)) CK_AVX512 __m512 ck_half16(__m512 lo, __m512 hi, const int odd) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(lo, odd ? _mm512_add_epi32(even, _mm512_set1_epi32(1)) : even, hi);
}

/* Output rows i0 ..< i0 + R, columns j + 16 v ..< j + 16 v + 16 (v < V; lanes at or past ow masked) of a depthwise
   plane (kernel width KW, stride SW along rows) read from the zero-padded plane `in`. Loads stop at the last column a
   lane uses (stride 2: one float past it on full groups, inside the padded buffer's slack). */
static inline __attribute__((always_inline)) CK_AVX512 void ck_dw16_block(float *out, long ow, const float *in, long ld,
                                                                          const float *k, float bias, int act, long i0,
                                                                          long j, long kh, long sh, long dh, const long R,
                                                                          const long V, const long KW, const long SW) {
    __m512 acc[4][2];
    __mmask16 m[2], mlo[2], mhi[2];
    for (long v = 0; v < V; v++) {
        const long n = ow - j - 16 * v;
        m[v] = ck_lanes16(n);
        mlo[v] = ck_lanes16(2 * n);
        mhi[v] = ck_lanes16(2 * n - 16);
    }
    for (long r = 0; r < R; r++)
        for (long v = 0; v < V; v++) acc[r][v] = _mm512_set1_ps(bias);
    if (SW == 1 && KW <= 5 && kh == KW && sh == 1 && dh == 1) {
        /* Each input row loaded once per kernel column for every output row of the block that uses it. */
        for (long kj = 0; kj < KW; kj++) {
            __m512 wv[5];
            for (long ki = 0; ki < KW; ki++) wv[ki] = _mm512_set1_ps(k[ki * KW + kj]);
            for (long y = 0; y < R + KW - 1; y++) {
                const float *row = in + (i0 + y) * ld + j + kj;
                for (long v = 0; v < V; v++) {
                    const __m512 x = _mm512_maskz_loadu_ps(m[v], row + 16 * v);
                    for (long r = 0; r < R; r++)
                        if (y - r >= 0 && y - r < KW) acc[r][v] = _mm512_fmadd_ps(wv[y - r], x, acc[r][v]);
                }
            }
        }
    } else for (long ki = 0; ki < kh; ki++) {
        for (long kj = 0; kj < KW; kj++) {
            const __m512 w = _mm512_set1_ps(k[ki * KW + kj]);
            for (long r = 0; r < R; r++) {
                const float *row = in + ((i0 + r) * sh + ki * dh) * ld + j * SW;
                for (long v = 0; v < V; v++) {
                    __m512 x;
                    if (SW == 1) {
                        x = _mm512_maskz_loadu_ps(m[v], row + kj + 16 * v);
                    } else {   /* kj and kj + 1 (odd) share the loads at the even column */
                        const float *p = row + (kj & ~1L) + 32 * v;
                        x = ck_half16(_mm512_maskz_loadu_ps(mlo[v], p), _mm512_maskz_loadu_ps(mhi[v], p + 16), (int)(kj & 1));
                    }
                    acc[r][v] = _mm512_fmadd_ps(w, x, acc[r][v]);
                }
            }
        }
    }
    for (long r = 0; r < R; r++)
        for (long v = 0; v < V; v++)
            _mm512_mask_storeu_ps(out + (i0 + r) * ow + j + 16 * v, m[v], ck_act16_kind(acc[r][v], act));
}

/* Rows i0 ..< i0 + R: 32 columns at a time, then the rest as one block of one or two (masked) groups. */
static inline __attribute__((always_inline)) CK_AVX512 void ck_dw16_rows(float *out, const float *in, long ld, const float *k,
                                                                         float bias, int act, long i0, long ow, long kh,
                                                                         long sh, long dh, const long R, const long KW,
                                                                         const long SW) {
    long j = 0;
    for (; j + 32 <= ow; j += 32) ck_dw16_block(out, ow, in, ld, k, bias, act, i0, j, kh, sh, dh, R, 2, KW, SW);
    if (ow - j > 16) ck_dw16_block(out, ow, in, ld, k, bias, act, i0, j, kh, sh, dh, R, 2, KW, SW);
    else if (ow > j) ck_dw16_block(out, ow, in, ld, k, bias, act, i0, j, kh, sh, dh, R, 1, KW, SW);
}

static inline __attribute__((always_inline)) CK_AVX512 void ck_plane16_fixed(float *out, const float *in, long ld, const float *k,
                                                                             float bias, int act, long oh, long ow, long kh,
                                                                             long sh, long dh, const long KW, const long SW) {
    long i = 0;
    if (SW == 1)
        for (; i + 4 <= oh; i += 4) ck_dw16_rows(out, in, ld, k, bias, act, i, ow, kh, sh, dh, 4, KW, SW);
    for (; i + 2 <= oh; i += 2) ck_dw16_rows(out, in, ld, k, bias, act, i, ow, kh, sh, dh, 2, KW, SW);
    for (; i < oh; i++) ck_dw16_rows(out, in, ld, k, bias, act, i, ow, kh, sh, dh, 1, KW, SW);
}

/* The activation is fused into the stores only when every lane of every group is an output (ow a multiple of 16):
   otherwise the masked lanes' share of the activation's work costs more than a pass over the plane. Measured on one
   Zen 5 core with SiLU, 3x3 stride 2 (best of 9): 1024 planes of 40x40 (ow 20) 0.268 ms fused, 0.184 with the pass;
   512 of 80x80 (ow 40) 0.399 / 0.352; 128 of 160x160 (ow 80) 0.340 / 0.374. */
static inline int ck_fused_act(long ow, int act) { return ow % 16 == 0 ? act : -1; }

CK_AVX512 void ck_depthwise_plane_avx512(float *out, const float *in, long ld, const float *k, float bias, int act,
                                         long oh, long ow, long kh, long kw, long sh, long sw, long dh, long dw) {
    const int fused = ck_fused_act(ow, act);
    int done = 1;
    if (dw == 1 && sw == 1 && kw == 3) ck_plane16_fixed(out, in, ld, k, bias, fused, oh, ow, kh, sh, dh, 3, 1);
    else if (dw == 1 && sw == 1 && kw == 5) ck_plane16_fixed(out, in, ld, k, bias, fused, oh, ow, kh, sh, dh, 5, 1);
    else if (dw == 1 && sw == 2 && kw == 3) ck_plane16_fixed(out, in, ld, k, bias, fused, oh, ow, kh, sh, dh, 3, 2);
    else if (dw == 1 && sw == 2 && kw == 5) ck_plane16_fixed(out, in, ld, k, bias, fused, oh, ow, kh, sh, dh, 5, 2);
    else if (dw == 1 && sw == 1 && kw == 7) ck_plane16_fixed(out, in, ld, k, bias, fused, oh, ow, kh, sh, dh, 7, 1);
    else done = 0;
    if (done) {
        if (fused != act) ck_act_avx512(out, out, oh * ow, 0.0f, act);
        return;
    }
    /* Anything else: plain loops (the compiler vectorises the stride-1 case), then bias and activation. */
    for (long i = 0; i < oh; i++) {
        float *line = out + i * ow;
        for (long j = 0; j < ow; j++) line[j] = 0;
        for (long ki = 0; ki < kh; ki++) {
            const float *r = in + (i * sh + ki * dh) * ld;
            for (long kj = 0; kj < kw; kj++) {
                const float w = k[ki * kw + kj], *q = r + kj * dw;
                for (long j = 0; j < ow; j++) line[j] += w * q[j * sw];
            }
        }
        ck_act_avx512(line, line, ow, bias, act);
    }
}

/* ck_s2_taps on sixteen lanes, in order: columns 2j - 1 + kj + 2t (t < 16) for kj = 0, 1, 2, p at input column 2j.
   Column 2j - 1 + 2t is the odd tap shifted up one lane with p[-1] (FIRST: the zero padding, not read) below it.
   lo, hi: the masks of p[0 ..< 16] and p[16 ..< 32] the outputs use. */
static inline __attribute__((always_inline)) CK_AVX512 void ck_s2_taps16(const float *p, const int FIRST, __mmask16 lo,
                                                                         __mmask16 hi, __m512 t[3]) {
    const __m512 c = _mm512_maskz_loadu_ps(lo, p), d = _mm512_maskz_loadu_ps(hi, p + 16);
    t[1] = ck_half16(c, d, 0);
    t[2] = ck_half16(c, d, 1);
    const __m512 before = FIRST ? _mm512_setzero_ps() : _mm512_set1_ps(p[-1]);
    t[0] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(t[2]), _mm512_castps_si512(before), 15));
}

/* ck_s2_strip on sixteen lanes: output columns j ..< j + n (n <= 16 V) of every row, walking down the plane. */
static inline __attribute__((always_inline)) CK_AVX512 void ck_s2_strip16(float *out, long ow, const float *x, long h, long w,
                                                                          const float *k, float bias, int act,
                                                                          const char *pf, long pfLines, long n,
                                                                          const int FIRST, const long V) {
    __m512 wk[9];
    for (int t = 0; t < 9; t++) wk[t] = _mm512_set1_ps(k[t]);
    const __m512 vb = _mm512_set1_ps(bias);
    __mmask16 mo[2], mlo[2], mhi[2];
    for (long v = 0; v < V; v++) {
        mo[v] = ck_lanes16(n - 16 * v);
        mlo[v] = ck_lanes16(2 * (n - 16 * v));
        mhi[v] = ck_lanes16(2 * (n - 16 * v) - 16);
    }
    __m512 p0[2] = {vb, vb};   /* row -1 is padding */
    for (long i = 0; i < h / 2; i++) {
        for (long l = 0; l < pfLines; l++, pf += 64) _mm_prefetch(pf, _MM_HINT_T1);
        for (long v = 0; v < V; v++) {
            __m512 t[3], u[3];
            ck_s2_taps16(x + 32 * v, FIRST && v == 0, mlo[v], mhi[v], t);
            ck_s2_taps16(x + w + 32 * v, FIRST && v == 0, mlo[v], mhi[v], u);
            __m512 a = _mm512_fmadd_ps(wk[3], t[0], p0[v]);
            a = _mm512_fmadd_ps(wk[4], t[1], a);
            a = _mm512_fmadd_ps(wk[5], t[2], a);
            __m512 b = _mm512_mul_ps(wk[6], u[0]);
            b = _mm512_fmadd_ps(wk[7], u[1], b);
            b = _mm512_fmadd_ps(wk[8], u[2], b);
            __m512 c = _mm512_fmadd_ps(wk[0], u[0], vb);
            c = _mm512_fmadd_ps(wk[1], u[1], c);
            p0[v] = _mm512_fmadd_ps(wk[2], u[2], c);
            _mm512_mask_storeu_ps(out + 16 * v, mo[v], ck_act16_kind(_mm512_add_ps(a, b), act));
        }
        x += 2 * w;
        out += ow;
    }
    if (h & 1) {   /* the last output row: input row h is padding */
        for (long v = 0; v < V; v++) {
            __m512 t[3];
            ck_s2_taps16(x + 32 * v, FIRST && v == 0, mlo[v], mhi[v], t);
            __m512 a = _mm512_fmadd_ps(wk[3], t[0], p0[v]);
            a = _mm512_fmadd_ps(wk[4], t[1], a);
            a = _mm512_fmadd_ps(wk[5], t[2], a);
            _mm512_mask_storeu_ps(out + 16 * v, mo[v], ck_act16_kind(a, act));
        }
    }
}

CK_AVX512 void ck_depthwise3x3s2_avx512(float *out, const float *x, long h, long w, const float *k, float bias, int act,
                                        const float *next) {
    const long ow = w / 2;
    /* Strips of 32 columns, the last one of what is left (masked); the next plane is fetched into L2 over the
       strips' steps, as in ck_depthwise3x3s2_avx2. */
    const long strips = (ow + 31) / 32;
    const long steps = strips * (h / 2) > 0 ? strips * (h / 2) : 1;
    const long pfLines = next ? (h * w / 16 + steps - 1) / steps : 0, pfStrip = 64 * pfLines * (h / 2);
    const char *pf = (const char *)next;
    const int fused = ck_fused_act(ow, act);
    for (long j = 0; j < ow; j += 32, pf += pfStrip) {
        const long n = ow - j < 32 ? ow - j : 32;
        if (j == 0 && n > 16) ck_s2_strip16(out, ow, x, h, w, k, bias, fused, pf, pfLines, n, 1, 2);
        else if (j == 0) ck_s2_strip16(out, ow, x, h, w, k, bias, fused, pf, pfLines, n, 1, 1);
        else if (n > 16) ck_s2_strip16(out + j, ow, x + 2 * j, h, w, k, bias, fused, pf, pfLines, n, 0, 2);
        else ck_s2_strip16(out + j, ow, x + 2 * j, h, w, k, bias, fused, pf, pfLines, n, 0, 1);
    }
    if (fused != act) ck_act_avx512(out, out, (h + 1) / 2 * ow, 0.0f, act);
}

/* Pixels p ..< p + 8 V of the 1x1 conv of ck_conv1x1_few_avx2 for COUT output channels. */
static inline __attribute__((always_inline)) CK_AVX2 void ck_few_block(float *out, const float *x, const float *w, const float *bias,
                                                                        long cin, long plane, long p, const long COUT,
                                                                        const long V) {
    __m256 acc[3][8];
    for (long o = 0; o < COUT; o++)
        for (long v = 0; v < V; v++) acc[o][v] = _mm256_set1_ps(bias ? bias[o] : 0);
    for (long c = 0; c < cin; c++) {
        const float *row = x + c * plane + p;
        for (long o = 0; o < COUT; o++) {
            const __m256 wv = _mm256_broadcast_ss(w + o * cin + c);
            for (long v = 0; v < V; v++) acc[o][v] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + 8 * v), acc[o][v]);
        }
    }
    for (long o = 0; o < COUT; o++)
        for (long v = 0; v < V; v++) _mm256_storeu_ps(out + o * plane + p + 8 * v, acc[o][v]);
}

static inline __attribute__((always_inline)) CK_AVX2 void ck_few(float *out, const float *x, const float *w, const float *bias,
                                                                  long cin, long plane, long p0, long p1, const long COUT) {
    const long V = COUT == 1 ? 8 : 4;   /* at least eight sums in flight: each waits on cin FMAs in a row */
    long p = p0;
    for (; p + 8 * V <= p1; p += 8 * V) ck_few_block(out, x, w, bias, cin, plane, p, COUT, V);
    for (; p + 8 <= p1; p += 8) ck_few_block(out, x, w, bias, cin, plane, p, COUT, 1);
    for (; p < p1; p++) {
        for (long o = 0; o < COUT; o++) {
            float acc = bias ? bias[o] : 0;
            for (long c = 0; c < cin; c++) acc += w[o * cin + c] * x[c * plane + p];
            out[o * plane + p] = acc;
        }
    }
}

CK_AVX2 void ck_conv1x1_few_avx2(float *out, const float *x, const float *w, const float *bias, long cin, long cout,
                                 long plane, long p0, long p1) {
    if (cout == 1) ck_few(out, x, w, bias, cin, plane, p0, p1, 1);
    else if (cout == 2) ck_few(out, x, w, bias, cin, plane, p0, p1, 2);
    else if (cout == 3) ck_few(out, x, w, bias, cin, plane, p0, p1, 3);
}

/* ck_stream with 256-bit loads and stores: four sums in flight, so the loads are never waiting on an add. */
static CK_AVX2 float ck_stream_avx2(const float *in, long n, float *out, long m) {
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float rest = 0;
    long i = 0, o = 0;
    while (i < n || o < m) {
        const long iend = n - i > 1024 ? i + 1024 : n;
        const long oend = i < n ? (long)((double)m * (double)iend / (double)n) : m;
        for (; i + 32 <= iend; i += 32)
            for (int t = 0; t < 4; t++) s[t] = _mm256_add_ps(s[t], _mm256_loadu_ps(in + i + 8 * t));
        for (; i < iend; i++) rest += in[i];
        for (; o + 8 <= oend; o += 8) _mm256_storeu_ps(out + o, s[1]);
        for (; o < oend; o++) out[o] = in[0];
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3])));
    return rest + t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

#else

void ck_conv1x1_few_avx2(float *out, const float *x, const float *w, const float *bias, long cin, long cout,
                         long plane, long p0, long p1) {
    (void)out; (void)x; (void)w; (void)bias; (void)cin; (void)cout; (void)plane; (void)p0; (void)p1;
}
static float ck_stream_avx2(const float *in, long n, float *out, long m) { (void)in; (void)n; (void)out; (void)m; return 0; }

void ck_gather_stride2_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_exp_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_sigmoid_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_silu_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_bias_act_avx2(float *p, long n, float bias, int kind) { (void)p; (void)n; (void)bias; (void)kind; }
void ck_exp_avx512(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_sigmoid_avx512(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_silu_avx512(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_bias_act_avx512(float *p, long n, float bias, int kind) { (void)p; (void)n; (void)bias; (void)kind; }
void ck_softmax_cols_avx2(const float *s, long n, long ld, long j0, long j1, const float *weights, float *d) {
    (void)s; (void)n; (void)ld; (void)j0; (void)j1; (void)weights; (void)d;
}
void ck_softmax_cols_avx512(const float *s, long n, long ld, long j0, long j1, const float *weights, float *d) {
    (void)s; (void)n; (void)ld; (void)j0; (void)j1; (void)weights; (void)d;
}

void ck_depthwise3x3s2_avx2(float *out, const float *x, long h, long w, const float *k, float bias,
                            const float *next) {
    (void)out; (void)x; (void)h; (void)w; (void)k; (void)bias; (void)next;
}

void ck_depthwise3x3s2_avx512(float *out, const float *x, long h, long w, const float *k, float bias, int act,
                              const float *next) {
    (void)out; (void)x; (void)h; (void)w; (void)k; (void)bias; (void)act; (void)next;
}

void ck_depthwise_plane_avx512(float *out, const float *in, long ld, const float *k, float bias, int act,
                               long oh, long ow, long kh, long kw, long sh, long sw, long dh, long dw) {
    (void)out; (void)in; (void)ld; (void)k; (void)bias; (void)act; (void)oh; (void)ow;
    (void)kh; (void)kw; (void)sh; (void)sw; (void)dh; (void)dw;
}

void ck_copy_plane_avx2(float *dst, long ld, const float *src, long h, long w, long ph, long pw) {
    (void)dst; (void)ld; (void)src; (void)h; (void)w; (void)ph; (void)pw;
}

void ck_depthwise_plane_avx2(float *out, const float *in, long ld, const float *k, float bias,
                             long oh, long ow, long kh, long kw, long sh, long sw, long dh, long dw) {
    (void)out; (void)in; (void)ld; (void)k; (void)bias; (void)oh; (void)ow;
    (void)kh; (void)kw; (void)sh; (void)sw; (void)dh; (void)dw;
}

#endif

float ck_stream(const float *in, long n, float *out, long m, int avx2) {
    if (avx2) return ck_stream_avx2(in, n, out, m);
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    long i = 0, o = 0;
    while (i < n || o < m) {
        const long iend = n - i > 1024 ? i + 1024 : n;
        const long oend = i < n ? (long)((double)m * (double)iend / (double)n) : m;
        for (; i + 8 <= iend; i += 8)
            for (int t = 0; t < 8; t++) s[t] += in[i + t];
        for (; i < iend; i++) s[0] += in[i];
        for (; o < oend; o++) out[o] = s[o & 7];
    }
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}
