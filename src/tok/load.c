/* load.c — reads a Hugging Face tokenizer.json (through cJSON) into a heed_tokenizer: the model's
 * vocabulary and merges in hash tables, the added tokens, and one node tree per pipeline stage. Every
 * type or option heed does not implement is refused with HEED_ERR_UNSUPPORTED, naming it. */
#include "tok/tok.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    heed_ctx *ctx;
    const char *name; /* file name for messages */
    heed_tokenizer *tok;
} loader;

#define FAIL(L, code, ...) heed_fail((L)->ctx, code, __VA_ARGS__)

/* --- hash tables ------------------------------------------------------------------------------- */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ h >> 29;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int32_t tok_vocab_get(const heed_tokenizer *tok, const char *s, size_t n)
{
    const tmap *m = &tok->vocab;
    if (!m->cap) return -1;
    for (size_t i = hash_bytes(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int32_t id = m->slot[i];
        if (id < 0) return -1;
        if (tok->tok_len[id] == n && !memcmp(tok->tok[id], s, n)) return id;
    }
}

/* --- JSON helpers ------------------------------------------------------------------------------ */
static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static int get_bool(const cJSON *o, const char *key, int dflt)
{
    const cJSON *v = get(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A string field, or NULL when absent or null; an error when it has another type. */
static heed_status get_str(loader *L, const char **out, const cJSON *o, const char *key, const char *where)
{
    const cJSON *v = get(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return HEED_OK;
    if (!cJSON_IsString(v)) return FAIL(L, HEED_ERR_FORMAT, "%s: %s.%s: expected a string", L->name, where, key);
    *out = v->valuestring;
    return HEED_OK;
}

static heed_status get_int(loader *L, int64_t *out, const cJSON *o, const char *key, int64_t dflt, int64_t lo,
                           int64_t hi, const char *where)
{
    const cJSON *v = get(o, key);
    *out = dflt;
    if (!v || cJSON_IsNull(v)) return HEED_OK;
    double d = cJSON_GetNumberValue(v);
    if (!cJSON_IsNumber(v) || !(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return FAIL(L, HEED_ERR_FORMAT, "%s: %s.%s: expected an integer in [%lld, %lld]", L->name, where, key,
                    (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return HEED_OK;
}

static char *dup_str(const char *s, size_t *n)
{
    size_t len = strlen(s);
    char *p = malloc(len + 1);
    if (p) memcpy(p, s, len + 1);
    if (n) *n = len;
    return p;
}

/* The Rust regex crate's Unicode \w (tokenizers' Whitespace pre-tokenizer and single_word use it). */
#define RUST_WORD_CLASS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
#define RUST_WORD "[" RUST_WORD_CLASS "]"

/* Compiles a PCRE2 pattern (UTF + UCP as the Onig patterns of tokenizers need; literal for a String). */
static heed_status compile(loader *L, pcre2_code **re, const char *pat, size_t n, int literal, const char *where)
{
    int err;
    PCRE2_SIZE off;
    uint32_t opt = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    *re = pcre2_compile((PCRE2_SPTR)pat, n, opt, &err, &off, NULL);
    if (*re) pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE); /* where JIT is unavailable the interpreter runs */
    if (!*re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return FAIL(L, err == PCRE2_ERROR_HEAP_FAILED ? HEED_ERR_NOMEM : HEED_ERR_FORMAT,
                    "%s: %s: pattern does not compile at offset %zu: %s", L->name, where, (size_t)off, (char *)msg);
    }
    return HEED_OK;
}

/* {"String": s} or {"Regex": r} -> nd->re (NULL for an empty String, which matches nothing). */
static heed_status parse_pattern(loader *L, tnode *nd, const cJSON *pat, const char *where)
{
    const cJSON *s = get(pat, "String"), *r = get(pat, "Regex");
    if (cJSON_IsString(s)) {
        if (!*s->valuestring) return HEED_OK;
        return compile(L, &nd->re, s->valuestring, strlen(s->valuestring), 1, where);
    }
    if (cJSON_IsString(r)) return compile(L, &nd->re, r->valuestring, strlen(r->valuestring), 0, where);
    return FAIL(L, HEED_ERR_FORMAT, "%s: %s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", L->name, where);
}

static heed_status set_str(loader *L, char **dst, size_t *n, const char *s, const char *where)
{
    *dst = dup_str(s ? s : "", n);
    return *dst ? HEED_OK : FAIL(L, HEED_ERR_NOMEM, "%s: %s: out of memory", L->name, where);
}

/* A field holding exactly one character (Metaspace replacement, Strip content). */
static heed_status get_char(loader *L, tnode *nd, const cJSON *o, const char *key, const char *dflt, const char *where)
{
    const char *s;
    heed_status st = get_str(L, &s, o, key, where);
    if (st) return st;
    if (!s) s = dflt;
    uint32_t cp;
    if (!s || !*s || utf8_dec(&cp, s, strlen(s)) != (int)strlen(s))
        return FAIL(L, HEED_ERR_FORMAT, "%s: %s.%s: expected a single character", L->name, where, key);
    return set_str(L, &nd->s1, &nd->n1, s, where);
}

static heed_status get_behavior(loader *L, int *out, const cJSON *o, const char *where, int dflt)
{
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *s;
    heed_status st = get_str(L, &s, o, "behavior", where);
    if (st) return st;
    *out = dflt;
    if (!s) return HEED_OK;
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return *out = i, HEED_OK;
    return FAIL(L, HEED_ERR_FORMAT, "%s: %s.behavior: unknown value \"%s\"", L->name, where, s);
}

/* --- pipeline nodes ---------------------------------------------------------------------------- */
enum { STAGE_NORM, STAGE_PRE, STAGE_POST, STAGE_DEC };
static const char *stage_name[] = {"normalizer", "pre_tokenizer", "post_processor", "decoder"};
static const char *seq_key[] = {"normalizers", "pretokenizers", "processors", "decoders"};

static heed_status parse_node(loader *L, tnode *nd, const cJSON *o, int stage, int depth);

static heed_status parse_seq(loader *L, tnode *nd, const cJSON *o, int stage, int depth)
{
    const cJSON *arr = get(o, seq_key[stage]);
    if (!cJSON_IsArray(arr))
        return FAIL(L, HEED_ERR_FORMAT, "%s: %s Sequence: expected an array \"%s\"", L->name, stage_name[stage],
                    seq_key[stage]);
    nd->type = SEQ;
    int n = cJSON_GetArraySize(arr);
    nd->kids = calloc(n ? (size_t)n : 1, sizeof *nd->kids);
    if (!nd->kids) return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        heed_status st = parse_node(L, &nd->kids[nd->n_kids++], it, stage, depth + 1);
        if (st) return st;
    }
    return HEED_OK;
}

static heed_status parse_normalizer(loader *L, tnode *nd, const cJSON *o, const char *type)
{
    const char *w = "normalizer";
    heed_status st;
    if (!strcmp(type, "Prepend")) {
        const char *s;
        nd->type = N_PREPEND;
        if ((st = get_str(L, &s, o, "prepend", w))) return st;
        if (!s) return FAIL(L, HEED_ERR_FORMAT, "%s: Prepend normalizer: missing \"prepend\"", L->name);
        return set_str(L, &nd->s1, &nd->n1, s, w);
    }
    if (!strcmp(type, "Replace")) {
        const char *s;
        nd->type = N_REPLACE;
        if ((st = parse_pattern(L, nd, get(o, "pattern"), "Replace normalizer"))) return st;
        if ((st = get_str(L, &s, o, "content", w))) return st;
        if (!s) return FAIL(L, HEED_ERR_FORMAT, "%s: Replace normalizer: missing \"content\"", L->name);
        return set_str(L, &nd->s1, &nd->n1, s, w);
    }
    static const char *nf[] = {"NFD", "NFKD", "NFC", "NFKC"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(type, nf[i])) return nd->type = N_NF, nd->i1 = i, HEED_OK;
    if (!strcmp(type, "Lowercase")) return nd->type = N_LOWER, HEED_OK;
    if (!strcmp(type, "StripAccents")) return nd->type = N_STRIP_ACCENTS, HEED_OK;
    if (!strcmp(type, "Strip")) {
        nd->type = N_STRIP;
        nd->i1 = get_bool(o, "strip_left", 1);
        nd->i2 = get_bool(o, "strip_right", 1);
        return HEED_OK;
    }
    if (!strcmp(type, "BertNormalizer")) {
        nd->type = N_BERT;
        nd->i1 = get_bool(o, "clean_text", 1);
        nd->i2 = get_bool(o, "handle_chinese_chars", 1);
        nd->i4 = get_bool(o, "lowercase", 1);
        nd->i3 = get_bool(o, "strip_accents", nd->i4); /* null: follows lowercase */
        return HEED_OK;
    }
    return FAIL(L, HEED_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", L->name, type);
}

static heed_status parse_pre(loader *L, tnode *nd, const cJSON *o, const char *type)
{
    const char *w = "pre_tokenizer";
    heed_status st;
    if (!strcmp(type, "ByteLevel")) {
        nd->type = P_BYTELEVEL;
        nd->i1 = get_bool(o, "add_prefix_space", 1);
        nd->i2 = get_bool(o, "use_regex", 1);
        if (nd->i2) {
            static const char gpt2[] =
                "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
            return compile(L, &nd->re, gpt2, sizeof gpt2 - 1, 0, "ByteLevel pre_tokenizer");
        }
        return HEED_OK;
    }
    if (!strcmp(type, "Split")) {
        nd->type = P_SPLIT;
        if ((st = parse_pattern(L, nd, get(o, "pattern"), "Split pre_tokenizer"))) return st;
        nd->i2 = get_bool(o, "invert", 0);
        return get_behavior(L, &nd->i1, o, "Split pre_tokenizer", B_REMOVED);
    }
    if (!strcmp(type, "Metaspace")) {
        const char *ps;
        nd->type = P_METASPACE;
        if ((st = get_char(L, nd, o, "replacement", "\xe2\x96\x81", "Metaspace pre_tokenizer"))) return st;
        if ((st = get_str(L, &ps, o, "prepend_scheme", w))) return st;
        nd->i1 = PS_ALWAYS;
        if (ps && !strcmp(ps, "first")) nd->i1 = PS_FIRST;
        else if (ps && !strcmp(ps, "never")) nd->i1 = PS_NEVER;
        else if (ps && strcmp(ps, "always"))
            return FAIL(L, HEED_ERR_FORMAT, "%s: Metaspace.prepend_scheme: unknown value \"%s\"", L->name, ps);
        if (!ps && !get_bool(o, "add_prefix_space", 1)) nd->i1 = PS_NEVER; /* older files */
        nd->i2 = get_bool(o, "split", 1);
        return HEED_OK;
    }
    if (!strcmp(type, "Digits")) return nd->type = P_DIGITS, nd->i1 = get_bool(o, "individual_digits", 0), HEED_OK;
    if (!strcmp(type, "Punctuation")) return nd->type = P_PUNCT, get_behavior(L, &nd->i1, o, "Punctuation", B_ISOLATED);
    if (!strcmp(type, "Whitespace")) { /* \w+|[^\w\s]+ with the Rust regex crate's Unicode \w and \s */
        static const char ws[] = RUST_WORD "+|[^" RUST_WORD_CLASS "\\p{White_Space}]+";
        return nd->type = P_WHITESPACE, compile(L, &nd->re, ws, sizeof ws - 1, 0, "Whitespace pre_tokenizer");
    }
    if (!strcmp(type, "WhitespaceSplit")) return nd->type = P_WSSPLIT, HEED_OK;
    if (!strcmp(type, "BertPreTokenizer")) return nd->type = P_BERT, HEED_OK;
    if (!strcmp(type, "CharDelimiterSplit")) {
        nd->type = P_CHARDELIM;
        return get_char(L, nd, o, "delimiter", NULL, "CharDelimiterSplit");
    }
    return FAIL(L, HEED_ERR_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported", L->name, type);
}

/* Looks a special token of a post-processor up: [token_string, id] pairs in Bert/Roberta. */
static heed_status get_pair_id(loader *L, int *id, const cJSON *o, const char *key, const char *type)
{
    const cJSON *p = get(o, key), *i = cJSON_IsArray(p) ? cJSON_GetArrayItem(p, 1) : NULL;
    double d = cJSON_GetNumberValue(i);
    if (!cJSON_IsNumber(i) || !(d >= 0 && d < INT32_MAX) || d != floor(d))
        return FAIL(L, HEED_ERR_FORMAT, "%s: %s.%s: expected [\"token\", id]", L->name, type, key);
    *id = (int)d;
    return HEED_OK;
}

static heed_status parse_template(loader *L, tnode *nd, const cJSON *o)
{
    const cJSON *single = get(o, "single"), *sp = get(o, "special_tokens"), *it;
    if (!cJSON_IsArray(single))
        return FAIL(L, HEED_ERR_FORMAT, "%s: TemplateProcessing.single: expected an array", L->name);
    nd->type = Q_TEMPLATE;
    size_t cap = 0;
    cJSON_ArrayForEach(it, single)
    {
        const cJSON *st = get(it, "SpecialToken"), *sq = get(it, "Sequence");
        if (sq) {
            const cJSON *id = get(sq, "id");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, "A"))
                return FAIL(L, HEED_ERR_FORMAT, "%s: TemplateProcessing.single: a sequence other than $A", L->name);
            cap += 1;
        } else if (st) {
            const cJSON *id = get(st, "id"), *ent = cJSON_IsString(id) ? get(sp, id->valuestring) : NULL;
            const cJSON *ids = get(ent, "ids");
            if (!cJSON_IsArray(ids))
                return FAIL(L, HEED_ERR_FORMAT, "%s: TemplateProcessing: special token %s%s%s not in special_tokens",
                            L->name, cJSON_IsString(id) ? "\"" : "", cJSON_IsString(id) ? id->valuestring : "(no id)",
                            cJSON_IsString(id) ? "\"" : "");
            cap += (size_t)cJSON_GetArraySize(ids);
        } else
            return FAIL(L, HEED_ERR_FORMAT, "%s: TemplateProcessing.single: expected SpecialToken or Sequence pieces",
                        L->name);
    }
    nd->ids = malloc((cap ? cap : 1) * sizeof *nd->ids);
    if (!nd->ids) return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
    cJSON_ArrayForEach(it, single)
    {
        const cJSON *st = get(it, "SpecialToken"), *x;
        if (!st) {
            nd->ids[nd->n_ids++] = -1;
            continue;
        }
        cJSON_ArrayForEach(x, get(get(sp, get(st, "id")->valuestring), "ids"))
        {
            double d = cJSON_GetNumberValue(x);
            if (!cJSON_IsNumber(x) || !(d >= 0 && d < INT32_MAX) || d != floor(d))
                return FAIL(L, HEED_ERR_FORMAT, "%s: TemplateProcessing.special_tokens: ids must be integers >= 0",
                            L->name);
            nd->ids[nd->n_ids++] = (int32_t)d;
        }
    }
    return HEED_OK;
}

static heed_status parse_post(loader *L, tnode *nd, const cJSON *o, const char *type)
{
    heed_status st;
    if (!strcmp(type, "TemplateProcessing")) return parse_template(L, nd, o);
    if (!strcmp(type, "ByteLevel")) return nd->type = Q_BYTELEVEL, HEED_OK;
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        nd->type = Q_BERT;
        if ((st = get_pair_id(L, &nd->i1, o, "cls", type))) return st;
        return get_pair_id(L, &nd->i2, o, "sep", type);
    }
    return FAIL(L, HEED_ERR_UNSUPPORTED, "%s: post_processor \"%s\" is not supported", L->name, type);
}

static heed_status parse_decoder(loader *L, tnode *nd, const cJSON *o, const char *type)
{
    const char *w = "decoder", *s;
    heed_status st;
    int64_t v;
    if (!strcmp(type, "ByteLevel")) return nd->type = D_BYTELEVEL, HEED_OK;
    if (!strcmp(type, "ByteFallback")) return nd->type = D_BYTEFALLBACK, HEED_OK;
    if (!strcmp(type, "Fuse")) return nd->type = D_FUSE, HEED_OK;
    if (!strcmp(type, "Metaspace")) {
        if ((st = parse_pre(L, nd, o, "Metaspace"))) return st;
        nd->type = D_METASPACE;
        return HEED_OK;
    }
    if (!strcmp(type, "Strip")) {
        nd->type = D_STRIP;
        if ((st = get_char(L, nd, o, "content", " ", "Strip decoder"))) return st;
        if ((st = get_int(L, &v, o, "start", 0, 0, INT32_MAX, "Strip decoder"))) return st;
        nd->i1 = (int)v;
        if ((st = get_int(L, &v, o, "stop", 0, 0, INT32_MAX, "Strip decoder"))) return st;
        nd->i2 = (int)v;
        return HEED_OK;
    }
    if (!strcmp(type, "Replace")) {
        nd->type = D_REPLACE;
        if ((st = parse_pattern(L, nd, get(o, "pattern"), "Replace decoder"))) return st;
        if ((st = get_str(L, &s, o, "content", w))) return st;
        if (!s) return FAIL(L, HEED_ERR_FORMAT, "%s: Replace decoder: missing \"content\"", L->name);
        return set_str(L, &nd->s1, &nd->n1, s, w);
    }
    if (!strcmp(type, "WordPiece")) {
        nd->type = D_WORDPIECE;
        nd->i1 = get_bool(o, "cleanup", 1);
        if ((st = get_str(L, &s, o, "prefix", w))) return st;
        return set_str(L, &nd->s1, &nd->n1, s ? s : "##", w);
    }
    if (!strcmp(type, "BPEDecoder")) {
        nd->type = D_BPE;
        if ((st = get_str(L, &s, o, "suffix", w))) return st;
        return set_str(L, &nd->s1, &nd->n1, s ? s : "</w>", w);
    }
    return FAIL(L, HEED_ERR_UNSUPPORTED, "%s: decoder \"%s\" is not supported", L->name, type);
}

static heed_status parse_node(loader *L, tnode *nd, const cJSON *o, int stage, int depth)
{
    const cJSON *t = get(o, "type");
    if (depth > 16) return FAIL(L, HEED_ERR_FORMAT, "%s: %s: Sequences nested too deep", L->name, stage_name[stage]);
    if (!cJSON_IsObject(o) || !cJSON_IsString(t))
        return FAIL(L, HEED_ERR_FORMAT, "%s: %s: expected an object with a string \"type\"", L->name, stage_name[stage]);
    if (!strcmp(t->valuestring, "Sequence")) return parse_seq(L, nd, o, stage, depth);
    switch (stage) {
    case STAGE_NORM: return parse_normalizer(L, nd, o, t->valuestring);
    case STAGE_PRE: return parse_pre(L, nd, o, t->valuestring);
    case STAGE_POST: return parse_post(L, nd, o, t->valuestring);
    default: return parse_decoder(L, nd, o, t->valuestring);
    }
}

void tnode_free(tnode *nd)
{
    for (int i = 0; i < nd->n_kids; i++) tnode_free(&nd->kids[i]);
    free(nd->kids);
    free(nd->s1);
    free(nd->s2);
    free(nd->ids);
    pcre2_code_free(nd->re);
}

static heed_status parse_stage(loader *L, tnode **out, const cJSON *root, int stage)
{
    const cJSON *o = get(root, stage_name[stage]);
    *out = NULL;
    if (!o || cJSON_IsNull(o)) return HEED_OK;
    *out = calloc(1, sizeof **out);
    if (!*out) return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
    return parse_node(L, *out, o, stage, 0);
}

/* --- model ------------------------------------------------------------------------------------- */
static heed_status parse_vocab(loader *L, const cJSON *vocab, const cJSON *added)
{
    heed_tokenizer *tok = L->tok;
    const cJSON *it;
    int64_t max_id = -1;
    size_t n = 0;
    if (!cJSON_IsObject(vocab))
        return FAIL(L, HEED_ERR_FORMAT, "%s: model.vocab: expected an object of token -> id", L->name);
    cJSON_ArrayForEach(it, vocab)
    {
        double d = cJSON_GetNumberValue(it);
        if (!cJSON_IsNumber(it) || !(d >= 0 && d < INT32_MAX) || d != floor(d))
            return FAIL(L, HEED_ERR_FORMAT, "%s: model.vocab[\"%s\"]: expected an integer id >= 0", L->name,
                        it->string);
        if (d > max_id) max_id = (int64_t)d;
        n++;
    }
    cJSON_ArrayForEach(it, added)
    {
        const cJSON *id = get(it, "id");
        double d = cJSON_GetNumberValue(id);
        if (!cJSON_IsNumber(id) || !(d >= 0 && d < INT32_MAX) || d != floor(d))
            return FAIL(L, HEED_ERR_FORMAT, "%s: added_tokens: expected an integer \"id\" >= 0", L->name);
        if (d > max_id) max_id = (int64_t)d;
    }
    if (max_id >= (int64_t)(n + (size_t)cJSON_GetArraySize(added)) * 4 + 1024)
        return FAIL(L, HEED_ERR_FORMAT, "%s: ids up to %lld for %zu tokens: the vocabulary is too sparse", L->name,
                    (long long)max_id, n);
    tok->n_ids = (int32_t)(max_id + 1);
    size_t ni = (size_t)tok->n_ids ? (size_t)tok->n_ids : 1;
    tok->tok = calloc(ni, sizeof *tok->tok);
    tok->tok_len = calloc(ni, sizeof *tok->tok_len);
    tok->from_model = calloc(ni, 1);
    tok->added_of = malloc(ni * sizeof *tok->added_of);
    tok->vocab.cap = pow2_at_least(2 * n + 2);
    tok->vocab.slot = malloc(tok->vocab.cap * sizeof *tok->vocab.slot);
    if (!tok->tok || !tok->tok_len || !tok->from_model || !tok->added_of || !tok->vocab.slot)
        return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory for %lld ids", L->name, (long long)ni);
    memset(tok->vocab.slot, 0xff, tok->vocab.cap * sizeof *tok->vocab.slot);
    for (size_t i = 0; i < ni; i++) tok->added_of[i] = -1;
    cJSON_ArrayForEach(it, vocab)
    {
        int32_t id = (int32_t)cJSON_GetNumberValue(it);
        size_t len = strlen(it->string);
        if (tok->from_model[id])
            return FAIL(L, HEED_ERR_FORMAT, "%s: model.vocab: id %d is given to both \"%s\" and \"%s\"", L->name, id,
                        tok->tok[id], it->string);
        if (tok_vocab_get(tok, it->string, len) >= 0)
            return FAIL(L, HEED_ERR_FORMAT, "%s: model.vocab: token \"%s\" appears twice", L->name, it->string);
        if (!(tok->tok[id] = dup_str(it->string, NULL))) return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
        tok->tok_len[id] = (uint32_t)len;
        tok->from_model[id] = 1;
        size_t i = hash_bytes(it->string, len) & (tok->vocab.cap - 1);
        while (tok->vocab.slot[i] >= 0) i = (i + 1) & (tok->vocab.cap - 1);
        tok->vocab.slot[i] = id;
    }
    return HEED_OK;
}

static void merge_put(heed_tokenizer *tok, uint64_t key, uint64_t val)
{
    size_t i = hash_u64(key) & (tok->merge_cap - 1);
    while (tok->merge_key[i] && tok->merge_key[i] != key + 1) i = (i + 1) & (tok->merge_cap - 1);
    tok->merge_key[i] = key + 1;
    tok->merge_val[i] = val;
}

static heed_status parse_merges(loader *L, const cJSON *merges)
{
    heed_tokenizer *tok = L->tok;
    if (!cJSON_IsArray(merges)) return FAIL(L, HEED_ERR_FORMAT, "%s: model.merges: expected an array", L->name);
    size_t n = (size_t)cJSON_GetArraySize(merges);
    tok->merge_cap = pow2_at_least(2 * n + 2);
    tok->merge_key = calloc(tok->merge_cap, sizeof *tok->merge_key);
    tok->merge_val = malloc(tok->merge_cap * sizeof *tok->merge_val);
    tbuf b = {0};
    if (!tok->merge_key || !tok->merge_val) return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
    const cJSON *it;
    uint32_t rank = 0;
    heed_status st = HEED_OK;
    cJSON_ArrayForEach(it, merges)
    {
        const char *a, *bb;
        size_t na, nb;
        if (cJSON_IsString(it)) { /* "a b": exactly one space */
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (!strncmp(s, "#version", 8)) continue;
            if (!sp || strchr(sp + 1, ' ')) {
                st = FAIL(L, HEED_ERR_FORMAT, "%s: model.merges[%u]: \"%s\" is not two tokens separated by one space",
                          L->name, rank, s);
                break;
            }
            a = s, na = (size_t)(sp - s), bb = sp + 1, nb = strlen(sp + 1);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring, na = strlen(a);
            bb = cJSON_GetArrayItem(it, 1)->valuestring, nb = strlen(bb);
        } else {
            st = FAIL(L, HEED_ERR_FORMAT, "%s: model.merges[%u]: expected \"a b\" or [\"a\", \"b\"]", L->name, rank);
            break;
        }
        int32_t ia = tok_vocab_get(tok, a, na), ib = tok_vocab_get(tok, bb, nb);
        /* the merged token drops b's continuing_subword_prefix, as tokenizers does */
        size_t skip = tok->n_prefix && nb >= tok->n_prefix && !memcmp(bb, tok->prefix, tok->n_prefix) ? tok->n_prefix : 0;
        b.n = 0;
        tb_put(&b, a, na);
        tb_put(&b, bb + skip, nb - skip);
        if (b.oom) {
            st = FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
            break;
        }
        int32_t im = tok_vocab_get(tok, b.p ? b.p : "", b.n);
        if (ia < 0 || ib < 0 || im < 0) {
            st = FAIL(L, HEED_ERR_FORMAT, "%s: model.merges[%u]: token \"%.*s\" is not in the vocabulary", L->name,
                      rank, (int)(ia < 0 ? na : ib < 0 ? nb : b.n), ia < 0 ? a : ib < 0 ? bb : b.p);
            break;
        }
        merge_put(tok, (uint64_t)ia << 32 | (uint32_t)ib, (uint64_t)rank << 32 | (uint32_t)im);
        rank++;
    }
    tb_free(&b);
    return st;
}

static heed_status parse_model(loader *L, const cJSON *m, const cJSON *added)
{
    heed_tokenizer *tok = L->tok;
    heed_status st;
    const char *type, *s;
    if (!cJSON_IsObject(m)) return FAIL(L, HEED_ERR_FORMAT, "%s: missing \"model\" object", L->name);
    if ((st = get_str(L, &type, m, "type", "model"))) return st;
    if (!type) type = get(m, "merges") ? "BPE" : get(m, "max_input_chars_per_word") ? "WordPiece" : "(none)";
    if (!strcmp(type, "BPE")) tok->model = MODEL_BPE;
    else if (!strcmp(type, "WordPiece")) tok->model = MODEL_WORDPIECE;
    else return FAIL(L, HEED_ERR_UNSUPPORTED, "%s: model type \"%s\" is not supported (BPE, WordPiece)", L->name, type);
    if ((st = parse_vocab(L, get(m, "vocab"), added))) return st;
    if ((st = get_str(L, &s, m, "unk_token", "model"))) return st;
    tok->unk_id = -1;
    if (s && (tok->unk_id = tok_vocab_get(tok, s, strlen(s))) < 0)
        return FAIL(L, HEED_ERR_FORMAT, "%s: model.unk_token \"%s\" is not in the vocabulary", L->name, s);
    if (tok->model == MODEL_WORDPIECE) {
        if (tok->unk_id < 0) return FAIL(L, HEED_ERR_FORMAT, "%s: WordPiece model without unk_token", L->name);
        if ((st = get_str(L, &s, m, "continuing_subword_prefix", "model"))) return st;
        if ((st = set_str(L, &tok->prefix, &tok->n_prefix, s ? s : "##", "model"))) return st;
        return get_int(L, &tok->max_chars, m, "max_input_chars_per_word", 100, 0, INT64_MAX / 2, "model");
    }
    const cJSON *dropout = get(m, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble != 0.0)
        return FAIL(L, HEED_ERR_UNSUPPORTED, "%s: BPE dropout is not supported (encoding would be random)", L->name);
    tok->byte_fallback = get_bool(m, "byte_fallback", 0);
    tok->fuse_unk = get_bool(m, "fuse_unk", 0);
    tok->ignore_merges = get_bool(m, "ignore_merges", 0);
    if ((st = get_str(L, &s, m, "continuing_subword_prefix", "model"))) return st;
    if (s && (st = set_str(L, &tok->prefix, &tok->n_prefix, s, "model"))) return st;
    if ((st = get_str(L, &s, m, "end_of_word_suffix", "model"))) return st;
    if (s && (st = set_str(L, &tok->suffix, &tok->n_suffix, s, "model"))) return st;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_id[b] = tok_vocab_get(tok, name, 6);
    }
    return parse_merges(L, get(m, "merges"));
}

static heed_status parse_added(loader *L, const cJSON *added)
{
    heed_tokenizer *tok = L->tok;
    const cJSON *it;
    if (!added || cJSON_IsNull(added)) return HEED_OK;
    int n = cJSON_GetArraySize(added);
    tok->added = calloc(n ? (size_t)n : 1, sizeof *tok->added);
    if (!tok->added) return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
    cJSON_ArrayForEach(it, added)
    {
        const cJSON *c = get(it, "content");
        if (!cJSON_IsString(c) || !*c->valuestring)
            return FAIL(L, HEED_ERR_FORMAT, "%s: added_tokens[%d]: expected a non-empty string \"content\"", L->name,
                        tok->n_added);
        tadded *a = &tok->added[tok->n_added];
        a->id = (int32_t)cJSON_GetNumberValue(get(it, "id")); /* checked by parse_vocab */
        if (!(a->content = dup_str(c->valuestring, &a->n_content)))
            return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
        a->special = get_bool(it, "special", 0);
        a->lstrip = get_bool(it, "lstrip", 0);
        a->rstrip = get_bool(it, "rstrip", 0);
        a->single_word = get_bool(it, "single_word", 0);
        a->normalized = get_bool(it, "normalized", !a->special);
        tok->added_of[a->id] = tok->n_added; /* a later entry with the same id wins */
        tok->n_added++;
    }
    for (int i = 0; i < tok->n_added && !tok->word_re; i++)
        if (tok->added[i].single_word) {
            heed_status st = compile(L, &tok->word_re, RUST_WORD, sizeof RUST_WORD - 1, 0, "single_word");
            if (st) return st;
        }
    /* A normalized token is matched (and decoded) in its normalized form, as tokenizers does. */
    for (int i = 0; i < tok->n_added; i++) {
        tadded *a = &tok->added[i];
        tbuf b = {0};
        if (a->normalized && tok->normalizer) {
            if (utf8_valid(a->content, a->n_content) != a->n_content)
                return FAIL(L, HEED_ERR_FORMAT, "%s: added_tokens[%d]: content is not valid UTF-8", L->name, i);
            tok_normalize(&b, tok->normalizer, a->content, a->n_content);
        } else
            tb_put(&b, a->content, a->n_content);
        if (b.oom || b.rx || !b.p) {
            tb_free(&b);
            if (b.oom) return FAIL(L, HEED_ERR_NOMEM, "%s: out of memory", L->name);
            if (b.rx) return FAIL(L, HEED_ERR_UNSUPPORTED, "%s: added_tokens[%d]: the normalizer's regex failed", L->name, i);
            return FAIL(L, HEED_ERR_FORMAT, "%s: added_tokens[%d]: \"%s\" normalizes to nothing", L->name, i,
                        a->content);
        }
        a->match = b.p, a->n_match = b.n;
        tok->added_first[a->normalized][(unsigned char)b.p[0]] = 1;
    }
    return HEED_OK;
}

/* "truncation": {max_length, stride, strategy, direction}; "padding": {strategy: "BatchLongest" or
 * {"Fixed": n}, direction, pad_to_multiple_of, pad_id}. */
static heed_status parse_trunc_pad(loader *L, const cJSON *tr, const cJSON *pad)
{
    heed_tokenizer *tok = L->tok;
    heed_status st;
    const char *s;
    int64_t v;
    if (tr && !cJSON_IsNull(tr)) {
        if (!cJSON_IsObject(tr)) return FAIL(L, HEED_ERR_FORMAT, "%s: truncation: expected an object or null", L->name);
        tok->truncate = 1;
        if ((st = get_int(L, &tok->trunc_max, tr, "max_length", 512, 0, INT32_MAX, "truncation"))) return st;
        if ((st = get_int(L, &tok->trunc_stride, tr, "stride", 0, 0, INT32_MAX, "truncation"))) return st;
        if ((st = get_str(L, &s, tr, "strategy", "truncation"))) return st;
        if (s && !strcmp(s, "OnlySecond")) tok->trunc_only_second = 1;
        else if (s && strcmp(s, "LongestFirst") && strcmp(s, "OnlyFirst"))
            return FAIL(L, HEED_ERR_FORMAT, "%s: truncation.strategy: unknown value \"%s\"", L->name, s);
        if ((st = get_str(L, &s, tr, "direction", "truncation"))) return st;
        tok->trunc_left = s && !strcmp(s, "Left");
        if (s && !tok->trunc_left && strcmp(s, "Right"))
            return FAIL(L, HEED_ERR_FORMAT, "%s: truncation.direction: unknown value \"%s\"", L->name, s);
    }
    if (pad && !cJSON_IsNull(pad)) {
        const cJSON *strat = get(pad, "strategy");
        if (!cJSON_IsObject(pad)) return FAIL(L, HEED_ERR_FORMAT, "%s: padding: expected an object or null", L->name);
        tok->pad = 1;
        if (cJSON_IsObject(strat)) {
            if ((st = get_int(L, &tok->pad_len, strat, "Fixed", 0, 0, INT32_MAX, "padding.strategy"))) return st;
        } else if (!cJSON_IsString(strat) || strcmp(strat->valuestring, "BatchLongest"))
            return FAIL(L, HEED_ERR_FORMAT, "%s: padding.strategy: expected \"BatchLongest\" or {\"Fixed\": n}", L->name);
        if ((st = get_int(L, &tok->pad_multiple, pad, "pad_to_multiple_of", 0, 0, INT32_MAX, "padding"))) return st;
        if ((st = get_int(L, &v, pad, "pad_id", 0, 0, INT32_MAX, "padding"))) return st;
        tok->pad_id = (int32_t)v;
        if (v >= tok->n_ids)
            return FAIL(L, HEED_ERR_FORMAT, "%s: padding.pad_id %lld is not in the vocabulary", L->name, (long long)v);
        if ((st = get_str(L, &s, pad, "direction", "padding"))) return st;
        tok->pad_left = s && !strcmp(s, "Left");
    }
    return HEED_OK;
}

static heed_status check_ids(loader *L, const tnode *nd)
{
    const heed_tokenizer *tok = L->tok;
    if (!nd) return HEED_OK;
    for (int i = 0; i < nd->n_kids; i++) {
        heed_status st = check_ids(L, &nd->kids[i]);
        if (st) return st;
    }
    for (int i = 0; i < nd->n_ids; i++)
        if (nd->ids[i] >= tok->n_ids)
            return FAIL(L, HEED_ERR_FORMAT, "%s: post_processor: special id %d is not in the vocabulary (%d ids)",
                        L->name, nd->ids[i], tok->n_ids);
    if (nd->type == Q_BERT && (nd->i1 >= tok->n_ids || nd->i2 >= tok->n_ids))
        return FAIL(L, HEED_ERR_FORMAT, "%s: post_processor: cls/sep id is not in the vocabulary (%d ids)", L->name,
                    tok->n_ids);
    return HEED_OK;
}

heed_status heed_tokenizer_parse(heed_ctx *ctx, heed_tokenizer **out, const char *json, size_t len, const char *name)
{
    if (!out) return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenizer_parse: out is NULL");
    *out = NULL;
    if (!json) return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenizer_parse: json is NULL");
    loader L = {ctx, name ? name : "tokenizer.json", NULL};
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : len;
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", L.name, off);
    }
    heed_status st = HEED_OK;
    heed_tokenizer *tok = L.tok = calloc(1, sizeof *tok);
    const cJSON *added = get(root, "added_tokens");
    if (!tok) st = heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", L.name);
    else if (!cJSON_IsObject(root)) st = heed_fail(ctx, HEED_ERR_FORMAT, "%s: expected a JSON object", L.name);
    else if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        st = heed_fail(ctx, HEED_ERR_FORMAT, "%s: added_tokens: expected an array", L.name);
    if (!st) st = parse_model(&L, get(root, "model"), cJSON_IsArray(added) ? added : NULL);
    if (!st) st = parse_trunc_pad(&L, get(root, "truncation"), get(root, "padding"));
    if (!st) st = parse_stage(&L, &tok->normalizer, root, STAGE_NORM);
    if (!st) st = parse_stage(&L, &tok->pre, root, STAGE_PRE);
    if (!st) st = parse_stage(&L, &tok->post, root, STAGE_POST);
    if (!st) st = parse_stage(&L, &tok->decoder, root, STAGE_DEC);
    if (!st) st = parse_added(&L, cJSON_IsArray(added) ? added : NULL);
    if (!st) st = check_ids(&L, tok->post);
    cJSON_Delete(root);
    if (st) {
        heed_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return HEED_OK;
}

heed_status heed_tokenizer_load(heed_ctx *ctx, heed_tokenizer **out, const char *path)
{
    if (!out) return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path) return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenizer_load: path is NULL");
    struct stat sb;
    char file[4096];
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (snprintf(file, sizeof file, "%s/tokenizer.json", path) >= (int)sizeof file)
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenizer_load: path too long");
    } else if (snprintf(file, sizeof file, "%s", path) >= (int)sizeof file)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenizer_load: path too long");
    FILE *f = fopen(file, "rb");
    if (!f) return heed_fail(ctx, HEED_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            char *p = realloc(buf, cap = cap ? 2 * cap : 1 << 20);
            if (!p) {
                free(buf);
                fclose(f);
                return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", file);
            }
            buf = p;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return heed_fail(ctx, HEED_ERR_IO, "%s: read error", file);
    }
    heed_status st = heed_tokenizer_parse(ctx, out, buf, n, file);
    free(buf);
    return st;
}

void heed_tokenizer_free(heed_tokenizer *tok)
{
    if (!tok) return;
    for (int32_t i = 0; tok->tok && i < tok->n_ids; i++) free(tok->tok[i]);
    free(tok->tok);
    free(tok->tok_len);
    free(tok->from_model);
    free(tok->added_of);
    free(tok->vocab.slot);
    free(tok->merge_key);
    free(tok->merge_val);
    free(tok->prefix);
    free(tok->suffix);
    for (int i = 0; i < tok->n_added; i++) free(tok->added[i].content), free(tok->added[i].match);
    free(tok->added);
    pcre2_code_free(tok->word_re);
    tnode *stages[4] = {tok->normalizer, tok->pre, tok->post, tok->decoder};
    for (int i = 0; i < 4; i++)
        if (stages[i]) tnode_free(stages[i]), free(stages[i]);
    free(tok);
}

int64_t heed_tokenizer_n_ids(const heed_tokenizer *tok) { return tok ? tok->n_ids : 0; }

int64_t heed_tokenizer_token_id(const heed_tokenizer *tok, const char *s)
{
    if (!tok || !s) return -1;
    size_t n = strlen(s);
    for (int i = 0; i < tok->n_added; i++)
        if (tok->added[i].n_content == n && !memcmp(tok->added[i].content, s, n)) return tok->added[i].id;
    return tok_vocab_get(tok, s, n);
}

const char *heed_tokenizer_token(const heed_tokenizer *tok, int64_t id)
{
    if (!tok || id < 0 || id >= tok->n_ids) return NULL;
    if (tok->added_of[id] >= 0) return tok->added[tok->added_of[id]].content;
    return tok->tok[id];
}

int heed_tokenizer_is_special(const heed_tokenizer *tok, int64_t id)
{
    return tok && id >= 0 && id < tok->n_ids && tok->added_of[id] >= 0 && tok->added[tok->added_of[id]].special;
}
