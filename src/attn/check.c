/* check.c — the attention descriptor's defaults and its validation: every shape, stride, dtype and
 * parameter of heed_attn_desc, with a message naming the field, and attn_resolve, which turns a valid
 * descriptor into the named sizes every kernel uses. */
#include "attn/attn.h"

#include <math.h>
#include <stdio.h>

void heed_attn_desc_init(heed_attn_desc *d)
{
    memset(d, 0, sizeof *d);
    d->norm = HEED_NORM_SOFTMAX;
    d->mask.kind = HEED_MASK_NONE;
    d->mask.dilation[0] = d->mask.dilation[1] = 1; /* so a neighborhood mask needs only kernel and axis */
    d->sigmoid_bias = NAN;
}

static const char *dims_str(char *buf, size_t n, const int64_t *ne)
{
    snprintf(buf, n, "[%lld,%lld,%lld,%lld]", (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    return buf;
}

/* An input operand: data present, sizes >= 0 (>= 1 for the head dimension), contiguous rows. */
static heed_status check_operand(heed_ctx *ctx, const char *name, const heed_tensor *t)
{
    char buf[96];
    for (int i = 0; i < 4; i++)
        if (t->ne[i] < 0 || (i == 3 && t->ne[i] < 1))
            return heed_fail(ctx, HEED_ERR_INVALID, "%s: shape %s, expected sizes >= 0 and a head dimension >= 1",
                             name, dims_str(buf, sizeof buf, t->ne));
    if (t->nb[3] != (int64_t)heed_dtype_size(t->dtype))
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: innermost stride %lld bytes, expected %zu (contiguous %s rows)",
                         name, (long long)t->nb[3], heed_dtype_size(t->dtype), heed_dtype_name(t->dtype));
    if (!t->data && t->ne[0] * t->ne[1] * t->ne[2] > 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: data is NULL", name);
    return HEED_OK;
}

/* A per-head parameter array [Hq]: every value finite (sink logits may also be -inf: no sink mass). */
static heed_status check_per_head(heed_ctx *ctx, const char *name, const float *x, int64_t Hq, int allow_neg_inf)
{
    if (!x) return HEED_OK;
    for (int64_t h = 0; h < Hq; h++)
        if (!isfinite(x[h]) && !(allow_neg_inf && x[h] == -INFINITY))
            return heed_fail(ctx, HEED_ERR_INVALID, "%s[%lld] = %g, expected a finite value%s", name, (long long)h,
                             (double)x[h], allow_neg_inf ? " or -inf" : "");
    return HEED_OK;
}

heed_status heed_attn_check(heed_ctx *ctx, const heed_attn_desc *d)
{
    if (!d) return heed_fail(ctx, HEED_ERR_INVALID, "attention: NULL descriptor");
    const heed_tensor *q = &d->q, *k = &d->k, *v = &d->v;
    char b1[96], b2[96];
    heed_status s;
    /* dtypes: f64 anywhere is for the references (f64 finite differences); fast kernels refuse it */
    if (q->dtype != HEED_F32 && q->dtype != HEED_F64)
        return heed_fail(ctx, HEED_ERR_INVALID, "q: dtype %s, expected f32 (or f64 for the reference)",
                         heed_dtype_name(q->dtype));
    if (heed_dtype_size(k->dtype) == 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "k: dtype %d, expected f32, f16 or bf16 (f64: reference only)",
                         (int)k->dtype);
    if (v->dtype != k->dtype)
        return heed_fail(ctx, HEED_ERR_INVALID, "v: dtype %s, expected the dtype of k (%s)", heed_dtype_name(v->dtype),
                         heed_dtype_name(k->dtype));
    if ((s = check_operand(ctx, "q", q)) != HEED_OK || (s = check_operand(ctx, "k", k)) != HEED_OK ||
        (s = check_operand(ctx, "v", v)) != HEED_OK)
        return s;
    const int64_t B = q->ne[0], Hq = q->ne[1], Tq = q->ne[2], D = q->ne[3], Hkv = k->ne[1], Tk = k->ne[2];
    if (k->ne[0] != B || v->ne[0] != B)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: batch %lld, expected q's batch %lld", k->ne[0] != B ? "k" : "v",
                         (long long)(k->ne[0] != B ? k->ne[0] : v->ne[0]), (long long)B);
    if (k->ne[3] != D)
        return heed_fail(ctx, HEED_ERR_INVALID, "k: head dimension %lld, expected q's D = %lld", (long long)k->ne[3],
                         (long long)D);
    if (v->ne[1] != Hkv || v->ne[2] != Tk)
        return heed_fail(ctx, HEED_ERR_INVALID, "v: shape %s, expected [B, Hkv, Tk, Dv] matching k %s",
                         dims_str(b1, sizeof b1, v->ne), dims_str(b2, sizeof b2, k->ne));
    if (Hkv < 1 || Hq % Hkv != 0)
        return heed_fail(ctx, HEED_ERR_INVALID,
                         "k: %lld KV heads, expected >= 1 and dividing q's %lld heads (GQA: Hq %% Hkv == 0)",
                         (long long)Hkv, (long long)Hq);
    if (d->q_offset < 0 || d->k_offset < 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s = %lld, expected a position >= 0",
                         d->q_offset < 0 ? "q_offset" : "k_offset",
                         (long long)(d->q_offset < 0 ? d->q_offset : d->k_offset));

    /* mask, and the query positions a neighborhood mask can place */
    if ((s = heed_mask_check(ctx, &d->mask)) != HEED_OK) return s;
    if (Tq > 0 && (d->mask.kind == HEED_MASK_NEIGHBOR_1D || d->mask.kind == HEED_MASK_NEIGHBOR_2D)) {
        const int64_t axis =
            d->mask.kind == HEED_MASK_NEIGHBOR_1D ? d->mask.seq_len : d->mask.grid[0] * d->mask.grid[1];
        if (d->q_offset + Tq > axis)
            return heed_fail(ctx, HEED_ERR_INVALID,
                             "q: query positions [%lld, %lld) leave the neighborhood axis [0, %lld) (mask %s)",
                             (long long)d->q_offset, (long long)(d->q_offset + Tq), (long long)axis,
                             d->mask.kind == HEED_MASK_NEIGHBOR_1D ? "seq_len" : "grid[0] * grid[1]");
    }

    if (d->bias) {
        const heed_tensor *bt = d->bias;
        if (bt->dtype != HEED_F32)
            return heed_fail(ctx, HEED_ERR_INVALID, "bias: dtype %s, expected f32", heed_dtype_name(bt->dtype));
        if ((bt->ne[0] != B && bt->ne[0] != 1) || (bt->ne[1] != Hq && bt->ne[1] != 1) || bt->ne[2] != Tq ||
            bt->ne[3] != Tk)
            return heed_fail(ctx, HEED_ERR_INVALID, "bias: shape %s, expected [%lld|1, %lld|1, %lld, %lld]",
                             dims_str(b1, sizeof b1, bt->ne), (long long)B, (long long)Hq, (long long)Tq,
                             (long long)Tk);
        if (Tk > 0 && bt->nb[3] != (int64_t)sizeof(float))
            return heed_fail(ctx, HEED_ERR_INVALID, "bias: innermost stride %lld bytes, expected 4 (contiguous rows)",
                             (long long)bt->nb[3]);
        if (!bt->data && Tq * Tk > 0) return heed_fail(ctx, HEED_ERR_INVALID, "bias: data is NULL");
    }

    if (!isfinite(d->scale))
        return heed_fail(ctx, HEED_ERR_INVALID, "scale = %g, expected a finite value (0: 1/sqrt(D))", (double)d->scale);
    if (!isfinite(d->softcap) || d->softcap < 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "softcap = %g, expected a finite value >= 0 (0: off)",
                         (double)d->softcap);
    if (d->norm != HEED_NORM_SOFTMAX && d->norm != HEED_NORM_SIGMOID)
        return heed_fail(ctx, HEED_ERR_INVALID, "norm = %d, expected HEED_NORM_SOFTMAX or HEED_NORM_SIGMOID",
                         (int)d->norm);
    if (d->sink_logit && d->norm != HEED_NORM_SOFTMAX)
        return heed_fail(ctx, HEED_ERR_INVALID, "sink_logit: given with a sigmoid normalizer, expected softmax");
    if (d->norm == HEED_NORM_SIGMOID && isinf(d->sigmoid_bias))
        return heed_fail(ctx, HEED_ERR_INVALID, "sigmoid_bias = %g, expected a finite value (NaN: -log(Tk))",
                         (double)d->sigmoid_bias);
    if ((s = check_per_head(ctx, "temp_scale", d->temp_scale, Hq, 0)) != HEED_OK ||
        (s = check_per_head(ctx, "alibi_slopes", d->alibi_slopes, Hq, 0)) != HEED_OK ||
        (s = check_per_head(ctx, "sink_logit", d->sink_logit, Hq, 1)) != HEED_OK)
        return s;
    return HEED_OK;
}

heed_status attn_check_fast(heed_ctx *ctx, const heed_attn_desc *d)
{
    if (d->q.dtype == HEED_F64 || d->k.dtype == HEED_F64)
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED,
                         "%s: dtype f64 is for the references; the fast kernels take f32 q and f32/f16/bf16 k, v",
                         d->q.dtype == HEED_F64 ? "q" : "k");
    return HEED_OK;
}

