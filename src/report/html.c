/* html.c — the attention viewer: a report collects tokens, per-head thumbnails, compressed full maps and
 * score tables, and writes them as JSON into the compiled-in page (viewer.html): one self-contained HTML
 * file. Every string from outside is escaped here, so no token can break out of its place in the page. */
#include "core/core.h"
#include "report/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    char *name, *desc; /* desc may be NULL */
    float *values;     /* [NL * NH], NaN: not computed */
} report_score;

struct heed_report {
    char *title;
    char **tokens;            /* [T] */
    int64_t T, NL, NH, S;     /* S: thumbnail side, min(T, HEED_REPORT_THUMB) */
    uint8_t *captured;        /* [NL * NH]: 1 once a map was added */
    uint8_t *thumbs;          /* [NL * NH, S, S] */
    uint8_t **full;           /* [NL * NH]: NULL or a zlib stream of the [T, T] quantised map ... */
    size_t *full_len;         /* [NL * NH] ... of this many bytes */
    report_score *scores;     /* [n_scores] */
    size_t n_scores, cap_scores;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

heed_status heed_report_create(heed_ctx *ctx, heed_report **out, const char *title, const char *const *tokens,
                               int64_t n_tokens, int64_t n_layers, int64_t n_heads)
{
    if (!out) return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_create: out is NULL");
    *out = NULL;
    if (n_tokens < 1 || n_layers < 1 || n_heads < 1 || !tokens)
        return heed_fail(ctx, HEED_ERR_INVALID,
                         "heed_report_create: %lld tokens (tokens %s), %lld layers, %lld heads: expected >= 1 each",
                         (long long)n_tokens, tokens ? "given" : "NULL", (long long)n_layers, (long long)n_heads);
    /* the page addresses a map with JavaScript numbers and a typed array: keep T * T well inside both */
    if (n_tokens > 32768 || n_layers * n_heads > 65536)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_create: %lld tokens, %lld heads: at most 32768 tokens "
                         "and 65536 heads", (long long)n_tokens, (long long)(n_layers * n_heads));
    for (int64_t i = 0; i < n_tokens; i++)
        if (!tokens[i]) return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_create: token %lld is NULL", (long long)i);
    heed_report *r = calloc(1, sizeof *r);
    if (!r) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_report_create: out of memory");
    size_t nh = (size_t)(n_layers * n_heads);
    r->T = n_tokens;
    r->NL = n_layers;
    r->NH = n_heads;
    r->S = n_tokens < HEED_REPORT_THUMB ? n_tokens : HEED_REPORT_THUMB;
    r->title = dup_str(title ? title : "heed inspect");
    r->tokens = calloc((size_t)n_tokens, sizeof *r->tokens);
    r->captured = calloc(nh, 1);
    r->thumbs = calloc(nh, (size_t)(r->S * r->S));
    r->full = calloc(nh, sizeof *r->full);
    r->full_len = calloc(nh, sizeof *r->full_len);
    int ok = r->title && r->tokens && r->captured && r->thumbs && r->full && r->full_len;
    for (int64_t i = 0; ok && i < n_tokens; i++) ok = (r->tokens[i] = dup_str(tokens[i])) != NULL;
    if (!ok) {
        heed_report_free(r);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_report_create: out of memory");
    }
    *out = r;
    return HEED_OK;
}

void heed_report_free(heed_report *r)
{
    if (!r) return;
    for (int64_t i = 0; r->tokens && i < r->T; i++) free(r->tokens[i]);
    for (int64_t k = 0; r->full && k < r->NL * r->NH; k++) free(r->full[k]);
    for (size_t k = 0; k < r->n_scores; k++) {
        free(r->scores[k].name);
        free(r->scores[k].desc);
        free(r->scores[k].values);
    }
    free(r->scores);
    free(r->title);
    free(r->tokens);
    free(r->captured);
    free(r->thumbs);
    free(r->full);
    free(r->full_len);
    free(r);
}

