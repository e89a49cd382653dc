/* bwd_ref.c — the reference attention backward: one query row at a time, every score materialised,
 * f64 throughout, visibility from heed_mask_visible and score values from attn_score. It recomputes
 * the row's lse and D = dO.O itself instead of trusting the saved o and lse, so it stays a check on them.
 * Also the argument check shared with the fast path (bwd.c). */
#include "attn/bwd.h"

#include <math.h>

heed_status attn_bwd_check(heed_ctx *ctx, attn_dims *a, const heed_attn_grads *g, const heed_attn_desc *d,
                           const heed_tensor *o, const float *lse, const heed_tensor *d_o, int ref)
{
    if (!g || !d) return heed_fail(ctx, HEED_ERR_INVALID, "backward: NULL %s", g ? "descriptor" : "grads");
    heed_status s = attn_resolve(ctx, a, d);
    if (s != HEED_OK) return s;
    if (!ref && (s = attn_check_fast(ctx, d)) != HEED_OK) return s; /* f64: the reference's, as in the forward */
    const heed_tensor *in[3] = {&d->q, &d->k, &d->v};
    const char *names[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++)
        if (in[i]->dtype != HEED_F32 && !(ref && in[i]->dtype == HEED_F64))
            return heed_fail(ctx, HEED_ERR_INVALID, "%s: dtype %s, the backward needs f32%s", names[i],
                             heed_dtype_name(in[i]->dtype), ref ? " or f64" : "");
    if ((s = attn_check_view_f64(ctx, "d_o", d_o, ref, 0, a->B, a->Hq, a->Tq, a->Dv)) != HEED_OK) return s;
    if (!ref || o)
        if ((s = attn_check_view_f64(ctx, "o", o, ref, 0, a->B, a->Hq, a->Tq, a->Dv)) != HEED_OK) return s;
    if (!ref && d->norm == HEED_NORM_SOFTMAX && !lse)
        return heed_fail(ctx, HEED_ERR_INVALID, "lse: NULL, the softmax backward needs the forward's lse");
    if ((s = attn_check_view_f64(ctx, "grads dq", &g->dq, ref, 1, a->B, a->Hq, a->Tq, a->D)) != HEED_OK) return s;
    if ((s = attn_check_view_f64(ctx, "grads dk", &g->dk, ref, 1, a->B, a->Hkv, a->Tk, a->D)) != HEED_OK) return s;
    if ((s = attn_check_view_f64(ctx, "grads dv", &g->dv, ref, 1, a->B, a->Hkv, a->Tk, a->Dv)) != HEED_OK) return s;
    return HEED_OK;
}

static inline double ld(const void *row, heed_dtype t, int64_t i)
{
    return t == HEED_F64 ? ((const double *)row)[i] : (double)heed_load_f32(row, t, i);
}

static inline void st(void *row, heed_dtype t, int64_t i, double x)
{
    if (t == HEED_F64) ((double *)row)[i] = x;
    else ((float *)row)[i] = (float)x;
}

static double dot_rows(const heed_tensor *x, const void *xr, const heed_tensor *y, const void *yr, int64_t n)
{
    double s = 0;
    for (int64_t e = 0; e < n; e++) s += ld(xr, x->dtype, e) * ld(yr, y->dtype, e);
    return s;
}

/* Writes a [n0, n1, n2, n3] f64 buffer into a gradient view. */
static void store_grad(heed_tensor *t, const double *src)
{
    for (int64_t i0 = 0; i0 < t->ne[0]; i0++)
        for (int64_t i1 = 0; i1 < t->ne[1]; i1++)
            for (int64_t i2 = 0; i2 < t->ne[2]; i2++) {
                void *row = heed_row(t, i0, i1, i2);
                const double *s = src + ((i0 * t->ne[1] + i1) * t->ne[2] + i2) * t->ne[3];
                for (int64_t e = 0; e < t->ne[3]; e++) st(row, t->dtype, e, s[e]);
            }
}

