/* patch.c — `heed patch`: activation patching between a clean and a corrupted prompt (circuit analysis).
 * Each head's (or each layer's) output on the corrupted prompt is replaced at the chosen positions (all, a
 * list, or one at a time) by its output on the clean prompt (heed_model_set_head_patch), and the logit
 * difference answer - foil at the last position is reported, normalised to 0 (corrupted run) .. 1 (clean). */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed patch [-m MODEL] (--clean TEXT | --clean-ids IDS) (--corrupt TEXT | --corrupt-ids IDS)\n"
               "                  (--answer TOK | --answer-id ID) (--foil TOK | --foil-id ID)\n"
               "                  [--per head|layer|head-pos|layer-pos] [--pos P1,P2,...] [--json] [--threads N]\n"
               "  Activation patching (docs/analysis.md): the metric is logit[answer] - logit[foil] at the last\n"
               "  position. For each head (and each layer: all its heads at once), the corrupted prompt is run with\n"
               "  that head's output at every position replaced by its output on the clean prompt; the score is\n"
               "  (patched - corrupt) / (clean - corrupt): 1 restores the clean metric, 0 changes nothing.\n"
               "  Both prompts must have as many tokens. TOK: a token string, encoded without special tokens to\n"
               "  exactly one id. --per: the units patched: head, layer (its heads together; default: both),\n"
               "  head-pos or layer-pos (each unit at each position alone: a grid over positions). --pos: only\n"
               "  these positions are patched (negative: from the end, -1 the last; default all).\n");
    return rc;
}

/* What one report patches: one head, or one layer's heads together; at the patched positions together, or at
 * each of them alone. */
enum { PER_HEAD, PER_LAYER, PER_HEAD_POS, PER_LAYER_POS, N_PER };
static const char *const PER_NAMES[N_PER] = {"head", "layer", "head-pos", "layer-pos"};
static const char *const PER_KEYS[N_PER] = {"heads", "layers", "head_pos", "layer_pos"}; /* JSON */

/* sel [NL * H, n]: the slots of heads first .. first + span - 1 (flat layer * H + head) at positions pos [n_pos]
 * set to v. */
static void select_units(uint8_t *sel, int64_t n, int64_t first, int64_t span, const int32_t *pos, int64_t n_pos,
                         uint8_t v)
{
    for (int64_t h = first; h < first + span; h++)
        for (int64_t k = 0; k < n_pos; k++) sel[h * n + pos[k]] = v;
}

/* The metric logit[answer] - logit[foil] of the last position of ids [T]; with out every head's output
 * [NL, H, T, D] is captured. */
static heed_status metric(double *x, heed_ctx *ctx, heed_model *m, float *logits, float *out, const int32_t *ids,
                          int64_t T, int32_t answer, int32_t foil)
{
    heed_probe pr = {0};
    pr.head_out = out;
    heed_status s = heed_model_set_probe(ctx, m, out ? &pr : NULL);
    if (s == HEED_OK) s = heed_model_forward(ctx, m, logits, NULL, ids, NULL, T, 0, HEED_FWD_LAST_LOGITS);
    if (s != HEED_OK) return s;
    *x = (double)logits[answer] - (double)logits[foil];
    return heed_model_set_probe(ctx, m, NULL);
}

