/* png.c — the colour scale shared by the viewer and the figures, and heatmap PNGs through libpng (encoded in
 * memory, then written atomically), for papers and reports. */
#include "core/core.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Anchors of the scale at t = 0, 1/4, 1/2, 3/4, 1, interpolated linearly: dark blue through teal and
 * green to yellow, each anchor lighter than the one before, so the order survives greyscale printing. */
static const uint8_t anchors[5][3] = {{20, 12, 70}, {45, 85, 150}, {30, 150, 140}, {125, 200, 75}, {250, 230, 50}};

void heed_colormap(uint8_t *rgb, double t)
{
    if (!(t > 0.0)) t = 0.0; /* NaN too */
    if (t > 1.0) t = 1.0;
    double x = t * 4.0;
    int a = x >= 4.0 ? 3 : (int)x;
    double f = x - a;
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lrint(anchors[a][c] + f * (anchors[a + 1][c] - anchors[a][c]));
}

void heed_png_opts_init(heed_png_opts *o)
{
    o->lo = NAN;
    o->hi = NAN;
    o->sqrt_scale = 0;
    o->cell_px = 1;
    o->colorbar = 1;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} png_mem;

static void mem_write(png_structp png, png_bytep data, png_size_t n)
{
    png_mem *m = png_get_io_ptr(png);
    if (m->oom) return;
    if (m->n + n > m->cap) {
        size_t c = m->cap ? m->cap : 1 << 16;
        while (c < m->n + n) c *= 2;
        uint8_t *p = realloc(m->p, c);
        if (!p) {
            m->oom = 1;
            return;
        }
        m->p = p;
        m->cap = c;
    }
    memcpy(m->p + m->n, data, n);
    m->n += n;
}

static void mem_flush(png_structp png) { (void)png; }

/* libpng reports errors by longjmp; its message is kept for heed_fail. */
typedef struct {
    jmp_buf jb;
    char msg[200];
} png_err;

static void on_error(png_structp png, png_const_charp msg)
{
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jb, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Encodes rows [h] of RGB pixels [w * 3] with the text chunks into *m. Returns 0 or libpng's message in e. */
static int encode(png_mem *m, png_err *e, uint8_t *const *rows, int w, int h, png_text *text, int n_text)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(e->msg, sizeof e->msg, "libpng could not start (out of memory)");
        return 1;
    }
    if (setjmp(e->jb)) {
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_set_write_fn(png, m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_text(png, info, text, n_text);
    png_write_info(png, info);
    png_write_image(png, (png_bytepp)rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

heed_status heed_png_heatmap(heed_ctx *ctx, const char *path, const float *map, int64_t rows, int64_t cols,
                             const heed_png_opts *o)
{
    if (!path || !map || !o) return heed_fail(ctx, HEED_ERR_INVALID, "heed_png_heatmap: NULL argument");
    if (rows < 1 || cols < 1 || o->cell_px < 1 || rows > 16384 || cols > 16384 || o->cell_px > 16384)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_png_heatmap: %s: %lld x %lld cells of %d px: expected 1 to 16384 "
                         "each", path, (long long)rows, (long long)cols, o->cell_px);
    const int64_t px = o->cell_px, mh = rows * px, mw = cols * px;
    /* the colour bar: a gap then a strip, each a 24th of the map's width (at least 2 and 6 pixels) */
    const int64_t gap = o->colorbar ? (mw / 24 > 2 ? mw / 24 : 2) : 0, bar = o->colorbar ? (mw / 24 > 6 ? mw / 24 : 6) : 0;
    const int64_t w = mw + gap + bar, h = mh;
    if (w > 16384 || h > 16384)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_png_heatmap: %s: the image would be %lld x %lld pixels, more "
                         "than 16384 on a side (lower cell_px)", path, (long long)w, (long long)h);
    double lo = o->lo, hi = o->hi, mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < rows * cols; i++) {
        if (!isfinite(map[i]))
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_png_heatmap: %s: cell (%lld, %lld) is %g, expected a finite "
                             "value", path, (long long)(i / cols), (long long)(i % cols), (double)map[i]);
        mn = fmin(mn, map[i]);
        mx = fmax(mx, map[i]);
    }
    if (isnan(lo)) lo = mn;
    if (isnan(hi)) hi = mx;
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_png_heatmap: %s: scale [%g, %g]: expected finite lo <= hi", path,
                         lo, hi);
    uint8_t *pix = calloc((size_t)(w * h), 3);
    uint8_t **rowp = malloc(sizeof *rowp * (size_t)h);
    if (!pix || !rowp) {
        free(pix);
        free(rowp);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_png_heatmap: %s: out of memory", path);
    }
    memset(pix, 255, (size_t)(w * h) * 3); /* white around the colour bar */
    const double span = hi > lo ? hi - lo : 1.0;
    for (int64_t y = 0; y < h; y++) {
        uint8_t *line = pix + y * w * 3;
        rowp[y] = line;
        for (int64_t x = 0; x < mw; x++) {
            double t = (map[(y / px) * cols + x / px] - lo) / span;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            heed_colormap(line + x * 3, o->sqrt_scale ? sqrt(t) : t);
        }
        if (bar) {
            /* top row: the colour of hi; bottom row: the colour of lo, in the same (sqrt or linear) scale */
            double t = h > 1 ? 1.0 - (double)y / (double)(h - 1) : 1.0;
            for (int64_t x = mw + gap; x < w; x++) heed_colormap(line + x * 3, o->sqrt_scale ? sqrt(t) : t);
        }
    }
    char lo_s[32], hi_s[32];
    snprintf(lo_s, sizeof lo_s, "%.9g", lo);
    snprintf(hi_s, sizeof hi_s, "%.9g", hi);
    png_text text[3] = {
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "heed:lo", .text = lo_s},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "heed:hi", .text = hi_s},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "heed:scale", .text = o->sqrt_scale ? "sqrt" : "linear"},
    };
    png_mem m = {0};
    png_err e = {.msg = ""};
    int bad = encode(&m, &e, rowp, (int)w, (int)h, text, 3);
    free(pix);
    free(rowp);
    heed_status s = HEED_OK;
    if (bad || m.oom) s = heed_fail(ctx, HEED_ERR_NOMEM, "heed_png_heatmap: %s: %s", path, bad ? e.msg : "out of memory");
    else s = heed_write_file(ctx, path, m.p, m.n);
    free(m.p);
    return s;
}
