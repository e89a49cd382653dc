/* encode.c — text to ids, in the order tokenizers runs its pipeline: added tokens that are matched on the
 * raw text, the normalizer (per remaining piece), added tokens matched on normalized text, the
 * pre-tokenizer, the model (BPE with a rank heap, or WordPiece greedy longest match), and the
 * post-processor's template when special tokens are asked for. */
#include "tok/tok.h"

#include <stdlib.h>
#include <string.h>

/* --- small helpers ----------------------------------------------------------------------------- */
static uint32_t cp_at(const char *s, size_t n, size_t *len)
{
    uint32_t c;
    int k = utf8_dec(&c, s, n);
    if (!k) c = 0xFFFD, k = 1; /* only valid UTF-8 reaches here */
    *len = (size_t)k;
    return c;
}

/* The character that ends s [n] (n > 0). */
static uint32_t last_cp(const char *s, size_t n)
{
    size_t i = n - 1, k;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return cp_at(s + i, n - i, &k);
}


/* The next match of re in s [n] at or after *pos: [*ms, *me). Empty matches advance by one character
 * on the next call. md is the caller's match data. A failure other than "no match" (a PCRE2 resource
 * limit) is left in *err. */
static int next_match(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t n, size_t *pos, size_t *ms,
                      size_t *me, int *err)
{
    if (!re || *pos > n) return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, *pos, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc < 0) {
        if (rc != PCRE2_ERROR_NOMATCH) *err = rc;
        return 0;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0], *me = ov[1];
    if (*me > *ms) *pos = *me;
    else if (*me < n) {
        size_t k;
        cp_at(s + *me, n - *me, &k);
        *pos = *me + k;
    } else
        *pos = n + 1;
    return 1;
}

/* Appends s [n] with every match of re replaced by rep [nrep]. */
static void replace_all(tbuf *out, const pcre2_code *re, const char *s, size_t n, const char *rep, size_t nrep)
{
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    size_t pos = 0, ms, me, prev = 0;
    if (re && !md) {
        out->oom = 1;
        return;
    }
    while (md && next_match(re, md, s, n, &pos, &ms, &me, &out->rx)) {
        tb_put(out, s + prev, ms - prev);
        tb_put(out, rep, nrep);
        prev = me;
    }
    tb_put(out, s + prev, n - prev);
    pcre2_match_data_free(md);
}

/* --- normalizers ------------------------------------------------------------------------------- */
static int is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

enum { F_DROP_MN = 1, F_LOWER = 2, F_BERT_CLEAN = 4, F_CHINESE = 8 };

/* One pass over the characters of s [n] applying the per-character steps in flags, in BertNormalizer's
 * order when several are set (clean, chinese, then the caller's NFD, then drop marks, then lowercase). */
static void map_chars(tbuf *out, const char *s, size_t n, int flags)
{
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t c = cp_at(s + i, n - i, &k);
        i += k;
        if (flags & F_BERT_CLEAN) {
            if (c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && uni_is_other(c))) continue;
            if (c == '\t' || c == '\n' || c == '\r' || uni_is_whitespace(c)) c = ' ';
        }
        if ((flags & F_DROP_MN) && uni_is_mn(c)) continue;
        if ((flags & F_CHINESE) && is_chinese(c)) {
            tb_putc(out, ' ');
            tb_putc(out, c);
            tb_putc(out, ' ');
        } else if (flags & F_LOWER)
            uni_lower(out, c);
        else
            tb_putc(out, c);
    }
}

