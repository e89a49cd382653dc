/* linear_bwd.c — the backward of linear attention (phi = elu + 1, contract in heed.h): per (b, h) a
 * forward sweep that rebuilds the state (S, z), reads each query row and writes dQ, then a reverse
 * sweep that gathers the state's gradient (G, gz) and writes dK and dV. O(T * D * Dv) per head. */
#include "attn/attn.h"

#include <math.h>

/* phi(x) = elu(x) + 1 and its derivative phi'(x) = 1 (x > 0), exp(x) = phi(x) (x <= 0). */
static inline float phi(float x) { return x > 0.0f ? x + 1.0f : expf(x); }
static inline float dphi(float x) { return x > 0.0f ? 1.0f : expf(x); }

typedef struct linear_bwd_job {
    heed_tensor *dq, *dk, *dv;
    const heed_tensor *q, *k, *v, *d_o;
    int64_t H, T, Tk, D, Dv;
    int causal;
    heed_ctx *ctx;
} linear_bwd_job;

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* s, G: [D, Dv]; z, gz, ph: [D]; gnum: [T, Dv]; gden: [T]; tmp: [Dv] */
static size_t bwd_scratch(const linear_bwd_job *J)
{
    const size_t f = sizeof(float), D = (size_t)J->D, Dv = (size_t)J->Dv, T = (size_t)J->T;
    return 2 * up64(D * Dv * f) + 3 * up64(D * f) + up64(T * Dv * f) + up64(T * f) + up64(Dv * f);
}

/* S += phi(k) v^T, z += phi(k) (the forward's state update, in the same order). ph: [D] scratch. */
static void state_add(float *s, float *z, float *ph, const float *k, const float *v, int64_t D, int64_t Dv)
{
    for (int64_t d = 0; d < D; d++) ph[d] = phi(k[d]);
    for (int64_t d = 0; d < D; d++) {
        float *restrict srow = s + d * Dv;
        const float p = ph[d];
        z[d] += p;
        for (int64_t e = 0; e < Dv; e++) srow[e] += p * v[e];
    }
}

/* Query row t against the state (S, z): o = num / den with num = phi(q)^T S, den = phi(q).z. With
 * inv = 1 / den and g = dO_t, the row's gradients are d num = g * inv (gnum, [Dv]) and
 * d den = -(g.o) * inv (*gden); then dq = phi'(q) * (S gnum + z gden). A row whose denominator is
 * not > 0 (O = 0 in the forward) gets gnum = 0, gden = 0, dq = 0.
 * dq: [D] out; gnum: [Dv] out; ph: [D], num: [Dv] scratch. */
static void row_grad(float *dq, float *gnum, float *gden, float *ph, float *num, const float *s, const float *z,
                     const float *q, const float *g, int64_t D, int64_t Dv)
{
    float den = 0.0f;
    for (int64_t d = 0; d < D; d++) ph[d] = phi(q[d]);
    for (int64_t e = 0; e < Dv; e++) num[e] = 0.0f;
    for (int64_t d = 0; d < D; d++) {
        const float *restrict srow = s + d * Dv;
        const float p = ph[d];
        den += p * z[d];
        for (int64_t e = 0; e < Dv; e++) num[e] += p * srow[e];
    }
    if (!(den > 0.0f)) {
        for (int64_t e = 0; e < Dv; e++) gnum[e] = 0.0f;
        for (int64_t d = 0; d < D; d++) dq[d] = 0.0f;
        *gden = 0.0f;
        return;
    }
    const float inv = 1.0f / den;
    float go = 0.0f;
    for (int64_t e = 0; e < Dv; e++) {
        go += g[e] * (num[e] * inv);
        gnum[e] = g[e] * inv;
    }
    const float gd = -go * inv;
    *gden = gd;
    for (int64_t d = 0; d < D; d++) {
        const float *restrict srow = s + d * Dv;
        float a = z[d] * gd;
        for (int64_t e = 0; e < Dv; e++) a += srow[e] * gnum[e];
        dq[d] = a * dphi(q[d]);
    }
}

/* G += phi(q) gnum^T, gz += phi(q) gden: the gradient of the state from one query row. ph: [D] scratch. */
static void grad_add(float *G, float *gz, float *ph, const float *q, const float *gnum, float gden, int64_t D,
                     int64_t Dv)
{
    for (int64_t d = 0; d < D; d++) ph[d] = phi(q[d]);
    for (int64_t d = 0; d < D; d++) {
        float *restrict grow = G + d * Dv;
        const float p = ph[d];
        gz[d] += p * gden;
        for (int64_t e = 0; e < Dv; e++) grow[e] += p * gnum[e];
    }
}

/* Key row j from the state gradient (G, gz) it feeds: with c = phi(k),
 * dv = G^T c, dk = phi'(k) * (G v + gz). dk: [D] out; dv: [Dv] out; ph: [D] scratch. */
