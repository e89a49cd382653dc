/* bwd.c — the fast CPU attention backward (FlashAttention-2 math): probabilities are recomputed per
 * 64 x 64 tile from the saved lse, row spans decide which tiles exist, and two race-free passes over
 * the context's threads write dK/dV (one task per key block) and dQ (one task per query block). */
#define BWD_KERNELS attn_bwd_kernels_scalar
#define BWD_VBYTES 16
#include "attn/bwd_body.h"

#include <math.h>

#define KB ATTN_BWD_KB

/* One backward call, shared read-only by every task (except the per-task slots of the partials). */
typedef struct bwd_job {
    const heed_attn_desc *d;
    const attn_dims *a;
    const attn_bwd_kernels *kern;
    heed_attn_grads *g;
    const heed_tensor *o, *d_o;
    const float *lse;     /* [B, Hq, Tq] (softmax) */
    float *drow;          /* [B, Hq, Tq] D = dO.O (softmax) */
    double *dsink_part;   /* [B, Hq] */
    double *dtemp_part;   /* [B, Hkv, nkb, G] */
    uint8_t *map;         /* [Hq][map_stride] bits: tile (qb, kb) of head h has a visible key (tile_live) */
    int64_t nkb, nqb, max_spans, map_stride;
    heed_ctx *ctx;
} bwd_job;

/* A thread's scratch, carved from heed_scratch. Rows of a tile are the visible query rows only. */
typedef struct bwd_work {
    float *kt, *vt;          /* [D][KB], [Dv][KB]: the key block transposed, zero past its end */
    float *dkt, *dvt;        /* [D][KB], [Dv][KB]: dK, dV of the key block, transposed (pass 1) */
    float *dqt;              /* [D][KB]: dQ of the query block, transposed (pass 2) */
    float *p, *ds;           /* [KB][KB]: scores then probabilities (pass 2: dS^T); dP then dL/d(q.k) */
    const float **qrow;      /* [KB] */
    const float **dorow;     /* [KB] */
    const float **krow;      /* [KB]: the key block's rows in d->k */
    int64_t *trow;           /* [KB]: the row index t of each tile row */
    int64_t *nspan;          /* [KB] */
    int32_t *vis;            /* [KB]: -1 where the current row sees the key */
    float *bias, *dist;      /* [KB]: the current row's bias, and i - key position (ALiBi) */
    heed_span *spans;        /* [KB][max_spans] */
} bwd_work;

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Points w's arrays into base and returns the bytes they take (base == NULL: only the size). */
static size_t work_carve(bwd_work *w, char *base, const attn_dims *a, int64_t max_spans)
{
    const size_t f = sizeof(float), D = (size_t)a->D, Dv = (size_t)a->Dv;
    size_t off = 0;
#define CARVE(field, bytes) (w->field = (void *)(base ? base + off : NULL), off += up64(bytes))
    CARVE(kt, D * KB * f);
    CARVE(vt, Dv * KB * f);
    CARVE(dkt, D * KB * f);
    CARVE(dvt, Dv * KB * f);
    CARVE(dqt, D * KB * f);
    CARVE(p, KB * KB * f);
    CARVE(ds, KB * KB * f);
    CARVE(qrow, KB * sizeof(void *));
    CARVE(dorow, KB * sizeof(void *));
    CARVE(krow, KB * sizeof(void *));
    CARVE(trow, KB * sizeof(int64_t));
    CARVE(nspan, KB * sizeof(int64_t));
    CARVE(vis, KB * sizeof(int32_t));
    CARVE(bias, KB * f);
    CARVE(dist, KB * f);
    CARVE(spans, (size_t)KB * (size_t)max_spans * sizeof(heed_span));
#undef CARVE
    return off;
}

/* Loads keys j0 .. j0+m of (b, hk) into kt, vt (transposed, zero-padded to KB) and their rows into krow. */
static void load_keys(const bwd_job *J, bwd_work *w, int64_t b, int64_t hk, int64_t j0, int64_t m)
{
    const heed_attn_desc *d = J->d;
    const int64_t D = J->a->D, Dv = J->a->Dv;
    memset(w->kt, 0, (size_t)(D * KB) * sizeof(float));
    memset(w->vt, 0, (size_t)(Dv * KB) * sizeof(float));
    for (int64_t jj = 0; jj < m; jj++) {
        const float *kr = heed_row(&d->k, b, hk, j0 + jj), *vr = heed_row(&d->v, b, hk, j0 + jj);
        for (int64_t e = 0; e < D; e++) w->kt[e * KB + jj] = kr[e];
        for (int64_t e = 0; e < Dv; e++) w->vt[e * KB + jj] = vr[e];
        w->krow[jj] = kr;
    }
}