/* The page's 8-bit encoding of a weight w in [0, 1]: q = round(255 sqrt(w)), so weights down to ~4e-6 stay
 * visible; the page decodes (q / 255)^2. */
static uint8_t quantise(float w) { return (uint8_t)lrintf(255.0f * sqrtf(w < 1.0f ? w : 1.0f)); }

heed_status heed_report_add_map(heed_ctx *ctx, heed_report *r, const float *attn, int64_t layer, int64_t head,
                                int keep_full)
{
    if (!r || !attn) return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_add_map: NULL report or map");
    if (layer < 0 || layer >= r->NL || head < 0 || head >= r->NH)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_add_map: layer %lld head %lld outside %lld x %lld",
                         (long long)layer, (long long)head, (long long)r->NL, (long long)r->NH);
    const int64_t T = r->T, S = r->S, k = layer * r->NH + head;
    float *blk = calloc((size_t)(S * S), sizeof *blk);
    int64_t *col = malloc(sizeof *col * (size_t)T);
    uint8_t *q = keep_full ? malloc((size_t)(T * T)) : NULL;
    uLong zcap = keep_full ? compressBound((uLong)(T * T)) : 0;
    uint8_t *z = keep_full ? malloc(zcap) : NULL;
    heed_status s = HEED_OK;
    if (!blk || !col || (keep_full && (!q || !z))) {
        s = heed_fail(ctx, HEED_ERR_NOMEM, "heed_report_add_map: out of memory (T = %lld)", (long long)T);
        goto done;
    }
    for (int64_t j = 0; j < T; j++) col[j] = j * S / T;
    for (int64_t i = 0; i < T; i++) {
        const float *row = attn + i * T;
        float *b = blk + (i * S / T) * S;
        for (int64_t j = 0; j < T; j++) {
            float w = row[j];
            /* probabilities may exceed 1 by rounding, never by more */
            if (!(w >= 0.0f && w <= 1.0f + 1e-4f)) {
                s = heed_fail(ctx, HEED_ERR_INVALID, "heed_report_add_map: layer %lld head %lld: weight %g of query "
                              "%lld on key %lld is not in [0, 1]", (long long)layer, (long long)head, (double)w,
                              (long long)i, (long long)j);
                goto done;
            }
            if (w > b[col[j]]) b[col[j]] = w;
            if (q) q[i * T + j] = quantise(w);
        }
    }
    if (z) {
        uLongf zlen = zcap;
        if (compress2(z, &zlen, q, (uLong)(T * T), Z_DEFAULT_COMPRESSION) != Z_OK) {
            s = heed_fail(ctx, HEED_ERR_NOMEM, "heed_report_add_map: zlib could not compress the map");
            goto done;
        }
        uint8_t *fit = realloc(z, zlen); /* shrinking: keeps the block on failure */
        if (fit) z = fit;
        free(r->full[k]);
        r->full[k] = z;
        r->full_len[k] = zlen;
        z = NULL;
    } else {
        free(r->full[k]);
        r->full[k] = NULL;
        r->full_len[k] = 0;
    }
    float m = 0.0f;
    for (int64_t p = 0; p < S * S; p++) m = blk[p] > m ? blk[p] : m;
    for (int64_t p = 0; p < S * S; p++) r->thumbs[k * S * S + p] = m > 0.0f ? quantise(blk[p] / m) : 0;
    r->captured[k] = 1;
done:
    free(blk);
    free(col);
    free(q);
    free(z);
    return s;
}