static void normalize_one(tbuf *out, const tnode *nd, const char *s, size_t n)
{
    switch (nd->type) {
    case SEQ: tok_normalize(out, nd, s, n); return;
    case N_PREPEND:
        if (n) tb_put(out, nd->s1, nd->n1);
        tb_put(out, s, n);
        return;
    case N_REPLACE: replace_all(out, nd->re, s, n, nd->s1, nd->n1); return;
    case N_NF: uni_normalize(out, s, n, nd->i1); return;
    case N_LOWER: map_chars(out, s, n, F_LOWER); return;
    case N_STRIP_ACCENTS: map_chars(out, s, n, F_DROP_MN); return;
    case N_STRIP: {
        size_t a = 0, b = n, k;
        while (nd->i1 && a < b && uni_is_whitespace(cp_at(s + a, b - a, &k))) a += k;
        while (nd->i2 && b > a && uni_is_whitespace(last_cp(s + a, b - a))) {
            b--;
            while (b > a && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
        }
        tb_put(out, s + a, b - a);
        return;
    }
    case N_BERT: {
        tbuf t = {0}, u = {0};
        map_chars(&t, s, n, (nd->i1 ? F_BERT_CLEAN : 0) | (nd->i2 ? F_CHINESE : 0));
        if (nd->i3) {
            uni_normalize(&u, t.p ? t.p : "", t.n, UNI_NFD);
            t.n = 0;
            map_chars(&t, u.p ? u.p : "", u.n, F_DROP_MN | (nd->i4 ? F_LOWER : 0));
        } else if (nd->i4) {
            map_chars(&u, t.p ? t.p : "", t.n, F_LOWER);
            tbuf x = t;
            t = u, u = x;
        }
        if (t.oom || u.oom) out->oom = 1;
        tb_put(out, t.p, t.n);
        tb_free(&t);
        tb_free(&u);
        return;
    }
    }
}

void tok_normalize(tbuf *out, const tnode *nd, const char *s, size_t n)
{
    if (nd->type != SEQ) {
        normalize_one(out, nd, s, n);
        return;
    }
    tbuf a = {0}, b = {0};
    tb_put(&a, s, n);
    for (int i = 0; i < nd->n_kids; i++) {
        b.n = 0;
        normalize_one(&b, &nd->kids[i], a.p ? a.p : "", a.n);
        tbuf x = a;
        a = b, b = x;
    }
    if (a.oom || b.oom) out->oom = 1;
    if (a.rx || b.rx) out->rx = a.rx ? a.rx : b.rx;
    tb_put(out, a.p, a.n);
    tb_free(&a);
    tb_free(&b);
}

/* --- pieces of text between pipeline steps ----------------------------------------------------- */
typedef struct {
    size_t off, len; /* text in the arena */
    int32_t id;      /* >= 0: an added token, already final */
    int at0;         /* starts at offset 0 of the input (Metaspace prepend_scheme "first") */
} piece;

typedef struct {
    piece *p;
    size_t n, cap;
} plist;

typedef struct {
    heed_ctx *ctx;
    const heed_tokenizer *tok;
    tbuf arena;
    plist a, b; /* current pieces and the next step's */
    int32_t *ids;
    size_t n_ids, cap_ids;
    int oom;
} enc;

static void push_piece(enc *E, plist *l, size_t off, size_t len, int32_t id, int at0)
{
    if (len == 0 && id < 0) return; /* tokenizers drops empty splits */
    void *grown = heed_grow(l->p, &l->cap, l->n, sizeof *l->p, 16);
    if (!grown) {
        E->oom = 1;
        return;
    }
    l->p = grown;
    l->p[l->n++] = (piece){off, len, id, at0};
}

static void push_id(enc *E, int32_t id)
{
    void *grown = heed_grow(E->ids, &E->cap_ids, E->n_ids, sizeof *E->ids, 64);
    if (!grown) {
        E->oom = 1;
        return;
    }
    E->ids = grown;
    E->ids[E->n_ids++] = id;
}

/* Replaces the current list by the next one. */
static void swap_lists(enc *E)
{
    plist x = E->a;
    E->a = E->b;
    E->b = x;
    E->b.n = 0;
}

/* --- added tokens ------------------------------------------------------------------------------ */
/* Whether the character at s [off] is a word character (tok->word_re, anchored there). */
static int is_word_at(enc *E, const char *s, size_t n, size_t off)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) {
        E->oom = 1;
        return 0;
    }
    int rc = pcre2_match(E->tok->word_re, (PCRE2_SPTR)s, n, off, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, NULL);
    pcre2_match_data_free(md);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) E->arena.rx = rc;
    return rc >= 0;
}

