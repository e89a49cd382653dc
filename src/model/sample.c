/* sample.c — choosing the next token from a row of logits, as transformers' generate does: repetition
 * penalty, then greedy argmax, or temperature -> top-k -> top-p -> min-p and one draw from a seeded,
 * deterministic generator (splitmix64), so a seed reproduces a generation on every machine. */
#include "core/core.h"
#include "heed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void heed_sample_params_init(heed_sample_params *p, const heed_gen_config *gen)
{
    *p = (heed_sample_params){.greedy = 1, .temperature = 1.0, .top_k = 50, .top_p = 1.0, .min_p = 0.0,
                              .repeat_penalty = 1.0};
    if (gen) {
        p->greedy = !gen->do_sample;
        p->temperature = gen->temperature;
        p->top_k = gen->top_k;
        p->top_p = gen->top_p;
    }
}

uint64_t heed_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct {
    float logit;
    int32_t id;
} cand_t;

/* Largest logit first; ties keep the smaller id first (as a stable sort would). */
static int by_logit_desc(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The k-th largest of v [n] (1 <= k <= n), by quickselect; v is reordered. */
static float kth_largest(float *v, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return v[want];
    }
    return v[lo];
}

heed_status heed_sample(heed_ctx *ctx, int32_t *out, float *logits, int64_t vocab, const int32_t *prev,
                        int64_t n_prev, const heed_sample_params *p, uint64_t *rng)
{
    if (!out || !logits || vocab < 1 || vocab > INT32_MAX || !p || !rng || n_prev < 0 || (n_prev && !prev))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_sample: out, logits [vocab >= 1], p and rng are required "
                                                "(prev may be NULL only when n_prev is 0)");
    if (!(p->repeat_penalty > 0))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_sample: repeat_penalty %g, expected > 0", p->repeat_penalty);
    if (!p->greedy && (!(p->temperature > 0) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) ||
                       !(p->min_p >= 0 && p->min_p <= 1)))
        return heed_fail(ctx, HEED_ERR_INVALID,
                         "heed_sample: temperature %g (expected > 0), top_k %lld (>= 0), top_p %g (in (0, 1]), "
                         "min_p %g (in [0, 1])",
                         p->temperature, (long long)p->top_k, p->top_p, p->min_p);
    for (int64_t i = 0; i < n_prev; i++)
        if (prev[i] < 0 || prev[i] >= vocab)
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_sample: prev[%lld] = %d outside the vocabulary [0, %lld)",
                             (long long)i, prev[i], (long long)vocab);
    if (p->repeat_penalty != 1.0) {
        /* once per distinct id, as transformers' gather/scatter: a repeated id is not penalised twice */
        uint8_t *seen = calloc((size_t)vocab, 1);
        if (!seen) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_sample: %lld bytes", (long long)vocab);
        float r = (float)p->repeat_penalty;
        for (int64_t i = 0; i < n_prev; i++) {
            float *x = &logits[prev[i]];
            if (seen[prev[i]]++) continue;
            *x = *x < 0 ? *x * r : *x / r;
        }
        free(seen);
    }
    if (p->greedy) {
        int64_t best = 0;
        for (int64_t i = 1; i < vocab; i++)
            if (logits[i] > logits[best] || (isnan(logits[best]) && !isnan(logits[i]))) best = i; /* NaN never wins */
        *out = (int32_t)best;
        return HEED_OK;
    }
    float t = (float)p->temperature; /* divided, as transformers' f32 scores / temperature */
    for (int64_t i = 0; i < vocab; i++) logits[i] /= t;
    /* top-k as transformers: keep every logit >= the k-th largest (ties at the boundary stay) */
    float floor_k = -INFINITY;
    if (p->top_k > 0 && p->top_k < vocab) {
        float *copy = malloc(sizeof(float) * (size_t)vocab);
        if (!copy) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_sample: %lld floats", (long long)vocab);
        memcpy(copy, logits, sizeof(float) * (size_t)vocab);
        floor_k = kth_largest(copy, vocab, p->top_k);
        free(copy);
    }
    cand_t *cand = malloc(sizeof(cand_t) * (size_t)vocab);
    double *prob = malloc(sizeof(double) * (size_t)vocab);
    if (!cand || !prob) {
        free(cand);
        free(prob);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_sample: %lld candidates", (long long)vocab);
    }
    int64_t n = 0;
    for (int64_t i = 0; i < vocab; i++)
        if (logits[i] >= floor_k && logits[i] > -INFINITY) cand[n++] = (cand_t){logits[i], (int32_t)i};
    heed_status st = HEED_OK;
    if (n == 0) {
        st = heed_fail(ctx, HEED_ERR_INVALID, "heed_sample: every logit is -inf or NaN");
        goto done;
    }
    qsort(cand, (size_t)n, sizeof *cand, by_logit_desc);
    double sum = 0, mx = cand[0].logit;
    for (int64_t i = 0; i < n; i++) sum += prob[i] = exp((double)cand[i].logit - mx);
    /* top-p as transformers: drop a token when the mass of the tokens ranked above it is already >= top_p
     * (the most likely token always stays) */
    if (p->top_p < 1) {
        double above = 0;
        int64_t keep = 0;
        while (keep < n && above / sum < p->top_p) above += prob[keep++];
        n = keep;
    }
    /* min-p: drop tokens less likely than min_p times the most likely one (scale-free: no renormalising) */
    if (p->min_p > 0) {
        int64_t keep = 1;
        while (keep < n && prob[keep] >= p->min_p * prob[0]) keep++;
        n = keep;
    }
    sum = 0;
    for (int64_t i = 0; i < n; i++) sum += prob[i];
    double u = (double)(heed_rng_next(rng) >> 11) * 0x1p-53 * sum, acc = 0;
    int64_t pick = n - 1;
    for (int64_t i = 0; i < n; i++)
        if ((acc += prob[i]) > u) {
            pick = i;
            break;
        }
    *out = cand[pick].id;
done:
    free(cand);
    free(prob);
    return st;
}

double heed_logprob(const float *logits, int64_t vocab, int32_t id)
{
    double mx = logits[0], sum = 0.0;
    for (int64_t v = 1; v < vocab; v++) mx = logits[v] > mx ? logits[v] : mx;
    for (int64_t v = 0; v < vocab; v++) sum += exp((double)logits[v] - mx);
    return (double)logits[id] - mx - log(sum);
}
