/* merge.c — heed_attn_merge: combines attention partials computed over disjoint key sets (split-KV
 * decode, KV-cache policies, KV shards across processes) into the result over their union, exactly:
 * softmax partials are reweighted by their log-sum-exp, sigmoid partials simply add. */
#include "attn/attn.h"

#include <math.h>
#include <stdio.h>

heed_status heed_attn_merge(heed_ctx *ctx, heed_tensor *o, float *lse, const heed_tensor *parts_o,
                            const float *const *parts_lse, int n_parts, const float *sink_logit, heed_norm norm)
{
    if (n_parts < 1) return heed_fail(ctx, HEED_ERR_INVALID, "merge: n_parts = %d, expected >= 1", n_parts);
    if (!parts_o || !parts_lse)
        return heed_fail(ctx, HEED_ERR_INVALID, "merge: %s is NULL", parts_o ? "parts_lse" : "parts_o");
    if (norm != HEED_NORM_SOFTMAX && norm != HEED_NORM_SIGMOID)
        return heed_fail(ctx, HEED_ERR_INVALID, "merge: norm = %d, expected softmax or sigmoid", (int)norm);
    if (sink_logit && norm != HEED_NORM_SOFTMAX)
        return heed_fail(ctx, HEED_ERR_INVALID, "merge: sink_logit given with a sigmoid normalizer, expected softmax");
    heed_status s = attn_check_view(ctx, "merge: o", o, 1, -1, -1, -1, -1);
    if (s != HEED_OK) return s;
    const int64_t B = o->ne[0], H = o->ne[1], T = o->ne[2], Dv = o->ne[3];
    for (int p = 0; p < n_parts; p++) {
        char name[48];
        snprintf(name, sizeof name, "merge: parts_o[%d]", p);
        if ((s = attn_check_view(ctx, name, &parts_o[p], 0, B, H, T, Dv)) != HEED_OK) return s;
        if (!parts_lse[p]) return heed_fail(ctx, HEED_ERR_INVALID, "merge: parts_lse[%d] is NULL", p);
        if (p > 0 && parts_o[p].data == o->data)
            return heed_fail(ctx, HEED_ERR_INVALID, "merge: parts_o[%d] aliases o, only parts_o[0] may", p);
    }
    double *w = heed_alloc((size_t)n_parts * sizeof(double));
    if (!w) return heed_fail(ctx, HEED_ERR_NOMEM, "merge: cannot allocate %d weights", n_parts);

    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const int64_t row = (b * H + h) * T + t;
                /* both normalizers: out_lse = log(sum_p exp(lse_p) [+ exp(sink)]), taken around the
                 * largest term so nothing overflows; a partial with lse -inf (no visible key) weighs 0 */
                const double sink = sink_logit ? (double)sink_logit[h] : -INFINITY;
                double m = sink;
                for (int p = 0; p < n_parts; p++)
                    if (parts_lse[p][row] > m) m = parts_lse[p][row];
                double z = 0;
                if (m != -INFINITY) {
                    z = exp(sink - m);
                    for (int p = 0; p < n_parts; p++) z += w[p] = exp((double)parts_lse[p][row] - m);
                } else {
                    for (int p = 0; p < n_parts; p++) w[p] = 0;
                }
                const double out_lse = m == -INFINITY ? -INFINITY : m + log(z);
                /* softmax: o = sum_p exp(lse_p - out_lse) o_p; sigmoid: o = sum_p o_p */
                for (int p = 0; p < n_parts; p++) w[p] = norm == HEED_NORM_SIGMOID ? 1.0 : w[p] > 0 ? w[p] / z : 0.0;
                float *orow = heed_row(o, b, h, t);
                for (int64_t x = 0; x < Dv; x++) {
                    double acc = 0; /* element x of every part is read before o's element x is written */
                    for (int p = 0; p < n_parts; p++)
                        if (w[p] != 0) acc += w[p] * (double)((const float *)heed_row(&parts_o[p], b, h, t))[x];
                    orow[x] = (float)acc;
                }
                if (lse) lse[row] = (float)out_lse;
            }
    heed_free(w);
    return HEED_OK;
}
