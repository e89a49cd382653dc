/* test_report.c — the attention viewer's HTML writer and the PNG heatmaps: the page's data read back with
 * cJSON (tokens, thumbnails and full maps against hand-computed bytes), escaping of hostile tokens and
 * titles, the page size at 4096 tokens, errors; PNGs decoded with libpng and compared pixel by pixel. */
#include "harness.h"
#include "heed.h"

#include <cJSON.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static uint8_t *b64_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    uint8_t *out = malloc(len / 4 * 3 + 1);
    *n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *p = strchr(tab, s[i]);
        if (!p) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[(*n)++] = (uint8_t)(acc >> bits);
        }
    }
    return out;
}

/* base64 of a zlib stream of exactly n bytes -> malloc'd bytes, or NULL */
static uint8_t *inflate_b64(const char *s, size_t n)
{
    size_t zn;
    uint8_t *z = b64_decode(s, &zn), *out = malloc(n ? n : 1);
    uLongf got = n;
    int ok = z && out && uncompress(out, &got, z, zn) == Z_OK && got == n;
    free(z);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* The JSON between the data script's tags, parsed. */
static cJSON *page_data(const char *html)
{
    const char *open = "<script id=\"heed-data\" type=\"application/json\">";
    const char *a = strstr(html, open);
    if (!a) return NULL;
    a += strlen(open);
    const char *b = strstr(a, "</script>");
    return b ? cJSON_ParseWithLength(a, (size_t)(b - a)) : NULL;
}

static size_t count(const char *hay, const char *needle, int nocase)
{
    size_t n = 0, k = strlen(needle);
    for (const char *p = hay; *p; p++) n += nocase ? !strncasecmp(p, needle, k) : !strncmp(p, needle, k);
    return n;
}

static uint8_t q8(double w) { return (uint8_t)lrint(255.0 * sqrt(w)); }

static void test_structure(heed_ctx *ctx)
{
    /* T = 96 tokens: thumbnails are 48 x 48 blocks of 2 x 2 */
    enum { T = 96, NL = 2, NH = 3 };
    char names[T][8];
    const char *tokens[T];
    for (int i = 0; i < T; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        tokens[i] = names[i];
    }
    heed_report *r = NULL;
    CHECK_OK(ctx, heed_report_create(ctx, &r, "structure", tokens, T, NL, NH));
    float *A = calloc(T * T, sizeof *A), *B = calloc(T * T, sizeof *B);
    A[5 * T + 7] = 1.0f;    /* block (2, 3): 255 */
    A[90 * T + 1] = 0.25f;  /* block (45, 0): 255 sqrt(0.25) = 128 (rounded) */
    A[91 * T + 0] = 0.0625f; /* the same block: the maximum wins */
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) B[i * T + j] = 1.0f / (float)(i + 1); /* uniform causal rows */
    CHECK_OK(ctx, heed_report_add_map(ctx, r, A, 0, 1, 1));
    CHECK_OK(ctx, heed_report_add_map(ctx, r, B, 1, 2, 0));
    float sink[NL * NH] = {0.5f, 0.25f, NAN, 1e-5f, 3.0f, -1.0f};
    CHECK_OK(ctx, heed_report_add_score(ctx, r, sink, "sink", "a <desc>"));
    char *html = NULL;
    size_t len = 0;
    CHECK_OK(ctx, heed_report_html(ctx, &html, &len, r));
    CHECK(html && strlen(html) == len, "NUL-terminated page of len %zu", len);
    CHECK(!strncmp(html, "<!DOCTYPE html>", 15), "doctype");
    CHECK(!strstr(html, "{{"), "every marker filled in");
    CHECK(count(html, "<script", 1) == 2 && count(html, "</script", 1) == 2, "two scripts, closed once each");
    CHECK(!strstr(html, "http://") && !strstr(html, "https://") && !count(html, " src=", 1), "nothing external");
    CHECK(strstr(html, "<title>structure</title>") != NULL, "title");
    cJSON *d = page_data(html);
    CHECK(d != NULL, "the data parses as JSON");
    if (d) {
        CHECK(cJSON_GetObjectItem(d, "T")->valueint == T, "T");
        CHECK(cJSON_GetObjectItem(d, "n_layers")->valueint == NL && cJSON_GetObjectItem(d, "n_heads")->valueint == NH,
              "layers x heads");
        CHECK(cJSON_GetObjectItem(d, "thumb")->valueint == 48, "thumbnail side");
        cJSON *tk = cJSON_GetObjectItem(d, "tokens");
        CHECK(cJSON_GetArraySize(tk) == T && !strcmp(cJSON_GetArrayItem(tk, 42)->valuestring, "t42"), "tokens");
        cJSON *cap = cJSON_GetObjectItem(d, "captured");
        int want_cap[NL * NH] = {0, 1, 0, 0, 0, 1};
        for (int k = 0; k < NL * NH; k++)
            CHECK(cJSON_GetArrayItem(cap, k)->valueint == want_cap[k], "captured[%d]", k);
        uint8_t *th = inflate_b64(cJSON_GetObjectItem(d, "thumbs")->valuestring, NL * NH * 48 * 48);
        CHECK(th != NULL, "thumbnails inflate to %d bytes", NL * NH * 48 * 48);
        if (th) {
            const uint8_t *t1 = th + 1 * 48 * 48, *t5 = th + 5 * 48 * 48;
            int other = 0;
            for (int p = 0; p < 48 * 48; p++) other += p != 2 * 48 + 3 && p != 45 * 48 && t1[p];
            CHECK(t1[2 * 48 + 3] == 255 && t1[45 * 48] == 128 && other == 0, "thumbnail of L0 H1: %d %d, %d others",
                  t1[2 * 48 + 3], t1[45 * 48], other);
            /* uniform causal rows: block (r, c) holds its largest weight 1 / (2r + 1) on (or left of) the
             * diagonal, normalised by block (0, 0)'s 1 */
            int bad = 0;
            for (int r2 = 0; r2 < 48; r2++)
                for (int c2 = 0; c2 < 48; c2++) bad += t5[r2 * 48 + c2] != (c2 <= r2 ? q8(1.0 / (2 * r2 + 1)) : 0);
            CHECK(bad == 0, "thumbnail of L1 H2: %d blocks differ", bad);
            CHECK(th[0] == 0 && th[47] == 0, "a head never added is empty");
        }
        free(th);
        cJSON *maps = cJSON_GetObjectItem(d, "maps");
        CHECK(cJSON_GetArraySize(maps) == 1, "one full map (L0 H1), not %d", cJSON_GetArraySize(maps));
        cJSON *m0 = cJSON_GetArrayItem(maps, 0);
        if (m0) {
            CHECK(cJSON_GetObjectItem(m0, "layer")->valueint == 0 && cJSON_GetObjectItem(m0, "head")->valueint == 1,
                  "the map's head");
            uint8_t *q = inflate_b64(cJSON_GetObjectItem(m0, "data")->valuestring, T * T);
            CHECK(q != NULL, "the map inflates to T * T bytes");
            int bad = 0;
            for (int i = 0; q && i < T * T; i++) bad += q[i] != q8(A[i]);
            CHECK(bad == 0, "full map bytes: %d differ from round(255 sqrt(w))", bad);
            free(q);
        }
        cJSON *sc = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "scores"), 0);
        CHECK(sc && !strcmp(cJSON_GetObjectItem(sc, "name")->valuestring, "sink") &&
              !strcmp(cJSON_GetObjectItem(sc, "desc")->valuestring, "a <desc>"), "score name and description");
        cJSON *v = sc ? cJSON_GetObjectItem(sc, "values") : NULL;
        CHECK(v && cJSON_GetArraySize(v) == NL * NH && cJSON_IsNull(cJSON_GetArrayItem(v, 2)) &&
              (float)cJSON_GetArrayItem(v, 3)->valuedouble == 1e-5f && cJSON_GetArrayItem(v, 5)->valuedouble == -1.0,
              "score values (NaN as null)");
        uint8_t *cm = NULL;
        size_t ncm = 0;
        cm = b64_decode(cJSON_GetObjectItem(d, "cmap")->valuestring, &ncm);
        uint8_t want[3];
        heed_colormap(want, 100 / 255.0);
        CHECK(cm && ncm == 768 && !memcmp(cm + 300, want, 3), "the page's colour table is heed_colormap");
        free(cm);
    }
    cJSON_Delete(d);

    /* errors leave the report as it was */
    float bad_w[T * T];
    memcpy(bad_w, B, sizeof bad_w);
    bad_w[3 * T + 2] = NAN;
    CHECK(heed_report_add_map(ctx, r, bad_w, 0, 1, 1) == HEED_ERR_INVALID && strstr(heed_ctx_error(ctx), "query 3"),
          "NaN weight: %s", heed_ctx_error(ctx));
    bad_w[3 * T + 2] = 1.5f;
    CHECK(heed_report_add_map(ctx, r, bad_w, 0, 1, 0) == HEED_ERR_INVALID, "weight 1.5");
    CHECK(heed_report_add_map(ctx, r, B, NL, 0, 0) == HEED_ERR_INVALID, "layer out of range");
    CHECK(heed_report_add_map(ctx, r, B, 0, -1, 0) == HEED_ERR_INVALID, "negative head");
    CHECK(heed_report_add_score(ctx, r, sink, "sink", NULL) == HEED_ERR_INVALID, "duplicate score name");
    sink[1] = INFINITY;
    CHECK(heed_report_add_score(ctx, r, sink, "other", NULL) == HEED_ERR_INVALID, "infinite score");
    char *again = NULL;
    size_t len2 = 0;
    CHECK_OK(ctx, heed_report_html(ctx, &again, &len2, r));
    CHECK(again && len2 == len && !memcmp(again, html, len), "failed calls changed nothing");
    free(again);
    CHECK(heed_report_write(ctx, r, "/nonexistent-dir/x.html") == HEED_ERR_IO, "unwritable path");
    char path[] = "/tmp/heed_test_report_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    if (fd >= 0) {
        close(fd);
        CHECK_OK(ctx, heed_report_write(ctx, r, path));
        FILE *f = fopen(path, "rb");
        char *back = malloc(len + 1);
        size_t got = f ? fread(back, 1, len + 1, f) : 0;
        CHECK(got == len && !memcmp(back, html, len), "the written file is the page (%zu bytes)", got);
        if (f) fclose(f);
        free(back);
        unlink(path);
    }
    const char *one[1] = {"x"};
    heed_report *bad = NULL;
    CHECK(heed_report_create(ctx, &bad, NULL, one, 0, 1, 1) == HEED_ERR_INVALID && !bad, "no tokens");
    CHECK(heed_report_create(ctx, &bad, NULL, NULL, 1, 1, 1) == HEED_ERR_INVALID, "NULL tokens");
    free(html);
    free(A);
    free(B);
    heed_report_free(r);
}