heed_status heed_attn_backward_ref(heed_ctx *ctx, heed_attn_grads *g, const heed_attn_desc *d,
                                   const heed_tensor *o, const float *lse, const heed_tensor *d_o)
{
    attn_dims a;
    heed_status st_ = attn_bwd_check(ctx, &a, g, d, o, lse, d_o, 1);
    if (st_ != HEED_OK) return st_;
    const int64_t B = a.B, Hq = a.Hq, G = a.G, Tq = a.Tq, Tk = a.Tk, D = a.D, Dv = a.Dv;
    const size_t nq = (size_t)(B * Hq * Tq), nk = (size_t)(B * a.Hkv * Tk);
    /* dq [B,Hq,Tq,D], dk [B,Hkv,Tk,D], dv [B,Hkv,Tk,Dv]; per row: s, p, dp [Tk], vis [Tk] */
    double *dq = heed_alloc(nq * (size_t)D * sizeof(double));
    double *dk = heed_alloc(nk * (size_t)D * sizeof(double));
    double *dv = heed_alloc(nk * (size_t)Dv * sizeof(double));
    double *row = heed_alloc((size_t)Tk * 3 * sizeof(double) + 8);
    char *vis = heed_alloc((size_t)Tk + 1);
    double *dsink = heed_alloc((size_t)Hq * 2 * sizeof(double)), *dtemp = dsink ? dsink + Hq : NULL;
    if (!dq || !dk || !dv || !row || !vis || !dsink) {
        heed_free(dq); heed_free(dk); heed_free(dv); heed_free(row); heed_free(vis); heed_free(dsink);
        return heed_fail(ctx, HEED_ERR_NOMEM, "backward_ref: cannot allocate f64 gradients");
    }
    memset(dq, 0, nq * (size_t)D * sizeof(double));
    memset(dk, 0, nk * (size_t)D * sizeof(double));
    memset(dv, 0, nk * (size_t)Dv * sizeof(double));
    memset(dsink, 0, (size_t)Hq * 2 * sizeof(double));
    double *s = row, *p = row + Tk, *dp = row + 2 * Tk;
    const int softmax = d->norm == HEED_NORM_SOFTMAX;

    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++) {
            const int64_t hk = h / G;
            const int has_sink = softmax && d->sink_logit;
            const double sink = has_sink ? (double)d->sink_logit[h] : -INFINITY;
            for (int64_t t = 0; t < Tq; t++) {
                const int64_t i = d->q_offset + t;
                const void *qr = heed_row(&d->q, b, h, t), *dor = heed_row(d_o, b, h, t);
                const double logi = log((double)(i + 1));
                const double tf = d->temp_scale ? 1.0 + (double)d->temp_scale[h] * logi : 1.0;
                /* Scores, and the row maximum for a stable softmax (the sink logit takes part). */
                double mx = sink;
                for (int64_t j = 0; j < Tk; j++) {
                    vis[j] = (char)heed_mask_visible(&d->mask, i, d->k_offset + j, h);
                    if (!vis[j]) continue;
                    const double dot = dot_rows(&d->q, qr, &d->k, heed_row(&d->k, b, hk, j), D);
                    s[j] = attn_score(d, &a, dot, b, h, t, j);
                    if (s[j] == -INFINITY) vis[j] = 0; /* a -inf bias hides the key as the mask does */
                    else if (s[j] > mx) mx = s[j];
                }
                double z = mx > -INFINITY ? exp(sink - mx) : 0.0; /* sink = -inf: no sink mass */
                if (softmax)
                    for (int64_t j = 0; j < Tk; j++)
                        if (vis[j]) z += exp(s[j] - mx);
                const double row_lse = z > 0 ? mx + log(z) : -INFINITY;
                /* p, dP = dO.v_j and D = sum_j p_j dP_j (= dO.O) */
                double Dsum = 0;
                for (int64_t j = 0; j < Tk; j++) {
                    p[j] = dp[j] = 0;
                    if (!vis[j]) continue;
                    p[j] = softmax ? exp(s[j] - row_lse) : 1.0 / (1.0 + exp(-(s[j] + (double)a.sigmoid_bias)));
                    dp[j] = dot_rows(d_o, dor, &d->v, heed_row(&d->v, b, hk, j), Dv);
                    Dsum += p[j] * dp[j];
                }
                /* The sink is one more softmax entry whose dP is 0 (it has no value vector). */
                if (has_sink && row_lse > -INFINITY) dsink[h] -= exp(sink - row_lse) * Dsum;
                for (int64_t j = 0; j < Tk; j++) {
                    if (!vis[j]) continue;
                    const void *kr = heed_row(&d->k, b, hk, j);
                    /* dL/ds for the final score s3 = softcap(s1) + alibi + bias */
                    double ds = softmax ? p[j] * (dp[j] - Dsum) : dp[j] * p[j] * (1.0 - p[j]);
                    const double s0 = dot_rows(&d->q, qr, &d->k, kr, D) * (double)a.scale, s1 = s0 * tf;
                    if (d->softcap > 0) {
                        const double th = tanh(s1 / (double)d->softcap);
                        ds *= 1.0 - th * th;
                    }
                    dtemp[h] += ds * s0 * logi;
                    const double ddot = ds * tf * (double)a.scale;
                    double *dqr = dq + ((b * Hq + h) * Tq + t) * D;
                    double *dkr = dk + ((b * a.Hkv + hk) * Tk + j) * D;
                    double *dvr = dv + ((b * a.Hkv + hk) * Tk + j) * Dv;
                    for (int64_t e = 0; e < D; e++) {
                        dqr[e] += ddot * ld(kr, d->k.dtype, e);
                        dkr[e] += ddot * ld(qr, d->q.dtype, e);
                    }
                    for (int64_t e = 0; e < Dv; e++) dvr[e] += p[j] * ld(dor, d_o->dtype, e);
                }
            }
        }
    store_grad(&g->dq, dq);
    store_grad(&g->dk, dk);
    store_grad(&g->dv, dv);
    for (int64_t h = 0; h < Hq; h++) {
        if (g->d_sink_logit) g->d_sink_logit[h] = (float)dsink[h];
        if (g->d_temp_scale) g->d_temp_scale[h] = (float)dtemp[h];
    }
    heed_free(dq); heed_free(dk); heed_free(dv); heed_free(row); heed_free(vis); heed_free(dsink);
    return HEED_OK;
}
