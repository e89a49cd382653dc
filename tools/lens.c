/* lens.c — `heed lens`: the logit lens. The residual stream of every layer at one position is read out through
 * the model's own LM head (heed_model_unembed: final norm, unembedding, final softcap): the top tokens and,
 * with --target, one token's probability and rank per layer. Definitions: docs/analysis.md, "Logit lens". */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed lens [-m MODEL] (-p TEXT | --ids IDS) [--pos P] [--top K] [--target TOKEN | --target-id ID]\n"
               "                 [--json] [--threads N]\n"
               "  The logit lens (docs/analysis.md): for each layer L = 0..n_layers, the hidden state L (as Hugging\n"
               "  Face's hidden_states: 0 the embeddings, L the output of layer L - 1) at position P (default: the\n"
               "  last) goes through the model's LM head (final norm, unembedding, final softcap) and a softmax. The\n"
               "  last entry, hidden_states[n_layers], is already after the final norm: its lens is the model's own\n"
               "  next-token distribution. Prints the top K (default 5) tokens of each layer with their\n"
               "  probabilities and, with --target, the target's probability and rank (1: the top token).\n"
               "  TOKEN: a token string encoded without special tokens to exactly one id. --json: one JSON object.\n");
    return rc;
}

/* The display string of id (decoded alone; "#id" without a tokenizer), malloc'd. */
static char *token_text(heed_ctx *ctx, const heed_tokenizer *tok, int32_t id)
{
    char *s = NULL, buf[24];
    size_t len;
    if (tok && heed_detokenize(ctx, &s, &len, tok, &id, 1, 0) == HEED_OK) return s;
    snprintf(buf, sizeof buf, "#%d", id);
    return strdup(buf);
}

/* s quoted, with quotes, backslashes and control bytes escaped, on f. */
static void print_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') fputs("\\n", f);
        else if (*p == '\'' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
    fputc('\'', f);
}

/* prob [V] out: softmax of logits [V] in f64; returns the target's rank (1 + the ids with a larger logit) when
 * target >= 0, else 0. top [K] out: the K most probable ids, the smaller id first on ties. */
static int64_t lens_row(double *prob, int32_t *top, int64_t K, const float *logits, int64_t V, int32_t target)
{
    double mx = -INFINITY, sum = 0.0;
    for (int64_t v = 0; v < V; v++) mx = fmax(mx, logits[v]);
    for (int64_t v = 0; v < V; v++) sum += (prob[v] = exp((double)logits[v] - mx));
    for (int64_t v = 0; v < V; v++) prob[v] /= sum;
    /* K passes in the order (larger logit, then smaller id): pass k takes the best id after top[k - 1] */
    for (int64_t k = 0; k < K; k++) {
        int32_t best = -1;
        for (int64_t v = 0; v < V; v++) {
            const int after = k == 0 || logits[v] < logits[top[k - 1]] ||
                              (logits[v] == logits[top[k - 1]] && v > top[k - 1]);
            if (after && (best < 0 || logits[v] > logits[best])) best = (int32_t)v;
        }
        top[k] = best;
    }
    int64_t rank = 0;
    if (target >= 0) {
        rank = 1;
        for (int64_t v = 0; v < V; v++) rank += logits[v] > logits[target];
    }
    return rank;
}

