#include "CKernels.h"
#include <string.h>

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

int ck_malloc_tune(long mmap_threshold, long trim_threshold, long top_pad) {
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD)
    int ok = 1;
    if (mmap_threshold >= 0) ok &= mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1;
    if (trim_threshold >= 0) ok &= mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1;
    if (top_pad >= 0) ok &= mallopt(M_TOP_PAD, (int)top_pad) == 1;
    return ok;
#else
    (void)mmap_threshold; (void)trim_threshold; (void)top_pad;
    return 0;
#endif
}

/* The shape pass: while set on a thread, the tensor engine's ops on that thread allocate nothing and compute
   nothing, and return tensors that carry only their shape (Tensor.shapePass). */
static _Thread_local int shape_pass_depth = 0;
int ck_shape_pass(void) { return shape_pass_depth; }
void ck_shape_pass_enter(void) { shape_pass_depth += 1; }
void ck_shape_pass_leave(void) { if (shape_pass_depth > 0) shape_pass_depth -= 1; }

/* The first check an op failed during the shape pass (an inconsistent shape), kept per thread until the pass
   ends: the module tree reports it as an error naming the module instead of the process stopping. */
static _Thread_local char shape_pass_problem[512];
void ck_shape_pass_fail(const char *message) {
    if (shape_pass_problem[0] != 0 || message == 0) return;
    size_t n = strlen(message);
    if (n >= sizeof shape_pass_problem) n = sizeof shape_pass_problem - 1;
    memcpy(shape_pass_problem, message, n);
    shape_pass_problem[n] = 0;
}
const char *ck_shape_pass_problem(void) { return shape_pass_problem[0] ? shape_pass_problem : 0; }
void ck_shape_pass_clear(void) { shape_pass_problem[0] = 0; }
