/* test_attn_bwd.c — the attention backward: (1) the f64 reference against central finite differences
 * of the f64 reference forward (loss = sum dO * O) for every mask kind, modifier, sink, temperature,
 * softmax and sigmoid; (2) the fast threaded backward (best ISA and baseline) against the reference on
 * randomized shapes, bitwise equal for 1 and 2 threads; (3) logits of magnitude 1e4; (4) bad calls. */
#include "attn/attn.h"
#include "harness.h"

#include <string.h>

enum { M_SINK = 1, M_TEMP = 2, M_CAP = 4, M_ALIBI = 8, M_BIAS = 16, M_SCALE = 32 };

typedef struct cfg {
    const char *name;
    int64_t B, Hq, Hkv, Tq, Tk, D, Dv, q_off, k_off;
    heed_mask mask;
    heed_norm norm;
    int mods;
    int bias_full; /* bias [B, Hq, Tq, Tk] instead of [1, Hq, Tq, Tk]; with 2: [B, 1, Tq, Tk] */
} cfg;

/* One problem: inputs in f64 or f32 (contiguous, except q which may be stored [B, Tq, Hq, D]). */
typedef struct prob {
    cfg c;
    heed_dtype dt;
    void *q, *k, *v, *o, *d_o;   /* [B,Hq,Tq,D], [B,Hkv,Tk,D], [B,Hkv,Tk,Dv], [B,Hq,Tq,Dv] x2 */
    float *bias;                 /* [B|1, Hq|1, Tq, Tk] */
    float *lse;                  /* [B, Hq, Tq] */
    float temp[8], alibi[8], sink[8], temp0[8];
    heed_tensor bias_t, o_t, d_o_t;
    heed_attn_desc d;
} prob;

static void fill(t_rng *r, void *x, heed_dtype dt, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++) {
        const double v = scale * t_normal(r);
        if (dt == HEED_F64) ((double *)x)[i] = v;
        else ((float *)x)[i] = (float)v;
    }
}

static void prob_init(prob *p, const cfg *c, heed_dtype dt, int q_bthd, t_rng *r)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    p->dt = dt;
    const size_t es = heed_dtype_size(dt);
    const int64_t nq = c->B * c->Hq * c->Tq, nk = c->B * c->Hkv * c->Tk;
    p->q = malloc((size_t)(nq * c->D) * es);
    p->k = malloc((size_t)(nk * c->D) * es);
    p->v = malloc((size_t)(nk * c->Dv) * es);
    p->o = malloc((size_t)(nq * c->Dv) * es + 1);
    p->d_o = malloc((size_t)(nq * c->Dv) * es + 1);
    p->lse = malloc((size_t)nq * sizeof(float) + 1);
    const int64_t bias_b = c->bias_full ? c->B : 1, bias_h = c->bias_full == 2 ? 1 : c->Hq;
    const int64_t nbias = bias_b * bias_h * c->Tq * c->Tk;
    p->bias = malloc((size_t)nbias * sizeof(float) + 1);
    fill(r, p->q, dt, nq * c->D, 1.0);
    fill(r, p->k, dt, nk * c->D, 1.0);
    fill(r, p->v, dt, nk * c->Dv, 1.0);
    fill(r, p->d_o, dt, nq * c->Dv, 1.0);
    for (int64_t i = 0; i < nbias; i++)
        p->bias[i] = t_uniform(r) < 0.1 ? -INFINITY : 0.5f * t_normal(r);
    for (int h = 0; h < 8; h++) {
        p->temp[h] = 0.1f + 0.3f * (float)t_uniform(r);
        p->alibi[h] = 0.25f * (float)(h + 1);
        p->sink[h] = t_normal(r);
        p->temp0[h] = 0.0f;
    }
    heed_attn_desc *d = &p->d;
    heed_attn_desc_init(d);
    d->q = heed_tensor_4d(p->q, dt, c->B, c->Hq, c->Tq, c->D);
    if (q_bthd) { /* the q of a [B, T, H, D] activation, viewed as [B, H, T, D] */
        d->q.nb[2] = (int64_t)es * c->Hq * c->D;
        d->q.nb[1] = (int64_t)es * c->D;
    }
    d->k = heed_tensor_4d(p->k, dt, c->B, c->Hkv, c->Tk, c->D);
    d->v = heed_tensor_4d(p->v, dt, c->B, c->Hkv, c->Tk, c->Dv);
    d->q_offset = c->q_off;
    d->k_offset = c->k_off;
    d->mask = c->mask;
    d->norm = c->norm;
    if (c->mods & M_SCALE) d->scale = 0.7f / sqrtf((float)c->D); /* not the default, logits as large */
    if (c->mods & M_CAP) d->softcap = 2.0f;
    if (c->mods & M_TEMP) d->temp_scale = p->temp;
    if (c->mods & M_ALIBI) d->alibi_slopes = p->alibi;
    if (c->mods & M_SINK) d->sink_logit = p->sink;
    if (c->mods & M_BIAS) {
        p->bias_t = heed_tensor_4d(p->bias, HEED_F32, bias_b, bias_h, c->Tq, c->Tk);
        d->bias = &p->bias_t;
    }
    p->o_t = heed_tensor_4d(p->o, dt, c->B, c->Hq, c->Tq, c->Dv);
    p->d_o_t = heed_tensor_4d(p->d_o, dt, c->B, c->Hq, c->Tq, c->Dv);
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->o); free(p->d_o); free(p->lse); free(p->bias);
}

