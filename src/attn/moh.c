/* moh.c — Mixture-of-Head attention (Jin et al., SkyworkAI/MoH): per-token head gates from router
 * logits (shared heads always on, top-K routed heads, a learned shared/routed balance), the
 * load-balance loss, and the gated concatenation of head outputs that W_O turns into sum_h g_h H_h W_O^h.
 * Gates follow the authors' code: shared gates are scaled by n_shared and routed by top_k, so a uniform
 * router gives every active head weight 1, as in plain multi-head attention. */
#include "attn/attn.h"

#include <math.h>

/* Logits must be finite: a NaN would make the top-K choice meaningless, an infinity the softmax NaN. */
static heed_status check_logits(heed_ctx *ctx, const char *name, const float *x, int64_t T, int64_t n)
{
    if (!x)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: NULL, expected [T=%lld, %lld]", name, (long long)T, (long long)n);
    for (int64_t i = 0; i < T * n; i++)
        if (!isfinite(x[i]))
            return heed_fail(ctx, HEED_ERR_INVALID, "%s[%lld, %lld] = %g, expected a finite logit", name,
                             (long long)(i / n), (long long)(i % n), (double)x[i]);
    return HEED_OK;
}

void moh_softmax64(double *p, const float *x, int64_t n)
{
    double mx = x[0], sum = 0;
    for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int64_t i = 0; i < n; i++) sum += p[i] = exp((double)x[i] - mx);
    for (int64_t i = 0; i < n; i++) p[i] /= sum;
}

void moh_top_k(unsigned char *picked, const float *rl, int64_t n_routed, int64_t top_k)
{
    /* By logit (the softmax is monotonic and logits compare exactly); strict > keeps the lower index
     * on ties. */
    memset(picked, 0, (size_t)n_routed);
    for (int64_t r = 0; r < top_k; r++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n_routed; i++)
            if (!picked[i] && (best < 0 || rl[i] > rl[best])) best = i;
        picked[best] = 1;
    }
}

heed_status moh_check_route(heed_ctx *ctx, const float *shared_logits, const float *routed_logits,
                            const float *alpha_logits, int64_t T, int64_t n_shared, int64_t n_routed, int64_t top_k)
{
    heed_status s;
    if (T < 1) return heed_fail(ctx, HEED_ERR_INVALID, "T: %lld, expected >= 1 token", (long long)T);
    if (n_shared < 0) return heed_fail(ctx, HEED_ERR_INVALID, "n_shared: %lld, expected >= 0", (long long)n_shared);
    if (n_routed < 1) return heed_fail(ctx, HEED_ERR_INVALID, "n_routed: %lld, expected >= 1", (long long)n_routed);
    if (top_k < 1 || top_k > n_routed)
        return heed_fail(ctx, HEED_ERR_INVALID, "top_k: %lld, expected 1 <= top_k <= n_routed (%lld)",
                         (long long)top_k, (long long)n_routed);
    if ((s = check_logits(ctx, "routed_logits", routed_logits, T, n_routed)) != HEED_OK) return s;
    if (n_shared > 1 || shared_logits)
        if ((s = check_logits(ctx, "shared_logits", shared_logits, T, n_shared)) != HEED_OK) return s;
    if (n_shared > 0)
        if ((s = check_logits(ctx, "alpha_logits", alpha_logits, T, 2)) != HEED_OK) return s;
    return HEED_OK;
}

