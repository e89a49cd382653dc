/* needle.c — needle in a haystack: the prompt of one grid cell (a needle placed at a depth of a repeated
 * haystack, then the question), ROUGE-1 recall over ids and over words, and the greedy decode observed for
 * the Retrieval-Head score that `heed needle` and `heed heads --score retrieval` share. docs/analysis.md. */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>

heed_status heed_needle_prompt(heed_ctx *ctx, int32_t *prompt, int64_t *needle_at, const int32_t *hay,
                               const uint8_t *breaks, int64_t n_hay, const int32_t *needle, int64_t n_needle,
                               const int32_t *question, int64_t n_question, int32_t bos, int64_t ctx_len,
                               double depth)
{
    if (!prompt || !needle_at || !hay || !needle || (n_question > 0 && !question))
        return heed_fail(ctx, HEED_ERR_INVALID, "needle prompt: NULL pointer");
    if (n_hay < 1 || n_needle < 1 || n_question < 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "needle prompt: %lld haystack and %lld needle ids (at least 1 each), "
                         "%lld question ids", (long long)n_hay, (long long)n_needle, (long long)n_question);
    if (!(depth >= 0.0 && depth <= 100.0))
        return heed_fail(ctx, HEED_ERR_INVALID, "needle prompt: depth %g outside 0..100", depth);
    int64_t head = bos >= 0, F = ctx_len - head - n_needle - n_question;
    if (F < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "needle prompt: %lld tokens cannot hold %s%lld needle and %lld "
                         "question ids and any haystack", (long long)ctx_len, head ? "BOS, " : "", (long long)n_needle,
                         (long long)n_question);
    int64_t p = (int64_t)llround(depth / 100.0 * (double)F);
    while (p > 0 && p < F && breaks && !breaks[p % n_hay]) p--;
    int32_t *o = prompt;
    if (head) *o++ = bos;
    for (int64_t i = 0; i < p; i++) *o++ = hay[i % n_hay];
    *needle_at = o - prompt;
    for (int64_t i = 0; i < n_needle; i++) *o++ = needle[i];
    for (int64_t i = p; i < F; i++) *o++ = hay[i % n_hay];
    for (int64_t i = 0; i < n_question; i++) *o++ = question[i];
    return HEED_OK;
}

double heed_rouge1_recall(const int32_t *ref, int64_t n_ref, const int32_t *cand, int64_t n_cand)
{
    /* ref[i] is matched when it is the k-th copy of its id in ref and cand holds at least k copies: the sum
     * over distinct ids of min(count in ref, count in cand) */
    int64_t hit = 0;
    for (int64_t i = 0; i < n_ref; i++) {
        int64_t k = 1, in_cand = 0;
        for (int64_t j = 0; j < i; j++) k += ref[j] == ref[i];
        for (int64_t j = 0; j < n_cand && in_cand < k; j++) in_cand += cand[j] == ref[i];
        hit += in_cand >= k;
    }
    return n_ref > 0 ? (double)hit / (double)n_ref : 0.0;
}

/* rouge_score's default tokenizer without stemming: lower-cased ASCII letters and digits; every other
 * byte separates words. */
