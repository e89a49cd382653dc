/* tasks.c — the synthetic tasks the papers train on (MQAR, Bigram-Backcopy, bursty in-context
 * classification, repeated random tokens), as batch generators of inputs and loss-masked targets.
 * The definitions and the papers' defaults are documented in heed.h at heed_task_kind. */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>

/* BACKCOPY's dense transition table grows as V^2: refuse vocabularies beyond this (32 MiB). */
#define BB_MAX_VOCAB 2048

struct heed_task {
    heed_task_params p;
    int64_t vocab;
    /* BACKCOPY: for ordinary token a, row a - K - 1 of [V - K - 1, V - 1] holds the cumulative transition
     * weights to ids 1 .. V - 1. */
    double *cum;
};

void heed_task_params_init(heed_task_params *p, heed_task_kind kind)
{
    *p = (heed_task_params){
        .kind = kind,
        .vocab = kind == HEED_TASK_BACKCOPY ? 64 : 8192,
        .mqar_pairs = 8,
        .mqar_alpha = 0.01,
        .bb_triggers = 3,
        .bb_sigma = 2.0,
        .bb_table_seed = 1,
        .bb_copies_only = 0,
        .bursty_classes = 128,
        .bursty_exemplars = 4,
        .bursty_labels = 32,
        .bursty_pairs = 8,
        .bursty_burstiness = 4,
        .bursty_p = 1.0,
    };
}

/* A uniform double in [0, 1). */
static double rng_uniform(uint64_t *rng) { return (double)(heed_rng_next(rng) >> 11) * 0x1p-53; }

/* Draws the BACKCOPY transition table from the table seed (Box-Muller normals). */
static void bb_table(heed_task *t)
{
    int64_t V = t->p.vocab, K = t->p.bb_triggers;
    uint64_t rng = t->p.bb_table_seed;
    for (int64_t a = 0; a < V - K - 1; a++) {
        double *row = t->cum + a * (V - 1), acc = 0;
        for (int64_t j = 0; j < V - 1; j++) {
            double z = sqrt(-2.0 * log(1.0 - rng_uniform(&rng))) * cos(6.283185307179586 * rng_uniform(&rng));
            row[j] = acc += exp(t->p.bb_sigma * z);
        }
    }
}

static heed_status check_params(heed_ctx *ctx, const heed_task_params *p, int64_t *vocab)
{
    switch (p->kind) {
    case HEED_TASK_MQAR:
        if (p->mqar_pairs < 1) return heed_fail(ctx, HEED_ERR_INVALID, "mqar_pairs %lld, expected >= 1", (long long)p->mqar_pairs);
        if (p->vocab > INT32_MAX || p->vocab / 2 - 1 < p->mqar_pairs || p->vocab - p->vocab / 2 < p->mqar_pairs)
            return heed_fail(ctx, HEED_ERR_INVALID, "vocab %lld: MQAR needs %lld distinct keys in [1, V/2) and values in [V/2, V), and V < 2^31",
                             (long long)p->vocab, (long long)p->mqar_pairs);
        if (!isfinite(p->mqar_alpha)) return heed_fail(ctx, HEED_ERR_INVALID, "mqar_alpha %g, expected finite", p->mqar_alpha);
        *vocab = p->vocab;
        return HEED_OK;
    case HEED_TASK_BACKCOPY:
        if (p->bb_triggers < 1) return heed_fail(ctx, HEED_ERR_INVALID, "bb_triggers %lld, expected >= 1", (long long)p->bb_triggers);
        if (p->vocab < p->bb_triggers + 2 || p->vocab > BB_MAX_VOCAB)
            return heed_fail(ctx, HEED_ERR_INVALID, "vocab %lld: BACKCOPY needs <s>, %lld triggers and an ordinary token, and at most %d ids",
                             (long long)p->vocab, (long long)p->bb_triggers, BB_MAX_VOCAB);
        if (!(p->bb_sigma >= 0 && p->bb_sigma <= 20))
            return heed_fail(ctx, HEED_ERR_INVALID, "bb_sigma %g, expected in [0, 20]", p->bb_sigma);
        *vocab = p->vocab;
        return HEED_OK;
    case HEED_TASK_BURSTY: {
        const int64_t K = p->bursty_classes, E = p->bursty_exemplars, L = p->bursty_labels, N = p->bursty_pairs,
                      B = p->bursty_burstiness, big = INT32_MAX;
        if (K < 1 || K > big) return heed_fail(ctx, HEED_ERR_INVALID, "bursty_classes %lld, expected >= 1", (long long)K);
        if (E < 1 || E > big / K) return heed_fail(ctx, HEED_ERR_INVALID, "bursty_exemplars %lld, expected >= 1 (and K E < 2^31)", (long long)E);
        if (L < 1 || L > big - K * E) return heed_fail(ctx, HEED_ERR_INVALID, "bursty_labels %lld, expected >= 1 (and K E + L < 2^31)", (long long)L);
        if (N < 1 || N > big / 4) return heed_fail(ctx, HEED_ERR_INVALID, "bursty_pairs %lld, expected >= 1", (long long)N);
        if (B < 1 || N % B != 0 || N / B > K)
            return heed_fail(ctx, HEED_ERR_INVALID, "bursty_burstiness %lld: must divide bursty_pairs %lld into at most bursty_classes %lld classes",
                             (long long)B, (long long)N, (long long)K);
        if (!(p->bursty_p >= 0 && p->bursty_p <= 1))
            return heed_fail(ctx, HEED_ERR_INVALID, "bursty_p %g, expected in [0, 1]", p->bursty_p);
        *vocab = K * E + L;
        return HEED_OK;
    }
    case HEED_TASK_REPEAT:
        if (p->vocab < 1 || p->vocab > INT32_MAX)
            return heed_fail(ctx, HEED_ERR_INVALID, "vocab %lld, expected in [1, 2^31)", (long long)p->vocab);
        *vocab = p->vocab;
        return HEED_OK;
    }
    return heed_fail(ctx, HEED_ERR_INVALID, "kind %d is not a heed_task_kind", (int)p->kind);
}