heed_status heed_report_add_score(heed_ctx *ctx, heed_report *r, const float *values, const char *name,
                                  const char *desc)
{
    if (!r || !values || !name || !*name)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_add_score: NULL report or values, or no name");
    for (size_t k = 0; k < r->n_scores; k++)
        if (!strcmp(r->scores[k].name, name))
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_add_score: a score named '%s' is already there", name);
    const int64_t n = r->NL * r->NH;
    for (int64_t k = 0; k < n; k++)
        if (isinf(values[k]))
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_add_score: %s: layer %lld head %lld is infinite", name,
                             (long long)(k / r->NH), (long long)(k % r->NH));
    report_score sc = {dup_str(name), desc ? dup_str(desc) : NULL, malloc(sizeof(float) * (size_t)n)};
    report_score *grown = heed_grow(r->scores, &r->cap_scores, r->n_scores, sizeof *r->scores, 4);
    if (!sc.name || (desc && !sc.desc) || !sc.values || !grown) {
        free(sc.name);
        free(sc.desc);
        free(sc.values);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_report_add_score: out of memory");
    }
    memcpy(sc.values, values, sizeof(float) * (size_t)n);
    r->scores = grown;
    r->scores[r->n_scores++] = sc;
    return HEED_OK;
}

/* ---- output: a growing text buffer and the escapes ------------------------------------------------ */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 1 << 16;
        while (c < b->n + n + 1) c *= 2;
        char *p = realloc(b->p, c);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void put_s(buf *b, const char *s) { put(b, s, strlen(s)); }

static void __attribute__((format(printf, 2, 3))) put_f(buf *b, const char *fmt, ...)
{
    char t[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    put(b, t, n < (int)sizeof t ? (size_t)n : sizeof t - 1);
}

/* The code point at s [n] (n >= 1) and its length in bytes; an invalid, overlong or truncated sequence, a
 * surrogate or a value past U+10FFFF is U+FFFD of length 1. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    const unsigned c = s[0];
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    *cp = c;
    if (len == 1) return 1;
    uint32_t v = c & (0x7fu >> len);
    for (size_t k = 1; len && k < len; k++) {
        if (k >= n || (s[k] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = v << 6 | (s[k] & 0x3fu);
    }
    if (!len || v < least[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        *cp = 0xfffd;
        return 1;
    }
    *cp = v;
    return len;
}

/* A JSON string that is also safe inside a <script> element: < > & and the line separators are \u escapes,
 * so no "</script>" or "<!--" can appear; invalid UTF-8 becomes \ufffd. */
static void put_json_str(buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    const size_t n = strlen(s);
    put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(u + i, n - i, &cp);
        if (cp == '"' || cp == '\\') put(b, (const char[]){'\\', (char)cp}, 2);
        else if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&' || cp == 0x2028 || cp == 0x2029 || cp == 0xfffd)
            put_f(b, "\\u%04x", (unsigned)cp);
        else put(b, u + i, len);
        i += len;
    }
    put(b, "\"", 1);
}

/* Text for an HTML element's content or an attribute value; invalid UTF-8 becomes U+FFFD. */
static void put_html(buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    const size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(u + i, n - i, &cp);
        if (cp == '&') put_s(b, "&amp;");
        else if (cp == '<') put_s(b, "&lt;");
        else if (cp == '>') put_s(b, "&gt;");
        else if (cp == '"') put_s(b, "&quot;");
        else if (cp == '\'') put_s(b, "&#39;");
        else if (cp == 0xfffd && len == 1) put_s(b, "\xef\xbf\xbd");
        else put(b, u + i, len);
        i += len;
    }
}

static void put_base64(buf *b, const uint8_t *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        out[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[3] = i + 2 < n ? tab[v & 63] : '=';
        put(b, out, 4);
    }
}

