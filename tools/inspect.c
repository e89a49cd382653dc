/* inspect.c — `heed inspect`: one forward pass over a prompt with the attention maps captured, written as
 * the self-contained HTML viewer (heed_report) with head scores from src/probe, and optionally one PNG
 * heatmap per selected head. */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Captured f32 maps per forward pass: layers are captured in groups under this many bytes (at least one
 * layer), re-running the pass for the next group, so a long prompt on a large model fits in memory. */
#define CAPTURE_BYTES ((int64_t)1 << 30)
/* Without --layers/--heads every head's full map is embedded while the maps hold at most this many
 * weights in all (~10 MB of page for attention with little structure); past it only thumbnails. */
#define DEFAULT_FULL_CELLS ((int64_t)1 << 25)

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed inspect [-m MODEL] (-p TEXT | --ids IDS) -o OUT.html [--layers LIST] [--heads LIST]\n"
               "                    [--png DIR] [--title TEXT] [--threads N]\n"
               "  Runs MODEL once over TEXT (encoded with MODEL/tokenizer.json, special tokens added) or IDS and\n"
               "  writes OUT.html, one self-contained page (no network): a layers x heads grid of attention\n"
               "  thumbnails coloured by a head score, a token view and a heatmap of each head, the score tables.\n"
               "  --layers, --heads LIST: the heads whose full maps the page holds (and --png draws), as\n"
               "      comma-separated indices and ranges, e.g. 0,2-5, or `all`. Without either: every head when\n"
               "      the maps hold at most 2^25 weights in all, else none (thumbnails and scores only).\n"
               "      Giving one of them selects every index of the other.\n"
               "  --png DIR: also writes DIR/L<layer>_H<head>.png (square-root colour scale over [0, 1]) per\n"
               "      selected head; DIR is created if missing.\n"
               "  --title TEXT: the page's title (default: MODEL and the token count).\n"
               "  The page's scores: sink (alpha of the first token), hidden sinks (ACT), previous-token,\n"
               "  duplicate and induction (TransformerLens head_detector), mean query entropy (docs/viewer.md).\n");
    return rc;
}

/* Parses LIST ("all" or comma-separated indices and ranges a-b) into sel [n] (set to 1). Returns 1 when
 * well formed with every index in [0, n), else 0. */
static int parse_list(uint8_t *sel, const char *s, int64_t n)
{
    if (!strcmp(s, "all")) {
        memset(sel, 1, (size_t)n);
        return 1;
    }
    for (const char *p = s;;) {
        char *end;
        long long a = strtoll(p, &end, 10), b = a;
        if (end == p || a < 0) return 0;
        if (*end == '-') {
            p = end + 1;
            b = strtoll(p, &end, 10);
            if (end == p || b < a) return 0;
        }
        if (b >= n) return 0;
        for (long long i = a; i <= b; i++) sel[i] = 1;
        if (!*end) return 1;
        if (*end != ',') return 0;
        p = end + 1;
    }
}

/* The text shown for token id: its own decoding (so byte-level BPE shows as text), else (a part of a UTF-8
 * character decodes to U+FFFD) its vocabulary string, else "#id". malloc'd; NULL when out of memory. */
static char *token_text(heed_ctx *ctx, const heed_tokenizer *tok, int32_t id)
{
    if (tok) {
        char *s;
        size_t n;
        if (heed_detokenize(ctx, &s, &n, tok, &id, 1, 0) == HEED_OK) {
            if (n && !strstr(s, "\xef\xbf\xbd")) return s;
            free(s);
        }
        const char *t = heed_tokenizer_token(tok, id);
        if (t) return strdup(t);
    }
    char b[24];
    snprintf(b, sizeof b, "#%d", (int)id);
    return strdup(b);
}

enum { SC_SINK, SC_HIDDEN, SC_PREV, SC_DUP, SC_IND, SC_ENTROPY, N_SCORES };
static const char *const score_name[N_SCORES] = {"sink", "hidden sinks", "previous token", "duplicate", "induction",
                                                  "entropy"};
static const char *const score_desc[N_SCORES] = {
    "alpha of the first token: its mean attention over the queries that see it (When Attention Sink Emerges; "
    "> 0.3 marks a sink)",
    "how many positions after the first receive a mean attention above 0.1 (ACT's hidden sinks)",
    "share of the attention on the previous token (TransformerLens head_detector)",
    "share of the attention on earlier copies of the current token (head_detector)",
    "share of the attention on the tokens after earlier copies of the current token (head_detector; needs "
    "repeated text)",
    "mean over queries of the entropy of the attention row, in nats (low: focused, high: spread out)"};

/* The scores of one head from its map A [T, T] into slot k of each table in sc (all but the entropy, which
 * the probe streams). */
