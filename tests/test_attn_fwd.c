/* test_attn_fwd.c — the fast forward (heed_attn_forward) against the f64 reference
 * (heed_attn_forward_ref): randomized shapes, every mask kind and score modifier, f32/f16/bf16 K/V,
 * strided views, every instruction set of this CPU, 1 and 2 threads, and the edge cases (Tq = 1 with
 * split-KV, windows wider than Tk, fully masked rows, logits near 1e4, chunked prefill).
 * Bounds: NMSE <= 1e-9 and max |err| <= 2e-5 * (1 + max |ref|) on O, |err| <= 1e-5 * (1 + |lse|) on
 * the log-sum-exp. Logits of 1e4 + O(1) lose up to ~1e-3 to f32 rounding of the scores (one ulp of
 * 1e4): NMSE <= 1e-6 and max |err| <= 2e-3 * (1 + max |ref|) there (measured 6e-8 and 4e-4). */
#include "harness.h"

#include "heed.h"

#include <math.h>
#include <string.h>

typedef struct {
    heed_ctx *ctx[2]; /* 1 and 2 threads */
    t_rng rng;
} env;

/* A tensor [n0, n1, n2, n3] of dtype t holding the values of src (f32, contiguous), laid out with
 * dims 1 and 2 swapped in memory when `swap` (a [B, T, H, D] buffer viewed as [B, H, T, D]), rows
 * padded by `pad` elements. Returns the buffer to free. */
static void *make_view(heed_tensor *out, const float *src, heed_dtype t, const int64_t ne[4], int swap, int64_t pad)
{
    const size_t es = heed_dtype_size(t);
    const int64_t row = ne[3] + pad;
    const int64_t n = ne[0] * ne[1] * ne[2] * row;
    char *buf = heed_alloc((size_t)(n > 0 ? n : 1) * es);
    memset(buf, 0xff, (size_t)(n > 0 ? n : 1) * es); /* padding holds NaN patterns: must never be read */
    out->data = buf;
    out->dtype = t;
    memcpy(out->ne, ne, sizeof out->ne);
    out->nb[3] = (int64_t)es;
    if (swap) {
        out->nb[1] = row * (int64_t)es;
        out->nb[2] = ne[1] * row * (int64_t)es;
    } else {
        out->nb[2] = row * (int64_t)es;
        out->nb[1] = ne[2] * row * (int64_t)es;
    }
    out->nb[0] = ne[1] * ne[2] * row * (int64_t)es;
    for (int64_t a = 0; a < ne[0]; a++)
        for (int64_t b = 0; b < ne[1]; b++)
            for (int64_t c = 0; c < ne[2]; c++)
                heed_convert(buf + a * out->nb[0] + b * out->nb[1] + c * out->nb[2], t,
                             src + ((a * ne[1] + b) * ne[2] + c) * ne[3], HEED_F32, (size_t)ne[3]);
    return buf;
}

/* Copies a [B, H, T, Dv] f32 view into a contiguous array. */
static void gather(float *dst, const heed_tensor *o)
{
    for (int64_t a = 0; a < o->ne[0]; a++)
        for (int64_t b = 0; b < o->ne[1]; b++)
            for (int64_t c = 0; c < o->ne[2]; c++)
                memcpy(dst + ((a * o->ne[1] + b) * o->ne[2] + c) * o->ne[3],
                       (const char *)o->data + a * o->nb[0] + b * o->nb[1] + c * o->nb[2],
                       (size_t)o->ne[3] * sizeof(float));
}

typedef struct {
    int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
    heed_dtype kv;
    int swap, pad;
    float qscale;      /* magnitude of q (1e4-scale logits test) */
    double nmse_bound; /* on O */
    double mabs_bound; /* on O, relative to 1 + max |O|; 0: 2e-5 */
} shape;