/* Splits each text piece around the added tokens whose `normalized` flag equals normalized, as
 * tokenizers' leftmost-longest matching with single_word/lstrip/rstrip. */
static void split_added(enc *E, int normalized)
{
    const heed_tokenizer *tok = E->tok;
    for (size_t pi = 0; pi < E->a.n; pi++) {
        piece pc = E->a.p[pi];
        if (pc.id >= 0) {
            push_piece(E, &E->b, pc.off, pc.len, pc.id, 0);
            continue;
        }
        const char *s = E->arena.p + pc.off;
        size_t n = pc.len, start_off = 0, k;
        for (size_t pos = 0; pos < n;) {
            const tadded *best = NULL;
            if (!tok->added_first[normalized][(unsigned char)s[pos]]) {
                pos++;
                continue;
            }
            for (int i = 0; i < tok->n_added; i++) {
                const tadded *a = &tok->added[i];
                if (a->normalized != normalized || a->n_match > n - pos || a->match[0] != s[pos]) continue;
                if (memcmp(a->match, s + pos, a->n_match)) continue;
                if (!best || a->n_match > best->n_match) best = a;
            }
            if (!best) {
                pos++;
                continue;
            }
            size_t start = pos, stop = pos + best->n_match;
            pos = stop;
            if (best->single_word) { /* no word character (Rust's \w) touches it on either side */
                size_t before = start;
                while (before > 0 && ((unsigned char)s[--before] & 0xC0) == 0x80) {}
                int start_ok = start == 0 || !is_word_at(E, s, n, before);
                int stop_ok = stop == n || !is_word_at(E, s, n, stop);
                if (!start_ok || !stop_ok) continue;
            }
            if (best->lstrip) {
                size_t ns = start;
                while (ns > 0 && uni_is_whitespace(last_cp(s, ns))) {
                    ns--;
                    while (ns > 0 && ((unsigned char)s[ns] & 0xC0) == 0x80) ns--;
                }
                start = ns > start_off ? ns : start_off;
            }
            if (best->rstrip)
                while (stop < n && uni_is_whitespace(cp_at(s + stop, n - stop, &k))) stop += k;
            if (start_off < start) push_piece(E, &E->b, pc.off + start_off, start - start_off, -1, pc.at0 && start_off == 0);
            push_piece(E, &E->b, pc.off + start, stop - start, best->id, 0);
            start_off = stop;
        }
        if (start_off < n) push_piece(E, &E->b, pc.off + start_off, n - start_off, -1, pc.at0 && start_off == 0);
    }
    swap_lists(E);
}

/* Normalizes every text piece into new arena text. */
static void normalize_pieces(enc *E)
{
    tbuf t = {0};
    for (size_t pi = 0; pi < E->a.n; pi++) {
        piece pc = E->a.p[pi];
        if (pc.id < 0) {
            t.n = 0;
            tok_normalize(&t, E->tok->normalizer, E->arena.p + pc.off, pc.len);
            pc.off = E->arena.n;
            pc.len = t.n;
            tb_put(&E->arena, t.p, t.n);
        }
        push_piece(E, &E->b, pc.off, pc.len, pc.id, pc.at0);
    }
    if (t.oom) E->oom = 1;
    if (t.rx) E->arena.rx = t.rx;
    tb_free(&t);
    swap_lists(E);
}

/* --- pre-tokenizers ---------------------------------------------------------------------------- */
typedef struct {
    size_t s, e;
    int m;
} seg;

typedef struct {
    seg *v;
    size_t n, cap;
} seglist;

static void push_seg(enc *E, seglist *l, size_t s, size_t e, int m)
{
    void *grown = heed_grow(l->v, &l->cap, l->n, sizeof *l->v, 32);
    if (!grown) {
        E->oom = 1;
        return;
    }
    l->v = grown;
    l->v[l->n++] = (seg){s, e, m};
}

