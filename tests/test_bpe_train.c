/* test_bpe_train.c — heed_bpe_train: the merges equal a slow reference trainer (all pairs recounted
 * from scratch at every step, same tie-break); the tokenizer.json loads with heed_tokenizer_parse, has
 * exactly vocab_size ids, encodes and decodes varied text back to itself, keeps special tokens whole,
 * compresses its training text; training is deterministic; bad options are clear errors. */
#include "heed.h"
#include "harness.h"

#include <cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

/* Repeated English with some accents, CJK, emoji and special tokens, so that many pairs recur. */
static const char corpus_base[] =
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away into the forest.\n"
    "It's a truth universally acknowledged that they'll read the license, and we've read it too.\n"
    "  Indented line with   three spaces\tand a tab.\n\n"
    "Numbers: 1234567, 3.14159, 2026-11-29 and 42 apples; 7 oranges.\n"
    "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xc3\xbc\xc3\xb6\xc3\xa4 stra\xc3\x9f" "e, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
    "\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb emoji.\n"
    "<|eos|>Another document begins here, and the words repeat: the the the there these those.<|eos|>\n";

static const char *const specials[] = {"<|bos|>", "<|eos|>", "\xc4\xa0the"}; /* the last spells "Ġthe" */

static char *make_corpus(size_t *n)
{
    size_t k = sizeof corpus_base - 1, reps = 8;
    char *s = malloc(k * reps + 1);
    for (size_t i = 0; i < reps; i++) memcpy(s + i * k, corpus_base, k);
    s[k * reps] = 0;
    *n = k * reps;
    return s;
}

static void set_opts(heed_bpe_train_opts *o, int64_t vocab)
{
    heed_bpe_train_opts_init(o);
    o->vocab_size = vocab;
    o->special = specials;
    o->n_special = 3;
    o->bos = "<|bos|>";
    o->eos = "<|eos|>";
    o->add_bos = 1;
}

/* --- the slow reference ------------------------------------------------------------------------ */
/* GPT-2's bytes_to_unicode, written as its definition reads: the printable ranges keep their code
 * point, the rest get 256, 257, ... in byte order. */
static void byte_level(char *out, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned b = (unsigned char)s[i], extra = 0, cp = b;
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable) {
            for (unsigned c = 0; c < b; c++)
                if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) extra++;
            cp = 256 + extra;
        }
        if (cp < 0x80) out[o++] = (char)cp;
        else out[o++] = (char)(0xC0 | (cp >> 6)), out[o++] = (char)(0x80 | (cp & 0x3F));
    }
    out[o] = 0;
}

#define RMAX 1024 /* ids of the reference */
#define WMAX 4096 /* distinct words */

typedef struct {
    char *tok[RMAX];
    size_t tlen[RMAX];
    int ntok;
    int32_t *w[WMAX];
    int wn[WMAX];
    int64_t wf[WMAX];
    int nw;
    int32_t merges[RMAX][2];
    int nmerges;
} ref;

static int ref_token(ref *R, const char *s, size_t n)
{
    for (int i = 3; i < R->ntok; i++)
        if (R->tlen[i] == n && !memcmp(R->tok[i], s, n)) return i;
    R->tok[R->ntok] = malloc(n + 1);
    memcpy(R->tok[R->ntok], s, n);
    R->tlen[R->ntok] = n;
    return R->ntok++;
}

static void ref_word(ref *R, const char *s, size_t n)
{
    for (int i = 0; i < R->nw; i++) {
        if (R->wn[i] != (int)n) continue;
        int same = 1;
        for (size_t j = 0; j < n && same; j++) same = R->w[i][j] == 3 + (unsigned char)s[j];
        if (same) {
            R->wf[i]++;
            return;
        }
    }
    R->w[R->nw] = malloc(n * sizeof(int32_t));
    for (size_t j = 0; j < n; j++) R->w[R->nw][j] = 3 + (unsigned char)s[j];
    R->wn[R->nw] = (int)n, R->wf[R->nw] = 1;
    R->nw++;
}

