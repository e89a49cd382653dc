/* heads.c — `heed heads`: one forward pass of a prompt (or of the induction test input) observed through
 * heed_model_set_probe, every (layer, head) scored by src/probe/scores.c (definitions in docs/analysis.md)
 * and printed as a table ranked by score, or as JSON with one entry per (layer, head). */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SINK, HIDDEN_SINK, INDUCTION, PREV_TOKEN, DUPLICATE, ENTROPY, DORMANT, LAYER_SIM, RETRIEVAL, N_SCORES };
static const char *SCORE_NAMES[N_SCORES] = {"sink", "hidden-sink", "induction", "prev-token", "duplicate",
                                            "entropy", "dormant", "layer-sim", "retrieval"};
#define MAX_FIELDS 3

/* One scored head: score, then the score's own fields, and for hidden-sink the sink positions. */
typedef struct head_row {
    int64_t layer, head;
    double score, field[MAX_FIELDS];
    int64_t *sinks, n_sinks;
} head_row;

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed heads [-m MODEL] --score SCORE [--json] [-p TEXT | --ids IDS] [-n N] [--seed S]\n"
               "                  [--threshold X] [--needle TEXT | --needle-ids IDS] [--threads N]\n"
               "  Runs one forward pass observing every attention head and ranks the heads by SCORE:\n"
               "    sink         mean attention on the first token, over the queries (alpha_0); also Sink^eps,\n"
               "                 the share of heads with alpha_0 > --threshold (default 0.3)\n"
               "    hidden-sink  ACT: largest s_j = sum_i A[i,j] / (T - j) over j >= 1; fields: its position and\n"
               "                 the positions with s_j > --threshold (default 0.1)\n"
               "    induction    TransformerLens head_detector: sum(A * P) / sum(A), P the induction pattern;\n"
               "    prev-token   field row_mean: the mean over rows where P has an entry (1 for a perfect head)\n"
               "    duplicate\n"
               "    entropy      mean over queries of the attention entropy (nats)\n"
               "    dormant      first-token share; fields: value_drain (first value norm / the others'),\n"
               "                 resid_peak (first residual norm / the others', entering the layer),\n"
               "                 ablation_change (mean relative change of the last hidden state, head zeroed)\n"
               "    layer-sim    cosine of the head's map with the same head's in the previous layer (layers\n"
               "                 >= 1); field layer_cosine: of all heads' maps of the two layers\n"
               "    retrieval    Retrieval Head: greedy decoding of -n tokens (default the needle's length) after\n"
               "                 the input, which holds the needle (its first occurrence is used); a head scores\n"
               "                 1/|needle| each step its top-1 key lies in the needle and holds the generated\n"
               "                 token. Also prints the generated ids and their ROUGE-1 recall of the needle\n"
               "  Input: TEXT (encoded with MODEL/tokenizer.json) or IDS; induction, prev-token and duplicate\n"
               "  default to [BOS, r_1..r_n, r_1..r_n] with n = -n (default 50) ids drawn uniformly from the\n"
               "  vocabulary by --seed (default 0). --json prints one object per head, in rank order.\n");
    return rc;
}

/* Retrieval Head on one input (heed_retrieval_decode, greedy, n_gen steps): every head's count into rows [S];
 * prints the generated ids and their ROUGE-1 recall of the needle ids [start, start + len) to out. Returns 1,
 * or 0 after printing why. */
static int retrieval(head_row *rows, heed_ctx *ctx, heed_model *m, const int32_t *ids, int64_t T, int64_t start,
                     int64_t len, int64_t n_gen, FILE *out)
{
    const heed_config *c = heed_model_config(m);
    int64_t S = c->n_layers * c->n_heads, n = 0;
    float *score = calloc((size_t)S, sizeof(float));
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)(n_gen + 1));
    if (!score || !gen) {
        fprintf(stderr, "heed heads: out of memory\n");
        free(score), free(gen);
        return 0;
    }
    heed_status st = heed_retrieval_decode(ctx, m, gen, &n, score, ids, T, start, len, n_gen, 0);
    if (st != HEED_OK) fprintf(stderr, "heed heads: %s\n", heed_ctx_error(ctx));
    for (int64_t i = 0; i < S; i++) rows[i] = (head_row){.layer = i / c->n_heads, .head = i % c->n_heads, .score = score[i]};
    if (st == HEED_OK) {
        fprintf(out, "needle at [%lld, %lld) of %lld tokens; generated [", (long long)start, (long long)(start + len),
                (long long)T);
        for (int64_t g = 0; g < n; g++) fprintf(out, "%s%d", g ? "," : "", gen[g]);
        fprintf(out, "]; needle recall %.6g\n", heed_rouge1_recall(ids + start, len, gen, n));
    }
    free(score), free(gen);
    return st == HEED_OK;
}