typedef int (*char_pred)(uint32_t c, const tnode *nd);
static int pred_ws(uint32_t c, const tnode *nd) { return uni_is_whitespace(c); }
static int pred_punct(uint32_t c, const tnode *nd) { return uni_is_punct(c); }
static int pred_digit(uint32_t c, const tnode *nd) { return uni_is_numeric(c); }
static int pred_char(uint32_t c, const tnode *nd)
{
    size_t k;
    return c == cp_at(nd->s1, nd->n1, &k);
}

/* Splits every text piece: matches come from re or from a character predicate (each matching
 * character is one match); then tokenizers' SplitDelimiterBehavior decides what is kept. */
static void split_pieces(enc *E, const pcre2_code *re, char_pred pred, const tnode *nd, int behavior, int invert)
{
    seglist m = {0}, out = {0};
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    if (re && !md) E->oom = 1;
    for (size_t pi = 0; pi < E->a.n && !E->oom; pi++) {
        piece pc = E->a.p[pi];
        if (pc.id >= 0) {
            push_piece(E, &E->b, pc.off, pc.len, pc.id, 0);
            continue;
        }
        const char *s = E->arena.p + pc.off;
        size_t n = pc.len, prev = 0, pos = 0, ms, me, k;
        m.n = out.n = 0;
        if (re) {
            while (next_match(re, md, s, n, &pos, &ms, &me, &E->arena.rx)) {
                if (prev != ms) push_seg(E, &m, prev, ms, 0);
                push_seg(E, &m, ms, me, 1);
                prev = me;
            }
        } else {
            for (size_t i = 0; i < n; i += k) {
                uint32_t c = cp_at(s + i, n - i, &k);
                if (!pred(c, nd)) continue;
                if (prev < i) push_seg(E, &m, prev, i, 0);
                push_seg(E, &m, i, i + k, 1);
                prev = i + k;
            }
        }
        if (prev != n) push_seg(E, &m, prev, n, 0);
        if (E->oom) break;
        if (invert)
            for (size_t i = 0; i < m.n; i++) m.v[i].m = !m.v[i].m;
        int prev_m = 0;
        switch (behavior) {
        case B_REMOVED:
            for (size_t i = 0; i < m.n; i++)
                if (!m.v[i].m) push_seg(E, &out, m.v[i].s, m.v[i].e, 0);
            break;
        case B_ISOLATED:
            for (size_t i = 0; i < m.n; i++) push_seg(E, &out, m.v[i].s, m.v[i].e, 0);
            break;
        case B_CONTIGUOUS:
        case B_MERGED_PREV:
            for (size_t i = 0; i < m.n; i++) {
                int join = behavior == B_CONTIGUOUS ? m.v[i].m == prev_m : m.v[i].m && !prev_m;
                if (join && out.n) out.v[out.n - 1].e = m.v[i].e;
                else push_seg(E, &out, m.v[i].s, m.v[i].e, 0);
                prev_m = m.v[i].m;
            }
            break;
        case B_MERGED_NEXT:
            for (size_t i = m.n; i-- > 0;) {
                if (m.v[i].m && !prev_m && out.n) out.v[out.n - 1].s = m.v[i].s;
                else push_seg(E, &out, m.v[i].s, m.v[i].e, 0);
                prev_m = m.v[i].m;
            }
            for (size_t i = 0; i < out.n / 2; i++) {
                seg x = out.v[i];
                out.v[i] = out.v[out.n - 1 - i], out.v[out.n - 1 - i] = x;
            }
            break;
        }
        for (size_t i = 0; i < out.n; i++)
            push_piece(E, &E->b, pc.off + out.v[i].s, out.v[i].e - out.v[i].s, -1, pc.at0 && out.v[i].s == 0);
    }
    free(m.v);
    free(out.v);
    pcre2_match_data_free(md);
    swap_lists(E);
}

/* The GPT-2 byte-to-character map: printable bytes stand for themselves; the 68 others (0-32,
 * 127-160, 173), in order, become U+0100 onwards. */
uint32_t byte_char(unsigned b)
{
    if (b <= 32) return 256 + b;
    if (b >= 127 && b <= 160) return 256 + 33 + (b - 127);
    return b == 173 ? 323 : b;
}