static void key_grad(float *dk, float *dv, float *ph, const float *G, const float *gz, const float *k,
                     const float *v, int64_t D, int64_t Dv)
{
    for (int64_t d = 0; d < D; d++) ph[d] = phi(k[d]);
    for (int64_t e = 0; e < Dv; e++) dv[e] = 0.0f;
    for (int64_t d = 0; d < D; d++) {
        const float *restrict grow = G + d * Dv;
        const float c = ph[d];
        float a = gz[d];
        for (int64_t e = 0; e < Dv; e++) {
            a += grow[e] * v[e];
            dv[e] += c * grow[e];
        }
        dk[d] = a * dphi(k[d]);
    }
}

/* One (b, h). Causal: the forward sweep adds key t before reading query t (S_t, z_t cover j <= t) and
 * the reverse sweep adds query j's gradient before writing key j (G_j covers i >= j). Non-causal:
 * every key is added first and every query's gradient before any key is written. */
static void bwd_task(void *arg, int64_t task, int thread)
{
    const linear_bwd_job *J = arg;
    const int64_t b = task / J->H, h = task % J->H, T = J->T, Tk = J->Tk, D = J->D, Dv = J->Dv;
    const size_t f = sizeof(float);
    char *m = heed_scratch(J->ctx, thread);
    float *s = (float *)m;                                                         /* [D][Dv] */
    float *G = (float *)((char *)s + up64((size_t)(D * Dv) * f));                  /* [D][Dv] */
    float *z = (float *)((char *)G + up64((size_t)(D * Dv) * f));                  /* [D] */
    float *gz = (float *)((char *)z + up64((size_t)D * f));                        /* [D] */
    float *ph = (float *)((char *)gz + up64((size_t)D * f));                       /* [D] */
    float *gnum = (float *)((char *)ph + up64((size_t)D * f));                     /* [T][Dv] */
    float *gden = (float *)((char *)gnum + up64((size_t)(T * Dv) * f));            /* [T] */
    float *tmp = (float *)((char *)gden + up64((size_t)T * f));                    /* [Dv] */
    memset(s, 0, (size_t)(D * Dv) * f);
    memset(G, 0, (size_t)(D * Dv) * f);
    memset(z, 0, (size_t)D * f);
    memset(gz, 0, (size_t)D * f);

#define Q(t) ((const float *)heed_row(J->q, b, h, (t)))
#define K(j) ((const float *)heed_row(J->k, b, h, (j)))
#define V(j) ((const float *)heed_row(J->v, b, h, (j)))
    if (!J->causal)
        for (int64_t j = 0; j < Tk; j++) state_add(s, z, ph, K(j), V(j), D, Dv);
    for (int64_t t = 0; t < T; t++) {
        if (J->causal) state_add(s, z, ph, K(t), V(t), D, Dv);
        row_grad(heed_row(J->dq, b, h, t), gnum + t * Dv, gden + t, ph, tmp, s, z, Q(t),
                 heed_row(J->d_o, b, h, t), D, Dv);
    }
    if (!J->causal)
        for (int64_t t = 0; t < T; t++) grad_add(G, gz, ph, Q(t), gnum + t * Dv, gden[t], D, Dv);
    for (int64_t j = Tk - 1; j >= 0; j--) {
        if (J->causal) grad_add(G, gz, ph, Q(j), gnum + j * Dv, gden[j], D, Dv);
        key_grad(heed_row(J->dk, b, h, j), heed_row(J->dv, b, h, j), ph, G, gz, K(j), V(j), D, Dv);
    }
#undef Q
#undef K
#undef V
}

heed_status heed_linear_attn_backward(heed_ctx *ctx, heed_tensor *dq, heed_tensor *dk, heed_tensor *dv,
                                      const heed_tensor *q, const heed_tensor *k, const heed_tensor *v,
                                      const heed_tensor *d_o, int causal)
{
    heed_status s;
    if (!ctx) return HEED_ERR_INVALID;
    if ((s = linear_check_qkv(ctx, q, k, v, causal)) != HEED_OK) return s;
    const int64_t B = q->ne[0], H = q->ne[1], T = q->ne[2], D = q->ne[3], Tk = k->ne[2], Dv = v->ne[3];
    if ((s = attn_check_view(ctx, "d_o", d_o, 0, B, H, T, Dv)) != HEED_OK) return s;
    if ((s = attn_check_view(ctx, "dq", dq, 1, B, H, T, D)) != HEED_OK) return s;
    if ((s = attn_check_view(ctx, "dk", dk, 1, B, H, Tk, D)) != HEED_OK) return s;
    if ((s = attn_check_view(ctx, "dv", dv, 1, B, H, Tk, Dv)) != HEED_OK) return s;

    linear_bwd_job J = {dq, dk, dv, q, k, v, d_o, H, T, Tk, D, Dv, causal != 0, ctx};
    if ((s = heed_scratch_reserve(ctx, bwd_scratch(&J))) != HEED_OK) return s;
    heed_parallel(ctx, B * H, bwd_task, &J);
    return HEED_OK;
}
