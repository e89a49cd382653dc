/* fwd_kernel.h — the fast forward attention kernel (flash-attention style: online softmax over key
 * blocks, no Tq x Tk matrix), written once over the vector abstraction of core/simd.h and compiled
 * per instruction set by fwd_scalar.c, fwd_avx2.c and fwd_avx512.c. The plan (fwd.c) is shared. */
#ifndef HEED_ATTN_FWD_PLAN_H
#define HEED_ATTN_FWD_PLAN_H

#include "attn/attn.h"

/* Keys per block: a block's K and V rows as f32 (16 KB each at D = 128) stay in L1/L2 while every
 * query row of the tile uses them. */
#define FWD_KB 32
/* Keys per block when every tile has at most FWD_DECODE_ROWS rows (decode; the FWD_MR of every
 * instruction set, so K and V are read in place): runs of 64 KB of K, then of V (D = 128, f16) stream
 * faster than the two alternating every 8 KB. */
#define FWD_KB_DECODE 256
#define FWD_DECODE_ROWS 4
/* Query rows (all heads of a GQA group together) aimed for per tile. */
#define FWD_ROWS 64
/* A tile keeps every row's spans (for masking its partial blocks) when they fit in this many. */
#define FWD_SPAN_CACHE 32768

/* One call, planned by fwd.c. A task is (b, kv head, query tile, key split). */
typedef struct fwd_plan {
    heed_ctx *ctx;
    const heed_attn_desc *d;
    attn_dims a;
    const heed_tensor *o;       /* [B, Hq, Tq, Dv] destination when n_split == 1 */
    float *lse;                 /* [B, Hq, Tq] or NULL, when n_split == 1 */
    float *part_o, *part_lse;   /* [n_split, B, Hq, Tq, Dv], [n_split, B, Hq, Tq] when n_split > 1 */
    int64_t n_tiles, n_split;
    const int64_t *split_at;    /* [n_split + 1] key-row boundaries of the splits, or NULL */
    int64_t tq;                 /* query rows per tile when perm == NULL */
    const int32_t *perm;        /* [Tq] query rows in tile order (neighborhood patches), or NULL */
    const int64_t *tile_start;  /* [n_tiles + 1] into perm, when perm != NULL */
    int64_t max_rows;           /* most query rows in one tile */
    int64_t kb;                 /* keys per block: FWD_KB, or FWD_KB_DECODE */
    int64_t span_cap;           /* heed_mask_max_spans for this call */
} fwd_plan;

/* What one query row of a tile needs. */
typedef struct fwd_row {
    int64_t t, h, pos;   /* query row, query head, absolute position */
    const float *bias;   /* bias row [Tk], or NULL */
    float slope;         /* ALiBi slope, 0 without ALiBi */
    const heed_span *sp; /* its visible spans in the task's key range, when the tile keeps them */
    int64_t ns;
} fwd_row;

/* A thread's scratch, carved from heed_scratch; sizes from the plan (R = G * max_rows rows,
 * row lengths padded to 16 floats so every instruction set fits). */
typedef struct fwd_scratch {
    float *q;            /* [R, Dp]   queries, premultiplied by scale and temperature */
    float *o;            /* [R, Dvp]  unnormalised output accumulators */
    float *s;            /* [R, KB]   scores, then probabilities, of the current block */
    float *m, *l, *alpha;/* [R]       running max, running sum, rescale of the current block */
    float *k, *v;        /* [KB, Dp], [KB, Dvp] the block's K and V rows converted to f32 */
    float *kt;           /* [Dp, KBp] the block's keys as f32 columns (tiles of more than FWD_MR rows) */
    float *kpos;         /* [KB]      key positions (ALiBi) */
    const void **kp, **vp;  /* [KB]   row of each key of the block: packed f32, or in place */
    const void **pk;     /* [KB]      K rows of the next block, to prefetch (decode) */
    fwd_row *rows;       /* [R] */
    heed_span *spans;    /* [R, span_cap] every row's spans, or [span_cap] one at a time */
    int32_t *cnt, *idx;  /* [Tk + 1] rows seeing each key (difference array), [Tk] visible keys */
    uint8_t *full;       /* [Tk / KB + 1] block seen completely by every row */
} fwd_scratch;

static inline int64_t fwd_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Whether a tile keeps all its rows' spans (else they are generated again for each partial block). */
static inline int fwd_keeps_spans(const fwd_plan *p) { return p->a.G * p->max_rows * p->span_cap <= FWD_SPAN_CACHE; }

