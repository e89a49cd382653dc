/* test_intervene.c — attention-probability interventions (heed_model_set_interventions) on the tiny
 * llama3-old checkpoint of tests/data/models: identity edits leave the logits as they were, each edit's
 * head output equals a reference computed here from the probe's captured probabilities and the cached
 * value vectors, a KV-cache decode step equals the full-sequence forward, and bad descriptors fail. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T 12

static heed_model *load(heed_ctx *ctx)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/llama3-old", data_dir());
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    return m;
}

static heed_intervention edit(heed_edit kind, int64_t L, int64_t h, double amount, int64_t a, int64_t b)
{
    heed_intervention iv;
    heed_intervention_init(&iv, kind, L, h);
    iv.amount = amount;
    iv.a = a, iv.b = b;
    return iv;
}

/* Logits [T, vocab] of ids with the interventions list [n] (n = 0: none). */
static void forward(heed_ctx *ctx, heed_model *m, float *logits, const int32_t *ids, const heed_intervention *list,
                    int64_t n)
{
    CHECK_OK(ctx, heed_model_set_interventions(ctx, m, list, n));
    CHECK_OK(ctx, heed_model_forward(ctx, m, logits, NULL, ids, NULL, T, 0, 0));
}

/* The reference edit of one row p [T] (causal: keys > t are 0) in double, as include/heed.h defines it.
 * s [T]: ACT's mean received attention per key. */
static void ref_edit(double *p, const heed_intervention *iv, const double *s, int64_t t)
{
    double x = iv->amount, mass = 0, mx = 0, sum = 0;
    for (int64_t j = iv->a; j < iv->b && j <= t; j++) mass += p[j];
    switch (iv->kind) {
    case HEED_EDIT_BOS:
        for (int64_t j = 0; j < T; j++) p[j] = j == 0;
        break;
    case HEED_EDIT_ACT: {
        if (t == 0) break;
        double freed = 0, rest = 0;
        for (int64_t j = 0; j <= t; j++) {
            if (j >= 1 && s[j] > iv->threshold) freed += (1 - x) * p[j];
            else rest += p[j];
        }
        for (int64_t j = 0; j <= t && rest > 0; j++)
            p[j] = j >= 1 && s[j] > iv->threshold ? x * p[j] : p[j] * (1 + freed / rest);
        break;
    }
    case HEED_EDIT_VAR:
        if (mass > 0) {
            double move = x * p[0];
            p[0] -= move;
            for (int64_t j = iv->a; j < iv->b && j <= t; j++) p[j] += move * p[j] / mass;
        }
        break;
    case HEED_EDIT_STEER:
        for (int64_t j = 0; j <= t && mass > 0; j++) p[j] = (1 - x) * p[j] + (j >= iv->a && j < iv->b ? x * p[j] / mass : 0);
        break;
    case HEED_EDIT_INHIBIT:
        for (int64_t j = 0; j <= t; j++) mx = fmax(mx, p[j]);
        for (int64_t j = 0; j <= t; j++) p[j] = p[j] < x * mx ? 0 : p[j], sum += p[j];
        for (int64_t j = 0; j <= t; j++) p[j] /= sum;
        break;
    case HEED_EDIT_MEAN: /* an output edit: check_edit averages the outputs */
        break;
    }
}

/* With iv on (L, h): the head's output rows (probe head_out) against sum_j p'_j v_j, p' the reference edit of
 * the captured original probabilities, v the cached values (MEAN: the mean of the unedited rows 0 .. t); and the output must differ from the unedited one
 * by at least min_change (so the edit did something). */
