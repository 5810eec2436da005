/* Winograd F(2x2, 3x3) transforms for 3x3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for
   Convolutional Neural Networks", 2016): each 2x2 block of outputs comes from a 4x4 input tile through
   16 element-wise products of transformed tiles and transformed weights, 16 multiplies where direct
   convolution needs 36. The products over input channels are 16 matrix products, done by the engine's
   micro-kernel (ck_wino_gemm_avx2 in convgemm.c, on operands these transforms lay out for it) or by sgemm;
   these functions are the three transforms around them.

   Tiles are numbered row-major over the output, tiles_x per row; tile t covers output rows 2 ty, 2 ty + 1
   and columns 2 tx, 2 tx + 1, and reads input rows 2 ty - pad_y ... 2 ty - pad_y + 3 (zero outside). */
#include "CKernels.h"

#include <stdlib.h>

/* U[xi][o][c] (xi = 4 i + j) = (G g G^T)[i][j] for each 3x3 kernel g = w[o][c], o in [o0, o1).
   G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]. (ck_wino_weights_avx2 lays U out for the
   micro-kernel instead.) */
/* One kernel w[o][c] into U (plane floats between the U[xi]). */
static inline void ck_wino_kernel(const float *w, long cin, long o, long c, long plane, int packed, float *u) {
    const float *g = w + (o * cin + c) * 9;
    float t[4][3];
    for (int k = 0; k < 3; k++) {
        float a = g[k], b = g[3 + k], d = g[6 + k];
        t[0][k] = a;
        t[1][k] = 0.5f * (a + b + d);
        t[2][k] = 0.5f * (a - b + d);
        t[3][k] = d;
    }
    float *at = u + (packed ? (o / 4) * cin * 4 + c * 4 + o % 4 : o * cin + c);
    for (int i = 0; i < 4; i++) {
        float a = t[i][0], b = t[i][1], d = t[i][2];
        float *dst = at + (4 * i) * plane;
        dst[0] = a;
        dst[plane] = 0.5f * (a + b + d);
        dst[2 * plane] = 0.5f * (a - b + d);
        dst[3 * plane] = d;
    }
}

void ck_wino_weights(const float *w, long cout, long cin, long o0, long o1, float *u) {
    for (long o = o0; o < o1; o++) {
        for (long c = 0; c < cin; c++) ck_wino_kernel(w, cin, o, c, cout * cin, 0, u);
    }
}

/* V[xi][c][t - t0] = (B^T d B)[i][j] for tiles t in [t0, t0 + tb) of input x [cin][h][w], d the tile's 4x4
   input patch. B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]. (ck_wino_input_avx2 lays V out for
   the micro-kernel instead.) */
/* V for channels 0 ..< cin: laid out as ck_wino_input's, or with `packed` in panels of 24 tiles for ctotal channels
   (ck_wino_input_avx2's layout and its fallback). */
static void ck_wino_input_layout(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                                 long t0, long tb, int packed, long ctotal, float *v) {
    const long stride = packed ? (tb + 23) / 24 * 24 * ctotal : cin * tb;
    for (long c = 0; c < cin; c++) {
        const float *plane = x + c * h * w;
        for (long t = t0; t < t0 + tb; t++) {
            long y0 = 2 * (t / tiles_x) - pad_y, x0 = 2 * (t % tiles_x) - pad_x;
            float d[4][4];
            if (y0 >= 0 && x0 >= 0 && y0 + 4 <= h && x0 + 4 <= w) {
                for (int r = 0; r < 4; r++) {
                    const float *row = plane + (y0 + r) * w + x0;
                    d[r][0] = row[0]; d[r][1] = row[1]; d[r][2] = row[2]; d[r][3] = row[3];
                }
            } else {
                for (int r = 0; r < 4; r++) {
                    for (int k = 0; k < 4; k++) {
                        long yy = y0 + r, xx = x0 + k;
                        d[r][k] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? plane[yy * w + xx] : 0.0f;
                    }
                }
            }
            float s[4][4];
            for (int k = 0; k < 4; k++) {
                s[0][k] = d[0][k] - d[2][k];
                s[1][k] = d[1][k] + d[2][k];
                s[2][k] = d[2][k] - d[1][k];
                s[3][k] = d[1][k] - d[3][k];
            }
            const long lt = t - t0;
            float *dst = v + (packed ? (lt / 24) * ctotal * 24 + c * 24 + lt % 24 : c * tb + lt);
            for (int i = 0; i < 4; i++) {
                dst[(4 * i + 0) * stride] = s[i][0] - s[i][2];
                dst[(4 * i + 1) * stride] = s[i][1] + s[i][2];
                dst[(4 * i + 2) * stride] = s[i][2] - s[i][1];
                dst[(4 * i + 3) * stride] = s[i][1] - s[i][3];
            }
        }
    }
}

