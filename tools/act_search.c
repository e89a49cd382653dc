/* act_search.c — `heed act-search`: ACT's offline head search on a labelled multiple-choice set. Every
 * candidate head is calibrated alone (ACT, beta) and scored on the set; the heads whose calibration raises the
 * accuracy above the uncalibrated model's are kept and evaluated together, and printed as --intervene flags. */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed act-search [-m MODEL] --data FILE.jsonl [--beta B] [--layers A-B] [--threshold X]\n"
               "                       [--json] [--threads N]\n"
               "  ACT's head search (docs/analysis.md): the accuracy on FILE's multiple-choice items without\n"
               "  calibration, then with ACT (act:L.H:B) on each candidate head alone; heads are ranked by accuracy\n"
               "  gain (ties: mean margin gain) and those whose gain is above X are selected and evaluated together.\n"
               "  FILE: one JSON object per line, {\"prompt\": TEXT, \"choices\": [TEXT, ...], \"label\": INDEX}, or\n"
               "  \"prompt_ids\" / \"choice_ids\" with token ids. A choice is scored by the summed log-probability\n"
               "  of its tokens after the prompt (lm-eval); the per-token mean gives the normalised accuracy.\n"
               "  --beta B       ACT's column scale, in [0, 1] (0.4)\n"
               "  --layers A-B   candidate layers (default 2..L-2 as the paper; every layer when L < 4)\n"
               "  --threshold X  select heads whose accuracy gain (a fraction of the items) is above X (0)\n"
               "  --json         also print every head's result as one JSON line, last\n");
    return rc;
}

/* Parses "A-B" (whole numbers, 0 <= A <= B) into *a, *b. Returns 1 when well formed. */
static int parse_range(int64_t *a, int64_t *b, const char *s)
{
    const char *dash = strchr(s, '-');
    if (!dash || dash == s) return 0;
    char first[32];
    size_t n = (size_t)(dash - s);
    if (n >= sizeof first) return 0;
    memcpy(first, s, n);
    first[n] = '\0';
    double x, y;
    if (!cli_parse_num(&x, first) || !cli_parse_num(&y, dash + 1) || x != floor(x) || y != floor(y) || x < 0 ||
        y < x || y > 1e9)
        return 0;
    *a = (int64_t)x, *b = (int64_t)y;
    return 1;
}

/* The shortest decimal form of x that reads back as x (so a printed flag reproduces the run). */
static void shortest(char *buf, size_t cap, double x)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static double frac(int64_t k, int64_t n) { return n > 0 ? (double)k / (double)n : 0.0; }
static double mean_margin(const heed_mc_stats *st) { return frac(1, st->n_items) * st->margin_sum; }

/* One configuration's figures as JSON members (no braces). */
static void json_stats(const heed_mc_stats *st)
{
    printf("\"correct\": %lld, \"accuracy\": %.9g, \"correct_norm\": %lld, \"accuracy_norm\": %.9g, \"margin\": %.9g",
           (long long)st->correct, frac(st->correct, st->n_items), (long long)st->correct_norm,
           frac(st->correct_norm, st->n_items), mean_margin(st));
}

/* Sets ACT with beta on heads [n] (n = 0: no intervention) and scores the set into *st. */
static heed_status eval_heads(heed_ctx *ctx, heed_model *m, heed_mc_stats *st, const heed_mc_set *set,
                              const heed_act_head *heads, int64_t n, double beta)
{
    heed_intervention *iv = calloc((size_t)(n > 0 ? n : 1), sizeof *iv);
    if (!iv) return HEED_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        heed_intervention_init(&iv[i], HEED_EDIT_ACT, heads[i].layer, heads[i].head);
        iv[i].amount = beta;
    }
    heed_status s = heed_model_set_interventions(ctx, m, n ? iv : NULL, n);
    free(iv);
    return s == HEED_OK ? heed_mc_eval(ctx, m, st, set) : s;
}

