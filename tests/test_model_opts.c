/* test_model_opts.c — the runtime options of the model (heed_model_set_attn_log_scale,
 * heed_model_set_rope_theta) on the qwen2 golden checkpoint. The log scale is checked on layer 0's
 * attention probabilities, whose inputs it does not touch: row p's log-odds against key 0 must be the
 * unscaled ones times max(1, log(p + 1) / log(n0)). RoPE base overrides are checked against config copies
 * in tests/cli_model_test.sh; here only their argument checks and the emptied cache. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T = 12 };

/* Layer 0's probabilities [H, T, T] and the logits [T, V] of ids with log scale n0 (0: off). */
static void run(heed_ctx *ctx, heed_model *m, float *probs, float *logits, const int32_t *ids, double n0)
{
    const heed_config *c = heed_model_config(m);
    float *attn[HEED_CONFIG_MAX_LAYERS] = {probs};
    for (int64_t L = 1; L < c->n_layers; L++) attn[L] = NULL;
    heed_model_trace tr = {attn, NULL};
    CHECK_OK(ctx, heed_model_set_attn_log_scale(ctx, m, n0));
    CHECK_OK(ctx, heed_model_forward(ctx, m, logits, &tr, ids, NULL, T, 0, 0));
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(NULL, heed_ctx_create(&ctx, 2));
    if (!ctx) return t_done("test_model_opts");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/qwen2", data_dir());
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (!m) {
        heed_ctx_free(ctx);
        return t_done("test_model_opts");
    }
    const heed_config *c = heed_model_config(m);
    const int64_t H = c->n_heads, V = c->vocab;
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 37 + 5) % V);
    float *p0 = malloc(sizeof(float) * (size_t)(H * T * T)), *p1 = malloc(sizeof(float) * (size_t)(H * T * T));
    float *l0 = malloc(sizeof(float) * (size_t)(T * V)), *l1 = malloc(sizeof(float) * (size_t)(T * V));

    /* n0 above every position + 1: all factors clamp to 1, the logits are bit-identical */
    run(ctx, m, p0, l0, ids, 0.0);
    run(ctx, m, p1, l1, ids, 1e6);
    CHECK(memcmp(l0, l1, sizeof(float) * (size_t)(T * V)) == 0, "log scale n0 = 1e6 over %d tokens changed logits", T);

    /* n0 = 2: row p is scaled by log2(p + 1) (1 for p = 0, 1); log(p[j] / p[0]) = s_p log(p0[j] / p0[0]).
     * Probabilities are f32 from double scores, q is scaled in f32: the log-odds agree to 1e-4 absolute
     * (they are O(1) here); probabilities below 1e-30 are skipped (their logs are not resolved). */
    run(ctx, m, p1, l1, ids, 2.0);
    double worst = 0.0;
    int64_t n_checked = 0, n_changed = 0;
    for (int64_t h = 0; h < H; h++)
        for (int64_t t = 0; t < T; t++) {
            const double s = fmax(1.0, log((double)(t + 1)) / log(2.0));
            const float *a = p0 + (h * T + t) * T, *b = p1 + (h * T + t) * T;
            for (int64_t j = 1; j <= t; j++) {
                if (a[j] < 1e-30f || a[0] < 1e-30f || b[j] < 1e-30f || b[0] < 1e-30f) continue;
                const double want = s * log((double)a[j] / a[0]), got = log((double)b[j] / b[0]);
                worst = fmax(worst, fabs(got - want));
                n_checked++;
                n_changed += fabs(got - log((double)a[j] / a[0])) > 1e-3;
            }
        }
    CHECK(n_checked > T * H, "log scale: only %lld log-odds checked", (long long)n_checked);
    CHECK(n_changed > 0, "log scale n0 = 2 changed no probability");
    CHECK(worst <= 1e-4, "log scale n0 = 2: log-odds off by %.3g from s_p x unscaled (%lld checked)", worst,
          (long long)n_checked);
    CHECK(memcmp(l0, l1, sizeof(float) * (size_t)(T * V)) != 0, "log scale n0 = 2 changed no logit");
    /* off again: the first result back bit for bit */
    run(ctx, m, p1, l1, ids, 0.0);
    CHECK(memcmp(l0, l1, sizeof(float) * (size_t)(T * V)) == 0, "log scale turned off: logits differ");

    /* argument checks; a new RoPE base empties the cache (its keys were rotated with the old one) */
    CHECK(heed_model_set_attn_log_scale(ctx, m, 1.0) == HEED_ERR_INVALID, "n0 = 1 accepted");
    CHECK(heed_model_set_attn_log_scale(ctx, m, NAN) == HEED_ERR_INVALID, "n0 = NaN accepted");
    CHECK(heed_model_set_rope_theta(ctx, m, 0.0) == HEED_ERR_INVALID, "rope theta 0 accepted");
    CHECK(heed_model_n_cached(m) == T, "cache holds %lld, expected %d", (long long)heed_model_n_cached(m), T);
    CHECK_OK(ctx, heed_model_set_rope_theta(ctx, m, 500.0));
    CHECK(heed_model_n_cached(m) == 0, "rope theta change kept %lld cached positions",
          (long long)heed_model_n_cached(m));
    free(p0), free(p1), free(l0), free(l1);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return t_done("test_model_opts");
}
