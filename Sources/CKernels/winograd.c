/* Winograd F(2x2, 3x3) transforms for 3x3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for
   Convolutional Neural Networks", 2016): each 2x2 block of outputs comes from a 4x4 input tile through
   16 element-wise products of transformed tiles and transformed weights, 16 multiplies where direct
   convolution needs 36. The products over input channels are 16 matrix products, done by sgemm on the
   Swift side; these functions are the three transforms around them.

   Tiles are numbered row-major over the output, tiles_x per row; tile t covers output rows 2 ty, 2 ty + 1
   and columns 2 tx, 2 tx + 1, and reads input rows 2 ty - pad_y ... 2 ty - pad_y + 3 (zero outside). */
#include "CKernels.h"

/* U[xi][o][c] (xi = 4 i + j) = (G g G^T)[i][j] for each 3x3 kernel g = w[o][c], o in [o0, o1).
   G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]. */
void ck_wino_weights(const float *w, long cout, long cin, long o0, long o1, float *u) {
    long plane = cout * cin;
    for (long o = o0; o < o1; o++) {
        for (long c = 0; c < cin; c++) {
            const float *g = w + (o * cin + c) * 9;
            float t[4][3];
            for (int k = 0; k < 3; k++) {
                float a = g[k], b = g[3 + k], d = g[6 + k];
                t[0][k] = a;
                t[1][k] = 0.5f * (a + b + d);
                t[2][k] = 0.5f * (a - b + d);
                t[3][k] = d;
            }
            for (int i = 0; i < 4; i++) {
                float a = t[i][0], b = t[i][1], d = t[i][2];
                float *dst = u + (4 * i) * plane + o * cin + c;
                dst[0] = a;
                dst[plane] = 0.5f * (a + b + d);
                dst[2 * plane] = 0.5f * (a - b + d);
                dst[3 * plane] = d;
            }
        }
    }
}

/* V[xi][c][t - t0] = (B^T d B)[i][j] for tiles t in [t0, t0 + tb) of input x [cin][h][w], d the tile's 4x4
   input patch. B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]. */
void ck_wino_input(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                   long t0, long tb, float *v) {
    long stride = cin * tb;
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
            float *dst = v + c * tb + (t - t0);
            for (int i = 0; i < 4; i++) {
                dst[(4 * i + 0) * stride] = s[i][0] - s[i][2];
                dst[(4 * i + 1) * stride] = s[i][1] + s[i][2];
                dst[(4 * i + 2) * stride] = s[i][2] - s[i][1];
                dst[(4 * i + 3) * stride] = s[i][1] - s[i][3];
            }
        }
    }
}

/* out[o][y][x] for the tiles t in [t0, t0 + tb) from M[xi][o][t - t0]: Y = A^T m A, keeping outputs inside
   out_h x out_w. A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]. Bias and activation are the caller's. */
void ck_wino_output(const float *m, long cout, long out_h, long out_w, long tiles_x, long t0, long tb, float *out) {
    long stride = cout * tb;
    for (long o = 0; o < cout; o++) {
        float *plane = out + o * out_h * out_w;
        for (long t = t0; t < t0 + tb; t++) {
            const float *src = m + o * tb + (t - t0);
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
    }
}