/* Trains on text [n] with the regex pattern; specials are the three above (vocab <= RMAX). */
static void ref_train(ref *R, const char *pattern, const char *text, size_t n, int64_t vocab, int64_t min_freq)
{
    memset(R, 0, sizeof *R);
    R->ntok = 3;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        ref_token(R, &c, 1);
    }
    int err;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &eo, NULL);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    for (size_t i = 0; i < n;) { /* a piece up to the next special token */
        size_t e = i, sl = 0;
        for (; e < n; e++) {
            for (int k = 0; k < 3; k++) {
                size_t l = strlen(specials[k]);
                if (l > sl && e + l <= n && !memcmp(text + e, specials[k], l)) sl = l;
            }
            if (sl) break;
        }
        for (size_t p = i; p < e;) {
            CHECK(pcre2_match(re, (PCRE2_SPTR)text, e, p, 0, md, NULL) > 0, "the pattern covers all text");
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            CHECK(ov[0] == p && ov[1] > p, "the pattern covers all text (match at %zu)", (size_t)p);
            if (ov[1] <= p) break;
            ref_word(R, text + p, ov[1] - p);
            p = ov[1];
        }
        i = e + sl;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    static int64_t cnt[RMAX][RMAX]; /* zero between steps */
    static uint8_t blocked[RMAX][RMAX];
    memset(blocked, 0, sizeof blocked);
    while (R->ntok < vocab) {
        for (int w = 0; w < R->nw; w++)
            for (int j = 0; j + 1 < R->wn[w]; j++) cnt[R->w[w][j]][R->w[w][j + 1]] += R->wf[w];
        /* the largest count; ties: the smaller left id, then the smaller right id */
        int ba = -1, bb = -1;
        for (int w = 0; w < R->nw; w++)
            for (int j = 0; j + 1 < R->wn[w]; j++) {
                int a = R->w[w][j], b = R->w[w][j + 1];
                if (blocked[a][b] || cnt[a][b] < min_freq) continue;
                if (ba < 0 || cnt[a][b] > cnt[ba][bb] || (cnt[a][b] == cnt[ba][bb] && (a < ba || (a == ba && b < bb))))
                    ba = a, bb = b;
            }
        for (int w = 0; w < R->nw; w++)
            for (int j = 0; j + 1 < R->wn[w]; j++) cnt[R->w[w][j]][R->w[w][j + 1]] = 0;
        if (ba < 0) break;
        char s[256], bl[512];
        memcpy(s, R->tok[ba], R->tlen[ba]);
        memcpy(s + R->tlen[ba], R->tok[bb], R->tlen[bb]);
        size_t sn = R->tlen[ba] + R->tlen[bb];
        byte_level(bl, s, sn);
        if (!strcmp(bl, specials[2])) {
            blocked[ba][bb] = 1;
            continue;
        }
        int c = ref_token(R, s, sn);
        R->merges[R->nmerges][0] = ba, R->merges[R->nmerges][1] = bb, R->nmerges++;
        for (int w = 0; w < R->nw; w++) {
            int j = 0;
            for (int i = 0; i < R->wn[w];)
                if (i + 1 < R->wn[w] && R->w[w][i] == ba && R->w[w][i + 1] == bb) R->w[w][j++] = c, i += 2;
                else R->w[w][j++] = R->w[w][i++];
            R->wn[w] = j;
        }
    }
}

static void ref_free(ref *R)
{
    for (int i = 3; i < R->ntok; i++) free(R->tok[i]);
    for (int i = 0; i < R->nw; i++) free(R->w[i]);
}

