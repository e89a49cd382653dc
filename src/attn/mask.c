/* mask.c — the single definition of which keys a query sees: every mask kind of heed.h as a generator
 * of sorted, merged key spans, clipped to a key range. heed_mask_row_spans, heed_mask_visible and the
 * kernels' block classification (attn_mask_cover) are all views of the same generator. */
#include "attn/attn.h"

#include <limits.h>

/* Where a generator writes: spans clipped to [lo, hi), merged with the last one when they touch or
 * overlap. Generators emit spans in ascending order of their start, so only the last span can grow.
 * Past cap spans, `more` is set and further disjoint spans are dropped (a dropped span lies between
 * the kept ones and anything later, so the kept ones stay exact). */
typedef struct span_sink {
    heed_span *out;
    int64_t n, cap, lo, hi;
    int more;
} span_sink;

static void put(span_sink *e, int64_t a, int64_t b)
{
    if (a < e->lo) a = e->lo;
    if (b > e->hi) b = e->hi;
    if (a >= b) return;
    if (e->n > 0 && a <= e->out[e->n - 1].hi) {
        if (b > e->out[e->n - 1].hi) e->out[e->n - 1].hi = b;
    } else if (e->n < e->cap) {
        e->out[e->n].lo = a;
        e->out[e->n].hi = b;
        e->n++;
    } else {
        e->more = 1;
    }
}

static int64_t sat_add(int64_t a, int64_t b) { return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b; }
static int64_t pos_mod(int64_t a, int64_t b) { const int64_t r = a % b; return r < 0 ? r + b : r; }

/* NATTEN's window start on an axis of `len` positions: the kernel k (odd) positions of i's dilation
 * group (p % dil == i % dil), centred on i, shifted inward at the borders. Equal to NATTEN's
 * get_window_start; needs len >= k * dil so every group has at least k members. */
static int64_t nat_start(int64_t i, int64_t len, int64_t k, int64_t dil)
{
    const int64_t r = i % dil, u = i / dil, group = (len - r + dil - 1) / dil;
    int64_t s = u - k / 2;
    if (s > group - k) s = group - k;
    if (s < 0) s = 0;
    return r + s * dil;
}

/* The positions start + x * step (x < k), each `width` wide, that intersect [e->lo, e->hi). */
static void put_strided(span_sink *e, int64_t start, int64_t step, int64_t k, int64_t width)
{
    int64_t x = 0;
    if (e->lo > start + width - 1) x = (e->lo - start - width + step) / step; /* skip those ending before lo */
    for (; x < k && !e->more; x++) {
        const int64_t a = start + x * step;
        if (a >= e->hi) break;
        put(e, a, a + width);
    }
}

/* The visible key positions of query position i in head h, within [e->lo, e->hi). */
static void gen(span_sink *e, const heed_mask *m, int64_t i, int64_t h)
{
    if (i < 0) return; /* positions are >= 0 */
    switch (m->kind) {
    case HEED_MASK_NONE: put(e, 0, INT64_MAX); return;
    case HEED_MASK_CAUSAL: put(e, 0, i + 1); return;
    case HEED_MASK_WINDOW: {
        const int64_t hi = m->right < 0 ? INT64_MAX : sat_add(i, sat_add(m->right, 1));
        if (m->n_sink > 0) put(e, 0, m->n_sink < hi ? m->n_sink : hi);
        put(e, m->left < 0 ? 0 : i - m->left, hi);
        return;
    }
    case HEED_MASK_PREFIX_BIDIR:
        put(e, 0, i + 1);
        if (m->prefix_begin <= i && i < m->prefix_end) put(e, m->prefix_begin, m->prefix_end);
        return;
    case HEED_MASK_NEIGHBOR_1D: {
        const int64_t len = m->seq_len, k = m->kernel[0], dil = m->dilation[0];
        if (i >= len) return;
        const int64_t s = nat_start(i, len, k, dil);
        if (dil == 1) put(e, s, s + k);
        else put_strided(e, s, dil, k, 1);
        return;
    }
    case HEED_MASK_NEIGHBOR_2D: {
        const int64_t R = m->grid[0], C = m->grid[1];
        if (i >= R * C) return;
        const int64_t kr = m->kernel[0], kc = m->kernel[1], dr = m->dilation[0], dc = m->dilation[1];
        const int64_t r0 = nat_start(i / C, R, kr, dr), c0 = nat_start(i % C, C, kc, dc);
        int64_t x = 0;
        if (e->lo >= C) { /* skip window rows that end before lo */
            const int64_t first_row = e->lo / C;
            if (first_row > r0) x = (first_row - r0 + dr - 1) / dr;
        }
        for (; x < kr && !e->more; x++) {
            const int64_t base = (r0 + x * dr) * C;
            if (base >= e->hi) break;
            if (dc == 1) put(e, base + c0, base + c0 + kc);
            else put_strided(e, base + c0, dc, kc, 1);
        }
        return;
    }
    case HEED_MASK_S2: {
        /* key block kb is visible iff kb <= qb and (qb - kb < local or (kb + h + offset) % stride == 0) */
        const int64_t b = m->block, qb = i / b, vs = m->vert_stride, local = m->local_blocks;
        if (e->hi > i + 1) e->hi = i + 1;
        if (e->lo >= e->hi) return;
        const int64_t first_local = qb - local + 1; /* blocks >= this one are local */
        int64_t kb = e->lo / b;
        kb += pos_mod(-(h + m->head_offset) - kb, vs); /* first vertical block at or after lo's */
        for (; kb < first_local && kb * b < e->hi && !e->more; kb += vs) put(e, kb * b, (kb + 1) * b);
        if (local > 0) put(e, first_local > 0 ? first_local * b : 0, i + 1);
        return;
    }
    case HEED_MASK_BLOCKS: {
        const int64_t b = m->block, qb = i / b;
        if (qb >= m->n_qblocks) return;
        if (m->causal && e->hi > i + 1) e->hi = i + 1;
        int64_t p = m->block_ptr[qb], end = m->block_ptr[qb + 1];
        /* indices ascend (heed_mask_check): binary search for the first block ending after lo */
        for (int64_t lo = p, hi = end; lo < hi;) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (((int64_t)m->block_idx[mid] + 1) * b <= e->lo) lo = p = mid + 1;
            else hi = mid;
        }
        for (; p < end && !e->more; p++) {
            const int64_t a = (int64_t)m->block_idx[p] * b;
            if (a >= e->hi) break;
            put(e, a, a + b);
        }
        return;
    }
    }
}