/* Points sc's arrays into base and returns the bytes used (sc == NULL: only the size). */
static inline size_t fwd_carve(fwd_scratch *sc, char *base, const fwd_plan *p)
{
    const int64_t R = p->a.G * p->max_rows, Dp = fwd_round_up(p->a.D, 16), Dvp = fwd_round_up(p->a.Dv, 16);
    const int64_t Tk = p->a.Tk;
    size_t off = 0;
#define FWD_TAKE(field, type, count)                                                       \
    do {                                                                                   \
        if (sc) sc->field = (type *)(void *)(base + off);                                  \
        off += ((size_t)(count) * sizeof(type) + 63) & ~(size_t)63;                        \
    } while (0)
    FWD_TAKE(q, float, R * Dp);
    FWD_TAKE(o, float, R * Dvp);
    const int64_t KB = p->kb;
    FWD_TAKE(s, float, R * KB);
    FWD_TAKE(m, float, R);
    FWD_TAKE(l, float, R);
    FWD_TAKE(alpha, float, R);
    FWD_TAKE(k, float, KB * Dp);
    FWD_TAKE(v, float, KB * Dvp);
    FWD_TAKE(kt, float, Dp * fwd_round_up(KB, 16));
    FWD_TAKE(kpos, float, KB);
    FWD_TAKE(kp, const void *, KB);
    FWD_TAKE(vp, const void *, KB);
    FWD_TAKE(pk, const void *, KB);
    FWD_TAKE(rows, fwd_row, R);
    FWD_TAKE(spans, heed_span, fwd_keeps_spans(p) ? R * p->span_cap : p->span_cap);
    FWD_TAKE(cnt, int32_t, Tk + 1);
    FWD_TAKE(idx, int32_t, Tk + 1);
    FWD_TAKE(full, uint8_t, Tk / KB + 1);
#undef FWD_TAKE
    return off;
}

/* The task functions (heed_task_fn, arg = const fwd_plan *), one per instruction set. */
void attn_fwd_task_scalar(void *arg, int64_t task, int thread);
void attn_fwd_task_avx2(void *arg, int64_t task, int thread);
void attn_fwd_task_avx512(void *arg, int64_t task, int thread);

#endif /* HEED_ATTN_FWD_PLAN_H */

/* ------------------------------------------------------------------------------------------------
 * The kernel body: compiled when the including file has defined HEED_SIMD_LEVEL (and included
 * core/simd.h), FWD_NAME(x) (x##_<isa>), FWD_MR (query rows, at most 4) and FWD_NK (key rows, at most
 * 4) of the dot-product score microkernel, FWD_NKV (vectors of key columns, at most 2) of the
 * outer-product one, and FWD_ACC, the accumulator registers of the output microkernel (rows x vectors
 * of Dv, at most 8 vectors). */
#ifdef FWD_NAME

#define FWD_INLINE static inline __attribute__((always_inline))
/* the microkernels' loops over rows, keys and vectors run a constant 1..4 times: unrolled, their
 * accumulator arrays become registers */
#define FWD_UNROLL _Pragma("GCC unroll 4")
#define FWD_UNROLL8 _Pragma("GCC unroll 8")

/* dst[0..npad) = src[0..n) as f32, zero-padded. */
static void FWD_NAME(load_row)(float *dst, const void *src, heed_dtype t, int64_t n, int64_t npad)
{
    int64_t x = 0;
    if (t == HEED_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        x = n;
    } else if (t == HEED_F16) {
        for (; x + VW <= n; x += VW) vstore(dst + x, vload_f16((const uint16_t *)src + x));
    } else {
        for (; x + VW <= n; x += VW) vstore(dst + x, vload_bf16((const uint16_t *)src + x));
    }
    for (; x < n; x++) dst[x] = heed_load_f32(src, t, x);
    for (; x < npad; x++) dst[x] = 0.0f;
}

/* Element x.. of a row of dtype kt (0 f32, 1 f16, 2 bf16) as a vector. */
FWD_INLINE vf FWD_NAME(ld)(const void *row, int64_t x, const int kt)
{
    if (kt == 1) return vload_f16((const uint16_t *)row + x);
    if (kt == 2) return vload_bf16((const uint16_t *)row + x);
    return vload((const float *)row + x);
}

/* s[r][c] = q_r . k_c for mr rows (stride ldq) and nk keys of dtype kt, over n floats (a multiple
 * of VW). */