/* loss = sum dO * O of the f64 reference forward */
static double loss(heed_ctx *ctx, prob *p)
{
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p->o_t, p->lse, &p->d));
    const int64_t n = p->c.B * p->c.Hq * p->c.Tq * p->c.Dv;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double *)p->o)[i] * ((double *)p->d_o)[i];
    return s;
}

/* Worst |analytic - numeric| over a tensor, relative to its largest numeric entry (absolute when
 * the whole gradient is below 1e-12, e.g. keys nobody sees). */
static double rel_err(const double *an, const double *num, int64_t n)
{
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs(an[i] - num[i]);
        if (!(d <= e)) e = d;
        if (fabs(num[i]) > m) m = fabs(num[i]);
    }
    return m > 1e-12 ? e / m : e;
}

/* Central differences of loss with respect to every element of an f64 array x[n]. */
static void fd_f64(heed_ctx *ctx, prob *p, double *num, double *x, int64_t n)
{
    const double h = 1e-5;
    for (int64_t i = 0; i < n; i++) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double lp = loss(ctx, p);
        x[i] = x0 - h;
        const double lm = loss(ctx, p);
        x[i] = x0;
        num[i] = (lp - lm) / (2 * h);
    }
}

/* The same for an f32 parameter array. The loss is f64, so the step can be small; x +- 2^-14 is exact
 * in f32 for |x| < 2^9, and the difference is divided by the step that was really taken anyway. */
static void fd_f32(heed_ctx *ctx, prob *p, double *num, float *x, int64_t n)
{
    const float h = 1.0f / 16384;
    for (int64_t i = 0; i < n; i++) {
        const float x0 = x[i], xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        const double lp = loss(ctx, p);
        x[i] = xm;
        const double lm = loss(ctx, p);
        x[i] = x0;
        num[i] = (lp - lm) / ((double)xp - (double)xm);
    }
}

