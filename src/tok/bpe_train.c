/* bpe_train.c — trains a byte-level BPE tokenizer (GPT-2 / Llama 3 style) on UTF-8 text and writes it as
 * a Hugging Face tokenizer.json, with the tokenizer_config.json that goes with it. Words are counted once;
 * merges then update the pair counts of only the words that hold the merged pair (a lazy max-heap). */
#include "tok/tok.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Llama 3's pre-tokenizer pattern, compiled as load.c compiles a Split pattern (UTF + UCP), so training
 * sees the pieces that encoding will see. */
static const char split_re[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                               " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(int32_t a, int32_t b)
{
    uint64_t h = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
}

/* Grows *p (elements of size sz) so that it holds at least need; returns 0 when out of memory. */
static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q) return 0;
    *p = q, *cap = c;
    return 1;
}

/* --- strings -> index: the distinct words of the corpus and the distinct tokens -------------------- */
typedef struct {
    tbuf bytes;    /* the strings, back to back */
    size_t *off;   /* [n] */
    uint32_t *len; /* [n] */
    int64_t *val;  /* [n] a count (words) or an id (tokens) */
    size_t n, cap;
    uint32_t *slot; /* [n_slot] index + 1, 0 empty */
    size_t n_slot;
} strmap;

static void strmap_free(strmap *m)
{
    tb_free(&m->bytes);
    free(m->off), free(m->len), free(m->val), free(m->slot);
}

/* The index of s [n] in m, added with value v when absent (*added = 1); -1 when out of memory. */
static int64_t strmap_get(strmap *m, const char *s, size_t n, int64_t v, int *added)
{
    *added = 0;
    if (2 * (m->n + 1) > m->n_slot) {
        size_t ns = m->n_slot ? 2 * m->n_slot : 1024;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl) return -1;
        for (size_t i = 0; i < m->n; i++) {
            size_t h = hash_bytes(m->bytes.p + m->off[i], m->len[i]) & (ns - 1);
            while (sl[h]) h = (h + 1) & (ns - 1);
            sl[h] = (uint32_t)i + 1;
        }
        free(m->slot);
        m->slot = sl, m->n_slot = ns;
    }
    size_t h = hash_bytes(s, n) & (m->n_slot - 1);
    for (; m->slot[h]; h = (h + 1) & (m->n_slot - 1)) {
        size_t i = m->slot[h] - 1;
        if (m->len[i] == n && !memcmp(m->bytes.p + m->off[i], s, n)) return (int64_t)i;
    }
    size_t c = m->cap;
    if (!grow((void **)&m->off, &c, m->n + 1, sizeof *m->off)) return -1;
    c = m->cap;
    if (!grow((void **)&m->len, &c, m->n + 1, sizeof *m->len)) return -1;
    c = m->cap;
    if (!grow((void **)&m->val, &c, m->n + 1, sizeof *m->val)) return -1;
    m->cap = c;
    m->off[m->n] = m->bytes.n, m->len[m->n] = (uint32_t)n, m->val[m->n] = v;
    tb_put(&m->bytes, s, n);
    if (m->bytes.oom) return -1;
    m->slot[h] = (uint32_t)m->n + 1;
    *added = 1;
    return (int64_t)m->n++;
}

/* --- pairs of adjacent symbols ------------------------------------------------------------------- */
typedef struct {
    int32_t a, b;
    int64_t count;   /* occurrences, weighted by word frequency */
    int32_t *w;      /* [nw] the words that held the pair when it appeared (some may no longer) */
    size_t nw, cw;
    uint32_t stamp;  /* the merge step that last queued it */
    int blocked;     /* its merge would spell a special token */
} pair;

typedef struct {
    int64_t count;
    int32_t pi;
} hentry;

