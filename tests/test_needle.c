/* test_needle.c — src/probe/needle.c: grid-cell prompts on hand-built ids with known layouts (and every
 * placement rule checked over many random cases), ROUGE-1 recall over ids and over words on known counts, and
 * the retrieval decode against a slow reference that reruns the whole sequence each step (no KV cache) and
 * takes each head's top-1 key from the full attention maps. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int same_ids(const int32_t *a, const int32_t *b, int64_t n)
{
    return !memcmp(a, b, sizeof(int32_t) * (size_t)n);
}

/* Known layouts: haystack 10,11,12 repeated; needle 50,51; question 60; BOS 1; 12 tokens (filler 8). */
static void test_prompt_known(heed_ctx *ctx)
{
    const int32_t hay[3] = {10, 11, 12}, needle[2] = {50, 51}, q[1] = {60};
    int32_t p[12];
    int64_t at = -1;
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, 1, 12, 50));
    const int32_t mid[12] = {1, 10, 11, 12, 10, 50, 51, 11, 12, 10, 11, 60};
    CHECK(same_ids(p, mid, 12) && at == 5, "depth 50: needle at %lld", (long long)at);
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, 1, 12, 0));
    const int32_t first[12] = {1, 50, 51, 10, 11, 12, 10, 11, 12, 10, 11, 60};
    CHECK(same_ids(p, first, 12) && at == 1, "depth 0: needle at %lld", (long long)at);
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, 1, 12, 100));
    const int32_t last[12] = {1, 10, 11, 12, 10, 11, 12, 10, 11, 50, 51, 60};
    CHECK(same_ids(p, last, 12) && at == 9, "depth 100: needle at %lld", (long long)at);
    /* no BOS, no question: filler 10; depth 25 -> round(2.5) = 3 (half away from zero) */
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, NULL, 0, -1, 12, 25));
    const int32_t quarter[12] = {10, 11, 12, 50, 51, 10, 11, 12, 10, 11, 12, 10};
    CHECK(same_ids(p, quarter, 12) && at == 3, "no BOS, depth 25: needle at %lld", (long long)at);

    /* breaks before 20 and 22 of 20,21,22,23 (filler 8): q = 5 (5 % 4 = 1, no break) goes back to 4; q = 3 to 2;
     * depth 100 stays at the end though 8 % 4 = 0 would be a break anyway; q = 1 to 0 */
    const int32_t hay4[4] = {20, 21, 22, 23};
    const uint8_t brk[4] = {1, 0, 1, 0};
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay4, brk, 4, needle, 2, q, 1, 1, 12, 62.5));
    const int32_t b5[12] = {1, 20, 21, 22, 23, 50, 51, 20, 21, 22, 23, 60};
    CHECK(same_ids(p, b5, 12) && at == 5, "break before position 4: needle at %lld", (long long)at);
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay4, brk, 4, needle, 2, q, 1, 1, 12, 37.5));
    CHECK(at == 3 && p[1] == 20 && p[2] == 21 && p[3] == 50, "break before position 2: needle at %lld", (long long)at);
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay4, brk, 4, needle, 2, q, 1, 1, 12, 12.5));
    CHECK(at == 1, "q = 1 goes back to 0: needle at %lld", (long long)at);
    const uint8_t none[4] = {0, 0, 0, 0};
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay4, none, 4, needle, 2, q, 1, 1, 12, 90));
    CHECK(at == 1, "no break at all: the start, needle at %lld", (long long)at);
    CHECK_OK(ctx, heed_needle_prompt(ctx, p, &at, hay4, none, 4, needle, 2, q, 1, 1, 12, 100));
    CHECK(at == 9, "no break at all, depth 100: the end, needle at %lld", (long long)at);

    /* errors: no room for any haystack, depth outside 0..100 or NaN, an empty haystack or needle */
    CHECK(heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, 1, 4, 50) == HEED_ERR_INVALID,
          "4 tokens for BOS + needle + question accepted");
    CHECK(strstr(heed_ctx_error(ctx), "cannot hold") != NULL, "message: %s", heed_ctx_error(ctx));
    CHECK(heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, -1, 4, 50) == HEED_OK, "filler 1 refused");
    CHECK(heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, 1, 12, -1) == HEED_ERR_INVALID, "depth -1");
    CHECK(heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, 1, 12, 100.5) == HEED_ERR_INVALID,
          "depth 100.5");
    CHECK(heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 2, q, 1, 1, 12, NAN) == HEED_ERR_INVALID, "depth NaN");
    CHECK(heed_needle_prompt(ctx, p, &at, hay, NULL, 0, needle, 2, q, 1, 1, 12, 50) == HEED_ERR_INVALID, "no haystack");
    CHECK(heed_needle_prompt(ctx, p, &at, hay, NULL, 3, needle, 0, q, 1, 1, 12, 50) == HEED_ERR_INVALID, "no needle");
}

/* Random cases against the definition: length, BOS, the needle at *needle_at, the rest the cycled haystack
 * then the question, the place a break at or before round(depth F / 100) with no break between. */