void ck_wino_input(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                   long t0, long tb, float *v) {
    ck_wino_input_layout(x, cin, h, w, pad_y, pad_x, tiles_x, t0, tb, 0, cin, v);
}

/* out[o][y][x] for outputs o in [o0, o1) and the tiles t in [t0, t0 + tb) from M[xi][o][t - t0]: Y = A^T m A, keeping outputs inside
   out_h x out_w. A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]. Bias and activation are the caller's. */
/* One tile t (column lt of the products) of output channel o. */
static inline void ck_wino_tile_out(const float *m, long stride, long o, long tb, long lt, long t, long tiles_x,
                                    long out_h, long out_w, float *plane) {
    const float *src = m + o * tb + lt;
    float q[16];
    for (int k = 0; k < 16; k++) q[k] = src[k * stride];
    float s0[4], s1[4];
    for (int k = 0; k < 4; k++) {
        s0[k] = q[k] + q[4 + k] + q[8 + k];
        s1[k] = q[4 + k] - q[8 + k] - q[12 + k];
    }
    long y = 2 * (t / tiles_x), x = 2 * (t % tiles_x);
    float y00 = s0[0] + s0[1] + s0[2], y01 = s0[1] - s0[2] - s0[3];
    float y10 = s1[0] + s1[1] + s1[2], y11 = s1[1] - s1[2] - s1[3];
    float *row = plane + y * out_w + x;
    row[0] = y00;
    if (x + 1 < out_w) row[1] = y01;
    if (y + 1 < out_h) {
        row[out_w] = y10;
        if (x + 1 < out_w) row[out_w + 1] = y11;
    }
}

