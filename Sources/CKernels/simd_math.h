/* Vector math shared by the AVX2 and AVX-512 kernels (kernels.c, convgemm.c); include after defining CK_AVX2 and
   <immintrin.h>. The AVX-512 versions (16 lanes) follow the same steps with the same constants, so both kernel sets
   round alike. */
#ifndef DETR_TUI_SIMD_MATH_H
#define DETR_TUI_SIMD_MATH_H

/* The constants of the exponential (both widths): the clamp, log2(e), ln 2 in two parts (Cody-Waite), and the
   degree-7 polynomial's coefficients (Cephes' expf). */
#define CK_EXP_LO -87.3f
#define CK_EXP_HI 88.3f
#define CK_LOG2E 1.44269504088896341f
#define CK_LN2_HI 0.693359375f
#define CK_LN2_LO -2.12194440e-4f
#define CK_EXP_P0 1.9875691500e-4f
#define CK_EXP_P1 1.3981999507e-3f
#define CK_EXP_P2 8.3334519073e-3f
#define CK_EXP_P3 4.1665795894e-2f
#define CK_EXP_P4 1.6666665459e-1f
#define CK_EXP_P5 5.0000001201e-1f

/* e^x for eight lanes: x = n ln2 + r with |r| <= ln2 / 2, e^r from a degree-7 polynomial, 2^n put into
   the exponent bits. Below -87.3 (where floats stop being normal) 0, as for -inf (a masked attention logit);
   NaN lanes come out 0 too, so callers that keep NaNs blend them back (ck_act8). */
static inline CK_AVX2 __m256 ck_exp8(__m256 x) {
    const __m256 normal = _mm256_cmp_ps(x, _mm256_set1_ps(CK_EXP_LO), _CMP_GE_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(CK_EXP_LO)), _mm256_set1_ps(CK_EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(CK_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CK_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CK_LN2_LO), r);
    __m256 p = _mm256_set1_ps(CK_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), normal);
}

/* kind 0: exp, 1: sigmoid, 2: silu. NaN inputs stay NaN. */
static inline CK_AVX2 __m256 ck_act8(__m256 x, int kind) {
    __m256 y;
    if (kind == 0) {
        y = ck_exp8(x);
    } else {
        __m256 d = _mm256_add_ps(_mm256_set1_ps(1.0f), ck_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x)));
        y = _mm256_div_ps(kind == 1 ? _mm256_set1_ps(1.0f) : x, d);
    }
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    return _mm256_blendv_ps(y, x, nan);
}

/* Eight floats left by _mm256_shuffle_ps of two loads in the order v0 v1 v4 v5 | v2 v3 v6 v7, put in order. */
static inline CK_AVX2 __m256 ck_in_order(__m256 v) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* max(x, 0) with NaN kept: x where x > 0 or unordered, else 0. */
static inline CK_AVX2 __m256 ck_relu8(__m256 x) {
    const __m256 zero = _mm256_setzero_ps();
    return _mm256_blendv_ps(zero, x, _mm256_cmp_ps(x, zero, _CMP_NLE_UQ));
}

/* The first n of eight lanes set (n clamped to 0 ... 8), for masked loads and stores. */
static inline CK_AVX2 __m256i ck_lanes8(long n) {
    const long c = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

/* ck_exp8 on sixteen lanes. */
static inline CK_AVX512 __m512 ck_exp16(__m512 x) {
    const __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(CK_EXP_LO), _CMP_GE_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(CK_EXP_LO)), _mm512_set1_ps(CK_EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(CK_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CK_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CK_LN2_LO), r);
    __m512 p = _mm512_set1_ps(CK_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(normal, p, _mm512_castsi512_ps(e));
}

/* ck_act8 on sixteen lanes (kind 0: exp, 1: sigmoid, 2: silu; NaN stays NaN). */
static inline CK_AVX512 __m512 ck_act16(__m512 x, int kind) {
    __m512 y;
    if (kind == 0) {
        y = ck_exp16(x);
    } else {
        __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), ck_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)));
        y = _mm512_div_ps(kind == 1 ? _mm512_set1_ps(1.0f) : x, d);
    }
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/* ck_relu8 on sixteen lanes. */
static inline CK_AVX512 __m512 ck_relu16(__m512 x) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLE_UQ), x);
}

/* The mask of the first n lanes (n clamped to 0 ... 16). */
static inline CK_AVX512 __mmask16 ck_lanes16(long n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

#endif
