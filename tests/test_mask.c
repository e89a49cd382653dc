/* test_mask.c — the mask patterns against brute-force predicates written here straight from heed.h and
 * REFERENCES.md (not calling mask.c): row spans, visibility and block classification for random
 * parameters of every kind, the papers' properties (S2's heads cover every past block, neighborhoods
 * see exactly kernel keys, window + sinks), huge positions, and heed_mask_check's refusals. */
#include "attn/attn.h"
#include "harness.h"

#include <string.h>

/* ---- brute force -------------------------------------------------------------------------------- */

/* NATTEN, as "the k members of i's dilation group centred on i, shifted inward at the borders": among
 * the windows of k consecutive group members that contain i, the one most balanced around i. */
static int bf_natten(int64_t i, int64_t j, int64_t len, int64_t k, int64_t dil)
{
    if (i < 0 || i >= len || j < 0 || j >= len || i % dil != j % dil) return 0;
    const int64_t r = i % dil;
    int64_t n = 0;
    for (int64_t p = r; p < len; p += dil) n++;
    const int64_t u = (i - r) / dil, w = (j - r) / dil;
    int64_t best = -1, best_imb = INT64_MAX;
    for (int64_t s = 0; s + k <= n; s++) {
        if (u < s || u >= s + k) continue;
        const int64_t imb = llabs((u - s) - (s + k - 1 - u));
        if (imb < best_imb) best_imb = imb, best = s;
    }
    return best >= 0 && w >= best && w < best + k;
}

/* NATTEN's own get_window_start (csrc, natten_commons), transcribed: a second, independent witness. */
static int64_t natten_window_start(int64_t index, int64_t length, int64_t kernel_size, int64_t dilation)
{
    const int64_t ns = kernel_size / 2;
    if (dilation <= 1) {
        int64_t s = index - ns > 0 ? index - ns : 0;
        return s + (index + ns >= length) * (length - index - ns - 1);
    }
    const int64_t ni = index - ns * dilation;
    if (ni < 0) return index % dilation;
    if (index + ns * dilation >= length) {
        const int64_t imodd = index % dilation, a = (length / dilation) * dilation, b = length - a;
        if (imodd < b) return length - b + imodd - 2 * ns * dilation;
        return a + imodd - kernel_size * dilation;
    }
    return ni;
}

static int bf_visible(const heed_mask *m, int64_t i, int64_t j, int64_t h)
{
    if (i < 0 || j < 0) return 0;
    switch (m->kind) {
    case HEED_MASK_NONE: return 1;
    case HEED_MASK_CAUSAL: return j <= i;
    case HEED_MASK_WINDOW:
        return (m->right < 0 || j - i <= m->right) && (m->left < 0 || i - j <= m->left || j < m->n_sink);
    case HEED_MASK_PREFIX_BIDIR:
        return j <= i || (i >= m->prefix_begin && i < m->prefix_end && j >= m->prefix_begin && j < m->prefix_end);
    case HEED_MASK_NEIGHBOR_1D: return bf_natten(i, j, m->seq_len, m->kernel[0], m->dilation[0]);
    case HEED_MASK_NEIGHBOR_2D: {
        const int64_t C = m->grid[1], n = m->grid[0] * C;
        if (i >= n || j >= n) return 0;
        return bf_natten(i / C, j / C, m->grid[0], m->kernel[0], m->dilation[0]) &&
               bf_natten(i % C, j % C, C, m->kernel[1], m->dilation[1]);
    }
    case HEED_MASK_S2: {
        const int64_t qb = i / m->block, kb = j / m->block;
        return j <= i && (qb - kb < m->local_blocks || ((kb + h + m->head_offset) % m->vert_stride + m->vert_stride) %
                                                                m->vert_stride == 0);
    }
    case HEED_MASK_BLOCKS: {
        const int64_t qb = i / m->block, kb = j / m->block;
        if (qb >= m->n_qblocks || (m->causal && j > i)) return 0;
        for (int32_t p = m->block_ptr[qb]; p < m->block_ptr[qb + 1]; p++)
            if (m->block_idx[p] == kb) return 1;
        return 0;
    }
    }
    return 0;
}

/* ---- random masks --------------------------------------------------------------------------------- */