static void fd_case(heed_ctx *ctx, const cfg *c, t_rng *r, double *worst_qkv, double *worst_par)
{
    prob p;
    prob_init(&p, c, HEED_F64, 0, r);
    const int64_t nq = c->B * c->Hq * c->Tq * c->D, nk = c->B * c->Hkv * c->Tk * c->D,
                  nv = c->B * c->Hkv * c->Tk * c->Dv;
    double *an = calloc((size_t)(nq + nk + nv), sizeof(double));
    double *num = calloc((size_t)(nq + nk + nv), sizeof(double));
    float dsink[8], dtemp[8];
    heed_attn_grads g = {heed_tensor_4d(an, HEED_F64, c->B, c->Hq, c->Tq, c->D),
                         heed_tensor_4d(an + nq, HEED_F64, c->B, c->Hkv, c->Tk, c->D),
                         heed_tensor_4d(an + nq + nk, HEED_F64, c->B, c->Hkv, c->Tk, c->Dv), dsink, dtemp};
    loss(ctx, &p); /* the reference ignores o and lse, but pass what a caller would */
    CHECK_OK(ctx, heed_attn_backward_ref(ctx, &g, &p.d, &p.o_t, p.lse, &p.d_o_t));
    fd_f64(ctx, &p, num, p.q, nq);
    fd_f64(ctx, &p, num + nq, p.k, nk);
    fd_f64(ctx, &p, num + nq + nk, p.v, nv);
    const char *part[3] = {"dq", "dk", "dv"};
    const int64_t off[4] = {0, nq, nq + nk, nq + nk + nv};
    for (int i = 0; i < 3; i++) {
        const double e = rel_err(an + off[i], num + off[i], off[i + 1] - off[i]);
        CHECK(e < 1e-6, "%s: %s relative error %.3g", c->name, part[i], e);
        if (e > *worst_qkv) *worst_qkv = e;
        for (int64_t j = off[i]; j < off[i + 1]; j++) CHECK(isfinite(an[j]), "%s: %s not finite", c->name, part[i]);
    }
    /* d temp_scale: without temp_scale the gradient is the one at temp_scale = 0 */
    double a8[8], n8[8];
    if (!p.d.temp_scale) p.d.temp_scale = p.temp0;
    fd_f32(ctx, &p, n8, (float *)p.d.temp_scale, c->Hq);
    for (int64_t h = 0; h < c->Hq; h++) a8[h] = dtemp[h];
    double e = rel_err(a8, n8, c->Hq);
    CHECK(e < 1e-5, "%s: d_temp_scale relative error %.3g", c->name, e);
    if (e > *worst_par) *worst_par = e;
    if (c->mods & M_SINK) {
        fd_f32(ctx, &p, n8, p.sink, c->Hq);
        for (int64_t h = 0; h < c->Hq; h++) a8[h] = dsink[h];
        e = rel_err(a8, n8, c->Hq);
        CHECK(e < 1e-5, "%s: d_sink_logit relative error %.3g", c->name, e);
        if (e > *worst_par) *worst_par = e;
    } else {
        for (int64_t h = 0; h < c->Hq; h++) CHECK(dsink[h] == 0.0f, "%s: d_sink_logit without a sink", c->name);
    }
    free(an);
    free(num);
    prob_free(&p);
}

static heed_mask mk(heed_mask_kind kind)
{
    heed_mask m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    return m;
}

static void test_finite_differences(heed_ctx *ctx)
{
    static const int32_t bptr[3] = {0, 1, 3}, bidx[3] = {0, 0, 2};
    cfg base[16];
    int n = 0;
    /* B = 2 so gradients of sink and temperature sum over the batch; Hq = 2 over Hkv = 1 is GQA;
     * Dv != D catches mixed-up dimensions. */
    const cfg proto = {"", 2, 2, 1, 7, 7, 5, 4, 0, 0, mk(HEED_MASK_NONE), HEED_NORM_SOFTMAX, 0, 0};
    cfg c = proto;
    c.name = "none"; base[n++] = c;
    c = proto; c.name = "causal, decode chunk"; c.Tq = 4; c.Tk = 9; c.q_off = 5; c.mask = mk(HEED_MASK_CAUSAL);
    base[n++] = c;
    c = proto; c.name = "causal, rows before the keys"; c.Tq = 5; c.Tk = 6; c.q_off = 0; c.k_off = 2;
    c.mask = mk(HEED_MASK_CAUSAL); base[n++] = c;
    c = proto; c.name = "window + sink tokens"; c.Tq = c.Tk = 9; c.mask = mk(HEED_MASK_WINDOW);
    c.mask.left = 2; c.mask.right = 0; c.mask.n_sink = 1; base[n++] = c;
    c = proto; c.name = "window both ways"; c.mask = mk(HEED_MASK_WINDOW); c.mask.left = 1; c.mask.right = 2;
    base[n++] = c;
    c = proto; c.name = "prefix-bidirectional"; c.mask = mk(HEED_MASK_PREFIX_BIDIR); c.mask.prefix_begin = 1;
    c.mask.prefix_end = 4; base[n++] = c;
    c = proto; c.name = "neighborhood 1D"; c.Tq = c.Tk = 9; c.D = 3; c.mask = mk(HEED_MASK_NEIGHBOR_1D);
    c.mask.kernel[0] = 3; c.mask.dilation[0] = 2; c.mask.seq_len = 9; base[n++] = c;
    c = proto; c.name = "neighborhood 2D"; c.Tq = c.Tk = 8; c.D = 3; c.mask = mk(HEED_MASK_NEIGHBOR_2D);
    c.mask.grid[0] = 2; c.mask.grid[1] = 4; c.mask.kernel[0] = 1; c.mask.kernel[1] = 3;
    c.mask.dilation[0] = c.mask.dilation[1] = 1; base[n++] = c;
    c = proto; c.name = "S2"; c.Tq = c.Tk = 8; c.mask = mk(HEED_MASK_S2); c.mask.block = 2; c.mask.local_blocks = 1;
    c.mask.vert_stride = 2; c.mask.head_offset = 1; base[n++] = c;
    c = proto; c.name = "blocks, empty query block"; c.Tq = c.Tk = 9; c.mask = mk(HEED_MASK_BLOCKS);
    c.mask.block = 3; c.mask.block_ptr = bptr; c.mask.block_idx = bidx; c.mask.n_qblocks = 2; base[n++] = c;
    c.name = "blocks, causal"; c.mask.causal = 1; base[n++] = c;

    double worst_qkv = 0, worst_par = 0;
    t_rng r = {0x5eedf00dULL};
    int cases = 0;
    for (int i = 0; i < n; i++) {
        static const int variants[3][2] = {
            {HEED_NORM_SOFTMAX, 0},
            {HEED_NORM_SOFTMAX, M_SINK | M_TEMP | M_CAP | M_ALIBI | M_BIAS | M_SCALE},
            {HEED_NORM_SIGMOID, M_TEMP | M_CAP | M_ALIBI | M_BIAS},
        };
        for (int v = 0; v < 3; v++) {
            cfg cv = base[i];
            cv.norm = (heed_norm)variants[v][0];
            cv.mods = variants[v][1];
            fd_case(ctx, &cv, &r, &worst_qkv, &worst_par);
            cases++;
        }
    }
    printf("finite differences: %d cases, worst relative error dq/dk/dv %.3g (bound 1e-6), "
           "d_sink/d_temp %.3g (bound 1e-5)\n", cases, worst_qkv, worst_par);
}

