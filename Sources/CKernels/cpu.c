/* What the processor can do, read once with CPUID and XGETBV: the one place where the engine (and the choice of
   OpenBLAS's kernels at start-up) learns the vector instruction sets. A set counts only when the operating system
   also saves its registers on a context switch (XCR0), so a CPU with AVX-512 under a kernel or hypervisor that
   leaves the zmm state off reports no AVX-512. */
#include "CKernels.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

static ck_cpu_info info;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void detect(void) {
    unsigned int a, b, c, d, max;
    memset(&info, 0, sizeof info);
    if (!__get_cpuid(0, &max, &b, &c, &d)) return;
    memcpy(info.vendor, &b, 4);
    memcpy(info.vendor + 4, &d, 4);
    memcpy(info.vendor + 8, &c, 4);
    __cpuid(1, a, b, c, d);
    unsigned int base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    info.family = (int)(base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family);
    info.model = (int)(base_family == 0x6 || base_family == 0xf ? base_model | (((a >> 16) & 0xf) << 4) : base_model);
    info.stepping = (int)(a & 0xf);
    unsigned int f = 0;
    if (d & bit_SSE2) f |= CK_CPU_SSE2;
    if (c & bit_SSE3) f |= CK_CPU_SSE3;
    if (c & bit_SSSE3) f |= CK_CPU_SSSE3;
    if (c & bit_SSE4_1) f |= CK_CPU_SSE41;
    if (c & bit_SSE4_2) f |= CK_CPU_SSE42;
    unsigned long long xcr0 = (c & bit_OSXSAVE) ? xgetbv0() : 0;
    int ymm = (xcr0 & 0x6) == 0x6;            /* xmm and ymm state */
    int zmm = ymm && (xcr0 & 0xe0) == 0xe0;   /* opmask, upper zmm0-15, zmm16-31 */
    if (ymm && (c & bit_AVX)) f |= CK_CPU_AVX;
    if (ymm && (c & bit_FMA)) f |= CK_CPU_FMA;
    if (max >= 7) {
        unsigned int a7, b7, c7, d7, a71 = 0, b71, c71, d71;
        __cpuid_count(7, 0, a7, b7, c7, d7);
        if (a7 >= 1) __cpuid_count(7, 1, a71, b71, c71, d71);
        if (ymm && (b7 & bit_AVX2)) f |= CK_CPU_AVX2;
        if (zmm) {
            if (b7 & bit_AVX512F) f |= CK_CPU_AVX512F;
            if (b7 & bit_AVX512DQ) f |= CK_CPU_AVX512DQ;
            if (b7 & bit_AVX512CD) f |= CK_CPU_AVX512CD;
            if (b7 & bit_AVX512BW) f |= CK_CPU_AVX512BW;
            if (b7 & bit_AVX512VL) f |= CK_CPU_AVX512VL;
            if (c7 & bit_AVX512VNNI) f |= CK_CPU_AVX512VNNI;
            if (a71 & bit_AVX512BF16) f |= CK_CPU_AVX512BF16;
            if (d7 & bit_AVX512FP16) f |= CK_CPU_AVX512FP16;
        }
    }
    info.features = f;
    unsigned int top;
    __cpuid(0x80000000, top, b, c, d);
    if (top >= 0x80000004) {
        unsigned int *w = (unsigned int *)info.brand;
        for (unsigned int leaf = 0; leaf < 3; leaf++) __cpuid(0x80000002 + leaf, w[4 * leaf], w[4 * leaf + 1], w[4 * leaf + 2], w[4 * leaf + 3]);
        info.brand[48] = 0;
    }
}

const ck_cpu_info *ck_cpu(void) {
    pthread_once(&once, detect);
    return &info;
}

#else

static const ck_cpu_info none;
const ck_cpu_info *ck_cpu(void) { return &none; }

#endif

int ck_has_avx2_fma(void) {
    unsigned int want = CK_CPU_AVX2 | CK_CPU_FMA;
    return (ck_cpu()->features & want) == want;
}

int ck_has_avx512(void) {
    unsigned int want = CK_CPU_AVX2 | CK_CPU_FMA | CK_CPU_AVX512F | CK_CPU_AVX512BW | CK_CPU_AVX512VL | CK_CPU_AVX512DQ;
    return (ck_cpu()->features & want) == want;
}