/* Tokens and a title that try to end the script, open a comment or inject markup; invalid UTF-8. */
static void test_escaping(heed_ctx *ctx)
{
    const char *tokens[] = {"</script><script>alert(1)</script>", "</SCRIPT >", "<!--", "\"quoted\" \\", "a\nb\tc\x01",
                            "\xe2\x80\xa8", "\xff", "\xc0\xaf", "\xe2\x82", "\xed\xa0\x80", "&amp; ok \xc3\xa9"};
    const char *want[] = {"</script><script>alert(1)</script>", "</SCRIPT >", "<!--", "\"quoted\" \\", "a\nb\tc\x01",
                          "\xe2\x80\xa8", "\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd",
                          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "&amp; ok \xc3\xa9"};
    const int T = (int)(sizeof tokens / sizeof tokens[0]);
    heed_report *r = NULL;
    CHECK_OK(ctx, heed_report_create(ctx, &r, "<b>bold</b> & 'q' \"d\" </title>\xff", tokens, T, 1, 1));
    float A[11 * 11] = {0};
    for (int i = 0; i < T; i++) A[i * T] = 1.0f;
    CHECK_OK(ctx, heed_report_add_map(ctx, r, A, 0, 0, 1));
    float v = 1;
    CHECK_OK(ctx, heed_report_add_score(ctx, r, &v, "</script>", "<!-- desc -->"));
    char *html = NULL;
    size_t len = 0;
    CHECK_OK(ctx, heed_report_html(ctx, &html, &len, r));
    if (!html) return;
    CHECK(count(html, "</script", 1) == 2, "only the page's two closing script tags (%zu)", count(html, "</script", 1));
    const char *data = strstr(html, "<script id=\"heed-data\"");
    CHECK(data && !strstr(data, "<!--"), "no comment opens after the data starts");
    CHECK(count(html, "<title", 1) == 1 && count(html, "</title", 1) == 1, "one title element");
    CHECK(strstr(html, "<title>&lt;b&gt;bold&lt;/b&gt; &amp; &#39;q&#39; &quot;d&quot; &lt;/title&gt;\xef\xbf\xbd</title>")
              != NULL, "title escaped");
    CHECK(!strstr(html, "\xe2\x80\xa8"), "U+2028 escaped");
    cJSON *d = page_data(html);
    CHECK(d != NULL, "the data parses");
    cJSON *tk = d ? cJSON_GetObjectItem(d, "tokens") : NULL;
    for (int i = 0; tk && i < T; i++) {
        const char *got = cJSON_GetArrayItem(tk, i)->valuestring;
        CHECK(got && !strcmp(got, want[i]), "token %d reads back as '%s'", i, got ? got : "(null)");
    }
    cJSON *sc = d ? cJSON_GetArrayItem(cJSON_GetObjectItem(d, "scores"), 0) : NULL;
    CHECK(sc && !strcmp(cJSON_GetObjectItem(sc, "name")->valuestring, "</script>"), "score name reads back");
    cJSON_Delete(d);
    free(html);
    heed_report_free(r);
}