heed_status attn_check_view(heed_ctx *ctx, const char *name, const heed_tensor *t, int is_output, int64_t n0,
                            int64_t n1, int64_t n2, int64_t n3)
{
    if (!t || !t->data) return heed_fail(ctx, HEED_ERR_INVALID, "%s: NULL tensor or data", name);
    if (t->dtype != HEED_F32)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: dtype %s, expected f32", name, heed_dtype_name(t->dtype));
    const int64_t want[4] = {n0, n1, n2, n3};
    for (int i = 0; i < 4; i++)
        if (want[i] >= 0 ? t->ne[i] != want[i] : t->ne[i] < 1)
            return heed_fail(ctx, HEED_ERR_INVALID,
                             "%s: shape [%lld,%lld,%lld,%lld], expected [%lld,%lld,%lld,%lld] (-1: any size >= 1)",
                             name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                             (long long)t->ne[3], (long long)n0, (long long)n1, (long long)n2, (long long)n3);
    if (t->nb[3] != (int64_t)sizeof(float))
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: innermost stride %lld, expected 4 (contiguous rows)", name,
                         (long long)t->nb[3]);
    if (is_output)
        for (int i = 0; i < 3; i++)
            if (t->ne[i] > 1 && t->nb[i] == 0)
                return heed_fail(ctx, HEED_ERR_INVALID, "%s: stride 0 in dimension %d of an output", name, i);
    return HEED_OK;
}