/* The id of the byte-level form of reference token t in the JSON vocab, or -1. */
static int json_id(const cJSON *vocab, const ref *R, int t)
{
    char bl[1024];
    byte_level(bl, R->tok[t], R->tlen[t]);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(vocab, bl);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static void test_reference(heed_ctx *ctx, const char *text, size_t n, int64_t vocab, int64_t min_freq)
{
    heed_bpe_train_opts o;
    set_opts(&o, vocab);
    o.min_frequency = min_freq;
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(ctx, heed_bpe_train(ctx, &json, &len, text, n, &o));
    if (!json) return;
    cJSON *r = cJSON_Parse(json);
    const cJSON *model = cJSON_GetObjectItem(r, "model"), *vocab_j = cJSON_GetObjectItem(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItem(model, "merges");
    const cJSON *pre = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "pre_tokenizer"), "pretokenizers"), 0);
    const char *pattern = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(pre, "pattern"), "Regex"));
    CHECK(pattern != NULL, "tokenizer.json has a Split regex");
    static ref R;
    ref_train(&R, pattern ? pattern : "x", text, n, vocab, min_freq);
    CHECK(R.ntok == cJSON_GetArraySize(vocab_j), "vocab %d (reference) vs %d", R.ntok, cJSON_GetArraySize(vocab_j));
    CHECK(R.nmerges == cJSON_GetArraySize(merges), "merges %d (reference) vs %d", R.nmerges, cJSON_GetArraySize(merges));
    int bad = 0;
    for (int t = 3; t < R.ntok; t++) bad += json_id(vocab_j, &R, t) != t;
    CHECK(bad == 0, "%d reference tokens have another id in tokenizer.json", bad);
    bad = 0;
    for (int k = 0; k < R.nmerges && k < cJSON_GetArraySize(merges); k++) {
        const cJSON *m = cJSON_GetArrayItem(merges, k);
        char l[1024], rr[1024];
        byte_level(l, R.tok[R.merges[k][0]], R.tlen[R.merges[k][0]]);
        byte_level(rr, R.tok[R.merges[k][1]], R.tlen[R.merges[k][1]]);
        int same = !strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(m, 0)), l) &&
                   !strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(m, 1)), rr);
        if (!same && bad++ < 3) fprintf(stderr, "merge %d: reference [%s, %s]\n", k, l, rr);
    }
    CHECK(bad == 0, "%d merges differ from the reference (vocab %lld, min_frequency %lld)", bad, (long long)vocab,
          (long long)min_freq);
    ref_free(&R);
    cJSON_Delete(r);
    free(json);
}

/* --- the tokenizer it writes ---------------------------------------------------------------------- */
static void check_roundtrip(heed_ctx *ctx, const heed_tokenizer *tok, const char *s)
{
    size_t n = strlen(s);
    int32_t *ids = NULL, *ids2 = NULL;
    int64_t m = 0, m2 = 0;
    char *back = NULL;
    size_t bn = 0;
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, s, n, 0));
    CHECK_OK(ctx, heed_detokenize(ctx, &back, &bn, tok, ids, m, 0));
    CHECK(back && bn == n && !memcmp(back, s, n), "decode(encode(\"%s\")) = \"%s\"", s, back ? back : "(null)");
    free(back);
    back = NULL;
    CHECK_OK(ctx, heed_tokenize(ctx, &ids2, &m2, tok, s, n, HEED_TOK_SPECIAL));
    CHECK(m2 == m + 1 && ids2 && ids2[0] == 0 && (m == 0 || !memcmp(ids2 + 1, ids, (size_t)m * sizeof *ids)),
          "encode with special tokens is BOS + the ids (\"%s\")", s);
    CHECK_OK(ctx, heed_detokenize(ctx, &back, &bn, tok, ids2, m2, 1));
    char *want = malloc(n + 1);
    size_t wn = 0;
    for (size_t i = 0; i < n;) { /* s without its special tokens */
        size_t k = 0;
        for (int j = 0; j < 3 && !k; j++)
            if (!strncmp(s + i, specials[j], strlen(specials[j]))) k = strlen(specials[j]);
        if (k) i += k;
        else want[wn++] = s[i++];
    }
    CHECK(back && bn == wn && !memcmp(back, want, wn), "decode(encode(\"%s\"), skip_special) = \"%s\"", s,
          back ? back : "");
    free(want), free(back), free(ids), free(ids2);
}