FWD_INLINE void FWD_NAME(dot_tile)(float *s, int64_t lds, const float *q, int64_t ldq, const void *const *k,
                                   int64_t n, const int mr, const int nk, const int kt)
{
    vf acc[4][4];
    FWD_UNROLL for (int r = 0; r < mr; r++)
        FWD_UNROLL for (int c = 0; c < nk; c++) acc[r][c] = vzero();
    for (int64_t x = 0; x < n; x += VW) {
        vf kv[4];
        FWD_UNROLL for (int c = 0; c < nk; c++) kv[c] = FWD_NAME(ld)(k[c], x, kt);
        FWD_UNROLL for (int r = 0; r < mr; r++) {
            const vf qv = vload(q + r * ldq + x);
            FWD_UNROLL for (int c = 0; c < nk; c++) acc[r][c] = vfma(qv, kv[c], acc[r][c]);
        }
    }
    FWD_UNROLL for (int r = 0; r < mr; r++) { /* a row's nk sums at once */
        float t[4];
        vhsum4(t, acc[r][0], nk > 1 ? acc[r][1] : vzero(), nk > 2 ? acc[r][2] : vzero(), nk > 3 ? acc[r][3] : vzero());
        FWD_UNROLL for (int c = 0; c < nk; c++) s[r * lds + c] = t[c];
    }
}

/* Asks for the cache lines of bytes [row, row + nbytes) ahead of their use. */
FWD_INLINE void FWD_NAME(prefetch)(const void *row, int64_t nbytes)
{
    for (int64_t x = 0; x < nbytes; x += 64) __builtin_prefetch((const char *)row + x, 0, 0);
}

/* kt [D, ldkt]: column j < n holds key row kr[j] (dtype t, code kc: 0 f32, 1 f16, 2 bf16; D elements)
 * as f32, columns n..nvec (a multiple of VW) zero. With an in-register transpose (AVX2) VW x VW blocks
 * at once; otherwise each row is widened into tmp [Dq] and scattered down its column. */
static void FWD_NAME(pack_cols)(float *kt, int64_t ldkt, const void *const *kr, int kc, heed_dtype t, int64_t n,
                                int64_t nvec, int64_t D, float *tmp)
{
    int64_t x0 = 0; /* columns [0, x0) complete, padding included */
#ifdef HEED_SIMD_TRANSPOSE
    x0 = D / VW * VW;
    for (int64_t j = 0; j < nvec; j += VW)
        for (int64_t x = 0; x < x0; x += VW) {
            vf r[VW];
            for (int i = 0; i < VW; i++) r[i] = j + i < n ? FWD_NAME(ld)(kr[j + i], x, kc) : vzero();
            vtranspose(r);
            for (int i = 0; i < VW; i++) vstore(kt + (x + i) * ldkt + j, r[i]);
        }
    for (int64_t x = x0; x < D; x++)
        for (int64_t j = 0; j < n; j++) kt[x * ldkt + j] = heed_load_f32(kr[j], t, x);
    (void)tmp;
#else
    (void)kc;
    for (int64_t j = 0; j < n; j++) {
        FWD_NAME(load_row)(tmp, kr[j], t, D, D);
        for (int64_t x = 0; x < D; x++) kt[x * ldkt + j] = tmp[x];
    }
#endif
    for (int64_t x = x0; x < D; x++)
        for (int64_t j = n; j < nvec; j++) kt[x * ldkt + j] = 0.0f;
}

/* s[r][c VW .. (c + 1) VW) = q_r . (keys of columns c VW ..) for mr rows and nv vectors of keys, with
 * the keys as columns of kt [n, ldkt] (n floats of each query): an outer-product update per element of
 * q, so that no score needs a horizontal sum. */
FWD_INLINE void FWD_NAME(dot_t_tile)(float *s, int64_t lds, const float *q, int64_t ldq, const float *kt,
                                     int64_t ldkt, int64_t n, const int mr, const int nv)
{
    vf acc[4][FWD_NKV];
    FWD_UNROLL for (int r = 0; r < mr; r++)
        FWD_UNROLL for (int c = 0; c < nv; c++) acc[r][c] = vzero();
    for (int64_t x = 0; x < n; x++) {
        vf kv[FWD_NKV];
        FWD_UNROLL for (int c = 0; c < nv; c++) kv[c] = vload(kt + x * ldkt + c * VW);
        FWD_UNROLL for (int r = 0; r < mr; r++) {
            const vf qv = vset1(q[r * ldq + x]);
            FWD_UNROLL for (int c = 0; c < nv; c++) acc[r][c] = vfma(qv, kv[c], acc[r][c]);
        }
    }
    FWD_UNROLL for (int r = 0; r < mr; r++)
        FWD_UNROLL for (int c = 0; c < nv; c++) vstore(s + r * lds + c * VW, acc[r][c]);
}