/* Masks do not depend on the batch, so one bit per (head, query block, key block) tells every task
 * which tiles to skip without asking for the spans of each of their rows. */
static int tile_live(const bwd_job *J, int64_t h, int64_t qb, int64_t kb)
{
    const int64_t bit = qb * J->nkb + kb;
    return J->map[h * J->map_stride + bit / 8] >> (bit % 8) & 1;
}

/* Map pass, one task per query head: one span query per row over all keys. */
static void task_map(void *arg, int64_t h, int thread)
{
    const bwd_job *J = arg;
    const heed_attn_desc *d = J->d;
    bwd_work w;
    work_carve(&w, heed_scratch(J->ctx, thread), J->a, J->max_spans);
    uint8_t *map = J->map + h * J->map_stride;
    for (int64_t t = 0; t < J->a->Tq; t++) {
        const int64_t ns = heed_mask_row_spans(w.spans, &d->mask, d->q_offset + t, h, d->k_offset, d->k_offset + J->a->Tk);
        for (int64_t k = 0; k < ns; k++)
            for (int64_t kb = (w.spans[k].lo - d->k_offset) / KB; kb <= (w.spans[k].hi - 1 - d->k_offset) / KB; kb++) {
                const int64_t bit = t / KB * J->nkb + kb;
                map[bit / 8] |= (uint8_t)(1u << (bit % 8));
            }
    }
}

/* Gathers the query rows t0..t1 of (b, h) that see any of the keys j0..j1, with their spans.
 * Returns how many. Softmax rows with lse = -inf see nothing (every key scored -inf). */
static int64_t gather_rows(const bwd_job *J, bwd_work *w, int64_t b, int64_t h, int64_t t0, int64_t t1,
                           int64_t j0, int64_t j1)
{
    const heed_attn_desc *d = J->d;
    const attn_dims *a = J->a;
    int64_t n = 0;
    for (int64_t t = t0; t < t1; t++) {
        if (d->norm == HEED_NORM_SOFTMAX && J->lse[(b * a->Hq + h) * a->Tq + t] == -INFINITY) continue;
        heed_span *sp = w->spans + n * J->max_spans;
        const int64_t ns = heed_mask_row_spans(sp, &d->mask, d->q_offset + t, h, d->k_offset + j0, d->k_offset + j1);
        if (ns == 0) continue;
        w->nspan[n] = ns;
        w->trow[n] = t;
        w->qrow[n] = heed_row(&d->q, b, h, t);
        w->dorow[n] = heed_row(J->d_o, b, h, t);
        n++;
    }
    return n;
}

/* The tile of the n gathered rows of (b, h) against keys j0 .. j0+m (kt, vt loaded): leaves in w->p
 * the probabilities and in w->ds dL/d(q.k), both zero where a key is hidden, and adds the tile's
 * share of dL/d temp_scale[h] to *dtemp. The chain rule undoes heed.h's score steps in reverse. */
static void tile(const bwd_job *J, bwd_work *w, int64_t b, int64_t h, int64_t n, int64_t j0, int64_t m,
                 double *dtemp)
{
    const heed_attn_desc *d = J->d;
    const attn_dims *a = J->a;
    const int softmax = d->norm == HEED_NORM_SOFTMAX;
    const float temp = d->temp_scale ? d->temp_scale[h] : 0.0f;
    const float slope = d->alibi_slopes ? d->alibi_slopes[h] : 0.0f;
    const heed_tensor *bt = d->bias;
    J->kern->mm_nt(w->p, w->qrow, w->kt, n, a->D);
    J->kern->mm_nt(w->ds, w->dorow, w->vt, n, a->Dv);
    for (int64_t r = 0; r < n; r++) {
        const int64_t t = w->trow[r], i = d->q_offset + t, row = (b * a->Hq + h) * a->Tq + t;
        const float logi = (float)log((double)(i + 1));
        const attn_bwd_row ra = {.scale = a->scale, .tf = d->temp_scale ? 1.0f + temp * logi : 1.0f,
                                 .cap = d->softcap, .slope = slope, .lse = softmax ? J->lse[row] : 0.0f,
                                 .drow = softmax ? J->drow[row] : 0.0f, .sigmoid_bias = a->sigmoid_bias,
                                 .softmax = softmax};
        memset(w->vis, 0, KB * sizeof(int32_t));
        const heed_span *sp = w->spans + r * J->max_spans;
        for (int64_t k = 0; k < w->nspan[r]; k++)
            for (int64_t jj = sp[k].lo - d->k_offset - j0; jj < sp[k].hi - d->k_offset - j0; jj++) w->vis[jj] = -1;
        if (bt) {
            const float *brow = heed_row(bt, bt->ne[0] == 1 ? 0 : b, bt->ne[1] == 1 ? 0 : h, t);
            for (int64_t jj = 0; jj < KB; jj++) w->bias[jj] = jj < m ? brow[j0 + jj] : 0.0f;
        }
        if (d->alibi_slopes)
            for (int64_t jj = 0; jj < KB; jj++) w->dist[jj] = (float)(i - (d->k_offset + j0 + jj));
        const float dt = J->kern->row(w->p + r * KB, w->ds + r * KB, w->vis, bt ? w->bias : NULL,
                                      d->alibi_slopes ? w->dist : NULL, &ra);
        *dtemp += (double)dt * (double)logi;
    }
}

