/* test_tokenizer.c — tokenizer.json encoding and decoding against Hugging Face `tokenizers` goldens
 * (tests/data/tok/<kind>/golden.json, written by tools/make_tokenizer_goldens.py): ids with and without
 * special tokens and decodings must be identical, for every kind; then errors (ids out of vocabulary,
 * malformed and truncated files, unsupported steps, invalid UTF-8) and the encoding speed. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <cJSON.h>
#include <string.h>
#include <time.h>

static const char *kinds[] = {"gpt2", "llama3", "qwen2", "llama2", "mistral", "bert", "bert-cased", "roberta",
                              "whitespace-bpe", "bert-trunc", "gpt2-left"};

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)sz + 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) free(p), p = NULL;
    if (p) p[sz] = 0, *n = (size_t)sz;
    fclose(f);
    return p;
}

/* ids [n] equal the JSON array exp? Prints both when not. */
static int same_ids(const int32_t *ids, int64_t n, const cJSON *exp, const char *kind, const char *what, const char *text)
{
    int ok = cJSON_GetArraySize(exp) == n;
    for (int64_t i = 0; ok && i < n; i++) ok = (int32_t)cJSON_GetArrayItem(exp, (int)i)->valuedouble == ids[i];
    if (!ok) {
        fprintf(stderr, "%s %s of \"%s\":\n  heed:", kind, what, text);
        for (int64_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n  hf:  ");
        const cJSON *x;
        cJSON_ArrayForEach(x, exp) fprintf(stderr, " %d", (int)x->valuedouble);
        fprintf(stderr, "\n");
    }
    return ok;
}

/* Decoding ids [n] gives exactly exp [n_exp]? */
static void check_decode(heed_ctx *ctx, const heed_tokenizer *tok, const int32_t *ids, int64_t n, int skip,
                         const char *exp, size_t n_exp, const char *kind)
{
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(ctx, heed_detokenize(ctx, &text, &len, tok, ids, n, skip));
    int ok = text && len == n_exp && !memcmp(text, exp, len);
    CHECK(ok, "%s: decode (skip_special=%d) of %lld ids gave \"%s\", expected \"%s\"", kind, skip, (long long)n,
          text ? text : "(null)", exp);
    if (!ok && text) {
        fprintf(stderr, "  heed:");
        for (size_t i = 0; i < len; i++) fprintf(stderr, " %02x", (unsigned char)text[i]);
        fprintf(stderr, "\n  hf:  ");
        for (size_t i = 0; i < n_exp; i++) fprintf(stderr, " %02x", (unsigned char)exp[i]);
        fprintf(stderr, "\n");
    }
    free(text);
}

/* The bytes of a hex string, in a static buffer. */
static const char *unhex(const char *h, size_t *n)
{
    static char buf[1 << 16];
    size_t len = strlen(h) / 2;
    if (len > sizeof buf) len = sizeof buf;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        buf[i] = (char)v;
    }
    *n = len;
    return buf;
}

