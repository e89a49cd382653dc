/* test_patch.c — activation patching of head outputs (heed_model_set_head_patch) on the tiny llama3-old
 * checkpoint of tests/data/models: patching heads with their own outputs changes nothing, a patched slot
 * reads the given vector (as the probe sees it) and the others keep theirs, patching the outputs of a
 * scaled run reproduces that run's logits (zeros: the ablation), a decode step reads its positions'
 * slots, and bad arguments fail. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T 10

/* Logits [T, V] of ids, and with out non-NULL every head's output [NL, H, T, D]. */
static void forward(heed_ctx *ctx, heed_model *m, float *logits, float *out, const int32_t *ids)
{
    heed_probe pr = {0};
    pr.head_out = out;
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, out ? &pr : NULL));
    CHECK_OK(ctx, heed_model_forward(ctx, m, logits, NULL, ids, NULL, T, 0, 0));
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, NULL));
}

int main(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/llama3-old", data_dir());
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 2));
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    const heed_config *c = heed_model_config(m);
    const int64_t NL = c->n_layers, H = c->n_heads, D = c->head_dim, V = c->vocab, S = NL * H * T;
    int32_t ids[T];
    t_rng r = {7};
    for (int i = 0; i < T; i++) ids[i] = (int32_t)t_int(&r, 0, V - 1);
    float *base = malloc(sizeof(float) * (size_t)(T * V)), *lg = malloc(sizeof(float) * (size_t)(T * V));
    float *out = malloc(sizeof(float) * (size_t)(S * D)), *seen = malloc(sizeof(float) * (size_t)(S * D));
    float *given = malloc(sizeof(float) * (size_t)(S * D));
    uint8_t *sel = calloc((size_t)S, 1);
    forward(ctx, m, base, out, ids);

    /* (a) every head at every position patched with its own output: bit-identical logits */
    memset(sel, 1, (size_t)S);
    CHECK_OK(ctx, heed_model_set_head_patch(ctx, m, sel, out, T));
    forward(ctx, m, lg, NULL, ids);
    CHECK(memcmp(base, lg, sizeof(float) * (size_t)(T * V)) == 0, "identity patch changed the logits");

    /* (b) one slot (layer 0, head 1, position 4) patched with a random vector: the probe reads it there, the
     * other slots of layer 0 and every slot before position 4 keep their unpatched values */
    memset(sel, 0, (size_t)S);
    t_fill_normal(&r, given, S * D, 1.0f);
    const int64_t slot = (0 * H + 1) * T + 4;
    sel[slot] = 1;
    CHECK_OK(ctx, heed_model_set_head_patch(ctx, m, sel, given, T));
    forward(ctx, m, lg, seen, ids);
    CHECK(memcmp(seen + slot * D, given + slot * D, sizeof(float) * (size_t)D) == 0, "patched slot != given vector");
    int kept = 1;
    for (int64_t L = 0; L < NL; L++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const int64_t k = (L * H + h) * T + t;
                if ((L == 0 || t < 4) && k != slot) kept &= !memcmp(seen + k * D, out + k * D, sizeof(float) * (size_t)D);
            }
    CHECK(kept, "a slot not patched and not downstream of the patch changed");
    CHECK(memcmp(base + 4 * V, lg + 4 * V, sizeof(float) * (size_t)V) != 0, "the patch left position 4's logits");
    CHECK(memcmp(base, lg, sizeof(float) * (size_t)(4 * V)) == 0, "the patch changed logits before position 4");

    /* (c) head (1, 2) scaled by 0 and by 0.5: patching the unscaled run with that run's outputs of the head
     * reproduces its logits exactly */
    const float scales[] = {0.0f, 0.5f};
    float *hs = malloc(sizeof(float) * (size_t)(NL * H)), *scaled = malloc(sizeof(float) * (size_t)(T * V));
    for (int s = 0; s < 2; s++) {
        for (int64_t i = 0; i < NL * H; i++) hs[i] = i == 1 * H + 2 ? scales[s] : 1.0f;
        CHECK_OK(ctx, heed_model_set_head_patch(ctx, m, NULL, NULL, 0));
        CHECK_OK(ctx, heed_model_set_head_scale(ctx, m, hs));
        forward(ctx, m, scaled, seen, ids);
        CHECK_OK(ctx, heed_model_set_head_scale(ctx, m, NULL));
        memset(sel, 0, (size_t)S);
        memset(sel + (1 * H + 2) * T, 1, T);
        CHECK_OK(ctx, heed_model_set_head_patch(ctx, m, sel, seen, T));
        forward(ctx, m, lg, NULL, ids);
        CHECK(memcmp(scaled, lg, sizeof(float) * (size_t)(T * V)) == 0, "patch != head scale %g", scales[s]);
        CHECK(t_max_abs(base, lg, T * V) > 1e-4, "head scale %g left the logits unchanged", scales[s]);
        /* a decode step reads the slots of its own position: prefill T - 1 tokens, then the last one */
        float *step = malloc(sizeof(float) * (size_t)V);
        CHECK_OK(ctx, heed_model_forward(ctx, m, NULL, NULL, ids, NULL, T - 1, 0, 0));
        CHECK_OK(ctx, heed_model_forward(ctx, m, step, NULL, ids + T - 1, NULL, 1, T - 1, 0));
        double big = 0;
        for (int64_t i = 0; i < V; i++) big = fmax(big, fabs(lg[(T - 1) * V + i]));
        CHECK(t_max_abs(step, lg + (T - 1) * V, V) <= 1e-5 * big, "decode step with scale %g patch != full forward",
              scales[s]);
        free(step);
    }

    /* errors: a forward past the patch, select without out, len < 1; removing restores the logits */
    CHECK(heed_model_set_head_patch(ctx, m, sel, seen, T - 1) == HEED_OK, "set_head_patch len T - 1 failed");
    CHECK(heed_model_forward(ctx, m, lg, NULL, ids, NULL, T, 0, 0) == HEED_ERR_INVALID, "forward past the patch ran");
    printf("past the patch: %s\n", heed_ctx_error(ctx));
    CHECK(heed_model_set_head_patch(ctx, m, sel, NULL, T) == HEED_ERR_INVALID, "select without out accepted");
    CHECK(heed_model_set_head_patch(ctx, m, sel, seen, 0) == HEED_ERR_INVALID, "len 0 accepted");
    CHECK_OK(ctx, heed_model_set_head_patch(ctx, m, NULL, NULL, 0));
    forward(ctx, m, lg, NULL, ids);
    CHECK(memcmp(base, lg, sizeof(float) * (size_t)(T * V)) == 0, "removing the patch did not restore the logits");
    free(base), free(lg), free(out), free(seen), free(given), free(sel), free(hs), free(scaled);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return t_done("test_patch");
}