/* A random mask of the given kind that heed_mask_check accepts for the shape in *c (which it may
 * adjust: the neighborhood kinds need Tq = Tk on one axis). bptr [65] and bidx [65 * 64] back BLOCKS. */
static heed_mask random_mask(t_rng *r, heed_mask_kind kind, cfg *c, int32_t *bptr, int32_t *bidx)
{
    heed_mask m = mk(kind);
    switch (kind) {
    case HEED_MASK_NONE: break;
    case HEED_MASK_CAUSAL: break;
    case HEED_MASK_WINDOW:
        m.left = t_int(r, -1, 40);
        m.right = t_int(r, -1, 6);
        m.n_sink = t_int(r, 0, 4);
        break;
    case HEED_MASK_PREFIX_BIDIR:
        m.prefix_begin = t_int(r, 0, 5);
        m.prefix_end = m.prefix_begin + t_int(r, 0, 40);
        break;
    case HEED_MASK_NEIGHBOR_1D:
        m.dilation[0] = (int32_t)t_int(r, 1, 3);
        m.kernel[0] = (int32_t)(2 * t_int(r, 0, 4) + 1);
        c->q_off = c->k_off = 0;
        c->Tq = c->Tk = m.kernel[0] * m.dilation[0] + t_int(r, 0, 120);
        m.seq_len = c->Tk;
        break;
    case HEED_MASK_NEIGHBOR_2D:
        for (int a = 0; a < 2; a++) {
            m.dilation[a] = (int32_t)t_int(r, 1, 2);
            m.kernel[a] = (int32_t)(2 * t_int(r, 0, 2) + 1);
            m.grid[a] = m.kernel[a] * m.dilation[a] + t_int(r, 0, 7);
        }
        c->q_off = c->k_off = 0;
        c->Tq = c->Tk = m.grid[0] * m.grid[1];
        break;
    case HEED_MASK_S2:
        m.block = (int32_t)t_int(r, 1, 16);
        m.local_blocks = (int32_t)t_int(r, 1, 3);
        m.vert_stride = (int32_t)t_int(r, 1, 4);
        m.head_offset = (int32_t)t_int(r, 0, 3);
        break;
    case HEED_MASK_BLOCKS: {
        m.block = (int32_t)t_int(r, 1, 40);
        const int64_t nkb = (c->k_off + c->Tk + m.block - 1) / m.block;
        int64_t nqb = (c->q_off + c->Tq + m.block - 1) / m.block - t_int(r, 0, 1); /* last rows may see nothing */
        if (nqb > 64) nqb = 64;
        if (nqb < 0) nqb = 0;
        bptr[0] = 0;
        for (int64_t qb = 0; qb < nqb; qb++) {
            int32_t n = 0;
            for (int64_t kb = 0; kb < nkb && kb < 64; kb++)
                if (t_uniform(r) < 0.4) bidx[bptr[qb] + n++] = (int32_t)kb;
            bptr[qb + 1] = bptr[qb] + n;
        }
        m.block_ptr = bptr;
        m.block_idx = bidx;
        m.n_qblocks = nqb;
        m.causal = (int)t_int(r, 0, 1);
        break;
    }
    }
    return m;
}

