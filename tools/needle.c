/* needle.c — `heed needle`: the needle-in-a-haystack grid. For each context length and depth, a prompt of
 * haystack with a needle sentence at that depth and a question at the end (heed_needle_prompt), greedy
 * decoding (heed_retrieval_decode), and the ROUGE-1 recall of the answer's words in the generated text; a table
 * (rows depths, columns lengths), one JSON line, optionally a PNG heatmap and the Retrieval-Head scores. */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"
#include "io/io.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The default haystack: plain sentences written for heed, with no number in them. */
static const char HAYSTACK[] =
    "The road to the village runs beside a slow river. "
    "In summer the water is low and clear. "
    "Farmers bring their carts to the market square. "
    "An old stone well stands under a tree there. "
    "The baker opens his door before the sun is up. "
    "The smell of bread fills the narrow streets. "
    "Children play by the mill near the bridge. "
    "Their mothers wash clothes on the flat rocks. "
    "In the evening the bell of the small church rings. "
    "The men come home from the fields for supper. "
    "When the autumn rain comes, the road turns to mud. "
    "Travellers then stay at the inn by the bridge. "
    "The innkeeper keeps a fire in the long room. "
    "He tells stories of the winters of his youth. "
    "On clear nights the shepherds count the stars. "
    "They sing to their sheep on the hills above the valley. ";
static const char NEEDLE[] = " The secret number is 7241.";
static const char QUESTION[] = " What is the secret number? The secret number is";
static const char ANSWER[] = "7241";
#define RECALLED 0.5 /* the Retrieval-Head paper's cut: cells whose recall exceeds it count for the head scores */
#define TOP_HEADS 10 /* heads listed in the table */

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed needle [-m MODEL] [--ctx-lens L1,L2,...] [--depths D1,D2,...] [--kv full]\n"
               "                   [--haystack FILE] [--needle TEXT] [--question TEXT] [--answer TEXT] [-n N]\n"
               "                   [--json] [--png FILE] [--heads] [--intervene SPEC]... [--threads N]\n"
               "  Needle in a haystack: for each context length L and depth D (percent), the prompt is [BOS if the\n"
               "  tokenizer adds one] + haystack + needle + haystack + question, exactly L tokens, the haystack\n"
               "  repeated as needed and the needle placed at D%% of it (moved back to a sentence end);\n"
               "  then N greedy tokens (default: the needle's token count; EOS stops) and their ROUGE-1 recall of\n"
               "  the answer's words (rouge_score's tokenizer, no stemmer).\n"
               "  --ctx-lens: default 4 lengths evenly up to min(max_position_embeddings, 4096)\n"
               "  --depths: default 0,25,50,75,100\n"
               "  --haystack FILE: UTF-8 text (default: a few sentences built in); --needle, --question, --answer:\n"
               "    default \"%s\", \"%s\", \"%s\" (--needle alone: the\n"
               "    answer is the needle)\n"
               "  Output: the table (rows depths, columns lengths) and, as the last stdout line, one JSON object\n"
               "  with every cell; --json: the table goes to stderr. --png FILE: the grid as a heatmap (0..1).\n"
               "  --heads: Retrieval-Head scores of every head, averaged over the cells whose recall is > %g; the\n"
               "  top %d are listed and all are in the JSON.\n"
               "  --kv: the KV cache policy; only `full` exists so far.\n"
               CLI_INTERVENE_HELP,
            NEEDLE, QUESTION, ANSWER, RECALLED, TOP_HEADS);
    return rc;
}

/* Comma-separated numbers of option opt into *v [*n] (malloc'd; the caller frees it, also on failure),
 * each within [lo, hi] and whole when whole is set. Returns 1, or 0 after printing why. */
static int parse_list(double **v, int64_t *n, const char *s, const char *opt, double lo, double hi, int whole)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *n = 0;
    if (!(*v = malloc(cap * sizeof **v))) {
        fprintf(stderr, "heed needle: out of memory\n");
        return 0;
    }
    for (const char *p = s;;) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(x >= lo && x <= hi) || (whole && x != floor(x))) {
            fprintf(stderr, "heed needle: %s '%s': expected comma-separated %s from %g to %g\n", opt, s,
                    whole ? "whole numbers" : "numbers", lo, hi);
            return 0;
        }
        (*v)[(*n)++] = x;
        if (!*end) return 1;
        p = end + 1;
    }
}