/* Rewrites each text piece into new arena text: ByteLevel maps every byte to its character; Metaspace
 * turns spaces into the replacement and prepends one as its prepend_scheme says. */
static void transform_pieces(enc *E, const tnode *nd)
{
    for (size_t pi = 0; pi < E->a.n; pi++) {
        piece pc = E->a.p[pi];
        if (pc.id >= 0) {
            push_piece(E, &E->b, pc.off, pc.len, pc.id, 0);
            continue;
        }
        if (!tb_reserve(&E->arena, 3 * pc.len + 8)) {
            E->oom = 1;
            break;
        }
        const char *s = E->arena.p + pc.off;
        size_t n = pc.len, off = E->arena.n;
        if (nd->type == P_BYTELEVEL) {
            for (size_t i = 0; i < n; i++) tb_putc(&E->arena, byte_char((unsigned char)s[i]));
        } else { /* Metaspace: spaces become the replacement, then the prepend scheme */
            int starts = n >= nd->n1 && !memcmp(s, nd->s1, nd->n1);
            int first_space = n > 0 && s[0] == ' ';
            if (!(starts || first_space) && (nd->i1 == PS_ALWAYS || (nd->i1 == PS_FIRST && pc.at0)))
                tb_put(&E->arena, nd->s1, nd->n1);
            for (size_t i = 0; i < n; i++)
                if (s[i] == ' ') tb_put(&E->arena, nd->s1, nd->n1);
                else tb_put(&E->arena, s + i, 1);
        }
        push_piece(E, &E->b, off, E->arena.n - off, -1, pc.at0);
    }
    swap_lists(E);
}

/* Puts a space before every text piece that does not start with one (ByteLevel add_prefix_space). */
static void prefix_space(enc *E)
{
    for (size_t pi = 0; pi < E->a.n; pi++) {
        piece pc = E->a.p[pi];
        if (pc.id < 0 && (pc.len == 0 || E->arena.p[pc.off] != ' ')) {
            if (!tb_reserve(&E->arena, pc.len + 1)) {
                E->oom = 1;
                break;
            }
            size_t off = E->arena.n;
            tb_put(&E->arena, " ", 1);
            tb_put(&E->arena, E->arena.p + pc.off, pc.len);
            pc.off = off, pc.len++;
        }
        push_piece(E, &E->b, pc.off, pc.len, pc.id, pc.at0);
    }
    swap_lists(E);
}

static void pre_tokenize(enc *E, const tnode *nd)
{
    switch (nd->type) {
    case SEQ:
        for (int i = 0; i < nd->n_kids && !E->oom; i++) pre_tokenize(E, &nd->kids[i]);
        return;
    case P_BYTELEVEL:
        if (nd->i1) prefix_space(E);
        if (nd->i2) split_pieces(E, nd->re, NULL, nd, B_ISOLATED, 0);
        transform_pieces(E, nd);
        return;
    case P_METASPACE:
        transform_pieces(E, nd);
        if (nd->i2) split_pieces(E, NULL, pred_char, nd, B_MERGED_NEXT, 0);
        return;
    case P_SPLIT: split_pieces(E, nd->re, NULL, nd, nd->i1, nd->i2); return;
    case P_DIGITS: split_pieces(E, NULL, pred_digit, nd, nd->i1 ? B_ISOLATED : B_CONTIGUOUS, 0); return;
    case P_PUNCT: split_pieces(E, NULL, pred_punct, nd, nd->i1, 0); return;
    case P_WHITESPACE: split_pieces(E, nd->re, NULL, nd, B_REMOVED, 1); return;
    case P_WSSPLIT: split_pieces(E, NULL, pred_ws, nd, B_REMOVED, 0); return;
    case P_CHARDELIM: split_pieces(E, NULL, pred_char, nd, B_REMOVED, 0); return;
    case P_BERT:
        split_pieces(E, NULL, pred_ws, nd, B_REMOVED, 0);
        split_pieces(E, NULL, pred_punct, nd, B_ISOLATED, 0);
        return;
    }
}