/* Rows of a strided f32 [B, H, T, n] view, gathered contiguous. */
static void gather(float *dst, const heed_tensor *t)
{
    for (int64_t a = 0; a < t->ne[0]; a++)
        for (int64_t b = 0; b < t->ne[1]; b++)
            for (int64_t c = 0; c < t->ne[2]; c++, dst += t->ne[3])
                memcpy(dst, heed_row(t, a, b, c), (size_t)t->ne[3] * sizeof(float));
}

typedef struct worst { double nmse, rel, par; } worst;

/* Fast backward against the reference on one random problem: ctx[0] best ISA on 1 thread, ctx[1] the same
 * on 2 threads (must agree bitwise), ctx[2] the baseline (scalar) ISA on 2 threads. */
static void fast_case(heed_ctx *const *ctx, const cfg *c, t_rng *r, worst *w)
{
    prob p;
    prob_init(&p, c, HEED_F32, (int)t_int(r, 0, 1), r);
    if (t_uniform(r) < 0.25) p.sink[0] = -INFINITY; /* a sink logit of -inf adds no mass */
    CHECK_OK(ctx[0], heed_attn_forward_ref(ctx[0], &p.o_t, p.lse, &p.d));
    const int64_t nq = c->B * c->Hq * c->Tq * c->D, nk = c->B * c->Hkv * c->Tk * c->D,
                  nv = c->B * c->Hkv * c->Tk * c->Dv, ntot = nq + nk + nv, pad = 3;
    /* ref, then ctx[0..2]: dq, dk, dv contiguous after gathering; dq is written padded */
    float *g[4], *dqp[4], par[4][16] = {{0}};
    heed_attn_grads gr[4];
    for (int i = 0; i < 4; i++) {
        g[i] = malloc((size_t)ntot * sizeof(float) + 4);
        dqp[i] = malloc((size_t)(c->B * c->Hq * c->Tq * (c->D + pad)) * sizeof(float) + 4);
        for (int64_t e = 0; e < c->B * c->Hq * c->Tq * (c->D + pad); e++) dqp[i][e] = 777.0f;
        gr[i].dq = heed_tensor_4d(dqp[i], HEED_F32, c->B, c->Hq, c->Tq, c->D);
        gr[i].dq.nb[2] = (c->D + pad) * (int64_t)sizeof(float);
        gr[i].dq.nb[1] = gr[i].dq.nb[2] * c->Tq;
        gr[i].dq.nb[0] = gr[i].dq.nb[1] * c->Hq;
        gr[i].dk = heed_tensor_4d(g[i] + nq, HEED_F32, c->B, c->Hkv, c->Tk, c->D);
        gr[i].dv = heed_tensor_4d(g[i] + nq + nk, HEED_F32, c->B, c->Hkv, c->Tk, c->Dv);
        gr[i].d_sink_logit = par[i];
        gr[i].d_temp_scale = par[i] + 8;
    }
    CHECK_OK(ctx[0], heed_attn_backward_ref(ctx[0], &gr[0], &p.d, &p.o_t, p.lse, &p.d_o_t));
    for (int i = 0; i < 3; i++) CHECK_OK(ctx[i], heed_attn_backward(ctx[i], &gr[i + 1], &p.d, &p.o_t, p.lse, &p.d_o_t));
    for (int i = 0; i < 4; i++) {
        gather(g[i], &gr[i].dq);
        for (int64_t row = 0; row < c->B * c->Hq * c->Tq; row++)
            for (int64_t e = c->D; e < c->D + pad; e++)
                CHECK(dqp[i][row * (c->D + pad) + e] == 777.0f, "%s: dq padding overwritten", c->name);
    }
    CHECK(memcmp(g[1], g[2], (size_t)ntot * sizeof(float)) == 0 && memcmp(par[1], par[2], sizeof par[1]) == 0,
          "%s: 1 and 2 threads differ", c->name);
    const char *part[3] = {"dq", "dk", "dv"};
    const int64_t off[4] = {0, nq, nq + nk, ntot};
    /* Max errors are relative to the largest reference gradient of the problem: dq and dk can cancel
     * to exactly 0 in f64 (a softmax row with one key: dS = P (dP - D) = 0) where f32 leaves noise. */
    double ref_max = 1e-30;
    for (int64_t e = 0; e < ntot; e++) ref_max = fmax(ref_max, fabs(g[0][e]));
    for (int f = 1; f <= 3; f += 2)
        for (int i = 0; i < 3; i++) {
            const int64_t n = off[i + 1] - off[i];
            const double nmse = t_nmse(g[f] + off[i], g[0] + off[i], n), mx = t_max_abs(g[f] + off[i], g[0] + off[i], n);
            const double rel = mx / ref_max;
            CHECK(nmse < 1e-9 && rel < 1e-4, "%s (%s): %s nmse %.3g, max abs %.3g (largest ref gradient %.3g)", c->name,
                  f == 1 ? "best ISA" : "scalar", part[i], nmse, mx, ref_max);
            w->nmse = fmax(w->nmse, nmse);
            w->rel = fmax(w->rel, rel);
        }
    /* Rows that see nothing (lse = -inf) get exactly zero dq. */
    if (c->norm == HEED_NORM_SOFTMAX && !(c->mods & M_SINK))
        for (int64_t row = 0; row < c->B * c->Hq * c->Tq; row++)
            if (p.lse[row] == -INFINITY)
                for (int64_t e = 0; e < c->D; e++) CHECK(g[1][row * c->D + e] == 0.0f, "%s: masked row dq", c->name);
    for (int64_t h = 0; h < c->Hq; h++)
        for (int k = 0; k < 4; k++) {
            const double a = par[1 + 2 * (k / 2)][h + 8 * (k % 2)], b = par[0][h + 8 * (k % 2)];
            const double rel = fabs(a - b) / fmax(1.0, fabs(b));
            /* d_temp sums ds * s0 * log(i + 1) over every visible (row, key) pair, terms that cancel; the
             * f32 scores (ALiBi and temperature make |s| ~ 40) leave ~1e-4 of that, a bug gives O(1) */
            CHECK(rel < 1e-3, "%s: %s[%lld] fast %.7g ref %.7g (mask %d, norm %d, mods %d)", c->name,
                  k % 2 ? "d_temp" : "d_sink", (long long)h, a, b, (int)c->mask.kind, (int)c->norm, c->mods);
            w->par = fmax(w->par, rel);
        }
    for (int i = 0; i < 4; i++) { free(g[i]); free(dqp[i]); }
    prob_free(&p);
}

