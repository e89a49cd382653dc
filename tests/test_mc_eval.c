/* test_mc_eval.c — multiple-choice evaluation (src/probe/mc_eval.c): the JSON Lines reader and its file:line
 * refusals, heed_mc_score against log-softmax sums of a plain heed_model_forward over prompt + choice (with and
 * without ACT, after a stale KV cache) and its errors naming the item, argmax and counts on hand-built scores,
 * and the ranking and selection rule of ACT's head search. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses text (tok may be NULL) and checks it fails with HEED_ERR_FORMAT and a message containing want. */
static void parse_fails(heed_ctx *ctx, const char *text, const heed_tokenizer *tok, const char *want)
{
    heed_mc_set *set = (heed_mc_set *)1;
    heed_status s = heed_mc_parse(ctx, &set, text, strlen(text), "t.jsonl", tok);
    CHECK(s == HEED_ERR_FORMAT && set == NULL, "'%s' -> %s", text, heed_status_name(s));
    CHECK(strstr(heed_ctx_error(ctx), want) != NULL, "'%s': message '%s' lacks '%s'", text, heed_ctx_error(ctx), want);
}

static void test_parse(heed_ctx *ctx)
{
    const char *good = "{\"prompt_ids\": [5, 6, 7], \"choice_ids\": [[8], [9, 10], [11]], \"label\": 1, "
                       "\"id\": \"x\"}\n"
                       "\r\n   \n"
                       "{\"label\": 0, \"choice_ids\": [[3], [4]], \"prompt_ids\": [2]}";
    heed_mc_set *set = NULL;
    CHECK_OK(ctx, heed_mc_parse(ctx, &set, good, strlen(good), "g.jsonl", NULL));
    CHECK(set && set->n_items == 2, "items: %lld", set ? (long long)set->n_items : -1LL);
    if (set && set->n_items == 2) {
        const heed_mc_item *a = &set->items[0], *b = &set->items[1];
        CHECK(a->n_prompt == 3 && a->prompt[0] == 5 && a->prompt[2] == 7, "item 0 prompt");
        CHECK(a->n_choices == 3 && a->n_choice[1] == 2 && a->choice[1][0] == 9 && a->choice[1][1] == 10 &&
              a->choice[2][0] == 11 && a->label == 1 && a->line == 1, "item 0 choices, label, line");
        CHECK(b->n_prompt == 1 && b->n_choices == 2 && b->label == 0 && b->line == 4, "item 1 (line 4)");
    }
    heed_mc_free(set);

    parse_fails(ctx, "", NULL, "t.jsonl: no items");
    parse_fails(ctx, "\n  \n", NULL, "t.jsonl: no items");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3]], \"label\": 0}\n{\"prompt_ids\": [1", NULL,
                "t.jsonl:2: not valid JSON");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3]], \"label\": 0} x", NULL, "t.jsonl:1: not valid JSON near column 59");
    parse_fails(ctx, "[1, 2]", NULL, "t.jsonl:1: expected a JSON object");
    parse_fails(ctx, "{\"choice_ids\": [[2], [3]], \"label\": 0}", NULL,
                "exactly one of \"prompt\" and \"prompt_ids\"");
    parse_fails(ctx, "{\"prompt\": \"a\", \"prompt_ids\": [1], \"choice_ids\": [[2], [3]], \"label\": 0}", NULL,
                "got both");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"label\": 0}", NULL, "exactly one of \"choices\" and \"choice_ids\"");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3]]}", NULL, "t.jsonl:1: no \"label\"");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3]], \"label\": 2}", NULL,
                "expected a choice index 0..1");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3]], \"label\": -1}", NULL, "\"label\"");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3]], \"label\": 0.5}", NULL, "\"label\"");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3]], \"label\": \"0\"}", NULL, "\"label\"");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2]], \"label\": 0}", NULL,
                "1 choice, expected at least 2");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], []], \"label\": 0}", NULL,
                "\"choice_ids\"[1] is empty");
    parse_fails(ctx, "{\"prompt_ids\": [], \"choice_ids\": [[2], [3]], \"label\": 0}", NULL,
                "the prompt has no tokens");
    parse_fails(ctx, "{\"prompt_ids\": [1, -2], \"choice_ids\": [[2], [3]], \"label\": 0}", NULL, "\"prompt_ids\"[1]");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [3.5]], \"label\": 0}", NULL, "\"choice_ids\"[1][0]");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [[2], [4294967296]], \"label\": 0}", NULL, "token id");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": [2, 3], \"label\": 0}", NULL,
                "\"choice_ids\"[0]: expected an array");
    parse_fails(ctx, "{\"prompt_ids\": [1], \"choice_ids\": 3, \"label\": 0}", NULL,
                "\"choice_ids\": expected an array");
    parse_fails(ctx, "{\"prompt\": \"And God\", \"choices\": [\" a\", \" b\"], \"label\": 0}", NULL, "no tokenizer");

    /* text items through the default model's tokenizer: the prompt gets BOS, the choices no special token */
    char path[1024];
    snprintf(path, sizeof path, "%s/../../models/default/tokenizer.json", data_dir());
    heed_tokenizer *tok = NULL;
    CHECK_OK(ctx, heed_tokenizer_load(ctx, &tok, path));
    if (!tok) return;
    const char *text = "{\"prompt\": \"And God said\", \"choices\": [\" unto\", \" to the\"], \"label\": 1}";
    CHECK_OK(ctx, heed_mc_parse(ctx, &set, text, strlen(text), "x.jsonl", tok));
    int32_t *ids = NULL;
    int64_t n = 0;
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &n, tok, "And God said", 12, HEED_TOK_SPECIAL));
    if (set && ids) {
        const heed_mc_item *it = &set->items[0];
        CHECK(it->n_prompt == n && !memcmp(it->prompt, ids, sizeof(int32_t) * (size_t)n) && ids[0] == 0,
              "text prompt = the tokenizer's ids with BOS (%lld vs %lld)", (long long)it->n_prompt, (long long)n);
        free(ids);
        ids = NULL;
        CHECK_OK(ctx, heed_tokenize(ctx, &ids, &n, tok, " to the", 7, 0));
        CHECK(ids && it->n_choice[1] == n && !memcmp(it->choice[1], ids, sizeof(int32_t) * (size_t)n) && ids[0] != 0,
              "text choice = the tokenizer's ids without BOS");
    }
    free(ids);
    heed_mc_free(set);
    parse_fails(ctx, "{\"prompt\": \"x\", \"choices\": [\" a\", \"\"], \"label\": 0}", tok, "\"choices\"[1] is empty");
    parse_fails(ctx, "{\"prompt\": 3, \"choices\": [\" a\", \" b\"], \"label\": 0}", tok,
                "\"prompt\": expected a string");
    heed_tokenizer_free(tok);
}