static void check_edit(heed_ctx *ctx, heed_model *m, const int32_t *ids, heed_intervention iv, double min_change,
                       const char *what)
{
    const heed_config *c = heed_model_config(m);
    int64_t H = c->n_heads, D = c->head_dim, NL = c->n_layers, slot = iv.layer * H + iv.head;
    uint8_t *sel = calloc((size_t)(NL * H), 1);
    float **probs = calloc((size_t)(NL * H), sizeof *probs);
    float *P = malloc(sizeof(float) * T * T), *out = malloc(sizeof(float) * (size_t)(NL * H * T * D));
    float *out0 = malloc(sizeof(float) * (size_t)(NL * H * T * D)), *v = malloc(sizeof(float) * (size_t)(T * D));
    sel[slot] = 1, probs[slot] = P;
    heed_probe pr = {0};
    pr.select = sel, pr.probs = probs, pr.head_out = out0;
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, &pr));
    forward(ctx, m, NULL, ids, NULL, 0);
    pr.head_out = out;
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, &pr));
    forward(ctx, m, NULL, ids, &iv, 1);
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, NULL));
    CHECK_OK(ctx, heed_model_cached_values(ctx, m, v, iv.layer, iv.head, T));
    double s[T] = {0}, err = 0, change = 0;
    for (int64_t j = 0; j < T; j++) {
        for (int64_t i = j; i < T; i++) s[j] += P[i * T + j];
        s[j] /= (double)(T - j);
    }
    for (int64_t t = 0; t < T; t++) {
        double p[T];
        for (int64_t j = 0; j < T; j++) p[j] = P[t * T + j];
        ref_edit(p, &iv, s, t);
        const float *o = out + (slot * T + t) * D, *o0 = out0 + (slot * T + t) * D;
        for (int64_t i = 0; i < D; i++) {
            double r = 0;
            for (int64_t j = 0; j < T; j++)
                r += iv.kind != HEED_EDIT_MEAN ? p[j] * v[j * D + i] : j <= t ? out0[(slot * T + j) * D + i] / (t + 1.0) : 0;
            err = fmax(err, fabs(o[i] - r));
            change = fmax(change, fabs(o[i] - o0[i]));
        }
    }
    CHECK(err <= 1e-5, "%s: head output vs reference max abs %.3g", what, err);
    CHECK(change >= min_change, "%s: the edit moved the head output by only %.3g", what, change);
    printf("%-8s head output vs reference %.2e (moved by %.2e)\n", what, err, change);
    free(sel), free(probs), free(P), free(out), free(out0), free(v);
}

/* Logits of the last token: a full forward with iv against a prefill of T - 1 tokens and one cached step
 * (ACT only on the last layer: below it the prefill's rows are edited with the prefill's sums). */
static void check_decode(heed_ctx *ctx, heed_model *m, const int32_t *ids, heed_intervention iv, const char *what)
{
    int64_t V = heed_model_config(m)->vocab;
    float *full = malloc(sizeof(float) * (size_t)(T * V)), *step = malloc(sizeof(float) * (size_t)V);
    forward(ctx, m, full, ids, &iv, 1);
    CHECK_OK(ctx, heed_model_set_interventions(ctx, m, &iv, 1));
    CHECK_OK(ctx, heed_model_forward(ctx, m, NULL, NULL, ids, NULL, T - 1, 0, 0));
    CHECK_OK(ctx, heed_model_forward(ctx, m, step, NULL, ids + T - 1, NULL, 1, T - 1, 0));
    double e = t_max_abs(full + (T - 1) * V, step, V);
    CHECK(e <= 1e-5, "%s: decode step vs full forward max abs %.3g", what, e);
    printf("%-8s decode step vs full forward %.2e\n", what, e);
    free(full), free(step);
}