heed_status heed_moh_route(heed_ctx *ctx, float *gates, float *balance_loss, const float *shared_logits,
                           const float *routed_logits, const float *alpha_logits, int64_t T, int64_t n_shared,
                           int64_t n_routed, int64_t top_k)
{
    heed_status s;
    if (!ctx) return HEED_ERR_INVALID;
    if (!gates) return heed_fail(ctx, HEED_ERR_INVALID, "gates: NULL, expected [T, n_shared + n_routed]");
    if ((s = moh_check_route(ctx, shared_logits, routed_logits, alpha_logits, T, n_shared, n_routed, top_k)) !=
        HEED_OK)
        return s;

    /* p: [n_routed] this token's routed probabilities; P: [n_routed] their sum over tokens;
     * ps: [n_shared] shared probabilities; count: [n_routed] tokens that route to each head;
     * picked: [n_routed] 1 where the head is in this token's top K. */
    const size_t nr = (size_t)n_routed, ns = (size_t)(n_shared > 0 ? n_shared : 1);
    if ((s = heed_scratch_reserve(ctx, (2 * nr + ns) * sizeof(double) + nr * sizeof(int64_t) + nr)) != HEED_OK)
        return s;
    double *p = heed_scratch(ctx, 0), *P = p + nr, *ps = P + nr;
    int64_t *count = (int64_t *)(ps + ns);
    unsigned char *picked = (unsigned char *)(count + nr);
    memset(P, 0, nr * sizeof(double));
    memset(count, 0, nr * sizeof(int64_t));

    const int64_t H = n_shared + n_routed;
    for (int64_t t = 0; t < T; t++) {
        float *g = gates + t * H;
        double alpha1 = 1, alpha2 = 1;
        if (n_shared > 0) {
            double a2[2];
            moh_softmax64(a2, alpha_logits + t * 2, 2);
            alpha1 = 2 * a2[0], alpha2 = 2 * a2[1];
            if (shared_logits) moh_softmax64(ps, shared_logits + t * n_shared, n_shared);
            else ps[0] = 1; /* one shared head: the softmax of one logit */
            for (int64_t h = 0; h < n_shared; h++) g[h] = (float)(alpha1 * (double)n_shared * ps[h]);
        }
        const float *rl = routed_logits + t * n_routed;
        moh_softmax64(p, rl, n_routed);
        moh_top_k(picked, rl, n_routed, top_k);
        double kept = 0;
        for (int64_t i = 0; i < n_routed; i++)
            if (picked[i]) kept += p[i], count[i]++;
        for (int64_t i = 0; i < n_routed; i++) {
            P[i] += p[i];
            g[n_shared + i] = picked[i] ? (float)(alpha2 * (double)top_k * p[i] / kept) : 0.0f;
        }
    }
    if (balance_loss) {
        /* n_routed^2 * mean_h(P_h f_h) = n_routed * sum_h P_h f_h with P_h, f_h means over T tokens. */
        double acc = 0;
        for (int64_t i = 0; i < n_routed; i++) acc += (P[i] / (double)T) * ((double)count[i] / (double)T);
        *balance_loss = (float)((double)n_routed * acc);
    }
    return HEED_OK;
}

typedef struct combine_job {
    float *out;
    const heed_tensor *x;
    const float *gates;
    int64_t T, H, Dv;
} combine_job;

/* One task per (b, t): the row out[b, t, :] of H*Dv values. */
static void combine_task(void *arg, int64_t task, int thread)
{
    const combine_job *J = arg;
    const int64_t b = task / J->T, t = task % J->T, Dv = J->Dv;
    float *orow = J->out + task * J->H * Dv;
    const float *g = J->gates + task * J->H;
    for (int64_t h = 0; h < J->H; h++) {
        const float *x = heed_row(J->x, b, h, t);
        for (int64_t d = 0; d < Dv; d++) orow[h * Dv + d] = g[h] * x[d];
    }
}

heed_status heed_moh_combine(heed_ctx *ctx, float *out, const heed_tensor *head_out, const float *gates)
{
    heed_status s;
    if (!ctx) return HEED_ERR_INVALID;
    if ((s = attn_check_view(ctx, "head_out", head_out, 0, -1, -1, -1, -1)) != HEED_OK) return s;
    if (!out) return heed_fail(ctx, HEED_ERR_INVALID, "out: NULL, expected [B, T, H*Dv] f32");
    if (!gates) return heed_fail(ctx, HEED_ERR_INVALID, "gates: NULL, expected [B, T, H] f32");
    combine_job J = {out, head_out, gates, head_out->ne[2], head_out->ne[1], head_out->ne[3]};
    heed_parallel(ctx, head_out->ne[0] * J.T, combine_task, &J);
    return HEED_OK;
}