/* Pre-pass, one task per (b, h): D = dO.O per row and the sink logit's gradient -sum_t p_sink D. */
static void task_rows(void *arg, int64_t task, int thread)
{
    const bwd_job *J = arg;
    const attn_dims *a = J->a;
    const int64_t b = task / a->Hq, h = task % a->Hq;
    const float *sink = J->d->sink_logit;
    double acc = 0;
    for (int64_t t = 0; t < a->Tq; t++) {
        const int64_t row = (b * a->Hq + h) * a->Tq + t;
        const float *o = heed_row(J->o, b, h, t), *dO = heed_row(J->d_o, b, h, t);
        double s = 0;
        for (int64_t e = 0; e < a->Dv; e++) s += (double)o[e] * (double)dO[e];
        J->drow[row] = (float)s;
        if (sink && J->lse[row] > -INFINITY) acc -= exp((double)sink[h] - (double)J->lse[row]) * s;
    }
    J->dsink_part[task] = acc;
}

/* Pass 1, one task per (b, kv head, key block): dK and dV of the block over every query head of the
 * group and every query row, so no other task writes these rows. */
static void task_dkdv(void *arg, int64_t task, int thread)
{
    const bwd_job *J = arg;
    const attn_dims *a = J->a;
    const int64_t kb = task % J->nkb, hk = (task / J->nkb) % a->Hkv, b = task / (J->nkb * a->Hkv);
    const int64_t j0 = kb * KB, m = a->Tk - j0 < KB ? a->Tk - j0 : KB;
    bwd_work w;
    work_carve(&w, heed_scratch(J->ctx, thread), a, J->max_spans);
    load_keys(J, &w, b, hk, j0, m);
    memset(w.dkt, 0, (size_t)(a->D * KB) * sizeof(float));
    memset(w.dvt, 0, (size_t)(a->Dv * KB) * sizeof(float));
    for (int64_t hh = 0; hh < a->G; hh++) {
        const int64_t h = hk * a->G + hh;
        double dtemp = 0;
        for (int64_t qb = 0; qb < J->nqb; qb++) {
            if (!tile_live(J, h, qb, kb)) continue;
            const int64_t t0 = qb * KB, t1 = t0 + KB < a->Tq ? t0 + KB : a->Tq;
            const int64_t n = gather_rows(J, &w, b, h, t0, t1, j0, j0 + m);
            if (n == 0) continue;
            tile(J, &w, b, h, n, j0, m, &dtemp);
            J->kern->mm_tn(w.dvt, w.dorow, w.p, n, a->Dv);
            J->kern->mm_tn(w.dkt, w.qrow, w.ds, n, a->D);
        }
        J->dtemp_part[task * a->G + hh] = dtemp;
    }
    for (int64_t jj = 0; jj < m; jj++) {
        float *dk = heed_row(&J->g->dk, b, hk, j0 + jj), *dv = heed_row(&J->g->dv, b, hk, j0 + jj);
        for (int64_t e = 0; e < a->D; e++) dk[e] = w.dkt[e * KB + jj];
        for (int64_t e = 0; e < a->Dv; e++) dv[e] = w.dvt[e * KB + jj];
    }
}