typedef struct {
    heed_ctx *ctx;
    const heed_bpe_train_opts *o;
    int64_t min_freq;
    int oom;
    /* words: symbols back to back, each word shrinking in place as merges apply */
    int32_t *sym;
    size_t *w_off;
    int32_t *w_n;
    int64_t *w_freq;
    uint32_t *w_stamp;
    size_t n_words;
    /* pairs */
    pair *p;
    size_t np, cp;
    int32_t *pslot; /* [n_pslot] pair index + 1, 0 empty */
    size_t n_pslot;
    hentry *heap;
    size_t nh, ch;
    int32_t *touched; /* pairs created or grown by the current merge */
    size_t nt, ct;
    uint32_t stamp;
    /* tokens (raw bytes) and merges */
    strmap tok;
    int32_t *merge; /* [2 * n_merges] left, right ids */
    size_t n_merges, c_merges;
} trainer;

/* The index of pair (a, b), created with count 0 when create and absent; -1 when absent or out of memory. */
static int32_t pair_find(trainer *T, int32_t a, int32_t b, int create)
{
    if (create && 2 * (T->np + 1) > T->n_pslot) {
        size_t ns = T->n_pslot ? 2 * T->n_pslot : 4096;
        int32_t *sl = calloc(ns, sizeof *sl);
        if (!sl) return T->oom = 1, -1;
        for (size_t i = 0; i < T->np; i++) {
            size_t h = hash_pair(T->p[i].a, T->p[i].b) & (ns - 1);
            while (sl[h]) h = (h + 1) & (ns - 1);
            sl[h] = (int32_t)i + 1;
        }
        free(T->pslot);
        T->pslot = sl, T->n_pslot = ns;
    }
    if (!T->n_pslot) return -1;
    size_t h = hash_pair(a, b) & (T->n_pslot - 1);
    for (; T->pslot[h]; h = (h + 1) & (T->n_pslot - 1)) {
        pair *q = &T->p[T->pslot[h] - 1];
        if (q->a == a && q->b == b) return T->pslot[h] - 1;
    }
    if (!create) return -1;
    if (!grow((void **)&T->p, &T->cp, T->np + 1, sizeof *T->p)) return T->oom = 1, -1;
    T->p[T->np] = (pair){.a = a, .b = b};
    T->pslot[h] = (int32_t)T->np + 1;
    return (int32_t)T->np++;
}

/* Adds word wi to the list of pair pi unless it was the last one added. */
static void pair_add_word(trainer *T, int32_t pi, int32_t wi)
{
    pair *q = &T->p[pi];
    if (q->nw && q->w[q->nw - 1] == wi) return;
    if (!grow((void **)&q->w, &q->cw, q->nw + 1, sizeof *q->w)) {
        T->oom = 1;
        return;
    }
    q->w[q->nw++] = wi;
}

/* Heap order: the larger count first; ties: the smaller left id, then the smaller right id. */
static int heap_before(const trainer *T, hentry x, hentry y)
{
    if (x.count != y.count) return x.count > y.count;
    const pair *p = &T->p[x.pi], *q = &T->p[y.pi];
    return p->a != q->a ? p->a < q->a : p->b < q->b;
}

static void heap_push(trainer *T, int64_t count, int32_t pi)
{
    if (!grow((void **)&T->heap, &T->ch, T->nh + 1, sizeof *T->heap)) {
        T->oom = 1;
        return;
    }
    hentry e = {count, pi};
    size_t i = T->nh++;
    while (i > 0 && heap_before(T, e, T->heap[(i - 1) / 2])) {
        T->heap[i] = T->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    T->heap[i] = e;
}

static int heap_pop(trainer *T, hentry *out)
{
    if (!T->nh) return 0;
    *out = T->heap[0];
    hentry e = T->heap[--T->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= T->nh) break;
        if (c + 1 < T->nh && heap_before(T, T->heap[c + 1], T->heap[c])) c++;
        if (!heap_before(T, T->heap[c], e)) break;
        T->heap[i] = T->heap[c];
        i = c;
    }
    if (T->nh) T->heap[i] = e;
    return 1;
}

/* Adds delta to the count of every adjacent pair of word wi; when listing, also records wi in the lists
 * of the pairs that hold new_id (-1: every pair) and queues those pairs. */