heed_status attn_check_view_f64(heed_ctx *ctx, const char *name, const heed_tensor *t, int f64_ok, int is_output,
                                int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    if (f64_ok && t && t->data && t->dtype == HEED_F64) {
        if (t->nb[3] != (int64_t)sizeof(double))
            return heed_fail(ctx, HEED_ERR_INVALID, "%s: innermost stride %lld, expected 8 (contiguous f64 rows)",
                             name, (long long)t->nb[3]);
        heed_tensor as_f32 = *t; /* the remaining checks do not depend on the element type */
        as_f32.dtype = HEED_F32;
        as_f32.nb[3] = sizeof(float);
        return attn_check_view(ctx, name, &as_f32, is_output, n0, n1, n2, n3);
    }
    return attn_check_view(ctx, name, t, is_output, n0, n1, n2, n3);
}

heed_status attn_resolve(heed_ctx *ctx, attn_dims *a, const heed_attn_desc *d)
{
    const heed_status s = heed_attn_check(ctx, d);
    if (s != HEED_OK) return s;
    a->B = d->q.ne[0];
    a->Hq = d->q.ne[1];
    a->Hkv = d->k.ne[1];
    a->G = a->Hq / a->Hkv;
    a->Tq = d->q.ne[2];
    a->Tk = d->k.ne[2];
    a->D = d->q.ne[3];
    a->Dv = d->v.ne[3];
    a->scale = d->scale != 0 ? d->scale : (float)(1.0 / sqrt((double)a->D));
    a->sigmoid_bias = !isnan(d->sigmoid_bias) ? d->sigmoid_bias : (float)-log((double)(a->Tk > 1 ? a->Tk : 1));
    return HEED_OK;
}
