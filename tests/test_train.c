/* test_train.c — the trainer end to end: the gradient of every mixer variant along its own direction
 * against central differences of the loss, gradient accumulation, thread-count determinism, exact
 * resume from a checkpoint, and the runtime's logits on a saved checkpoint against the trainer's. */
#include "harness.h"
#include "heed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static heed_train_config tiny(void)
{
    heed_train_config c;
    heed_train_config_init(&c);
    c.vocab = 23;
    c.hidden = 16;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 6;
    c.intermediate = 20;
    c.max_seq = 12;
    c.tie_embeddings = 0;
    return c;
}

static void batch(int32_t *in, int32_t *tg, int64_t n, int64_t V, uint64_t seed)
{
    uint64_t r = seed;
    for (int64_t i = 0; i < n; i++) {
        in[i] = (int32_t)(heed_rng_next(&r) % (uint64_t)V);
        tg[i] = heed_rng_next(&r) % 7 == 0 ? -1 : (int32_t)(heed_rng_next(&r) % (uint64_t)V);
    }
}

static double loss_at(heed_ctx *ctx, heed_trainer *tr, const int32_t *in, const int32_t *tg, int64_t B, int64_t T)
{
    float l = 0;
    CHECK_OK(ctx, heed_trainer_forward_backward(ctx, tr, &l, NULL, NULL, in, tg, B, T, 0.0f));
    return l;
}

/* The directional derivative of the loss along the normalised gradient equals the gradient's norm. */
static void check_grad(heed_ctx *ctx, const char *name, const heed_train_config *c)
{
    heed_trainer *tr = NULL;
    CHECK_OK(ctx, heed_trainer_create(ctx, &tr, c, 7));
    if (!tr) return;
    enum { B = 2, T = 11 };
    int32_t in[B * T], tg[B * T];
    batch(in, tg, B * T, c->vocab, 3);
    float l0 = 0;
    CHECK_OK(ctx, heed_trainer_forward_backward(ctx, tr, &l0, NULL, NULL, in, tg, B, T, 1.0f));
    int64_t np = heed_trainer_n_params(tr);
    double gn2 = 0;
    for (int64_t i = 0; i < np; i++) {
        heed_param p = heed_trainer_param(tr, i);
        double s = 0;
        for (int64_t j = 0; j < p.n_elems; j++) s += (double)p.grad[j] * p.grad[j];
        CHECK(s > 0, "%s: parameter %s has a zero gradient", name, p.name);
        gn2 += s;
    }
    double gn = sqrt(gn2), eps = 1e-2 / gn, dir[2];
    for (int sgn = 0; sgn < 2; sgn++) {
        for (int64_t i = 0; i < np; i++) {
            heed_param p = heed_trainer_param(tr, i);
            for (int64_t j = 0; j < p.n_elems; j++) p.data[j] += (float)((sgn ? -2 : 1) * eps * p.grad[j]);
        }
        dir[sgn] = loss_at(ctx, tr, in, tg, B, T);
    }
    double fd = (dir[0] - dir[1]) / (2 * eps * gn);
    CHECK(fabs(fd - gn) <= 2e-2 * gn, "%s: directional derivative %.6g vs gradient norm %.6g", name, fd, gn);
    heed_trainer_free(tr);
}

/* Loss after `steps` AdamW steps from seed 5 on a fixed batch. */
static float train_steps(heed_ctx *ctx, heed_trainer *tr, int steps)
{
    enum { B = 3, T = 12 };
    int32_t in[B * T], tg[B * T];
    heed_optim o;
    heed_optim_init(&o);
    float l = 0;
    for (int s = 0; s < steps; s++) {
        batch(in, tg, B * T, heed_trainer_config(tr)->vocab, 100 + (uint64_t)heed_trainer_step_count(tr));
        CHECK_OK(ctx, heed_trainer_forward_backward(ctx, tr, &l, NULL, NULL, in, tg, B, T, 1.0f));
        CHECK_OK(ctx, heed_trainer_step(ctx, tr, &o, heed_lr_schedule(heed_trainer_step_count(tr), 2, 10, 1e-2f, 1e-3f),
                                        NULL));
    }
    return l;
}