static void test_kind(heed_ctx *ctx, const char *data, const char *kind)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tok/%s", data, kind);
    heed_tokenizer *tok = NULL;
    CHECK_OK(ctx, heed_tokenizer_load(ctx, &tok, path));
    snprintf(path, sizeof path, "%s/tok/%s/golden.json", data, kind);
    size_t n;
    char *js = read_all(path, &n);
    CHECK(js != NULL, "cannot read %s", path);
    cJSON *g = js ? cJSON_Parse(js) : NULL;
    free(js);
    if (!tok || !g) {
        heed_tokenizer_free(tok);
        cJSON_Delete(g);
        return;
    }
    CHECK(heed_tokenizer_n_ids(tok) == (int64_t)cJSON_GetObjectItem(g, "vocab_size")->valuedouble, "%s: %lld ids",
          kind, (long long)heed_tokenizer_n_ids(tok));
    int n_cases = 0, n_bad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(g, "cases"))
    {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        for (int sp = 1; sp >= 0; sp--) {
            int32_t *ids = NULL;
            int64_t m = 0;
            CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, text, strlen(text), sp ? HEED_TOK_SPECIAL : 0));
            int ok = ids && same_ids(ids, m, cJSON_GetObjectItem(c, sp ? "ids" : "ids_no_special"), kind,
                                     sp ? "encode" : "encode(no special)", text);
            CHECK(ok, "%s: encoding of \"%s\" (add_special=%d) differs from tokenizers", kind, text, sp);
            n_bad += !ok;
            free(ids);
        }
        /* decode the golden ids, so a decoding check does not depend on the encoder */
        const cJSON *e = cJSON_GetObjectItem(c, "ids"), *x;
        int64_t m = cJSON_GetArraySize(e), i = 0;
        int32_t *ids = malloc((size_t)(m + 1) * sizeof *ids);
        cJSON_ArrayForEach(x, e) ids[i++] = (int32_t)x->valuedouble;
        const char *d0 = cJSON_GetObjectItem(c, "decoded")->valuestring;
        const char *d1 = cJSON_GetObjectItem(c, "decoded_skip_special")->valuestring;
        check_decode(ctx, tok, ids, m, 0, d0, strlen(d0), kind);
        check_decode(ctx, tok, ids, m, 1, d1, strlen(d1), kind);
        free(ids);
        n_cases++;
    }
    int32_t id = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(g, "single_ids_hex"))
    {
        size_t ne;
        const char *e = unhex(c->valuestring, &ne);
        check_decode(ctx, tok, &id, 1, 0, e, ne, kind);
        id++;
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(g, "id_seqs"))
    {
        const cJSON *e = cJSON_GetObjectItem(c, "ids"), *x;
        int32_t ids[64];
        int64_t m = 0;
        cJSON_ArrayForEach(x, e) if (m < 64) ids[m++] = (int32_t)x->valuedouble;
        size_t ne;
        const char *d = unhex(cJSON_GetObjectItem(c, "decoded_hex")->valuestring, &ne);
        check_decode(ctx, tok, ids, m, 0, d, ne, kind);
    }
    printf("%-15s %3d texts, %d encodings differ; %d single-id and %d sequence decodings\n", kind, n_cases, n_bad, id,
           cJSON_GetArraySize(cJSON_GetObjectItem(g, "id_seqs")));
    cJSON_Delete(g);
    heed_tokenizer_free(tok);
}

/* Parsing json must fail with code and a message containing want. */
static void expect_fail(heed_ctx *ctx, const char *json, heed_status code, const char *want)
{
    heed_tokenizer *tok = (heed_tokenizer *)1;
    heed_status s = heed_tokenizer_parse(ctx, &tok, json, strlen(json), "t.json");
    CHECK(s == code && tok == NULL, "parse of %s -> %s (expected %s)", json, heed_status_name(s), heed_status_name(code));
    CHECK(strstr(heed_ctx_error(ctx), want) != NULL, "message \"%s\" lacks \"%s\"", heed_ctx_error(ctx), want);
    if (s == HEED_OK) heed_tokenizer_free(tok);
}