/* The reference score of one choice: sum over its tokens of log(exp(x_id) / sum_v exp(x_v)) (long double, no
 * shift) from the logits of a plain forward over prompt + choice. */
static double ref_score(heed_ctx *ctx, heed_model *m, const heed_mc_item *it, int64_t c)
{
    const int64_t V = heed_model_config(m)->vocab, P = it->n_prompt, n = P + it->n_choice[c];
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)(n * V));
    memcpy(ids, it->prompt, sizeof(int32_t) * (size_t)P);
    memcpy(ids + P, it->choice[c], sizeof(int32_t) * (size_t)it->n_choice[c]);
    CHECK_OK(ctx, heed_model_forward(ctx, m, logits, NULL, ids, NULL, n, 0, 0));
    long double lp = 0;
    for (int64_t t = P; t < n; t++) {
        long double z = 0;
        for (int64_t v = 0; v < V; v++) z += expl((long double)logits[(t - 1) * V + v]);
        lp += logl(expl((long double)logits[(t - 1) * V + ids[t]]) / z);
    }
    free(ids);
    free(logits);
    return (double)lp;
}

static void test_score(heed_ctx *ctx)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/llama3-old", data_dir());
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (!m) return;
    const char *text = "{\"prompt_ids\": [1, 17, 200, 35, 4, 99], \"choice_ids\": [[12], [40, 41, 42], [7, 7]], "
                       "\"label\": 2}\n"
                       "{\"prompt_ids\": [3], \"choice_ids\": [[250, 8], [9]], \"label\": 0}\n"
                       "{\"prompt_ids\": [1, 2, 3, 4], \"choice_ids\": [[5], [6], [319]], \"label\": 1}\n";
    heed_mc_set *set = NULL;
    CHECK_OK(ctx, heed_mc_parse(ctx, &set, text, strlen(text), "s.jsonl", NULL));
    if (!set) return;
    heed_intervention act;
    heed_intervention_init(&act, HEED_EDIT_ACT, 1, 2);
    act.threshold = 0.05; /* on 7..9 keys every column gets s_j > 0.05: the edit is never empty */
    for (int pass = 0; pass < 2; pass++) {
        CHECK_OK(ctx, heed_model_set_interventions(ctx, m, pass ? &act : NULL, pass));
        heed_mc_stats want = {0}, got = {0};
        for (int64_t i = 0; i < set->n_items; i++) {
            const heed_mc_item *it = &set->items[i];
            double lp[3], ref[3];
            int32_t stale[5] = {8, 9, 10, 11, 12}; /* a cached sequence that the score must not continue */
            CHECK_OK(ctx, heed_model_forward(ctx, m, NULL, NULL, stale, NULL, 5, 0, 0));
            CHECK_OK(ctx, heed_mc_score(ctx, m, lp, it));
            for (int64_t c = 0; c < it->n_choices; c++) {
                ref[c] = ref_score(ctx, m, it, c);
                CHECK(fabs(lp[c] - ref[c]) <= 1e-9 * (1 + fabs(ref[c])) + 1e-6 && lp[c] < 0,
                      "pass %d item %lld choice %lld: %.12g vs reference %.12g", pass, (long long)i, (long long)c,
                      lp[c], ref[c]);
            }
            heed_mc_tally(&want, ref, it);
        }
        CHECK_OK(ctx, heed_mc_eval(ctx, m, &got, set));
        CHECK(got.n_items == 3 && got.correct == want.correct && got.correct_norm == want.correct_norm &&
              fabs(got.margin_sum - want.margin_sum) < 1e-5, "pass %d: eval %lld/%lld %.9g vs tally %lld/%lld %.9g",
              pass, (long long)got.correct, (long long)got.correct_norm, got.margin_sum, (long long)want.correct,
              (long long)want.correct_norm, want.margin_sum);
    }
    /* the ACT edit changes the scores (it is on: the comparison above is not of two plain forwards) */
    double plain[3], edited[3];
    CHECK_OK(ctx, heed_model_set_interventions(ctx, m, NULL, 0));
    CHECK_OK(ctx, heed_mc_score(ctx, m, plain, &set->items[0]));
    CHECK_OK(ctx, heed_model_set_interventions(ctx, m, &act, 1));
    CHECK_OK(ctx, heed_mc_score(ctx, m, edited, &set->items[0]));
    CHECK(fabs(plain[1] - edited[1]) > 1e-6, "ACT on 1.2 left choice 1 at %.9g", plain[1]);
    /* an id past the vocabulary (320) names the item's line */
    heed_mc_item bad = set->items[2];
    int32_t big = 320, *choice[3] = {bad.choice[0], &big, bad.choice[2]};
    bad.choice = choice;
    double lp[3];
    CHECK(heed_mc_score(ctx, m, lp, &bad) == HEED_ERR_INVALID && strstr(heed_ctx_error(ctx), "line 3: choice 1 id 320"),
          "out-of-vocabulary id: %s", heed_ctx_error(ctx));
    heed_mc_free(set);
    heed_model_free(m);

    /* a forward that fails (gpt2 has 64 learned positions) names the item's line and choice; a choice without
     * tokens is refused */
    snprintf(dir, sizeof dir, "%s/models/gpt2", data_dir());
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (!m) return;
    int32_t prompt[60] = {0}, short_c[2] = {5, 6}, long_c[5] = {1, 2, 3, 4, 5};
    int32_t *two[2] = {short_c, long_c};
    int64_t lens[2] = {2, 5};
    heed_mc_item far = {prompt, 60, two, lens, 2, 0, 7};
    heed_status st = heed_mc_score(ctx, m, lp, &far);
    CHECK(st == HEED_ERR_INVALID &&
              strstr(heed_ctx_error(ctx), "line 7, choice 1: heed_model_forward: positions up to 65"),
          "past the positions: %s: %s", heed_status_name(st), heed_ctx_error(ctx));
    lens[1] = 0;
    CHECK(heed_mc_score(ctx, m, lp, &far) == HEED_ERR_INVALID &&
              strstr(heed_ctx_error(ctx), "line 7: choice 1 has no tokens"),
          "empty choice: %s", heed_ctx_error(ctx));
    heed_model_free(m);
}