/* 4096 tokens, 2 layers x 8 heads: thumbnails of all, the full map of one. Maps are softmax rows of random
 * logits with a sink on the first key and a bump on the previous token, as real heads look. */
static void test_size_4k(heed_ctx *ctx)
{
    enum { T = 4096, NL = 2, NH = 8 };
    char(*names)[12] = malloc(sizeof *names * T);
    const char **tokens = malloc(sizeof *tokens * T);
    for (int i = 0; i < T; i++) {
        snprintf(names[i], sizeof names[i], " w%d", i % 977);
        tokens[i] = names[i];
    }
    float *A = calloc((size_t)T * T, sizeof *A);
    t_rng rng = {12345};
    for (int i = 0; i < T; i++) {
        float *row = A + (size_t)i * T;
        double z = 0;
        for (int j = 0; j <= i; j++) {
            double s = 2.0 * t_normal(&rng) + (j == 0 ? 8.0 : 0.0) + (j == i - 1 ? 4.0 : 0.0);
            row[j] = (float)exp(s);
            z += row[j];
        }
        for (int j = 0; j <= i; j++) row[j] = (float)(row[j] / z);
    }
    heed_report *r = NULL;
    CHECK_OK(ctx, heed_report_create(ctx, &r, "4k", tokens, T, NL, NH));
    clock_t t0 = clock();
    for (int k = 0; k < NL * NH; k++) CHECK_OK(ctx, heed_report_add_map(ctx, r, A, k / NH, k % NH, k == 0));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    float sc[NL * NH];
    for (int k = 0; k < NL * NH; k++) sc[k] = (float)k;
    CHECK_OK(ctx, heed_report_add_score(ctx, r, sc, "index", NULL));
    char *html = NULL;
    size_t len = 0;
    CHECK_OK(ctx, heed_report_html(ctx, &html, &len, r));
    printf("4096 tokens, 16 heads, 1 full map: page %zu bytes (%.1f MB); adding the maps took %.2f s CPU\n", len,
           len / 1e6, secs);
    CHECK(len < 12u << 20, "the page stays under 12 MiB: %zu bytes", len);
    CHECK(len > 1u << 20, "the full map is in the page: %zu bytes", len);
    free(html);
    heed_report_free(r);
    free(A);
    free(tokens);
    free(names);
}