int cmd_act_search(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *beta_arg = NULL, *layers_arg = NULL, *thr_arg = NULL, *threads_arg = NULL;
    int json = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--json")) json = 1;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && more) model = argv[++i];
        else if (!strcmp(a, "--data") && more) data = argv[++i];
        else if (!strcmp(a, "--beta") && more) beta_arg = argv[++i];
        else if (!strcmp(a, "--layers") && more) layers_arg = argv[++i];
        else if (!strcmp(a, "--threshold") && more) thr_arg = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads_arg = argv[++i];
        else {
            fprintf(stderr, "heed act-search: unknown or incomplete option '%s'\n", a);
            return usage(stderr, 2);
        }
    }
    heed_intervention act;
    heed_intervention_init(&act, HEED_EDIT_ACT, 0, 0); /* the paper's beta */
    double beta = act.amount, threshold = 0.0;
    int64_t lo = 0, hi = 0;
    if (!data) {
        fprintf(stderr, "heed act-search: give --data FILE.jsonl (the labelled items)\n");
        return usage(stderr, 2);
    }
    if (beta_arg && (!cli_parse_num(&beta, beta_arg) || !(beta >= 0.0 && beta <= 1.0))) {
        fprintf(stderr, "heed act-search: --beta: expected a number in [0, 1], got '%s'\n", beta_arg);
        return 2;
    }
    if (thr_arg && (!cli_parse_num(&threshold, thr_arg) || !isfinite(threshold))) {
        fprintf(stderr, "heed act-search: --threshold: expected a number, got '%s'\n", thr_arg);
        return 2;
    }
    if (layers_arg && !parse_range(&lo, &hi, layers_arg)) {
        fprintf(stderr, "heed act-search: --layers: expected A-B with whole numbers 0 <= A <= B, got '%s'\n",
                layers_arg);
        return 2;
    }
    if (!cli_threads_option(&threads, threads_arg, "act-search")) return 2;
    if (!cli_check_model_kv(&model, NULL, "act-search")) return 2;
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    heed_mc_set *set = NULL;
    heed_act_head *heads = NULL;
    int rc = 1;
    if (!cli_create_ctx(&ctx, threads, "act-search")) goto done;
    if (!cli_load_model(&m, ctx, model, NAN, NAN, "act-search")) goto done;
    if (!heed_model_has_lm_head(m)) {
        fprintf(stderr, "heed act-search: %s has no LM head: choices are scored by their log-probability\n", model);
        goto done;
    }
    const heed_config *c = heed_model_config(m);
    const int64_t NL = c->n_layers, H = c->n_heads;
    if (!layers_arg) lo = NL >= 4 ? 2 : 0, hi = NL >= 4 ? NL - 2 : NL - 1; /* the paper's 2..L-2, else all */
    if (hi >= NL) {
        fprintf(stderr, "heed act-search: --layers %s: this model has layers 0..%lld\n", layers_arg, (long long)NL - 1);
        goto done;
    }
    if (!cli_load_tokenizer(&tok, ctx, model, 0, "act-search")) goto done;
    if (heed_mc_load(ctx, &set, data, tok) != HEED_OK) {
        fprintf(stderr, "heed act-search: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    const int64_t n = (hi - lo + 1) * H, items = set->n_items;
    heads = calloc((size_t)n, sizeof *heads);
    if (!heads) {
        fprintf(stderr, "heed act-search: out of memory\n");
        goto done;
    }
    heed_mc_stats base, together = {0};
    const int progress = isatty(STDERR_FILENO); /* a search on a large model takes long */
    heed_status s = eval_heads(ctx, m, &base, set, NULL, 0, beta);
    for (int64_t e = 0; e < n && s == HEED_OK; e++) {
        heads[e].layer = lo + e / H, heads[e].head = e % H;
        if (progress)
            fprintf(stderr, "\rheed act-search: head %lld.%lld (%lld of %lld) ", (long long)heads[e].layer,
                    (long long)heads[e].head, (long long)e + 1, (long long)n);
        s = eval_heads(ctx, m, &heads[e].st, set, &heads[e], 1, beta);
    }
    if (progress) fprintf(stderr, "\r%60s\r", "");
    const int64_t k = s == HEED_OK ? heed_act_rank(heads, n, &base, threshold) : 0;
    if (s == HEED_OK && k > 0) s = eval_heads(ctx, m, &together, set, heads, k, beta);
    if (s != HEED_OK) {
        fprintf(stderr, "heed act-search: %s\n", s == HEED_ERR_NOMEM ? "out of memory" : heed_ctx_error(ctx));
        goto done;
    }
    char b[32], t[32];
    shortest(b, sizeof b, beta);
    shortest(t, sizeof t, threshold);
    printf("ACT head search: %lld items, layers %lld-%lld (%lld heads), beta %s, threshold %s\n", (long long)items,
           (long long)lo, (long long)hi, (long long)n, b, t);
    printf("baseline: accuracy %.4f (%lld/%lld), per-token %.4f, mean margin %.4f\n", frac(base.correct, items),
           (long long)base.correct, (long long)items, frac(base.correct_norm, items), mean_margin(&base));
    printf("%4s %5s %4s %8s %8s %9s %9s %9s  %s\n", "rank", "layer", "head", "accuracy", "gain", "per-token",
           "margin", "m-gain", "selected");
    for (int64_t e = 0; e < n; e++) {
        const heed_mc_stats *st = &heads[e].st;
        printf("%4lld %5lld %4lld %8.4f %+8.4f %9.4f %9.4f %+9.4f  %s\n", (long long)e + 1, (long long)heads[e].layer,
               (long long)heads[e].head, frac(st->correct, items), frac(st->correct - base.correct, items),
               frac(st->correct_norm, items), mean_margin(st), mean_margin(st) - mean_margin(&base),
               heads[e].selected ? "yes" : "no");
    }
    if (k == 0) printf("selected: none (no head's accuracy gain is above %s)\n", t);
    else {
        printf("selected %lld head%s together: accuracy %.4f (%lld/%lld, %+.4f), per-token %.4f, mean margin %.4f\n",
               (long long)k, k == 1 ? "" : "s", frac(together.correct, items), (long long)together.correct,
               (long long)items, frac(together.correct - base.correct, items), frac(together.correct_norm, items),
               mean_margin(&together));
        printf("flags:");
        for (int64_t e = 0; e < k; e++)
            printf(" --intervene act:%lld.%lld:%s", (long long)heads[e].layer, (long long)heads[e].head, b);
        printf("\n");
    }
    if (json) {
        printf("{\"items\": %lld, \"beta\": %s, \"threshold\": %s, \"layers\": [%lld, %lld], \"baseline\": {",
               (long long)items, b, t, (long long)lo, (long long)hi);
        json_stats(&base);
        printf("}, \"heads\": [");
        for (int64_t e = 0; e < n; e++) {
            printf("%s{\"rank\": %lld, \"layer\": %lld, \"head\": %lld, ", e ? ", " : "", (long long)e + 1,
                   (long long)heads[e].layer, (long long)heads[e].head);
            json_stats(&heads[e].st);
            printf(", \"gain\": %.9g, \"margin_gain\": %.9g, \"selected\": %s}",
                   frac(heads[e].st.correct - base.correct, items), mean_margin(&heads[e].st) - mean_margin(&base),
                   heads[e].selected ? "true" : "false");
        }
        printf("], \"selected\": {\"count\": %lld", (long long)k);
        if (k > 0) {
            printf(", ");
            json_stats(&together);
        }
        printf(", \"intervene\": [");
        for (int64_t e = 0; e < k; e++)
            printf("%s\"act:%lld.%lld:%s\"", e ? ", " : "", (long long)heads[e].layer, (long long)heads[e].head, b);
        printf("]}}\n");
    }
    rc = 0;
done:
    free(heads);
    heed_mc_free(set);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
