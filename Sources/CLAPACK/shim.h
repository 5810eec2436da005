#ifndef DETR_TUI_CLAPACK_H
#define DETR_TUI_CLAPACK_H

#include <stddef.h>

/* The LAPACK routines OpenBLAS exports (its bundled reference LAPACK), with the Fortran calling convention:
   every argument by address, column-major matrices, and the hidden length of each CHARACTER argument passed
   last (gfortran's convention; LAPACKE passes it too). Declared here because Debian's OpenBLAS headers carry
   only the BLAS interfaces. */

/* SGESDD: singular value decomposition A = U * diag(S) * VT by divide and conquer (the routine numpy.linalg.svd
   calls for float32). JOBZ 'A' | 'S' | 'O' | 'N'; LWORK = -1 asks for the optimal workspace in WORK[0]. */
void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s, float *u,
             const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork, int *iwork, int *info,
             size_t jobz_len);

/* SGEQRF: A = Q * R (Householder); R in the upper triangle, the reflectors below it with their scalars in TAU. */
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work, const int *lwork, int *info);

/* SGELQF: A = L * Q (Householder); L in the lower triangle, the reflectors right of it with their scalars in TAU. */
void sgelqf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work, const int *lwork, int *info);

/* SORMLQ: C := C * Q (SIDE 'R', TRANS 'N') with Q from SGELQF's K reflectors. */
void sormlq_(const char *side, const char *trans, const int *m, const int *n, const int *k, const float *a, const int *lda,
             const float *tau, float *c, const int *ldc, float *work, const int *lwork, int *info, size_t side_len,
             size_t trans_len);

#endif