static int64_t odd_upto(t_rng *r, int64_t hi) { return 2 * t_int(r, 0, (hi - 1) / 2) + 1; }

/* A random valid mask of kind over key positions [0, n) (2D: a grid of about n cells; *n is updated). */
static void random_mask(heed_mask *m, t_rng *r, heed_mask_kind kind, int64_t *n, int32_t *bptr, int32_t *bidx)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    switch (kind) {
    case HEED_MASK_WINDOW:
        m->left = t_int(r, 0, 3) == 0 ? -1 : t_int(r, 0, *n + 3);
        m->right = t_int(r, 0, 2) == 0 ? t_int(r, -1, *n + 3) : 0;
        m->n_sink = t_int(r, 0, 3) == 0 ? 0 : t_int(r, 0, *n + 2);
        break;
    case HEED_MASK_PREFIX_BIDIR:
        m->prefix_begin = t_int(r, 0, *n);
        m->prefix_end = m->prefix_begin + t_int(r, 0, *n);
        break;
    case HEED_MASK_NEIGHBOR_1D:
        m->dilation[0] = (int32_t)t_int(r, 1, 4);
        m->seq_len = *n > m->dilation[0] ? *n : m->dilation[0];
        m->kernel[0] = (int32_t)odd_upto(r, m->seq_len / m->dilation[0]);
        *n = m->seq_len;
        break;
    case HEED_MASK_NEIGHBOR_2D:
        for (int a = 0; a < 2; a++) {
            m->grid[a] = t_int(r, 1, 12);
            m->dilation[a] = (int32_t)t_int(r, 1, m->grid[a] >= 6 ? 3 : 1);
            m->kernel[a] = (int32_t)odd_upto(r, m->grid[a] / m->dilation[a]);
        }
        *n = m->grid[0] * m->grid[1];
        break;
    case HEED_MASK_S2:
        m->block = (int32_t)t_int(r, 1, 9);
        m->local_blocks = (int32_t)t_int(r, 0, 4);
        m->vert_stride = (int32_t)t_int(r, 1, 5);
        m->head_offset = (int32_t)t_int(r, -3, 5);
        break;
    case HEED_MASK_BLOCKS: {
        m->block = (int32_t)t_int(r, 1, 7);
        const int64_t nb = (*n + m->block - 1) / m->block;
        m->n_qblocks = nb - t_int(r, 0, 1 < nb ? 1 : 0);
        bptr[0] = 0;
        for (int64_t qb = 0; qb < m->n_qblocks; qb++) {
            int32_t c = bptr[qb];
            for (int64_t kb = 0; kb < nb + 2; kb++) /* may list blocks past the keys */
                if (t_int(r, 0, 2) == 0) bidx[c++] = (int32_t)kb;
            bptr[qb + 1] = c;
        }
        m->block_ptr = bptr;
        m->block_idx = bidx;
        m->causal = (int)t_int(r, 0, 1);
        break;
    }
    default:
        break;
    }
}

/* ---- the checks ----------------------------------------------------------------------------------- */

/* Row spans of (i, h) over [lo, hi) equal the brute-force set, and are sorted, non-empty, merged and
 * within max_spans; heed_mask_visible agrees key by key. */
static int check_row(const heed_mask *m, int64_t i, int64_t h, int64_t lo, int64_t hi, int64_t n_keys,
                     heed_span *sp, const char *what)
{
    const int64_t cap = heed_mask_max_spans(m, n_keys);
    const int64_t ns = heed_mask_row_spans(sp, m, i, h, lo, hi);
    int bad = 0;
    if (ns > cap) {
        bad = 1;
        CHECK(0, "%s i=%lld h=%lld: %lld spans > max_spans %lld", what, (long long)i, (long long)h, (long long)ns,
              (long long)cap);
    }
    for (int64_t s = 0; s < ns && !bad; s++) {
        const int ok = sp[s].lo < sp[s].hi && sp[s].lo >= lo && sp[s].hi <= hi && (s == 0 || sp[s - 1].hi < sp[s].lo);
        if (!ok) {
            bad = 1;
            CHECK(0, "%s i=%lld h=%lld [%lld,%lld): span %lld = [%lld,%lld) not sorted/merged/clipped", what,
                  (long long)i, (long long)h, (long long)lo, (long long)hi, (long long)s, (long long)sp[s].lo,
                  (long long)sp[s].hi);
        }
    }
    int64_t s = 0;
    for (int64_t j = lo; j < hi && !bad; j++) {
        while (s < ns && sp[s].hi <= j) s++;
        const int in = s < ns && sp[s].lo <= j, want = bf_visible(m, i, j, h);
        if (in != want || heed_mask_visible(m, i, j, h) != want) {
            bad = 1;
            CHECK(0, "%s i=%lld j=%lld h=%lld: spans say %d, visible says %d, brute force %d", what, (long long)i,
                  (long long)j, (long long)h, in, heed_mask_visible(m, i, j, h), want);
        }
    }
    t_checks++;
    return !bad;
}