static void test_fast_vs_ref(heed_ctx *const *ctx)
{
    static int32_t bptr[65], bidx[65 * 64];
    static const int64_t dims[] = {1, 2, 3, 5, 8, 16, 17, 32, 63, 64, 96, 128};
    t_rng r = {0xbac4a11dULL};
    worst w = {0, 0, 0};
    const int n_cases = 64;
    for (int it = 0; it < n_cases; it++) {
        cfg c;
        memset(&c, 0, sizeof c);
        c.name = "random";
        c.B = t_int(&r, 1, 2);
        c.Hkv = t_int(&r, 1, 2);
        c.Hq = c.Hkv * t_int(&r, 1, 3);
        c.D = dims[t_int(&r, 0, 11)];
        c.Dv = t_uniform(&r) < 0.5 ? c.D : dims[t_int(&r, 0, 11)];
        c.Tk = t_int(&r, 1, 150);
        c.Tq = t_uniform(&r) < 0.2 ? 1 : t_int(&r, 1, 150);
        c.k_off = t_uniform(&r) < 0.2 ? t_int(&r, 0, 20) : 0;
        c.q_off = t_uniform(&r) < 0.5 ? c.k_off + (c.Tk > c.Tq ? c.Tk - c.Tq : 0) : t_int(&r, 0, 30);
        c.mask = random_mask(&r, (heed_mask_kind)(it % 8), &c, bptr, bidx);
        c.norm = t_uniform(&r) < 0.3 ? HEED_NORM_SIGMOID : HEED_NORM_SOFTMAX;
        c.mods = (int)t_int(&r, 0, 63);
        if (c.norm == HEED_NORM_SIGMOID) c.mods &= ~M_SINK;
        c.bias_full = (int)t_int(&r, 0, 2);
        fast_case(ctx, &c, &r, &w);
    }
    /* one larger causal case: many tiles on both axes, partial diagonal tiles */
    cfg c = {"causal 300", 1, 4, 2, 300, 300, 64, 64, 0, 0, mk(HEED_MASK_CAUSAL), HEED_NORM_SOFTMAX, M_SINK | M_TEMP, 0};
    fast_case(ctx, &c, &r, &w);
    printf("fast vs reference: %d cases, worst nmse %.3g (bound 1e-9), max abs / largest |ref| %.3g (bound 1e-4), "
           "d_sink/d_temp %.3g (bound 1e-3 of max(1, |ref|))\n", n_cases + 1, w.nmse, w.rel, w.par);
}