/* Decodes a PNG file to RGB [*w, *h] (malloc'd) and its text chunk values for heed:lo / heed:hi. */
static uint8_t *png_read(const char *path, int *w, int *h, double *lo, double *hi, char *scale, size_t scale_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    uint8_t *pix = NULL;
    png_bytep *rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(pix);
        free(rows);
        return NULL;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    int ok = png_get_color_type(png, info) == PNG_COLOR_TYPE_RGB && png_get_bit_depth(png, info) == 8;
    pix = malloc((size_t)*w * *h * 3);
    rows = malloc(sizeof *rows * (size_t)*h);
    for (int y = 0; y < *h; y++) rows[y] = pix + (size_t)y * *w * 3;
    png_read_image(png, rows);
    png_read_end(png, info);
    png_textp text;
    int n_text = 0;
    png_get_text(png, info, &text, &n_text);
    for (int i = 0; i < n_text; i++) {
        if (!strcmp(text[i].key, "heed:lo")) *lo = atof(text[i].text);
        if (!strcmp(text[i].key, "heed:hi")) *hi = atof(text[i].text);
        if (!strcmp(text[i].key, "heed:scale")) snprintf(scale, scale_len, "%s", text[i].text);
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(rows);
    if (!ok) {
        free(pix);
        return NULL;
    }
    return pix;
}

static void test_png(heed_ctx *ctx)
{
    /* the colour scale: its ends, and lightness rising all the way (it prints in greyscale) */
    uint8_t c0[3], c1[3], prev[3];
    heed_colormap(c0, 0.0);
    heed_colormap(c1, 1.0);
    heed_colormap(prev, NAN);
    CHECK(!memcmp(prev, c0, 3), "NaN is the colour of 0");
    heed_colormap(prev, -3.0);
    CHECK(!memcmp(prev, c0, 3), "below 0 clamps");
    heed_colormap(prev, 7.0);
    CHECK(!memcmp(prev, c1, 3), "above 1 clamps");
    int dark = 0;
    double last = -1;
    for (int i = 0; i <= 255; i++) {
        uint8_t c[3];
        heed_colormap(c, i / 255.0);
        double lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
        dark += lum <= last;
        last = lum;
    }
    CHECK(dark == 0, "lightness rises monotonically (%d steps do not)", dark);

    enum { R = 3, C = 4 };
    const float map[R * C] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    char path[] = "/tmp/heed_test_png_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    if (fd < 0) return;
    close(fd);
    for (int sq = 0; sq <= 1; sq++) {
        heed_png_opts o;
        heed_png_opts_init(&o);
        o.cell_px = 3;
        o.sqrt_scale = sq;
        if (sq) o.hi = 22; /* an explicit range: the map covers [0, 11] of [0, 22] */
        CHECK_OK(ctx, heed_png_heatmap(ctx, path, map, R, C, &o));
        int w = 0, h = 0;
        double lo = NAN, hi = NAN;
        char scale[16] = "";
        uint8_t *pix = png_read(path, &w, &h, &lo, &hi, scale, sizeof scale);
        CHECK(pix != NULL, "the PNG decodes as 8-bit RGB");
        if (!pix) continue;
        /* map 12 x 9 pixels, then a gap of 2 and a bar of 6 */
        CHECK(w == 12 + 2 + 6 && h == 9, "size %d x %d", w, h);
        CHECK(lo == 0 && hi == (sq ? 22 : 11) && !strcmp(scale, sq ? "sqrt" : "linear"), "text: lo %g hi %g scale %s",
              lo, hi, scale);
        int bad = 0;
        for (int y = 0; y < h && w == 20; y++)
            for (int x = 0; x < 12; x++) {
                double t = map[(y / 3) * C + x / 3] / hi;
                uint8_t want[3];
                heed_colormap(want, sq ? sqrt(t) : t);
                bad += memcmp(pix + ((size_t)y * w + x) * 3, want, 3) != 0;
            }
        CHECK(bad == 0, "sqrt %d: %d map pixels differ from heed_colormap", sq, bad);
        if (w == 20) {
            const uint8_t *gap = pix + 13 * 3, *top = pix + 16 * 3, *bottom = pix + ((size_t)8 * w + 16) * 3;
            CHECK(gap[0] == 255 && gap[1] == 255 && gap[2] == 255, "white gap");
            CHECK(!memcmp(top, c1, 3) && !memcmp(bottom, c0, 3), "bar: hi at the top, lo at the bottom");
        }
        free(pix);
    }
    heed_png_opts o;
    heed_png_opts_init(&o);
    float nan_map[2] = {0, NAN};
    CHECK(heed_png_heatmap(ctx, path, nan_map, 1, 2, &o) == HEED_ERR_INVALID && strstr(heed_ctx_error(ctx), "(0, 1)"),
          "NaN cell: %s", heed_ctx_error(ctx));
    o.cell_px = 5000;
    CHECK(heed_png_heatmap(ctx, path, map, R, C, &o) == HEED_ERR_INVALID, "too large an image");
    CHECK(heed_png_heatmap(ctx, path, map, 1, (int64_t)1 << 62, &o) == HEED_ERR_INVALID, "a size that would overflow");
    o.cell_px = 1;
    o.lo = 5;
    o.hi = 1;
    CHECK(heed_png_heatmap(ctx, path, map, R, C, &o) == HEED_ERR_INVALID, "lo > hi");
    heed_png_opts_init(&o);
    CHECK(heed_png_heatmap(ctx, "/nonexistent-dir/x.png", map, R, C, &o) == HEED_ERR_IO, "unwritable path");
    unlink(path);
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 1) != HEED_OK) return 1;
    test_structure(ctx);
    test_escaping(ctx);
    test_png(ctx);
    test_size_4k(ctx);
    heed_ctx_free(ctx);
    return t_done("test_report");
}
