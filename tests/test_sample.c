/* test_sample.c — heed_sample on hand-made logits: greedy and the repetition penalty exactly, the sets
 * top-k / top-p / min-p keep exactly, and sampled frequencies against the expected distribution over
 * many draws (tolerance 0.01 absolute per token: > 6 standard deviations at 200000 draws). */
#include "harness.h"
#include "heed.h"

#include <string.h>

#define V 6
#define DRAWS 200000

/* Probabilities p [V] as logits (log p), so the expected distributions are simple to state. */
static const double P[V] = {0.40, 0.25, 0.15, 0.10, 0.06, 0.04};

static void set_logits(float *l)
{
    for (int i = 0; i < V; i++) l[i] = (float)log(P[i]);
}

/* Draws DRAWS tokens with params p, seed 1; count [V] out. */
static void draw(heed_ctx *ctx, int64_t *count, const heed_sample_params *p)
{
    uint64_t rng = 1;
    memset(count, 0, sizeof(int64_t) * V);
    for (int i = 0; i < DRAWS; i++) {
        float l[V];
        set_logits(l);
        int32_t t = -1;
        heed_status s = heed_sample(ctx, &t, l, V, NULL, 0, p, &rng);
        if (s != HEED_OK || t < 0 || t >= V) {
            CHECK(0, "draw %d: status %d token %d: %s", i, s, t, heed_ctx_error(ctx));
            return;
        }
        count[t]++;
    }
}

/* The frequencies of count [V] equal q [V] (renormalised over its nonzero entries) within 0.01, and the
 * tokens with q = 0 are never drawn. */