static void test_random(t_rng *r)
{
    static const char *names[8] = {"none", "causal", "window", "prefix", "neighbor1d", "neighbor2d", "s2", "blocks"};
    int32_t bptr[64], bidx[64 * 64];
    heed_span sp[512];
    for (int it = 0; it < 4000; it++) {
        const heed_mask_kind kind = (heed_mask_kind)(it % 8);
        int64_t n = t_int(r, 1, 60);
        heed_mask m;
        random_mask(&m, r, kind, &n, bptr, bidx);
        char what[64];
        snprintf(what, sizeof what, "case %d (%s, n=%lld)", it, names[kind], (long long)n);
        CHECK(heed_mask_check(NULL, &m) == HEED_OK, "%s: a valid mask refused", what);
        const int64_t h = t_int(r, 0, 7);
        int ok = 1;
        for (int64_t i = 0; i < n + 3 && ok; i++) { /* past the axis too: those rows see nothing */
            ok = check_row(&m, i, h, 0, n + 4, n + 4, sp, what);
            const int64_t lo = t_int(r, 0, n), hi = t_int(r, lo, n + 4);
            if (ok) ok = check_row(&m, i, h, lo, hi, n + 4, sp, what);
        }
    }
}

/* NATTEN: our brute force equals NATTEN's own window start, and every query sees exactly kernel
 * keys (1D) and kernel[0] * kernel[1] keys (2D), with and without dilation. */
static void test_neighborhood(t_rng *r)
{
    heed_span sp[512];
    for (int64_t len = 1; len <= 40; len++)
        for (int64_t dil = 1; dil <= 4; dil++)
            for (int64_t k = 1; k * dil <= len; k += 2) {
                heed_mask m;
                memset(&m, 0, sizeof m);
                m.kind = HEED_MASK_NEIGHBOR_1D;
                m.kernel[0] = (int32_t)k;
                m.dilation[0] = (int32_t)dil;
                m.seq_len = len;
                for (int64_t i = 0; i < len; i++) {
                    const int64_t s0 = natten_window_start(i, len, k, dil);
                    int64_t n_bf = 0, n_natten = 0, agree = 1;
                    for (int64_t j = 0; j < len; j++) {
                        const int v = bf_natten(i, j, len, k, dil);
                        const int w = j >= s0 && (j - s0) % dil == 0 && (j - s0) / dil < k;
                        n_bf += v, n_natten += w, agree &= v == w;
                    }
                    CHECK(agree && n_bf == k && n_natten == k, "NATTEN 1D len=%lld k=%lld dil=%lld i=%lld: brute force "
                          "%lld keys, NATTEN %lld, agree %d", (long long)len, (long long)k, (long long)dil,
                          (long long)i, (long long)n_bf, (long long)n_natten, (int)agree);
                    const int64_t ns = heed_mask_row_spans(sp, &m, i, 0, 0, len);
                    int64_t cnt = 0;
                    for (int64_t s = 0; s < ns; s++) cnt += sp[s].hi - sp[s].lo;
                    CHECK(cnt == k, "1D len=%lld k=%lld dil=%lld i=%lld: %lld keys", (long long)len, (long long)k,
                          (long long)dil, (long long)i, (long long)cnt);
                }
            }
    for (int it = 0; it < 300; it++) {
        heed_mask m;
        memset(&m, 0, sizeof m);
        m.kind = HEED_MASK_NEIGHBOR_2D;
        for (int a = 0; a < 2; a++) {
            m.grid[a] = t_int(r, 1, 20);
            m.dilation[a] = (int32_t)t_int(r, 1, m.grid[a] >= 8 ? 4 : 1);
            m.kernel[a] = (int32_t)odd_upto(r, m.grid[a] / m.dilation[a]);
        }
        const int64_t n = m.grid[0] * m.grid[1], want = (int64_t)m.kernel[0] * m.kernel[1];
        int bad = 0;
        for (int64_t i = 0; i < n && !bad; i++) {
            const int64_t ns = heed_mask_row_spans(sp, &m, i, 0, 0, n);
            int64_t cnt = 0;
            for (int64_t s = 0; s < ns; s++) cnt += sp[s].hi - sp[s].lo;
            if (cnt != want) bad = 1;
            CHECK(cnt == want, "2D grid %lldx%lld kernel %dx%d dilation %dx%d query %lld: %lld keys, expected %lld",
                  (long long)m.grid[0], (long long)m.grid[1], m.kernel[0], m.kernel[1], m.dilation[0], m.dilation[1],
                  (long long)i, (long long)cnt, (long long)want);
        }
    }
}