/* col, alpha [T] and pos [T]: scratch. */
static void head_scores(float *const *sc, int64_t k, const float *A, const int32_t *ids, int64_t T, int causal,
                        float *col, float *alpha, int64_t *pos)
{
    memset(col, 0, sizeof(float) * (size_t)T);
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) col[j] += A[i * T + j];
    heed_score_sink_alpha(alpha, col, T, causal);
    sc[SC_SINK][k] = alpha[0];
    sc[SC_HIDDEN][k] = (float)heed_score_hidden_sinks(pos, alpha, T, 0.1);
    sc[SC_PREV][k] = (float)heed_score_pattern(NULL, A, ids, T, HEED_PATTERN_PREV_TOKEN);
    sc[SC_DUP][k] = (float)heed_score_pattern(NULL, A, ids, T, HEED_PATTERN_DUPLICATE);
    sc[SC_IND][k] = (float)heed_score_pattern(NULL, A, ids, T, HEED_PATTERN_INDUCTION);
}

int cmd_inspect(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *ids_arg = NULL, *out = NULL, *layers_arg = NULL, *heads_arg = NULL,
               *png_dir = NULL, *title = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        const char **str = !strcmp(a, "-m") || !strcmp(a, "--model") ? &model
                           : !strcmp(a, "-p") || !strcmp(a, "--prompt") ? &text
                           : !strcmp(a, "--ids") ? &ids_arg
                           : !strcmp(a, "-o") ? &out
                           : !strcmp(a, "--layers") ? &layers_arg
                           : !strcmp(a, "--heads") ? &heads_arg
                           : !strcmp(a, "--png") ? &png_dir
                           : !strcmp(a, "--title") ? &title
                           : NULL;
        if (!strcmp(a, "--threads") && v) {
            if (!cli_parse_threads(&threads, v)) {
                fprintf(stderr, "heed inspect: --threads %s: expected a whole number from 1 to 4096\n", v);
                return 2;
            }
            i++;
            continue;
        }
        if (!str || !v) {
            fprintf(stderr, "heed inspect: %s '%s'\n", str ? "no value after" : "unknown option", a);
            return usage(stderr, 2);
        }
        i++;
        *str = v;
    }
    if (!out) {
        fprintf(stderr, "heed inspect: -o OUT.html is required\n");
        return usage(stderr, 2);
    }
    if (!cli_check_model_kv(&model, NULL, "inspect")) return 2;

    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    heed_report *rep = NULL;
    int32_t *ids = NULL;
    char **tokens = NULL;
    uint8_t *lsel = NULL, *hsel = NULL;
    float *sc[N_SCORES] = {0}, *entropy = NULL, *col = NULL, *alpha = NULL, **attn = NULL;
    int64_t *pos = NULL, T = 0, NL = 0, n_full = 0;
    int rc = 1;
    if (!cli_create_ctx(&ctx, threads, "inspect")) goto done;
    if (!cli_load_model(&m, ctx, model, NAN, NAN, "inspect") ||
        !cli_load_tokenizer(&tok, ctx, model, text != NULL, "inspect") ||
        !cli_input_ids(&ids, &T, ctx, tok, text, ids_arg, "inspect"))
        goto done;
    if (T == 0) {
        fprintf(stderr, "heed inspect: no tokens to inspect\n");
        goto done;
    }
    const heed_config *c = heed_model_config(m);
    NL = c->n_layers;
    const int64_t H = c->n_heads, NH = NL * H;
    lsel = calloc((size_t)NL, 1);
    hsel = calloc((size_t)H, 1);
    tokens = calloc((size_t)T, sizeof *tokens);
    entropy = malloc(sizeof(float) * (size_t)(NH * T));
    col = malloc(sizeof(float) * (size_t)T);
    alpha = malloc(sizeof(float) * (size_t)T);
    pos = malloc(sizeof(int64_t) * (size_t)T);
    attn = calloc((size_t)NL, sizeof *attn);
    int ok = lsel && hsel && tokens && entropy && col && alpha && pos && attn;
    for (int s = 0; ok && s < N_SCORES; s++) ok = (sc[s] = malloc(sizeof(float) * (size_t)NH)) != NULL;
    for (int64_t i = 0; ok && i < T; i++) ok = (tokens[i] = token_text(ctx, tok, ids[i])) != NULL;
    if (!ok) {
        fprintf(stderr, "heed inspect: out of memory\n");
        goto done;
    }
    if (!layers_arg && !heads_arg) {
        if (NH * T * T <= DEFAULT_FULL_CELLS) {
            memset(lsel, 1, (size_t)NL);
            memset(hsel, 1, (size_t)H);
        } else
            fprintf(stderr, "heed inspect: note: %lld heads x %lld tokens is too much for every full map; the page "
                            "holds thumbnails and scores (choose heads to open with --layers and --heads)\n",
                    (long long)NH, (long long)T);
    } else {
        const char *bad = !parse_list(lsel, layers_arg ? layers_arg : "all", NL) ? "--layers"
                          : !parse_list(hsel, heads_arg ? heads_arg : "all", H) ? "--heads" : NULL;
        if (bad) {
            fprintf(stderr, "heed inspect: %s %s: expected `all` or indices and ranges like 0,2-5 below %lld\n", bad,
                    bad[2] == 'l' ? layers_arg : heads_arg, (long long)(bad[2] == 'l' ? NL : H));
            goto done;
        }
    }
    if (png_dir && mkdir(png_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "heed inspect: --png %s: cannot create the folder: %s\n", png_dir, strerror(errno));
        goto done;
    }
    char page_title[512];
    if (title) snprintf(page_title, sizeof page_title, "%s", title);
    else snprintf(page_title, sizeof page_title, "%s: %lld tokens", model, (long long)T);
    if (heed_report_create(ctx, &rep, page_title, (const char *const *)tokens, T, NL, H) != HEED_OK) {
        fprintf(stderr, "heed inspect: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    /* the entropy of every query comes from the probe's streaming statistics during the first pass */
    heed_probe probe = {0};
    probe.entropy = entropy;
    if (heed_model_set_probe(ctx, m, &probe) != HEED_OK) {
        fprintf(stderr, "heed inspect: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    const int64_t map_bytes = H * T * T * (int64_t)sizeof(float);
    const int64_t group = CAPTURE_BYTES / map_bytes > 1 ? CAPTURE_BYTES / map_bytes : 1;
    heed_png_opts po;
    heed_png_opts_init(&po);
    po.lo = 0;
    po.hi = 1;
    po.sqrt_scale = 1;
    po.cell_px = T < 512 ? (int)(512 / T) : 1;
    for (int64_t L0 = 0; L0 < NL; L0 += group) {
        const int64_t L1 = L0 + group < NL ? L0 + group : NL;
        for (int64_t L = L0; L < L1; L++)
            if (!(attn[L] = malloc((size_t)map_bytes))) {
                fprintf(stderr, "heed inspect: out of memory for the maps of layer %lld (%lld bytes)\n", (long long)L,
                        (long long)map_bytes);
                goto done;
            }
        heed_model_trace tr = {attn, NULL};
        if (heed_model_forward(ctx, m, NULL, &tr, ids, NULL, T, 0, 0) != HEED_OK ||
            (L0 == 0 && heed_model_set_probe(ctx, m, NULL) != HEED_OK)) {
            fprintf(stderr, "heed inspect: %s\n", heed_ctx_error(ctx));
            goto done;
        }
        for (int64_t L = L0; L < L1; L++) {
            for (int64_t h = 0; h < H; h++) {
                const float *A = attn[L] + h * T * T;
                const int64_t k = L * H + h;
                const int full = lsel[L] && hsel[h];
                head_scores(sc, k, A, ids, T, c->causal, col, alpha, pos);
                if (heed_report_add_map(ctx, rep, A, L, h, full) != HEED_OK) {
                    fprintf(stderr, "heed inspect: %s\n", heed_ctx_error(ctx));
                    goto done;
                }
                n_full += full;
                if (full && png_dir) {
                    char path[4096];
                    snprintf(path, sizeof path, "%s/L%lld_H%lld.png", png_dir, (long long)L, (long long)h);
                    if (heed_png_heatmap(ctx, path, A, T, T, &po) != HEED_OK) {
                        fprintf(stderr, "heed inspect: --png: %s\n", heed_ctx_error(ctx));
                        goto done;
                    }
                }
            }
            free(attn[L]);
            attn[L] = NULL;
        }
    }
    for (int64_t k = 0; k < NH; k++) {
        double e = 0;
        for (int64_t i = 0; i < T; i++) e += entropy[k * T + i];
        sc[SC_ENTROPY][k] = (float)(e / (double)T);
    }
    for (int s = 0; s < N_SCORES; s++)
        if (heed_report_add_score(ctx, rep, sc[s], score_name[s], score_desc[s]) != HEED_OK) {
            fprintf(stderr, "heed inspect: %s\n", heed_ctx_error(ctx));
            goto done;
        }
    if (heed_report_write(ctx, rep, out) != HEED_OK) {
        fprintf(stderr, "heed inspect: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    struct stat sb;
    fprintf(stderr, "heed inspect: wrote %s (%lld bytes): %lld tokens, %lld layers x %lld heads, %lld full maps\n", out,
            stat(out, &sb) ? -1LL : (long long)sb.st_size, (long long)T, (long long)NL, (long long)H,
            (long long)n_full);
    rc = 0;
done:
    for (int64_t L = 0; attn && L < NL; L++) free(attn[L]);
    for (int64_t i = 0; tokens && i < T; i++) free(tokens[i]);
    for (int s = 0; s < N_SCORES; s++) free(sc[s]);
    free(attn);
    free(tokens);
    free(lsel);
    free(hsel);
    free(entropy);
    free(col);
    free(alpha);
    free(pos);
    free(ids);
    heed_report_free(rep);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