static void test_tokenizer(heed_ctx *ctx, const char *text, size_t n)
{
    const int64_t vocab = 3 + 256 + 200;
    heed_bpe_train_opts o;
    set_opts(&o, vocab);
    char *json = NULL, *json2 = NULL;
    size_t len = 0, len2 = 0;
    CHECK_OK(ctx, heed_bpe_train(ctx, &json, &len, text, n, &o));
    CHECK_OK(ctx, heed_bpe_train(ctx, &json2, &len2, text, n, &o));
    CHECK(json && json2 && len == len2 && !memcmp(json, json2, len), "two trainings give the same bytes");
    free(json2);
    heed_tokenizer *tok = NULL;
    CHECK_OK(ctx, heed_tokenizer_parse(ctx, &tok, json, len, "trained"));
    free(json);
    if (!tok) return;
    CHECK(heed_tokenizer_n_ids(tok) == vocab, "n_ids %lld, asked %lld", (long long)heed_tokenizer_n_ids(tok),
          (long long)vocab);
    for (int i = 0; i < 3; i++)
        CHECK(heed_tokenizer_token_id(tok, specials[i]) == i && heed_tokenizer_is_special(tok, i), "special %d", i);
    CHECK(heed_tokenizer_token_id(tok, "!") == 3 + '!' && heed_tokenizer_token_id(tok, "\xc4\x8a") == 3 + '\n',
          "byte b is id n_special + b");
    static const char *const texts[] = {
        "The quick brown fox jumps over the lazy dog.",
        "",
        " ",
        "   leading and trailing spaces   ",
        "tabs\tand\t\ttabs, newlines\n\n\nand \r\n CRLF",
        "Caf\xc3\xa9 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m, \xc3\xa9\xcc\x81 combining",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0 \xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
        "family \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
        "a<|eos|>b<|bos|><|eos|> the end<|eos|>",
        "unseen words: zyxwvut qqq 987654321",
        "don't WON'T they'll I'M",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) check_roundtrip(ctx, tok, texts[i]);

    int32_t *ids = NULL;
    int64_t m = 0;
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, "x<|eos|>y", 9, 0));
    CHECK(m == 3 && ids && ids[1] == 1, "a special token in text is one id (got %lld ids)", (long long)m);
    free(ids), ids = NULL;
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, " the", 4, 0));
    CHECK(m >= 1 && ids && ids[0] != 2, "' the' is not the special token that spells its byte-level form");
    free(ids), ids = NULL;
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, "\xc4\xa0the", 5, 0));
    CHECK(m == 1 && ids && ids[0] == 2, "the special token 'Ġthe' is one id");
    free(ids), ids = NULL;
    /* merges compress the training text; the base vocabulary is one id per byte */
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, text, n, 0));
    CHECK(m > 0 && (double)m < 0.45 * (double)n, "%lld ids for %zu bytes", (long long)m, n);
    free(ids), ids = NULL;
    heed_tokenizer_free(tok);
    tok = NULL;

    set_opts(&o, 3 + 256);
    CHECK_OK(ctx, heed_bpe_train(ctx, &json, &len, text, n, &o));
    CHECK_OK(ctx, heed_tokenizer_parse(ctx, &tok, json, len, "bytes only"));
    free(json);
    if (!tok) return;
    const char *s = "bytes \xc3\xa9 \xe6\x97\xa5";
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, s, strlen(s), 0));
    CHECK(m == (int64_t)strlen(s), "with no merges every byte is one id (%lld ids)", (long long)m);
    free(ids);
    check_roundtrip(ctx, tok, s);
    heed_tokenizer_free(tok);

    /* empty text: the base vocabulary only; a vocabulary the text cannot fill stops early */
    set_opts(&o, 3 + 256 + 10);
    CHECK_OK(ctx, heed_bpe_train(ctx, &json, &len, "", 0, &o));
    CHECK_OK(ctx, heed_tokenizer_parse(ctx, &tok, json, len, "empty"));
    CHECK(tok && heed_tokenizer_n_ids(tok) == 3 + 256, "empty text: base vocabulary only");
    heed_tokenizer_free(tok);
    free(json);

    /* tokenizer_config.json */
    CHECK_OK(ctx, heed_bpe_train_config(ctx, &json, &len, &o));
    heed_gen_config gen;
    heed_gen_config_init(&gen);
    CHECK_OK(ctx, heed_gen_config_parse(ctx, &gen, json, len, "tokenizer_config.json"));
    CHECK(gen.add_bos == 1 && gen.add_eos == 0 && !strcmp(gen.bos_token, "<|bos|>") && !strcmp(gen.eos_token, "<|eos|>"),
          "tokenizer_config.json: add_bos %d add_eos %d bos '%s' eos '%s'", gen.add_bos, gen.add_eos, gen.bos_token,
          gen.eos_token);
    free(json);
}

