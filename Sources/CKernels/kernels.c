#include "CKernels.h"
#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

int ck_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

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

/* The plane for a fixed kernel width KW and stride SW (dilation 1 along rows), so the tap loop unrolls. */
static inline CK_AVX2 void ck_plane_fixed(float *out, const float *in, long ld, const float *k, float bias,
                                          long oh, long ow, long kh, long sh, long dh, const long KW, const long SW) {
    for (long i = 0; i < oh; i++) {
        float *line = out + i * ow;
        const float *top = in + i * sh * ld;
        long j = 0;
        for (; j + 16 <= ow; j += 16) {
            __m256 acc0 = _mm256_set1_ps(bias), acc1 = acc0;
            for (long ki = 0; ki < kh; ki++) {
                const float *r = top + ki * dh * ld + j * SW;
                const float *kr = k + ki * KW;
                for (long kj = 0; kj < KW; kj++) {
                    __m256 w = _mm256_broadcast_ss(kr + kj);
                    if (SW == 1) {
                        acc0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(r + kj), acc0);
                        acc1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(r + kj + 8), acc1);
                    } else {
                        acc0 = _mm256_fmadd_ps(w, ck_raw(r + (kj & ~1L), (int)(kj & 1)), acc0);
                        acc1 = _mm256_fmadd_ps(w, ck_raw(r + (kj & ~1L) + 16, (int)(kj & 1)), acc1);
                    }
                }
            }
            if (SW != 1) { acc0 = ck_in_order(acc0); acc1 = ck_in_order(acc1); }
            _mm256_storeu_ps(line + j, acc0);
            _mm256_storeu_ps(line + j + 8, acc1);
        }
        /* The last partial group is recomputed as the final 8 pixels of the row (outputs are written, not
           accumulated, so overlapping pixels get the same values again). */
        for (; j < ow && ow >= 8; j += 8) {
            if (j + 8 > ow) j = ow - 8;
            __m256 acc = _mm256_set1_ps(bias);
            for (long ki = 0; ki < kh; ki++) {
                const float *r = top + ki * dh * ld + j * SW;
                const float *kr = k + ki * KW;
                for (long kj = 0; kj < KW; kj++) {
                    __m256 v = SW == 1 ? _mm256_loadu_ps(r + kj) : ck_raw(r + (kj & ~1L), (int)(kj & 1));
                    acc = _mm256_fmadd_ps(_mm256_broadcast_ss(kr + kj), v, acc);
                }
            }
            if (SW != 1) acc = ck_in_order(acc);
            _mm256_storeu_ps(line + j, acc);
        }
        for (; j < ow; j++) {
            float acc = bias;
            for (long ki = 0; ki < kh; ki++) {
                const float *r = top + ki * dh * ld + j * SW;
                for (long kj = 0; kj < KW; kj++) acc += k[ki * KW + kj] * r[kj];
            }
            line[j] = acc;
        }
    }
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

#else

int ck_has_avx2_fma(void) { return 0; }

void ck_gather_stride2_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_exp_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_sigmoid_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_silu_avx2(float *dst, const float *src, long n) { (void)dst; (void)src; (void)n; }
void ck_bias_act_avx2(float *p, long n, float bias, int kind) { (void)p; (void)n; (void)bias; (void)kind; }

void ck_copy_plane_avx2(float *dst, long ld, const float *src, long h, long w, long ph, long pw) {
    (void)dst; (void)ld; (void)src; (void)h; (void)w; (void)ph; (void)pw;
}

void ck_depthwise_plane_avx2(float *out, const float *in, long ld, const float *k, float bias,
                             long oh, long ow, long kh, long kw, long sh, long sw, long dh, long dw) {
    (void)out; (void)in; (void)ld; (void)k; (void)bias; (void)oh; (void)ow;
    (void)kh; (void)kw; (void)sh; (void)sw; (void)dh; (void)dw;
}

#endif