static void count_word(trainer *T, int32_t wi, int64_t delta, int listing, int32_t new_id)
{
    const int32_t *s = T->sym + T->w_off[wi];
    for (int32_t i = 0; i + 1 < T->w_n[wi] && !T->oom; i++) {
        int32_t pi = pair_find(T, s[i], s[i + 1], listing);
        if (pi < 0) { /* out of memory creating it (a pair being uncounted was counted before: it exists) */
            T->oom = 1;
            return;
        }
        T->p[pi].count += delta;
        if (!listing || (new_id >= 0 && s[i] != new_id && s[i + 1] != new_id)) continue;
        pair_add_word(T, pi, wi);
        if (new_id >= 0 && T->p[pi].stamp != T->stamp) {
            T->p[pi].stamp = T->stamp;
            if (!grow((void **)&T->touched, &T->ct, T->nt + 1, sizeof *T->touched)) T->oom = 1;
            else T->touched[T->nt++] = pi;
        }
    }
}

/* Replaces every (left to right, non-overlapping) occurrence of pair pi by id c in the words that hold
 * it, updating the pair counts and lists. */
static void apply_merge(trainer *T, int32_t pi, int32_t c)
{
    int32_t a = T->p[pi].a, b = T->p[pi].b;
    T->stamp++;
    T->nt = 0;
    for (size_t k = 0; k < T->p[pi].nw && !T->oom; k++) {
        int32_t wi = T->p[pi].w[k];
        if (T->w_stamp[wi] == T->stamp) continue;
        T->w_stamp[wi] = T->stamp;
        int32_t *s = T->sym + T->w_off[wi], n = T->w_n[wi], j = 0, i = 0;
        while (i + 1 < n && !(s[i] == a && s[i + 1] == b)) i++;
        if (i + 1 >= n) continue;
        count_word(T, wi, -T->w_freq[wi], 0, c);
        for (i = 0; i < n;)
            if (i + 1 < n && s[i] == a && s[i + 1] == b) s[j++] = c, i += 2;
            else s[j++] = s[i++];
        T->w_n[wi] = j;
        count_word(T, wi, T->w_freq[wi], 1, c);
    }
    for (size_t k = 0; k < T->nt && !T->oom; k++)
        if (T->p[T->touched[k]].count >= T->min_freq) heap_push(T, T->p[T->touched[k]].count, T->touched[k]);
}

/* --- options and the corpus -------------------------------------------------------------------- */
static int special_index(const heed_bpe_train_opts *o, const char *s)
{
    for (int i = 0; i < o->n_special; i++)
        if (!strcmp(o->special[i], s)) return i;
    return -1;
}

static heed_status check_opts(heed_ctx *ctx, const heed_bpe_train_opts *o)
{
    const char *f = "heed_bpe_train";
    if (!o) return heed_fail(ctx, HEED_ERR_INVALID, "%s: options are NULL", f);
    if (o->n_special < 0 || (o->n_special > 0 && !o->special))
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: n_special is %d with special %s", f, o->n_special,
                         o->special ? "set" : "NULL");
    if (o->vocab_size < (int64_t)o->n_special + 256 || o->vocab_size > INT32_MAX)
        return heed_fail(ctx, HEED_ERR_INVALID,
                         "%s: vocab_size is %lld; it must be at least %d (%d special tokens + 256 bytes) and below 2^31",
                         f, (long long)o->vocab_size, o->n_special + 256, o->n_special);
    if (o->min_frequency < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: min_frequency is %lld; it must be at least 1", f,
                         (long long)o->min_frequency);
    for (int i = 0; i < o->n_special; i++) {
        const char *s = o->special[i];
        size_t n = s ? strlen(s) : 0;
        if (!n) return heed_fail(ctx, HEED_ERR_INVALID, "%s: special token %d is empty", f, i);
        if (utf8_valid(s, n) != n)
            return heed_fail(ctx, HEED_ERR_INVALID, "%s: special token %d is not valid UTF-8", f, i);
        if (special_index(o, s) != i)
            return heed_fail(ctx, HEED_ERR_INVALID, "%s: special token \"%s\" is given twice", f, s);
        uint32_t c;
        if (utf8_dec(&c, s, n) == (int)n && c < 0x400)
            for (unsigned b = 0; b < 256; b++)
                if (byte_char(b) == c)
                    return heed_fail(ctx, HEED_ERR_INVALID,
                                     "%s: special token \"%s\" is the byte-level symbol of byte %u", f, s, b);
    }
    if (o->bos && special_index(o, o->bos) < 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: bos \"%s\" is not one of the special tokens", f, o->bos);
    if (o->eos && special_index(o, o->eos) < 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: eos \"%s\" is not one of the special tokens", f, o->eos);
    if (o->add_bos && !o->bos) return heed_fail(ctx, HEED_ERR_INVALID, "%s: add_bos is set but bos is NULL", f);
    return HEED_OK;
}

