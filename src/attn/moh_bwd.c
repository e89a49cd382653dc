/* moh_bwd.c — the backward of Mixture-of-Head attention (contract in heed.h): the gated concatenation
 * (gradients of the head outputs and of the gates) and the routing (gradients of the router logits from
 * the gates' gradient plus the weighted load-balance loss; top-K choice and f_h are constants). */
#include "attn/attn.h"

#include <math.h>

typedef struct combine_bwd_job {
    heed_tensor *d_x;
    float *d_gates;
    const float *d_out, *gates;
    const heed_tensor *x;
    int64_t T, H, Dv;
} combine_bwd_job;

/* One task per (b, t): d_x[b, h, t, :] = g_h * d_out[b, t, h, :], d_gates[b, t, h] = d_out[b, t, h, :] . x[b, h, t, :]. */
static void combine_bwd_task(void *arg, int64_t task, int thread)
{
    const combine_bwd_job *J = arg;
    const int64_t b = task / J->T, t = task % J->T, Dv = J->Dv;
    const float *drow = J->d_out + task * J->H * Dv, *g = J->gates + task * J->H;
    float *dg = J->d_gates + task * J->H;
    (void)thread;
    for (int64_t h = 0; h < J->H; h++) {
        const float *restrict x = heed_row(J->x, b, h, t), *restrict dy = drow + h * Dv;
        float *restrict dx = heed_row(J->d_x, b, h, t);
        float acc = 0.0f;
        for (int64_t d = 0; d < Dv; d++) {
            dx[d] = g[h] * dy[d];
            acc += dy[d] * x[d];
        }
        dg[h] = acc;
    }
}

heed_status heed_moh_combine_backward(heed_ctx *ctx, heed_tensor *d_head_out, float *d_gates, const float *d_out,
                                      const heed_tensor *head_out, const float *gates)
{
    heed_status s;
    if (!ctx) return HEED_ERR_INVALID;
    if ((s = attn_check_view(ctx, "head_out", head_out, 0, -1, -1, -1, -1)) != HEED_OK) return s;
    const int64_t B = head_out->ne[0], H = head_out->ne[1], T = head_out->ne[2], Dv = head_out->ne[3];
    if ((s = attn_check_view(ctx, "d_head_out", d_head_out, 1, B, H, T, Dv)) != HEED_OK) return s;
    if (!d_out) return heed_fail(ctx, HEED_ERR_INVALID, "d_out: NULL, expected [B, T, H*Dv] f32");
    if (!gates) return heed_fail(ctx, HEED_ERR_INVALID, "gates: NULL, expected [B, T, H] f32");
    if (!d_gates) return heed_fail(ctx, HEED_ERR_INVALID, "d_gates: NULL, expected [B, T, H] f32");
    combine_bwd_job J = {d_head_out, d_gates, d_out, gates, head_out, T, H, Dv};
    heed_parallel(ctx, B * T, combine_bwd_task, &J);
    return HEED_OK;
}

/* dx = p * (dp - p.dp): the backward of p = softmax(x) restricted to the entries where keep is NULL or
 * keep[i] != 0 (p[i] and dp[i] of the others are ignored and their dx is 0). dx: [n] out. */
static void softmax_bwd(double *dx, const double *p, const double *dp, const unsigned char *keep, int64_t n)
{
    double dot = 0;
    for (int64_t i = 0; i < n; i++)
        if (!keep || keep[i]) dot += p[i] * dp[i];
    for (int64_t i = 0; i < n; i++) dx[i] = !keep || keep[i] ? p[i] * (dp[i] - dot) : 0.0;
}

