/* probe.c — `heed probe`: linear probes per layer (Concept Depth). Each example of a labelled JSONL set is run
 * once; its hidden state of every layer (last token or mean over tokens) is a feature row; a logistic-regression
 * probe per layer is fitted on a seeded stratified train split and scored on the rest. Definitions:
 * docs/analysis.md, "Linear probes". */
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
    fprintf(f, "usage: heed probe [-m MODEL] --data FILE.jsonl [--pool last|mean] [--test-frac F] [--seed S] [--l2 X]\n"
               "                  [--json] [--threads N]\n"
               "  Linear probes per layer (Concept Depth; docs/analysis.md). FILE.jsonl holds one object per line,\n"
               "  {\"text\": \"...\", \"label\": INT} (text encoded with the special tokens, as -p is) or\n"
               "  {\"ids\": [...], \"label\": INT}. For each layer L = 0..n_layers (hidden state L as Hugging Face's\n"
               "  hidden_states) the features are that state at the last token (--pool last, the default) or its\n"
               "  mean over the tokens (--pool mean); a multinomial logistic regression with L2 penalty X (default\n"
               "  0.01, on standardised features) is fitted on a stratified split (--test-frac, default 0.3, of\n"
               "  each class held out, chosen by --seed, default 0) and scored on the held-out rows. Prints a\n"
               "  table per layer, then the jump and converging layers of the test accuracy; --json adds one JSON\n"
               "  line at the end.\n");
    return rc;
}

/* The ids of example e (text encoded as -p is) into *ids [*n] (malloc'd for text, borrowed for ids: *owned
 * says which). Returns 1, or 0 after printing why naming the file and line. */
static int example_ids(int32_t **ids, int64_t *n, int *owned, heed_ctx *ctx, const heed_tokenizer *tok,
                       const heed_probe_example *e, int64_t V, const char *file)
{
    *owned = e->text != NULL;
    if (e->text) {
        const unsigned flags = HEED_TOK_SPECIAL | HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD;
        if (heed_tokenize(ctx, ids, n, tok, e->text, strlen(e->text), flags) != HEED_OK) {
            fprintf(stderr, "heed probe: %s:%lld: %s\n", file, (long long)e->line, heed_ctx_error(ctx));
            return 0;
        }
    } else {
        *ids = e->ids;
        *n = e->n_ids;
    }
    for (int64_t t = 0; t < *n; t++)
        if ((*ids)[t] >= V) {
            fprintf(stderr, "heed probe: %s:%lld: id %d is outside the model's vocabulary of %lld\n", file,
                    (long long)e->line, (*ids)[t], (long long)V);
            return 0;
        }
    if (*n < 1) fprintf(stderr, "heed probe: %s:%lld: the text encodes to no tokens\n", file, (long long)e->line);
    return *n >= 1;
}

/* feat [NL + 1, n_ex, d] out: the pooled hidden states of every example of data. Returns 1, or 0 after printing
 * why. */
static int features(float *feat, heed_ctx *ctx, heed_model *m, const heed_tokenizer *tok, const heed_probe_data *data,
                    int mean_pool, const char *file)
{
    const heed_config *c = heed_model_config(m);
    const int64_t NL = c->n_layers, d = c->hidden, N = data->n;
    float **hidden = calloc((size_t)(NL + 1), sizeof *hidden);
    int64_t cap = 0;
    int ok = hidden != NULL;
    for (int64_t i = 0; ok && i < N; i++) {
        int32_t *ids = NULL;
        int64_t T = 0;
        int owned = 0;
        if (!example_ids(&ids, &T, &owned, ctx, tok, &data->ex[i], c->vocab, file)) {
            if (owned) free(ids);
            ok = 0;
            break;
        }
        for (int64_t L = 0; ok && T > cap && L <= NL; L++) {
            free(hidden[L]);
            ok = (hidden[L] = malloc(sizeof(float) * (size_t)(T * d))) != NULL;
        }
        if (!ok) fprintf(stderr, "heed probe: out of memory\n");
        else cap = T > cap ? T : cap;
        heed_model_trace tr = {NULL, hidden};
        if (ok && heed_model_forward(ctx, m, NULL, &tr, ids, NULL, T, 0, 0) != HEED_OK) {
            fprintf(stderr, "heed probe: %s:%lld: %s\n", file, (long long)data->ex[i].line, heed_ctx_error(ctx));
            ok = 0;
        }
        for (int64_t L = 0; ok && L <= NL; L++) {
            float *f = feat + (L * N + i) * d;
            const float *h = hidden[L];
            for (int64_t j = 0; j < d; j++) {
                double s = 0.0;
                if (mean_pool)
                    for (int64_t t = 0; t < T; t++) s += h[t * d + j];
                f[j] = mean_pool ? (float)(s / (double)T) : h[(T - 1) * d + j];
            }
        }
        if (owned) free(ids);
    }
    for (int64_t L = 0; hidden && L <= NL; L++) free(hidden[L]);
    free(hidden);
    return ok;
}

