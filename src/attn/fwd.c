/* fwd.c — heed_attn_forward, the fast CPU forward: checks the call, plans query tiles (2D patches for
 * neighborhood attention) and key splits (decode), runs the kernel of the context's instruction set
 * (fwd_kernel.h) on its threads, and merges split-KV partials exactly with heed_attn_merge. */
#include "attn/fwd_kernel.h"

/* Below this many visible keys per split, splitting the keys costs more than it balances. */
#define FWD_MIN_SPLIT_KEYS 256

/* Neighborhood attention: orders the query rows into patches of ph x pw positions of one dilation
 * group of a rows x cols grid, so a tile's key windows overlap and their union stays small (NATTEN's
 * fused tiling). Rows whose position lies off the grid follow in runs of tq. Fills p->perm,
 * p->tile_start, p->n_tiles, p->max_rows; *buf owns the arrays. */
static heed_status plan_patches(heed_ctx *ctx, fwd_plan *p, void **buf, int64_t rows, int64_t cols, int64_t dr,
                                int64_t dc, int64_t ph, int64_t pw)
{
    const int64_t Tq = p->a.Tq, tq = p->tq;
    const int64_t nR = ((rows + dr - 1) / dr + ph - 1) / ph, nC = ((cols + dc - 1) / dc + pw - 1) / pw;
    const int64_t n_grid = dr * dc * nR * nC, n_ids = n_grid + (Tq + tq - 1) / tq;
    const size_t bytes = (size_t)Tq * sizeof(int32_t) + (size_t)Tq * sizeof(int64_t) +
                         (size_t)(n_ids + 1) * 2 * sizeof(int64_t);
    char *mem = heed_alloc(bytes);
    if (!mem) return heed_fail(ctx, HEED_ERR_NOMEM, "attention forward: cannot allocate %zu bytes", bytes);
    *buf = mem;
    int64_t *id = (int64_t *)(void *)mem, *start = id + Tq, *tile_start = start + n_ids + 1;
    int32_t *perm = (int32_t *)(void *)(tile_start + n_ids + 1);
    for (int64_t i = 0; i <= n_ids; i++) start[i] = 0;
    for (int64_t t = 0; t < Tq; t++) {
        const int64_t pos = p->d->q_offset + t;
        if (pos >= 0 && pos < rows * cols) {
            const int64_t r = pos / cols, c = pos % cols;
            id[t] = (((r % dr) * dc + c % dc) * nR + (r / dr) / ph) * nC + (c / dc) / pw;
        } else {
            id[t] = n_grid + t / tq;
        }
        start[id[t] + 1]++;
    }
    for (int64_t i = 0; i < n_ids; i++) start[i + 1] += start[i];
    int64_t n_tiles = 0, max_rows = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        if (start[i + 1] == start[i]) continue;
        tile_start[n_tiles++] = start[i];
        if (start[i + 1] - start[i] > max_rows) max_rows = start[i + 1] - start[i];
    }
    tile_start[n_tiles] = Tq;
    for (int64_t t = 0; t < Tq; t++) perm[start[id[t]]++] = (int32_t)t; /* stable: rows ascend in a tile */
    p->perm = perm;
    p->tile_start = tile_start;
    p->n_tiles = n_tiles;
    p->max_rows = max_rows;
    return HEED_OK;
}

/* With fewer tasks than threads can share evenly (decode, few heads), splits the keys into parts
 * with equal numbers of visible keys (the union over all query rows and heads, from the mask's row
 * spans). Sets p->n_split and p->split_at; *buf owns the boundaries. */
static heed_status plan_splits(heed_ctx *ctx, fwd_plan *p, void **buf)
{
    const attn_dims *a = &p->a;
    const int64_t n_base = a->B * a->Hkv * p->n_tiles, want = 4 * (int64_t)ctx->n_threads;
    p->n_split = 1;
    p->split_at = NULL;
    if (ctx->n_threads == 1 || n_base >= want || a->Tk < 2 * FWD_MIN_SPLIT_KEYS) return HEED_OK;
    const size_t bytes = (size_t)(a->Tk + 1) * sizeof(int32_t) + (size_t)p->span_cap * sizeof(heed_span) +
                         (size_t)(want + 1) * sizeof(int64_t);
    char *mem = heed_alloc(bytes);
    if (!mem) return heed_fail(ctx, HEED_ERR_NOMEM, "attention forward: cannot allocate %zu bytes", bytes);
    *buf = mem;
    heed_span *spans = (heed_span *)(void *)mem; /* 8-byte members first, then the int32 counts */
    int64_t *split_at = (int64_t *)(void *)(spans + p->span_cap);
    int32_t *cnt = (int32_t *)(void *)(split_at + want + 1);
    memset(cnt, 0, (size_t)(a->Tk + 1) * sizeof(int32_t));
    const int64_t ko = p->d->k_offset;
    for (int64_t h = 0; h < a->Hq; h++)
        for (int64_t t = 0; t < a->Tq; t++) {
            const int64_t ns = heed_mask_row_spans(spans, &p->d->mask, p->d->q_offset + t, h, ko, ko + a->Tk);
            for (int64_t s = 0; s < ns; s++) {
                cnt[spans[s].lo - ko]++;
                cnt[spans[s].hi - ko]--;
            }
        }
    int64_t total = 0;
    for (int64_t j = 0, c = 0; j < a->Tk; j++) {
        c += cnt[j];
        cnt[j] = c > 0;
        total += cnt[j];
    }
    int64_t n_split = (want + n_base - 1) / n_base;
    if (n_split > total / FWD_MIN_SPLIT_KEYS) n_split = total / FWD_MIN_SPLIT_KEYS;
    if (n_split <= 1) return HEED_OK;
    split_at[0] = 0;
    int64_t s = 1, seen = 0;
    for (int64_t j = 0; j < a->Tk && s < n_split; j++) {
        seen += cnt[j];
        if (seen * n_split >= s * total) split_at[s++] = j + 1;
    }
    split_at[n_split] = a->Tk;
    p->n_split = n_split;
    p->split_at = split_at;
    return HEED_OK;
}