/* --- models ------------------------------------------------------------------------------------ */
typedef struct {
    int32_t id, prev, next; /* prev/next: neighbour symbol indices, -1 none */
    int alive;
} sym;

typedef struct {
    uint32_t rank;
    int32_t pos, new_id;
} cand;

static int cand_less(cand a, cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(cand *h, size_t *n, cand c)
{
    size_t i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) h[i] = h[(i - 1) / 2], i = (i - 1) / 2;
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c], i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static int merge_get(const heed_tokenizer *tok, int32_t a, int32_t b, uint32_t *rank, int32_t *id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    if (!tok->merge_cap) return 0;
    uint64_t h = key - 1;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    for (size_t i = h & (tok->merge_cap - 1);; i = (i + 1) & (tok->merge_cap - 1)) {
        if (!tok->merge_key[i]) return 0;
        if (tok->merge_key[i] == key) {
            *rank = (uint32_t)(tok->merge_val[i] >> 32);
            *id = (int32_t)(uint32_t)tok->merge_val[i];
            return 1;
        }
    }
}

static void bpe(enc *E, const char *s, size_t n)
{
    const heed_tokenizer *tok = E->tok;
    if (tok->ignore_merges) {
        int32_t id = tok_vocab_get(tok, s, n);
        if (id >= 0) {
            push_id(E, id);
            return;
        }
    }
    /* byte fallback spells out prefix and suffix too: at most this many symbols */
    size_t cap = n * (1 + tok->n_prefix) + tok->n_suffix + 2;
    sym *sy = malloc(cap * sizeof *sy);
    cand *heap = malloc((3 * cap + 2) * sizeof *heap);
    tbuf t = {0};
    if (!sy || !heap) {
        E->oom = 1;
        goto done;
    }
    int32_t ns = 0, unk = -1;
    size_t k;
    for (size_t i = 0; i < n; i += k) {
        cp_at(s + i, n - i, &k);
        t.n = 0;
        if (i > 0) tb_put(&t, tok->prefix, tok->n_prefix);
        tb_put(&t, s + i, k);
        if (i + k == n) tb_put(&t, tok->suffix, tok->n_suffix);
        if (t.oom) {
            E->oom = 1;
            goto done;
        }
        int32_t id = tok_vocab_get(tok, t.p, t.n);
        if (id >= 0) {
            if (unk >= 0) sy[ns++] = (sym){unk, 0, 0, 1}, unk = -1;
            sy[ns++] = (sym){id, 0, 0, 1};
            continue;
        }
        if (tok->byte_fallback) {
            int all = 1;
            for (size_t j = 0; j < t.n; j++) all &= tok->byte_id[(unsigned char)t.p[j]] >= 0;
            if (all) { /* a pending unknown is not flushed here, as in tokenizers */
                for (size_t j = 0; j < t.n; j++) sy[ns++] = (sym){tok->byte_id[(unsigned char)t.p[j]], 0, 0, 1};
                continue;
            }
        }
        if (tok->unk_id >= 0) {
            if (unk >= 0 && !tok->fuse_unk) sy[ns++] = (sym){unk, 0, 0, 1};
            unk = tok->unk_id;
        }
    }
    if (unk >= 0) sy[ns++] = (sym){unk, 0, 0, 1};
    for (int32_t i = 0; i < ns; i++) sy[i].prev = i - 1, sy[i].next = i + 1 < ns ? i + 1 : -1;
    size_t nh = 0;
    uint32_t rank;
    int32_t nid;
    for (int32_t i = 0; i + 1 < ns; i++)
        if (merge_get(tok, sy[i].id, sy[i + 1].id, &rank, &nid)) heap_push(heap, &nh, (cand){rank, i, nid});
    while (nh) {
        cand c = heap_pop(heap, &nh);
        sym *a = &sy[c.pos];
        if (!a->alive || a->next < 0) continue;
        sym *b = &sy[a->next];
        if (!merge_get(tok, a->id, b->id, &rank, &nid) || nid != c.new_id) continue; /* stale */
        a->id = nid;
        b->alive = 0;
        a->next = b->next;
        if (b->next >= 0) sy[b->next].prev = c.pos;
        if (a->prev >= 0 && merge_get(tok, sy[a->prev].id, a->id, &rank, &nid))
            heap_push(heap, &nh, (cand){rank, a->prev, nid});
        if (a->next >= 0 && merge_get(tok, a->id, sy[a->next].id, &rank, &nid))
            heap_push(heap, &nh, (cand){rank, c.pos, nid});
    }
    for (int32_t i = 0; i < ns; i++)
        if (sy[i].alive) push_id(E, sy[i].id);
done:
    free(sy);
    free(heap);
    tb_free(&t);
}

