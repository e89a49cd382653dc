/* train_tokenizer.c — `heed train-tokenizer`: trains a byte-level BPE tokenizer on a UTF-8 text file
 * (heed_bpe_train) and writes DIR/tokenizer.json and DIR/tokenizer_config.json, each atomically, only
 * after both are built and the tokenizer has been read back. */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"
#include "io/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_SPECIAL 256

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: heed train-tokenizer -f CORPUS.txt -o DIR [--vocab N] [--min-frequency N]\n"
            "                            [--special A,B,...] [--bos TOK] [--eos TOK] [--no-bos]\n"
            "  Trains a byte-level BPE tokenizer (Llama 3 pre-tokenizer regex, GPT-2 byte alphabet) on CORPUS\n"
            "  (UTF-8) and writes DIR/tokenizer.json and DIR/tokenizer_config.json (DIR is created if absent).\n"
            "  --vocab N          total vocabulary, special tokens included (default 4096)\n"
            "  --min-frequency N  merge only pairs seen at least N times (default 2)\n"
            "  --bos TOK          the BOS token (default <|begin_of_text|>), id 0\n"
            "  --eos TOK          the EOS token (default <|end_of_text|>), the next id\n"
            "  --special A,B      more special tokens (comma-separated), after BOS and EOS\n"
            "  --no-bos           do not prepend BOS when encoding (the token still exists)\n"
            "  Special tokens in CORPUS are kept whole and not learned from. Progress goes to stderr.\n");
    return rc;
}

/* Appends s to list [*n] unless it is already there; 0 when the list is full. */
static int add_special(const char **list, int *n, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], s)) return 1;
    if (*n == MAX_SPECIAL) return 0;
    list[(*n)++] = s;
    return 1;
}

/* Creates dir unless it exists; 0 after printing why on failure. */
static int make_dir(const char *dir)
{
    if (heed_is_dir(dir)) return 1;
    if (mkdir(dir, 0777) == 0) return 1;
    fprintf(stderr, "heed train-tokenizer: cannot create directory %s: %s\n", dir, strerror(errno));
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int cmd_train_tokenizer(int argc, char **argv)
{
    const char *corpus = NULL, *dir = NULL, *special_arg = NULL;
    const char *bos = "<|begin_of_text|>", *eos = "<|end_of_text|>";
    double vocab = 4096, min_freq = 2;
    int add_bos = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "-f") && more) corpus = argv[++i];
        else if (!strcmp(a, "-o") && more) dir = argv[++i];
        else if (!strcmp(a, "--special") && more) special_arg = argv[++i];
        else if (!strcmp(a, "--bos") && more) bos = argv[++i];
        else if (!strcmp(a, "--eos") && more) eos = argv[++i];
        else if (!strcmp(a, "--no-bos")) add_bos = 0;
        else if ((!strcmp(a, "--vocab") || !strcmp(a, "--min-frequency")) && more) {
            double *v = !strcmp(a, "--vocab") ? &vocab : &min_freq;
            if (!cli_parse_num(v, argv[++i]) || *v != (double)(int64_t)*v || *v < 1 || *v > 2147483647.0) {
                fprintf(stderr, "heed train-tokenizer: %s: expected a whole number from 1 to 2^31-1, got '%s'\n", a,
                        argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "heed train-tokenizer: unknown or incomplete option '%s'\n", a);
            return usage(stderr, 2);
        }
    }
    if (!corpus || !dir) {
        fprintf(stderr, "heed train-tokenizer: -f CORPUS and -o DIR are required\n");
        return usage(stderr, 2);
    }
    const char *special[MAX_SPECIAL];
    int n_special = 0;
    char *list = special_arg ? strdup(special_arg) : NULL;
    if (special_arg && !list) {
        fprintf(stderr, "heed train-tokenizer: out of memory\n");
        return 1;
    }
    int ok = add_special(special, &n_special, bos) && add_special(special, &n_special, eos);
    for (char *s = list, *end; ok && s; s = end ? end + 1 : NULL) {
        end = strchr(s, ',');
        if (end) *end = 0;
        if (!*s) {
            fprintf(stderr, "heed train-tokenizer: --special: an empty token (a stray comma?) in '%s'\n", special_arg);
            free(list);
            return 2;
        }
        ok = add_special(special, &n_special, s);
    }
    if (!ok) {
        fprintf(stderr, "heed train-tokenizer: more than %d special tokens\n", MAX_SPECIAL);
        free(list);
        return 2;
    }
    heed_bpe_train_opts o;
    heed_bpe_train_opts_init(&o);
    o.vocab_size = (int64_t)vocab, o.min_frequency = (int64_t)min_freq;
    o.special = special, o.n_special = n_special, o.bos = bos, o.eos = eos, o.add_bos = add_bos;

    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 1) != HEED_OK) {
        fprintf(stderr, "heed train-tokenizer: cannot create a context\n");
        free(list);
        return 1;
    }
    int rc = 1;
    char *text = NULL, *json = NULL, *cfg = NULL, *p_tok = NULL, *p_cfg = NULL;
    size_t len = 0, json_len = 0, cfg_len = 0;
    heed_tokenizer *tok = NULL;
    if (heed_read_file(ctx, &text, &len, corpus, (size_t)1 << 31) != HEED_OK) {
        fprintf(stderr, "heed train-tokenizer: %s\n", heed_ctx_error(ctx));
        goto out;
    }
    fprintf(stderr, "heed train-tokenizer: training on %s (%zu bytes) to %lld ids...\n", corpus, len,
            (long long)o.vocab_size);
    double t0 = now_s();
    if (heed_bpe_train(ctx, &json, &json_len, text, len, &o) != HEED_OK ||
        heed_bpe_train_config(ctx, &cfg, &cfg_len, &o) != HEED_OK ||
        heed_tokenizer_parse(ctx, &tok, json, json_len, "the trained tokenizer.json") != HEED_OK) {
        fprintf(stderr, "heed train-tokenizer: %s: %s\n", corpus, heed_ctx_error(ctx));
        goto out;
    }
    double secs = now_s() - t0;
    int64_t n_ids = heed_tokenizer_n_ids(tok);
    p_tok = heed_path_join(dir, "tokenizer.json"), p_cfg = heed_path_join(dir, "tokenizer_config.json");
    if (!p_tok || !p_cfg) {
        fprintf(stderr, "heed train-tokenizer: out of memory\n");
        goto out;
    }
    if (!make_dir(dir)) goto out;
    if (heed_write_file(ctx, p_tok, json, json_len) != HEED_OK || heed_write_file(ctx, p_cfg, cfg, cfg_len) != HEED_OK) {
        fprintf(stderr, "heed train-tokenizer: %s\n", heed_ctx_error(ctx));
        goto out;
    }
    fprintf(stderr, "heed train-tokenizer: %lld ids (%d special, 256 bytes, %lld learned) in %.2f s -> %s\n",
            (long long)n_ids, n_special, (long long)(n_ids - n_special - 256), secs, p_tok);
    if (n_ids < o.vocab_size)
        fprintf(stderr, "heed train-tokenizer: note: stopped at %lld ids: no pair left that occurs %lld times\n",
                (long long)n_ids, (long long)o.min_frequency);
    rc = 0;
out:
    heed_tokenizer_free(tok);
    free(text), free(json), free(cfg), free(p_tok), free(p_cfg), free(list);
    heed_ctx_free(ctx);
    return rc;
}