/* o[r][x0 .. x0 + nv VW) = alpha[r] o[r][..] + sum_j p[r][j] v_j[..] for mr rows and n keys; while
 * key j < pf_n is added, the row pf[j] (pf_bytes long) is prefetched (pf == NULL: none). */
FWD_INLINE void FWD_NAME(pv_tile)(float *o, int64_t ldo, const float *alpha, const float *p, int64_t ldp,
                                  const void *const *v, int64_t n, int64_t x0, const int mr, const int nv,
                                  const int kt, const void *const *pf, int64_t pf_n, int64_t pf_bytes)
{
    vf acc[4][8];
    FWD_UNROLL8 for (int r = 0; r < mr; r++) {
        const vf al = vset1(alpha[r]);
        FWD_UNROLL8 for (int c = 0; c < nv; c++) acc[r][c] = vmul(vload(o + r * ldo + x0 + c * VW), al);
    }
    for (int64_t j = 0; j < n; j++) {
        if (pf && j < pf_n) FWD_NAME(prefetch)(pf[j], pf_bytes);
        vf vv[8];
        FWD_UNROLL8 for (int c = 0; c < nv; c++) vv[c] = FWD_NAME(ld)(v[j], x0 + c * VW, kt);
        FWD_UNROLL8 for (int r = 0; r < mr; r++) {
            const vf pr = vset1(p[r * ldp + j]);
            FWD_UNROLL8 for (int c = 0; c < nv; c++) acc[r][c] = vfma(pr, vv[c], acc[r][c]);
        }
    }
    FWD_UNROLL8 for (int r = 0; r < mr; r++)
        FWD_UNROLL8 for (int c = 0; c < nv; c++) vstore(o + r * ldo + x0 + c * VW, acc[r][c]);
}

/* Every (dtype, rows, columns) shape of a microkernel the instruction set's blocking can ask for, as
 * a switch (dot: kt * 64 + rows * 8 + keys; pv: kt * 128 + rows * 16 + vectors); shapes beyond
 * the blocking compile to nothing. */
#define FWD_CASE4(F, T, A) F(T, A, 1) F(T, A, 2) F(T, A, 3) F(T, A, 4)
#define FWD_CASE8(F, T, A) FWD_CASE4(F, T, A) F(T, A, 5) F(T, A, 6) F(T, A, 7) F(T, A, 8)
#define FWD_CASES(F, T) FWD_CASE4(F, T, 1) FWD_CASE4(F, T, 2) FWD_CASE4(F, T, 3) FWD_CASE4(F, T, 4)
#define FWD_CASES8(F, T) FWD_CASE8(F, T, 1) FWD_CASE8(F, T, 2) FWD_CASE8(F, T, 3) FWD_CASE8(F, T, 4)

static void FWD_NAME(dot)(float *s, int64_t lds, const float *q, int64_t ldq, const void *const *k, int64_t n,
                          int mr, int nk, int kt)
{
#define FWD_DOT(T, A, B)                                                                                   \
    case T * 64 + A * 8 + B:                                                                               \
        if (A <= FWD_MR && B <= FWD_NK) FWD_NAME(dot_tile)(s, lds, q, ldq, k, n, A, B, T);                 \
        break;
    switch (kt * 64 + mr * 8 + nk) { FWD_CASES(FWD_DOT, 0) FWD_CASES(FWD_DOT, 1) FWD_CASES(FWD_DOT, 2) }
#undef FWD_DOT
}

static void FWD_NAME(dot_t)(float *s, int64_t lds, const float *q, int64_t ldq, const float *kt, int64_t ldkt,
                            int64_t n, int mr, int nv)
{
#define FWD_DOT_T(A, B)                                                                                    \
    case A * 8 + B:                                                                                        \
        if (A <= FWD_MR && B <= FWD_NKV) FWD_NAME(dot_t_tile)(s, lds, q, ldq, kt, ldkt, n, A, B);         \
        break;
    switch (mr * 8 + nv) {
        FWD_DOT_T(1, 1) FWD_DOT_T(1, 2) FWD_DOT_T(2, 1) FWD_DOT_T(2, 2)
        FWD_DOT_T(3, 1) FWD_DOT_T(3, 2) FWD_DOT_T(4, 1) FWD_DOT_T(4, 2)
    }
#undef FWD_DOT_T
}

