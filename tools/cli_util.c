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
