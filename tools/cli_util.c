/* cli_util.c — small parsers and loaders shared by the CLI subcommands. */
#include "cli_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_parse_ids(int32_t **ids, int64_t *n, const char *s)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids) return 0;
    if (!*s) return 1;
    for (const char *p = s;;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < INT32_MIN || v > INT32_MAX || (*end && *end != ',')) return 0;
        (*ids)[(*n)++] = (int32_t)v;
        if (!*end) return 1;
        p = end + 1;
    }
}

int cli_parse_num(double *v, const char *s)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end;
}

int cli_token_id(int32_t *id, heed_ctx *ctx, const heed_tokenizer *tok, const char *text, const char *id_arg,
                 int64_t vocab, const char *opt, const char *cmd)
{
    if (id_arg) {
        double v;
        if (!cli_parse_num(&v, id_arg) || v != floor(v) || v < 0 || v >= (double)vocab) {
            fprintf(stderr, "heed %s: --%s-id: expected an id 0..%lld (the model's vocabulary), got '%s'\n", cmd, opt,
                    (long long)vocab - 1, id_arg);
            return 0;
        }
        *id = (int32_t)v;
        return 1;
    }
    int32_t *ids = NULL;
    int64_t n = 0;
    if (heed_tokenize(ctx, &ids, &n, tok, text, strlen(text), HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD) != HEED_OK) {
        fprintf(stderr, "heed %s: --%s: %s\n", cmd, opt, heed_ctx_error(ctx));
        free(ids);
        return 0;
    }
    int one = n == 1 && ids[0] < vocab;
    if (n != 1)
        fprintf(stderr, "heed %s: --%s '%s' encodes to %lld tokens, expected exactly one (give --%s-id)\n", cmd, opt,
                text, (long long)n, opt);
    else if (!one)
        fprintf(stderr, "heed %s: --%s '%s' is id %d, outside the model's vocabulary of %lld\n", cmd, opt, text, ids[0],
                (long long)vocab);
    else *id = ids[0];
    free(ids);
    return one;
}

int32_t cli_tokenizer_bos(heed_ctx *ctx, const heed_tokenizer *tok)
{
    static const char probe[] = "a";
    const unsigned flags = HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD;
    int32_t *a = NULL, *b = NULL, bos = -1;
    int64_t na = 0, nb = 0;
    if (heed_tokenize(ctx, &a, &na, tok, probe, sizeof probe - 1, flags | HEED_TOK_SPECIAL) == HEED_OK &&
        heed_tokenize(ctx, &b, &nb, tok, probe, sizeof probe - 1, flags) == HEED_OK && na == nb + 1 &&
        !memcmp(a + 1, b, sizeof(int32_t) * (size_t)nb))
        bos = a[0];
    free(a), free(b);
    return bos;
}

int cli_load_tokenizer(heed_tokenizer **tok, heed_ctx *ctx, const char *model, int required, const char *cmd)
{
    *tok = NULL;
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/tokenizer.json", model);
    if (stat(path, &sb)) {
        if (required)
            fprintf(stderr, "heed %s: %s: no tokenizer.json (needed for text; --ids IDS needs none)\n", cmd, model);
        return !required;
    }
    if (heed_tokenizer_load(ctx, tok, path) == HEED_OK) return 1;
    fprintf(stderr, "heed %s: %s\n", cmd, heed_ctx_error(ctx));
    return 0;
}

int cli_input_ids(int32_t **ids, int64_t *n, heed_ctx *ctx, const heed_tokenizer *tok, const char *text,
                  const char *ids_arg, const char *cmd)
{
    *ids = NULL;
    *n = 0;
    if (!text == !ids_arg) {
        fprintf(stderr, "heed %s: give exactly one of -p TEXT and --ids IDS\n", cmd);
        return 0;
    }
    if (ids_arg) {
        if (cli_parse_ids(ids, n, ids_arg)) return 1;
        fprintf(stderr, "heed %s: --ids: expected comma-separated integers, got '%s'\n", cmd, ids_arg);
        return 0;
    }
    unsigned flags = HEED_TOK_SPECIAL | HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD;
    if (heed_tokenize(ctx, ids, n, tok, text, strlen(text), flags) == HEED_OK) return 1;
    fprintf(stderr, "heed %s: -p: %s\n", cmd, heed_ctx_error(ctx));
    return 0;
}

