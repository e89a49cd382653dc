/* agent.c — agent attention (Han et al.): n agents average-pooled from Q broadcast to the keys and
 * back, V_A = softmax(A K^T s) V, O = softmax(Q A^T s) V_A. Both softmax attentions are
 * heed_attn_forward calls on descriptors with no mask, so every speed-up and check of the main kernel
 * applies here (K/V in f16/bf16 and fewer KV heads too). */
#include "attn/attn.h"

#include <math.h>
#include <stdio.h>

typedef struct pool_job {
    heed_tensor *a;          /* [B, H, n, D] agents out */
    const heed_tensor *q;    /* [B, H, T, D] */
    int64_t H, T, D, n;
} pool_job;

/* Adaptive average pooling over the token axis: agent a averages tokens
 * [floor(a T / n), ceil((a + 1) T / n)), as torch's adaptive_avg_pool1d does. */
static void pool_task(void *arg, int64_t task, int thread)
{
    const pool_job *J = arg;
    const int64_t b = task / J->H, h = task % J->H, T = J->T, n = J->n, D = J->D;
    for (int64_t a = 0; a < n; a++) {
        const int64_t lo = a * T / n, hi = ((a + 1) * T + n - 1) / n;
        float *out = heed_row(J->a, b, h, a);
        for (int64_t d = 0; d < D; d++) {
            double s = 0;
            for (int64_t t = lo; t < hi; t++) s += ((const float *)heed_row(J->q, b, h, t))[d];
            out[d] = (float)(s / (double)(hi - lo));
        }
    }
}

/* Puts which of the two attentions failed in front of its message. */
static heed_status stage_fail(heed_ctx *ctx, heed_status s, const char *stage)
{
    char msg[HEED_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", heed_ctx_error(ctx));
    return heed_fail(ctx, s, "agent attention, %s: %s", stage, msg);
}

heed_status heed_agent_attn(heed_ctx *ctx, heed_tensor *o, const heed_tensor *q, const heed_tensor *k,
                            const heed_tensor *v, int64_t n_agents, float scale)
{
    static const char *stage1 = "agents (pooled q) attending to k, v", *stage2 = "q attending to the agents";
    heed_status s;
    if (!ctx) return HEED_ERR_INVALID;
    if ((s = attn_check_view(ctx, "q", q, 0, -1, -1, -1, -1)) != HEED_OK) return s;
    const int64_t B = q->ne[0], H = q->ne[1], T = q->ne[2], D = q->ne[3];
    if (n_agents < 1 || n_agents > T)
        return heed_fail(ctx, HEED_ERR_INVALID, "n_agents: %lld, expected 1 <= n_agents <= T (%lld)",
                         (long long)n_agents, (long long)T);
    if (!isfinite(scale)) return heed_fail(ctx, HEED_ERR_INVALID, "scale: %g, expected a finite number", (double)scale);
    if (!k || !v) return heed_fail(ctx, HEED_ERR_INVALID, "%s: NULL tensor", k ? "v" : "k");
    const int64_t Dv = v->ne[3];
    if (Dv < 1) return heed_fail(ctx, HEED_ERR_INVALID, "v: Dv=%lld, expected >= 1", (long long)Dv);
    if ((s = attn_check_view(ctx, "o", o, 1, B, H, T, Dv)) != HEED_OK) return s;

    /* agents [B, H, n, D] then V_A [B, H, n, Dv], in one allocation (not scratch: the forward uses it). */
    const size_t na = (size_t)(B * H * n_agents * D), nva = (size_t)(B * H * n_agents * Dv);
    float *buf = heed_alloc((na + nva) * sizeof(float));
    if (!buf) return heed_fail(ctx, HEED_ERR_NOMEM, "agent attention: cannot allocate %zu bytes", (na + nva) * 4);
    heed_tensor agents = heed_tensor_4d(buf, HEED_F32, B, H, n_agents, D);
    heed_tensor va = heed_tensor_4d(buf + na, HEED_F32, B, H, n_agents, Dv);

    heed_attn_desc d1, d2;
    heed_attn_desc_init(&d1);
    d1.q = agents, d1.k = *k, d1.v = *v, d1.scale = scale;
    heed_attn_desc_init(&d2);
    d2.q = *q, d2.k = agents, d2.v = va, d2.scale = scale;
    /* Both descriptors are checked before any work, so a bad k or v writes nothing. */
    if ((s = heed_attn_check(ctx, &d1)) != HEED_OK) s = stage_fail(ctx, s, stage1);
    else if ((s = heed_attn_check(ctx, &d2)) != HEED_OK) s = stage_fail(ctx, s, stage2);
    if (s == HEED_OK) {
        pool_job J = {&agents, q, H, T, D, n_agents};
        heed_parallel(ctx, B * H, pool_task, &J);
        if ((s = heed_attn_forward(ctx, &va, NULL, &d1)) != HEED_OK) s = stage_fail(ctx, s, stage1);
        else if ((s = heed_attn_forward(ctx, o, NULL, &d2)) != HEED_OK) s = stage_fail(ctx, s, stage2);
    }
    heed_free(buf);
    return s;
}