/* The length of the longest special token that starts s [n] (0: none). */
static size_t special_at(const heed_bpe_train_opts *o, const uint8_t *first, const char *s, size_t n)
{
    size_t best = 0;
    if (!first[(unsigned char)s[0]]) return 0;
    for (int i = 0; i < o->n_special; i++) {
        size_t k = strlen(o->special[i]);
        if (k > best && k <= n && !memcmp(s, o->special[i], k)) best = k;
    }
    return best;
}

/* Counts the pre-tokenized words of text [len] into words (value: frequency). */
static heed_status count_words(trainer *T, strmap *words, const char *text, size_t len)
{
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)split_re, sizeof split_re - 1, PCRE2_UTF | PCRE2_UCP, &err, &eoff, NULL);
    if (!re) return heed_fail(T->ctx, HEED_ERR_INTERNAL, "heed_bpe_train: the pre-tokenizer pattern does not compile");
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* where JIT is unavailable the interpreter runs */
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    uint8_t first[256] = {0};
    for (int i = 0; i < T->o->n_special; i++) first[(unsigned char)T->o->special[i][0]] = 1;
    heed_status st = md ? HEED_OK : HEED_ERR_NOMEM;
    /* one piece between special tokens at a time; within it every match and every gap is a word */
    for (size_t start = 0; start < len && st == HEED_OK;) {
        size_t end = start, sp = 0;
        while (end < len && !(sp = special_at(T->o, first, text + end, len - end))) end++;
        size_t pos = start, prev = start;
        while (pos < end && st == HEED_OK) {
            int rc = pcre2_match(re, (PCRE2_SPTR)text, end, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            size_t ms = end, me = end;
            if (rc >= 0) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                ms = ov[0], me = ov[1];
            } else if (rc != PCRE2_ERROR_NOMATCH) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(rc, msg, sizeof msg);
                st = heed_fail(T->ctx, HEED_ERR_UNSUPPORTED, "heed_bpe_train: the pre-tokenizer regex failed at byte %zu: %s",
                               pos, (char *)msg);
                break;
            }
            for (int piece = 0; piece < 2; piece++) { /* the gap before the match, then the match */
                size_t a = piece ? ms : prev, b = piece ? me : ms;
                if (a == b) continue;
                int added;
                int64_t wi = strmap_get(words, text + a, b - a, 0, &added);
                if (wi < 0) st = HEED_ERR_NOMEM;
                else words->val[wi]++;
            }
            prev = me;
            if (me > pos) pos = me;
            else { /* an empty match: step over one character */
                uint32_t c;
                int k = utf8_dec(&c, text + pos, end - pos);
                pos += k > 0 ? (size_t)k : 1;
            }
        }
        start = end + sp;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return st == HEED_ERR_NOMEM ? heed_fail(T->ctx, st, "heed_bpe_train: out of memory counting words") : st;
}