static void test_errors(heed_ctx *ctx, const char *data)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tok/llama3/tokenizer.json", data);
    heed_tokenizer *tok = NULL;
    CHECK_OK(ctx, heed_tokenizer_load(ctx, &tok, path));
    if (!tok) return;
    int32_t bad[3] = {1, (int32_t)heed_tokenizer_n_ids(tok), 2};
    char *text = (char *)1;
    size_t len = 7;
    heed_status s = heed_detokenize(ctx, &text, &len, tok, bad, 3, 0);
    CHECK(s == HEED_ERR_INVALID && text == NULL && strstr(heed_ctx_error(ctx), "ids[1] = 700 is not a token id"),
          "out-of-vocabulary id: %s: %s", heed_status_name(s), heed_ctx_error(ctx));
    bad[1] = -5;
    s = heed_detokenize(ctx, &text, &len, tok, bad, 3, 0);
    CHECK(s == HEED_ERR_INVALID && strstr(heed_ctx_error(ctx), "-5"), "negative id: %s", heed_ctx_error(ctx));
    int32_t *ids = NULL;
    int64_t n = 0;
    s = heed_tokenize(ctx, &ids, &n, tok, "ab\xff", 3, HEED_TOK_SPECIAL);
    CHECK(s == HEED_ERR_INVALID && ids == NULL && strstr(heed_ctx_error(ctx), "UTF-8 at byte 2"), "invalid UTF-8: %s",
          heed_ctx_error(ctx));
    CHECK(heed_tokenizer_token_id(tok, "<|eot_id|>") == 4, "token id of <|eot_id|>");
    CHECK(heed_tokenizer_is_special(tok, 4) && !heed_tokenizer_is_special(tok, 100), "special flags");
    CHECK(heed_tokenizer_token(tok, 700) == NULL && heed_tokenizer_token(tok, -1) == NULL, "token of bad ids");
    heed_tokenizer_free(tok);

    CHECK(heed_tokenizer_load(ctx, &tok, "/nonexistent/dir") == HEED_ERR_IO && tok == NULL, "missing file");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [", HEED_ERR_FORMAT, "not valid JSON");
    expect_fail(ctx, "[1, 2]", HEED_ERR_FORMAT, "expected a JSON object");
    expect_fail(ctx, "{}", HEED_ERR_FORMAT, "missing \"model\"");
    expect_fail(ctx, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", HEED_ERR_UNSUPPORTED, "\"Unigram\"");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}",
                HEED_ERR_FORMAT, "merges[0]: token \"c\" is not in the vocabulary");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
                HEED_ERR_FORMAT, "token \"ab\" is not in the vocabulary");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", HEED_ERR_FORMAT,
                "id 0 is given to both");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", HEED_ERR_FORMAT,
                "expected an integer id");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a  a\"]}}", HEED_ERR_FORMAT,
                "not two tokens");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": "
                     "{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"\"}}",
                HEED_ERR_UNSUPPORTED, "normalizer \"Precompiled\" is not supported");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": "
                     "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}",
                HEED_ERR_FORMAT, "pattern does not compile");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"post_processor\": "
                     "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}], "
                     "\"special_tokens\": {}}}",
                HEED_ERR_FORMAT, "special token \"<s>\" not in special_tokens");
    expect_fail(ctx, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", HEED_ERR_FORMAT,
                "WordPiece model without unk_token");
    expect_fail(ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": "
                     "{\"type\": \"CTC\"}}",
                HEED_ERR_UNSUPPORTED, "decoder \"CTC\" is not supported");

    /* every truncation of a real file fails cleanly (or, at the full length, loads) */
    size_t n_json;
    snprintf(path, sizeof path, "%s/tok/mistral/tokenizer.json", data);
    char *js = read_all(path, &n_json);
    int n_fail = 0, n_try = 0;
    for (size_t cut = 0; js && cut < n_json; cut += 1 + cut / 8, n_try++) {
        heed_tokenizer *t = NULL;
        heed_status st = heed_tokenizer_parse(ctx, &t, js, cut, "cut.json");
        n_fail += st == HEED_ERR_FORMAT && t == NULL;
        heed_tokenizer_free(t);
    }
    CHECK(n_fail == n_try, "%d of %d truncations of mistral/tokenizer.json failed with a format error", n_fail, n_try);
    free(js);
}

/* Encoding speed on a long text (informational; the bar is only that it is not quadratic). */
static void test_speed(heed_ctx *ctx, const char *data)
{
    char path[1024];
    static const char *para = "The quick brown fox jumps over the lazy dog, 1234567 times! Café déjà vu, 東京. "
                              "It's they're we'll\n\tdef f(x): return x ** 2  # ok\n";
    size_t np = strlen(para), reps = 4000;
    char *text = malloc(np * reps + 1);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * np, para, np);
    text[np * reps] = 0;
    for (int k = 0; k < 3; k++) {
        const char *kind = k == 0 ? "llama3" : k == 1 ? "mistral" : "bert";
        snprintf(path, sizeof path, "%s/tok/%s", data, kind);
        heed_tokenizer *tok = NULL;
        CHECK_OK(ctx, heed_tokenizer_load(ctx, &tok, path));
        if (!tok) continue;
        int32_t *ids = NULL;
        int64_t n = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_OK(ctx, heed_tokenize(ctx, &ids, &n, tok, text, np * reps, 0));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("speed %-8s %zu bytes -> %lld tokens in %.3f s (%.2f MB/s)\n", kind, np * reps, (long long)n, s,
               (double)(np * reps) / s / 1e6);
        CHECK(s < 10.0, "%s: encoding %zu bytes took %.1f s", kind, np * reps, s);
        free(ids);
        heed_tokenizer_free(tok);
    }
    free(text);
}