static void test_prompt_random(heed_ctx *ctx)
{
    t_rng r = {0x5eed};
    int bad = 0;
    for (int it = 0; it < 500; it++) {
        int64_t n_hay = t_int(&r, 1, 9), n_needle = t_int(&r, 1, 4), n_q = t_int(&r, 0, 3);
        int32_t bos = t_int(&r, 0, 1) ? 7 : -1;
        int64_t ctx_len = (bos >= 0) + n_needle + n_q + t_int(&r, 1, 40), F = ctx_len - (bos >= 0) - n_needle - n_q;
        double depth = t_int(&r, 0, 3) ? 100.0 * t_uniform(&r) : 25.0 * (double)t_int(&r, 0, 4);
        int32_t hay[9], needle[4], q[3], p[64], rest[64];
        uint8_t brk[9];
        for (int64_t i = 0; i < n_hay; i++) hay[i] = 100 + (int32_t)i, brk[i] = (uint8_t)t_int(&r, 0, 1);
        for (int64_t i = 0; i < n_needle; i++) needle[i] = 200 + (int32_t)i;
        for (int64_t i = 0; i < n_q; i++) q[i] = 300 + (int32_t)i;
        const uint8_t *breaks = t_int(&r, 0, 2) ? brk : NULL;
        int64_t at = -1;
        if (heed_needle_prompt(ctx, p, &at, hay, breaks, n_hay, needle, n_needle, q, n_q, bos, ctx_len, depth) !=
            HEED_OK) {
            bad++;
            continue;
        }
        int64_t head = bos >= 0, place = at - head, aim = (int64_t)llround(depth / 100.0 * (double)F);
        int ok = at >= head && place <= aim && (!head || p[0] == bos) && same_ids(p + at, needle, n_needle) &&
                 same_ids(p + ctx_len - n_q, q, n_q);
        int64_t n_rest = 0;
        for (int64_t i = head; i < ctx_len - n_q; i++)
            if (i < at || i >= at + n_needle) rest[n_rest++] = p[i];
        for (int64_t i = 0; ok && i < F; i++) ok = n_rest == F && rest[i] == hay[i % n_hay];
        int is_break = place == 0 || place == F || !breaks || breaks[place % n_hay];
        for (int64_t k = place + 1; ok && breaks && k <= aim && k < F; k++) ok = !breaks[k % n_hay];
        bad += !(ok && is_break);
    }
    CHECK(bad == 0, "%d of 500 random prompts break the layout", bad);
}

static void test_rouge(void)
{
    const int32_t ref[3] = {5, 5, 7}, cand[4] = {5, 9, 7, 7}, all[3] = {7, 5, 5};
    CHECK(fabs(heed_rouge1_recall(ref, 3, cand, 4) - 2.0 / 3.0) < 1e-12, "ids: one of two 5s, the 7: %g",
          heed_rouge1_recall(ref, 3, cand, 4));
    CHECK(heed_rouge1_recall(ref, 3, all, 3) == 1.0, "ids: all matched in any order");
    CHECK(heed_rouge1_recall(ref, 3, cand, 0) == 0.0 && heed_rouge1_recall(ref, 0, cand, 4) == 0.0, "ids: empty");
    CHECK(fabs(heed_rouge1_recall(cand, 4, ref, 3) - 0.5) < 1e-12, "ids: the other way round, 2 of 4");

    double x = heed_rouge1_recall_text("The magic number is 7241.", " the MAGIC: 7241, 7241 and");
    CHECK(fabs(x - 0.6) < 1e-12, "words: the, magic, 7241 of 5: %g", x);
    CHECK(fabs(heed_rouge1_recall_text("go go stop", "go") - 1.0 / 3.0) < 1e-12, "words: clipped repeats");
    CHECK(heed_rouge1_recall_text("go go stop", "Stop! Go, go.") == 1.0, "words: case and punctuation");
    CHECK(heed_rouge1_recall_text("7241", "72417") == 0.0, "words: 72417 is not 7241");
    CHECK(heed_rouge1_recall_text("7241", "is 7241-ish") == 1.0, "words: '-' separates");
    CHECK(fabs(heed_rouge1_recall_text("abc123 x", "ABC123") - 0.5) < 1e-12, "words: letters and digits join");
    CHECK(heed_rouge1_recall_text("caf\xc3\xa9", "caf") == 1.0, "words: a non-ASCII byte separates (caf)");
    CHECK(heed_rouge1_recall_text("...", "anything") == 0.0 && heed_rouge1_recall_text("a", "") == 0.0,
          "words: empty reference or candidate");
}