static void run(heed_ctx *ctx, fwd_plan *p)
{
    heed_task_fn fn = attn_fwd_task_scalar;
    if (heed_ctx_isa(ctx) == HEED_ISA_AVX512) fn = attn_fwd_task_avx512;
    else if (heed_ctx_isa(ctx) == HEED_ISA_AVX2) fn = attn_fwd_task_avx2;
    heed_parallel(ctx, p->a.B * p->a.Hkv * p->n_tiles * p->n_split, fn, p);
}

heed_status heed_attn_forward(heed_ctx *ctx, heed_tensor *o, float *lse, const heed_attn_desc *d)
{
    fwd_plan p;
    memset(&p, 0, sizeof p);
    heed_status st = attn_resolve(ctx, &p.a, d);
    if (st == HEED_OK) st = attn_check_fast(ctx, d);
    if (st != HEED_OK) return st;
    const attn_dims *a = &p.a;
    if ((st = attn_check_view(ctx, "o", o, 1, a->B, a->Hq, a->Tq, a->Dv)) != HEED_OK) return st;
    if (a->B == 0 || a->Hq == 0 || a->Tq == 0) return HEED_OK;
    p.ctx = ctx;
    p.d = d;
    p.o = o;
    p.lse = lse;
    p.span_cap = heed_mask_max_spans(&d->mask, d->k_offset + a->Tk);
    if (p.span_cap < 1) p.span_cap = 1;
    p.tq = FWD_ROWS / a->G > 1 ? FWD_ROWS / a->G : 1;

    void *patch_buf = NULL, *split_buf = NULL;
    void *parts = NULL;
    const heed_mask *m = &d->mask;
    if (m->kind == HEED_MASK_NEIGHBOR_2D) {
        st = plan_patches(ctx, &p, &patch_buf, m->grid[0], m->grid[1], m->dilation[0], m->dilation[1], 4, 4);
    } else if (m->kind == HEED_MASK_NEIGHBOR_1D && m->dilation[0] > 1) {
        st = plan_patches(ctx, &p, &patch_buf, 1, m->seq_len, 1, m->dilation[0], 1, p.tq);
    } else {
        p.n_tiles = (a->Tq + p.tq - 1) / p.tq;
        p.max_rows = a->Tq < p.tq ? a->Tq : p.tq;
    }
    p.kb = a->G * p.max_rows <= FWD_DECODE_ROWS ? FWD_KB_DECODE : FWD_KB;
    if (st == HEED_OK) st = plan_splits(ctx, &p, &split_buf);
    if (st == HEED_OK) st = heed_scratch_reserve(ctx, fwd_carve(NULL, NULL, &p));
    const int64_t n_rows = a->B * a->Hq * a->Tq;
    if (st == HEED_OK && p.n_split > 1) {
        const size_t head = (size_t)p.n_split * (sizeof(heed_tensor) + sizeof(float *));
        const size_t bytes = head + (size_t)(p.n_split * n_rows * (a->Dv + 1)) * sizeof(float);
        parts = heed_alloc(bytes);
        if (!parts) st = heed_fail(ctx, HEED_ERR_NOMEM, "attention forward: cannot allocate %zu bytes", bytes);
    }
    if (st == HEED_OK && p.n_split > 1) {
        heed_tensor *views = parts;
        const float **lses = (const float **)(void *)(views + p.n_split);
        p.part_o = (float *)(void *)(lses + p.n_split);
        p.part_lse = p.part_o + p.n_split * n_rows * a->Dv;
        for (int64_t s = 0; s < p.n_split; s++) {
            views[s] = heed_tensor_4d(p.part_o + s * n_rows * a->Dv, HEED_F32, a->B, a->Hq, a->Tq, a->Dv);
            lses[s] = p.part_lse + s * n_rows;
        }
        run(ctx, &p);
        st = heed_attn_merge(ctx, o, lse, views, lses, (int)p.n_split, d->sink_logit, d->norm);
    } else if (st == HEED_OK) {
        run(ctx, &p);
    }
    heed_free(parts);
    heed_free(split_buf);
    heed_free(patch_buf);
    return st;
}