/* text encoded without special tokens into *ids [*n]; what names it in messages. Returns 1, or 0 after
 * printing why (also when it encodes to nothing). */
static int encode(int32_t **ids, int64_t *n, heed_ctx *ctx, const heed_tokenizer *tok, const char *text, size_t len,
                  const char *what)
{
    if (heed_tokenize(ctx, ids, n, tok, text, len, HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD) != HEED_OK) {
        fprintf(stderr, "heed needle: %s: %s\n", what, heed_ctx_error(ctx));
        return 0;
    }
    if (*n == 0) fprintf(stderr, "heed needle: %s: no tokens\n", what);
    return *n > 0;
}

/* breaks [n] out: 1 before haystack token i when the token before it (cyclically: the haystack repeats)
 * decodes to text ending a sentence (. ! ? or a newline, closing quotes and spaces allowed after it).
 * Returns the number of breaks, or -1 after printing why. */
static int64_t sentence_breaks(uint8_t *breaks, heed_ctx *ctx, const heed_tokenizer *tok, const int32_t *hay, int64_t n)
{
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        char *t = NULL;
        size_t len = 0;
        if (heed_detokenize(ctx, &t, &len, tok, &hay[(i + n - 1) % n], 1, 1) != HEED_OK) {
            fprintf(stderr, "heed needle: haystack: %s\n", heed_ctx_error(ctx));
            return -1;
        }
        while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '"' || t[len - 1] == '\'' || t[len - 1] == ')')) len--;
        breaks[i] = len > 0 && strchr(".!?\n", t[len - 1]) != NULL;
        count += breaks[i];
        free(t);
    }
    return count;
}

/* One grid cell's result. */
typedef struct cell {
    int64_t ctx_len, needle_at, n_gen;
    double depth, recall;
    int32_t *gen;
    char *text;
} cell;

typedef struct head_score {
    int64_t layer, head;
    double score;
} head_score;

static int by_score(const void *a, const void *b)
{
    const head_score *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->head > y->head) - (x->head < y->head);
}

static void print_table(FILE *f, const cell *cells, const double *lens, int64_t n_len, const double *depths,
                        int64_t n_depth, const char *answer)
{
    fprintf(f, "needle recall: ROUGE-1 recall of \"%s\" in the generated text (rows: depth %%, columns: tokens)\n",
            answer);
    fprintf(f, "%7s", "depth");
    for (int64_t j = 0; j < n_len; j++) fprintf(f, " %7lld", (long long)lens[j]);
    fprintf(f, "\n");
    double total = 0;
    for (int64_t i = 0; i < n_depth; i++) {
        fprintf(f, "%7g", depths[i]);
        for (int64_t j = 0; j < n_len; j++) fprintf(f, " %7.3f", cells[j * n_depth + i].recall);
        fprintf(f, "\n");
    }
    fprintf(f, "%7s", "mean");
    for (int64_t j = 0; j < n_len; j++) {
        double s = 0;
        for (int64_t i = 0; i < n_depth; i++) s += cells[j * n_depth + i].recall;
        total += s;
        fprintf(f, " %7.3f", s / (double)n_depth);
    }
    fprintf(f, "\noverall mean recall %.4f over %lld cells\n", total / (double)(n_len * n_depth),
            (long long)(n_len * n_depth));
}

/* The JSON object of the run, printed on one line; heads NULL without --heads. Returns 1, or 0 when out of
 * memory. */