/* Sets up the words (one symbol per byte), the first ids (specials, bytes) and the pair counts. */
static heed_status init_words(trainer *T, const strmap *words)
{
    const heed_bpe_train_opts *o = T->o;
    int added;
    for (int i = 0; i < o->n_special; i++)
        if (strmap_get(&T->tok, o->special[i], strlen(o->special[i]), i, &added) < 0) T->oom = 1;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (strmap_get(&T->tok, &c, 1, o->n_special + b, &added) < 0) T->oom = 1;
    }
    T->n_words = words->n;
    T->sym = malloc((words->bytes.n + 1) * sizeof *T->sym);
    T->w_off = malloc((words->n + 1) * sizeof *T->w_off);
    T->w_n = malloc((words->n + 1) * sizeof *T->w_n);
    T->w_freq = malloc((words->n + 1) * sizeof *T->w_freq);
    T->w_stamp = calloc(words->n + 1, sizeof *T->w_stamp);
    if (T->oom || !T->sym || !T->w_off || !T->w_n || !T->w_freq || !T->w_stamp)
        return heed_fail(T->ctx, HEED_ERR_NOMEM, "heed_bpe_train: out of memory");
    for (size_t w = 0; w < words->n; w++) {
        T->w_off[w] = words->off[w], T->w_n[w] = (int32_t)words->len[w], T->w_freq[w] = words->val[w];
        for (uint32_t i = 0; i < words->len[w]; i++)
            T->sym[words->off[w] + i] = o->n_special + (unsigned char)words->bytes.p[words->off[w] + i];
        count_word(T, (int32_t)w, T->w_freq[w], 1, -1);
    }
    for (size_t i = 0; i < T->np && !T->oom; i++)
        if (T->p[i].count >= T->min_freq) heap_push(T, T->p[i].count, (int32_t)i);
    return T->oom ? heed_fail(T->ctx, HEED_ERR_NOMEM, "heed_bpe_train: out of memory counting pairs") : HEED_OK;
}

/* Appends the byte-level form of s [n] (each byte as its ByteLevel character). */
static void byte_level(tbuf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) tb_putc(out, byte_char((unsigned char)s[i]));
}

/* 1 when the byte-level form of s [n] equals a special token's content. */
static int spells_special(const heed_bpe_train_opts *o, tbuf *scratch, const char *s, size_t n)
{
    scratch->n = 0;
    byte_level(scratch, s, n);
    for (int i = 0; i < o->n_special; i++)
        if (strlen(o->special[i]) == scratch->n && !memcmp(o->special[i], scratch->p, scratch->n)) return 1;
    return 0;
}

/* Merges the best pair until vocab_size ids exist or no pair is frequent enough. */
static heed_status train(trainer *T)
{
    tbuf cat = {0}, scratch = {0};
    hentry e;
    while ((int64_t)T->tok.n < T->o->vocab_size && !T->oom && heap_pop(T, &e)) {
        pair *q = &T->p[e.pi];
        if (q->blocked) continue;
        if (e.count != q->count) { /* stale: a smaller current count goes back in; a larger one is queued */
            if (q->count < e.count && q->count >= T->min_freq) heap_push(T, q->count, e.pi);
            continue;
        }
        if (e.count < T->min_freq) break;
        cat.n = 0;
        tb_put(&cat, T->tok.bytes.p + T->tok.off[q->a], T->tok.len[q->a]);
        tb_put(&cat, T->tok.bytes.p + T->tok.off[q->b], T->tok.len[q->b]);
        if (cat.oom) break;
        if (spells_special(T->o, &scratch, cat.p, cat.n)) {
            q->blocked = 1;
            continue;
        }
        int added;
        int64_t t = strmap_get(&T->tok, cat.p, cat.n, (int64_t)T->tok.n, &added);
        if (t < 0 || !grow((void **)&T->merge, &T->c_merges, 2 * T->n_merges + 2, sizeof *T->merge)) {
            T->oom = 1;
            break;
        }
        T->merge[2 * T->n_merges] = q->a, T->merge[2 * T->n_merges + 1] = q->b;
        T->n_merges++;
        apply_merge(T, e.pi, (int32_t)T->tok.val[t]);
    }
    int oom = T->oom || scratch.oom;
    tb_free(&cat);
    tb_free(&scratch);
    return oom ? heed_fail(T->ctx, HEED_ERR_NOMEM, "heed_bpe_train: out of memory while merging") : HEED_OK;
}

