/* cpu.c — run-time CPU feature detection: which instruction set the kernels may use.
 * The HEED_ISA environment variable (scalar | avx2 | avx512) caps it, for tests and comparisons. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

heed_isa heed_cpu_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
    heed_isa best = HEED_ISA_SCALAR;
    __builtin_cpu_init();
    /* libgcc's checks include the OS's XSAVE support for the wider registers. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = HEED_ISA_AVX2;
    if (best == HEED_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        best = HEED_ISA_AVX512;
    const char *cap = getenv("HEED_ISA");
    if (cap) {
        if (!strcmp(cap, "scalar")) best = HEED_ISA_SCALAR;
        else if (!strcmp(cap, "avx2") && best > HEED_ISA_AVX2) best = HEED_ISA_AVX2;
    }
    return best;
#else
    return HEED_ISA_SCALAR;
#endif
}

int heed_cpu_has_avx512_bf16(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return heed_cpu_isa() == HEED_ISA_AVX512 && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

const char *heed_isa_name(heed_isa isa)
{
    switch (isa) {
    case HEED_ISA_SCALAR: return "scalar";
    case HEED_ISA_AVX2: return "avx2";
    case HEED_ISA_AVX512: return "avx512";
    }
    return "?";
}

int heed_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}
