/* decode.c — ids to text as tokenizers' `decode`: the ids' token strings (special ones dropped when
 * asked), run through the decoder chain (each decoder maps a list of strings to a list of strings),
 * then joined; with no decoder the tokens are joined by spaces. */
#include "tok/tok.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    tbuf *t; /* [n] token strings */
    size_t n;
    int oom, rx; /* out of memory; a PCRE2 error code */
} tlist;

static uint32_t cp_at(const char *s, size_t n, size_t *len)
{
    uint32_t c;
    int k = utf8_dec(&c, s, n);
    if (!k) c = 0xFFFD, k = 1;
    *len = (size_t)k;
    return c;
}

/* Collapses the list to one token holding the concatenation of all (Fuse, ByteLevel). */
static void fuse(tlist *L, const tbuf *joined)
{
    for (size_t i = 0; i < L->n; i++) tb_free(&L->t[i]);
    L->t[0] = *joined;
    L->n = 1;
}

/* The inverse of the GPT-2 byte-to-character map (encode.c), or -1 for a character outside it. */
static int char_byte(uint32_t c)
{
    if ((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) return (int)c;
    if (c >= 256 && c <= 288) return (int)(c - 256);
    if (c >= 289 && c <= 322) return (int)(c - 289 + 127);
    return c == 323 ? 173 : -1;
}

static void dec_bytelevel(tlist *L)
{
    tbuf bytes = {0}, out = {0};
    for (size_t i = 0; i < L->n; i++) {
        const char *s = L->t[i].p;
        size_t n = L->t[i].n, k, mark = bytes.n;
        int ok = 1;
        for (size_t j = 0; j < n && ok; j += k) {
            uint32_t c = cp_at(s + j, n - j, &k);
            int b = char_byte(c);
            if (b < 0) ok = 0;
            else {
                char ch = (char)b;
                tb_put(&bytes, &ch, 1);
            }
        }
        if (!ok) { /* a token outside the byte alphabet is kept as it is */
            bytes.n = mark;
            tb_put(&bytes, s, n);
        }
    }
    utf8_lossy(&out, bytes.p ? bytes.p : "", bytes.n);
    if (bytes.oom || out.oom) L->oom = 1;
    tb_free(&bytes);
    fuse(L, &out);
}

/* A token "<0xNN>" as u8::from_str_radix reads NN (which also takes "+N"), or -1. */
static int byte_token(const tbuf *t)
{
    const char *s = t->p;
    if (t->n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int i = s[3] == '+' ? 4 : 3; i < 5; i++) {
        int c = (unsigned char)s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                     : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static void dec_bytefallback(tlist *L)
{
    tbuf *out = calloc(2 * L->n + 1, sizeof *out), pend = {0};
    size_t n = 0, n_pend = 0;
    if (!out) {
        L->oom = 1;
        return;
    }
    for (size_t i = 0; i <= L->n; i++) {
        int b = i < L->n ? byte_token(&L->t[i]) : -1;
        if (b >= 0) {
            char ch = (char)b;
            tb_put(&pend, &ch, 1);
            n_pend++;
            continue;
        }
        if (n_pend) { /* valid UTF-8 becomes one token, else one U+FFFD per byte */
            if (utf8_valid(pend.p, pend.n) == pend.n) tb_put(&out[n++], pend.p, pend.n);
            else
                for (size_t j = 0; j < n_pend; j++) tb_putc(&out[n++], 0xFFFD);
            pend.n = n_pend = 0;
        }
        if (i < L->n) out[n++] = L->t[i], memset(&L->t[i], 0, sizeof L->t[i]);
    }
    for (size_t i = 0; i < L->n; i++) tb_free(&L->t[i]);
    free(L->t);
    L->t = out;
    L->n = n;
    tb_free(&pend);
}

static void dec_one(tlist *L, const tnode *nd);

static void dec_per_token(tlist *L, const tnode *nd)
{
    tbuf t = {0};
    static const char *clean[][2] = {{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
                                     {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t i = 0; i < L->n; i++) {
        const char *s = L->t[i].p ? L->t[i].p : "";
        size_t n = L->t[i].n, k;
        t.n = 0;
        switch (nd->type) {
        case D_METASPACE:
            for (size_t j = 0; j < n; j += k) {
                cp_at(s + j, n - j, &k);
                if (k == nd->n1 && !memcmp(s + j, nd->s1, k)) {
                    if (!(i == 0 && nd->i1 != PS_NEVER)) tb_put(&t, " ", 1);
                } else
                    tb_put(&t, s + j, k);
            }
            break;
        case D_STRIP: { /* up to i1 leading and i2 trailing copies of the character s1 */
            size_t a = 0, b = n, nc = 0;
            for (size_t j = 0; j < n; j += k) cp_at(s + j, n - j, &k), nc++;
            for (int j = 0; j < nd->i1 && n - a >= nd->n1 && !memcmp(s + a, nd->s1, nd->n1); j++) a += nd->n1;
            for (int j = 0; j < nd->i2 && (size_t)j < nc && b >= nd->n1 && !memcmp(s + b - nd->n1, nd->s1, nd->n1); j++)
                b -= nd->n1;
            if (a < b) tb_put(&t, s + a, b - a);
            break;
        }
        case D_WORDPIECE:
            if (i != 0) {
                if (n >= nd->n1 && !memcmp(s, nd->s1, nd->n1)) s += nd->n1, n -= nd->n1;
                else tb_put(&t, " ", 1);
            }
            tb_put(&t, s, n);
            if (nd->i1) /* cleanup: the fixed replacements, each over the whole token in turn */
                for (size_t r = 0; r < sizeof clean / sizeof clean[0]; r++) {
                    tbuf u = {0};
                    size_t nf = strlen(clean[r][0]), nt = strlen(clean[r][1]), j = 0;
                    while (j < t.n) {
                        if (t.n - j >= nf && !memcmp(t.p + j, clean[r][0], nf)) tb_put(&u, clean[r][1], nt), j += nf;
                        else tb_put(&u, t.p + j, 1), j++;
                    }
                    if (u.oom) L->oom = 1;
                    tb_free(&t);
                    t = u;
                }
            break;
        case D_BPE: {
            size_t j = 0;
            while (j < n) {
                if (nd->n1 && n - j >= nd->n1 && !memcmp(s + j, nd->s1, nd->n1)) {
                    if (i + 1 != L->n) tb_put(&t, " ", 1);
                    j += nd->n1;
                } else
                    tb_put(&t, s + j, 1), j++;
            }
            break;
        }
        }
        if (t.oom) L->oom = 1;
        tbuf x = L->t[i];
        L->t[i] = t;
        t = x;
    }
    tb_free(&t);
}

static void dec_replace(tlist *L, const tnode *nd)
{
    pcre2_match_data *md = nd->re ? pcre2_match_data_create_from_pattern(nd->re, NULL) : NULL;
    if (nd->re && !md) {
        L->oom = 1;
        return;
    }
    for (size_t i = 0; md && i < L->n; i++) {
        tbuf t = {0};
        const char *s = L->t[i].p ? L->t[i].p : "";
        size_t n = L->t[i].n, pos = 0, prev = 0;
        while (pos <= n) {
            int rc = pcre2_match(nd->re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
            if (rc < 0) {
                if (rc != PCRE2_ERROR_NOMATCH) L->rx = rc;
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            tb_put(&t, s + prev, ov[0] - prev);
            tb_put(&t, nd->s1, nd->n1);
            prev = ov[1];
            if (ov[1] > ov[0]) pos = ov[1];
            else {
                size_t k = 1;
                if (ov[1] < n) cp_at(s + ov[1], n - ov[1], &k);
                pos = ov[1] + k;
            }
        }
        tb_put(&t, s + prev, n - prev);
        if (t.oom) L->oom = 1;
        tb_free(&L->t[i]);
        L->t[i] = t;
    }
    pcre2_match_data_free(md);
}

static void dec_one(tlist *L, const tnode *nd)
{
    if (L->oom) return;
    switch (nd->type) {
    case SEQ:
        for (int i = 0; i < nd->n_kids; i++) dec_one(L, &nd->kids[i]);
        return;
    case D_BYTELEVEL: dec_bytelevel(L); return;
    case D_BYTEFALLBACK: dec_bytefallback(L); return;
    case D_FUSE: {
        tbuf all = {0};
        for (size_t i = 0; i < L->n; i++) tb_put(&all, L->t[i].p, L->t[i].n);
        if (all.oom) L->oom = 1;
        fuse(L, &all);
        return;
    }
    case D_REPLACE: dec_replace(L, nd); return;
    default: dec_per_token(L, nd); return;
    }
}

heed_status heed_detokenize(heed_ctx *ctx, char **text, size_t *len, const heed_tokenizer *tok, const int32_t *ids,
                            int64_t n_ids, int skip_special)
{
    if (!text || !len || !tok || (!ids && n_ids) || n_ids < 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_detokenize: text, len, tok (and ids when n_ids > 0) must be set");
    *text = NULL, *len = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->n_ids || (!tok->from_model[id] && tok->added_of[id] < 0))
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_detokenize: ids[%lld] = %d is not a token id (vocabulary has %d ids)",
                             (long long)i, id, tok->n_ids);
    }
    tlist L = {calloc((size_t)n_ids + 1, sizeof(tbuf)), 0, 0, 0};
    if (!L.t) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_detokenize: out of memory for %lld ids", (long long)n_ids);
    for (int64_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        const tadded *a = tok->added_of[id] >= 0 ? &tok->added[tok->added_of[id]] : NULL;
        if (a && a->special && skip_special) continue;
        if (a) tb_put(&L.t[L.n], a->match, a->n_match);
        else tb_put(&L.t[L.n], tok->tok[id], tok->tok_len[id]);
        if (L.t[L.n++].oom) L.oom = 1;
    }
    tbuf out = {0};
    if (tok->decoder && L.n) dec_one(&L, tok->decoder);
    for (size_t i = 0; i < L.n; i++) {
        if (i && !tok->decoder) tb_put(&out, " ", 1);
        tb_put(&out, L.t[i].p, L.t[i].n);
    }
    if (!out.p && !out.oom) out.p = calloc(1, 1);
    int oom = L.oom || out.oom || !out.p;
    for (size_t i = 0; i < L.n; i++) tb_free(&L.t[i]);
    free(L.t);
    if (oom || L.rx) {
        tb_free(&out);
        if (oom) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_detokenize: out of memory");
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(L.rx, msg, sizeof msg);
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "heed_detokenize: the Replace decoder's regex failed: %s", (char *)msg);
    }
    *text = out.p;
    *len = out.n;
    return HEED_OK;
}