static void expect_fail(heed_ctx *ctx, const heed_bpe_train_opts *o, const char *text, size_t n, heed_status code,
                        const char *want)
{
    char *json = (char *)1;
    size_t len = 1;
    heed_status s = heed_bpe_train(ctx, &json, &len, text, n, o);
    CHECK(s == code && strstr(heed_ctx_error(ctx), want) && json == NULL && len == 0,
          "expected %s with '%s', got %s: %s", heed_status_name(code), want, heed_status_name(s), heed_ctx_error(ctx));
}

static void test_errors(heed_ctx *ctx)
{
    heed_bpe_train_opts o;
    const char *t = "some text";
    set_opts(&o, 3 + 255);
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "vocab_size is 258");
    set_opts(&o, 300), o.min_frequency = 0;
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "min_frequency");
    const char *dup[] = {"<a>", "<b>", "<a>"};
    set_opts(&o, 300), o.special = dup, o.bos = o.eos = "<a>";
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "\"<a>\" is given twice");
    const char *empty[] = {"<a>", ""};
    set_opts(&o, 300), o.special = empty, o.n_special = 2, o.bos = o.eos = "<a>";
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "special token 1 is empty");
    const char *byte[] = {"<a>", "\xc4\x8a"};
    set_opts(&o, 300), o.special = byte, o.n_special = 2, o.bos = o.eos = "<a>";
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "byte-level symbol of byte 10");
    set_opts(&o, 300), o.bos = "<s>";
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "bos \"<s>\" is not one of the special tokens");
    set_opts(&o, 300), o.bos = NULL;
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "add_bos is set but bos is NULL");
    set_opts(&o, 300), o.n_special = -1;
    expect_fail(ctx, &o, t, 9, HEED_ERR_INVALID, "n_special is -1");
    set_opts(&o, 300);
    expect_fail(ctx, &o, "ok \xc3\x28 bad", 9, HEED_ERR_FORMAT, "not valid UTF-8 at byte 3");
    expect_fail(ctx, NULL, t, 9, HEED_ERR_INVALID, "options are NULL");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 1) != HEED_OK) return 1;
    size_t n;
    char *text = make_corpus(&n);
    test_reference(ctx, text, n, 3 + 256 + 250, 2);
    test_reference(ctx, text, n, RMAX, 1); /* runs out of pairs before RMAX: stops early, same as the reference */
    test_reference(ctx, corpus_base, sizeof corpus_base - 1, 3 + 256 + 120, 1);
    test_tokenizer(ctx, text, n);
    test_errors(ctx);
    free(text);
    heed_ctx_free(ctx);
    return t_done("test_bpe_train");
}