static span_sink sink_of(heed_span *out, int64_t cap, int64_t k_lo, int64_t k_hi)
{
    span_sink e = {out, 0, cap, k_lo > 0 ? k_lo : 0, k_hi, 0};
    return e;
}

int64_t heed_mask_row_spans(heed_span *out, const heed_mask *m, int64_t i, int64_t h, int64_t k_lo, int64_t k_hi)
{
    span_sink e = sink_of(out, INT64_MAX, k_lo, k_hi);
    if (e.lo < e.hi) gen(&e, m, i, h);
    return e.n;
}

int heed_mask_visible(const heed_mask *m, int64_t i, int64_t j, int64_t h)
{
    heed_span one;
    span_sink e = sink_of(&one, 1, j, j + 1);
    if (e.lo < e.hi) gen(&e, m, i, h);
    return e.n > 0;
}

int64_t heed_mask_max_spans(const heed_mask *m, int64_t n_keys)
{
    if (n_keys <= 0) return 0;
    switch (m->kind) {
    case HEED_MASK_NONE:
    case HEED_MASK_CAUSAL:
    case HEED_MASK_PREFIX_BIDIR: return 1; /* a prefix query's [pb, pe) overlaps its causal [0, i] */
    case HEED_MASK_WINDOW: return 2;
    case HEED_MASK_NEIGHBOR_1D: return m->dilation[0] == 1 ? 1 : m->kernel[0];
    case HEED_MASK_NEIGHBOR_2D: return (int64_t)m->kernel[0] * (m->dilation[1] == 1 ? 1 : m->kernel[1]);
    case HEED_MASK_S2: {
        const int64_t nkb = (n_keys + m->block - 1) / m->block;
        return nkb / m->vert_stride + 2; /* vertical blocks, plus the local run */
    }
    case HEED_MASK_BLOCKS: {
        int64_t most = 0;
        for (int64_t qb = 0; qb < m->n_qblocks; qb++)
            if (m->block_ptr[qb + 1] - m->block_ptr[qb] > most) most = m->block_ptr[qb + 1] - m->block_ptr[qb];
        return most;
    }
    }
    return 1;
}

/* Kernel k (odd, >= 1) and dilation on an axis of len positions (len >= k * dilation). */
static heed_status check_axis(heed_ctx *ctx, const char *what, int axis, int64_t k, int64_t dil, int64_t len,
                              const char *len_name)
{
    if (k < 1 || k % 2 == 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "mask: %s kernel[%d] = %lld, expected an odd size >= 1", what, axis,
                         (long long)k);
    if (dil < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "mask: %s dilation[%d] = %lld, expected >= 1", what, axis,
                         (long long)dil);
    if (len < k * dil)
        return heed_fail(ctx, HEED_ERR_INVALID,
                         "mask: %s %s = %lld, expected >= kernel[%d] * dilation[%d] = %lld (every query sees "
                         "exactly kernel keys)", what, len_name, (long long)len, axis, axis, (long long)(k * dil));
    return HEED_OK;
}