/* S2 / DKernel: for every query, the union over vert_stride consecutive heads of the visible key
 * blocks is every block up to the query's (the strided shards tile the past); each single head sees
 * its local blocks and every vert_stride-th block before them. */
static void test_s2(t_rng *r)
{
    heed_span sp[512];
    for (int it = 0; it < 60; it++) {
        heed_mask m;
        memset(&m, 0, sizeof m);
        m.kind = HEED_MASK_S2;
        m.block = (int32_t)(it == 0 ? 64 : t_int(r, 1, 16));
        m.local_blocks = (int32_t)(it == 0 ? 8 : t_int(r, 1, 4));
        m.vert_stride = (int32_t)(it == 0 ? 16 : t_int(r, 1, 8));
        m.head_offset = (int32_t)t_int(r, 0, 5);
        const int64_t n = it == 0 ? 2048 : t_int(r, 1, 300), H = m.vert_stride;
        int bad = 0;
        for (int64_t i = 0; i < n && !bad; i++) {
            unsigned char seen[2048];
            memset(seen, 0, (size_t)n);
            for (int64_t h = 0; h < H; h++) {
                const int64_t ns = heed_mask_row_spans(sp, &m, i, h, 0, n);
                for (int64_t s = 0; s < ns; s++)
                    for (int64_t j = sp[s].lo; j < sp[s].hi; j++) seen[j] = 1;
            }
            for (int64_t j = 0; j < n && !bad; j++)
                if (seen[j] != (j <= i)) bad = 1;
            CHECK(!bad, "S2 block %d local %d stride %d: the heads' union for query %lld is not [0, %lld]", m.block,
                  m.local_blocks, m.vert_stride, (long long)i, (long long)i);
        }
    }
}

/* Causal window of W keys with S sinks: j <= i and (i - j < W or j < S); windows wider than Tk. */
static void test_window_sinks(t_rng *r)
{
    heed_span sp[4];
    for (int it = 0; it < 300; it++) {
        const int64_t Tk = t_int(r, 1, 80), W = t_int(r, 1, 2 * Tk + 2), S = t_int(r, 0, 6);
        heed_mask m;
        memset(&m, 0, sizeof m);
        m.kind = HEED_MASK_WINDOW;
        m.left = W - 1;
        m.right = 0;
        m.n_sink = S;
        int bad = 0;
        for (int64_t i = 0; i < Tk && !bad; i++) {
            const int64_t ns = heed_mask_row_spans(sp, &m, i, 0, 0, Tk);
            for (int64_t j = 0, s = 0; j < Tk; j++) {
                while (s < ns && sp[s].hi <= j) s++;
                const int in = s < ns && sp[s].lo <= j;
                if (in != (j <= i && (i - j < W || j < S))) bad = 1;
            }
            CHECK(!bad, "window W=%lld S=%lld Tk=%lld query %lld", (long long)W, (long long)S, (long long)Tk,
                  (long long)i);
        }
    }
}