void ck_wino_output(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x, long t0, long tb,
                    float *out) {
    const long stride = cout * tb;
    for (long o = o0; o < o1; o++) {
        for (long t = t0; t < t0 + tb; t++) ck_wino_tile_out(m, stride, o, tb, t - t0, t, tiles_x, out_h, out_w, out + o * out_h * out_w);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_AVX2 __attribute__((target("avx2,fma")))
#include "simd_math.h"

/* Eight values for lanes lt ..< lt + 8 of one channel's row of a packed V[xi] (panels `panel_floats` apart): one
   store, or two masked ones where the eight cross into the next panel. */
static inline CK_AVX2 void ck_store_lanes(float *row, long panel_floats, long lt, __m256 val) {
    static const int ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    float *at = row + (lt / 24) * panel_floats + lt % 24;
    const long n1 = 24 - lt % 24;   /* lanes left in this panel */
    if (n1 >= 8) {
        _mm256_storeu_ps(at, val);
        return;
    }
    const __m256i first = _mm256_loadu_si256((const __m256i *)(ones + 8 - n1));
    _mm256_maskstore_ps(at, first, val);
    /* lane i >= n1 goes to lane i - n1 of the next panel, which starts panel_floats - 24 + n1 after `at` */
    _mm256_maskstore_ps(at + panel_floats - 24, _mm256_xor_si256(first, _mm256_set1_epi32(-1)), val);
}

/* Columns 2 tx + k (k = 0 ..< 4) of a padded row for eight tiles tx ..< tx + 8, in order. */
static inline CK_AVX2 void ck_tile_cols(const float *row, __m256 d[4]) {
    const __m256 a = _mm256_loadu_ps(row), b = _mm256_loadu_ps(row + 8);
    const __m256 a2 = _mm256_loadu_ps(row + 2), b2 = _mm256_loadu_ps(row + 10);
    d[0] = ck_in_order(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
    d[1] = ck_in_order(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    d[2] = ck_in_order(_mm256_shuffle_ps(a2, b2, _MM_SHUFFLE(2, 0, 2, 0)));
    d[3] = ck_in_order(_mm256_shuffle_ps(a2, b2, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The input rows y0 ..< y0 + 4 of a plane for one row of tiles: rp[r] points at row y0 + r copied into rows + (y0 + r
   mod 4) * len (column k of the copy is input column k - pad_x; the columns around the row are zero as rows came from
   calloc and are never written), or at the row of zeros at rows + 4 * len for rows outside the plane. held[b] is the
   input row buffer b holds (-1: none yet): the next row of tiles starts two input rows down, so half its rows are
   there already and only the other two are copied. */
static inline CK_AVX2 void ck_wino_pad_rows(const float *plane, long h, long w, long pad_x, long y0, float *rows, long len,
                                            long held[4], const float *rp[4]) {
    for (long r = 0; r < 4; r++) {
        const long y = y0 + r;
        if (y < 0 || y >= h) {
            rp[r] = rows + 4 * len;
            continue;
        }
        float *buf = rows + (y & 3) * len;
        rp[r] = buf;
        if (held[y & 3] == y) continue;
        held[y & 3] = y;
        const float *src = plane + y * w;
        long k = 0;
        for (; k + 8 <= w; k += 8) _mm256_storeu_ps(buf + pad_x + k, _mm256_loadu_ps(src + k));
        for (; k < w; k++) buf[pad_x + k] = src[k];
    }
}

/* One group of eight tiles tx ..< tx + 8 (column lt of the block) of one channel from its four padded rows into
   vc, the channel's place in the packed V. */
static CK_AVX2 void ck_wino_group8(const float *const rp[4], long tx, long lt, float *vc, long stride, long panel_floats) {
    __m256 d[4][4];
    for (long r = 0; r < 4; r++) ck_tile_cols(rp[r] + 2 * tx, d[r]);
    for (int k = 0; k < 4; k++) {
        const __m256 s0 = _mm256_sub_ps(d[0][k], d[2][k]), s1 = _mm256_add_ps(d[1][k], d[2][k]);
        const __m256 s2 = _mm256_sub_ps(d[2][k], d[1][k]), s3 = _mm256_sub_ps(d[1][k], d[3][k]);
        d[0][k] = s0; d[1][k] = s1; d[2][k] = s2; d[3][k] = s3;
    }
    for (int i = 0; i < 4; i++) {
        float *at = vc + (4 * i) * stride;
        ck_store_lanes(at, panel_floats, lt, _mm256_sub_ps(d[i][0], d[i][2]));
        ck_store_lanes(at + stride, panel_floats, lt, _mm256_add_ps(d[i][1], d[i][2]));
        ck_store_lanes(at + 2 * stride, panel_floats, lt, _mm256_sub_ps(d[i][2], d[i][1]));
        ck_store_lanes(at + 3 * stride, panel_floats, lt, _mm256_sub_ps(d[i][1], d[i][3]));
    }
}

typedef void (*ck_wino_group_fn)(const float *const rp[4], long tx, long lt, float *vc, long stride, long panel_floats);

/* The packed input transform of blocks of whole tile rows, `group` tiles at a time by `step` (ck_wino_group8, or the
   AVX-512 ck_wino_group16); the last group of a row overlaps the one before (the same values again). */
static CK_AVX2 void ck_wino_input_groups(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                                         long t0, long tb, long ctotal, float *v, long group, ck_wino_group_fn step) {
    const long panel_floats = ctotal * 24, stride = (tb + 23) / 24 * panel_floats;
    /* Four padded input rows and a row of zeros (ck_wino_pad_rows); a group reads up to column 2 tx + 2 group + 1. */
    const long len = 2 * tiles_x + 34 + (w + pad_x);
    float *rows = calloc((size_t)(5 * len), sizeof(float));
    const long ty0 = t0 / tiles_x, nrows = tb / tiles_x;
    for (long c = 0; c < cin; c++) {
        const float *plane = x + c * h * w;
        float *vc = v + c * 24;
        long held[4] = {-1, -1, -1, -1};
        for (long r0 = 0; r0 < nrows; r0++) {
            const float *rp[4];
            ck_wino_pad_rows(plane, h, w, pad_x, 2 * (ty0 + r0) - pad_y, rows, len, held, rp);
            for (long tx = 0; tx < tiles_x; tx += group) {
                if (tx + group > tiles_x) tx = tiles_x - group;
                step(rp, tx, r0 * tiles_x + tx, vc, stride, panel_floats);
            }
        }
    }
    free(rows);
}

CK_AVX2 void ck_wino_input_avx2(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                                long t0, long tb, long ctotal, float *v) {
    if (tiles_x < 8 || t0 % tiles_x || tb % tiles_x) {
        ck_wino_input_layout(x, cin, h, w, pad_y, pad_x, tiles_x, t0, tb, 1, ctotal, v);
        return;
    }
    ck_wino_input_groups(x, cin, h, w, pad_y, pad_x, tiles_x, t0, tb, ctotal, v, 8, ck_wino_group8);
}

CK_AVX2 void ck_wino_weights_avx2(const float *w, long cout, long cin, long o0, long o1, float *u) {
    const long plane = (cout + 3) / 4 * 4 * cin;
    /* Lane 4 q + r: kernel (o + r, c + q), whose packed place is 8 floats in a row for two channels. */
    int idx[8];
    for (int j = 0; j < 8; j++) idx[j] = (int)((j % 4) * cin * 9 + (j / 4) * 9);
    const __m256i index = _mm256_loadu_si256((const __m256i *)idx);
    const __m256 half = _mm256_set1_ps(0.5f);
    long o = o0;
    for (; o < o1 && o % 4; o++)
        for (long c = 0; c < cin; c++) ck_wino_kernel(w, cin, o, c, plane, 1, u);
    for (; o + 4 <= o1; o += 4) {
        long c = 0;
        for (; c + 2 <= cin; c += 2) {
            const float *g = w + (o * cin + c) * 9;
            __m256 t[4][3];
            for (int k = 0; k < 3; k++) {
                const __m256 a = _mm256_i32gather_ps(g + k, index, 4), b = _mm256_i32gather_ps(g + 3 + k, index, 4);
                const __m256 d = _mm256_i32gather_ps(g + 6 + k, index, 4);
                t[0][k] = a;
                t[1][k] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(a, b), d));
                t[2][k] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(a, b), d));
                t[3][k] = d;
            }
            float *at = u + (o / 4) * cin * 4 + c * 4;
            for (int i = 0; i < 4; i++) {
                const __m256 a = t[i][0], b = t[i][1], d = t[i][2];
                float *dst = at + (4 * i) * plane;
                _mm256_storeu_ps(dst, a);
                _mm256_storeu_ps(dst + plane, _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(a, b), d)));
                _mm256_storeu_ps(dst + 2 * plane, _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(a, b), d)));
                _mm256_storeu_ps(dst + 3 * plane, d);
            }
        }
        for (; c < cin; c++)
            for (long r = 0; r < 4; r++) ck_wino_kernel(w, cin, o + r, c, plane, 1, u);
    }
    for (; o < o1; o++)
        for (long c = 0; c < cin; c++) ck_wino_kernel(w, cin, o, c, plane, 1, u);
}

