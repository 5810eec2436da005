#ifndef DETR_TUI_CKERNELS_H
#define DETR_TUI_CKERNELS_H

/* Small hot loops of the tensor engine with AVX2/FMA code paths, chosen at run time: the Swift code is
   compiled for the baseline x86-64 (SSE2) so that the binary runs anywhere; these functions are only
   called when ck_has_avx2_fma() says the processor has the instructions. */

#ifdef __cplusplus
extern "C" {
#endif

/* The processor's vector instruction sets (cpu.c), each only when the operating system also enables its registers
   (XGETBV): bits of ck_cpu_info.features. */
enum {
    CK_CPU_SSE2 = 1 << 0, CK_CPU_SSE3 = 1 << 1, CK_CPU_SSSE3 = 1 << 2, CK_CPU_SSE41 = 1 << 3, CK_CPU_SSE42 = 1 << 4,
    CK_CPU_AVX = 1 << 5, CK_CPU_AVX2 = 1 << 6, CK_CPU_FMA = 1 << 7,
    CK_CPU_AVX512F = 1 << 8, CK_CPU_AVX512DQ = 1 << 9, CK_CPU_AVX512CD = 1 << 10, CK_CPU_AVX512BW = 1 << 11,
    CK_CPU_AVX512VL = 1 << 12, CK_CPU_AVX512VNNI = 1 << 13, CK_CPU_AVX512BF16 = 1 << 14, CK_CPU_AVX512FP16 = 1 << 15
};

/* What CPUID says about the processor (all zero on other architectures). */
typedef struct {
    unsigned int features;  /* CK_CPU_* bits */
    int family, model, stepping;  /* display family and model, as /proc/cpuinfo shows them */
    char vendor[13];  /* e.g. GenuineIntel */
    char brand[49];   /* the brand string, e.g. "Intel(R) Xeon(R) Processor"; empty when the CPU has none */
} ck_cpu_info;

/* The processor's description, read once (thread-safe). */
const ck_cpu_info *ck_cpu(void);

/* 1 when the processor supports AVX2 and FMA (always 0 on other architectures). */
int ck_has_avx2_fma(void);

/* 1 when the processor supports what the AVX-512 kernels use: AVX-512F, BW, VL and DQ, with AVX2 and FMA (always 0
   on other architectures). The _avx512 functions below are only called when it returned 1; each does what the _avx2
   function of the same name does, with 16-lane vectors (the operands laid out alike). */
int ck_has_avx512(void);

/* One output plane of a depthwise convolution read from a zero-padded input plane with row length
   `ld` (at least 32 readable floats past the last row):
   out[i * ow + j] = bias + sum over (ki, kj) of k[ki * kw + kj] * in[(i * sh + ki * dh) * ld + j * sw + kj * dw].
   Only call when ck_has_avx2_fma() returned 1. */
void ck_depthwise_plane_avx2(float *out, const float *in, long ld, const float *k, float bias,
                             long oh, long ow, long kh, long kw, long sh, long sw, long dh, long dw);

/* One output plane ((h + 1) / 2 x w / 2) of a 3x3 depthwise convolution with stride 2 and padding 1, read
   straight from the h x w input plane (no padded copy): w even and at least 16. `next` (or NULL): the input plane
   of the next call, prefetched meanwhile. Only call when ck_has_avx2_fma() returned 1. */
void ck_depthwise3x3s2_avx2(float *out, const float *x, long h, long w, const float *k, float bias,
                            const float *next);

/* Copies an h x w plane into rows ph .. ph + h - 1, columns pw .. pw + w - 1 of a buffer with row
   length ld (inline vector copies: many short rows cost less than one memcpy call each).
   Only call when ck_has_avx2_fma() returned 1. */
void ck_copy_plane_avx2(float *dst, long ld, const float *src, long h, long w, long ph, long pw);

/* Pixels p0 ..< p1 of a 1x1 stride-1 conv with 1 to 3 output channels over planes of `plane` pixels:
   out[o * plane + p] = bias[o] + sum over c < cin of w[o * cin + c] * x[c * plane + p] (bias NULL: none). Each input
   row streams through once, 64 pixels (one output channel) or 32 at a time. Only call when ck_has_avx2_fma()
   returned 1. */
void ck_conv1x1_few_avx2(float *out, const float *x, const float *w, const float *bias, long cin, long cout,
                         long plane, long p0, long p1);

/* The memory floor of an op: reads in[0 ..< n] once and writes out[0 ..< m] once, interleaved (1024 floats read,
   then the matching share of the outputs written), with no arithmetic but a sum that keeps the reads. Returns the
   sum. avx2 = 1 (only when ck_has_avx2_fma() returned 1): 256-bit loads and stores; 0: portable C. */
float ck_stream(const float *in, long n, float *out, long m, int avx2);

/* dst[j] = src[2 * j] for j < n; reads nothing outside src[0 ... 2 * (n - 1)].
   Only call when ck_has_avx2_fma() returned 1. */
void ck_gather_stride2_avx2(float *dst, const float *src, long n);

/* dst[i] = exp(src[i]), 1 / (1 + exp(-src[i])) or src[i] / (1 + exp(-src[i])) for i < n, with a vector
   exponential (Cephes-style polynomial, relative error about 2e-7; arguments clamped to [-87.3, 88.3]).
   dst may equal src. Only call when ck_has_avx2_fma() returned 1. */
void ck_exp_avx2(float *dst, const float *src, long n);
void ck_sigmoid_avx2(float *dst, const float *src, long n);
void ck_silu_avx2(float *dst, const float *src, long n);

/* p[i] = act(p[i] + bias) for i < n, in place: kind -1 none, 1 sigmoid, 2 silu, 3 relu (NaN stays NaN).
   Only call when ck_has_avx2_fma() returned 1. */
void ck_bias_act_avx2(float *p, long n, float bias, int kind);
void ck_exp_avx512(float *dst, const float *src, long n);
void ck_sigmoid_avx512(float *dst, const float *src, long n);
void ck_silu_avx512(float *dst, const float *src, long n);
void ck_bias_act_avx512(float *p, long n, float bias, int kind);

/* Softmax down columns j0 ..< j1 of the n rows of s (ld floats apart; torch.softmax along a non-last axis), with the
   exponential above (NaN in a column makes that column NaN, as torch): without `weights`, into d in the same layout
   (d may equal s); with `weights` (n of them), only the expectation sum_i softmax_i * weights[i] of each column, into
   d[j] (the DFL of a YOLO head: bin probabilities to a distance). Only call when ck_has_avx2_fma() (_avx2) or
   ck_has_avx512() (_avx512) returned 1. */
void ck_softmax_cols_avx2(const float *s, long n, long ld, long j0, long j1, const float *weights, float *d);
void ck_softmax_cols_avx512(const float *s, long n, long ld, long j0, long j1, const float *weights, float *d);

/* Winograd F(2x2, 3x3) transforms (see winograd.c): weights w [cout][cin][3][3] -> u [16][cout][cin] for
   outputs o0 ..< o1; input tiles t0 ..< t0 + tb of x [cin][h][w] -> v [16][cin][tb]; products m [16][cout][tb]
   -> the tiles' outputs in out [cout][out_h][out_w] for outputs o0 ..< o1. The _avx2 versions below lay u and v
   out for ck_wino_gemm_avx2 instead: u [16][ceil(cout / 4)][cin][4] (rows past cout left to the caller to zero),
   v [16][ceil(tb / 24)][cin][24]. */
void ck_wino_weights(const float *w, long cout, long cin, long o0, long o1, float *u);
void ck_wino_input(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                   long t0, long tb, float *v);
void ck_wino_output(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x, long t0, long tb,
                    float *out);

/* ck_wino_output eight tiles at a time (for blocks of whole tile rows of at least 8 tiles).
   Only call when ck_has_avx2_fma() returned 1. */
void ck_wino_output_avx2(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x,
                         long t0, long tb, float *out);

/* ck_wino_weights into the packed layout above, eight kernels at a time (four outputs by two channels).
   Only call when ck_has_avx2_fma() returned 1. */
void ck_wino_weights_avx2(const float *w, long cout, long cin, long o0, long o1, float *u);

/* ck_wino_input into the packed layout above, eight tiles at a time (for blocks of whole tile rows of at least 8
   tiles; others tile by tile), into a V laid out for ctotal >= cin channels (x and v at the first channel's
   place: a core's share of the channels).
   Only call when ck_has_avx2_fma() returned 1. */
void ck_wino_input_avx2(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                        long t0, long tb, long ctotal, float *v);

/* ck_wino_input_avx2 sixteen tiles at a time (blocks of whole tile rows of at least 64 tiles; others by
   ck_wino_input_avx2). Only call when ck_has_avx512() returned 1. */
void ck_wino_input_avx512(const float *x, long cin, long h, long w, long pad_y, long pad_x, long tiles_x,
                          long t0, long tb, long ctotal, float *v);

/* ck_wino_output_avx2 sixteen tiles at a time (rows of at least 32 tiles; others eight at a time), for blocks of
   whole tile rows (t0 and tb multiples of tiles_x), then out = act(out + bias[o]) (act as for ck_bias_act_avx2;
   bias may be NULL) on the output rows just written, while they are in L1. Only call when ck_has_avx512()
   returned 1. */
void ck_wino_output_avx512(const float *m, long cout, long o0, long o1, long out_h, long out_w, long tiles_x,
                           long t0, long tb, const float *bias, int act, float *out);

/* Rows o0 ..< o1 (o0 a multiple of 4) of m [16][cout][tb] = the 16 products u[xi] v[xi] over cin, from the packed
   transforms above, by the micro-kernel of convgemm.c. Only call when ck_has_avx2_fma() returned 1. */
void ck_wino_gemm_avx2(const float *u, const float *v, long cout, long cin, long tb, long o0, long o1, float *m);
void ck_wino_gemm_avx512(const float *u, const float *v, long cout, long cin, long tb, long o0, long o1, float *m);

/* C (m x n, row length ldc) = alpha op(A) op(B) + beta C, with op(A) m x k and op(B) k x n, each the matrix
   (row-major, rows lda / ldb apart) or its transpose (trans_a / trans_b = 1), as cblas_sgemm with CblasRowMajor
   computes it, on the calling thread with the AVX-512 micro-kernel (beta 0: C is only written). */
void ck_sgemm_avx512(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                     const float *b, long ldb, float beta, float *c, long ldc);
/* The same plus col_bias[j] on every row's column j (a linear layer's bias, in the micro-kernel's epilogue instead of a
   pass of its own); col_bias may be NULL. */
void ck_sgemm_bias_avx512(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                          const float *b, long ldb, float beta, float *c, long ldc, const float *col_bias);

/* Convolution geometry of one image and one group for ck_conv_panels_avx2. */
typedef struct {
    long cin, h, w, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w;
} ck_conv_geom;

/* How many panels of 24 output pixels ck_conv_panels_avx2 fills at a time for k = cin * kh * kw. */
long ck_conv_block_panels(long k);
/* The same for the _avx512 drivers (which take the panels two at a time): an even number, at least 2. */
long ck_conv_block_panels_avx512(long k);

/* Weights w [m][k] into panels of four rows, ap [ceil(m / 4)][k][4], the rows past m zero. */
void ck_pack_weights4(const float *w, long m, long k, float *ap);

/* Output pixels p0 ..< p1 of out [m][out_h * out_w] = act(bias + weights (packed by ck_pack_weights4) times
   the im2col matrix of x [cin][h][w]); act as for ck_bias_act_avx2, bias may be NULL; panel is scratch for
   ck_conv_block_panels(cin * kh * kw) * cin * kh * kw * 24 floats (see convgemm.c). Only call when
   ck_has_avx2_fma() returned 1. */
void ck_conv_panels_avx2(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                         int act, float *out, long p0, long p1, float *panel);
/* panel: scratch for ck_conv_block_panels_avx512(k) panels. */
void ck_conv_panels_avx512(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                           int act, float *out, long p0, long p1, float *panel);

/* The same for a 1x1 convolution (stride 1, no padding) of x [k][plane], read in place when in_place is 1,
   else copied into panel (scratch for ck_conv_block_panels(k) * k * 24 floats) 24 pixels at a time. */
void ck_conv1x1_panels_avx2(const float *x, long k, long plane, const float *ap, long m, const float *bias,
                            int act, float *out, long p0, long p1, int in_place, float *panel);
/* panel: scratch for ck_conv_block_panels_avx512(k) panels. */
void ck_conv1x1_panels_avx512(const float *x, long k, long plane, const float *ap, long m, const float *bias,
                              int act, float *out, long p0, long p1, int in_place, float *panel);
/* The same 1x1 convolution, pixels p0 ..< p1 of planes of `plane` floats, with input channel i read from rows[i] (its
   plane, wherever it lies: the channels of a concatenation never built), always copied into panel (as above). */
void ck_conv1x1_rows_avx2(const float *const *rows, long k, const float *ap, long m, const float *bias, int act,
                          float *out, long plane, long p0, long p1, float *panel);
void ck_conv1x1_rows_avx512(const float *const *rows, long k, const float *ap, long m, const float *bias, int act,
                            float *out, long plane, long p0, long p1, float *panel);

/* Runs fn(ctx, c) for c in 0 ..< chunks on the pool's workers and the calling thread, and returns when all
   are done. A call made while the pool runs another job (nested, or from another thread) runs its chunks
   on the calling thread. */
typedef void (*ck_task_fn)(void *ctx, long chunk);
void ck_pool_run(long chunks, ck_task_fn fn, void *ctx);
/* The number of worker threads (ck_pool_threads() minus one when they started); starts them on first use. */
int ck_pool_workers(void);

/* The number of threads parallel loops run on (the caller's included): the value given to ck_pool_set_threads, else
   DETR_TUI_THREADS when it is a positive number, else the processors this process may run on (its affinity mask). */
int ck_pool_threads(void);

/* Chooses that number (1 to 64). Returns 1 when the pool can run that many: it has not started its workers yet or
   has enough of them; 0 for n < 1 or when it started with fewer (loops then split n ways over the workers it has). */
int ck_pool_set_threads(int n);

/* glibc allocator settings (mallopt): mmap threshold, trim threshold and top pad in bytes; a negative value
   leaves that setting alone. Returns 1 when every requested setting was applied, 0 otherwise (or off glibc). */
int ck_malloc_tune(long mmap_threshold, long trim_threshold, long top_pad);

/* The shape pass (alloc.c): a per-thread depth; while it is positive the engine's ops return shape-only tensors. */
int ck_shape_pass(void);
void ck_shape_pass_enter(void);
void ck_shape_pass_leave(void);
/* The first failed check of the shape pass on this thread (NULL when none); cleared when a pass starts. */
void ck_shape_pass_fail(const char *message);
const char *ck_shape_pass_problem(void);
void ck_shape_pass_clear(void);

/* ---- kernels.c: depthwise on sixteen lanes (AVX-512) with bias and activation (kind as ck_bias_act: -1 none,
   1 sigmoid, 2 SiLU, 3 ReLU): the activation applied before the store when the output width is a multiple of 16,
   else in a pass over the plane ---- */
/* ck_depthwise_plane_avx2 with the activation. */
void ck_depthwise_plane_avx512(float *out, const float *in, long ld, const float *k, float bias, int act,
                               long oh, long ow, long kh, long kw, long sh, long sw, long dh, long dw);
/* ck_depthwise3x3s2_avx2 with the activation (h rows, w even columns, read in place; padding 1). */
void ck_depthwise3x3s2_avx512(float *out, const float *x, long h, long w, const float *k, float bias, int act,
                              const float *next);

/* ---- vecops.c: element-wise, row softmax, layer norm, batch/group norm, reductions (AVX-512 and AVX2) ---- */

/* Binary operations: x + y, x - y, x * y, x / y, maximum and minimum (NaN wins, as torch), and max(x, y) with a
   NaN x kept (ReLU as max(x, 0)). */
#define CK_BIN_ADD 0
#define CK_BIN_SUB 1
#define CK_BIN_MUL 2
#define CK_BIN_DIV 3
#define CK_BIN_MAX 4
#define CK_BIN_MIN 5
#define CK_BIN_MAX_KEEP_X 6
/* d[i] = x[i * sx] op y[i * sy] for i < n; sx and sy are 1 (contiguous) or 0 (the one number x or y points at). */
void ck_binary_avx512(int op, const float *x, long sx, const float *y, long sy, float *d, long n);
void ck_binary_avx2(int op, const float *x, long sx, const float *y, long sy, float *d, long n);

/* Reductions: sum, max and min (NaN wins, as torch.amax / amin). */
#define CK_RED_SUM 0
#define CK_RED_MAX 1
#define CK_RED_MIN 2
/* out[r] = the reduction of row r of rows x n floats (n = 0: 0, -inf or +inf). */
void ck_reduce_rows_avx512(int op, const float *x, long rows, long n, float *out);
void ck_reduce_rows_avx2(int op, const float *x, long rows, long n, float *out);
/* out[j] = the reduction of x[i * inner + j] over i < n, for j < inner. */
void ck_reduce_cols_avx512(int op, const float *x, long n, long inner, float *out);
void ck_reduce_cols_avx2(int op, const float *x, long n, long inner, float *out);

/* Softmax of each row of rows x n floats (max subtracted; a row with NaN, or all -inf, gives NaN). */
void ck_softmax_rows_avx512(const float *x, long rows, long n, float *out);
void ck_softmax_rows_avx2(const float *x, long rows, long n, float *out);

/* Layer norm of each row of rows x n floats (biased variance), times w and plus b where given (NULL: none). */
void ck_layernorm_avx512(const float *x, long rows, long n, const float *w, const float *b, float eps, float *out);
void ck_layernorm_avx2(const float *x, long rows, long n, const float *w, const float *b, float eps, float *out);

/* out[i] = x[i] * scale + shift (one rounding), i < n: batch norm's and group norm's per-channel step. */
void ck_affine_avx512(const float *x, long n, float scale, float shift, float *out);
void ck_affine_avx2(const float *x, long n, float scale, float shift, float *out);

/* The mean and biased variance of x[0 ..< n] (n > 0), two passes in double: group norm's statistics. */
void ck_moments_avx512(const float *x, long n, double *mean, double *variance);
void ck_moments_avx2(const float *x, long n, double *mean, double *variance);

/* --- Multi-scale deformable attention's sampling (msda.c) --- */

/* One sampling problem (one batch element). value: token t, head h at value + t * ld + h * dh (dh floats);
   shapes: levels x (H, W); starts: each level's first token; loc: [Q][heads][levels][points][2] (x, y) in [0, 1];
   weight: [Q][heads][levels][points]; out: query q, head h at out + q * ldo + h * dh. */
typedef struct {
    const float *value;
    long ld, heads, dh, levels, points;
    const long *shapes, *starts;
    const float *loc, *weight;
    float *out;
    long ldo;
} ck_msda_problem;

/* Queries q0 ..< q1: out = sum over levels and points of weight * bilinear sample of the level at loc
   (grid_sample's align_corners false, zeros outside; taps outside the map are not read). _avx512 only when
   ck_has_avx512() returned 1, _avx2 only when ck_has_avx2_fma() returned 1; _portable anywhere. */
void ck_msda_avx512(const ck_msda_problem *p, long q0, long q1);
void ck_msda_avx2(const ck_msda_problem *p, long q0, long q1);
void ck_msda_portable(const ck_msda_problem *p, long q0, long q1);

/* --- Exact GELU, x * Phi(x) (vecops.c; branch rtdetr) --- */

/* dst[i] = src[i] * Phi(src[i]) for i < n, Phi the standard normal CDF (torch's gelu, approximate="none"), within a
   few ulp of the double-precision value (below about -13.2, where it is under 5e-39: -0). _avx512 only when
   ck_has_avx512() returned 1, _avx2 only when ck_has_avx2_fma() returned 1. */
void ck_gelu_avx512(float *dst, const float *src, long n);
void ck_gelu_avx2(float *dst, const float *src, long n);

/* --- Row-band convolutions (convgemm.c, branch conv) --- */

/* Output rows i0 ..< i1 of a conv with dilation 1 and stride 1 or 2 (sh == sw), as ck_conv_panels_avx2 computes it,
   in bands of `rows` output rows: each band's padded input copied once into band (scratch of
   ck_bands_floats(g, rows) floats), split by row and column parity for stride 2, in rows of ck_bands_ld(g) floats,
   so that every panel reads its taps in place across output rows. Only call when ck_has_avx2_fma() (_avx512:
   ck_has_avx512()) returned 1. */
long ck_bands_ld(const ck_conv_geom *g);
long ck_bands_floats(const ck_conv_geom *g, long rows);
/* Output rows per band for parts of part_rows output rows: at most as many as keep a band's copy within `budget`
   floats, the fewest tiles of 24 (48 when wide) lanes over the part (a band's last tile is partly empty), then the
   longest bands. */
long ck_bands_rows(const ck_conv_geom *g, long part_rows, int wide, long budget);
void ck_conv_bands_avx2(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                        int act, float *out, long i0, long i1, long rows, float *band);
void ck_conv_bands_avx512(const float *x, const ck_conv_geom *g, const float *ap, long m, const float *bias,
                          int act, float *out, long i0, long i1, long rows, float *band);

#ifdef __cplusplus
}
#endif

#endif