static int print_json(const char *model, const char *needle, const char *question, const char *answer, int64_t n_gen,
                      int32_t bos, int64_t n_hay, int64_t n_needle, const cell *cells, const double *lens,
                      int64_t n_len,
                      const double *depths, int64_t n_depth, const head_score *heads, int64_t n_heads,
                      int64_t n_recalled)
{
    cJSON *o = cJSON_CreateObject(), *cl = NULL;
    int ok = o && cJSON_AddStringToObject(o, "model", model) && cJSON_AddStringToObject(o, "kv", "full") &&
         cJSON_AddStringToObject(o, "needle", needle) && cJSON_AddStringToObject(o, "question", question) &&
         cJSON_AddStringToObject(o, "answer", answer) && cJSON_AddNumberToObject(o, "n", (double)n_gen) &&
         cJSON_AddBoolToObject(o, "bos", bos >= 0) && cJSON_AddNumberToObject(o, "haystack_tokens", (double)n_hay) &&
         cJSON_AddNumberToObject(o, "needle_tokens", (double)n_needle) &&
         cJSON_AddItemToObject(o, "ctx_lens", cJSON_CreateDoubleArray(lens, (int)n_len)) &&
         cJSON_AddItemToObject(o, "depths", cJSON_CreateDoubleArray(depths, (int)n_depth)) &&
         (cl = cJSON_AddArrayToObject(o, "cells"));
    double total = 0;
    for (int64_t k = 0; ok && k < n_len * n_depth; k++) {
        const cell *c = &cells[k];
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(cl, e) && cJSON_AddNumberToObject(e, "ctx_len", (double)c->ctx_len) &&
             cJSON_AddNumberToObject(e, "depth", c->depth) &&
             cJSON_AddNumberToObject(e, "needle_at", (double)c->needle_at) &&
             cJSON_AddNumberToObject(e, "recall", c->recall) &&
             cJSON_AddItemToObject(e, "ids", cJSON_CreateIntArray((const int *)c->gen, (int)c->n_gen)) &&
             cJSON_AddStringToObject(e, "text", c->text);
        total += c->recall;
    }
    ok = ok && cJSON_AddNumberToObject(o, "mean_recall", total / (double)(n_len * n_depth));
    if (ok && heads) {
        cJSON *h = cJSON_AddObjectToObject(o, "heads"), *sc = NULL;
        ok = h && cJSON_AddNumberToObject(h, "recall_above", RECALLED) &&
             cJSON_AddNumberToObject(h, "cells", (double)n_recalled) && (sc = cJSON_AddArrayToObject(h, "scores"));
        for (int64_t r = 0; ok && n_recalled > 0 && r < n_heads; r++) {
            cJSON *e = cJSON_CreateObject();
            ok = e && cJSON_AddItemToArray(sc, e) && cJSON_AddNumberToObject(e, "rank", (double)(r + 1)) &&
                 cJSON_AddNumberToObject(e, "layer", (double)heads[r].layer) &&
                 cJSON_AddNumberToObject(e, "head", (double)heads[r].head) &&
                 cJSON_AddNumberToObject(e, "score", heads[r].score);
        }
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
    return s != NULL;
}

int cmd_needle(int argc, char **argv)
{
    const char *model = NULL, *lens_arg = NULL, *depths_arg = NULL, *kv = NULL, *hay_file = NULL, *needle = NULL,
               *question = NULL, *answer = NULL, *n_arg = NULL, *png = NULL, *threads_arg = NULL;
    int json = 0, want_heads = 0;
    cli_interventions iv = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--json") || !strcmp(a, "--heads")) {
            if (!strcmp(a, "--json")) json = 1;
            else want_heads = 1;
            continue;
        }
        if (!strcmp(a, "--intervene")) {
            if (!cli_add_intervention(&iv, v, "needle")) return usage(stderr, 2);
            i++;
            continue;
        }
        const char **str = !strcmp(a, "-m") || !strcmp(a, "--model") ? &model
                           : !strcmp(a, "--ctx-lens") ? &lens_arg
                           : !strcmp(a, "--depths") ? &depths_arg
                           : !strcmp(a, "--kv") ? &kv
                           : !strcmp(a, "--haystack") ? &hay_file
                           : !strcmp(a, "--needle") ? &needle
                           : !strcmp(a, "--question") ? &question
                           : !strcmp(a, "--answer") ? &answer
                           : !strcmp(a, "-n") ? &n_arg
                           : !strcmp(a, "--png") ? &png
                           : !strcmp(a, "--threads") ? &threads_arg
                           : NULL;
        if (!str || !v) {
            fprintf(stderr, "heed needle: %s '%s'\n", str ? "no value after" : "unknown option", a);
            return usage(stderr, 2);
        }
        i++; /* the value */
        *str = v;
    }
    double *lens = NULL, *depths = NULL, n_num = 0;
    int64_t n_len = 0, n_depth = 0;
    int threads = 0, rc = 2;
    if ((lens_arg && !parse_list(&lens, &n_len, lens_arg, "--ctx-lens", 1, 1e7, 1)) ||
        !parse_list(&depths, &n_depth, depths_arg ? depths_arg : "0,25,50,75,100", "--depths", 0, 100, 0))
        goto args;
    if ((n_arg && (!cli_parse_num(&n_num, n_arg) || n_num < 1 || n_num > 100000 || n_num != floor(n_num))) ||
        (threads_arg && !cli_parse_threads(&threads, threads_arg))) {
        fprintf(stderr, "heed needle: -n takes a whole number 1..100000, --threads 1..4096\n");
        goto args;
    }
    if (!needle && (question || answer)) {
        fprintf(stderr, "heed needle: --question and --answer go with --needle (the defaults belong together)\n");
        goto args;
    }
    if (!cli_check_model_kv(&model, kv, "needle")) goto args;
    if (!needle) needle = NEEDLE, question = QUESTION, answer = ANSWER;
    if (!question) question = "";
    if (!answer) answer = needle;

    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    char *hay_text = NULL;
    size_t hay_len = sizeof HAYSTACK - 1;
    int32_t *hay = NULL, *nd = NULL, *qs = NULL, *prompt = NULL;
    uint8_t *breaks = NULL;
    int64_t n_hay = 0, n_nd = 0, n_qs = 0, S = 0, n_recalled = 0, n_cells = 0;
    float *score = NULL, *sum = NULL, *grid = NULL;
    cell *cells = NULL;
    head_score *heads = NULL;
    rc = 1;
    if (!cli_create_ctx(&ctx, threads, "needle")) goto done;
    if (hay_file && heed_read_file(ctx, &hay_text, &hay_len, hay_file, (size_t)1 << 28) != HEED_OK) {
        fprintf(stderr, "heed needle: --haystack: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    if (!cli_load_model(&m, ctx, model, NAN, NAN, "needle") || !cli_apply_interventions(&iv, ctx, m, "needle") ||
        !cli_load_tokenizer(&tok, ctx, model, 1, "needle"))
        goto done;
    const heed_config *c = heed_model_config(m);
    if (!heed_model_has_lm_head(m)) {
        fprintf(stderr, "heed needle: %s is an encoder without an LM head: it cannot generate\n", c->model_type);
        goto done;
    }
    if (!encode(&hay, &n_hay, ctx, tok, hay_text ? hay_text : HAYSTACK, hay_len, "haystack") ||
        !encode(&nd, &n_nd, ctx, tok, needle, strlen(needle), "--needle") ||
        (*question && !encode(&qs, &n_qs, ctx, tok, question, strlen(question), "--question")))
        goto done;
    int32_t bos = cli_tokenizer_bos(ctx, tok);
    int64_t n_gen = n_arg ? (int64_t)n_num : n_nd, min_len = (bos >= 0) + n_nd + n_qs + 1;
    int64_t max_len = c->max_pos > 0 ? c->max_pos : 4096;
    if (c->pos == HEED_POS_LEARNED) max_len -= n_gen - 1; /* the generated tokens need positions too */
    if (!lens) {
        int64_t top = max_len < 4096 ? max_len : 4096;
        if (!(lens = malloc(4 * sizeof *lens))) goto oom;
        for (n_len = 0; n_len < 4; n_len++) lens[n_len] = (double)(top * (n_len + 1) / 4);
    }
    for (int64_t j = 0; j < n_len; j++) {
        if (lens[j] < (double)min_len)
            fprintf(stderr, "heed needle: context length %g: too small to hold %sthe needle, the question and any "
                            "haystack (%lld tokens at least)\n", lens[j], bos >= 0 ? "BOS, " : "", (long long)min_len);
        else if (lens[j] > (double)max_len)
            fprintf(stderr, "heed needle: context length %g: past the model's positions (%lld at most%s)\n", lens[j],
                    (long long)max_len, c->pos == HEED_POS_LEARNED ? ", leaving room for -n tokens" : "");
        if (lens[j] < (double)min_len || lens[j] > (double)max_len) goto done;
    }
    if (!(breaks = malloc((size_t)n_hay))) goto oom;
    int64_t n_breaks = sentence_breaks(breaks, ctx, tok, hay, n_hay);
    if (n_breaks < 0) goto done;
    double max_ctx = 0;
    for (int64_t j = 0; j < n_len; j++) max_ctx = fmax(max_ctx, lens[j]);
    S = c->n_layers * c->n_heads;
    n_cells = n_len * n_depth;
    prompt = malloc(sizeof(int32_t) * (size_t)max_ctx);
    cells = calloc((size_t)n_cells, sizeof *cells);
    grid = malloc(sizeof(float) * (size_t)n_cells);
    if (want_heads) {
        score = malloc(sizeof(float) * (size_t)S);
        sum = calloc((size_t)S, sizeof(float));
        heads = malloc(sizeof *heads * (size_t)S);
    }
    if (!prompt || !cells || !grid || (want_heads && (!score || !sum || !heads))) goto oom;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t k = 0; k < n_cells; k++) { /* cell k: length k / n_depth, depth k % n_depth */
        cell *e = &cells[k];
        e->ctx_len = (int64_t)lens[k / n_depth];
        e->depth = depths[k % n_depth];
        if (!(e->gen = malloc(sizeof(int32_t) * (size_t)n_gen))) goto oom;
        if (score) memset(score, 0, sizeof(float) * (size_t)S);
        if (heed_needle_prompt(ctx, prompt, &e->needle_at, hay, n_breaks ? breaks : NULL, n_hay, nd, n_nd, qs, n_qs,
                               bos, e->ctx_len, e->depth) != HEED_OK ||
            heed_retrieval_decode(ctx, m, e->gen, &e->n_gen, score, prompt, e->ctx_len, e->needle_at, n_nd, n_gen,
                                  1) != HEED_OK) {
            fprintf(stderr, "heed needle: length %lld, depth %g: %s\n", (long long)e->ctx_len, e->depth,
                    heed_ctx_error(ctx));
            goto done;
        }
        size_t tl = 0;
        if (heed_detokenize(ctx, &e->text, &tl, tok, e->gen, e->n_gen, 1) != HEED_OK) {
            fprintf(stderr, "heed needle: decoding the generated ids: %s\n", heed_ctx_error(ctx));
            goto done;
        }
        e->recall = heed_rouge1_recall_text(answer, e->text);
        grid[(k % n_depth) * n_len + k / n_depth] = (float)e->recall; /* rows depths, columns lengths */
        if (score && e->recall > RECALLED) {
            for (int64_t s = 0; s < S; s++) sum[s] += score[s];
            n_recalled++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (png) {
        heed_png_opts po;
        heed_png_opts_init(&po);
        po.lo = 0, po.hi = 1, po.cell_px = 24;
        if (heed_png_heatmap(ctx, png, grid, n_depth, n_len, &po) != HEED_OK) {
            fprintf(stderr, "heed needle: --png: %s\n", heed_ctx_error(ctx));
            goto done;
        }
    }
    FILE *tab = json ? stderr : stdout;
    print_table(tab, cells, lens, n_len, depths, n_depth, answer);
    if (want_heads) {
        for (int64_t s = 0; s < S; s++)
            heads[s] = (head_score){s / c->n_heads, s % c->n_heads, n_recalled ? sum[s] / (double)n_recalled : 0.0};
        qsort(heads, (size_t)S, sizeof *heads, by_score);
        if (!n_recalled)
            fprintf(tab, "retrieval heads: no cell recalled the answer (recall > %g), so no head scores\n", RECALLED);
        else {
            fprintf(tab, "retrieval heads: mean over the %lld of %lld cells with recall > %g (> 0.1: a retrieval "
                         "head)\n%4s %5s %4s %9s\n", (long long)n_recalled, (long long)n_cells, RECALLED, "rank",
                    "layer", "head", "score");
            for (int64_t r = 0; r < S && r < TOP_HEADS; r++)
                fprintf(tab, "%4lld %5lld %4lld %9.4f\n", (long long)r + 1, (long long)heads[r].layer,
                        (long long)heads[r].head, heads[r].score);
        }
    }
    fprintf(stderr, "heed needle: %lld cells in %.2f s\n", (long long)n_cells,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    fflush(tab);
    if (!print_json(model, needle, question, answer, n_gen, bos, n_hay, n_nd, cells, lens, n_len, depths, n_depth,
                    want_heads ? heads : NULL, S, n_recalled))
        goto oom;
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "heed needle: out of memory\n");
done:
    for (int64_t k = 0; cells && k < n_cells; k++) free(cells[k].gen), free(cells[k].text);
    free(cells), free(grid), free(score), free(sum), free(heads), free(prompt), free(breaks);
    free(hay), free(nd), free(qs), free(hay_text);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
args:
    free(lens), free(depths);
    return rc;
}