/* Positions far beyond any key count: the spans come out right without looping over keys. */
static void test_huge_positions(void)
{
    const int64_t i = 1000000000000000LL; /* 1e15 */
    heed_span sp[8];
    heed_mask m;
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_WINDOW;
    m.left = 1023;
    m.right = 0;
    m.n_sink = 4;
    int64_t ns = heed_mask_row_spans(sp, &m, i, 0, 0, INT64_MAX);
    CHECK(ns == 2 && sp[0].lo == 0 && sp[0].hi == 4 && sp[1].lo == i - 1023 && sp[1].hi == i + 1,
          "window + sinks at 1e15: %lld spans", (long long)ns);
    m.kind = HEED_MASK_CAUSAL;
    ns = heed_mask_row_spans(sp, &m, i, 0, i - 5, INT64_MAX);
    CHECK(ns == 1 && sp[0].lo == i - 5 && sp[0].hi == i + 1, "causal clipped at 1e15");
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_NEIGHBOR_1D;
    m.kernel[0] = 7;
    m.dilation[0] = 3;
    m.seq_len = 2 * i;
    ns = heed_mask_row_spans(sp, &m, i, 0, 0, 2 * i);
    CHECK(ns == 7 && sp[0].lo == i - 9 && sp[6].lo == i + 9, "1D neighborhood at 1e15: %lld spans", (long long)ns);
    CHECK(heed_mask_visible(&m, i, i + 9, 0) && !heed_mask_visible(&m, i, i + 8, 0), "1D visibility at 1e15");
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_S2;
    m.block = 64;
    m.local_blocks = 8;
    m.vert_stride = 16;
    CHECK(heed_mask_visible(&m, i, i - 64 * 7, 0) && !heed_mask_visible(&m, i, i + 1, 0), "S2 at 1e15: local");
    const int64_t kb = 16 * 1000000000LL; /* a multiple of vert_stride: a vertical block of head 0 */
    CHECK(heed_mask_visible(&m, i, kb * 64, 0), "S2 at 1e15: vertical block");
    CHECK(!heed_mask_visible(&m, i, (kb + 1) * 64, 0), "S2 at 1e15: the block after a vertical one");
    CHECK(heed_mask_visible(&m, i, (kb + 1) * 64, 15), "S2 at 1e15: head 15's vertical block");
}

/* Merging: spans that touch are one span (S2 local run and the vertical block just before it; a
 * full-width 2D window; window and sinks that overlap). */
static void test_merging(void)
{
    heed_span sp[16];
    heed_mask m;
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_S2;
    m.block = 4;
    m.local_blocks = 2;
    m.vert_stride = 3; /* query 20: block 5, local blocks 4-5; vertical blocks 0 and 3 for head 0 */
    int64_t ns = heed_mask_row_spans(sp, &m, 20, 0, 0, 100);
    CHECK(ns == 2 && sp[0].lo == 0 && sp[0].hi == 4 && sp[1].lo == 12 && sp[1].hi == 21,
          "S2 vertical block 3 merges with local blocks 4-5: %lld spans", (long long)ns);
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_NEIGHBOR_2D;
    m.grid[0] = 5;
    m.grid[1] = 4;
    m.kernel[0] = 3;
    m.kernel[1] = 3;
    m.dilation[0] = m.dilation[1] = 1;
    ns = heed_mask_row_spans(sp, &m, 6, 0, 0, 20); /* row 1, col 2: rows 0-2, cols 1-3 */
    CHECK(ns == 3 && sp[0].lo == 1 && sp[0].hi == 4 && sp[2].lo == 9 && sp[2].hi == 12, "2D 3x3 spans");
    m.grid[1] = 3; /* every column: the three rows touch */
    ns = heed_mask_row_spans(sp, &m, 4, 0, 0, 15);
    CHECK(ns == 1 && sp[0].lo == 0 && sp[0].hi == 9, "2D full-width window is one span: %lld", (long long)ns);
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_WINDOW;
    m.left = 3;
    m.right = 0;
    m.n_sink = 6;
    ns = heed_mask_row_spans(sp, &m, 8, 0, 0, 20);
    CHECK(ns == 1 && sp[0].lo == 0 && sp[0].hi == 9, "sinks [0,6) and window [5,9) merge: %lld", (long long)ns);
}

static void expect_refused(const heed_mask *m, const char *word, const char *what)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 1));
    const heed_status s = heed_mask_check(ctx, m);
    CHECK(s == HEED_ERR_INVALID, "%s accepted", what);
    CHECK(strstr(heed_ctx_error(ctx), word) != NULL, "%s: message \"%s\" does not name %s", what,
          heed_ctx_error(ctx), word);
    CHECK(heed_mask_check(NULL, m) == HEED_ERR_INVALID, "%s accepted without a context", what);
    heed_ctx_free(ctx);
}

