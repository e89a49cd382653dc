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

/* What the score steps of one query row need (attn_bwd_kernels.row). */
typedef struct attn_bwd_row {
    float scale, tf, cap, slope; /* tf = 1 + temp_scale[h] log(i + 1) */
    float lse, drow;             /* SOFTMAX: the row's lse and D = dO.O */
    float sigmoid_bias;
    int softmax;
} attn_bwd_row;

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
    /* One tile row of KB keys: on entry p [KB] = q.k_j and ds [KB] = dO.v_j; on return p = the
     * probabilities and ds = dL/d(q.k), both 0 where vis [KB] (-1 visible, 0 hidden) hides the key.
     * bias [KB] and dist [KB] (i - key position, for ALiBi) are NULL when unused. All five arrays
     * are 64-byte aligned. Returns sum_j dL/ds1_j * s0_j (s0 = scaled dot, s1 = s0 * tf), which
     * times log(i + 1) is the row's share of dL/d temp_scale[h]. */
    float (*row)(float *p, float *ds, const int32_t *vis, const float *bias, const float *dist, const attn_bwd_row *a);
} attn_bwd_kernels;

extern const attn_bwd_kernels attn_bwd_kernels_scalar, attn_bwd_kernels_avx2, attn_bwd_kernels_avx512;

#endif /* HEED_ATTN_BWD_H */