static int word_byte(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* The next word at or after *s: its start [*len], and *s moved past it; NULL at the end. */
static const char *next_word(const char **s, size_t *len)
{
    const char *p = *s;
    while (*p && !word_byte(*p)) p++;
    if (!*p) return NULL;
    const char *w = p;
    while (word_byte(*p)) p++;
    *len = (size_t)(p - w);
    *s = p;
    return w;
}

static int same_word(const char *a, size_t la, const char *b, size_t lb)
{
    if (la != lb) return 0;
    for (size_t i = 0; i < la; i++)
        if (lower(a[i]) != lower(b[i])) return 0;
    return 1;
}

/* How many words of text [..end) (end NULL: all of it) equal w [len], stopping once there are `enough`. */
static int64_t count_word(const char *text, const char *end, const char *w, size_t len, int64_t enough)
{
    int64_t n = 0;
    size_t lx;
    for (const char *x; n < enough && (x = next_word(&text, &lx)) && (!end || x < end);) n += same_word(x, lx, w, len);
    return n;
}

double heed_rouge1_recall_text(const char *ref, const char *cand)
{
    int64_t hit = 0, n_ref = 0;
    size_t len;
    for (const char *s = ref, *w; (w = next_word(&s, &len)); n_ref++) {
        int64_t k = count_word(ref, w, w, len, INT64_MAX) + 1; /* w is the k-th copy of itself in ref */
        hit += count_word(cand, NULL, w, len, k) >= k;
    }
    return n_ref > 0 ? (double)hit / (double)n_ref : 0.0;
}

heed_status heed_retrieval_decode(heed_ctx *ctx, heed_model *m, int32_t *gen, int64_t *n_out, float *score,
                                  const int32_t *prompt, int64_t T, int64_t needle_at, int64_t needle_len,
                                  int64_t n_gen, int stop_eos)
{
    *n_out = 0;
    if (!m || !gen || !prompt || T < 1 || n_gen < 0 || (score && (needle_at < 0 || needle_len < 1 ||
                                                                  needle_at + needle_len > T)))
        return heed_fail(ctx, HEED_ERR_INVALID, "retrieval decode: %lld prompt ids, needle [%lld, +%lld), %lld steps",
                         (long long)T, (long long)needle_at, (long long)needle_len, (long long)n_gen);
    if (!heed_model_has_lm_head(m))
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "retrieval decode: the model has no LM head");
    const heed_config *c = heed_model_config(m);
    const heed_gen_config *gc = heed_model_gen_config(m);
    int64_t S = c->n_layers * c->n_heads;
    float *logits = malloc(sizeof(float) * (size_t)c->vocab);
    int32_t *top1 = score ? malloc(sizeof(int32_t) * (size_t)S) : NULL;
    int32_t *all = malloc(sizeof(int32_t) * (size_t)(T + n_gen));
    if (!logits || (score && !top1) || !all) {
        free(logits), free(top1), free(all);
        return heed_fail(ctx, HEED_ERR_NOMEM, "retrieval decode: out of memory");
    }
    heed_sample_params sp;
    heed_sample_params_init(&sp, NULL);
    sp.greedy = 1;
    uint64_t rng = 0; /* greedy: never drawn from */
    heed_probe pr = {0};
    pr.top1 = top1;
    for (int64_t i = 0; i < T; i++) all[i] = prompt[i];
    heed_status st = heed_model_set_probe(ctx, m, NULL);
    if (st == HEED_OK && T > 1) st = heed_model_forward(ctx, m, NULL, NULL, prompt, NULL, T - 1, 0, 0);
    if (st == HEED_OK && score) st = heed_model_set_probe(ctx, m, &pr);
    int64_t n = 0;
    for (int eos = 0; st == HEED_OK && n < n_gen && !eos; n++) { /* step n: the query is all[T - 1 + n] */
        st = heed_model_forward(ctx, m, logits, NULL, all + T - 1 + n, NULL, 1, T - 1 + n, HEED_FWD_LAST_LOGITS);
        if (st == HEED_OK) st = heed_sample(ctx, &gen[n], logits, c->vocab, all, T + n, &sp, &rng);
        if (st != HEED_OK) break;
        all[T + n] = gen[n];
        if (score) heed_score_retrieval_step(score, top1, S, prompt, needle_at, needle_len, gen[n]);
        for (int e = 0; stop_eos && e < gc->n_eos; e++) eos |= gen[n] == gc->eos_ids[e];
    }
    if (score) heed_model_set_probe(ctx, m, NULL);
    *n_out = n;
    free(logits), free(top1), free(all);
    return st;
}