CK_AVX2 void ck_wino_output_avx2(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x,
                                 long t0, long tb, float *out) {
    if (tiles_x < 8 || t0 % tiles_x || tb % tiles_x) {
        ck_wino_output(m, cout, o0, o1, out_h, out_w, tiles_x, t0, tb, out);
        return;
    }
    const long stride = cout * tb, ty0 = t0 / tiles_x, rows = tb / tiles_x;
    /* groups of 8 tiles whose 16 output columns all exist: with an odd width the last tile has one */
    const long full = out_w % 2 ? tiles_x - 1 : tiles_x;
    for (long o = o0; o < o1; o++) {
        float *plane = out + o * out_h * out_w;
        const float *mo = m + o * tb;
        for (long r = 0; r < rows; r++) {
            const long y = 2 * (ty0 + r);
            long tx = 0;
            for (; tx < full && full >= 8; tx += 8) {
                if (tx + 8 > full) tx = full - 8;   /* the last eight overlap the ones before: same values */
                const float *src = mo + r * tiles_x + tx;
                __m256 q[16];
                for (int k = 0; k < 16; k++) q[k] = _mm256_loadu_ps(src + k * stride);
                __m256 s0[4], s1[4];
                for (int k = 0; k < 4; k++) {
                    s0[k] = _mm256_add_ps(_mm256_add_ps(q[k], q[4 + k]), q[8 + k]);
                    s1[k] = _mm256_sub_ps(_mm256_sub_ps(q[4 + k], q[8 + k]), q[12 + k]);
                }
                const __m256 y00 = _mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]);
                const __m256 y01 = _mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]);
                float *row = plane + y * out_w + 2 * tx;
                __m256 lo = _mm256_unpacklo_ps(y00, y01), hi = _mm256_unpackhi_ps(y00, y01);
                _mm256_storeu_ps(row, _mm256_permute2f128_ps(lo, hi, 0x20));
                _mm256_storeu_ps(row + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
                if (y + 1 < out_h) {
                    const __m256 y10 = _mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]);
                    const __m256 y11 = _mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]);
                    lo = _mm256_unpacklo_ps(y10, y11); hi = _mm256_unpackhi_ps(y10, y11);
                    _mm256_storeu_ps(row + out_w, _mm256_permute2f128_ps(lo, hi, 0x20));
                    _mm256_storeu_ps(row + out_w + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
                }
            }
            /* the tiles no group took (the last one of an odd width) */
            for (tx = full >= 8 ? full : 0; tx < tiles_x; tx++) {
                const long lt = r * tiles_x + tx;
                ck_wino_tile_out(m, stride, o, tb, lt, t0 + lt, tiles_x, out_h, out_w, plane);
            }
        }
    }
}