/* Runs d with o/lse computed by the reference, then by every ISA x thread count, and compares. */
static void compare(env *e, const shape *s, heed_attn_desc *d, const char *what)
{
    const int64_t nq = s->B * s->Hq * s->Tq, no = nq * s->Dv;
    float *q32 = malloc((size_t)(nq * s->D) * sizeof(float));
    float *k32 = malloc((size_t)(s->B * s->Hkv * s->Tk * s->D + 1) * sizeof(float));
    float *v32 = malloc((size_t)(s->B * s->Hkv * s->Tk * s->Dv + 1) * sizeof(float));
    t_fill_normal(&e->rng, q32, nq * s->D, s->qscale);
    t_fill_normal(&e->rng, k32, s->B * s->Hkv * s->Tk * s->D, 1.0f);
    t_fill_normal(&e->rng, v32, s->B * s->Hkv * s->Tk * s->Dv, 1.0f);
    const int64_t qne[4] = {s->B, s->Hq, s->Tq, s->D}, kne[4] = {s->B, s->Hkv, s->Tk, s->D};
    const int64_t vne[4] = {s->B, s->Hkv, s->Tk, s->Dv}, one[4] = {s->B, s->Hq, s->Tq, s->Dv};
    void *qb = make_view(&d->q, q32, HEED_F32, qne, s->swap, s->pad);
    void *kb = make_view(&d->k, k32, s->kv, kne, s->swap, s->pad);
    void *vb = make_view(&d->v, v32, s->kv, vne, !s->swap, s->pad);
    float *zeros = calloc((size_t)(no + 1), sizeof(float));
    heed_tensor o;
    void *ob = make_view(&o, zeros, HEED_F32, one, s->swap, s->pad);
    float *o_ref = malloc((size_t)(no + 1) * sizeof(float)), *o_got = malloc((size_t)(no + 1) * sizeof(float));
    float *lse_ref = malloc((size_t)(nq + 1) * sizeof(float)), *lse_got = malloc((size_t)(nq + 1) * sizeof(float));

    heed_status st = heed_attn_forward_ref(e->ctx[0], &o, lse_ref, d);
    CHECK(st == HEED_OK, "%s: reference failed: %s", what, heed_ctx_error(e->ctx[0]));
    gather(o_ref, &o);
    double omax = 0;
    for (int64_t i = 0; i < no; i++) omax = fmax(omax, fabs(o_ref[i]));

    for (int isa = 0; st == HEED_OK && isa <= (int)heed_cpu_isa(); isa++) {
        for (int th = 0; th < 2; th++) {
            heed_ctx *ctx = e->ctx[th];
            CHECK_OK(ctx, heed_ctx_set_isa(ctx, (heed_isa)isa));
            memset(ob, 0xff, (size_t)(s->B * s->Hq * s->Tq * (s->Dv + s->pad)) * sizeof(float)); /* NaN */
            for (int64_t i = 0; i < nq; i++) lse_got[i] = NAN;
            st = heed_attn_forward(ctx, &o, th ? lse_got : NULL, d); /* lse optional: only asked for on 2 threads */
            CHECK(st == HEED_OK, "%s [%s, %d thr]: %s", what, heed_isa_name((heed_isa)isa), th + 1,
                  heed_ctx_error(ctx));
            if (st != HEED_OK) break;
            gather(o_got, &o);
            const double nmse = t_nmse(o_got, o_ref, no), mabs = t_max_abs(o_got, o_ref, no);
            CHECK(nmse <= s->nmse_bound && mabs <= (s->mabs_bound > 0 ? s->mabs_bound : 2e-5) * (1 + omax),
                  "%s [%s, %d thr]: O nmse %.3g max abs %.3g (max |O| %.3g)", what, heed_isa_name((heed_isa)isa),
                  th + 1, nmse, mabs, omax);
            if (!th) continue;
            int bad = 0;
            for (int64_t i = 0; i < nq && !bad; i++) {
                if (isinf(lse_ref[i]) && lse_ref[i] < 0) bad = !(isinf(lse_got[i]) && lse_got[i] < 0);
                else bad = !(fabs(lse_got[i] - lse_ref[i]) <= 1e-5 * (1 + fabs(lse_ref[i])));
                if (bad)
                    CHECK(0, "%s [%s]: lse[%lld] = %.9g, reference %.9g", what, heed_isa_name((heed_isa)isa),
                          (long long)i, lse_got[i], lse_ref[i]);
            }
        }
    }
    for (int th = 0; th < 2; th++) heed_ctx_set_isa(e->ctx[th], heed_cpu_isa());
    free(q32), free(k32), free(v32), free(zeros), free(o_ref), free(o_got), free(lse_ref), free(lse_got);
    heed_free(qb), heed_free(kb), heed_free(vb), heed_free(ob);
}