static void FWD_NAME(pv)(float *o, int64_t ldo, const float *alpha, const float *p, int64_t ldp,
                         const void *const *v, int64_t n, int64_t x0, int mr, int nv, int kt,
                         const void *const *pf, int64_t pf_n, int64_t pf_bytes)
{
#define FWD_PV(T, A, B)                                                                                    \
    case T * 128 + A * 16 + B:                                                                               \
        if (A <= FWD_MR && A * B <= FWD_ACC)                                                               \
            FWD_NAME(pv_tile)(o, ldo, alpha, p, ldp, v, n, x0, A, B, T, pf, pf_n, pf_bytes);               \
        break;
    switch (kt * 128 + mr * 16 + nv) { FWD_CASES8(FWD_PV, 0) FWD_CASES8(FWD_PV, 1) FWD_CASES8(FWD_PV, 2) }
#undef FWD_PV
}

/* The first index in [from, n) of the ascending keys ix whose key is >= k (n if none); consecutive:
 * ix[i] = ix[0] + i. */
static inline int64_t FWD_NAME(key_index)(const int32_t *ix, int64_t from, int64_t n, int64_t k, int consecutive)
{
    if (consecutive) {
        const int64_t i = k - ix[0];
        return i < from ? from : i > n ? n : i;
    }
    for (int64_t len = n - from; len > 0;) { /* selects, not branches: the keys' order is data */
        const int64_t half = len / 2;
        const int less = ix[from + half] < k;
        from = less ? from + half + 1 : from;
        len = less ? len - half - 1 : half;
    }
    return from;
}

/* Turns one row's dot products s[0..n) for the block's keys ix[0..n) into probabilities (in place)
 * and updates the row's running max *m, sum *l, and the rescale *alpha of its output so far. */
static void FWD_NAME(row_block)(float *s, int64_t n, const fwd_plan *p, const fwd_row *rw, const int32_t *ix,
                                int contiguous, int full, const float *kpos, heed_span *spans, float *m,
                                float *l, float *alpha)
{
    const heed_attn_desc *d = p->d;
    const int64_t nvec = fwd_round_up(n, VW);
    for (int64_t x = n; x < nvec; x++) s[x] = 0.0f;
    if (d->softcap > 0) {
        const vf c = vset1(d->softcap), ic = vset1(1.0f / d->softcap);
        for (int64_t x = 0; x < nvec; x += VW) vstore(s + x, vmul(c, vtanh(vmul(vload(s + x), ic))));
    }
    if (d->alibi_slopes) { /* s += slope * (j - i) */
        const vf sl = vset1(rw->slope), ip = vset1((float)rw->pos);
        for (int64_t x = 0; x < nvec; x += VW) vstore(s + x, vfma(sl, vsub(vload(kpos + x), ip), vload(s + x)));
    }
    if (rw->bias) {
        int64_t x = 0;
        if (contiguous) {
            const float *br = rw->bias + ix[0];
            for (; x + VW <= n; x += VW) vstore(s + x, vadd(vload(s + x), vload(br + x)));
        }
        for (; x < n; x++) s[x] += rw->bias[ix[x]];
    }
    if (!full) { /* a partial block: hide the keys outside this row's spans */
        const int64_t ko = d->k_offset;
        const heed_span *sp = rw->sp;
        int64_t ns = rw->ns, si = 0;
        if (sp) { /* the kept spans cover the whole key range: start at the first reaching this block */
            for (int64_t hi = ns; si < hi;) {
                const int64_t mid = (si + hi) / 2;
                if (sp[mid].hi <= ko + ix[0]) si = mid + 1;
                else hi = mid;
            }
        } else {
            ns = heed_mask_row_spans(spans, &d->mask, rw->pos, rw->h, ko + ix[0], ko + ix[n - 1] + 1);
            sp = spans;
        }
        /* span by span: the block's keys before each span (from the end of the previous one) are
         * hidden; ix ascends, so each span's first and end index come from a search (arithmetic when
         * the block's keys are consecutive) */
        int64_t x = 0;
        for (; si < ns && x < n && sp[si].lo <= ko + ix[n - 1]; si++) {
            const int64_t lo = FWD_NAME(key_index)(ix, x, n, sp[si].lo - ko, contiguous);
            const int64_t hi = FWD_NAME(key_index)(ix, lo, n, sp[si].hi - ko, contiguous);
            for (; x < lo; x++) s[x] = -INFINITY;
            x = hi;
        }
        for (; x < n; x++) s[x] = -INFINITY;
    }
    for (int64_t x = n; x < nvec; x++) s[x] = -INFINITY;

    if (d->norm == HEED_NORM_SIGMOID) {
        const vf sb = vset1(p->a.sigmoid_bias);
        vf sum = vzero();
        for (int64_t x = 0; x < nvec; x += VW) {
            const vf pr = vsigmoid(vadd(vload(s + x), sb));
            vstore(s + x, pr);
            sum = vadd(sum, pr);
        }
        *l += vhsum(sum);
        *alpha = 1.0f;
        return;
    }
    vf mx = vset1(-INFINITY);
    for (int64_t x = 0; x < nvec; x += VW) mx = vmax(mx, vload(s + x));
    const float bm = vhmax(mx), mnew = bm > *m ? bm : *m;
    /* a row that has seen only hidden keys keeps max -inf; subtract 0 then so exp gives 0, not NaN */
    const float ref = mnew == -INFINITY ? 0.0f : mnew;
    const vf vref = vset1(ref);
    vf sum = vzero();
    for (int64_t x = 0; x < nvec; x += VW) {
        const vf pr = vexp(vsub(vload(s + x), vref));
        vstore(s + x, pr);
        sum = vadd(sum, pr);
    }
    *alpha = expf(*m - ref);
    *l = *l * *alpha + vhsum(sum);
    *m = mnew;
}