static int by_score(const void *a, const void *b)
{
    const head_row *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->head > y->head) - (x->head < y->head);
}

static const char *const FIELD_NAMES[N_SCORES][MAX_FIELDS] = {
    [HIDDEN_SINK] = {"max_pos"},
    [INDUCTION] = {"row_mean"},
    [PREV_TOKEN] = {"row_mean"},
    [DUPLICATE] = {"row_mean"},
    [DORMANT] = {"value_drain", "resid_peak", "ablation_change"},
    [LAYER_SIM] = {"layer_cosine"},
};

static void print_rows(const head_row *rows, int64_t n, int score, int json)
{
    const char *const *fields = FIELD_NAMES[score];
    if (json) printf("[\n");
    else {
        printf("%4s %5s %4s %12s", "rank", "layer", "head", "score");
        for (int f = 0; f < MAX_FIELDS && fields[f]; f++) printf(" %15s", fields[f]);
        printf("%s\n", score == HIDDEN_SINK ? "  sinks" : "");
    }
    for (int64_t r = 0; r < n; r++) {
        const head_row *h = &rows[r];
        if (json) printf("  {\"rank\": %lld, \"layer\": %lld, \"head\": %lld, \"score\": %.9g", (long long)r + 1,
                         (long long)h->layer, (long long)h->head, h->score);
        else printf("%4lld %5lld %4lld %12.6f", (long long)r + 1, (long long)h->layer, (long long)h->head, h->score);
        for (int f = 0; f < MAX_FIELDS && fields[f]; f++) {
            if (json) printf(", \"%s\": %.9g", fields[f], h->field[f]);
            else printf(" %15.6g", h->field[f]);
        }
        if (score == HIDDEN_SINK) {
            printf(json ? ", \"sinks\": [" : "  ");
            for (int64_t i = 0; i < h->n_sinks; i++) printf("%s%lld", i ? "," : "", (long long)h->sinks[i]);
            printf(json ? "]" : "");
        }
        if (json) printf("}%s\n", r + 1 < n ? "," : "");
        else printf("\n");
    }
    if (json) printf("]\n");
}

/* Observed forward state: what the probe captured for every head. */
typedef struct observed {
    float **probs; /* [S] of [T, T], only for scores over maps */
    float *recv, *entropy, *v_norm, *resid_norm; /* [S, T], [S, T], [S, T], [NL + 1, T] */
    float *last;   /* [T, hidden] the last hidden state (dormant's reference) */
} observed;