static void wordpiece(enc *E, const char *s, size_t n)
{
    const heed_tokenizer *tok = E->tok;
    size_t n_chars = 0, mark = E->n_ids;
    for (size_t i = 0; i < n; i++) n_chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if ((int64_t)n_chars > tok->max_chars) {
        push_id(E, tok->unk_id);
        return;
    }
    tbuf t = {0};
    for (size_t start = 0; start < n;) {
        size_t end = n;
        int32_t cur = -1;
        while (start < end) {
            t.n = 0;
            if (start > 0) tb_put(&t, tok->prefix, tok->n_prefix);
            tb_put(&t, s + start, end - start);
            if (t.oom) break;
            if ((cur = tok_vocab_get(tok, t.p, t.n)) >= 0) break;
            end--;
            while (end > start && ((unsigned char)s[end] & 0xC0) == 0x80) end--;
        }
        if (t.oom) {
            E->oom = 1;
            break;
        }
        if (cur < 0) { /* the whole word is unknown */
            E->n_ids = mark;
            push_id(E, tok->unk_id);
            break;
        }
        push_id(E, cur);
        start = end;
    }
    tb_free(&t);
}

/* --- truncation, post-processing, padding, and the entry point --------------------------------- */
/* How many ids the post-processor adds to a single sequence. */
static int64_t n_added_by(const tnode *nd)
{
    int64_t n = 0;
    if (nd->type == SEQ)
        for (int i = 0; i < nd->n_kids; i++) n += n_added_by(&nd->kids[i]);
    if (nd->type == Q_BERT) n = 2;
    for (int i = 0; nd->type == Q_TEMPLATE && i < nd->n_ids; i++) n += nd->ids[i] >= 0;
    return n;
}

/* tokenizers' truncate_encodings for one sequence; returns 0 where tokenizers raises an error. */
static int truncate_ids(enc *E, int add_special)
{
    const heed_tokenizer *tok = E->tok;
    int64_t max = tok->trunc_max, n = (int64_t)E->n_ids, added = add_special && tok->post ? n_added_by(tok->post) : 0;
    if (added > 0) {
        if (added > max) return 1; /* max_length - added wraps around in tokenizers: no truncation */
        max -= added;
    }
    if (tok->trunc_only_second && max > 0 && n > max) return 0; /* OnlySecond with no second sequence */
    if (n <= max) return 1;
    if (max > 0 && tok->trunc_stride >= max) return 0; /* tokenizers asserts stride < max_len */
    if (tok->trunc_left) memmove(E->ids, E->ids + (n - max), (size_t)max * sizeof *E->ids);
    E->n_ids = (size_t)max;
    return 1;
}

static void pad_ids(enc *E)
{
    const heed_tokenizer *tok = E->tok;
    int64_t len = tok->pad_len ? tok->pad_len : (int64_t)E->n_ids, n = (int64_t)E->n_ids;
    if (tok->pad_multiple > 0 && len % tok->pad_multiple) len += tok->pad_multiple - len % tok->pad_multiple;
    if (n >= len) return;
    for (int64_t i = n; i < len; i++) push_id(E, tok->pad_id);
    if (tok->pad_left && !E->oom) {
        memmove(E->ids + (len - n), E->ids, (size_t)n * sizeof *E->ids);
        for (int64_t i = 0; i < len - n; i++) E->ids[i] = tok->pad_id;
    }
}