/* --- tokenizer.json ------------------------------------------------------------------------------- */
static cJSON *bytelevel_node(int use_regex)
{
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "type", "ByteLevel");
    cJSON_AddBoolToObject(n, "add_prefix_space", 0);
    cJSON_AddBoolToObject(n, "trim_offsets", 1);
    cJSON_AddBoolToObject(n, "use_regex", use_regex);
    return n;
}

/* {"SpecialToken": {"id": bos, "type_id": 0}} or {"Sequence": {"id": "A"|"B", "type_id": t}} */
static cJSON *template_item(const char *kind, const char *id, int type_id)
{
    cJSON *o = cJSON_CreateObject(), *in = cJSON_AddObjectToObject(o, kind);
    cJSON_AddStringToObject(in, "id", id);
    cJSON_AddNumberToObject(in, "type_id", type_id);
    return o;
}

static cJSON *post_processor(const heed_bpe_train_opts *o)
{
    if (!o->add_bos) return cJSON_CreateNull();
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(p, "single"), *pr = cJSON_AddArrayToObject(p, "pair");
    cJSON_AddItemToArray(single, template_item("SpecialToken", o->bos, 0));
    cJSON_AddItemToArray(single, template_item("Sequence", "A", 0));
    cJSON_AddItemToArray(pr, template_item("SpecialToken", o->bos, 0));
    cJSON_AddItemToArray(pr, template_item("Sequence", "A", 0));
    cJSON_AddItemToArray(pr, template_item("SpecialToken", o->bos, 1));
    cJSON_AddItemToArray(pr, template_item("Sequence", "B", 1));
    cJSON *st = cJSON_AddObjectToObject(cJSON_AddObjectToObject(p, "special_tokens"), o->bos);
    cJSON_AddStringToObject(st, "id", o->bos);
    cJSON_AddItemToObject(st, "ids", cJSON_CreateIntArray((const int[]){special_index(o, o->bos)}, 1));
    cJSON_AddItemToObject(st, "tokens", cJSON_CreateStringArray((const char *const[]){o->bos}, 1));
    return p;
}

/* The byte-level form of token t as a NUL-terminated string in out. */
static const char *token_text(const trainer *T, tbuf *out, int64_t t)
{
    out->n = 0;
    if (t < T->o->n_special) tb_put(out, T->o->special[t], strlen(T->o->special[t]));
    else byte_level(out, T->tok.bytes.p + T->tok.off[t], T->tok.len[t]);
    tb_put(out, "", 1);
    return out->p;
}