/* Logits of magnitude ~1e4 (softmax nearly one-hot, sigmoid saturated): no overflow, no NaN, and dV,
 * which depends on the probabilities only, still matches the reference. */
static void test_large_logits(heed_ctx *ctx)
{
    t_rng r = {99};
    for (int norm = 0; norm < 2; norm++) {
        cfg c = {"large logits", 1, 2, 1, 70, 70, 16, 16, 0, 0, mk(HEED_MASK_CAUSAL), (heed_norm)norm, M_BIAS, 0};
        prob p;
        prob_init(&p, &c, HEED_F32, 0, &r);
        for (int64_t i = 0; i < c.B * c.Hq * c.Tq * c.D; i++) ((float *)p.q)[i] *= 2500.0f;
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.o_t, p.lse, &p.d));
        const int64_t nq = c.Hq * c.Tq * c.D, nk = c.Hkv * c.Tk * c.D, nv = c.Hkv * c.Tk * c.Dv;
        float *g[2];
        heed_attn_grads gr[2];
        for (int i = 0; i < 2; i++) {
            g[i] = malloc((size_t)(nq + nk + nv) * sizeof(float));
            gr[i] = (heed_attn_grads){heed_tensor_4d(g[i], HEED_F32, 1, c.Hq, c.Tq, c.D),
                                      heed_tensor_4d(g[i] + nq, HEED_F32, 1, c.Hkv, c.Tk, c.D),
                                      heed_tensor_4d(g[i] + nq + nk, HEED_F32, 1, c.Hkv, c.Tk, c.Dv), NULL, NULL};
        }
        CHECK_OK(ctx, heed_attn_backward_ref(ctx, &gr[0], &p.d, &p.o_t, p.lse, &p.d_o_t));
        CHECK_OK(ctx, heed_attn_backward(ctx, &gr[1], &p.d, &p.o_t, p.lse, &p.d_o_t));
        int finite = 1;
        for (int64_t i = 0; i < nq + nk + nv; i++) finite &= isfinite(g[1][i]) && isfinite(g[0][i]);
        CHECK(finite, "large logits (norm %d): non-finite gradient", norm);
        const double nmse = t_nmse(g[1] + nq + nk, g[0] + nq + nk, nv);
        CHECK(nmse < 1e-6, "large logits (norm %d): dv nmse %.3g", norm, nmse);
        printf("large logits (%s): gradients finite, dv nmse %.3g (bound 1e-6)\n", norm ? "sigmoid" : "softmax", nmse);
        free(g[0]);
        free(g[1]);
        prob_free(&p);
    }
}