heed_status heed_task_create(heed_ctx *ctx, heed_task **out, const heed_task_params *p)
{
    *out = NULL;
    if (!p) return heed_fail(ctx, HEED_ERR_INVALID, "heed_task_create: NULL params");
    int64_t vocab = 0;
    heed_status s = check_params(ctx, p, &vocab);
    if (s != HEED_OK) return s;
    heed_task *t = calloc(1, sizeof *t);
    if (!t) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_task_create: out of memory");
    t->p = *p;
    t->vocab = vocab;
    if (p->kind == HEED_TASK_BACKCOPY) {
        t->cum = malloc(sizeof(double) * (size_t)(vocab - p->bb_triggers - 1) * (size_t)(vocab - 1));
        if (!t->cum) {
            free(t);
            return heed_fail(ctx, HEED_ERR_NOMEM, "heed_task_create: no memory for the %lld x %lld transition table",
                             (long long)vocab, (long long)vocab);
        }
        bb_table(t);
    }
    *out = t;
    return HEED_OK;
}

void heed_task_free(heed_task *task)
{
    if (!task) return;
    free(task->cum);
    free(task);
}

int64_t heed_task_vocab(const heed_task *task) { return task->vocab; }

/* n distinct uniform draws of [lo, hi) into out [n], in random order (rejection; n <= hi - lo). */
static void draw_distinct(int32_t *out, int64_t n, int64_t lo, int64_t hi, uint64_t *rng)
{
    for (int64_t i = 0; i < n; i++) {
        int dup;
        do {
            out[i] = (int32_t)(lo + (int64_t)heed_rng_below(rng, (uint64_t)(hi - lo)));
            dup = 0;
            for (int64_t j = 0; j < i && !dup; j++) dup = out[j] == out[i];
        } while (dup);
    }
}

/* One MQAR row. w [space] is scratch for the gap weights, kv [2N] for keys then values. */
static void mqar_row(int32_t *in, int32_t *tg, const heed_task_params *p, int64_t T, double *w, int32_t *kv,
                     uint64_t *rng)
{
    const int64_t V = p->vocab, N = p->mqar_pairs, space = (T - 2 * N) / 2;
    int32_t *keys = kv, *vals = kv + N;
    draw_distinct(keys, N, 1, V / 2, rng);
    draw_distinct(vals, N, V / 2, V, rng);
    for (int64_t t = 0; t < T; t++) {
        in[t] = (int32_t)heed_rng_below(rng, (uint64_t)V);
        tg[t] = -1;
    }
    for (int64_t i = 0; i < N; i++) {
        in[2 * i] = keys[i];
        in[2 * i + 1] = vals[i];
    }
    /* Gaps without replacement, each drawn with probability proportional to the remaining weights. */
    double total = 0;
    for (int64_t g = 0; g < space; g++) total += w[g] = pow((double)(g + 1), p->mqar_alpha - 1);
    for (int64_t i = 0; i < N; i++) {
        double u = rng_uniform(rng) * total, acc = 0;
        int64_t pick = -1;
        for (int64_t g = 0; g < space; g++) {
            if (w[g] == 0) continue;
            pick = g; /* the last still available slot, should rounding leave u past the end */
            if ((acc += w[g]) > u) break;
        }
        total -= w[pick];
        w[pick] = 0;
        in[2 * N + 2 * pick] = keys[i];
        tg[2 * N + 2 * pick] = vals[i];
    }
}

