/* test_train_torch.c — the trainer against PyTorch (llm.c's test_gpt2 style): from the same initial
 * parameters and batch, the logits, the loss and every parameter gradient of one backward, then the
 * losses, gradient norms and final parameters of 10 AdamW steps, against f64 goldens made by
 * tools/make_train_goldens.py (tests/data/train/README.md), for a GQA/untied and an MHA/tied model. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest |a - b| over n values, relative to the largest |b| (each tensor against its own scale). */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double worst = 0, scale = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return worst / scale;
}

static const float *golden(heed_ctx *ctx, const heed_st *st, const char *name, int64_t n)
{
    const heed_st_tensor *t = heed_st_find(st, name);
    CHECK(t && t->dtype == HEED_ST_F32 && t->n_elems == n, "golden tensor %s missing or misshapen", name);
    (void)ctx;
    return t && t->dtype == HEED_ST_F32 && t->n_elems == n ? t->data : NULL;
}

static void check_model(heed_ctx *ctx, const char *name)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/train/%s", data_dir(), name);
    heed_config hc;
    CHECK_OK(ctx, heed_config_load(ctx, &hc, NULL, dir));
    heed_train_config c;
    heed_train_config_init(&c);
    c.vocab = hc.vocab, c.hidden = hc.hidden, c.n_layers = hc.n_layers, c.n_heads = hc.n_heads;
    c.n_kv_heads = hc.n_kv_heads, c.head_dim = hc.head_dim, c.intermediate = hc.intermediate;
    c.max_seq = hc.max_pos, c.rope_theta = hc.rope.theta, c.norm_eps = hc.norm_eps;
    c.tie_embeddings = hc.tie_embeddings;
    heed_trainer *tr = NULL;
    heed_st *params = NULL, *batch = NULL, *gold = NULL;
    CHECK_OK(ctx, heed_trainer_create(ctx, &tr, &c, 0));
    snprintf(path, sizeof path, "%s/params.safetensors", dir);
    CHECK_OK(ctx, heed_st_open(ctx, &params, path));
    snprintf(path, sizeof path, "%s/batch.safetensors", dir);
    CHECK_OK(ctx, heed_st_open(ctx, &batch, path));
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    CHECK_OK(ctx, heed_st_open(ctx, &gold, path));
    if (!tr || !params || !batch || !gold) goto done;
    int64_t np = heed_trainer_n_params(tr);
    CHECK(np == heed_st_count(params), "%s: %lld trainer parameters, %lld in the file", name, (long long)np,
          (long long)heed_st_count(params));
    for (int64_t i = 0; i < np; i++) { /* the same initial parameters, by Hugging Face name */
        heed_param p = heed_trainer_param(tr, i);
        const float *src = golden(ctx, params, p.name, p.n_elems);
        if (src) memcpy(p.data, src, sizeof(float) * (size_t)p.n_elems);
    }
    const heed_st_tensor *ti = heed_st_find(batch, "inputs"), *tt = heed_st_find(batch, "targets");
    CHECK(ti && tt && ti->dtype == HEED_ST_I32 && tt->dtype == HEED_ST_I32 && ti->n_dims == 2 &&
          ti->n_elems == tt->n_elems, "%s: batch.safetensors: inputs/targets int32 [B, T] expected", name);
    if (!ti || !tt || ti->n_dims != 2) goto done;
    int64_t B = ti->shape[0], T = ti->shape[1], V = c.vocab;
    const int32_t *in = ti->data, *tg = tt->data;

    /* one forward and backward */
    float *logits = malloc(sizeof(float) * (size_t)(B * T * V)), loss = 0;
    CHECK_OK(ctx, heed_trainer_forward_backward(ctx, tr, &loss, NULL, logits, in, tg, B, T, 1.0f));
    const float *g_logits = golden(ctx, gold, "logits", B * T * V), *g_loss = golden(ctx, gold, "loss", 1);
    if (g_logits) {
        double e = rel_err(logits, g_logits, B * T * V);
        CHECK(e < 2e-6, "%s: logits differ by %.3g of their largest", name, e);
    }
    if (g_loss) CHECK(fabs(loss - g_loss[0]) < 2e-6 * g_loss[0], "%s: loss %.9g vs torch %.9g", name, loss, g_loss[0]);
    double worst_grad = 0;
    for (int64_t i = 0; i < np; i++) {
        heed_param p = heed_trainer_param(tr, i);
        char gname[160];
        snprintf(gname, sizeof gname, "grad.%s", p.name);
        const float *g = golden(ctx, gold, gname, p.n_elems);
        if (!g) continue;
        double e = rel_err(p.grad, g, p.n_elems);
        worst_grad = fmax(worst_grad, e);
        CHECK(e < 1e-5, "%s: gradient of %s differs by %.3g of its largest", name, p.name, e);
    }
    free(logits);

    /* 10 AdamW steps on the same batch (the gradient from above is the first step's) */
    heed_optim o;
    heed_optim_init(&o); /* betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on matrices, clip 1: as the goldens */
    const float *g_losses = golden(ctx, gold, "losses", 10), *g_norms = golden(ctx, gold, "grad_norms", 10);
    const float *g_lrs = golden(ctx, gold, "lrs", 10);
    double worst_loss = 0, worst_norm = 0;
    for (int t = 0; t < 10 && g_losses && g_norms && g_lrs; t++) {
        float lr = heed_lr_schedule(t, 3, 10, 1e-2f, 1e-3f), gn = 0;
        CHECK(fabsf(lr - g_lrs[t]) <= 1e-7f * g_lrs[t], "%s: lr of step %d: %.9g vs %.9g", name, t, lr, g_lrs[t]);
        if (t > 0) CHECK_OK(ctx, heed_trainer_forward_backward(ctx, tr, &loss, NULL, NULL, in, tg, B, T, 1.0f));
        CHECK_OK(ctx, heed_trainer_step(ctx, tr, &o, lr, &gn));
        worst_loss = fmax(worst_loss, fabs(loss - g_losses[t]) / g_losses[t]);
        worst_norm = fmax(worst_norm, fabs(gn - g_norms[t]) / g_norms[t]);
    }
    CHECK(worst_loss < 2e-5, "%s: losses of the 10 steps differ by %.3g (relative)", name, worst_loss);
    CHECK(worst_norm < 5e-5, "%s: gradient norms differ by %.3g (relative)", name, worst_norm);
    double worst_final = 0;
    for (int64_t i = 0; i < np; i++) {
        heed_param p = heed_trainer_param(tr, i);
        char fname[160];
        snprintf(fname, sizeof fname, "final.%s", p.name);
        const float *f = golden(ctx, gold, fname, p.n_elems);
        if (f) worst_final = fmax(worst_final, rel_err(p.data, f, p.n_elems));
    }
    CHECK(worst_final < 5e-5, "%s: parameters after 10 steps differ by %.3g of their largest", name, worst_final);
    printf("%s: gradients within %.2g, 10-step losses within %.2g, norms %.2g, final parameters %.2g\n", name,
           worst_grad, worst_loss, worst_norm, worst_final);
done:
    heed_st_close(params);
    heed_st_close(batch);
    heed_st_close(gold);
    heed_trainer_free(tr);
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 2));
    if (!ctx) return t_done("test_train_torch");
    check_model(ctx, "gqa-untied");
    check_model(ctx, "mha-tied");
    heed_ctx_free(ctx);
    return t_done("test_train_torch");
}