/* Scores every head into rows [S]; returns 1, or 0 after printing why. */
static int score_heads(head_row *rows, heed_ctx *ctx, heed_model *m, const observed *ob, const int32_t *ids,
                       int64_t T, int score, double threshold)
{
    const heed_config *c = heed_model_config(m);
    int64_t NL = c->n_layers, H = c->n_heads, d = c->hidden, S = NL * H;
    float *alpha = malloc(sizeof(float) * (size_t)T), *hid = NULL, *scale = NULL;
    float **hs = NULL;
    int ok = alpha != NULL;
    if (score == DORMANT) {
        hid = malloc(sizeof(float) * (size_t)(T * d));
        scale = malloc(sizeof(float) * (size_t)S);
        hs = calloc((size_t)NL + 1, sizeof *hs);
        ok = ok && hid && scale && hs;
        for (int64_t i = 0; ok && i < S; i++) scale[i] = 1.0f;
        if (ok) hs[NL] = hid;
    }
    for (int64_t s = 0; s < S; s++) rows[s] = (head_row){.layer = s / H, .head = s % H};
    for (int64_t s = 0; s < S; s++) ok = ok && (score != HIDDEN_SINK || (rows[s].sinks = malloc(sizeof(int64_t) * (size_t)T)));
    if (!ok) {
        fprintf(stderr, "heed heads: out of memory\n");
        free(alpha), free(hid), free(scale), free(hs);
        return 0;
    }
    double layer_cos = 0;
    for (int64_t s = 0; ok && s < S; s++) {
        head_row *r = &rows[s];
        int64_t L = r->layer;
        const float *recv = ob->recv + s * T;
        if (score == SINK || score == DORMANT) {
            heed_score_sink_alpha(alpha, recv, T, c->causal);
            r->score = alpha[0];
        }
        if (score == DORMANT) {
            r->field[0] = T > 1 ? heed_score_first_ratio(ob->v_norm + s * T, T) : 0.0;
            r->field[1] = T > 1 ? heed_score_first_ratio(ob->resid_norm + L * T, T) : 0.0;
            scale[s] = 0.0f; /* the head zeroed: the last hidden state against the plain run's */
            heed_model_trace tr = {NULL, hs};
            ok = heed_model_set_head_scale(ctx, m, scale) == HEED_OK &&
                 heed_model_forward(ctx, m, NULL, &tr, ids, NULL, T, 0, 0) == HEED_OK;
            scale[s] = 1.0f;
            r->field[2] = heed_score_output_change(ob->last, hid, T, d);
        } else if (score == HIDDEN_SINK) {
            heed_score_sink_alpha(alpha, recv, T, c->causal);
            r->n_sinks = heed_score_hidden_sinks(r->sinks, alpha, T, threshold);
            r->field[0] = -1; /* no key past the first */
            for (int64_t j = 1; j < T; j++)
                if (r->field[0] < 0 || alpha[j] > r->score) r->score = alpha[j], r->field[0] = (double)j;
        } else if (score == INDUCTION || score == PREV_TOKEN || score == DUPLICATE) {
            heed_pattern k = score == INDUCTION ? HEED_PATTERN_INDUCTION
                             : score == PREV_TOKEN ? HEED_PATTERN_PREV_TOKEN : HEED_PATTERN_DUPLICATE;
            r->score = heed_score_pattern(&r->field[0], ob->probs[s], ids, T, k);
        } else if (score == ENTROPY) {
            for (int64_t t = 0; t < T; t++) r->score += ob->entropy[s * T + t];
            r->score /= (double)T;
        } else if (score == LAYER_SIM && L > 0) {
            r->score = heed_score_cosine(ob->probs[s - H], ob->probs[s], T * T);
            if (r->head == 0) { /* the cosine of the layers' stacked maps, from per-head sums */
                double xy = 0, xx = 0, yy = 0;
                for (int64_t h = 0; h < H; h++) {
                    const float *x = ob->probs[(L - 1) * H + h], *y = ob->probs[L * H + h];
                    for (int64_t i = 0; i < T * T; i++)
                        xy += (double)x[i] * y[i], xx += (double)x[i] * x[i], yy += (double)y[i] * y[i];
                }
                layer_cos = xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 0.0;
            }
            r->field[0] = layer_cos;
        }
    }
    if (!ok) fprintf(stderr, "heed heads: %s\n", heed_ctx_error(ctx));
    if (score == DORMANT) heed_model_set_head_scale(ctx, m, NULL);
    free(alpha), free(hid), free(scale), free(hs);
    return ok;
}