/* A vocabulary of the size of real ones (150k tokens, 150k merges: every 2-4 letter string over a-z
 * up to that count, each merged from its prefix and last letter): load time, and one 200 kB piece
 * without pre-tokenizer, whose tokens must spell the input back (BPE with a heap is n log n). */
static void test_large(heed_ctx *ctx)
{
    enum { N_TOK = 150000, N_TEXT = 200000 };
    size_t cap = (size_t)N_TOK * 32 + 1024, n = 0;
    char *js = malloc(cap), tok4[5] = {0};
    n += (size_t)snprintf(js + n, cap - n, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    int count = 0;
    for (int len = 1; len <= 4 && count < N_TOK; len++) {
        long total = 1;
        for (int i = 0; i < len; i++) total *= 26;
        for (long k = 0; k < total && count < N_TOK; k++, count++) {
            long x = k;
            for (int i = len - 1; i >= 0; i--) tok4[i] = (char)('a' + x % 26), x /= 26;
            tok4[len] = 0;
            n += (size_t)snprintf(js + n, cap - n, "%s\"%s\": %d", count ? ", " : "", tok4, count);
        }
    }
    n += (size_t)snprintf(js + n, cap - n, "}, \"merges\": [");
    count = 0;
    for (int len = 2; len <= 4 && count < N_TOK - 26; len++) {
        long total = 1;
        for (int i = 0; i < len; i++) total *= 26;
        for (long k = 0; k < total && count < N_TOK - 26; k++, count++) {
            long x = k;
            for (int i = len - 1; i >= 0; i--) tok4[i] = (char)('a' + x % 26), x /= 26;
            n += (size_t)snprintf(js + n, cap - n, "%s\"%.*s %c\"", count ? ", " : "", len - 1, tok4, tok4[len - 1]);
        }
    }
    n += (size_t)snprintf(js + n, cap - n, "]}}");
    heed_tokenizer *tok = NULL;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(ctx, heed_tokenizer_parse(ctx, &tok, js, n, "large.json"));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(js);
    if (!tok) return;
    char *text = malloc(N_TEXT + 1);
    t_rng r = {42};
    for (int i = 0; i < N_TEXT; i++) text[i] = (char)('a' + t_int(&r, 0, 25));
    int32_t *ids = NULL;
    int64_t m = 0;
    CHECK_OK(ctx, heed_tokenize(ctx, &ids, &m, tok, text, N_TEXT, 0));
    clock_gettime(CLOCK_MONOTONIC, &t2);
    size_t pos = 0;
    int ok = ids != NULL;
    for (int64_t i = 0; ok && i < m; i++) {
        const char *t = heed_tokenizer_token(tok, ids[i]);
        size_t l = t ? strlen(t) : 0;
        ok = t && l >= 1 && l <= 4 && pos + l <= N_TEXT && !memcmp(text + pos, t, l);
        pos += l;
    }
    CHECK(ok && pos == N_TEXT, "large vocabulary: the tokens do not spell the input back");
    double tl = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double te = (double)(t2.tv_sec - t1.tv_sec) + 1e-9 * (double)(t2.tv_nsec - t1.tv_nsec);
    printf("large vocabulary: %lld ids, %d merges loaded in %.3f s; one %d-byte piece -> %lld tokens in %.3f s\n",
           (long long)heed_tokenizer_n_ids(tok), count, tl, N_TEXT, (long long)m, te);
    CHECK(tl < 10.0 && te < 10.0, "large vocabulary: load %.1f s, encode %.1f s", tl, te);
    free(ids);
    free(text);
    heed_tokenizer_free(tok);
}

int main(void)
{
    const char *data = data_dir();
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 1));
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) test_kind(ctx, data, kinds[i]);
    test_errors(ctx, data);
    test_speed(ctx, data);
    test_large(ctx);
    heed_ctx_free(ctx);
    return t_done("test_tokenizer");
}