heed_status heed_moh_route_backward(heed_ctx *ctx, float *d_shared_logits, float *d_routed_logits,
                                    float *d_alpha_logits, const float *d_gates, float balance_weight,
                                    const float *shared_logits, const float *routed_logits, const float *alpha_logits,
                                    int64_t T, int64_t n_shared, int64_t n_routed, int64_t top_k)
{
    heed_status s;
    if (!ctx) return HEED_ERR_INVALID;
    if ((s = moh_check_route(ctx, shared_logits, routed_logits, alpha_logits, T, n_shared, n_routed, top_k)) !=
        HEED_OK)
        return s;
    if (!d_gates) return heed_fail(ctx, HEED_ERR_INVALID, "d_gates: NULL, expected [T, n_shared + n_routed]");
    if (!isfinite(balance_weight))
        return heed_fail(ctx, HEED_ERR_INVALID, "balance_weight: %g, expected a finite weight", (double)balance_weight);
    if (d_shared_logits && !shared_logits)
        return heed_fail(ctx, HEED_ERR_INVALID, "d_shared_logits: given, but shared_logits is NULL");
    if (d_alpha_logits && !alpha_logits)
        return heed_fail(ctx, HEED_ERR_INVALID, "d_alpha_logits: given, but alpha_logits is NULL");

    /* p, w, dp, dl: [n_routed] routed probabilities, the renormalised top-K weights, a probability
     * gradient, the logits' gradient; ps, dps, dls:
     * [n_shared] the same for the shared heads; c: [n_routed] d(balance term)/dp; count: [n_routed]
     * tokens routed to each head; picked: [n_routed] this token's top K. */
    const size_t nr = (size_t)n_routed, ns = (size_t)(n_shared > 0 ? n_shared : 1);
    if ((s = heed_scratch_reserve(ctx, (5 * nr + 3 * ns) * sizeof(double) + nr * sizeof(int64_t) + nr)) != HEED_OK)
        return s;
    double *p = heed_scratch(ctx, 0), *w = p + nr, *dp = w + nr, *dl = dp + nr, *c = dl + nr;
    double *ps = c + nr, *dps = ps + ns, *dls = dps + ns;
    int64_t *count = (int64_t *)(dls + ns);
    unsigned char *picked = (unsigned char *)(count + nr);

    /* The balance loss n_routed * sum_h (P_h / T) f_h, P_h = sum_t p_th, f_h = count_h / T constant:
     * d/dp_th = balance_weight * n_routed * count_h / T^2. */
    memset(count, 0, nr * sizeof(int64_t));
    for (int64_t t = 0; t < T; t++) {
        moh_top_k(picked, routed_logits + t * n_routed, n_routed, top_k);
        for (int64_t i = 0; i < n_routed; i++) count[i] += picked[i];
    }
    for (int64_t i = 0; i < n_routed; i++)
        c[i] = (double)balance_weight * (double)n_routed * (double)count[i] / ((double)T * (double)T);

    const int64_t H = n_shared + n_routed;
    for (int64_t t = 0; t < T; t++) {
        const float *dg = d_gates + t * H, *rl = routed_logits + t * n_routed;
        double a[2] = {0.5, 0.5}, da[2] = {0, 0}; /* alpha_k = 2 a_k; da: d/d alpha_k */
        if (n_shared > 0) moh_softmax64(a, alpha_logits + t * 2, 2);

        /* Routed: g = alpha2 * top_k * w, w = softmax over the picked logits (p_i / kept). */
        const double alpha2 = n_shared > 0 ? 2 * a[1] : 1;
        moh_softmax64(p, rl, n_routed);
        moh_top_k(picked, rl, n_routed, top_k);
        double kept = 0;
        for (int64_t i = 0; i < n_routed; i++)
            if (picked[i]) kept += p[i];
        for (int64_t i = 0; i < n_routed; i++) {
            w[i] = picked[i] ? p[i] / kept : 0.0;
            dp[i] = alpha2 * (double)top_k * (double)dg[n_shared + i];
            da[1] += (double)top_k * w[i] * (double)dg[n_shared + i];
        }
        softmax_bwd(dl, w, dp, picked, n_routed);
        /* The balance term: through the full softmax. */
        softmax_bwd(dp, p, c, NULL, n_routed);
        if (d_routed_logits)
            for (int64_t i = 0; i < n_routed; i++) d_routed_logits[t * n_routed + i] = (float)(dl[i] + dp[i]);

        if (n_shared == 0) {
            if (d_alpha_logits) d_alpha_logits[t * 2] = d_alpha_logits[t * 2 + 1] = 0.0f;
            continue;
        }
        /* Shared: g_h = alpha1 * n_shared * ps_h. */
        const double alpha1 = 2 * a[0];
        if (shared_logits) moh_softmax64(ps, shared_logits + t * n_shared, n_shared);
        else ps[0] = 1;
        for (int64_t h = 0; h < n_shared; h++) {
            dps[h] = alpha1 * (double)n_shared * (double)dg[h];
            da[0] += (double)n_shared * ps[h] * (double)dg[h];
        }
        if (d_shared_logits) {
            softmax_bwd(dls, ps, dps, NULL, n_shared);
            for (int64_t h = 0; h < n_shared; h++) d_shared_logits[t * n_shared + h] = (float)dls[h];
        }
        if (d_alpha_logits) {
            const double dak[2] = {2 * da[0], 2 * da[1]}; /* d/d a_k = 2 d/d alpha_k */
            double dal[2];
            softmax_bwd(dal, a, dak, NULL, 2);
            d_alpha_logits[t * 2] = (float)dal[0], d_alpha_logits[t * 2 + 1] = (float)dal[1];
        }
    }
    return HEED_OK;
}
