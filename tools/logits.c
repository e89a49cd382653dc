/* logits.c — `heed logits`: one forward pass over given ids, written as a safetensors file: `logits` f32 [T, V],
 * with --attn `attn.L` f32 [H, T, T] (post-softmax probabilities) and with --hidden `hidden.L` f32 [T, d]
 * for L = 0..n_layers (Hugging Face hidden_states: 0 the embeddings, n_layers after the final norm). */
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
    fprintf(f, "usage: heed logits [-m MODEL] --ids IDS -o OUT.safetensors [--attn] [--hidden] [--types IDS] [--rope-base THETA]\n"
               "                   [--attn-log-scale N0] [--threads N] [--intervene SPEC]...\n"
               "  One forward pass over IDS (comma-separated) from position 0. Writes `logits` f32 [T, V];\n"
               "  --attn adds `attn.L` f32 [H, T, T] per layer (post-softmax probabilities, masked keys 0);\n"
               "  --hidden adds `hidden.L` f32 [T, d] for L = 0..n_layers as Hugging Face's hidden_states\n"
               "  (0: embedding output; n_layers: after the final norm). --types: token type ids (bert).\n"
               "  An encoder without an LM head (bert) writes no `logits`, only what --attn/--hidden ask for.\n"
               "  --rope-base THETA: the RoPE base instead of config.json's rope_theta (context extension).\n"
               "  --attn-log-scale N0: attention logits of position p times max(1, log(p+1)/log(N0)).\n"
               CLI_INTERVENE_HELP
               "  (`attn.L` holds the probabilities before an edit.)\n");
    return rc;
}

int cmd_logits(int argc, char **argv)
{
    const char *model = NULL, *ids_arg = NULL, *types_arg = NULL, *out = NULL;
    int want_attn = 0, want_hidden = 0, threads = 0;
    double rope_base = NAN, log_n0 = NAN;
    cli_interventions iv = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout, 0);
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types_arg = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if ((!strcmp(argv[i], "--rope-base") || !strcmp(argv[i], "--attn-log-scale")) && i + 1 < argc) {
            const char *a = argv[i];
            if (!cli_parse_num(a[2] == 'r' ? &rope_base : &log_n0, argv[++i])) {
                fprintf(stderr, "heed logits: %s: expected a number\n", a);
                return usage(stderr, 2);
            }
        } else if (!strcmp(argv[i], "--intervene") && i + 1 < argc) {
            if (!cli_add_intervention(&iv, argv[++i], "logits")) return usage(stderr, 2);
        } else if (!strcmp(argv[i], "--attn")) want_attn = 1;
        else if (!strcmp(argv[i], "--hidden")) want_hidden = 1;
        else {
            fprintf(stderr, "heed logits: unknown or incomplete option '%s'\n", argv[i]);
            return usage(stderr, 2);
        }
    }
    if (!ids_arg || !out) {
        fprintf(stderr, "heed logits: --ids IDS and -o OUT.safetensors are required\n");
        return usage(stderr, 2);
    }
    if (!model && !(model = cli_default_model("logits"))) return 2;
    int32_t *ids = NULL, *types = NULL;
    int64_t T = 0, nt = 0;
    if (!cli_parse_ids(&ids, &T, ids_arg) || T == 0 ||
        (types_arg && (!cli_parse_ids(&types, &nt, types_arg) || nt != T))) {
        fprintf(stderr, "heed logits: --ids/--types: expected comma-separated integers (as many types as ids)\n");
        free(ids);
        free(types);
        return 2;
    }
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    int rc = 1;
    float *logits = NULL, **attn = NULL, **hidden = NULL;
    heed_st_entry *e = NULL;
    if (!cli_create_ctx(&ctx, threads, "logits")) goto done;
    if (!cli_load_model(&m, ctx, model, rope_base, log_n0, "logits") || !cli_apply_interventions(&iv, ctx, m, "logits"))
        goto done;
    const heed_config *c = heed_model_config(m);
    int64_t NL = c->n_layers, H = c->n_heads, d = c->hidden, V = c->vocab, n_out = 0;
    int lm = heed_model_has_lm_head(m);
    if (!lm && !want_attn && !want_hidden) {
        fprintf(stderr, "heed logits: this %s model has no LM head: no logits (ask for --attn or --hidden)\n",
                c->model_type);
        goto done;
    }
    if (!lm) fprintf(stderr, "heed logits: note: %s has no LM head; writing no `logits`\n", c->model_type);
    attn = calloc((size_t)NL, sizeof *attn);
    hidden = calloc((size_t)NL + 1, sizeof *hidden);
    e = calloc((size_t)(2 * NL + 2), sizeof *e);
    char (*names)[32] = calloc((size_t)(2 * NL + 2), sizeof *names);
    int ok = attn && hidden && e && names;
    if (ok && lm) {
        ok = (logits = malloc(sizeof(float) * (size_t)(T * V))) != NULL;
        e[n_out++] = (heed_st_entry){"logits", HEED_F32, 2, {T, V}, logits};
    }
    for (int64_t L = 0; ok && want_attn && L < NL; L++) {
        ok = (attn[L] = malloc(sizeof(float) * (size_t)(H * T * T))) != NULL;
        snprintf(names[n_out], sizeof names[0], "attn.%lld", (long long)L);
        e[n_out] = (heed_st_entry){names[n_out], HEED_F32, 3, {H, T, T}, attn[L]};
        n_out++;
    }
    for (int64_t L = 0; ok && want_hidden && L <= NL; L++) {
        ok = (hidden[L] = malloc(sizeof(float) * (size_t)(T * d))) != NULL;
        snprintf(names[n_out], sizeof names[0], "hidden.%lld", (long long)L);
        e[n_out] = (heed_st_entry){names[n_out], HEED_F32, 2, {T, d}, hidden[L]};
        n_out++;
    }
    heed_model_trace tr = {attn, hidden};
    if (!ok) fprintf(stderr, "heed logits: out of memory\n");
    else if (heed_model_forward(ctx, m, logits, &tr, ids, types, T, 0, 0) != HEED_OK ||
             heed_st_write(ctx, out, e, n_out) != HEED_OK)
        fprintf(stderr, "heed logits: %s\n", heed_ctx_error(ctx));
    else rc = 0;
    for (int64_t L = 0; attn && L < NL; L++) free(attn[L]);
    for (int64_t L = 0; hidden && L <= NL; L++) free(hidden[L]);
    free(names);
done:
    free(attn);
    free(hidden);
    free(e);
    free(logits);
    free(ids);
    free(types);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
