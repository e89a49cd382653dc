/* bwd_body.h — the tile products of the attention backward (see attn_bwd_kernels in bwd.h), written
 * once as plain loops that GCC -O3 vectorises for the instruction set of the file that includes it:
 * bwd.c (baseline), bwd_avx2.c, bwd_avx512.c. Define BWD_KERNELS to the table's name first. */
#include "attn/bwd.h"

#include <string.h>

#define KB ATTN_BWD_KB

static void mm_nt(float *restrict c, const float *const *a, const float *restrict bt, int64_t n, int64_t D)
{
    for (int64_t r = 0; r < n; r++) {
        float acc[KB] = {0};
        const float *ar = a[r];
        for (int64_t e = 0; e < D; e++) {
            const float x = ar[e];
            const float *b = bt + e * KB;
            for (int j = 0; j < KB; j++) acc[j] += x * b[j];
        }
        memcpy(c + r * KB, acc, sizeof acc);
    }
}

static void mm_tn(float *restrict ct, const float *const *a, const float *restrict p, int64_t n, int64_t D)
{
    for (int64_t e = 0; e < D; e++) {
        float acc[KB];
        memcpy(acc, ct + e * KB, sizeof acc);
        for (int64_t r = 0; r < n; r++) {
            const float x = a[r][e];
            const float *pr = p + r * KB;
            for (int j = 0; j < KB; j++) acc[j] += x * pr[j];
        }
        memcpy(ct + e * KB, acc, sizeof acc);
    }
}

static void mm_nn(float *const *c, const float *restrict p, const float *restrict b, int64_t n, int64_t m, int64_t D)
{
    for (int64_t r = 0; r < n; r++) {
        float *restrict cr = c[r];
        const float *pr = p + r * KB;
        for (int64_t j = 0; j < m; j++) {
            const float x = pr[j];
            if (x == 0.0f) continue; /* hidden keys: most of a partial tile */
            const float *bj = b + j * D;
            for (int64_t e = 0; e < D; e++) cr[e] += x * bj[e];
        }
    }
}

const attn_bwd_kernels BWD_KERNELS = {mm_nt, mm_tn, mm_nn};

#undef KB