static void test_check(void)
{
    heed_mask m, ok;
    int32_t ptr[4] = {0, 2, 2, 3}, idx[3] = {0, 3, 1};
    memset(&ok, 0, sizeof ok);
    ok.kind = HEED_MASK_NEIGHBOR_1D;
    ok.kernel[0] = 3;
    ok.dilation[0] = 2;
    ok.seq_len = 6;
    CHECK(heed_mask_check(NULL, &ok) == HEED_OK, "1D kernel 3 dilation 2 on 6 positions");
    m = ok, m.kernel[0] = 4, expect_refused(&m, "kernel[0]", "even kernel");
    m = ok, m.kernel[0] = 0, expect_refused(&m, "kernel[0]", "kernel 0");
    m = ok, m.dilation[0] = 0, expect_refused(&m, "dilation[0]", "dilation 0");
    m = ok, m.seq_len = 5, expect_refused(&m, "seq_len", "axis shorter than kernel * dilation");
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_NEIGHBOR_2D;
    m.grid[0] = 4, m.grid[1] = 9, m.kernel[0] = 3, m.kernel[1] = 3, m.dilation[0] = 1, m.dilation[1] = 3;
    CHECK(heed_mask_check(NULL, &m) == HEED_OK, "2D 4x9 kernel 3x3 dilation 1x3");
    heed_mask m2 = m;
    m2.dilation[0] = 2, expect_refused(&m2, "grid[0]", "2D rows shorter than kernel * dilation");
    m2 = m, m2.kernel[1] = 2, expect_refused(&m2, "kernel[1]", "2D even kernel");
    m2 = m, m2.dilation[1] = 0, expect_refused(&m2, "dilation[1]", "2D dilation 0");
    m2 = m, m2.grid[1] = 0, expect_refused(&m2, "grid[1]", "2D empty grid");
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_S2, m.block = 0, m.local_blocks = 1, m.vert_stride = 2;
    expect_refused(&m, "block", "S2 block 0");
    m.block = 4, m.vert_stride = 0, expect_refused(&m, "vert_stride", "S2 vert_stride 0");
    m.vert_stride = 2, m.local_blocks = -1, expect_refused(&m, "local_blocks", "S2 negative local_blocks");
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_BLOCKS, m.block = 2, m.n_qblocks = 3, m.block_ptr = ptr, m.block_idx = idx;
    CHECK(heed_mask_check(NULL, &m) == HEED_OK, "a well-formed block list");
    ptr[2] = 1, expect_refused(&m, "block_ptr", "decreasing block_ptr"), ptr[2] = 2;
    idx[1] = 0, expect_refused(&m, "block_idx", "repeated key block"), idx[1] = 3;
    idx[2] = -1, expect_refused(&m, "block_idx", "negative key block"), idx[2] = 1;
    m.block_ptr = NULL, expect_refused(&m, "block_ptr", "NULL block_ptr"), m.block_ptr = ptr;
    m.block_idx = NULL, expect_refused(&m, "block_idx", "NULL block_idx"), m.block_idx = idx;
    m.block = 0, expect_refused(&m, "block", "BLOCKS block 0"), m.block = 2;
    m.n_qblocks = -1, expect_refused(&m, "n_qblocks", "negative n_qblocks");
    memset(&m, 0, sizeof m);
    m.kind = HEED_MASK_WINDOW, m.n_sink = -1, expect_refused(&m, "n_sink", "negative n_sink");
    m.kind = HEED_MASK_PREFIX_BIDIR, m.prefix_begin = 5, m.prefix_end = 4;
    expect_refused(&m, "prefix_begin", "prefix end before begin");
    m.kind = (heed_mask_kind)42, expect_refused(&m, "kind", "unknown kind");
    expect_refused(NULL, "mask", "NULL mask");
}

int main(void)
{
    t_rng r = {0x3a5c0ffee123ULL};
    test_random(&r);
    test_neighborhood(&r);
    test_s2(&r);
    test_window_sinks(&r);
    test_huge_positions();
    test_merging();
    test_check();
    return t_done("test_mask");
}
