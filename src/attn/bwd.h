/* bwd.h — internal to the attention backward (bwd_ref.c, bwd.c and its per-ISA tile kernels):
 * the argument check shared by the reference and the fast path, and the tile kernels that the fast
 * path compiles once per instruction set from one body (bwd_body.h). */
#ifndef HEED_ATTN_BWD_H
#define HEED_ATTN_BWD_H

#include "attn/attn.h"

/* Checks a backward call and fills *a. The fast path (ref == 0) needs f32 everywhere and lse for
 * softmax; the reference (ref != 0) also takes f64 q, k, v, d_o and f64 gradients, and does not
 * read o or lse (it recomputes them), so they may be NULL there. */
heed_status attn_bwd_check(heed_ctx *ctx, attn_dims *a, const heed_attn_grads *g, const heed_attn_desc *d,
                           const heed_tensor *o, const float *lse, const heed_tensor *d_o, int ref);

/* Keys per tile; also the query rows per tile. */
#define ATTN_BWD_KB 64

/* Dense products on one tile of n query rows by m keys (m <= KB = ATTN_BWD_KB), all f32, row-major:
 *   mm_nt: c[r][j] = sum_d a[r][d] * bt[d][j]        c [n][KB], a [n] rows of D, bt [D][KB]
 *   mm_tn: ct[d][j] += sum_r a[r][d] * p[r][j]       ct [D][KB], a [n] rows of D, p [n][KB]
 * bt and p are zero in columns m..KB-1, so the loops over a tile row run a fixed KB times and the
 * compiler keeps the row in vector registers. Rows of a are reached through row pointers, so a tile
 * works on just its visible query rows, or on key rows in place, without copying them.
 * dQ is mm_tn too: dQ^T [D][rows] += sum_j K[j] (x) dS^T[j] over the key rows j. */
typedef struct attn_bwd_kernels {
    void (*mm_nt)(float *c, const float *const *a, const float *bt, int64_t n, int64_t D);
    void (*mm_tn)(float *ct, const float *const *a, const float *p, int64_t n, int64_t D);
} attn_bwd_kernels;

extern const attn_bwd_kernels attn_bwd_kernels_scalar, attn_bwd_kernels_avx2, attn_bwd_kernels_avx512;

#endif /* HEED_ATTN_BWD_H */