/* The page's data: every field the script of viewer.html reads. */
static heed_status put_data(heed_ctx *ctx, buf *b, const heed_report *r)
{
    const int64_t n = r->NL * r->NH, S = r->S;
    uLong raw = (uLong)(n * S * S), zlen = compressBound(raw);
    uint8_t *z = malloc(zlen);
    if (!z || compress2(z, &zlen, r->thumbs, raw, Z_BEST_COMPRESSION) != Z_OK) {
        free(z);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_report_html: cannot compress the thumbnails");
    }
    uint8_t cmap[256 * 3];
    for (int i = 0; i < 256; i++) heed_colormap(cmap + 3 * i, i / 255.0);
    put_s(b, "{\"title\":");
    put_json_str(b, r->title);
    put_f(b, ",\"T\":%lld,\"n_layers\":%lld,\"n_heads\":%lld,\"thumb\":%lld,\"cmap\":\"", (long long)r->T,
          (long long)r->NL, (long long)r->NH, (long long)S);
    put_base64(b, cmap, sizeof cmap);
    put_s(b, "\",\n\"tokens\":[");
    for (int64_t i = 0; i < r->T; i++) {
        if (i) put(b, ",", 1);
        put_json_str(b, r->tokens[i]);
    }
    put_s(b, "],\n\"captured\":[");
    for (int64_t k = 0; k < n; k++) put_s(b, k ? (r->captured[k] ? ",1" : ",0") : (r->captured[k] ? "1" : "0"));
    put_s(b, "],\n\"thumbs\":\"");
    put_base64(b, z, zlen);
    free(z);
    put_s(b, "\",\n\"maps\":[");
    int first = 1;
    for (int64_t k = 0; k < n; k++) {
        if (!r->full[k]) continue;
        put_f(b, "%s{\"layer\":%lld,\"head\":%lld,\"data\":\"", first ? "" : ",\n", (long long)(k / r->NH),
              (long long)(k % r->NH));
        put_base64(b, r->full[k], r->full_len[k]);
        put_s(b, "\"}");
        first = 0;
    }
    put_s(b, "],\n\"scores\":[");
    for (size_t s = 0; s < r->n_scores; s++) {
        put_s(b, s ? ",\n{\"name\":" : "{\"name\":");
        put_json_str(b, r->scores[s].name);
        put_s(b, ",\"desc\":");
        put_json_str(b, r->scores[s].desc ? r->scores[s].desc : "");
        put_s(b, ",\"values\":[");
        for (int64_t k = 0; k < n; k++) {
            float v = r->scores[s].values[k];
            if (isnan(v)) put_s(b, k ? ",null" : "null");
            else put_f(b, k ? ",%.9g" : "%.9g", (double)v); /* round-trips a float */
        }
        put_s(b, "]}");
    }
    put_s(b, "]}");
    return HEED_OK;
}

heed_status heed_report_html(heed_ctx *ctx, char **html, size_t *len, const heed_report *r)
{
    if (!html || !len || !r) return heed_fail(ctx, HEED_ERR_INVALID, "heed_report_html: NULL argument");
    *html = NULL;
    *len = 0;
    static const char title_mark[] = "{{TITLE}}", data_mark[] = "{{DATA}}";
    const char *page = (const char *)heed_viewer_page;
    const size_t n = heed_viewer_page_len;
    buf b = {0};
    size_t i = 0, done = 0;
    while (i < n) {
        size_t tl = sizeof title_mark - 1, dl = sizeof data_mark - 1;
        if (i + tl <= n && !memcmp(page + i, title_mark, tl)) {
            put(&b, page + done, i - done);
            put_html(&b, r->title);
            done = i += tl;
        } else if (i + dl <= n && !memcmp(page + i, data_mark, dl)) {
            put(&b, page + done, i - done);
            heed_status s = put_data(ctx, &b, r);
            if (s != HEED_OK) {
                free(b.p);
                return s;
            }
            done = i += dl;
        } else i++;
    }
    put(&b, page + done, n - done);
    if (b.oom) {
        free(b.p);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_report_html: out of memory (page of %zu bytes so far)", b.n);
    }
    *html = b.p;
    *len = b.n;
    return HEED_OK;
}

heed_status heed_report_write(heed_ctx *ctx, const heed_report *r, const char *path)
{
    char *html;
    size_t len;
    heed_status s = heed_report_html(ctx, &html, &len, r);
    if (s != HEED_OK) return s;
    s = heed_write_file(ctx, path, html, len);
    free(html);
    return s;
}