static void check_errors(heed_ctx *ctx, heed_model *m, const int32_t *ids)
{
    heed_intervention bad[] = {edit(HEED_EDIT_BOS, 2, 0, 0, 0, 0), edit(HEED_EDIT_STEER, 0, 4, 0.5, 1, 3),
                               edit(HEED_EDIT_ACT, 0, 0, 1.5, 0, 0), edit(HEED_EDIT_VAR, 0, 0, 0.5, 0, 3),
                               edit(HEED_EDIT_STEER, 0, 0, 0.5, 3, 3), edit(HEED_EDIT_INHIBIT, 0, 0, NAN, 0, 0)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(heed_model_set_interventions(ctx, m, &bad[i], 1) == HEED_ERR_INVALID, "bad intervention %zu accepted", i);
    heed_intervention twice[] = {edit(HEED_EDIT_BOS, 1, 1, 0, 0, 0), edit(HEED_EDIT_INHIBIT, 1, 1, 0.1, 0, 0)};
    CHECK(heed_model_set_interventions(ctx, m, twice, 2) == HEED_ERR_INVALID, "two edits of one head accepted");
    CHECK(strstr(heed_ctx_error(ctx), "entry 1") != NULL, "error does not name the entry: %s", heed_ctx_error(ctx));
    /* ACT sums the rows so far: a forward that skips ahead of them is refused */
    heed_intervention act = edit(HEED_EDIT_ACT, 0, 0, 0.4, 0, 0);
    CHECK_OK(ctx, heed_model_set_interventions(ctx, m, NULL, 0));
    CHECK_OK(ctx, heed_model_forward(ctx, m, NULL, NULL, ids, NULL, 4, 0, 0));
    CHECK_OK(ctx, heed_model_set_interventions(ctx, m, &act, 1));
    CHECK(heed_model_forward(ctx, m, NULL, NULL, ids + 4, NULL, 1, 4, 0) == HEED_ERR_INVALID,
          "ACT forward continuing sums it never saw accepted");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 2) != HEED_OK) return 1;
    heed_model *m = load(ctx);
    if (!m) return t_done("test_intervene");
    const heed_config *c = heed_model_config(m);
    int64_t V = c->vocab;
    int32_t ids[T];
    t_rng rng = {7};
    ids[0] = 1;
    for (int i = 1; i < T; i++) ids[i] = (int32_t)t_int(&rng, 3, V - 1);
    float *base = malloc(sizeof(float) * (size_t)(T * V)), *lg = malloc(sizeof(float) * (size_t)(T * V));
    forward(ctx, m, base, ids, NULL, 0);
    double big = 0;
    for (int64_t i = 0; i < T * V; i++) big = fmax(big, fabs(base[i]));

    /* identity edits (beta 1, frac 0, alpha 0, tau 0) on every head of both layers */
    heed_edit kinds[] = {HEED_EDIT_ACT, HEED_EDIT_VAR, HEED_EDIT_STEER, HEED_EDIT_INHIBIT};
    double identity[] = {1.0, 0.0, 0.0, 0.0};
    const char *names[] = {"act", "var", "steer", "inhibit"};
    for (int k = 0; k < 4; k++) {
        heed_intervention list[2 * 4];
        for (int64_t i = 0; i < c->n_layers * c->n_heads; i++)
            list[i] = edit(kinds[k], i / c->n_heads, i % c->n_heads, identity[k], 2, 6);
        forward(ctx, m, lg, ids, list, c->n_layers * c->n_heads);
        double e = t_max_abs(base, lg, T * V);
        /* the recomputed rows round differently from the kernel's: 1e-6 relative to the largest logit */
        CHECK(e <= 1e-6 * big, "identity %s: logits max abs %.3g from no intervention", names[k], e);
        printf("identity %-7s logits vs none %.2e (largest |logit| %.2e)\n", names[k], e, big);
    }
    forward(ctx, m, lg, ids, NULL, 0);
    CHECK(memcmp(base, lg, sizeof(float) * (size_t)(T * V)) == 0, "removing the interventions changed the logits");

    /* each edit against the reference; BOS against v_0 (the reference sets p = e_0) */
    heed_intervention act = edit(HEED_EDIT_ACT, 1, 2, 0.4, 0, 0);
    act.threshold = 0.05;
    heed_intervention cases[] = {edit(HEED_EDIT_BOS, 0, 1, 0, 0, 0), act, edit(HEED_EDIT_VAR, 1, 3, 0.5, 3, 7),
                                 edit(HEED_EDIT_STEER, 0, 0, 0.7, 4, 9), edit(HEED_EDIT_INHIBIT, 1, 0, 0.2, 0, 0),
                                 edit(HEED_EDIT_MEAN, 0, 3, 0, 0, 0)};
    const char *cn[] = {"bos", "act", "var", "steer", "inhibit", "mean"};
    for (int k = 0; k < 6; k++) check_edit(ctx, m, ids, cases[k], 1e-3, cn[k]);
    for (int k = 0; k < 6; k++) check_decode(ctx, m, ids, cases[k], cn[k]);
    forward(ctx, m, lg, ids, cases, 6);
    CHECK(t_max_abs(base, lg, T * V) > 1e-3, "six edits together left the logits unchanged");
    check_errors(ctx, m, ids);
    free(base), free(lg);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return t_done("test_intervene");
}
