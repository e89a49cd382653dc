/* tokenize.c — `heed tokenize` (stdin bytes to one JSON array of ids) and `heed detokenize` (ids to the
 * exact text), over MODEL/tokenizer.json. Special tokens follow tokenizer.json's post-processor, as
 * tokenizers' `encode` does; a tokenizer_config.json that disagrees with it is reported on stderr. */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int usage(const char *cmd, FILE *f, int rc)
{
    if (!strcmp(cmd, "tokenize"))
        fprintf(f, "usage: heed tokenize [-m MODEL] [--no-special] < text\n"
                   "  Encodes stdin (raw UTF-8 bytes) with MODEL/tokenizer.json (MODEL: a directory or the file)\n"
                   "  and prints one JSON array of ids. Special tokens (BOS, CLS/SEP, ...) are added as\n"
                   "  tokenizer.json's post-processor says, as Hugging Face `encode` does; --no-special omits them.\n"
                   "  Truncation and padding set in tokenizer.json apply, as in `encode`.\n");
    else
        fprintf(f, "usage: heed detokenize [-m MODEL] --ids 1,2,3 [--skip-special]\n"
                   "  Prints the decoded text exactly (no newline added). --skip-special drops special tokens.\n");
    return rc;
}

static char *read_stream(FILE *f, size_t *n)
{
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    *n = 0;
    while (buf) {
        if (*n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) break;
            buf = p;
        }
        size_t k = fread(buf + *n, 1, cap - *n, f);
        *n += k;
        if (k == 0) return ferror(f) ? (free(buf), NULL) : buf;
    }
    free(buf);
    return NULL;
}

/* Warns when MODEL/tokenizer_config.json asks for BOS/EOS tokens that the post-processor does not add
 * (or the reverse): transformers may rebuild the template from these flags; heed follows tokenizer.json. */
static void check_config(heed_ctx *ctx, const heed_tokenizer *tok, const char *model)
{
    char path[4096];
    struct stat sb;
    if (stat(model, &sb) || !S_ISDIR(sb.st_mode)) return;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", model);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n;
    char *js = read_stream(f, &n);
    fclose(f);
    heed_gen_config gen;
    heed_gen_config_init(&gen);
    int ok = js && heed_gen_config_parse(ctx, &gen, js, n, path) == HEED_OK;
    free(js);
    if (!ok) return;
    int32_t *ids = NULL;
    int64_t m = 0;
    if (heed_tokenize(ctx, &ids, &m, tok, "", 0, HEED_TOK_SPECIAL | HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD) != HEED_OK) return;
    int64_t bos = gen.bos_token[0] ? heed_tokenizer_token_id(tok, gen.bos_token) : -1;
    int64_t eos = gen.eos_token[0] ? heed_tokenizer_token_id(tok, gen.eos_token) : -1;
    int has_bos = bos >= 0 && m > 0 && ids[0] == bos, has_eos = eos >= 0 && m > 0 && ids[m - 1] == eos;
    free(ids);
    if ((gen.add_bos == 1 && bos >= 0 && !has_bos) || (gen.add_bos == 0 && has_bos))
        fprintf(stderr, "heed tokenize: note: tokenizer_config.json has add_bos_token=%s but tokenizer.json's "
                        "post-processor %s; following tokenizer.json, as tokenizers' encode does\n",
                gen.add_bos ? "true" : "false", has_bos ? "adds it" : "does not");
    if ((gen.add_eos == 1 && eos >= 0 && !has_eos) || (gen.add_eos == 0 && has_eos))
        fprintf(stderr, "heed tokenize: note: tokenizer_config.json has add_eos_token=%s but tokenizer.json's "
                        "post-processor %s; following tokenizer.json, as tokenizers' encode does\n",
                gen.add_eos ? "true" : "false", has_eos ? "adds it" : "does not");
}

int cmd_tokenize(int argc, char **argv)
{
    const char *cmd = argv[0], *model = NULL, *ids_arg = NULL;
    int special = 1, skip = 0, dec = !strcmp(cmd, "detokenize");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(cmd, stdout, 0);
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (dec && !strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
        else if (!dec && !strcmp(argv[i], "--no-special")) special = 0;
        else if (dec && !strcmp(argv[i], "--skip-special")) skip = 1;
        else {
            fprintf(stderr, "heed %s: unknown or incomplete option '%s'\n", cmd, argv[i]);
            return usage(cmd, stderr, 2);
        }
    }
    if (!model && !(model = cli_default_model(cmd))) return 2;
    if (dec && !ids_arg) {
        fprintf(stderr, "heed detokenize: --ids is required\n");
        return 2;
    }
    heed_ctx *ctx = NULL;
    heed_tokenizer *tok = NULL;
    if (!cli_create_ctx(&ctx, 1, cmd)) return 1;
    int rc = 1;
    if (heed_tokenizer_load(ctx, &tok, model) != HEED_OK) {
        fprintf(stderr, "heed %s: %s\n", cmd, heed_ctx_error(ctx));
        goto out;
    }
    if (dec) {
        int32_t *ids = NULL;
        int64_t n = 0;
        char *text = NULL;
        size_t len = 0;
        if (!cli_parse_ids(&ids, &n, ids_arg)) fprintf(stderr, "heed detokenize: --ids: expected comma-separated integers\n");
        else if (heed_detokenize(ctx, &text, &len, tok, ids, n, skip) != HEED_OK)
            fprintf(stderr, "heed detokenize: %s\n", heed_ctx_error(ctx));
        else
            rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
        free(ids);
        free(text);
    } else {
        size_t n;
        char *text = read_stream(stdin, &n);
        int32_t *ids = NULL;
        int64_t m = 0;
        if (!text) fprintf(stderr, "heed tokenize: cannot read stdin\n");
        else if (heed_tokenize(ctx, &ids, &m, tok, text, n, special ? HEED_TOK_SPECIAL : 0) != HEED_OK)
            fprintf(stderr, "heed tokenize: %s\n", heed_ctx_error(ctx));
        else {
            if (special) check_config(ctx, tok, model);
            putchar('[');
            for (int64_t i = 0; i < m; i++) printf(i ? ", %d" : "%d", ids[i]);
            printf("]\n");
            rc = fflush(stdout) == 0 ? 0 : 1;
        }
        free(text);
        free(ids);
    }
out:
    heed_tokenizer_free(tok);
    heed_ctx_free(ctx);
    return rc;
}
