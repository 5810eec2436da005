/* Multi-scale deformable attention's sampling (Deformable DETR eq. 2; ms_deform_attn_core_pytorch): every query
   reads, per head, level and point, a bilinear sample of its level's values (grid_sample, align_corners false,
   zeros outside) and sums them weighted by the point's attention weight.

   The values lie as [tokens][heads][dh] (a token's row `ld` floats long), so the four corners of a sample are four
   contiguous runs of dh floats: no gathers. Per query and head the accumulators (up to 64 channels) stay in
   registers over every level and point; wider heads run in blocks of 64 channels, the taps recomputed per block.
   Taps outside the map are skipped (not read with weight 0), so a non-finite value there never reaches the sum,
   as in grid_sample. */
#include "CKernels.h"

#include <math.h>

/* The taps of one point: up to four (token offset from the level's first token, weight times the attention weight);
   returns how many lie inside the map. (x, y) are the normalised location; the sample is at pixel coordinates
   (x * w - 0.5, y * h - 0.5), pixel centres at integers, as grid_sample with align_corners false. */
static inline __attribute__((always_inline)) int ck_msda_taps(float lx, float ly, long h, long w, float a,
                                                              long off[4], float wt[4]) {
    const float x = lx * (float)w - 0.5f, y = ly * (float)h - 0.5f;
    /* false for NaN and infinities too */
    if (!(x > -1.0f && y > -1.0f && x < (float)w && y < (float)h)) return 0;
    const float fx = floorf(x), fy = floorf(y);
    const long x0 = (long)fx, y0 = (long)fy;
    const float ax = x - fx, ay = y - fy, bx = 1.0f - ax, by = 1.0f - ay;
    const int in_x0 = x0 >= 0, in_x1 = x0 + 1 < w, in_y0 = y0 >= 0, in_y1 = y0 + 1 < h;
    int n = 0;
    if (in_y0 && in_x0) { off[n] = y0 * w + x0; wt[n++] = by * bx * a; }
    if (in_y0 && in_x1) { off[n] = y0 * w + x0 + 1; wt[n++] = by * ax * a; }
    if (in_y1 && in_x0) { off[n] = (y0 + 1) * w + x0; wt[n++] = ay * bx * a; }
    if (in_y1 && in_x1) { off[n] = (y0 + 1) * w + x0 + 1; wt[n++] = ay * ax * a; }
    return n;
}