static int64_t odd_upto(t_rng *r, int64_t hi) { return 2 * t_int(r, 0, (hi - 1) / 2) + 1; }

/* A random valid mask of the given kind for Tq queries at q_offset and Tk keys (NEIGHBOR_2D: the
 * caller sets the grid). */
static void random_mask(heed_mask *m, t_rng *r, heed_mask_kind kind, const shape *s, int64_t q_offset,
                        int32_t *bptr, int32_t *bidx)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    switch (kind) {
    case HEED_MASK_WINDOW:
        m->left = t_int(r, 0, 3) == 0 ? -1 : t_int(r, 0, s->Tk + 4);
        m->right = t_int(r, 0, 2) == 0 ? t_int(r, -1, 4) : 0;
        m->n_sink = t_int(r, 0, 4);
        break;
    case HEED_MASK_PREFIX_BIDIR:
        m->prefix_begin = t_int(r, 0, s->Tk / 2);
        m->prefix_end = m->prefix_begin + t_int(r, 0, s->Tk);
        break;
    case HEED_MASK_NEIGHBOR_1D:
        m->dilation[0] = (int32_t)t_int(r, 1, s->Tk < 3 ? s->Tk : 3);
        m->seq_len = s->Tk;
        m->kernel[0] = (int32_t)odd_upto(r, s->Tk / m->dilation[0]);
        break;
    case HEED_MASK_S2:
        m->block = (int32_t)t_int(r, 1, 8);
        m->local_blocks = (int32_t)t_int(r, 1, 3);
        m->vert_stride = (int32_t)t_int(r, 1, 4);
        m->head_offset = (int32_t)t_int(r, 0, 3);
        break;
    case HEED_MASK_BLOCKS: {
        m->block = (int32_t)t_int(r, 1, 8);
        const int64_t nqb = (q_offset + s->Tq + m->block - 1) / m->block, nkb = (s->Tk + m->block - 1) / m->block;
        m->n_qblocks = nqb - t_int(r, 0, 1 < nqb ? 1 : 0); /* sometimes the last query block sees nothing */
        bptr[0] = 0;
        for (int64_t qb = 0; qb < m->n_qblocks; qb++) {
            int32_t n = bptr[qb];
            for (int64_t kb = 0; kb < nkb && kb < 64; kb++)
                if (t_int(r, 0, 2) == 0) bidx[n++] = (int32_t)kb;
            bptr[qb + 1] = n;
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

static void random_case(env *e, int idx)
{
    t_rng *r = &e->rng;
    shape s;
    memset(&s, 0, sizeof s);
    s.B = t_int(r, 1, 2);
    s.Hkv = t_int(r, 1, 3);
    s.Hq = s.Hkv * t_int(r, 1, 4);
    static const int64_t dims[] = {1, 3, 7, 8, 16, 17, 31, 64, 65, 100, 128, 200, 256};
    s.D = t_int(r, 0, 3) ? dims[t_int(r, 0, 12)] : t_int(r, 1, 256);
    s.Dv = t_int(r, 0, 2) ? s.D : dims[t_int(r, 0, 12)];
    s.kv = (heed_dtype)t_int(r, 0, 2);
    s.swap = (int)t_int(r, 0, 1);
    s.pad = (int)t_int(r, 0, 1) * 5;
    s.qscale = 1.0f;
    s.nmse_bound = 1e-9;
    const heed_mask_kind kind = (heed_mask_kind)(idx % 8);
    int64_t small = s.D > 128 ? 24 : 48;
    s.Tk = t_int(r, 1, small);
    s.Tq = t_int(r, 1, small);
    heed_attn_desc d;
    heed_attn_desc_init(&d);
    int32_t bptr[130], bidx[130 * 64];
    int64_t grid[2] = {0, 0};
    if (kind == HEED_MASK_NEIGHBOR_2D) {
        grid[0] = t_int(r, 1, 7);
        grid[1] = t_int(r, 1, 7);
        s.Tk = grid[0] * grid[1];
    }
    /* queries: a chunk of the key positions (chunked prefill) or all of them */
    if (kind == HEED_MASK_NEIGHBOR_1D || kind == HEED_MASK_NEIGHBOR_2D || t_int(r, 0, 1)) {
        s.Tq = t_int(r, 1, s.Tk);
        d.q_offset = t_int(r, 0, s.Tk - s.Tq);
    } else {
        d.q_offset = t_int(r, 0, 1) ? t_int(r, 0, 20) : 0;
        d.k_offset = t_int(r, 0, 3) == 0 ? t_int(r, 0, 10) : 0;
    }
    random_mask(&d.mask, r, kind, &s, d.q_offset, bptr, bidx);
    if (kind == HEED_MASK_NEIGHBOR_2D) {
        d.mask.grid[0] = grid[0];
        d.mask.grid[1] = grid[1];
        for (int a = 0; a < 2; a++) {
            d.mask.dilation[a] = (int32_t)t_int(r, 1, grid[a] >= 4 ? 2 : 1);
            d.mask.kernel[a] = (int32_t)odd_upto(r, grid[a] / d.mask.dilation[a]);
        }
    }
    if (t_int(r, 0, 1)) d.scale = (float)(0.05 + t_uniform(r));
    if (t_int(r, 0, 3) == 0) d.softcap = (float)(0.5 + 5 * t_uniform(r));
    float temp[16], alibi[16], sink[16];
    for (int h = 0; h < 16; h++) {
        temp[h] = (float)(0.3 * t_uniform(r));
        alibi[h] = (float)(0.2 * t_uniform(r));
        sink[h] = t_normal(r);
    }
    if (t_int(r, 0, 3) == 0) d.temp_scale = temp;
    if (t_int(r, 0, 3) == 0) d.alibi_slopes = alibi;
    d.norm = t_int(r, 0, 4) == 0 ? HEED_NORM_SIGMOID : HEED_NORM_SOFTMAX;
    if (d.norm == HEED_NORM_SOFTMAX && t_int(r, 0, 2) == 0) d.sink_logit = sink;
    if (d.norm == HEED_NORM_SIGMOID && t_int(r, 0, 1)) d.sigmoid_bias = (float)t_normal(r);
    heed_tensor bias;
    float *bias_data = NULL;
    if (t_int(r, 0, 3) == 0) { /* [B|1, Hq|1, Tq, Tk], sometimes broadcast, sometimes -inf entries */
        const int64_t b0 = t_int(r, 0, 1) ? s.B : 1, b1 = t_int(r, 0, 1) ? s.Hq : 1;
        const int64_t n = b0 * b1 * s.Tq * s.Tk;
        bias_data = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) bias_data[i] = t_int(r, 0, 9) == 0 ? -INFINITY : t_normal(r);
        bias = heed_tensor_4d(bias_data, HEED_F32, b0, b1, s.Tq, s.Tk);
        d.bias = &bias;
    }
    char what[256];
    snprintf(what, sizeof what,
             "case %d: mask %d B=%lld Hq=%lld Hkv=%lld Tq=%lld Tk=%lld D=%lld Dv=%lld kv=%s qoff=%lld koff=%lld"
             "%s%s%s%s%s%s",
             idx, (int)kind, (long long)s.B, (long long)s.Hq, (long long)s.Hkv, (long long)s.Tq, (long long)s.Tk,
             (long long)s.D, (long long)s.Dv, heed_dtype_name(s.kv), (long long)d.q_offset, (long long)d.k_offset,
             d.softcap > 0 ? " softcap" : "", d.temp_scale ? " temp" : "", d.alibi_slopes ? " alibi" : "",
             d.sink_logit ? " sink" : "", d.bias ? " bias" : "", d.norm ? " sigmoid" : "");
    compare(e, &s, &d, what);
    free(bias_data);
}

/* Decode: one query (and a few) over many keys: the split-KV path on 2 threads, merged exactly. */
static void decode_cases(env *e)
{
    static const struct { int64_t Hq, Hkv, Tq, Tk; heed_mask_kind kind; int sink, sigmoid; } c[] = {
        {4, 1, 1, 3000, HEED_MASK_CAUSAL, 0, 0}, {8, 2, 1, 2500, HEED_MASK_NONE, 1, 0},
        {2, 2, 3, 1800, HEED_MASK_CAUSAL, 0, 1}, {4, 4, 1, 2100, HEED_MASK_WINDOW, 1, 0},
        {1, 1, 2, 4000, HEED_MASK_WINDOW, 0, 0},
    };
    for (int i = 0; i < (int)(sizeof c / sizeof c[0]); i++) {
        shape s = {1, c[i].Hq, c[i].Hkv, c[i].Tq, c[i].Tk, 64, 64, (heed_dtype)(i % 3), i % 2, 0, 1.0f, 1e-9, 0};
        heed_attn_desc d;
        heed_attn_desc_init(&d);
        d.mask.kind = c[i].kind;
        d.q_offset = s.Tk - s.Tq;
        d.mask.left = 700;
        d.mask.right = 0;
        d.mask.n_sink = 4;
        float sink[8] = {0.5f, -1, 2, 0, 1, 3, -2, 0.25f};
        if (c[i].sink) d.sink_logit = sink;
        if (c[i].sigmoid) d.norm = HEED_NORM_SIGMOID;
        char what[64];
        snprintf(what, sizeof what, "decode %d (Tk=%lld)", i, (long long)s.Tk);
        compare(e, &s, &d, what);
    }
}

/* Decode and small Tq over every K/V dtype and GQA ratio 1/2/4/8: tiles of at most 4 rows prefetch K/V
 * rows ahead (the prefetch stops at the split's end), larger ones do not; odd D, Tk not a multiple of
 * the key block, and split-KV boundaries (2 threads) off the key-block grid. */
static void decode_shapes(env *e)
{
    static const int64_t G[] = {1, 2, 4, 8}, Tk[] = {1000, 777, 613, 1299};
    for (int gi = 0; gi < 4; gi++)
        for (int64_t Tq = 1; Tq <= 4; Tq++) {
            const int64_t D = (gi + Tq) % 3 == 0 ? 67 : 64, tk = Tk[(gi + Tq) % 4];
            shape s = {1, 2 * G[gi], 2, Tq, tk, D, D, (heed_dtype)((gi + Tq) % 3), 0, 0, 1.0f, 1e-9, 0};
            heed_attn_desc d;
            heed_attn_desc_init(&d);
            d.mask.kind = HEED_MASK_CAUSAL;
            d.q_offset = s.Tk - s.Tq;
            char what[80];
            snprintf(what, sizeof what, "decode G=%lld Tq=%lld D=%lld Tk=%lld", (long long)G[gi], (long long)Tq,
                     (long long)D, (long long)tk);
            compare(e, &s, &d, what);
        }
}

/* One query position (Tq = 1) as decode runs it: GQA 1, 2, 3, 4 (K/V read in place) and 8 (converted
 * blocks), every K/V dtype, D = 64, 128 and odd, Tk below, at and off the key block, padded rows, masks
 * with one visible span and with two (window + sink keys), k_offset, and softcap, sink logit, sigmoid. */
static void decode_paths(env *e)
{
    static const int64_t G[] = {1, 2, 3, 4, 8}, D[] = {64, 128, 67}, Tk[] = {5, 32, 613, 1301};
    float sink[32];
    for (int i = 0; i < 32; i++) sink[i] = 0.25f * (float)(i % 7) - 0.5f;
    int n = 0;
    for (int gi = 0; gi < 5; gi++)
        for (int di = 0; di < 3; di++)
            for (int kv = 0; kv < 3; kv++, n++) {
                const int64_t tk = Tk[n % 4];
                shape s = {1, 2 * G[gi], 2, 1, tk, D[di], D[di], (heed_dtype)kv, 0, n % 5 == 1 ? 3 : 0, 1.0f, 1e-9, 0};
                heed_attn_desc d;
                heed_attn_desc_init(&d);
                d.mask.kind = n % 3 == 2 ? HEED_MASK_WINDOW : n % 7 == 3 ? HEED_MASK_NONE : HEED_MASK_CAUSAL;
                d.mask.left = tk / 3;
                d.mask.right = 0;
                d.mask.n_sink = n % 2 ? 4 : 0;
                d.q_offset = tk - 1 + (n % 4 == 3 ? 10 : 0);
                d.k_offset = n % 4 == 3 ? 10 : 0;
                if (n % 4 == 1) d.softcap = 5.0f;
                if (n % 6 == 4) d.sink_logit = sink;
                if (n % 11 == 5 && !d.sink_logit) d.norm = HEED_NORM_SIGMOID;
                char what[96];
                snprintf(what, sizeof what, "decode path G=%lld D=%lld %s Tk=%lld mask %d%s%s%s", (long long)G[gi],
                         (long long)D[di], heed_dtype_name((heed_dtype)kv), (long long)tk, (int)d.mask.kind,
                         d.softcap > 0 ? " softcap" : "", d.sink_logit ? " sink" : "", d.norm ? " sigmoid" : "");
                compare(e, &s, &d, what);
            }
}

static void edge_cases(env *e)
{
    heed_attn_desc d;
    float sink[4] = {0.5f, -1, -INFINITY, 0}; /* a sink of -inf on a row that sees nothing: no mass */
    /* a window wider than Tk, Tq = 1 */
    shape s = {1, 2, 1, 1, 9, 16, 16, HEED_F16, 0, 0, 1.0f, 1e-9, 0};
    heed_attn_desc_init(&d);
    d.mask.kind = HEED_MASK_WINDOW;
    d.mask.left = 1000;
    d.mask.right = 1000;
    compare(e, &s, &d, "window wider than Tk");
    /* every key after every query (keys at positions 50.., causal): all rows fully masked, with and
     * without a sink logit: O = 0, lse = -inf or the sink, never NaN */
    shape f = {2, 4, 2, 5, 7, 24, 24, HEED_BF16, 1, 0, 1.0f, 1e-9, 0};
    for (int with_sink = 0; with_sink < 2; with_sink++) {
        heed_attn_desc_init(&d);
        d.mask.kind = HEED_MASK_CAUSAL;
        d.k_offset = 50;
        if (with_sink) d.sink_logit = sink;
        compare(e, &f, &d, with_sink ? "fully masked rows + sink" : "fully masked rows");
    }
    /* logits of magnitude ~1e4 */
    shape big = {1, 2, 2, 37, 53, 64, 64, HEED_F32, 0, 0, 1e4f, 1e-9, 0};
    heed_attn_desc_init(&d);
    d.mask.kind = HEED_MASK_CAUSAL;
    d.q_offset = 16;
    compare(e, &big, &d, "logits ~1e4");
    /* logits of 1e4 + O(1) (a bias of 1e4 on every key): a softmax that is not one-hot, computed in
     * f32 where one ulp of 1e4 is 1e-3 */
    shape shifted = {1, 2, 2, 37, 53, 64, 64, HEED_F16, 0, 0, 1.0f, 1e-6, 2e-3};
    float *b1e4 = malloc(2 * 37 * 53 * sizeof(float));
    for (int i = 0; i < 2 * 37 * 53; i++) b1e4[i] = 1e4f;
    heed_tensor bt = heed_tensor_4d(b1e4, HEED_F32, 1, 2, 37, 53);
    d.bias = &bt;
    compare(e, &shifted, &d, "logits 1e4 + O(1)");
    free(b1e4);
    /* chunked prefill: the last 70 of 200 positions, D = 128, a full tile and a ragged one */
    shape cp = {1, 4, 2, 70, 200, 128, 128, HEED_F16, 1, 0, 1.0f, 1e-9, 0};
    heed_attn_desc_init(&d);
    d.mask.kind = HEED_MASK_CAUSAL;
    d.q_offset = 130;
    compare(e, &cp, &d, "chunked prefill");
    /* neighborhood 2D on a 20 x 17 grid with dilation: the patch tiling */
    shape nb = {1, 2, 1, 340, 340, 32, 32, HEED_F32, 0, 0, 1.0f, 1e-9, 0};
    heed_attn_desc_init(&d);
    d.mask.kind = HEED_MASK_NEIGHBOR_2D;
    d.mask.grid[0] = 20;
    d.mask.grid[1] = 17;
    d.mask.kernel[0] = 5;
    d.mask.kernel[1] = 3;
    d.mask.dilation[0] = 2;
    d.mask.dilation[1] = 3;
    compare(e, &nb, &d, "neighborhood 2D 20x17");
    /* S2 with D = 128 over 300 keys */
    shape s2 = {1, 4, 4, 300, 300, 128, 128, HEED_BF16, 0, 0, 1.0f, 1e-9, 0};
    heed_attn_desc_init(&d);
    d.mask.kind = HEED_MASK_S2;
    d.mask.block = 16;
    d.mask.local_blocks = 2;
    d.mask.vert_stride = 4;
    compare(e, &s2, &d, "S2");
    /* explicit block lists with ~800 spans per row: too many for a tile to keep every row's spans,
     * so partial blocks generate them again (the other path of the masking) */
    shape bl = {1, 2, 1, 64, 1200, 16, 16, HEED_F16, 0, 0, 1.0f, 1e-9, 0};
    int32_t *bptr = malloc(65 * sizeof(int32_t)), *bidx = malloc(64 * 1200 * sizeof(int32_t));
    bptr[0] = 0;
    for (int qb = 0; qb < 64; qb++) {
        int32_t n = bptr[qb];
        for (int kb = 0; kb < 1200; kb++)
            if ((kb * 7 + qb) % 3 != 0) bidx[n++] = kb;
        bptr[qb + 1] = n;
    }
    heed_attn_desc_init(&d);
    d.mask.kind = HEED_MASK_BLOCKS;
    d.mask.block = 1;
    d.mask.n_qblocks = 64;
    d.mask.block_ptr = bptr;
    d.mask.block_idx = bidx;
    compare(e, &bl, &d, "blocks, many spans per row");
    free(bptr);
    free(bidx);
    /* an invalid output is refused with a message, not written */
    heed_attn_desc_init(&d);
    float q[8] = {0}, kv[8] = {0}, out[8];
    d.q = heed_tensor_4d(q, HEED_F32, 1, 1, 1, 8);
    d.k = d.v = heed_tensor_4d(kv, HEED_F32, 1, 1, 1, 8);
    heed_tensor o = heed_tensor_4d(out, HEED_F32, 1, 1, 2, 8);
    CHECK(heed_attn_forward(e->ctx[0], &o, NULL, &d) == HEED_ERR_INVALID, "wrong o shape accepted");
    CHECK(strstr(heed_ctx_error(e->ctx[0]), "o:") != NULL, "message: %s", heed_ctx_error(e->ctx[0]));
}

int main(void)
{
    env e;
    e.rng.s = 0x5eed1234abcdULL;
    CHECK_OK(NULL, heed_ctx_create(&e.ctx[0], 1));
    CHECK_OK(NULL, heed_ctx_create(&e.ctx[1], 2));
    edge_cases(&e);
    decode_cases(&e);
    decode_shapes(&e);
    decode_paths(&e);
    for (int i = 0; i < 320; i++) random_case(&e, i);
    heed_ctx_free(e.ctx[0]);
    heed_ctx_free(e.ctx[1]);
    return t_done("test_attn_fwd");
}