/* One Bigram-Backcopy row: seq [T + 1] is scratch. */
static void backcopy_row(int32_t *in, int32_t *tg, const heed_task *task, int64_t T, int32_t *seq, uint64_t *rng)
{
    const int64_t V = task->p.vocab, K = task->p.bb_triggers;
    seq[0] = 0;
    seq[1] = (int32_t)(K + 1 + (int64_t)heed_rng_below(rng, (uint64_t)(V - K - 1)));
    for (int64_t t = 1; t < T; t++) {
        if (seq[t] <= K) {
            seq[t + 1] = seq[t - 1];
            continue;
        }
        const double *row = task->cum + (seq[t] - K - 1) * (V - 1);
        double u = rng_uniform(rng) * row[V - 2];
        int64_t lo = 0, hi = V - 2; /* the first j with row[j] > u */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (row[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        seq[t + 1] = (int32_t)(lo + 1);
    }
    for (int64_t t = 0; t < T; t++) {
        in[t] = seq[t];
        tg[t] = !task->p.bb_copies_only || (seq[t] >= 1 && seq[t] <= K) ? seq[t + 1] : -1;
    }
}

/* One bursty row (T = 2N + 1). cls [N] is scratch for the context classes. */
static void bursty_row(int32_t *in, int32_t *tg, const heed_task_params *p, int32_t *cls, uint64_t *rng)
{
    const int64_t K = p->bursty_classes, E = p->bursty_exemplars, L = p->bursty_labels, N = p->bursty_pairs,
                  B = p->bursty_burstiness;
    int64_t query;
    if (rng_uniform(rng) < p->bursty_p) {
        draw_distinct(cls, N / B, 0, K, rng);
        query = cls[heed_rng_below(rng, (uint64_t)(N / B))];
        for (int64_t i = N / B; i < N; i++) cls[i] = cls[i % (N / B)];
        for (int64_t i = N - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)heed_rng_below(rng, (uint64_t)i + 1);
            int32_t c = cls[i];
            cls[i] = cls[j];
            cls[j] = c;
        }
    } else {
        for (int64_t i = 0; i < N; i++) cls[i] = (int32_t)heed_rng_below(rng, (uint64_t)K);
        query = (int64_t)heed_rng_below(rng, (uint64_t)K);
    }
    for (int64_t i = 0; i < N; i++) {
        in[2 * i] = (int32_t)(cls[i] * E + (int64_t)heed_rng_below(rng, (uint64_t)E));
        in[2 * i + 1] = (int32_t)(K * E + cls[i] % L);
        tg[2 * i] = tg[2 * i + 1] = -1;
    }
    in[2 * N] = (int32_t)(query * E + (int64_t)heed_rng_below(rng, (uint64_t)E));
    tg[2 * N] = (int32_t)(K * E + query % L);
}

/* One repeated-random-tokens row. */
static void repeat_row(int32_t *in, int32_t *tg, const heed_task_params *p, int64_t T, uint64_t *rng)
{
    const int64_t h = T / 2;
    for (int64_t t = 0; t < h; t++) {
        in[t] = in[h + t] = (int32_t)heed_rng_below(rng, (uint64_t)p->vocab);
        tg[t] = -1;
    }
    for (int64_t t = h; t < T; t++) tg[t] = in[(t + 1) % h];
}

heed_status heed_task_batch(heed_ctx *ctx, int32_t *inputs, int32_t *targets, const heed_task *task, int64_t B,
                            int64_t T, uint64_t *rng)
{
    if (!inputs || !targets || !task || !rng || B < 1 || T < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_task_batch: B %lld, T %lld (both >= 1), NULL buffer, task or rng",
                         (long long)B, (long long)T);
    const heed_task_params *p = &task->p;
    size_t scratch = 0;
    switch (p->kind) {
    case HEED_TASK_MQAR:
        if (T % 2 != 0 || 4 * p->mqar_pairs > T)
            return heed_fail(ctx, HEED_ERR_INVALID, "T %lld: MQAR needs T even and 4 * mqar_pairs (%lld) <= T", (long long)T,
                             (long long)(4 * p->mqar_pairs));
        scratch = sizeof(double) * (size_t)T + sizeof(int32_t) * 2 * (size_t)p->mqar_pairs;
        break;
    case HEED_TASK_BACKCOPY:
        scratch = sizeof(int32_t) * ((size_t)T + 1);
        break;
    case HEED_TASK_BURSTY:
        if (T != 2 * p->bursty_pairs + 1)
            return heed_fail(ctx, HEED_ERR_INVALID, "T %lld: BURSTY needs T = 2 * bursty_pairs + 1 = %lld", (long long)T,
                             (long long)(2 * p->bursty_pairs + 1));
        scratch = sizeof(int32_t) * (size_t)p->bursty_pairs;
        break;
    case HEED_TASK_REPEAT:
        if (T % 2 != 0) return heed_fail(ctx, HEED_ERR_INVALID, "T %lld: REPEAT needs T even", (long long)T);
        break;
    }
    void *buf = scratch ? malloc(scratch) : NULL;
    if (scratch && !buf) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_task_batch: out of memory");
    for (int64_t b = 0; b < B; b++) {
        int32_t *in = inputs + b * T, *tg = targets + b * T;
        switch (p->kind) {
        case HEED_TASK_MQAR: mqar_row(in, tg, p, T, buf, (int32_t *)((double *)buf + T), rng); break;
        case HEED_TASK_BACKCOPY: backcopy_row(in, tg, task, T, buf, rng); break;
        case HEED_TASK_BURSTY: bursty_row(in, tg, p, buf, rng); break;
        case HEED_TASK_REPEAT: repeat_row(in, tg, p, T, rng); break;
        }
    }
    free(buf);
    return HEED_OK;
}