int cmd_probe(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *pool = "last", *frac_arg = NULL, *seed_arg = NULL, *l2_arg = NULL;
    const char *threads_arg = NULL;
    int json = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--json")) json = 1;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && more) model = argv[++i];
        else if (!strcmp(a, "--data") && more) file = argv[++i];
        else if (!strcmp(a, "--pool") && more) pool = argv[++i];
        else if (!strcmp(a, "--test-frac") && more) frac_arg = argv[++i];
        else if (!strcmp(a, "--seed") && more) seed_arg = argv[++i];
        else if (!strcmp(a, "--l2") && more) l2_arg = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads_arg = argv[++i];
        else {
            fprintf(stderr, "heed probe: unknown or incomplete option '%s'\n", a);
            return usage(stderr, 2);
        }
    }
    double frac = 0.3, seed = 0, l2 = 0.01;
    if (!file) {
        fprintf(stderr, "heed probe: --data FILE.jsonl is required\n");
        return usage(stderr, 2);
    }
    if (strcmp(pool, "last") && strcmp(pool, "mean")) {
        fprintf(stderr, "heed probe: --pool: expected last or mean, got '%s'\n", pool);
        return 2;
    }
    if (frac_arg && (!cli_parse_num(&frac, frac_arg) || !(frac > 0 && frac < 1))) {
        fprintf(stderr, "heed probe: --test-frac: expected a fraction strictly between 0 and 1, got '%s'\n", frac_arg);
        return 2;
    }
    if (seed_arg && (!cli_parse_num(&seed, seed_arg) || seed != floor(seed) || seed < 0 || seed > 9007199254740992.0)) {
        fprintf(stderr, "heed probe: --seed: expected a whole number >= 0, got '%s'\n", seed_arg);
        return 2;
    }
    if (l2_arg && (!cli_parse_num(&l2, l2_arg) || !(l2 >= 0) || !isfinite(l2))) {
        fprintf(stderr, "heed probe: --l2: expected a finite number >= 0, got '%s'\n", l2_arg);
        return 2;
    }
    if (!cli_threads_option(&threads, threads_arg, "probe")) return 2;
    if (!cli_check_model_kv(&model, NULL, "probe")) return 2;
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    heed_probe_data *data = NULL;
    float *feat = NULL, *xtr = NULL, *xte = NULL;
    int32_t *ytr = NULL, *yte = NULL;
    uint8_t *is_test = NULL;
    double *acc = NULL;
    cJSON *out = NULL;
    int rc = 1;
    if (!cli_create_ctx(&ctx, threads, "probe")) goto done;
    if (heed_probe_data_load(ctx, &data, file) != HEED_OK) {
        fprintf(stderr, "heed probe: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    int any_text = 0;
    for (int64_t i = 0; i < data->n; i++) any_text |= data->ex[i].text != NULL;
    if (!cli_load_model(&m, ctx, model, NAN, NAN, "probe") || !cli_load_tokenizer(&tok, ctx, model, any_text, "probe"))
        goto done;
    const heed_config *c = heed_model_config(m);
    const int64_t NL = c->n_layers, d = c->hidden, N = data->n, K = data->n_classes;
    feat = malloc(sizeof(float) * (size_t)((NL + 1) * N * d));
    xtr = malloc(sizeof(float) * (size_t)(N * d));
    xte = malloc(sizeof(float) * (size_t)(N * d));
    ytr = malloc(sizeof(int32_t) * (size_t)N);
    yte = malloc(sizeof(int32_t) * (size_t)N);
    is_test = malloc((size_t)N);
    acc = malloc(sizeof(double) * (size_t)(NL + 1));
    if (!feat || !xtr || !xte || !ytr || !yte || !is_test || !acc) {
        fprintf(stderr, "heed probe: out of memory\n");
        goto done;
    }
    if (!features(feat, ctx, m, tok, data, !strcmp(pool, "mean"), file)) goto done;
    for (int64_t i = 0; i < N; i++) ytr[i] = data->ex[i].cls;
    const int64_t n_test = heed_probe_split(is_test, ytr, N, K, frac, (uint64_t)seed), n_train = N - n_test;
    if (n_test == 0) {
        fprintf(stderr, "heed probe: %s: no class has 2 examples: nothing to hold out for testing\n", file);
        goto done;
    }
    int64_t majority = 0; /* chance: the test share of the most frequent class among the test rows */
    for (int64_t cl = 0; cl < K; cl++) {
        int64_t cnt = 0;
        for (int64_t i = 0; i < N; i++) cnt += is_test[i] && data->ex[i].cls == cl;
        majority = cnt > majority ? cnt : majority;
    }
    for (int64_t i = 0, a = 0, b = 0; i < N; i++) {
        if (is_test[i]) yte[a++] = data->ex[i].cls;
        else ytr[b++] = data->ex[i].cls;
    }
    printf("%lld examples, %lld classes, %lld train / %lld test (seed %.0f), pool %s, l2 %g; chance (majority class "
           "of the test rows) %.4f\n", (long long)N, (long long)K, (long long)n_train, (long long)n_test, seed, pool,
           l2, (double)majority / (double)n_test);
    printf("%-6s %-10s %-10s %-6s %s\n", "layer", "train_acc", "test_acc", "iters", "objective");
    cJSON *layers = NULL;
    int ok = 1;
    if (json) {
        ok = (out = cJSON_CreateObject()) && cJSON_AddStringToObject(out, "data", file) &&
             cJSON_AddNumberToObject(out, "n", (double)N) && cJSON_AddNumberToObject(out, "n_train", (double)n_train) &&
             cJSON_AddNumberToObject(out, "n_test", (double)n_test) && cJSON_AddStringToObject(out, "pool", pool) &&
             cJSON_AddNumberToObject(out, "seed", seed) && cJSON_AddNumberToObject(out, "l2", l2) &&
             cJSON_AddNumberToObject(out, "chance", (double)majority / (double)n_test) &&
             cJSON_AddItemToObject(out, "labels", cJSON_CreateIntArray((const int *)data->labels, (int)K)) &&
             (layers = cJSON_AddArrayToObject(out, "layers"));
    }
    for (int64_t L = 0; ok && L <= NL; L++) {
        for (int64_t i = 0, a = 0, b = 0; i < N; i++) {
            float *dst = is_test[i] ? xte + a++ * d : xtr + b++ * d;
            memcpy(dst, feat + (L * N + i) * d, sizeof(float) * (size_t)d);
        }
        heed_linear_probe p;
        if (heed_linear_probe_fit(ctx, &p, xtr, ytr, n_train, d, K, l2) != HEED_OK) {
            fprintf(stderr, "heed probe: layer %lld: %s\n", (long long)L, heed_ctx_error(ctx));
            heed_linear_probe_release(&p);
            goto done;
        }
        acc[L] = heed_linear_probe_accuracy(&p, xte, yte, n_test);
        printf("%-6lld %-10.4f %-10.4f %-6lld %.6g\n", (long long)L, p.train_acc, acc[L], (long long)p.iters,
               p.objective);
        if (json) {
            cJSON *e = cJSON_CreateObject();
            ok = e && cJSON_AddItemToArray(layers, e) && cJSON_AddNumberToObject(e, "layer", (double)L) &&
                 cJSON_AddNumberToObject(e, "train_acc", p.train_acc) && cJSON_AddNumberToObject(e, "test_acc", acc[L]) &&
                 cJSON_AddNumberToObject(e, "iters", (double)p.iters) &&
                 cJSON_AddNumberToObject(e, "objective", p.objective);
        }
        heed_linear_probe_release(&p);
    }
    const heed_concept_depth cd = heed_concept_depth_of(acc, NL + 1);
    if (cd.jump >= 0)
        printf("jump: layer %lld (%.2f of the depth), test accuracy %.4f -> %.4f\n", (long long)cd.jump,
               (double)cd.jump / (double)NL, acc[cd.jump - 1], acc[cd.jump]);
    else printf("jump: none (no layer improves on the one before by 10%%)\n");
    printf("converging: layer %lld (%.2f of the depth), best test accuracy %.4f\n", (long long)cd.converge,
           (double)cd.converge / (double)NL, cd.best_acc);
    if (json && ok) {
        ok = (cd.jump >= 0 ? cJSON_AddNumberToObject(out, "jump", (double)cd.jump) != NULL
                           : cJSON_AddNullToObject(out, "jump") != NULL) &&
             cJSON_AddNumberToObject(out, "converge", (double)cd.converge) &&
             cJSON_AddNumberToObject(out, "best_test_acc", cd.best_acc);
        char *s = ok ? cJSON_PrintUnformatted(out) : NULL;
        if (s) printf("%s\n", s);
        ok = s != NULL;
        free(s);
    }
    if (!ok) fprintf(stderr, "heed probe: out of memory\n");
    else rc = 0;
done:
    cJSON_Delete(out);
    free(feat), free(xtr), free(xte), free(ytr), free(yte), free(is_test), free(acc);
    heed_probe_data_free(data);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