/* Wraps ids [from, n_ids) in the post-processor's template for a single sequence. */
static void post_process(enc *E, const tnode *nd, size_t from)
{
    if (nd->type == SEQ) {
        for (int i = 0; i < nd->n_kids; i++) post_process(E, &nd->kids[i], from);
        return;
    }
    if (nd->type != Q_TEMPLATE && nd->type != Q_BERT) return;
    size_t n = E->n_ids - from;
    int32_t *seq = malloc((n ? n : 1) * sizeof *seq);
    if (!seq) {
        E->oom = 1;
        return;
    }
    if (n) memcpy(seq, E->ids + from, n * sizeof *seq);
    E->n_ids = from;
    if (nd->type == Q_BERT) {
        push_id(E, nd->i1);
        for (size_t i = 0; i < n; i++) push_id(E, seq[i]);
        push_id(E, nd->i2);
    } else
        for (int j = 0; j < nd->n_ids; j++) {
            if (nd->ids[j] >= 0) push_id(E, nd->ids[j]);
            else
                for (size_t i = 0; i < n; i++) push_id(E, seq[i]);
        }
    free(seq);
}

heed_status heed_tokenize(heed_ctx *ctx, int32_t **ids, int64_t *n_ids, const heed_tokenizer *tok, const char *text,
                          size_t len, unsigned flags)
{
    int add_special = (flags & HEED_TOK_SPECIAL) != 0;
    if (!ids || !n_ids || !tok || (!text && len))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenize: ids, n_ids and tok must not be NULL (text only when len is 0)");
    *ids = NULL, *n_ids = 0;
    size_t valid = utf8_valid(text ? text : "", len);
    if (valid != len)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokenize: text is not valid UTF-8 at byte %zu", valid);
    enc E = {ctx, tok, {0}, {0}, {0}, NULL, 0, 0, 0};
    tb_put(&E.arena, text, len);
    push_piece(&E, &E.a, 0, len, -1, 1);
    split_added(&E, 0);
    if (tok->normalizer) normalize_pieces(&E);
    split_added(&E, 1);
    if (tok->pre && !E.oom) pre_tokenize(&E, tok->pre);
    for (size_t i = 0; i < E.a.n && !E.oom && !E.arena.oom; i++) {
        piece pc = E.a.p[i];
        if (pc.id >= 0) push_id(&E, pc.id);
        else if (tok->model == MODEL_BPE) bpe(&E, E.arena.p + pc.off, pc.len);
        else wordpiece(&E, E.arena.p + pc.off, pc.len);
    }
    if (tok->truncate && !(flags & HEED_TOK_NO_TRUNCATE) && !E.oom && !truncate_ids(&E, add_special)) {
        tb_free(&E.arena);
        free(E.a.p);
        free(E.b.p);
        free(E.ids);
        return heed_fail(ctx, HEED_ERR_INVALID,
                         "heed_tokenize: tokenizer.json's truncation (%s, max_length %lld, stride %lld) cannot apply "
                         "to one sequence of this length, as in tokenizers",
                         tok->trunc_only_second ? "OnlySecond" : "LongestFirst", (long long)tok->trunc_max,
                         (long long)tok->trunc_stride);
    }
    if (add_special && tok->post && !E.oom) post_process(&E, tok->post, 0);
    if (tok->pad && !(flags & HEED_TOK_NO_PAD) && !E.oom) pad_ids(&E);
    if (!E.oom && !E.arena.oom && !E.ids) E.ids = malloc(sizeof *E.ids); /* a valid pointer for no ids */
    int oom = E.oom || E.arena.oom || !E.ids, rx = E.arena.rx;
    tb_free(&E.arena);
    free(E.a.p);
    free(E.b.p);
    if (oom || rx) {
        free(E.ids);
        if (oom) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_tokenize: out of memory for %zu bytes of text", len);
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rx, msg, sizeof msg);
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "heed_tokenize: a regex of the tokenizer failed on this text: %s",
                         (char *)msg);
    }
    *ids = E.ids;
    *n_ids = (int64_t)E.n_ids;
    return HEED_OK;
}