/* Pass 2, one task per (b, h, query block): dQ of the block's rows over every visible key block. */
static void task_dq(void *arg, int64_t task, int thread)
{
    const bwd_job *J = arg;
    const attn_dims *a = J->a;
    const int64_t qb = task % J->nqb, h = (task / J->nqb) % a->Hq, b = task / (J->nqb * a->Hq);
    const int64_t t0 = qb * KB, t1 = t0 + KB < a->Tq ? t0 + KB : a->Tq;
    bwd_work w;
    work_carve(&w, heed_scratch(J->ctx, thread), a, J->max_spans);
    memset(w.dqt, 0, (size_t)(a->D * KB) * sizeof(float));
    double unused = 0; /* pass 1 owns dL/d temp_scale */
    for (int64_t kb = 0; kb < J->nkb; kb++) {
        if (!tile_live(J, h, qb, kb)) continue;
        const int64_t j0 = kb * KB, m = a->Tk - j0 < KB ? a->Tk - j0 : KB;
        const int64_t n = gather_rows(J, &w, b, h, t0, t1, j0, j0 + m);
        if (n == 0) continue;
        load_keys(J, &w, b, h / a->G, j0, m);
        tile(J, &w, b, h, n, j0, m, &unused);
        /* dS^T [key][row - t0] into the probability buffer, which dQ does not need */
        memset(w.p, 0, (size_t)(KB * KB) * sizeof(float));
        for (int64_t r = 0; r < n; r++)
            for (int64_t jj = 0; jj < m; jj++) w.p[jj * KB + (w.trow[r] - t0)] = w.ds[r * KB + jj];
        J->kern->mm_tn(w.dqt, w.krow, w.p, m, a->D);
    }
    for (int64_t t = t0; t < t1; t++) {
        float *dq = heed_row(&J->g->dq, b, h, t);
        for (int64_t e = 0; e < a->D; e++) dq[e] = w.dqt[e * KB + (t - t0)];
    }
}

static const attn_bwd_kernels *pick_kernels(const heed_ctx *ctx)
{
    switch (heed_ctx_isa(ctx)) {
    case HEED_ISA_AVX512: return &attn_bwd_kernels_avx512;
    case HEED_ISA_AVX2: return &attn_bwd_kernels_avx2;
    default: return &attn_bwd_kernels_scalar;
    }
}

/* Without temp_scale, d_temp_scale is the gradient at temp_scale = 0 (where training would start).
 * Partials are summed in a fixed order, so results do not depend on the thread count or schedule. */
heed_status heed_attn_backward(heed_ctx *ctx, heed_attn_grads *g, const heed_attn_desc *d,
                               const heed_tensor *o, const float *lse, const heed_tensor *d_o)
{
    if (!ctx) return HEED_ERR_INVALID;
    attn_dims a;
    heed_status s = attn_bwd_check(ctx, &a, g, d, o, lse, d_o, 0);
    if (s != HEED_OK) return s;
    bwd_job J = {.d = d, .a = &a, .kern = pick_kernels(ctx), .g = g, .o = o, .d_o = d_o, .lse = lse, .ctx = ctx};
    J.nkb = (a.Tk + KB - 1) / KB;
    J.nqb = (a.Tq + KB - 1) / KB;
    J.max_spans = heed_mask_max_spans(&d->mask, d->k_offset + a.Tk);
    if (J.max_spans < 1) J.max_spans = 1;
    const int64_t nrows = a.B * a.Hq * a.Tq, n1 = a.B * a.Hkv * J.nkb;
    const size_t part_bytes = (size_t)(a.B * a.Hq + n1 * a.G) * sizeof(double);
    J.map_stride = (J.nqb * J.nkb + 7) / 8;
    const size_t map_bytes = (size_t)(a.Hq * J.map_stride);
    void *mem = heed_alloc(part_bytes + (size_t)nrows * sizeof(float) + map_bytes + 1);
    if (!mem) return heed_fail(ctx, HEED_ERR_NOMEM, "backward: cannot allocate %lld row sums", (long long)nrows);
    J.dsink_part = mem;
    J.dtemp_part = J.dsink_part + a.B * a.Hq;
    J.drow = (float *)((char *)mem + part_bytes);
    J.map = (uint8_t *)(J.drow + nrows);
    memset(J.map, 0, map_bytes);
    bwd_work sizing;
    if ((s = heed_scratch_reserve(ctx, work_carve(&sizing, NULL, &a, J.max_spans))) != HEED_OK) {
        heed_free(mem);
        return s;
    }
    memset(J.dsink_part, 0, (size_t)(a.B * a.Hq) * sizeof(double));
    heed_parallel(ctx, a.Hq, task_map, &J);
    if (d->norm == HEED_NORM_SOFTMAX) heed_parallel(ctx, a.B * a.Hq, task_rows, &J);
    heed_parallel(ctx, n1, task_dkdv, &J);
    heed_parallel(ctx, a.B * a.Hq * J.nqb, task_dq, &J);
    for (int64_t h = 0; h < a.Hq; h++) {
        double sink = 0, temp = 0;
        const int64_t hk = h / a.G, hh = h % a.G;
        for (int64_t b = 0; b < a.B; b++) {
            sink += J.dsink_part[b * a.Hq + h];
            for (int64_t kb = 0; kb < J.nkb; kb++) temp += J.dtemp_part[((b * a.Hkv + hk) * J.nkb + kb) * a.G + hh];
        }
        if (g->d_sink_logit) g->d_sink_logit[h] = (float)sink;
        if (g->d_temp_scale) g->d_temp_scale[h] = (float)temp;
    }
    heed_free(mem);
    return HEED_OK;
}