/* Argmax of row [n] (the first on ties), as the probe's top1. */
static int64_t argmax(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

/* heed_retrieval_decode against the slow reference: each step the whole sequence so far from pos 0 with the
 * attention maps traced; the next id is the argmax of the last row's logits, each head's top-1 key the argmax
 * of its last map row, the count as defined. On llama3-old: the golden prompt of tests/data/run/gen_ids.txt
 * (transformers' greedy continuation); on the default model: a sentence twice then its start, where two heads
 * copy from the first sentence. Also: score NULL decodes the same ids; bad needles. */
static void check_decode(heed_ctx *ctx, const char *dir, const int32_t *prompt, int64_t T, int64_t N,
                         const int32_t *golden, int64_t at, int64_t len)
{
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (!m) return;
    const heed_config *c = heed_model_config(m);
    int64_t NL = c->n_layers, H = c->n_heads, V = c->vocab, S = NL * H, NMAX = T + N;
    float *score = calloc((size_t)S, sizeof(float)), *want = calloc((size_t)S, sizeof(float));
    float *logits = malloc(sizeof(float) * (size_t)(NMAX * V));
    float **attn = calloc((size_t)NL, sizeof *attn);
    int32_t *all = malloc(sizeof(int32_t) * (size_t)NMAX), *gen = malloc(sizeof(int32_t) * (size_t)N);
    int32_t *gen2 = malloc(sizeof(int32_t) * (size_t)N), *top1 = malloc(sizeof(int32_t) * (size_t)S);
    for (int64_t L = 0; L < NL; L++) attn[L] = malloc(sizeof(float) * (size_t)(H * NMAX * NMAX));
    memcpy(all, prompt, sizeof(int32_t) * (size_t)T);
    for (int64_t s = 0; s < N; s++) {
        int64_t n = T + s;
        heed_model_trace tr = {attn, NULL};
        CHECK_OK(ctx, heed_model_forward(ctx, m, logits, &tr, all, NULL, n, 0, 0));
        all[n] = (int32_t)argmax(logits + (n - 1) * V, V);
        for (int64_t L = 0; L < NL; L++)
            for (int64_t h = 0; h < H; h++) top1[L * H + h] = (int32_t)argmax(attn[L] + (h * n + n - 1) * n, n);
        for (int64_t i = 0; i < S; i++)
            if (top1[i] >= at && top1[i] < at + len && all[top1[i]] == all[n]) want[i] += (float)(1.0 / (double)len);
    }
    int64_t n_out = -1;
    CHECK_OK(ctx, heed_retrieval_decode(ctx, m, gen, &n_out, score, prompt, T, at, len, N, 0));
    CHECK(n_out == N && same_ids(gen, all + T, N), "%s: decode differs from the full-sequence argmax", dir);
    CHECK(!golden || same_ids(gen, golden, N), "%s: decode differs from transformers' greedy continuation", dir);
    double err = 0, total = 0;
    for (int64_t i = 0; i < S; i++) err = fmax(err, fabs(score[i] - want[i])), total += want[i];
    CHECK(err < 1e-6, "%s: retrieval scores differ from the reference by %g", dir, err);
    CHECK(golden || total > 0, "%s: no head copies from the needle", dir);
    CHECK_OK(ctx, heed_retrieval_decode(ctx, m, gen2, &n_out, NULL, prompt, T, 0, 0, N, 0));
    CHECK(n_out == N && same_ids(gen2, gen, N), "%s: decode without a score differs", dir);
    CHECK_OK(ctx, heed_retrieval_decode(ctx, m, gen2, &n_out, NULL, prompt, 1, 0, 0, 2, 0));
    CHECK(n_out == 2, "%s: a one-id prompt (no prefill)", dir);
    CHECK(heed_retrieval_decode(ctx, m, gen2, &n_out, score, prompt, T, T - 2, 3, N, 0) == HEED_ERR_INVALID &&
              heed_retrieval_decode(ctx, m, gen2, &n_out, score, prompt, T, 0, 0, N, 0) == HEED_ERR_INVALID,
          "%s: a needle past the prompt or empty accepted", dir);
    for (int64_t L = 0; L < NL; L++) free(attn[L]);
    free(attn), free(score), free(want), free(logits), free(all), free(gen), free(gen2), free(top1);
    heed_model_free(m);
}

static void test_decode(heed_ctx *ctx)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/llama3-old", data_dir());
    const int32_t golden_prompt[32] = {58, 66, 100, 52, 57, 107, 12, 225, 63, 178, 164, 92, 174, 153, 203, 257,
                                       264, 122, 306, 82, 127, 172, 264, 246, 195, 50, 59, 17, 46, 314, 186, 286};
    const int32_t golden[8] = {60, 164, 315, 142, 181, 118, 262, 107};
    check_decode(ctx, dir, golden_prompt, 32, 8, golden, 3, 4);
    snprintf(dir, sizeof dir, "%s/../../models/default", data_dir());
    /* "The secret number is 7241. The secret number is 7241. The secret number is", the needle its first
     * sentence */
    const int32_t secret[25] = {0,   974, 2535, 1863, 325, 34, 57,   52,   54,  51, 48, 366, 2535,
                                1863, 325, 34,  57,   52,  54, 51, 48, 366, 2535, 1863, 325};
    check_decode(ctx, dir, secret, 25, 8, NULL, 1, 11);
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 2) != HEED_OK) return 1;
    test_prompt_known(ctx);
    test_prompt_random(ctx);
    test_rouge();
    test_decode(ctx);
    heed_ctx_free(ctx);
    return t_done("test_needle");
}
