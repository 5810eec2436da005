#include "CKernels.h"

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
