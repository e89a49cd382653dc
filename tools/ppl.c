/* ppl.c — `heed ppl`: perplexity over a text file (or given ids) by Hugging Face's sliding-window method:
 * windows of --ctx tokens starting every --stride tokens, each scoring only the tokens no earlier window
 * scored, with the rest of the window as context. The context part runs through the KV cache without
 * logits, so memory holds logits for a chunk of scored tokens only. */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"
#include "io/io.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 128 /* scored tokens per forward call */

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed ppl [-m MODEL] (-f FILE | --ids IDS) [--ctx N] [--stride S] [--kv full] [--rope-base THETA]\n"
               "                [--attn-log-scale N0] [--threads N] [--intervene SPEC]...\n"
               "  Perplexity exp(mean NLL) of the tokens of FILE (encoded with MODEL/tokenizer.json, special\n"
               "  tokens added as Hugging Face `encode` does) or of IDS, by the sliding-window method of the\n"
               "  transformers perplexity guide: windows of N tokens (default min(max_position_embeddings,\n"
               "  1024)) start every S tokens (default N/2); a window scores the tokens after the previous\n"
               "  window's end, the first token of the text is never scored. Last stdout line:\n"
               "  {\"ppl\": ..., \"tokens\": scored tokens}.\n"
               "  --rope-base THETA: the RoPE base instead of config.json's rope_theta (context extension).\n"
               "  --attn-log-scale N0: attention logits of position p times max(1, log(p+1)/log(N0)).\n"
               CLI_INTERVENE_HELP);
    return rc;
}

/* The whole of path, NUL-terminated, [*len]; NULL (after printing why) on failure or on a NUL byte. */
static char *read_text(heed_ctx *ctx, const char *path, size_t *len)
{
    char *buf = NULL;
    if (heed_read_file(ctx, &buf, len, path, (size_t)1 << 31) != HEED_OK) {
        fprintf(stderr, "heed ppl: %s\n", heed_ctx_error(ctx));
        return NULL;
    }
    if (memchr(buf, 0, *len)) {
        fprintf(stderr, "heed ppl: %s: holds a NUL byte: not a text file\n", path);
        free(buf);
        return NULL;
    }
    return buf;
}

int cmd_ppl(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *ids_arg = NULL, *kv = NULL;
    double ctx_len = 0, stride = 0, threads = 0, rope_base = NAN, log_n0 = NAN;
    cli_interventions iv = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--rope-base") || !strcmp(a, "--attn-log-scale")) { /* the model's setters check them */
            if (!v || !cli_parse_num(a[2] == 'r' ? &rope_base : &log_n0, v)) {
                fprintf(stderr, "heed ppl: %s: expected a number\n", a);
                return usage(stderr, 2);
            }
            i++;
            continue;
        }
        if (!strcmp(a, "--intervene")) {
            if (!cli_add_intervention(&iv, v, "ppl")) return usage(stderr, 2);
            i++;
            continue;
        }
        const char **str = !strcmp(a, "-m") || !strcmp(a, "--model") ? &model
                           : !strcmp(a, "-f") ? &file
                           : !strcmp(a, "--ids") ? &ids_arg
                           : !strcmp(a, "--kv") ? &kv
                           : NULL;
        double *num = !strcmp(a, "--ctx") ? &ctx_len : !strcmp(a, "--stride") ? &stride
                      : !strcmp(a, "--threads") ? &threads : NULL;
        i++; /* the value */
        if ((!str && !num) || !v || (num && (!cli_parse_num(num, v) || *num < 1 || *num != floor(*num)))) {
            fprintf(stderr, "heed ppl: %s '%s'%s%s\n",
                    !str && !num ? "unknown option" : v ? "expected a whole number >= 1 after" : "no value after", a,
                    num && v ? ": " : "", num && v ? v : "");
            return usage(stderr, 2);
        }
        if (str) *str = v;
    }
    if (!cli_check_model_kv(&model, kv, "ppl")) return 2;
    if (!file == !ids_arg) {
        fprintf(stderr, "heed ppl: give exactly one of -f FILE and --ids IDS\n");
        return 2;
    }
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    char *text = NULL;
    int64_t N = 0;
    int rc = 1;
    size_t text_len = 0;
    if (!cli_create_ctx(&ctx, (int)threads, "ppl")) goto done;
    if (!cli_load_model(&m, ctx, model, rope_base, log_n0, "ppl") || !cli_apply_interventions(&iv, ctx, m, "ppl"))
        goto done;
    const heed_config *c = heed_model_config(m);
    if (!heed_model_has_lm_head(m)) {
        fprintf(stderr, "heed ppl: %s is an encoder without an LM head: no perplexity\n", c->model_type);
        goto done;
    }
    if (file && (!(text = read_text(ctx, file, &text_len)) || !cli_load_tokenizer(&tok, ctx, model, 1, "ppl")))
        goto done;
    if (!cli_input_ids(&ids, &N, ctx, tok, text, ids_arg, "ppl")) goto done;
    if (N < 2) {
        fprintf(stderr, "heed ppl: %lld tokens: at least 2 are needed (the first is never scored)\n", (long long)N);
        goto done;
    }
    for (int64_t i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab) {
            fprintf(stderr, "heed ppl: token %lld is id %d, outside the model's vocabulary [0, %lld)\n", (long long)i,
                    ids[i], (long long)c->vocab);
            goto done;
        }
    int64_t W = ctx_len > 0 ? (int64_t)ctx_len : c->max_pos < 1024 ? c->max_pos : 1024;
    int64_t S = stride > 0 ? (int64_t)stride : (W / 2 > 0 ? W / 2 : 1);
    if (W < 2 || S > W) {
        fprintf(stderr, "heed ppl: --ctx %lld and --stride %lld: expected ctx >= 2 and stride <= ctx\n", (long long)W,
                (long long)S);
        goto done;
    }
    int64_t V = c->vocab;
    if (!(logits = malloc(sizeof(float) * (size_t)(CHUNK * V)))) {
        fprintf(stderr, "heed ppl: out of memory\n");
        goto done;
    }
    double nll = 0;
    int64_t scored = 0;
    for (int64_t begin = 0, prev_end = 0;; begin += S) {
        int64_t end = begin + W < N ? begin + W : N;
        /* tokens j in [s0, end) are scored from the logits at j - 1; ids [begin, s0 - 1) are context only */
        int64_t s0 = prev_end > begin + 1 ? prev_end : begin + 1;
        if (s0 - 1 > begin &&
            heed_model_forward(ctx, m, NULL, NULL, ids + begin, NULL, s0 - 1 - begin, 0, 0) != HEED_OK) {
            fprintf(stderr, "heed ppl: %s\n", heed_ctx_error(ctx));
            goto done;
        }
        for (int64_t j = s0; j < end; j += CHUNK) {
            int64_t n = end - j < CHUNK ? end - j : CHUNK;
            if (heed_model_forward(ctx, m, logits, NULL, ids + j - 1, NULL, n, j - 1 - begin, 0) != HEED_OK) {
                fprintf(stderr, "heed ppl: %s\n", heed_ctx_error(ctx));
                goto done;
            }
            for (int64_t r = 0; r < n; r++) nll -= heed_logprob(logits + r * V, V, ids[j + r]);
            scored += n;
        }
        prev_end = end;
        if (end == N) break;
    }
    printf("{\"ppl\": %.9g, \"tokens\": %lld}\n", exp(nll / (double)scored), (long long)scored);
    rc = 0;
done:
    free(text);
    free(ids);
    free(logits);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