int cmd_heads(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *ids_arg = NULL, *score_arg = NULL, *n_arg = NULL, *seed_arg = NULL,
               *thr_arg = NULL, *threads_arg = NULL, *needle_text = NULL, *needle_arg = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        const char **str = !strcmp(a, "-m") || !strcmp(a, "--model") ? &model
                           : !strcmp(a, "-p") || !strcmp(a, "--prompt") ? &text
                           : !strcmp(a, "--ids") ? &ids_arg
                           : !strcmp(a, "--score") ? &score_arg
                           : !strcmp(a, "-n") ? &n_arg
                           : !strcmp(a, "--seed") ? &seed_arg
                           : !strcmp(a, "--threshold") ? &thr_arg
                           : !strcmp(a, "--threads") ? &threads_arg
                           : !strcmp(a, "--needle") ? &needle_text
                           : !strcmp(a, "--needle-ids") ? &needle_arg
                           : NULL;
        if (!str || !v) {
            fprintf(stderr, "heed heads: %s '%s'\n", str ? "no value after" : "unknown option", a);
            return usage(stderr, 2);
        }
        i++; /* the value */
        *str = v;
    }
    int score = -1;
    for (int k = 0; score_arg && k < N_SCORES; k++)
        if (!strcmp(score_arg, SCORE_NAMES[k])) score = k;
    if (score < 0) {
        fprintf(stderr, "heed heads: --score %s: expected one of sink, hidden-sink, induction, prev-token, "
                        "duplicate, entropy, dormant, layer-sim, retrieval\n", score_arg ? score_arg : "(missing)");
        return 2;
    }
    double n_rep = 50, seed = 0, threshold = score == HIDDEN_SINK ? 0.1 : 0.3;
    int threads = 0;
    if ((n_arg && (!cli_parse_num(&n_rep, n_arg) || n_rep < 1 || n_rep > 100000 || n_rep != floor(n_rep))) ||
        (seed_arg && (!cli_parse_num(&seed, seed_arg) || seed < 0 || seed > 9007199254740992.0 || seed != floor(seed))) ||
        (thr_arg && (!cli_parse_num(&threshold, thr_arg) || !isfinite(threshold))) ||
        (threads_arg && !cli_parse_threads(&threads, threads_arg))) {
        fprintf(stderr, "heed heads: -n takes a whole number 1..100000, --seed a whole number >= 0, --threshold a "
                        "number, --threads 1..4096\n");
        return 2;
    }
    if (!cli_check_model_kv(&model, NULL, "heads")) return 2;
    if (text && ids_arg) {
        fprintf(stderr, "heed heads: give -p TEXT or --ids IDS, not both\n");
        return 2;
    }
    int pattern = score == INDUCTION || score == PREV_TOKEN || score == DUPLICATE;
    if (!text && !ids_arg && !pattern) {
        fprintf(stderr, "heed heads: --score %s needs an input: -p TEXT or --ids IDS\n", SCORE_NAMES[score]);
        return 2;
    }
    if ((score == RETRIEVAL) != (needle_text || needle_arg) || (needle_text && needle_arg)) {
        fprintf(stderr, "heed heads: --needle TEXT or --needle-ids IDS (one of them) goes with --score retrieval, "
                        "and only there\n");
        return 2;
    }
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    int32_t *ids = NULL, *needle = NULL;
    int64_t T = 0, S = 0, n_needle = 0;
    head_row *rows = NULL;
    observed ob = {0};
    int rc = 1;
    if (!cli_create_ctx(&ctx, threads, "heads")) goto done;
    if (!cli_load_model(&m, ctx, model, NAN, NAN, "heads")) goto done;
    const heed_config *c = heed_model_config(m);
    const heed_gen_config *gen = heed_model_gen_config(m);
    if (text || ids_arg) {
        if (!cli_load_tokenizer(&tok, ctx, model, text != NULL, "heads") ||
            !cli_input_ids(&ids, &T, ctx, tok, text, ids_arg, "heads"))
            goto done;
    } else {
        if (gen->bos_id < 0 || gen->bos_id >= c->vocab || c->vocab < 3) {
            fprintf(stderr, "heed heads: the model's configs name no BOS id in its vocabulary: give the input "
                            "with --ids\n");
            goto done;
        }
        T = 2 * (int64_t)n_rep + 1;
        if (!(ids = malloc(sizeof(int32_t) * (size_t)T))) goto oom;
        heed_induction_input(ids, (int32_t)gen->bos_id, (int64_t)n_rep, 0, (int32_t)c->vocab, (uint64_t)seed);
    }
    if (T < 1) {
        fprintf(stderr, "heed heads: no tokens\n");
        goto done;
    }
    int64_t NL = c->n_layers, H = c->n_heads, d = c->hidden;
    S = NL * H;
    if (score == RETRIEVAL) {
        /* the needle's ids (TEXT encoded without special tokens) and their first occurrence in the input */
        if (needle_arg && !cli_parse_ids(&needle, &n_needle, needle_arg)) {
            fprintf(stderr, "heed heads: --needle-ids: expected comma-separated integers, got '%s'\n", needle_arg);
            goto done;
        }
        if (needle_text && ((!tok && !cli_load_tokenizer(&tok, ctx, model, 1, "heads")) ||
                            heed_tokenize(ctx, &needle, &n_needle, tok, needle_text, strlen(needle_text),
                                          HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD) != HEED_OK)) {
            if (tok) fprintf(stderr, "heed heads: --needle: %s\n", heed_ctx_error(ctx));
            goto done;
        }
        int64_t at = -1;
        for (int64_t i = 0; n_needle > 0 && at < 0 && i + n_needle <= T; i++)
            if (!memcmp(ids + i, needle, sizeof(int32_t) * (size_t)n_needle)) at = i;
        if (at < 0) {
            fprintf(stderr, "heed heads: the needle's %lld ids do not occur in the input's %lld (a text tokenized "
                            "apart may split differently: give --needle-ids)\n", (long long)n_needle, (long long)T);
            goto done;
        }
        rows = calloc((size_t)S, sizeof *rows);
        if (!rows) goto oom;
        FILE *summary = json ? stderr : stdout;
        if (!retrieval(rows, ctx, m, ids, T, at, n_needle, n_arg ? (int64_t)n_rep : n_needle, summary)) goto done;
        qsort(rows, (size_t)S, sizeof *rows, by_score);
        print_rows(rows, S, score, json);
        rc = 0;
        goto done;
    }
    int maps = pattern || score == LAYER_SIM;
    rows = calloc((size_t)S, sizeof *rows);
    ob.recv = calloc((size_t)(S * T), sizeof(float));
    ob.entropy = malloc(sizeof(float) * (size_t)(S * T));
    ob.v_norm = malloc(sizeof(float) * (size_t)(S * T));
    ob.resid_norm = malloc(sizeof(float) * (size_t)((NL + 1) * T));
    ob.last = malloc(sizeof(float) * (size_t)(T * d));
    ob.probs = maps ? calloc((size_t)S, sizeof *ob.probs) : NULL;
    int ok = rows && ob.recv && ob.entropy && ob.v_norm && ob.resid_norm && ob.last && (!maps || ob.probs);
    for (int64_t s = 0; ok && maps && s < S; s++) ok = (ob.probs[s] = malloc(sizeof(float) * (size_t)(T * T))) != NULL;
    if (!ok) goto oom;
    heed_probe pr = {NULL, ob.probs, NULL, NULL, NULL, NULL, ob.v_norm, NULL, ob.entropy, NULL, ob.recv, T, ob.resid_norm};
    float **hs = calloc((size_t)NL + 1, sizeof *hs);
    if (!hs) goto oom;
    hs[NL] = ob.last;
    heed_model_trace tr = {NULL, hs};
    heed_status st = heed_model_set_probe(ctx, m, &pr);
    if (st == HEED_OK) st = heed_model_forward(ctx, m, NULL, &tr, ids, NULL, T, 0, 0);
    heed_model_set_probe(ctx, m, NULL);
    free(hs);
    if (st != HEED_OK) {
        fprintf(stderr, "heed heads: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    if (!score_heads(rows, ctx, m, &ob, ids, T, score, threshold)) goto done;
    int64_t n_rows = S;
    if (score == LAYER_SIM) { /* layer 0 has no previous layer */
        memmove(rows, rows + H, sizeof *rows * (size_t)(S - H));
        n_rows = S - H;
    }
    qsort(rows, (size_t)n_rows, sizeof *rows, by_score);
    print_rows(rows, n_rows, score, json);
    if (score == SINK) {
        float *a0 = malloc(sizeof(float) * (size_t)S);
        if (!a0) goto oom;
        for (int64_t s = 0; s < S; s++) a0[s] = (float)rows[s].score;
        double share = heed_score_sink_eps(a0, S, threshold);
        fprintf(json ? stderr : stdout, "Sink^%g = %.6g: %lld of %lld heads put alpha_0 > %g on the first token "
                "(%lld tokens)\n", threshold, share, (long long)llround(share * (double)S), (long long)S, threshold,
                (long long)T);
        free(a0);
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "heed heads: out of memory\n");
done:
    for (int64_t s = 0; rows && s < S; s++) free(rows[s].sinks);
    for (int64_t s = 0; ob.probs && s < S; s++) free(ob.probs[s]);
    free(ob.probs), free(ob.recv), free(ob.entropy), free(ob.v_norm), free(ob.resid_norm), free(ob.last);
    free(rows);
    free(ids);
    free(needle);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