/* Bad calls fail with HEED_ERR_INVALID and a message, and write nothing. */
static void test_errors(heed_ctx *ctx)
{
    t_rng r = {7};
    cfg c = {"errors", 1, 2, 1, 5, 6, 4, 4, 0, 0, mk(HEED_MASK_CAUSAL), HEED_NORM_SOFTMAX, 0, 0};
    prob p;
    prob_init(&p, &c, HEED_F32, 0, &r);
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.o_t, p.lse, &p.d));
    float dq[40], dk[24], dv[24];
    heed_attn_grads g = {heed_tensor_4d(dq, HEED_F32, 1, 2, 5, 4), heed_tensor_4d(dk, HEED_F32, 1, 1, 6, 4),
                         heed_tensor_4d(dv, HEED_F32, 1, 1, 6, 4), NULL, NULL};
    CHECK_OK(ctx, heed_attn_backward(ctx, &g, &p.d, &p.o_t, p.lse, &p.d_o_t));
    CHECK(heed_attn_backward(ctx, &g, &p.d, &p.o_t, NULL, &p.d_o_t) == HEED_ERR_INVALID, "softmax without lse");
    CHECK(strstr(heed_ctx_error(ctx), "lse") != NULL, "message names lse: %s", heed_ctx_error(ctx));
    CHECK(heed_attn_backward(ctx, NULL, &p.d, &p.o_t, p.lse, &p.d_o_t) == HEED_ERR_INVALID, "NULL grads");
    heed_attn_grads bad = g;
    bad.dk.ne[2] = 5;
    CHECK(heed_attn_backward(ctx, &bad, &p.d, &p.o_t, p.lse, &p.d_o_t) == HEED_ERR_INVALID, "dk shape");
    CHECK(strstr(heed_ctx_error(ctx), "dk") != NULL, "message names dk: %s", heed_ctx_error(ctx));
    CHECK(heed_attn_backward_ref(ctx, &bad, &p.d, &p.o_t, p.lse, &p.d_o_t) == HEED_ERR_INVALID, "ref: dk shape");
    bad = g;
    bad.dq.nb[1] = 0;
    CHECK(heed_attn_backward(ctx, &bad, &p.d, &p.o_t, p.lse, &p.d_o_t) == HEED_ERR_INVALID, "broadcast dq");
    heed_tensor d_o64 = p.d_o_t;
    d_o64.dtype = HEED_F64;
    CHECK(heed_attn_backward(ctx, &g, &p.d, &p.o_t, p.lse, &d_o64) == HEED_ERR_INVALID, "f64 d_o in the fast path");
    /* f64 operands are the reference's: the fast path refuses them as the fast forward does */
    prob p64;
    prob_init(&p64, &c, HEED_F64, 0, &r);
    CHECK(heed_attn_backward(ctx, &g, &p64.d, &p.o_t, p.lse, &p.d_o_t) == HEED_ERR_UNSUPPORTED, "f64 q, k, v");
    prob_free(&p64);
    /* f16 keys are a valid forward descriptor, but the backward needs f32 */
    uint16_t kh[24], vh[24];
    memset(kh, 0, sizeof kh);
    memset(vh, 0, sizeof vh);
    heed_attn_desc d16 = p.d;
    d16.k = heed_tensor_4d(kh, HEED_F16, 1, 1, 6, 4);
    d16.v = heed_tensor_4d(vh, HEED_F16, 1, 1, 6, 4);
    CHECK(heed_attn_backward(ctx, &g, &d16, &p.o_t, p.lse, &p.d_o_t) == HEED_ERR_INVALID, "f16 keys");
    CHECK(strstr(heed_ctx_error(ctx), "k:") != NULL, "message names k: %s", heed_ctx_error(ctx));
    prob_free(&p);
}

int main(void)
{
    heed_ctx *ctx[3] = {NULL, NULL, NULL};
    CHECK_OK(ctx[0], heed_ctx_create(&ctx[0], 1));
    CHECK_OK(ctx[1], heed_ctx_create(&ctx[1], 2));
    CHECK_OK(ctx[2], heed_ctx_create(&ctx[2], 2));
    if (!ctx[0] || !ctx[1] || !ctx[2]) return t_done("test_attn_bwd");
    CHECK_OK(ctx[2], heed_ctx_set_isa(ctx[2], HEED_ISA_SCALAR));
    printf("best ISA: %s\n", heed_isa_name(heed_ctx_isa(ctx[0])));
    test_finite_differences(ctx[0]);
    test_fast_vs_ref(ctx);
    test_large_logits(ctx[0]);
    test_errors(ctx[0]);
    for (int i = 0; i < 3; i++) heed_ctx_free(ctx[i]);
    return t_done("test_attn_bwd");
}