static int same_params(const heed_trainer *a, const heed_trainer *b)
{
    for (int64_t i = 0; i < heed_trainer_n_params(a); i++) {
        heed_param p = heed_trainer_param(a, i), q = heed_trainer_param(b, i);
        if (p.n_elems != q.n_elems || memcmp(p.data, q.data, sizeof(float) * (size_t)p.n_elems)) return 0;
    }
    return 1;
}

int main(void)
{
    heed_ctx *ctx = NULL, *ctx1 = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 2));
    CHECK_OK(ctx1, heed_ctx_create(&ctx1, 1));
    if (!ctx || !ctx1) return t_done("test_train");

    /* every mixer variant: its whole backward against the loss */
    heed_train_config c = tiny();
    check_grad(ctx, "softmax", &c);
    c.tie_embeddings = 1;
    check_grad(ctx, "softmax tied", &c);
    c = tiny(), c.norm = HEED_NORM_SIGMOID;
    check_grad(ctx, "sigmoid", &c);
    c = tiny(), c.sink_logit = 1;
    check_grad(ctx, "sink logit", &c);
    c = tiny(), c.selective = 1;
    check_grad(ctx, "selective", &c);
    c = tiny(), c.window = 3;
    check_grad(ctx, "window", &c);
    c = tiny(), c.s2_block = 2, c.s2_local_blocks = 1, c.s2_vert_stride = 2;
    check_grad(ctx, "s2", &c);
    c = tiny(), c.moh_shared = 1, c.moh_top_k = 2, c.moh_balance = 0.05f;
    check_grad(ctx, "moh", &c);
    c = tiny(), c.mixer = HEED_MIXER_LINEAR, c.n_kv_heads = c.n_heads;
    check_grad(ctx, "linear", &c);
    c = tiny(), c.mixer = HEED_MIXER_GCONV, c.conv_kernel = 5;
    check_grad(ctx, "gconv", &c);

    /* model FLOPs: 6 per multiply-add of every weight matrix a token goes through (the embedding only as
     * the tied LM head), plus q.k and p.v over the causal keys of each layer */
    for (int tied = 0; tied < 2; tied++) {
        c = tiny(), c.tie_embeddings = tied;
        heed_trainer *f = NULL;
        CHECK_OK(ctx, heed_trainer_create(ctx, &f, &c, 1));
        if (!f) continue;
        double mm = 0;
        for (int64_t i = 0; i < heed_trainer_n_params(f); i++) {
            heed_param p = heed_trainer_param(f, i);
            if (p.n_dims == 2 && (tied || strcmp(p.name, "model.embed_tokens.weight"))) mm += (double)p.n_elems;
        }
        int64_t T = 10;
        double want = 6 * mm + 3 * 2 * (double)c.n_layers * 2 * (double)(c.n_heads * c.head_dim) * (double)(T + 1) / 2;
        double got = heed_trainer_flops_per_token(f, T);
        CHECK(fabs(got - want) <= 1e-9 * want, "flops per token %.6g, expected %.6g (tied %d)", got, want, tied);
        heed_trainer_free(f);
    }

    /* bad configurations are refused with a message */
    heed_trainer *bad = NULL;
    c = tiny(), c.n_heads = 3;
    CHECK(heed_trainer_create(ctx, &bad, &c, 1) == HEED_ERR_INVALID && !bad, "3 heads over 2 KV heads accepted");
    c = tiny(), c.sink_logit = 1, c.norm = HEED_NORM_SIGMOID;
    CHECK(heed_trainer_create(ctx, &bad, &c, 1) == HEED_ERR_INVALID, "sink logit with sigmoid accepted");

    /* two half micro-batches accumulate to the gradient of the whole batch (same counted targets) */
    c = tiny();
    heed_trainer *a = NULL, *b = NULL;
    CHECK_OK(ctx, heed_trainer_create(ctx, &a, &c, 9));
    CHECK_OK(ctx, heed_trainer_create(ctx, &b, &c, 9));
    if (a && b) {
        enum { B = 4, T = 10 };
        int32_t in[B * T], tg[B * T];
        batch(in, tg, B * T, c.vocab, 11);
        for (int i = 0; i < B * T; i++) tg[i] = tg[i] < 0 ? 1 : tg[i]; /* equal counts in both halves */
        float l;
        CHECK_OK(ctx, heed_trainer_forward_backward(ctx, a, &l, NULL, NULL, in, tg, B, T, 1.0f));
        CHECK_OK(ctx, heed_trainer_forward_backward(ctx, b, &l, NULL, NULL, in, tg, B / 2, T, 0.5f));
        CHECK_OK(ctx, heed_trainer_forward_backward(ctx, b, &l, NULL, NULL, in + B * T / 2, tg + B * T / 2, B / 2, T,
                                                    0.5f));
        double worst = 0;
        for (int64_t i = 0; i < heed_trainer_n_params(a); i++) {
            heed_param p = heed_trainer_param(a, i), q = heed_trainer_param(b, i);
            for (int64_t j = 0; j < p.n_elems; j++) {
                double e = fabs((double)p.grad[j] - q.grad[j]) / (fabs((double)p.grad[j]) + 1e-4);
                worst = e > worst ? e : worst;
            }
        }
        CHECK(worst < 1e-3, "accumulated gradient differs by %g (relative)", worst);
    }
    heed_trainer_free(a);
    heed_trainer_free(b);

    /* 1 and 2 threads: the same parameters after a few steps, bit for bit */
    a = b = NULL;
    CHECK_OK(ctx, heed_trainer_create(ctx, &a, &c, 4));
    CHECK_OK(ctx1, heed_trainer_create(ctx1, &b, &c, 4));
    if (a && b) {
        float la = train_steps(ctx, a, 3), lb = train_steps(ctx1, b, 3);
        CHECK(la == lb && same_params(a, b), "1 and 2 threads differ: loss %.9g vs %.9g", la, lb);
    }
    heed_trainer_free(b);
    b = NULL;

    /* save after 3 steps, load, 3 more steps == 6 steps straight */
    char dir[] = "/tmp/heed_test_train_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    if (a) {
        CHECK_OK(ctx, heed_trainer_save(ctx, a, dir, 0));
        CHECK_OK(ctx, heed_trainer_load(ctx, &b, dir));
        if (b) {
            CHECK(heed_trainer_step_count(b) == 3 && same_params(a, b), "a loaded checkpoint differs");
            float la = train_steps(ctx, a, 3), lb = train_steps(ctx, b, 3);
            CHECK(la == lb && same_params(a, b), "resumed training differs: %.9g vs %.9g", la, lb);
        }
        /* the runtime runs the checkpoint to the trainer's logits */
        CHECK_OK(ctx, heed_trainer_save(ctx, a, dir, 0));
        heed_model *m = NULL;
        CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
        if (m) {
            enum { T = 9 };
            int32_t in[T], tg[T];
            batch(in, tg, T, c.vocab, 77);
            float lt[T * 23], lr[T * 23], l;
            CHECK_OK(ctx, heed_trainer_forward_backward(ctx, a, &l, NULL, lt, in, tg, 1, T, 0.0f));
            CHECK_OK(ctx, heed_model_forward(ctx, m, lr, NULL, in, NULL, T, 0, 0));
            double worst = 0;
            for (int i = 0; i < T * 23; i++) worst = fmax(worst, fabs((double)lt[i] - lr[i]));
            CHECK(worst < 1e-4, "runtime logits differ from the trainer's by %g", worst);
        }
        heed_model_free(m);
        /* a variant checkpoint: the trainer reloads it, the runtime refuses it */
        heed_trainer *v = NULL, *v2 = NULL;
        c = tiny(), c.sink_logit = 1, c.selective = 1;
        CHECK_OK(ctx, heed_trainer_create(ctx, &v, &c, 2));
        if (v) {
            CHECK_OK(ctx, heed_trainer_save(ctx, v, dir, 0));
            CHECK_OK(ctx, heed_trainer_load(ctx, &v2, dir));
            CHECK(v2 && heed_trainer_config(v2)->sink_logit && heed_trainer_config(v2)->selective && same_params(v, v2),
                  "variant checkpoint did not round-trip");
            m = NULL;
            CHECK(heed_model_load(ctx, &m, dir) == HEED_ERR_UNSUPPORTED && !m, "the runtime loaded a variant");
        }
        heed_trainer_free(v);
        heed_trainer_free(v2);
    }
    heed_trainer_free(a);
    heed_trainer_free(b);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    heed_ctx_free(ctx);
    heed_ctx_free(ctx1);
    return t_done("test_train");
}