int cmd_patch(int argc, char **argv)
{
    const char *model = NULL, *text[2] = {NULL, NULL}, *ids_arg[2] = {NULL, NULL}, *tok_arg[2] = {NULL, NULL};
    const char *id_arg[2] = {NULL, NULL}, *per_arg = NULL, *pos_arg = NULL, *threads_arg = NULL;
    int json = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--json")) json = 1;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && more) model = argv[++i];
        else if (!strcmp(a, "--clean") && more) text[0] = argv[++i];
        else if (!strcmp(a, "--corrupt") && more) text[1] = argv[++i];
        else if (!strcmp(a, "--clean-ids") && more) ids_arg[0] = argv[++i];
        else if (!strcmp(a, "--corrupt-ids") && more) ids_arg[1] = argv[++i];
        else if (!strcmp(a, "--answer") && more) tok_arg[0] = argv[++i];
        else if (!strcmp(a, "--foil") && more) tok_arg[1] = argv[++i];
        else if (!strcmp(a, "--answer-id") && more) id_arg[0] = argv[++i];
        else if (!strcmp(a, "--foil-id") && more) id_arg[1] = argv[++i];
        else if (!strcmp(a, "--per") && more) per_arg = argv[++i];
        else if (!strcmp(a, "--pos") && more) pos_arg = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads_arg = argv[++i];
        else {
            fprintf(stderr, "heed patch: unknown or incomplete option '%s'\n", a);
            return usage(stderr, 2);
        }
    }
    static const char *prompt_name[2] = {"clean", "corrupt"}, *tok_name[2] = {"answer", "foil"};
    for (int k = 0; k < 2; k++) {
        if (!text[k] == !ids_arg[k]) {
            fprintf(stderr, "heed patch: give --%s TEXT or --%s-ids IDS (one of them)\n", prompt_name[k],
                    prompt_name[k]);
            return usage(stderr, 2);
        }
        if (!tok_arg[k] == !id_arg[k]) {
            fprintf(stderr, "heed patch: give --%s TOK or --%s-id ID (one of them)\n", tok_name[k], tok_name[k]);
            return usage(stderr, 2);
        }
    }
    int per = -1;
    for (int k = 0; per_arg && k < N_PER; k++)
        if (!strcmp(per_arg, PER_NAMES[k])) per = k;
    if (per_arg && per < 0) {
        fprintf(stderr, "heed patch: --per: expected head, layer, head-pos or layer-pos, got '%s'\n", per_arg);
        return 2;
    }
    per = per < 0 ? N_PER : per; /* N_PER: the default, heads then layers */
    if (!cli_threads_option(&threads, threads_arg, "patch")) return 2;
    if (!cli_check_model_kv(&model, NULL, "patch")) return 2;
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    int32_t *ids[2] = {NULL, NULL}, tid[2] = {0, 0};
    int64_t T[2] = {0, 0};
    float *logits = NULL, *clean_out = NULL;
    uint8_t *sel = NULL;
    int32_t *at = NULL; /* [n_pos] the patched positions */
    int64_t n_pos = 0;
    int rc = 1;
    if (!cli_create_ctx(&ctx, threads, "patch")) goto done;
    if (!cli_load_model(&m, ctx, model, NAN, NAN, "patch")) goto done;
    const heed_config *c = heed_model_config(m);
    if (!cli_load_tokenizer(&tok, ctx, model, text[0] || text[1] || tok_arg[0] || tok_arg[1], "patch")) goto done;
    for (int k = 0; k < 2; k++) {
        if (!cli_input_ids(&ids[k], &T[k], ctx, tok, text[k], ids_arg[k], "patch")) goto done;
        if (T[k] < 1) {
            fprintf(stderr, "heed patch: the %s prompt has no tokens\n", prompt_name[k]);
            goto done;
        }
    }
    if (T[0] != T[1]) {
        fprintf(stderr, "heed patch: the clean prompt has %lld tokens and the corrupted one %lld: patching needs "
                        "prompts of the same length (position by position)\n", (long long)T[0], (long long)T[1]);
        goto done;
    }
    for (int k = 0; k < 2; k++)
        if (!cli_token_id(&tid[k], ctx, tok, tok_arg[k], id_arg[k], c->vocab, tok_name[k], "patch")) goto done;
    const int64_t n = T[0], NL = c->n_layers, H = c->n_heads, D = c->head_dim;
    logits = malloc(sizeof(float) * (size_t)c->vocab);
    clean_out = malloc(sizeof(float) * (size_t)(NL * H * n * D));
    sel = calloc((size_t)(NL * H * n), 1);
    if (!logits || !clean_out || !sel) {
        fprintf(stderr, "heed patch: out of memory\n");
        goto done;
    }
    if (pos_arg) {
        if (!cli_parse_ids(&at, &n_pos, pos_arg) || n_pos < 1) {
            fprintf(stderr, "heed patch: --pos: expected comma-separated positions, got '%s'\n", pos_arg);
            goto done;
        }
        for (int64_t k = 0; k < n_pos; k++) {
            if (at[k] < -n || at[k] >= n) {
                fprintf(stderr, "heed patch: --pos: position %d is outside the %lld-token prompts\n", at[k],
                        (long long)n);
                goto done;
            }
            if (at[k] < 0) at[k] += (int32_t)n;
        }
    } else {
        if (!(at = malloc(sizeof(int32_t) * (size_t)n))) {
            fprintf(stderr, "heed patch: out of memory\n");
            goto done;
        }
        for (n_pos = 0; n_pos < n; n_pos++) at[n_pos] = (int32_t)n_pos;
    }
    double clean, corrupt;
    if (metric(&clean, ctx, m, logits, clean_out, ids[0], n, tid[0], tid[1]) != HEED_OK ||
        metric(&corrupt, ctx, m, logits, NULL, ids[1], n, tid[0], tid[1]) != HEED_OK) {
        fprintf(stderr, "heed patch: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    if (clean == corrupt) {
        fprintf(stderr, "heed patch: the clean and corrupted prompts give the same metric (%.9g): nothing to "
                        "normalise\n", clean);
        goto done;
    }
    if (json) printf("{\"clean\": %.9g, \"corrupt\": %.9g", clean, corrupt);
    else printf("metric logit[%d] - logit[%d]: clean %.6g, corrupt %.6g (%lld tokens)\n", tid[0], tid[1], clean,
                corrupt, (long long)n);
    /* the units of each report: a head or a layer (all its heads), at the patched positions together or at
     * each of them alone */
    for (int kind = 0; kind < N_PER; kind++) {
        if (per < N_PER ? per != kind : kind >= PER_HEAD_POS) continue;
        const int by_head = kind == PER_HEAD || kind == PER_HEAD_POS, by_pos = kind >= PER_HEAD_POS;
        const int64_t n_units = by_head ? NL * H : NL, n_steps = by_pos ? n_pos : 1;
        if (json) printf(",\n \"%s\": [", PER_KEYS[kind]);
        else if (by_pos) printf("%-6s %-5s %-5s %-10s metric\n", "layer", by_head ? "head" : "heads", "pos", "score");
        else printf("%-6s %-5s %-10s metric\n", "layer", by_head ? "head" : "heads", "score");
        for (int64_t e = 0; e < n_units * n_steps; e++) {
            const int64_t u = e / n_steps, first = by_head ? u : u * H, span = by_head ? 1 : H;
            const int64_t L = by_head ? u / H : u, head = by_head ? u % H : -1, pos = by_pos ? at[e % n_steps] : -1;
            double x;
            select_units(sel, n, first, span, by_pos ? &at[e % n_steps] : at, by_pos ? 1 : n_pos, 1);
            if (heed_model_set_head_patch(ctx, m, sel, clean_out, n) != HEED_OK ||
                metric(&x, ctx, m, logits, NULL, ids[1], n, tid[0], tid[1]) != HEED_OK) {
                fprintf(stderr, "%sheed patch: %s\n", json ? "\n" : "", heed_ctx_error(ctx));
                goto done;
            }
            select_units(sel, n, first, span, by_pos ? &at[e % n_steps] : at, by_pos ? 1 : n_pos, 0);
            const double score = (x - corrupt) / (clean - corrupt);
            if (json) {
                printf("%s\n  {\"layer\": %lld", e ? "," : "", (long long)L);
                if (by_head) printf(", \"head\": %lld", (long long)head);
                if (by_pos) printf(", \"pos\": %lld", (long long)pos);
                printf(", \"score\": %.9g, \"metric\": %.9g}", score, x);
                continue;
            }
            char hs[24], ps[24];
            snprintf(hs, sizeof hs, by_head ? "%lld" : "all", (long long)head);
            snprintf(ps, sizeof ps, "%lld", (long long)pos);
            if (by_pos) printf("%-6lld %-5s %-5s %-10.4f %.6g\n", (long long)L, hs, ps, score, x);
            else printf("%-6lld %-5s %-10.4f %.6g\n", (long long)L, hs, score, x);
        }
        if (json) printf("\n ]");
    }
    if (json) printf("\n}\n");
    rc = 0;
done:
    free(logits), free(clean_out), free(sel), free(at), free(ids[0]), free(ids[1]);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
