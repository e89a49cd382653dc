/* bwd_body.h — the tile products of the attention backward (see attn_bwd_kernels in bwd.h), written
 * once as plain loops that GCC -O3 vectorises for the instruction set of the file that includes it:
 * bwd.c (baseline), bwd_avx2.c, bwd_avx512.c. Define BWD_KERNELS to the table's name first. */
#include "attn/bwd.h"

#define KB ATTN_BWD_KB

/* GCC vector extensions: the tile rows are spelled as vectors so every ISA gets them vectorised
 * (a file may set BWD_VBYTES to its register width; 32 bytes is two SSE registers on the baseline).
 * Tile rows are KB floats at 64-byte aligned addresses (bwd.c carves them so). */
#ifndef BWD_VBYTES
#define BWD_VBYTES 32
#endif
typedef float bwd_vf __attribute__((vector_size(BWD_VBYTES), may_alias));
#define NV (KB * (int)sizeof(float) / BWD_VBYTES)

static void mm_nt(float *c, const float *const *a, const float *bt, int64_t n, int64_t D)
{
    for (int64_t r = 0; r < n; r++) {
        bwd_vf acc[NV];
        for (int v = 0; v < NV; v++) acc[v] = (bwd_vf){0};
        const float *ar = a[r];
        for (int64_t e = 0; e < D; e++) {
            const bwd_vf *b = (const bwd_vf *)(bt + e * KB);
            const float x = ar[e];
            for (int v = 0; v < NV; v++) acc[v] += x * b[v];
        }
        bwd_vf *cr = (bwd_vf *)(c + r * KB);
        for (int v = 0; v < NV; v++) cr[v] = acc[v];
    }
}

static void mm_tn(float *ct, const float *const *a, const float *p, int64_t n, int64_t D)
{
    for (int64_t e = 0; e < D; e++) {
        bwd_vf *cr = (bwd_vf *)(ct + e * KB), acc[NV];
        for (int v = 0; v < NV; v++) acc[v] = cr[v];
        for (int64_t r = 0; r < n; r++) {
            const bwd_vf *pr = (const bwd_vf *)(p + r * KB);
            const float x = a[r][e];
            for (int v = 0; v < NV; v++) acc[v] += x * pr[v];
        }
        for (int v = 0; v < NV; v++) cr[v] = acc[v];
    }
}

const attn_bwd_kernels BWD_KERNELS = {mm_nt, mm_tn};

#undef NV
#undef KB