static void test_counts(void)
{
    const int64_t ntok[3] = {1, 4, 2};
    const double lp[3] = {-3.0, -6.0, -3.0};
    CHECK(heed_mc_argmax(lp, ntok, 3, 0) == 0, "ties go to the first");
    CHECK(heed_mc_argmax(lp, ntok, 3, 1) == 1, "per token: -3, -1.5, -1.5: the first of the two");
    const double one[1] = {-2.0};
    CHECK(heed_mc_argmax(one, ntok, 1, 0) == 0 && heed_mc_argmax(one, ntok, 1, 1) == 0, "one choice");

    /* three hand-built items: their counts and margins follow from the definitions */
    int32_t tok[1] = {0}, *ch[3] = {tok, tok, tok};
    int64_t n1[3] = {1, 4, 2};
    heed_mc_item it = {tok, 1, ch, n1, 3, 0, 1};
    heed_mc_stats st = {0};
    it.label = 0;
    heed_mc_tally(&st, lp, &it); /* plain: 0 right; per token: 1 wrong; margin -3 - (-3) = 0 */
    it.label = 1;
    heed_mc_tally(&st, lp, &it); /* plain wrong, per token right; margin -6 - (-3) = -3 */
    const double lp2[3] = {-9.0, -8.0, -0.5};
    it.label = 2;
    heed_mc_tally(&st, lp2, &it); /* both right; margin -0.5 - (-8) = 7.5 */
    CHECK(st.n_items == 3 && st.correct == 2 && st.correct_norm == 2 && st.margin_sum == 4.5,
          "tally: %lld items, %lld right, %lld right per token, margin sum %g", (long long)st.n_items,
          (long long)st.correct, (long long)st.correct_norm, st.margin_sum);
}

