/* attn.h — internal interface of the attention piece (src/attn/): the resolved call shape shared by
 * every kernel, and the scalar definition of the score modifiers that the references use.
 * Fast kernels implement the same arithmetic vectorised and are tested against the references. */
#ifndef HEED_ATTN_H
#define HEED_ATTN_H

#include "core/core.h"

#include <math.h>

/* A descriptor after heed_attn_check, with sizes named and defaults resolved. */
typedef struct attn_dims {
    int64_t B, Hq, Hkv, G;   /* G = Hq / Hkv: query heads per KV head; query head h uses KV head h / G */
    int64_t Tq, Tk, D, Dv;
    float scale;             /* resolved: 1/sqrt(D) when the descriptor says 0 */
    float sigmoid_bias;      /* resolved: -log(Tk) when the descriptor says NaN */
} attn_dims;

/* Validates d (heed_attn_check) and fills *a. */
heed_status attn_resolve(heed_ctx *ctx, attn_dims *a, const heed_attn_desc *d);

/* Checks a view used by the separate entry points (linear, agent, MoH): non-NULL, f32, shape
 * [n0, n1, n2, n3] (an expected size < 0 accepts any size >= 1), contiguous rows; an output
 * (is_output) must not broadcast (stride 0) a dimension of size > 1. Defined in linear.c. */
heed_status attn_check_view(heed_ctx *ctx, const char *name, const heed_tensor *t, int is_output, int64_t n0,
                            int64_t n1, int64_t n2, int64_t n3);

/* Mixture-of-Head helpers shared by the routing and its backward (moh.c). moh_check_route checks the
 * arguments of heed_moh_route other than its outputs; moh_softmax64: p [n] = softmax(x [n]) in f64;
 * moh_top_k: picked [n_routed] = 1 for the top_k largest logits rl [n_routed] (ties: lower index). */
heed_status moh_check_route(heed_ctx *ctx, const float *shared_logits, const float *routed_logits,
                            const float *alpha_logits, int64_t T, int64_t n_shared, int64_t n_routed, int64_t top_k);
void moh_softmax64(double *p, const float *x, int64_t n);
void moh_top_k(unsigned char *picked, const float *rl, int64_t n_routed, int64_t top_k);

/* Checks the q [B,H,T,D], k [B,H,Tk,D], v [B,H,Tk,Dv] views of linear attention (Tk == T when causal).
 * Defined in linear.c; the forward and the backward share it. */
heed_status linear_check_qkv(heed_ctx *ctx, const heed_tensor *q, const heed_tensor *k, const heed_tensor *v,
                             int causal);

/* HEED_ERR_UNSUPPORTED for a valid descriptor with f64 operands (references only); fast entry points
 * call it after attn_resolve. Defined in check.c. */
heed_status attn_check_fast(heed_ctx *ctx, const heed_attn_desc *d);

/* attn_check_view that also accepts an f64 view when f64_ok (the references' f64 operands, used for
 * f64 finite differences). Defined in check.c. */
heed_status attn_check_view_f64(heed_ctx *ctx, const char *name, const heed_tensor *t, int f64_ok, int is_output,
                                int64_t n0, int64_t n1, int64_t n2, int64_t n3);

/* The pre-mask score of query row t (position i = q_offset + t) and key row j (position
 * k_offset + j) in batch b, query head h, given the raw dot product q.k, in f64:
 * scale, selective temperature, softcap, ALiBi and bias, in the order heed.h states. Masking is
 * separate (heed_mask_visible). */
static inline double attn_score(const heed_attn_desc *d, const attn_dims *a, double dot, int64_t b,
                                int64_t h, int64_t t, int64_t j)
{
    const int64_t i = d->q_offset + t, kp = d->k_offset + j;
    double s = dot * (double)a->scale;
    if (d->temp_scale) s *= 1.0 + (double)d->temp_scale[h] * log((double)(i + 1));
    if (d->softcap > 0) s = (double)d->softcap * tanh(s / (double)d->softcap);
    if (d->alibi_slopes) s += -(double)d->alibi_slopes[h] * (double)(i - kp);
    if (d->bias) {
        const heed_tensor *bt = d->bias; /* a dimension of size 1 broadcasts */
        s += (double)((const float *)heed_row(bt, bt->ne[0] == 1 ? 0 : b, bt->ne[1] == 1 ? 0 : h, t))[j];
    }
    return s;
}

#endif /* HEED_ATTN_H */