/* Portable: the same loops in plain C (out zeroed, then every tap added channel by channel). */
void ck_msda_portable(const ck_msda_problem *p, long q0, long q1) {
    const long heads = p->heads, dh = p->dh, lp = p->levels * p->points;
    for (long q = q0; q < q1; q++) {
        for (long hd = 0; hd < heads; hd++) {
            float *o = p->out + q * p->ldo + hd * dh;
            for (long c = 0; c < dh; c++) o[c] = 0.0f;
            const long e0 = (q * heads + hd) * lp;
            for (long l = 0; l < p->levels; l++) {
                const long h = p->shapes[2 * l], w = p->shapes[2 * l + 1];
                const float *base = p->value + p->starts[l] * p->ld + hd * dh;
                for (long pt = 0; pt < p->points; pt++) {
                    const long e = e0 + l * p->points + pt;
                    long off[4];
                    float wt[4];
                    const int n = ck_msda_taps(p->loc[2 * e], p->loc[2 * e + 1], h, w, p->weight[e], off, wt);
                    for (int t = 0; t < n; t++) {
                        const float *v = base + off[t] * p->ld;
                        for (long c = 0; c < dh; c++) o[c] += wt[t] * v[c];
                    }
                }
            }
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_AVX2 __attribute__((target("avx2,fma")))
#include "simd_math.h"

/* The vector kernels, written once for both widths: per query and head, blocks of up to four vectors of channels
   (4 x LANES), `nv` constant at each call so that the accumulators live in registers; the last vector's lanes past
   dh masked off (`tail`). VEC/MASK: the vector and mask types; ZERO(), SET1(x), LOAD(mask, ptr), FMA(a, b, c),
   STORE(ptr, mask, v); FULL: the all-lanes mask; TAIL(lanes): the mask of the first `lanes` lanes. */
#define CK_MSDA_DEFINE(NAME, ATTR, LANES, VEC, MASK, ZERO, SET1, LOAD, FMA, STORE, FULL, TAIL)                       \
static inline __attribute__((always_inline)) ATTR void NAME##_block(const ck_msda_problem *p, long q, long hd,      \
                                                                    long c0, int nv, MASK tail) {                   \
    const long dh = p->dh, lp = p->levels * p->points, ld = p->ld;                                                  \
    const MASK m0 = nv == 1 ? tail : FULL, m1 = nv == 2 ? tail : FULL, m2 = nv == 3 ? tail : FULL, m3 = tail;       \
    VEC acc0 = ZERO(), acc1 = acc0, acc2 = acc0, acc3 = acc0;                                                       \
    const long e0 = (q * p->heads + hd) * lp;                                                                       \
    for (long l = 0; l < p->levels; l++) {                                                                          \
        const long h = p->shapes[2 * l], w = p->shapes[2 * l + 1];                                                  \
        const float *base = p->value + p->starts[l] * ld + hd * dh + c0;                                            \
        for (long pt = 0; pt < p->points; pt++) {                                                                   \
            const long e = e0 + l * p->points + pt;                                                                 \
            long off[4];                                                                                            \
            float wt[4];                                                                                            \
            const int n = ck_msda_taps(p->loc[2 * e], p->loc[2 * e + 1], h, w, p->weight[e], off, wt);              \
            for (int t = 0; t < n; t++) {                                                                           \
                const float *v = base + off[t] * ld;                                                                \
                const VEC s = SET1(wt[t]);                                                                          \
                acc0 = FMA(s, LOAD(m0, v), acc0);                                                                   \
                if (nv > 1) acc1 = FMA(s, LOAD(m1, v + LANES), acc1);                                               \
                if (nv > 2) acc2 = FMA(s, LOAD(m2, v + 2 * LANES), acc2);                                           \
                if (nv > 3) acc3 = FMA(s, LOAD(m3, v + 3 * LANES), acc3);                                           \
            }                                                                                                       \
        }                                                                                                           \
    }                                                                                                               \
    float *o = p->out + q * p->ldo + hd * dh + c0;                                                                  \
    STORE(o, m0, acc0);                                                                                             \
    if (nv > 1) STORE(o + LANES, m1, acc1);                                                                         \
    if (nv > 2) STORE(o + 2 * LANES, m2, acc2);                                                                     \
    if (nv > 3) STORE(o + 3 * LANES, m3, acc3);                                                                     \
}                                                                                                                   \
ATTR void NAME(const ck_msda_problem *p, long q0, long q1) {                                                        \
    const long dh = p->dh;                                                                                          \
    for (long q = q0; q < q1; q++) {                                                                                \
        for (long hd = 0; hd < p->heads; hd++) {                                                                    \
            for (long c0 = 0; c0 < dh; c0 += 4 * LANES) {                                                           \
                const long rest = dh - c0 < 4 * LANES ? dh - c0 : 4 * LANES;                                        \
                const int nv = (int)((rest + LANES - 1) / LANES);                                                   \
                const MASK tail = TAIL((int)(rest - (nv - 1) * LANES));   /* 1 ... LANES lanes */                   \
                switch (nv) {                                                                                       \
                case 1: NAME##_block(p, q, hd, c0, 1, tail); break;                                                 \
                case 2: NAME##_block(p, q, hd, c0, 2, tail); break;                                                 \
                case 3: NAME##_block(p, q, hd, c0, 3, tail); break;                                                 \
                default: NAME##_block(p, q, hd, c0, 4, tail); break;                                                \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
    }                                                                                                               \
}

/* AVX-512: mask registers. */
#define CK_Z_LOAD(m, ptr) _mm512_maskz_loadu_ps(m, ptr)
#define CK_Z_TAIL(lanes) ((__mmask16)((lanes) >= 16 ? 0xFFFF : (1u << (lanes)) - 1))
CK_MSDA_DEFINE(ck_msda_avx512, CK_AVX512, 16, __m512, __mmask16, _mm512_setzero_ps, _mm512_set1_ps, CK_Z_LOAD,
               _mm512_fmadd_ps, _mm512_mask_storeu_ps, (__mmask16)0xFFFF, CK_Z_TAIL)

/* AVX2: vector masks (lanes whose element has its sign bit set are read and written). */
#define CK_Y_LOAD(m, ptr) _mm256_maskload_ps(ptr, m)
#define CK_Y_TAIL(lanes) _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
CK_MSDA_DEFINE(ck_msda_avx2, CK_AVX2, 8, __m256, __m256i, _mm256_setzero_ps, _mm256_set1_ps, CK_Y_LOAD,
               _mm256_fmadd_ps, _mm256_maskstore_ps, _mm256_set1_epi32(-1), CK_Y_TAIL)

#else

void ck_msda_avx512(const ck_msda_problem *p, long q0, long q1) { (void)p; (void)q0; (void)q1; }
void ck_msda_avx2(const ck_msda_problem *p, long q0, long q1) { (void)p; (void)q0; (void)q1; }

#endif
