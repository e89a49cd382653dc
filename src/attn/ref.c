/* ref.c — heed_attn_forward_ref, the slow, obviously correct forward every fast path is tested against:
 * one query row at a time, every score materialised in f64 (attn_score), visibility from
 * heed_mask_visible, a max-subtracted softmax (with the optional sink logit) or an element-wise sigmoid.
 * Takes f64 q/k/v/o as well, so gradients can be checked by f64 finite differences. */
#include "attn/attn.h"

#include <math.h>

static inline double ld(const void *row, heed_dtype t, int64_t x)
{
    return t == HEED_F64 ? ((const double *)row)[x] : (double)heed_load_f32(row, t, x);
}

heed_status heed_attn_forward_ref(heed_ctx *ctx, heed_tensor *o, float *lse, const heed_attn_desc *d)
{
    attn_dims a;
    heed_status st = attn_resolve(ctx, &a, d);
    if (st != HEED_OK) return st;
    if ((st = attn_check_view_f64(ctx, "o", o, 1, 1, a.B, a.Hq, a.Tq, a.Dv)) != HEED_OK) return st;
    if (a.B * a.Hq * a.Tq == 0) return HEED_OK;
    const int64_t Tk = a.Tk, D = a.D, Dv = a.Dv;
    const size_t bytes = (size_t)(Tk + Dv) * sizeof(double) + (size_t)Tk + 1;
    double *s = heed_alloc(bytes); /* s [Tk] scores, acc [Dv] output row, vis [Tk] visibility */
    if (!s) return heed_fail(ctx, HEED_ERR_NOMEM, "attention reference: cannot allocate %zu bytes", bytes);
    double *acc = s + Tk;
    char *vis = (char *)(acc + Dv);
    const int softmax = d->norm == HEED_NORM_SOFTMAX;

    for (int64_t b = 0; b < a.B; b++)
        for (int64_t h = 0; h < a.Hq; h++)
            for (int64_t t = 0; t < a.Tq; t++) {
                const int64_t i = d->q_offset + t, hk = h / a.G;
                const void *qr = heed_row(&d->q, b, h, t);
                double mx = -INFINITY;
                for (int64_t j = 0; j < Tk; j++) {
                    vis[j] = (char)heed_mask_visible(&d->mask, i, d->k_offset + j, h);
                    if (!vis[j]) continue;
                    const void *kr = heed_row(&d->k, b, hk, j);
                    double dot = 0;
                    for (int64_t x = 0; x < D; x++) dot += ld(qr, d->q.dtype, x) * ld(kr, d->k.dtype, x);
                    s[j] = attn_score(d, &a, dot, b, h, t, j);
                    if (s[j] == -INFINITY) vis[j] = 0; /* a -inf bias hides the key as the mask does */
                    else if (s[j] > mx) mx = s[j];
                }
                /* weights: softmax exp(s - m) / z with m the largest logit (sink included), so logits of
                 * any magnitude stay finite; sigmoid needs no normalisation */
                const double sink = softmax && d->sink_logit ? (double)d->sink_logit[h] : -INFINITY;
                const double m = sink > mx ? sink : mx;
                double z = 0, row_lse = -INFINITY;
                if (softmax && m != -INFINITY) {
                    z = exp(sink - m);
                    for (int64_t j = 0; j < Tk; j++)
                        if (vis[j]) z += exp(s[j] - m);
                    row_lse = m + log(z);
                }
                double mass = 0;
                for (int64_t x = 0; x < Dv; x++) acc[x] = 0;
                for (int64_t j = 0; j < Tk; j++) {
                    if (!vis[j]) continue;
                    const double p = softmax ? exp(s[j] - m) / z : 1.0 / (1.0 + exp(-(s[j] + (double)a.sigmoid_bias)));
                    const void *vr = heed_row(&d->v, b, hk, j);
                    for (int64_t x = 0; x < Dv; x++) acc[x] += p * ld(vr, d->v.dtype, x);
                    mass += p;
                }
                if (!softmax) row_lse = log(mass); /* log of the total sigmoid mass: -inf for no key */
                void *orow = heed_row(o, b, h, t);
                for (int64_t x = 0; x < Dv; x++) {
                    if (o->dtype == HEED_F64) ((double *)orow)[x] = acc[x];
                    else ((float *)orow)[x] = (float)acc[x];
                }
                if (lse) lse[(b * a.Hq + h) * a.Tq + t] = (float)row_lse;
            }
    heed_free(s);
    return HEED_OK;
}