/* The AVX-512 transforms: sixteen tiles at a time, in the same packed layouts. */

/* Sixteen values for lanes lt ..< lt + 16 of one channel's row of a packed V[xi]: one store, or two masked ones where
   the sixteen cross into the next panel (as ck_store_lanes). */
static inline CK_AVX512 void ck_store_lanes16(float *row, long panel_floats, long lt, __m512 val) {
    float *at = row + (lt / 24) * panel_floats + lt % 24;
    const long n1 = 24 - lt % 24;
    if (n1 >= 16) {
        _mm512_storeu_ps(at, val);
        return;
    }
    const __mmask16 first = (__mmask16)((1u << n1) - 1);
    _mm512_mask_storeu_ps(at, first, val);
    _mm512_mask_storeu_ps(at + panel_floats - 24, (__mmask16)~first, val);
}

/* Columns 2 tx + k (k = 0 ..< 4) of a padded row for sixteen tiles tx ..< tx + 16, in order (reads row[0 ... 33]). */
static inline CK_AVX512 void ck_tile_cols16(const float *row, __m512 d[4]) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 a = _mm512_loadu_ps(row), b = _mm512_loadu_ps(row + 16);
    const __m512 a2 = _mm512_loadu_ps(row + 2), b2 = _mm512_loadu_ps(row + 18);
    d[0] = _mm512_permutex2var_ps(a, even, b);
    d[1] = _mm512_permutex2var_ps(a, odd, b);
    d[2] = _mm512_permutex2var_ps(a2, even, b2);
    d[3] = _mm512_permutex2var_ps(a2, odd, b2);
}