static heed_status write_json(trainer *T, char **json, size_t *json_len)
{
    const heed_bpe_train_opts *o = T->o;
    cJSON *r = cJSON_CreateObject();
    tbuf a = {0}, b = {0};
    cJSON_AddStringToObject(r, "version", "1.0");
    cJSON_AddNullToObject(r, "truncation");
    cJSON_AddNullToObject(r, "padding");
    cJSON *added = cJSON_AddArrayToObject(r, "added_tokens");
    for (int i = 0; i < o->n_special; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", i);
        cJSON_AddStringToObject(t, "content", o->special[i]);
        cJSON_AddBoolToObject(t, "single_word", 0);
        cJSON_AddBoolToObject(t, "lstrip", 0);
        cJSON_AddBoolToObject(t, "rstrip", 0);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(added, t);
    }
    cJSON_AddNullToObject(r, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(r, "pre_tokenizer"), *split = cJSON_CreateObject();
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *pres = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", split_re);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(pres, split);
    cJSON_AddItemToArray(pres, bytelevel_node(0));
    cJSON_AddItemToObject(r, "post_processor", post_processor(o));
    cJSON_AddItemToObject(r, "decoder", bytelevel_node(1));
    cJSON *m = cJSON_AddObjectToObject(r, "model");
    cJSON_AddStringToObject(m, "type", "BPE");
    cJSON_AddNullToObject(m, "dropout");
    cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddNullToObject(m, "continuing_subword_prefix");
    cJSON_AddNullToObject(m, "end_of_word_suffix");
    cJSON_AddBoolToObject(m, "fuse_unk", 0);
    cJSON_AddBoolToObject(m, "byte_fallback", 0);
    cJSON_AddBoolToObject(m, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(m, "vocab"), *merges = cJSON_AddArrayToObject(m, "merges");
    for (size_t t = 0; t < T->tok.n; t++) cJSON_AddNumberToObject(vocab, token_text(T, &a, (int64_t)t), (double)t);
    for (size_t k = 0; k < T->n_merges; k++) {
        cJSON *pr = cJSON_CreateArray();
        cJSON_AddItemToArray(pr, cJSON_CreateString(token_text(T, &a, T->merge[2 * k])));
        cJSON_AddItemToArray(pr, cJSON_CreateString(token_text(T, &b, T->merge[2 * k + 1])));
        cJSON_AddItemToArray(merges, pr);
    }
    char *s = a.oom || b.oom ? NULL : cJSON_Print(r);
    cJSON_Delete(r);
    tb_free(&a);
    tb_free(&b);
    if (!s) return heed_fail(T->ctx, HEED_ERR_NOMEM, "heed_bpe_train: out of memory writing tokenizer.json");
    *json = s, *json_len = strlen(s);
    return HEED_OK;
}

void heed_bpe_train_opts_init(heed_bpe_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->vocab_size = 4096;
    o->min_frequency = 2;
}

heed_status heed_bpe_train(heed_ctx *ctx, char **json, size_t *json_len, const char *text, size_t len,
                           const heed_bpe_train_opts *o)
{
    if (!json || !json_len || (!text && len))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_bpe_train: json, json_len or text is NULL");
    *json = NULL, *json_len = 0;
    heed_status st = check_opts(ctx, o);
    if (st) return st;
    size_t ok = len ? utf8_valid(text, len) : 0;
    if (ok != len)
        return heed_fail(ctx, HEED_ERR_FORMAT, "heed_bpe_train: the text is not valid UTF-8 at byte %zu", ok);
    trainer T = {.ctx = ctx, .o = o, .min_freq = o->min_frequency};
    strmap words = {0};
    if (!(st = count_words(&T, &words, text, len)) && !(st = init_words(&T, &words)) && !(st = train(&T)))
        st = write_json(&T, json, json_len);
    strmap_free(&words);
    strmap_free(&T.tok);
    for (size_t i = 0; i < T.np; i++) free(T.p[i].w);
    free(T.p), free(T.pslot), free(T.heap), free(T.touched), free(T.merge);
    free(T.sym), free(T.w_off), free(T.w_n), free(T.w_freq), free(T.w_stamp);
    return st;
}

heed_status heed_bpe_train_config(heed_ctx *ctx, char **json, size_t *json_len, const heed_bpe_train_opts *o)
{
    if (!json || !json_len) return heed_fail(ctx, HEED_ERR_INVALID, "heed_bpe_train_config: json or json_len is NULL");
    *json = NULL, *json_len = 0;
    heed_status st = check_opts(ctx, o);
    if (st) return st;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "add_bos_token", o->add_bos);
    cJSON_AddBoolToObject(r, "add_eos_token", 0);
    if (o->bos) cJSON_AddStringToObject(r, "bos_token", o->bos);
    else cJSON_AddNullToObject(r, "bos_token");
    if (o->eos) cJSON_AddStringToObject(r, "eos_token", o->eos);
    else cJSON_AddNullToObject(r, "eos_token");
    cJSON_AddBoolToObject(r, "clean_up_tokenization_spaces", 0);
    cJSON_AddStringToObject(r, "tokenizer_class", "PreTrainedTokenizerFast");
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    if (!s) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_bpe_train_config: out of memory");
    *json = s, *json_len = strlen(s);
    return HEED_OK;
}