const char *cli_default_model(const char *cmd)
{
    const char *env = getenv("HEED_MODEL");
    if (env && *env) return env;
    static const char *const dirs[] = {HEED_SOURCE_MODEL_DIR, HEED_INSTALL_MODEL_DIR};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", dirs[i]);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            return dirs[i];
        }
    }
    fprintf(stderr, "heed %s: no -m MODEL given and the default model is in none of $HEED_MODEL, %s, %s\n", cmd,
            HEED_SOURCE_MODEL_DIR, HEED_INSTALL_MODEL_DIR);
    return NULL;
}

int cli_check_model_kv(const char **model, const char *kv, const char *cmd)
{
    if (!*model && !(*model = cli_default_model(cmd))) return 0;
    if (kv && strcmp(kv, "full")) {
        fprintf(stderr, "heed %s: --kv %s: unknown KV policy (only `full` exists so far)\n", cmd, kv);
        return 0;
    }
    return 1;
}

int cli_load_model(heed_model **m, heed_ctx *ctx, const char *dir, double rope_base, double log_n0,
                   const char *cmd)
{
    *m = NULL;
    heed_model *mm = NULL;
    const char *opt = NULL;
    if (heed_model_load(ctx, &mm, dir) != HEED_OK ||
        (!isnan(rope_base) && heed_model_set_rope_theta(ctx, mm, rope_base) != HEED_OK && (opt = "--rope-base")) ||
        (!isnan(log_n0) && heed_model_set_attn_log_scale(ctx, mm, log_n0) != HEED_OK &&
         (opt = "--attn-log-scale"))) {
        fprintf(stderr, "heed %s: %s%s%s\n", cmd, opt ? opt : "", opt ? ": " : "", heed_ctx_error(ctx));
        heed_model_free(mm);
        return 0;
    }
    *m = mm;
    return 1;
}

int cli_parse_threads(int *n, const char *s)
{
    char *end;
    const long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > 4096) return 0;
    *n = (int)v;
    return 1;
}

int cli_threads_option(int *n, const char *arg, const char *cmd)
{
    if (!arg || cli_parse_threads(n, arg)) return 1;
    fprintf(stderr, "heed %s: --threads: expected a whole number 1..4096, got '%s'\n", cmd, arg);
    return 0;
}

int cli_create_ctx(heed_ctx **ctx, int n_threads, const char *cmd)
{
    if (heed_ctx_create(ctx, n_threads) == HEED_OK) return 1;
    fprintf(stderr, "heed %s: cannot create a context (%d threads)\n", cmd, n_threads);
    return 0;
}

/* A whole number at *s up to a character of stop (or the end); advances *s past it. */
static int spec_int(int64_t *v, const char **s, const char *stop)
{
    char *end;
    if (**s < '0' || **s > '9') return 0;
    long long x = strtoll(*s, &end, 10);
    if (x < 0 || x > (1LL << 40) || (*end && !strchr(stop, *end))) return 0;
    *v = x;
    *s = end;
    return 1;
}