int cmd_lens(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *ids_arg = NULL, *target_tok = NULL, *target_id = NULL;
    const char *pos_arg = NULL, *top_arg = NULL, *threads_arg = NULL;
    int json = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--json")) json = 1;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && more) model = argv[++i];
        else if (!strcmp(a, "-p") && more) text = argv[++i];
        else if (!strcmp(a, "--ids") && more) ids_arg = argv[++i];
        else if (!strcmp(a, "--pos") && more) pos_arg = argv[++i];
        else if (!strcmp(a, "--top") && more) top_arg = argv[++i];
        else if (!strcmp(a, "--target") && more) target_tok = argv[++i];
        else if (!strcmp(a, "--target-id") && more) target_id = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads_arg = argv[++i];
        else {
            fprintf(stderr, "heed lens: unknown or incomplete option '%s'\n", a);
            return usage(stderr, 2);
        }
    }
    double top_v = 5, pos_v = -1;
    if (!text == !ids_arg) {
        fprintf(stderr, "heed lens: give exactly one of -p TEXT and --ids IDS\n");
        return usage(stderr, 2);
    }
    if (target_tok && target_id) {
        fprintf(stderr, "heed lens: give --target TOKEN or --target-id ID, not both\n");
        return 2;
    }
    if (top_arg && (!cli_parse_num(&top_v, top_arg) || top_v != floor(top_v) || top_v < 1 || top_v > 1000)) {
        fprintf(stderr, "heed lens: --top: expected a whole number 1..1000, got '%s'\n", top_arg);
        return 2;
    }
    if (pos_arg && (!cli_parse_num(&pos_v, pos_arg) || pos_v != floor(pos_v) || pos_v < 0 || pos_v > 1e15)) {
        fprintf(stderr, "heed lens: --pos: expected a position 0, 1, ..., got '%s'\n", pos_arg);
        return 2;
    }
    if (!cli_threads_option(&threads, threads_arg, "lens")) return 2;
    if (!cli_check_model_kv(&model, NULL, "lens")) return 2;
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    int32_t *ids = NULL, *top = NULL, target = -1;
    int64_t T = 0;
    float **hidden = NULL, *logits = NULL;
    double *prob = NULL;
    cJSON *out = NULL;
    int rc = 1;
    if (!cli_create_ctx(&ctx, threads, "lens")) goto done;
    if (!cli_load_model(&m, ctx, model, NAN, NAN, "lens")) goto done;
    const heed_config *c = heed_model_config(m);
    const int64_t NL = c->n_layers, d = c->hidden, V = c->vocab, K = (int64_t)top_v < V ? (int64_t)top_v : V;
    if (!heed_model_has_lm_head(m)) {
        fprintf(stderr, "heed lens: this %s model has no LM head: nothing to read the layers out with\n",
                c->model_type);
        goto done;
    }
    if (!cli_load_tokenizer(&tok, ctx, model, text || target_tok, "lens") ||
        !cli_input_ids(&ids, &T, ctx, tok, text, ids_arg, "lens"))
        goto done;
    if (T < 1) {
        fprintf(stderr, "heed lens: the input has no tokens\n");
        goto done;
    }
    const int64_t P = pos_arg ? (int64_t)pos_v : T - 1;
    if (P >= T) {
        fprintf(stderr, "heed lens: --pos %lld is past the input's last position %lld\n", (long long)P,
                (long long)(T - 1));
        goto done;
    }
    if ((target_tok || target_id) && !cli_token_id(&target, ctx, tok, target_tok, target_id, V, "target", "lens"))
        goto done;
    /* Causal: the states at P depend on positions 0..P only, so the forward stops there. */
    const int64_t n = P + 1;
    hidden = calloc((size_t)(NL + 1), sizeof *hidden);
    logits = malloc(sizeof(float) * (size_t)((NL + 1) * V));
    prob = malloc(sizeof(double) * (size_t)V);
    top = malloc(sizeof(int32_t) * (size_t)K);
    int ok = hidden && logits && prob && top;
    for (int64_t L = 0; ok && L <= NL; L++) ok = (hidden[L] = malloc(sizeof(float) * (size_t)(n * d))) != NULL;
    if (!ok) {
        fprintf(stderr, "heed lens: out of memory\n");
        goto done;
    }
    heed_model_trace tr = {NULL, hidden};
    if (heed_model_forward(ctx, m, logits + NL * V, &tr, ids, NULL, n, 0, HEED_FWD_LAST_LOGITS) != HEED_OK) {
        fprintf(stderr, "heed lens: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    for (int64_t L = 0; L < NL; L++)
        if (heed_model_unembed(ctx, m, logits + L * V, hidden[L] + P * d, 1) != HEED_OK) {
            fprintf(stderr, "heed lens: %s\n", heed_ctx_error(ctx));
            goto done;
        }
    char *at = token_text(ctx, tok, ids[P]);
    cJSON *layers = NULL;
    if (json) {
        out = cJSON_CreateObject();
        ok = out && cJSON_AddNumberToObject(out, "pos", (double)P) && cJSON_AddNumberToObject(out, "n_tokens", (double)T) &&
             cJSON_AddNumberToObject(out, "id", ids[P]) && at && cJSON_AddStringToObject(out, "token", at) &&
             (target < 0 ? cJSON_AddNullToObject(out, "target") != NULL
                         : cJSON_AddNumberToObject(out, "target", target) != NULL) &&
             (layers = cJSON_AddArrayToObject(out, "layers"));
    } else {
        printf("logit lens at position %lld of %lld, token ", (long long)P, (long long)T);
        print_quoted(stdout, at ? at : "?");
        if (target >= 0) {
            char *tt = token_text(ctx, tok, target);
            printf("; target ");
            print_quoted(stdout, tt ? tt : "?");
            printf(" (id %d)", target);
            free(tt);
        }
        printf("\n%-6s %s top %lld\n", "layer", target >= 0 ? "target p     rank   " : "", (long long)K);
    }
    free(at);
    for (int64_t L = 0; ok && L <= NL; L++) {
        const int64_t rank = lens_row(prob, top, K, logits + L * V, V, target);
        cJSON *e = NULL, *tops = NULL;
        if (json) {
            ok = (e = cJSON_CreateObject()) && cJSON_AddItemToArray(layers, e) &&
                 cJSON_AddNumberToObject(e, "layer", (double)L) && (tops = cJSON_AddArrayToObject(e, "top"));
            if (ok && target >= 0)
                ok = cJSON_AddNumberToObject(e, "target_p", prob[target]) &&
                     cJSON_AddNumberToObject(e, "target_rank", (double)rank);
        } else {
            printf("%-6lld ", (long long)L);
            if (target >= 0) printf("%-12.6g %-6lld ", prob[target], (long long)rank);
        }
        for (int64_t k = 0; ok && k < K; k++) {
            char *s = token_text(ctx, tok, top[k]);
            if (json) {
                cJSON *t = cJSON_CreateObject();
                ok = t && cJSON_AddItemToArray(tops, t) && s && cJSON_AddNumberToObject(t, "id", top[k]) &&
                     cJSON_AddStringToObject(t, "token", s) && cJSON_AddNumberToObject(t, "p", prob[top[k]]);
            } else {
                printf("%s", k ? "  " : "");
                print_quoted(stdout, s ? s : "?");
                printf(" %.4f", prob[top[k]]);
            }
            free(s);
        }
        if (!json) printf("\n");
    }
    if (json && ok) {
        char *s = cJSON_PrintUnformatted(out);
        if ((ok = s != NULL)) printf("%s\n", s);
        free(s);
    }
    if (!ok) fprintf(stderr, "heed lens: out of memory\n");
    else rc = 0;
done:
    cJSON_Delete(out);
    for (int64_t L = 0; hidden && m && L <= heed_model_config(m)->n_layers; L++) free(hidden[L]);
    free(hidden), free(logits), free(prob), free(top), free(ids);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