static void test_rank(void)
{
    const heed_mc_stats base = {10, 5, 5, 1.0};
    heed_act_head h[6] = {
        {2, 0, {10, 5, 5, 1.0}, 0},  /* gain 0 */
        {2, 1, {10, 7, 5, 0.0}, 0},  /* gain +0.2, lower margin */
        {3, 4, {10, 7, 5, 3.0}, 0},  /* gain +0.2, higher margin: first */
        {2, 3, {10, 6, 5, 2.0}, 0},  /* gain +0.1 */
        {3, 0, {10, 6, 5, 2.0}, 0},  /* ties 2.3 on both gains: after it (layer) */
        {2, 5, {10, 4, 5, 9.0}, 0},  /* gain -0.1: last despite the margin */
    };
    CHECK(heed_act_rank(h, 6, &base, 0.0) == 4, "4 heads gain more than 0");
    const int64_t order[6][2] = {{3, 4}, {2, 1}, {2, 3}, {3, 0}, {2, 0}, {2, 5}};
    for (int i = 0; i < 6; i++)
        CHECK(h[i].layer == order[i][0] && h[i].head == order[i][1] && h[i].selected == (i < 4),
              "rank %d: %lld.%lld selected %d", i + 1, (long long)h[i].layer, (long long)h[i].head, h[i].selected);
    CHECK(heed_act_rank(h, 6, &base, 0.1) == 2 && h[1].selected && !h[2].selected, "threshold 0.1: gain 0.2 only");
    CHECK(heed_act_rank(h, 6, &base, -0.15) == 6, "threshold -0.15: all (gain -0.1 too)");
    CHECK(heed_act_rank(h, 6, &base, 0.5) == 0, "threshold 0.5: none");
    CHECK(heed_act_rank(h, 0, &base, 0.0) == 0, "no heads");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 2) != HEED_OK) return 1;
    test_parse(ctx);
    test_score(ctx);
    test_counts();
    test_rank();
    heed_ctx_free(ctx);
    return t_done("test_mc_eval");
}