int cli_add_intervention(cli_interventions *x, const char *spec, const char *cmd)
{
    /* the head-output scalings handled here, beside the attention edits of heed_intervention (kinds >= 0) */
    enum { KIND_ABLATE = -1, KIND_SCALE = -2 };
    static const struct { const char *name; int kind, span; } KINDS[] = {
        {"bos", HEED_EDIT_BOS, 0},     {"act", HEED_EDIT_ACT, 0},         {"var", HEED_EDIT_VAR, 1},
        {"steer", HEED_EDIT_STEER, 1}, {"inhibit", HEED_EDIT_INHIBIT, 0}, {"mean", HEED_EDIT_MEAN, 0},
        {"ablate", KIND_ABLATE, 0},    {"scale", KIND_SCALE, 0}};
    if (!spec) {
        fprintf(stderr, "heed %s: --intervene: no SPEC after it\n", cmd);
        return 0;
    }
    const char *why = NULL, *colon = strchr(spec, ':'), *s = colon ? colon + 1 : spec;
    int k = -1;
    for (int i = 0; colon && i < (int)(sizeof KINDS / sizeof KINDS[0]); i++)
        if ((size_t)(colon - spec) == strlen(KINDS[i].name) && !strncmp(spec, KINDS[i].name, (size_t)(colon - spec))) k = i;
    int64_t L = 0, H = 0, a = 0, b = 0;
    double amount = NAN;
    if (k < 0) why = "expected bos, act, var, steer, inhibit, mean, ablate or scale, then ':'";
    else if (!spec_int(&L, &s, ".") || *s++ != '.' || !spec_int(&H, &s, ":")) why = "expected L.H (layer.head) after the kind";
    else if (KINDS[k].span && (*s++ != ':' || !spec_int(&a, &s, "-") || *s++ != '-' || !spec_int(&b, &s, ":")))
        why = "expected a key span a-b after L.H";
    else if (*s == ':' && (KINDS[k].kind == HEED_EDIT_BOS || KINDS[k].kind == HEED_EDIT_MEAN || KINDS[k].kind == KIND_ABLATE))
        why = "takes no amount";
    else if (KINDS[k].kind == KIND_SCALE && (*s != ':' || !cli_parse_num(&amount, s + 1) || !isfinite(amount) ||
                                     fabs(amount) > 1e30))
        why = "expected scale:L.H:x with x a finite number";
    else if (*s == ':' && KINDS[k].kind >= 0 && (!cli_parse_num(&amount, s + 1) || !(amount >= 0.0 && amount <= 1.0)))
        why = "the amount must be a number in [0, 1]";
    else if (*s && *s != ':') why = "unexpected text after the head";
    else if ((KINDS[k].kind < 0 ? x->n_scale : x->n_iv) >= CLI_MAX_INTERVENE) why = "too many --intervene";
    if (why) {
        fprintf(stderr, "heed %s: --intervene %s: %s\n", cmd, spec, why);
        return 0;
    }
    if (KINDS[k].kind < 0) {
        x->scaled[x->n_scale][0] = L, x->scaled[x->n_scale][1] = H;
        x->scale_by[x->n_scale] = KINDS[k].kind == KIND_ABLATE ? 0.0f : (float)amount;
        x->scale_spec[x->n_scale++] = spec;
        return 1;
    }
    heed_intervention *iv = &x->iv[x->n_iv];
    heed_intervention_init(iv, (heed_edit)KINDS[k].kind, L, H);
    if (!isnan(amount)) iv->amount = amount;
    iv->a = a, iv->b = b;
    x->iv_spec[x->n_iv++] = spec;
    return 1;
}

int cli_apply_interventions(const cli_interventions *x, heed_ctx *ctx, heed_model *m, const char *cmd)
{
    const heed_config *c = heed_model_config(m);
    /* one more entry at a time, so that a refusal names its SPEC */
    for (int k = 1; k <= x->n_iv; k++)
        if (heed_model_set_interventions(ctx, m, x->iv, k) != HEED_OK) {
            fprintf(stderr, "heed %s: --intervene %s: %s\n", cmd, x->iv_spec[k - 1], heed_ctx_error(ctx));
            return 0;
        }
    if (!x->n_scale) return 1;
    float *scale = malloc(sizeof(float) * (size_t)(c->n_layers * c->n_heads));
    if (!scale) {
        fprintf(stderr, "heed %s: out of memory\n", cmd);
        return 0;
    }
    for (int64_t i = 0; i < c->n_layers * c->n_heads; i++) scale[i] = 1.0f;
    int ok = 1;
    for (int k = 0; k < x->n_scale && ok; k++) {
        int64_t L = x->scaled[k][0], h = x->scaled[k][1];
        if (L >= c->n_layers || h >= c->n_heads) {
            fprintf(stderr, "heed %s: --intervene %s: this model has %lld layers of %lld heads\n", cmd, x->scale_spec[k],
                    (long long)c->n_layers, (long long)c->n_heads);
            ok = 0;
        } else scale[L * c->n_heads + h] *= x->scale_by[k];
    }
    if (ok && heed_model_set_head_scale(ctx, m, scale) != HEED_OK) {
        fprintf(stderr, "heed %s: --intervene: %s\n", cmd, heed_ctx_error(ctx));
        ok = 0;
    }
    free(scale);
    return ok;
}