/* ck_wino_group8 for sixteen tiles. */
static CK_AVX512 void ck_wino_group16(const float *const rp[4], long tx, long lt, float *vc, long stride, long panel_floats) {
    __m512 d[4][4];
    for (long r = 0; r < 4; r++) ck_tile_cols16(rp[r] + 2 * tx, d[r]);
    for (int k = 0; k < 4; k++) {
        const __m512 s0 = _mm512_sub_ps(d[0][k], d[2][k]), s1 = _mm512_add_ps(d[1][k], d[2][k]);
        const __m512 s2 = _mm512_sub_ps(d[2][k], d[1][k]), s3 = _mm512_sub_ps(d[1][k], d[3][k]);
        d[0][k] = s0; d[1][k] = s1; d[2][k] = s2; d[3][k] = s3;
    }
    for (int i = 0; i < 4; i++) {
        float *at = vc + (4 * i) * stride;
        ck_store_lanes16(at, panel_floats, lt, _mm512_sub_ps(d[i][0], d[i][2]));
        ck_store_lanes16(at + stride, panel_floats, lt, _mm512_add_ps(d[i][1], d[i][2]));
        ck_store_lanes16(at + 2 * stride, panel_floats, lt, _mm512_sub_ps(d[i][2], d[i][1]));
        ck_store_lanes16(at + 3 * stride, panel_floats, lt, _mm512_sub_ps(d[i][1], d[i][3]));
    }
}

CK_AVX512 void ck_wino_input_avx512(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                                    long t0, long tb, long ctotal, float *v) {
    /* Rows of fewer than 64 tiles go eight at a time: every other group of sixteen crosses a panel of 24 (two masked
       stores) and a last group overlapping the one before redoes more, so the wider vectors only paid on 160-wide
       maps (32 channels at 160x160 0.43 vs 0.53 ms, one core), not on 80-wide (64 at 80x80 0.34 vs 0.34) nor 40-wide
       ones (128 at 40x40 0.50 vs 0.44). */
    if (tiles_x < 64 || t0 % tiles_x || tb % tiles_x) {
        ck_wino_input_avx2(x, cin, h, w, pad_y, pad_x, tiles_x, t0, tb, ctotal, v);
        return;
    }
    ck_wino_input_groups(x, cin, h, w, pad_y, pad_x, tiles_x, t0, tb, ctotal, v, 16, ck_wino_group16);
}