void FWD_NAME(attn_fwd_task)(void *arg, int64_t task, int thread)
{
    const fwd_plan *p = arg;
    const heed_attn_desc *d = p->d;
    const attn_dims *a = &p->a;
    fwd_scratch sc;
    fwd_carve(&sc, heed_scratch(p->ctx, thread), p);

    int64_t it = task;
    const int64_t split = it % p->n_split;
    it /= p->n_split;
    const int64_t tile = it % p->n_tiles;
    it /= p->n_tiles;
    const int64_t kvh = it % a->Hkv, b = it / a->Hkv;
    const int64_t klo = p->split_at ? p->split_at[split] : 0, khi = p->split_at ? p->split_at[split + 1] : a->Tk;
    const int64_t ko = d->k_offset, G = a->G, KB = p->kb;
    const int64_t D = a->D, Dv = a->Dv, Dp = fwd_round_up(D, 16), Dvp = fwd_round_up(Dv, 16);
    const int64_t Dq = fwd_round_up(D, VW), Dvq = fwd_round_up(Dv, VW); /* lengths the microkernels run */

    /* the tile's rows: all G heads of the group for each of its query rows */
    int64_t u0, nt;
    if (p->perm) {
        u0 = p->tile_start[tile];
        nt = p->tile_start[tile + 1] - u0;
    } else {
        u0 = tile * p->tq;
        nt = a->Tq - u0 < p->tq ? a->Tq - u0 : p->tq;
    }
    const int64_t R = G * nt;
    for (int64_t g = 0; g < G; g++) {
        for (int64_t u = 0; u < nt; u++) {
            const int64_t r = g * nt + u, t = p->perm ? p->perm[u0 + u] : u0 + u, h = kvh * G + g;
            fwd_row *rw = &sc.rows[r];
            rw->t = t;
            rw->h = h;
            rw->pos = d->q_offset + t;
            rw->slope = d->alibi_slopes ? d->alibi_slopes[h] : 0.0f;
            rw->bias = NULL;
            if (d->bias) {
                const heed_tensor *bt = d->bias;
                rw->bias = (const float *)heed_row(bt, bt->ne[0] == 1 ? 0 : b, bt->ne[1] == 1 ? 0 : h, t);
            }
            /* scale and the selective-attention temperature multiply every score of the row:
             * fold them into q */
            float f = a->scale;
            if (d->temp_scale) f *= 1.0f + d->temp_scale[h] * logf((float)(rw->pos + 1));
            const float *qr = heed_row(&d->q, b, h, t);
            float *qp = sc.q + r * Dp;
            for (int64_t x = 0; x < D; x++) qp[x] = qr[x] * f;
            for (int64_t x = D; x < Dq; x++) qp[x] = 0.0f;
            memset(sc.o + r * Dvp, 0, (size_t)Dvq * sizeof(float));
            sc.m[r] = -INFINITY;
            sc.l[r] = 0.0f;
        }
    }

    /* The visible keys of the tile: the union of its rows' spans, from a difference array over
     * the range they touch; a block is full when every row sees every key in it. */
    const int keep = fwd_keeps_spans(p);
    int64_t kmin = khi, kmax = klo;
    for (int64_t r = 0; r < R; r++) {
        fwd_row *rw = &sc.rows[r];
        heed_span *sp = keep ? sc.spans + r * p->span_cap : sc.spans;
        const int64_t ns = heed_mask_row_spans(sp, &d->mask, rw->pos, rw->h, ko + klo, ko + khi);
        rw->sp = keep ? sp : NULL;
        rw->ns = ns;
        if (ns == 0) continue;
        if (sp[0].lo - ko < kmin) kmin = sp[0].lo - ko;
        if (sp[ns - 1].hi - ko > kmax) kmax = sp[ns - 1].hi - ko;
    }
    int64_t nvis = 0;
    if (kmin < kmax) {
        int32_t *cnt = sc.cnt; /* cnt[j - kmin] for keys j in [kmin, kmax] */
        memset(cnt, 0, (size_t)(kmax - kmin + 1) * sizeof(int32_t));
        for (int64_t r = 0; r < R; r++) {
            const fwd_row *rw = &sc.rows[r];
            const heed_span *sp = rw->sp ? rw->sp : sc.spans;
            const int64_t ns =
                rw->sp ? rw->ns : heed_mask_row_spans(sc.spans, &d->mask, rw->pos, rw->h, ko + klo, ko + khi);
            for (int64_t si = 0; si < ns; si++) {
                cnt[sp[si].lo - ko - kmin]++;
                cnt[sp[si].hi - ko - kmin]--;
            }
        }
        int32_t c = 0;
        int64_t in_block = KB; /* keys so far in the current block (full[nvis / KB] without dividing) */
        uint8_t *full = sc.full - 1;
        for (int64_t j = kmin; j < kmax; j++) {
            c += cnt[j - kmin];
            if (c == 0) continue;
            if (in_block == KB) *++full = 1, in_block = 0;
            if (c != R) *full = 0;
            in_block++;
            sc.idx[nvis++] = (int32_t)j;
        }
    }

    /* A tile of more than FWD_MR rows converts each block's keys to f32 columns once (kt), and its scores
     * are outer products over them. A smaller tile (decode) takes dot products of key rows, read in place
     * when they are whole vectors: each key meets at most FWD_MR rows, so converting as they load costs
     * no more than a packed copy. V rows are read in place when f32 of whole vectors or in a small tile,
     * else converted to f32 once per block. */
    const int kt_src = d->k.dtype == HEED_F16 ? 1 : d->k.dtype == HEED_BF16 ? 2 : 0;
    const int vt_src = d->v.dtype == HEED_F16 ? 1 : d->v.dtype == HEED_BF16 ? 2 : 0;
    const int k_cols = R > FWD_MR;
    const int64_t KBp = fwd_round_up(KB, 16); /* row length of kt */
    const int k_direct = !k_cols && D % VW == 0;
    const int v_direct = Dv % VW == 0 && (vt_src == 0 || R <= FWD_MR);
    const int kt = k_direct ? kt_src : 0, vt = v_direct ? vt_src : 0;
    const char *kbase = heed_row(&d->k, b, kvh, 0), *vbase = heed_row(&d->v, b, kvh, 0);
    /* Decode tiles read each K and V row once, from memory: each phase prefetches what the next one
     * reads (the scores of a block its V rows, the output update the next block's K rows), so the
     * loads overlap the arithmetic instead of following it. */
    const int stream = KB == FWD_KB_DECODE;
    const int64_t k_bytes = D * (int64_t)heed_dtype_size(d->k.dtype), v_bytes = Dv * (int64_t)heed_dtype_size(d->v.dtype);
    for (int64_t k0 = 0; k0 < nvis; k0 += KB) {
        const int64_t n = nvis - k0 < KB ? nvis - k0 : KB;
        const int32_t *ix = sc.idx + k0;
        const int full = sc.full[k0 / KB], contiguous = ix[n - 1] - ix[0] == n - 1;
        for (int64_t j = 0; j < n; j++) {
            const void *kr = kbase + ix[j] * d->k.nb[2], *vr = vbase + ix[j] * d->v.nb[2];
            if (k_direct || k_cols) {
                sc.kp[j] = kr; /* read in place, or packed into kt below */
            } else {
                FWD_NAME(load_row)(sc.k + j * Dp, kr, d->k.dtype, D, Dq);
                sc.kp[j] = sc.k + j * Dp;
            }
            if (v_direct) {
                sc.vp[j] = vr;
            } else {
                FWD_NAME(load_row)(sc.v + j * Dvp, vr, d->v.dtype, Dv, Dvq);
                sc.vp[j] = sc.v + j * Dvp;
            }
        }
        const int64_t nvec = fwd_round_up(n, VW);
        if (k_cols) FWD_NAME(pack_cols)(sc.kt, KBp, sc.kp, kt_src, d->k.dtype, n, nvec, D, sc.k);
        if (d->alibi_slopes)
            for (int64_t j = 0; j < nvec; j++) sc.kpos[j] = j < n ? (float)(ko + ix[j]) : 0.0f;
        for (int64_t r = 0; k_cols && r < R; r += FWD_MR) {
            const int mr = R - r < FWD_MR ? (int)(R - r) : FWD_MR;
            for (int64_t c = 0; c < nvec; c += FWD_NKV * VW) {
                const int nv = (nvec - c) / VW < FWD_NKV ? (int)((nvec - c) / VW) : FWD_NKV;
                FWD_NAME(dot_t)(sc.s + r * KB + c, KB, sc.q + r * Dp, Dp, sc.kt + c, KBp, D, mr, nv);
            }
        }
        for (int64_t r = 0; !k_cols && r < R; r += FWD_MR) {
            const int mr = R - r < FWD_MR ? (int)(R - r) : FWD_MR;
            for (int64_t c = 0; c < n; c += FWD_NK) {
                const int nk = n - c < FWD_NK ? (int)(n - c) : FWD_NK;
                if (stream && r == 0 && v_direct)
                    for (int j = 0; j < nk; j++) FWD_NAME(prefetch)(sc.vp[c + j], v_bytes);
                FWD_NAME(dot)(sc.s + r * KB + c, KB, sc.q + r * Dp, Dp, sc.kp + c, Dq, mr, nk, kt);
            }
        }
        for (int64_t r = 0; r < R; r++)
            FWD_NAME(row_block)(sc.s + r * KB, n, p, &sc.rows[r], ix, contiguous, full, sc.kpos, sc.spans,
                                &sc.m[r], &sc.l[r], &sc.alpha[r]);
        int64_t pf_n = 0; /* keys of the next block whose K rows to prefetch */
        if (stream && k_direct && k0 + KB < nvis) {
            pf_n = nvis - k0 - KB < KB ? nvis - k0 - KB : KB;
            for (int64_t j = 0; j < pf_n; j++) sc.pk[j] = kbase + ix[KB + j] * d->k.nb[2];
        }
        for (int64_t r = 0; r < R; r += FWD_MR) {
            const int mr = R - r < FWD_MR ? (int)(R - r) : FWD_MR;
            const int nv_max = FWD_ACC / mr < 8 ? FWD_ACC / mr : 8; /* fewer rows: wider column strips */
            for (int64_t x = 0; x < Dvq; x += nv_max * VW) {
                const int nv = (Dvq - x) / VW < nv_max ? (int)((Dvq - x) / VW) : nv_max;
                FWD_NAME(pv)(sc.o + r * Dvp, Dvp, sc.alpha + r, sc.s + r * KB, KB, sc.vp, n, x, mr, nv, vt,
                             r == 0 && x == 0 && pf_n ? sc.pk : NULL, pf_n, k_bytes);
            }
        }
    }

    /* normalise and write out; a split writes its partial (no sink: the merge adds it once) */
    for (int64_t r = 0; r < R; r++) {
        const fwd_row *rw = &sc.rows[r];
        const int64_t row = (b * a->Hq + rw->h) * a->Tq + rw->t;
        float *orow, *lrow;
        if (p->n_split > 1) {
            orow = p->part_o + (split * a->B * a->Hq * a->Tq + row) * Dv;
            lrow = p->part_lse + split * a->B * a->Hq * a->Tq + row;
        } else {
            orow = heed_row(p->o, b, rw->h, rw->t);
            lrow = p->lse ? p->lse + row : NULL;
        }
        float c, lse;
        const float m = sc.m[r], l = sc.l[r];
        if (d->norm == HEED_NORM_SIGMOID) {
            c = 1.0f;
            lse = logf(l);
        } else if (d->sink_logit && p->n_split == 1) {
            const float sk = d->sink_logit[rw->h], mm = m > sk ? m : sk;
            /* no key and a sink of -inf: no mass at all (O = 0, lse = -inf), not 0/0 */
            const float e = mm == -INFINITY ? 0.0f : expf(m - mm);
            const float L = l * e + (mm == -INFINITY ? 0.0f : expf(sk - mm));
            c = L > 0 ? e / L : 0.0f;
            lse = L > 0 ? mm + logf(L) : -INFINITY;
        } else {
            c = l > 0 ? 1.0f / l : 0.0f;
            lse = l > 0 ? m + logf(l) : -INFINITY;
        }
        const float *acc = sc.o + r * Dvp;
        for (int64_t x = 0; x < Dv; x++) orow[x] = acc[x] * c;
        if (lrow) *lrow = lse;
    }
}

#endif /* FWD_NAME */