static void check_dist(const int64_t *count, const double *q, const char *what)
{
    double s = 0;
    for (int i = 0; i < V; i++) s += q[i];
    for (int i = 0; i < V; i++) {
        double f = (double)count[i] / DRAWS, e = q[i] / s;
        if (e == 0) CHECK(count[i] == 0, "%s: token %d drawn %lld times, expected never", what, i, (long long)count[i]);
        else CHECK(fabs(f - e) < 0.01, "%s: token %d frequency %.4f, expected %.4f", what, i, f, e);
    }
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 1));
    heed_sample_params p;
    heed_sample_params_init(&p, NULL);
    CHECK(p.greedy == 1 && p.top_k == 50 && p.top_p == 1 && p.temperature == 1 && p.repeat_penalty == 1,
          "defaults without a generation config");
    uint64_t rng = 7;
    int32_t t = -1;

    /* greedy: the argmax, first index on ties */
    float l[V] = {1.0f, 2.0f, -0.5f, 1.9f, 2.0f, -3.0f};
    CHECK_OK(ctx, heed_sample(ctx, &t, l, V, NULL, 0, &p, &rng));
    CHECK(t == 1, "greedy picked %d, expected 1", t);
    CHECK(rng == 7, "greedy advanced the generator");
    float nan_first[3] = {NAN, -1.0f, 0.5f};
    CHECK_OK(ctx, heed_sample(ctx, &t, nan_first, 3, NULL, 0, &p, &rng));
    CHECK(t == 2, "greedy over {NaN, -1, 0.5} picked %d, expected 2", t);

    /* repetition penalty as transformers: positive / r, negative * r, once per distinct id */
    float r[V] = {1.0f, 2.0f, -0.5f, 1.9f, 1.5f, -3.0f};
    int32_t prev[] = {1, 2, 1, 1, 5};
    p.repeat_penalty = 1.25;
    CHECK_OK(ctx, heed_sample(ctx, &t, r, V, prev, 5, &p, &rng));
    CHECK(t == 3, "greedy with penalty picked %d, expected 3", t);
    CHECK(r[0] == 1.0f && r[1] == 2.0f / 1.25f && r[2] == -0.5f * 1.25f && r[3] == 1.9f && r[4] == 1.5f &&
              r[5] == -3.0f * 1.25f,
          "penalised logits %g %g %g %g %g %g", r[0], r[1], r[2], r[3], r[4], r[5]);
    int32_t bad_prev = V;
    CHECK(heed_sample(ctx, &t, r, V, &bad_prev, 1, &p, &rng) == HEED_ERR_INVALID, "prev outside the vocabulary");

    /* sampling: plain softmax, then each filter alone and together */
    int64_t count[V];
    p = (heed_sample_params){.greedy = 0, .temperature = 1, .top_k = 0, .top_p = 1, .min_p = 0, .repeat_penalty = 1};
    draw(ctx, count, &p);
    check_dist(count, P, "softmax");

    p.temperature = 0.5; /* p^(1/T) = p^2 */
    double q[V];
    for (int i = 0; i < V; i++) q[i] = P[i] * P[i];
    draw(ctx, count, &p);
    check_dist(count, q, "temperature 0.5");

    p.temperature = 1;
    p.top_k = 3;
    double qk[V] = {0.40, 0.25, 0.15, 0, 0, 0};
    draw(ctx, count, &p);
    check_dist(count, qk, "top_k 3");

    p.top_k = 0;
    p.top_p = 0.7; /* mass above: 0, 0.40, 0.65, 0.80 -> keep 3 */
    draw(ctx, count, &p);
    check_dist(count, qk, "top_p 0.7");
    p.top_p = 0.6; /* 0, 0.40, 0.65 -> keep 2 */
    double qp[V] = {0.40, 0.25, 0, 0, 0, 0};
    draw(ctx, count, &p);
    check_dist(count, qp, "top_p 0.6");

    p.top_p = 1;
    p.min_p = 0.3; /* keep p >= 0.12: 3 tokens */
    draw(ctx, count, &p);
    check_dist(count, qk, "min_p 0.3");
    p.min_p = 0.5; /* keep p >= 0.2: 2 tokens */
    draw(ctx, count, &p);
    check_dist(count, qp, "min_p 0.5");

    /* together, in transformers' order: temperature 0.5 (p^2 ∝ .16 .0625 .0225 .01 ...), top_k 4, then
     * top_p 0.9 over the renormalised p^2 (mass above the third: (.16+.0625)/.255 = 0.873 -> keep 3), then
     * min_p 0.1 (keep >= 0.016: drops none of the 3) */
    p = (heed_sample_params){.greedy = 0, .temperature = 0.5, .top_k = 4, .top_p = 0.9, .min_p = 0.1,
                             .repeat_penalty = 1};
    double qa[V] = {0.16, 0.0625, 0.0225, 0, 0, 0};
    draw(ctx, count, &p);
    check_dist(count, qa, "temperature + top_k + top_p + min_p");

    /* top-k keeps ties at the boundary, as transformers */
    float tie[V] = {3, 1, 2, 2, 0, 2};
    p = (heed_sample_params){.greedy = 0, .temperature = 1, .top_k = 2, .top_p = 1, .min_p = 0, .repeat_penalty = 1};
    int seen[V] = {0};
    for (int i = 0; i < 2000; i++) {
        float c[V];
        memcpy(c, tie, sizeof c);
        CHECK_OK(ctx, heed_sample(ctx, &t, c, V, NULL, 0, &p, &rng));
        seen[t] = 1;
    }
    CHECK(seen[0] && !seen[1] && seen[2] && seen[3] && !seen[4] && seen[5], "top_k 2 with ties: kept set");

    /* a seed reproduces the draws; another seed gives other draws */
    p = (heed_sample_params){.greedy = 0, .temperature = 1, .top_k = 0, .top_p = 1, .min_p = 0, .repeat_penalty = 1};
    int32_t a[64], b[64], c[64];
    uint64_t ra = 42, rb = 42, rc = 43;
    for (int i = 0; i < 64; i++) {
        float x[V];
        set_logits(x);
        CHECK_OK(ctx, heed_sample(ctx, &a[i], x, V, NULL, 0, &p, &ra));
        set_logits(x);
        CHECK_OK(ctx, heed_sample(ctx, &b[i], x, V, NULL, 0, &p, &rb));
        set_logits(x);
        CHECK_OK(ctx, heed_sample(ctx, &c[i], x, V, NULL, 0, &p, &rc));
    }
    CHECK(!memcmp(a, b, sizeof a), "the same seed gave different draws");
    CHECK(memcmp(a, c, sizeof a) != 0, "seeds 42 and 43 gave the same 64 draws");

    /* wrong parameters are errors */
    float x[V];
    set_logits(x);
    p.temperature = 0;
    CHECK(heed_sample(ctx, &t, x, V, NULL, 0, &p, &rng) == HEED_ERR_INVALID, "temperature 0 when sampling");
    p.temperature = 1;
    p.top_p = 0;
    CHECK(heed_sample(ctx, &t, x, V, NULL, 0, &p, &rng) == HEED_ERR_INVALID, "top_p 0");
    p.top_p = 1;
    float inf[2] = {-INFINITY, -INFINITY};
    CHECK(heed_sample(ctx, &t, inf, 2, NULL, 0, &p, &rng) == HEED_ERR_INVALID, "every logit -inf");

    /* heed_logprob: log softmax at an id, against a direct f64 computation; exp sums to 1; logits of
     * magnitude 1e4 neither overflow nor lose the small differences */
    float big[5] = {1e4f, 1e4f - 1.0f, 1e4f - 3.0f, -1e4f, 1e4f - 0.5f};
    double z = 0.0, total = 0.0;
    for (int i = 0; i < 5; i++) z += exp((double)big[i] - 1e4);
    for (int i = 0; i < 5; i++) {
        const double lp = heed_logprob(big, 5, i), want = (double)big[i] - 1e4 - log(z);
        CHECK(fabs(lp - want) < 1e-12, "logprob of id %d: %.15g, expected %.15g", i, lp, want);
        total += exp(lp);
    }
    CHECK(fabs(total - 1.0) < 1e-12, "probabilities sum to %.15g", total);
    const float one[1] = {-7.5f};
    CHECK(heed_logprob(one, 1, 0) == 0.0, "a single logit has probability 1");

    heed_ctx_free(ctx);
    return t_done("test_sample");
}
