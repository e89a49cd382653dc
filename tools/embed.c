/* embed.c — `heed embed`: one sentence embedding from a model's last hidden states (after the final norm),
 * pooled over the tokens (mean, the first token, the last token, or the last EOS token), optionally L2
 * normalised as sentence-transformers' Normalize; a JSON array on stdout or `embedding` in safetensors. */
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
    fprintf(f, "usage: heed embed [-m MODEL] (-p TEXT | --ids IDS) [--pool mean|cls|last|eos] [--normalize]\n"
               "                  [--bidirectional] [--types IDS] [-o OUT.safetensors] [--threads N]\n"
               "  Pools the last hidden states (after the final norm) of TEXT (encoded with MODEL/tokenizer.json,\n"
               "  special tokens added as Hugging Face `encode` does) or IDS: mean over every token (default,\n"
               "  as sentence-transformers' mean pooling of one unpadded sentence), cls (the first token), last\n"
               "  (the last token) or eos (the last token that is an EOS id of the model's configs).\n"
               "  --normalize divides by the L2 norm. --bidirectional runs a decoder without its causal mask\n"
               "  (and without sliding windows), as for embeddings in the pooling papers. Prints a JSON array,\n"
               "  or with -o writes a safetensors file holding `embedding` f32 [hidden]. --types: token type ids\n"
               "  (bert; default all 0).\n");
    return rc;
}

int cmd_embed(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *ids_arg = NULL, *pool = "mean", *out = NULL, *threads_arg = NULL,
               *types_arg = NULL;
    int normalize = 0, bidirectional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--normalize")) {
            normalize = 1;
            continue;
        }
        if (!strcmp(a, "--bidirectional")) {
            bidirectional = 1;
            continue;
        }
        const char **str = !strcmp(a, "-m") || !strcmp(a, "--model") ? &model
                           : !strcmp(a, "-p") || !strcmp(a, "--prompt") ? &text
                           : !strcmp(a, "--ids") ? &ids_arg
                           : !strcmp(a, "--pool") ? &pool
                           : !strcmp(a, "-o") ? &out
                           : !strcmp(a, "--threads") ? &threads_arg
                           : !strcmp(a, "--types") ? &types_arg
                           : NULL;
        if (!str || !v) {
            fprintf(stderr, "heed embed: %s '%s'\n", str ? "no value after" : "unknown option", a);
            return usage(stderr, 2);
        }
        i++; /* the value */
        *str = v;
    }
    double threads = 0;
    if (threads_arg && (!cli_parse_num(&threads, threads_arg) || threads < 0 || threads != floor(threads))) {
        fprintf(stderr, "heed embed: --threads %s: expected a whole number >= 0\n", threads_arg);
        return 2;
    }
    if (strcmp(pool, "mean") && strcmp(pool, "cls") && strcmp(pool, "last") && strcmp(pool, "eos")) {
        fprintf(stderr, "heed embed: --pool %s: expected mean, cls, last or eos\n", pool);
        return 2;
    }
    if (!cli_check_model_kv(&model, NULL, "embed")) return 2;
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    int32_t *ids = NULL, *types = NULL;
    float *hidden = NULL, *e = NULL;
    int64_t T = 0;
    int rc = 1;
    if (!cli_create_ctx(&ctx, (int)threads, "embed")) goto done;
    if (heed_model_load(ctx, &m, model) != HEED_OK) {
        fprintf(stderr, "heed embed: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    const heed_config *c = heed_model_config(m);
    const heed_gen_config *gen = heed_model_gen_config(m);
    if (!cli_load_tokenizer(&tok, ctx, model, text != NULL, "embed") ||
        !cli_input_ids(&ids, &T, ctx, tok, text, ids_arg, "embed"))
        goto done;
    if (T == 0) {
        fprintf(stderr, "heed embed: no tokens to embed\n");
        goto done;
    }
    int64_t nt = 0;
    if (types_arg && (!cli_parse_ids(&types, &nt, types_arg) || nt != T)) {
        fprintf(stderr, "heed embed: --types: expected %lld comma-separated integers, one per token\n", (long long)T);
        goto done;
    }
    if (bidirectional && !c->causal) fprintf(stderr, "heed embed: note: %s is bidirectional already\n", c->model_type);
    int64_t d = c->hidden, NL = c->n_layers;
    hidden = malloc(sizeof(float) * (size_t)(T * d));
    e = calloc((size_t)d, sizeof(float));
    float **hs = calloc((size_t)NL + 1, sizeof *hs);
    if (!hidden || !e || !hs) {
        free(hs);
        fprintf(stderr, "heed embed: out of memory\n");
        goto done;
    }
    hs[NL] = hidden;
    heed_model_trace tr = {NULL, hs};
    heed_status s = heed_model_forward(ctx, m, NULL, &tr, ids, types, T, 0, bidirectional ? HEED_FWD_BIDIRECTIONAL : 0);
    free(hs);
    if (s != HEED_OK) {
        fprintf(stderr, "heed embed: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    int64_t row = !strcmp(pool, "cls") ? 0 : T - 1;
    if (!strcmp(pool, "eos")) {
        for (row = T - 1; row >= 0; row--) {
            int eos = 0;
            for (int k = 0; k < gen->n_eos; k++) eos |= ids[row] == gen->eos_ids[k];
            if (eos) break;
        }
        if (row < 0) {
            fprintf(stderr, "heed embed: --pool eos: the input holds no EOS id of the model's configs (%d known)\n",
                    gen->n_eos);
            goto done;
        }
    }
    if (!strcmp(pool, "mean")) {
        /* in double, then rounded once: the mean of T rows does not depend on their order */
        for (int64_t j = 0; j < d; j++) {
            double acc = 0;
            for (int64_t t = 0; t < T; t++) acc += hidden[t * d + j];
            e[j] = (float)(acc / (double)T);
        }
    } else memcpy(e, hidden + row * d, sizeof(float) * (size_t)d);
    if (normalize) {
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)e[j] * e[j];
        double inv = 1.0 / fmax(sqrt(ss), 1e-12); /* torch.nn.functional.normalize's eps */
        for (int64_t j = 0; j < d; j++) e[j] = (float)(e[j] * inv);
    }
    if (out) {
        heed_st_entry ent = {"embedding", HEED_F32, 1, {d}, e};
        if (heed_st_write(ctx, out, &ent, 1) != HEED_OK) {
            fprintf(stderr, "heed embed: %s\n", heed_ctx_error(ctx));
            goto done;
        }
    } else {
        putchar('[');
        for (int64_t j = 0; j < d; j++) printf("%s%.9g", j ? ", " : "", e[j]);
        printf("]\n");
    }
    rc = 0;
done:
    free(ids);
    free(types);
    free(hidden);
    free(e);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