heed_status heed_mask_check(heed_ctx *ctx, const heed_mask *m)
{
    if (!m) return heed_fail(ctx, HEED_ERR_INVALID, "mask: NULL");
    heed_status s;
    switch (m->kind) {
    case HEED_MASK_NONE:
    case HEED_MASK_CAUSAL: return HEED_OK;
    case HEED_MASK_WINDOW:
        if (m->n_sink < 0)
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: WINDOW n_sink = %lld, expected >= 0", (long long)m->n_sink);
        return HEED_OK;
    case HEED_MASK_PREFIX_BIDIR:
        if (m->prefix_begin < 0 || m->prefix_end < m->prefix_begin)
            return heed_fail(ctx, HEED_ERR_INVALID,
                             "mask: PREFIX_BIDIR [prefix_begin, prefix_end) = [%lld, %lld), expected 0 <= begin <= end",
                             (long long)m->prefix_begin, (long long)m->prefix_end);
        return HEED_OK;
    case HEED_MASK_NEIGHBOR_1D:
        return check_axis(ctx, "NEIGHBOR_1D", 0, m->kernel[0], m->dilation[0], m->seq_len, "seq_len");
    case HEED_MASK_NEIGHBOR_2D:
        for (int a = 0; a < 2; a++) {
            static const char *names[2] = {"grid[0] (rows)", "grid[1] (cols)"};
            if ((s = check_axis(ctx, "NEIGHBOR_2D", a, m->kernel[a], m->dilation[a], m->grid[a], names[a])) != HEED_OK)
                return s;
        }
        if (m->grid[0] > INT64_MAX / m->grid[1])
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: NEIGHBOR_2D grid %lld x %lld overflows",
                             (long long)m->grid[0], (long long)m->grid[1]);
        return HEED_OK;
    case HEED_MASK_S2:
        if (m->block < 1)
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: S2 block = %d, expected >= 1", m->block);
        if (m->local_blocks < 0)
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: S2 local_blocks = %d, expected >= 0", m->local_blocks);
        if (m->vert_stride < 1)
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: S2 vert_stride = %d, expected >= 1", m->vert_stride);
        return HEED_OK;
    case HEED_MASK_BLOCKS:
        if (m->block < 1)
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: BLOCKS block = %d, expected >= 1", m->block);
        if (m->n_qblocks < 0)
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: BLOCKS n_qblocks = %lld, expected >= 0",
                             (long long)m->n_qblocks);
        if (m->n_qblocks == 0) return HEED_OK;
        if (!m->block_ptr) return heed_fail(ctx, HEED_ERR_INVALID, "mask: BLOCKS block_ptr is NULL");
        if (m->block_ptr[0] < 0)
            return heed_fail(ctx, HEED_ERR_INVALID, "mask: BLOCKS block_ptr[0] = %d, expected >= 0", m->block_ptr[0]);
        for (int64_t qb = 0; qb < m->n_qblocks; qb++) {
            const int32_t p0 = m->block_ptr[qb], p1 = m->block_ptr[qb + 1];
            if (p1 < p0)
                return heed_fail(ctx, HEED_ERR_INVALID,
                                 "mask: BLOCKS block_ptr[%lld] = %d < block_ptr[%lld] = %d, expected non-decreasing",
                                 (long long)qb + 1, p1, (long long)qb, p0);
            if (p1 > p0 && !m->block_idx) return heed_fail(ctx, HEED_ERR_INVALID, "mask: BLOCKS block_idx is NULL");
            for (int32_t p = p0; p < p1; p++) {
                if (m->block_idx[p] < 0)
                    return heed_fail(ctx, HEED_ERR_INVALID, "mask: BLOCKS block_idx[%d] = %d, expected >= 0", p,
                                     m->block_idx[p]);
                if (p > p0 && m->block_idx[p] <= m->block_idx[p - 1])
                    return heed_fail(ctx, HEED_ERR_INVALID,
                                     "mask: BLOCKS block_idx[%d] = %d after %d in query block %lld, expected "
                                     "strictly ascending key blocks", p, m->block_idx[p], m->block_idx[p - 1],
                                     (long long)qb);
            }
        }
        return HEED_OK;
    }
    return heed_fail(ctx, HEED_ERR_INVALID, "mask: kind = %d, expected a heed_mask_kind (0..7)", (int)m->kind);
}