CK_AVX512 void ck_wino_output_avx512(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x,
                                     long t0, long tb, const float *bias, int act, float *out) {
    const long ty0 = t0 / tiles_x, rows = tb / tiles_x;
    if (tiles_x < 32) {
        /* Rows of fewer than 32 tiles: a last group of sixteen overlapping the one before redoes too much (20 tiles:
           0.12 vs 0.10 ms for 128 channels at 40x40, one core), so eight at a time, an output channel at a time, its
           rows of the block then finished while they are in L1. */
        const long y0 = 2 * ty0, y1 = 2 * (ty0 + rows) < out_h ? 2 * (ty0 + rows) : out_h;
        for (long o = o0; o < o1; o++) {
            ck_wino_output_avx2(m, cout, o, o + 1, out_h, out_w, tiles_x, t0, tb, out);
            if (bias || act >= 0)
                ck_bias_act_avx512(out + o * out_h * out_w + y0 * out_w, (y1 - y0) * out_w, bias ? bias[o] : 0.0f, act);
        }
        return;
    }
    const long stride = cout * tb;
    /* groups of 16 tiles whose 32 output columns all exist: with an odd width the last tile has one */
    const long full = out_w % 2 ? tiles_x - 1 : tiles_x;
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (long o = o0; o < o1; o++) {
        float *plane = out + o * out_h * out_w;
        const float *mo = m + o * tb;
        const float b = bias ? bias[o] : 0.0f;
        for (long r = 0; r < rows; r++) {
            const long y = 2 * (ty0 + r);
            long tx = 0;
            for (; tx < full && full >= 16; tx += 16) {
                if (tx + 16 > full) tx = full - 16;   /* the last sixteen overlap the ones before: same values */
                const float *src = mo + r * tiles_x + tx;
                __m512 q[16];
                for (int k = 0; k < 16; k++) q[k] = _mm512_loadu_ps(src + k * stride);
                __m512 s0[4], s1[4];
                for (int k = 0; k < 4; k++) {
                    s0[k] = _mm512_add_ps(_mm512_add_ps(q[k], q[4 + k]), q[8 + k]);
                    s1[k] = _mm512_sub_ps(_mm512_sub_ps(q[4 + k], q[8 + k]), q[12 + k]);
                }
                const __m512 y00 = _mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]);
                const __m512 y01 = _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]);
                float *row = plane + y * out_w + 2 * tx;
                _mm512_storeu_ps(row, _mm512_permutex2var_ps(y00, lo_idx, y01));
                _mm512_storeu_ps(row + 16, _mm512_permutex2var_ps(y00, hi_idx, y01));
                if (y + 1 < out_h) {
                    const __m512 y10 = _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]);
                    const __m512 y11 = _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]);
                    _mm512_storeu_ps(row + out_w, _mm512_permutex2var_ps(y10, lo_idx, y11));
                    _mm512_storeu_ps(row + out_w + 16, _mm512_permutex2var_ps(y10, hi_idx, y11));
                }
            }
            /* the tiles no group took (the last one of an odd width) */
            for (tx = full >= 16 ? full : 0; tx < tiles_x; tx++) {
                const long lt = r * tiles_x + tx;
                ck_wino_tile_out(m, stride, o, tb, lt, t0 + lt, tiles_x, out_h, out_w, plane);
            }
            /* bias and activation on the one or two output rows just written, while they are in L1 */
            if (bias || act >= 0)
                ck_bias_act_avx512(plane + y * out_w, (y + 1 < out_h ? 2 : 1) * out_w, b, act);
        }
    }
}

#else

void ck_wino_output_avx2(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x,
                         long t0, long tb, float *out) {
    (void)m; (void)cout; (void)o0; (void)o1; (void)out_h; (void)out_w; (void)tiles_x; (void)t0; (void)tb; (void)out;
}

void ck_wino_weights_avx2(const float *w, long cout, long cin, long o0, long o1, float *u) {
    (void)w; (void)cout; (void)cin; (void)o0; (void)o1; (void)u;
}

void ck_wino_input_avx2(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                        long t0, long tb, long ctotal, float *v) {
    (void)ctotal; (void)x; (void)cin; (void)h; (void)w; (void)pad_y; (void)pad_x; (void)tiles_x; (void)t0; (void)tb; (void)v;
}

void ck_wino_input_avx512(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                          long t0, long tb, long ctotal, float *v) {
    (void)ctotal; (void)x; (void)cin; (void)h; (void)w; (void)pad_y; (void)pad_x; (void)tiles_x; (void)t0; (void)tb; (void)v;
}

void ck_wino_output_avx512(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x,
                           long t0, long tb, const float *bias, int act, float *out) {
    (void)m; (void)cout; (void)o0; (void)o1; (void)out_h; (void)out_w; (void)tiles_x; (void)t0; (void)tb; (void)bias;
    (void)act; (void)out;
}

#endif
