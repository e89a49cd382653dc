/* test_attn_ref.c — the reference forward (heed_attn_forward_ref) against hand calculations and
 * closed forms on tiny cases, its invariants (probability rows, sinks, sigmoid, score modifiers in
 * heed.h's order, fully masked rows, logits of 1e4, GQA, f16/bf16/f64 operands), heed_attn_merge
 * over random key splits, and the descriptor checks' messages. */
#include "attn/attn.h"
#include "harness.h"

#include <string.h>

static heed_ctx *ctx;

/* A small problem, contiguous f32: q [B,Hq,Tq,D], k [B,Hkv,Tk,D], v [B,Hkv,Tk,Dv], o [B,Hq,Tq,Dv]. */
typedef struct prob {
    int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
    float *q, *k, *v, *o, *lse;
    heed_tensor ot;
    heed_attn_desc d;
} prob;

static void prob_init(prob *p, int64_t B, int64_t Hq, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t D, int64_t Dv)
{
    memset(p, 0, sizeof *p);
    p->B = B, p->Hq = Hq, p->Hkv = Hkv, p->Tq = Tq, p->Tk = Tk, p->D = D, p->Dv = Dv;
    p->q = calloc((size_t)(B * Hq * Tq * D + 1), sizeof(float));
    p->k = calloc((size_t)(B * Hkv * Tk * D + 1), sizeof(float));
    p->v = calloc((size_t)(B * Hkv * Tk * Dv + 1), sizeof(float));
    p->o = calloc((size_t)(B * Hq * Tq * Dv + 1), sizeof(float));
    p->lse = calloc((size_t)(B * Hq * Tq + 1), sizeof(float));
    heed_attn_desc_init(&p->d);
    p->d.q = heed_tensor_4d(p->q, HEED_F32, B, Hq, Tq, D);
    p->d.k = heed_tensor_4d(p->k, HEED_F32, B, Hkv, Tk, D);
    p->d.v = heed_tensor_4d(p->v, HEED_F32, B, Hkv, Tk, Dv);
    p->ot = heed_tensor_4d(p->o, HEED_F32, B, Hq, Tq, Dv);
}

static void prob_free(prob *p) { free(p->q), free(p->k), free(p->v), free(p->o), free(p->lse); }

static void prob_random(prob *p, t_rng *r, float qscale)
{
    t_fill_normal(r, p->q, p->B * p->Hq * p->Tq * p->D, qscale);
    t_fill_normal(r, p->k, p->B * p->Hkv * p->Tk * p->D, 1.0f);
    t_fill_normal(r, p->v, p->B * p->Hkv * p->Tk * p->Dv, 1.0f);
}

/* V = identity (Tk == Dv): the output row is the probability row. */
static void v_identity(prob *p)
{
    for (int64_t x = 0; x < p->B * p->Hkv * p->Tk * p->Dv; x++) p->v[x] = (x / p->Dv) % p->Tk == x % p->Dv;
}

static int all_finite_or_neg_inf(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (isnan(x[i]) || x[i] == INFINITY) return 0;
    return 1;
}

/* Compares row t of o and lse with expected probabilities p[Tk] and log-sum-exp. */
static void expect_row(const prob *p, int64_t row, const double *prob_row, double lse, double tol, const char *what)
{
    double e = 0;
    for (int64_t j = 0; j < p->Dv; j++) e = fmax(e, fabs(p->o[row * p->Dv + j] - prob_row[j]));
    CHECK(e <= tol, "%s: row %lld probabilities off by %.3g (bound %.1g)", what, (long long)row, e, tol);
    const double le = isinf(lse) ? (p->lse[row] == lse ? 0 : INFINITY) : fabs(p->lse[row] - lse) / (1 + fabs(lse));
    CHECK(le <= tol, "%s: row %lld lse %.9g, expected %.9g", what, (long long)row, (double)p->lse[row], lse);
}

/* softmax of n scores (with an optional extra sink logit) in closed form: p and lse */
static double softmax_closed(double *pr, const double *s, int n, double sink)
{
    double z = exp(sink);
    for (int j = 0; j < n; j++) z += exp(s[j]);
    for (int j = 0; j < n; j++) pr[j] = exp(s[j]) / z;
    return log(z);
}

/* A 2 x 3 case by hand: D = 1, scale 1, q = [1, 2], k = [0, 1, 2], V = I: scores [0,1,2] and [0,2,4].
 * Then causal with q_offset 1 (rows at positions 1 and 2), then a sink logit. */
static void test_hand(void)
{
    prob p;
    prob_init(&p, 1, 1, 1, 2, 3, 1, 3);
    p.q[0] = 1, p.q[1] = 2;
    p.k[0] = 0, p.k[1] = 1, p.k[2] = 2;
    v_identity(&p);
    p.d.scale = 1;
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
    const double e = exp(1.0), e2 = e * e, e4 = e2 * e2;
    double r0[3] = {1 / (1 + e + e2), e / (1 + e + e2), e2 / (1 + e + e2)};
    double r1[3] = {1 / (1 + e2 + e4), e2 / (1 + e2 + e4), e4 / (1 + e2 + e4)};
    expect_row(&p, 0, r0, log(1 + e + e2), 1e-6, "2x3 by hand");
    expect_row(&p, 1, r1, log(1 + e2 + e4), 1e-6, "2x3 by hand");
    /* causal, q_offset 1: row 0 (position 1) sees keys 0, 1 */
    p.d.mask.kind = HEED_MASK_CAUSAL;
    p.d.q_offset = 1;
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
    double c0[3] = {1 / (1 + e), e / (1 + e), 0};
    expect_row(&p, 0, c0, log(1 + e), 1e-6, "2x3 causal");
    expect_row(&p, 1, r1, log(1 + e2 + e4), 1e-6, "2x3 causal");
    /* a sink logit of 1.5 takes mass exp(1.5) / (Z + exp(1.5)) away from the keys */
    float sink = 1.5f;
    p.d.mask.kind = HEED_MASK_NONE;
    p.d.q_offset = 0;
    p.d.sink_logit = &sink;
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
    const double z0 = 1 + e + e2 + exp(1.5);
    double s0[3] = {1 / z0, e / z0, e2 / z0};
    expect_row(&p, 0, s0, log(z0), 1e-6, "2x3 sink");
    double mass = p.o[0] + p.o[1] + p.o[2];
    CHECK(fabs(mass - (1 + e + e2) / z0) < 1e-6 && mass < 1, "sink: key mass %.6f", mass);
    /* default scale 1/sqrt(D) with D = 4: q = [2,0,0,0] . k = [0|1|2, 0,0,0] scaled by 1/2 */
    prob p4;
    prob_init(&p4, 1, 1, 1, 1, 3, 4, 3);
    p4.q[0] = 2;
    for (int j = 0; j < 3; j++) p4.k[4 * j] = (float)j;
    v_identity(&p4);
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p4.ot, p4.lse, &p4.d));
    double s[3] = {0, 1, 2}, pr[3];
    const double l = softmax_closed(pr, s, 3, -INFINITY);
    expect_row(&p4, 0, pr, l, 1e-6, "default scale 1/sqrt(D)");
    prob_free(&p4);
    prob_free(&p);
}

/* With V = identity the output row is the probability row: it sums to 1 over the visible keys and is
 * exactly 0 on the hidden ones, for random scores and every mask kind that needs no extra data. */
static void test_prob_rows(t_rng *r)
{
    static const heed_mask_kind kinds[] = {HEED_MASK_NONE, HEED_MASK_CAUSAL, HEED_MASK_WINDOW, HEED_MASK_PREFIX_BIDIR,
                                           HEED_MASK_NEIGHBOR_1D, HEED_MASK_S2};
    double worst = 0;
    for (int it = 0; it < 60; it++) {
        prob p;
        prob_init(&p, 1, 3, 1, 7, 9, 5, 9);
        prob_random(&p, r, 2.0f);
        v_identity(&p);
        heed_mask *m = &p.d.mask;
        m->kind = kinds[it % 6];
        m->left = 2, m->right = 1, m->n_sink = 1, m->prefix_begin = 1, m->prefix_end = 4;
        m->kernel[0] = 3, m->seq_len = 9, m->block = 2, m->local_blocks = 1, m->vert_stride = 2;
        p.d.q_offset = 2;
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
        for (int64_t h = 0; h < 3; h++)
            for (int64_t t = 0; t < 7; t++) {
                double sum = 0;
                int hidden_ok = 1;
                for (int64_t j = 0; j < 9; j++) {
                    const float pj = p.o[(h * 7 + t) * 9 + j];
                    sum += pj;
                    if (!heed_mask_visible(m, t + 2, j, h)) hidden_ok &= pj == 0;
                }
                worst = fmax(worst, fabs(sum - 1));
                CHECK(fabs(sum - 1) <= 1e-6 && hidden_ok, "kind %d head %lld row %lld: probabilities sum to %.9f%s",
                      (int)m->kind, (long long)h, (long long)t, sum, hidden_ok ? "" : ", mass on hidden keys");
            }
        prob_free(&p);
    }
    printf("probability rows: worst |sum - 1| = %.3g (bound 1e-6)\n", worst);
}

/* Score modifiers in heed.h's order, on 2 keys (D = 1, q = 1, k = [3, -1], scale 0.5, query at
 * position 4): s = dot*scale; s *= 1 + tau*log(i+1); s = c*tanh(s/c); s += -slope*(i-j); s += bias. */
static void test_modifiers(void)
{
    prob p;
    prob_init(&p, 1, 2, 1, 1, 2, 1, 2);
    p.q[0] = p.q[1] = 1;
    p.k[0] = 3, p.k[1] = -1;
    v_identity(&p);
    p.d.scale = 0.5f;
    p.d.q_offset = 4;
    float tau[2] = {0.25f, 0}, slope[2] = {0.5f, 0.125f}, bias[4] = {0.75f, -INFINITY, 0.5f, 0.25f};
    heed_tensor bt = heed_tensor_4d(bias, HEED_F32, 1, 2, 1, 2);
    const double c = 1.25, i = 4;
    for (int mods = 0; mods < 16; mods++) {
        p.d.temp_scale = mods & 1 ? tau : NULL;
        p.d.softcap = mods & 2 ? (float)c : 0;
        p.d.alibi_slopes = mods & 4 ? slope : NULL;
        p.d.bias = mods & 8 ? &bt : NULL;
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
        for (int h = 0; h < 2; h++) {
            double s[2], pr[2];
            for (int j = 0; j < 2; j++) {
                s[j] = p.k[j] * 0.5;
                if (mods & 1) s[j] *= 1 + tau[h] * log(i + 1);
                if (mods & 2) s[j] = c * tanh(s[j] / c);
                if (mods & 4) s[j] += -slope[h] * (i - j);
                if (mods & 8) s[j] += bias[h * 2 + j];
            }
            const double l = softmax_closed(pr, s, 2, -INFINITY);
            char what[64];
            snprintf(what, sizeof what, "modifiers %d head %d", mods, h);
            expect_row(&p, h, pr, l, 1e-6, what);
        }
    }
    /* sigmoid: p_j = 1 / (1 + exp(-(s_j + b))), no normalisation; default b = -log(Tk) */
    p.d.temp_scale = NULL, p.d.softcap = 0, p.d.alibi_slopes = NULL, p.d.bias = NULL;
    p.d.norm = HEED_NORM_SIGMOID;
    for (int def = 0; def < 2; def++) {
        p.d.sigmoid_bias = def ? NAN : 0.3f;
        const double b = def ? -log(2.0) : 0.3;
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
        double pr[2] = {1 / (1 + exp(-(1.5 + b))), 1 / (1 + exp(-(-0.5 + b)))};
        expect_row(&p, 0, pr, log(pr[0] + pr[1]), 1e-6, def ? "sigmoid default bias" : "sigmoid bias 0.3");
    }
    prob_free(&p);
}

/* Rows that see no key: O = 0 and lse = -inf (or the sink logit), never NaN, for softmax and sigmoid;
 * a row hidden by -inf biases; no keys at all (Tk = 0). */
static void test_fully_masked(t_rng *r)
{
    for (int variant = 0; variant < 5; variant++) {
        prob p;
        prob_init(&p, 2, 2, 1, 3, variant == 4 ? 0 : 4, 8, 8);
        prob_random(&p, r, 1.0f);
        float sink[2] = {0.7f, -2.0f};
        float *bias = malloc(sizeof(float) * 3 * 4 + 1);
        heed_tensor bt = heed_tensor_4d(bias, HEED_F32, 1, 1, 3, 4);
        for (int x = 0; x < 12; x++) bias[x] = -INFINITY;
        if (variant < 3) { /* keys at positions 10.. after every query (causal) */
            p.d.mask.kind = HEED_MASK_CAUSAL;
            p.d.k_offset = 10;
        }
        if (variant == 1) p.d.sink_logit = sink;
        if (variant == 2) p.d.norm = HEED_NORM_SIGMOID;
        if (variant == 3) p.d.bias = &bt;
        for (int64_t x = 0; x < 2 * 2 * 3 * 8; x++) p.o[x] = NAN;
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
        int ok = 1;
        for (int64_t x = 0; x < 2 * 2 * 3 * 8; x++) ok &= p.o[x] == 0.0f;
        for (int64_t row = 0; row < 12; row++) {
            const float want = variant == 1 ? sink[(row / 3) % 2] : -INFINITY;
            ok &= p.lse[row] == want;
        }
        CHECK(ok, "fully masked rows, variant %d: O must be 0 and lse -inf (or the sink)", variant);
        free(bias);
        prob_free(&p);
    }
}

/* Logits of magnitude 1e4 stay finite: q = 1e4, k = [1, 1 - 2^-10, 0.5, -1], scale 1. */
static void test_large_logits(void)
{
    prob p;
    prob_init(&p, 1, 1, 1, 1, 4, 1, 4);
    p.q[0] = 1e4f;
    const float kk[4] = {1, 1 - 1.0f / 1024, 0.5f, -1};
    memcpy(p.k, kk, sizeof kk);
    v_identity(&p);
    p.d.scale = 1;
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
    double s[4], pr[4];
    for (int j = 0; j < 4; j++) s[j] = 1e4 * kk[j] - 1e4; /* shifted: the closed form itself stays finite */
    const double l = 1e4 + softmax_closed(pr, s, 4, -INFINITY);
    expect_row(&p, 0, pr, l, 1e-6, "logits 1e4");
    p.q[0] = -1e4f;
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
    CHECK(fabs(p.o[3] - 1) < 1e-6 && fabs(p.lse[0] - 1e4) < 1e-2, "logits -1e4: the key at -1 wins (o %g, lse %g)",
          (double)p.o[3], (double)p.lse[0]);
    p.d.norm = HEED_NORM_SIGMOID;
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
    CHECK(all_finite_or_neg_inf(p.o, 4) && all_finite_or_neg_inf(p.lse, 1) && fabs(p.o[3] - 1) < 1e-6,
          "sigmoid with logits 1e4: o %g %g %g %g", (double)p.o[0], (double)p.o[1], (double)p.o[2], (double)p.o[3]);
    prob_free(&p);
}

/* GQA: query heads h of a group read KV head h / G: equal, bit for bit, to the same call with the KV
 * heads repeated G times (Hkv = Hq). */
static void test_gqa(t_rng *r)
{
    prob g, full;
    prob_init(&g, 2, 6, 2, 5, 9, 7, 5);
    prob_init(&full, 2, 6, 6, 5, 9, 7, 5);
    prob_random(&g, r, 1.0f);
    memcpy(full.q, g.q, sizeof(float) * 2 * 6 * 5 * 7);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 6; h++) {
            memcpy(full.k + (b * 6 + h) * 9 * 7, g.k + (b * 2 + h / 3) * 9 * 7, sizeof(float) * 9 * 7);
            memcpy(full.v + (b * 6 + h) * 9 * 5, g.v + (b * 2 + h / 3) * 9 * 5, sizeof(float) * 9 * 5);
        }
    g.d.mask.kind = full.d.mask.kind = HEED_MASK_S2; /* per-head mask: the query head's index counts */
    g.d.mask.block = full.d.mask.block = 2;
    g.d.mask.local_blocks = full.d.mask.local_blocks = 1;
    g.d.mask.vert_stride = full.d.mask.vert_stride = 3;
    g.d.q_offset = full.d.q_offset = 4;
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &g.ot, g.lse, &g.d));
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &full.ot, full.lse, &full.d));
    CHECK(t_max_abs(g.o, full.o, 2 * 6 * 5 * 5) == 0 && t_max_abs(g.lse, full.lse, 2 * 6 * 5) == 0,
          "GQA differs from repeated KV heads: max abs %g", t_max_abs(g.o, full.o, 2 * 6 * 5 * 5));
    prob_free(&g);
    prob_free(&full);
}

/* f16 / bf16 K and V give exactly the f32 result on the rounded values; f64 operands (and an f64
 * output) agree with f32 up to the output's f32 rounding. */
static void test_dtypes(t_rng *r)
{
    prob p;
    prob_init(&p, 1, 2, 2, 4, 11, 16, 12);
    prob_random(&p, r, 1.0f);
    p.d.mask.kind = HEED_MASK_CAUSAL;
    p.d.q_offset = 7;
    const int64_t nk = 2 * 11 * 16, nv = 2 * 11 * 12, no = 2 * 4 * 12;
    uint16_t *k16 = malloc(sizeof(uint16_t) * (size_t)nk), *v16 = malloc(sizeof(uint16_t) * (size_t)nv);
    float *o16 = malloc(sizeof(float) * (size_t)no), lse16[8];
    for (int bf = 0; bf < 2; bf++) {
        for (int64_t x = 0; x < nk; x++) {
            k16[x] = bf ? heed_f32_to_bf16(p.k[x]) : heed_f32_to_f16(p.k[x]);
            p.k[x] = bf ? heed_bf16_to_f32(k16[x]) : heed_f16_to_f32(k16[x]); /* the rounded values */
        }
        for (int64_t x = 0; x < nv; x++) {
            v16[x] = bf ? heed_f32_to_bf16(p.v[x]) : heed_f32_to_f16(p.v[x]);
            p.v[x] = bf ? heed_bf16_to_f32(v16[x]) : heed_f16_to_f32(v16[x]);
        }
        heed_attn_desc d = p.d;
        d.k = heed_tensor_4d(k16, bf ? HEED_BF16 : HEED_F16, 1, 2, 11, 16);
        d.v = heed_tensor_4d(v16, bf ? HEED_BF16 : HEED_F16, 1, 2, 11, 12);
        heed_tensor ot = heed_tensor_4d(o16, HEED_F32, 1, 2, 4, 12);
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &ot, lse16, &d));
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, p.lse, &p.d));
        CHECK(t_max_abs(o16, p.o, no) == 0 && t_max_abs(lse16, p.lse, 8) == 0,
              "%s K/V differ from f32 on the rounded values: max abs %g", bf ? "bf16" : "f16", t_max_abs(o16, p.o, no));
    }
    /* f64 everywhere */
    double *q64 = malloc(sizeof(double) * 2 * 4 * 16), *k64 = malloc(sizeof(double) * (size_t)nk);
    double *v64 = malloc(sizeof(double) * (size_t)nv), *o64 = malloc(sizeof(double) * (size_t)no);
    for (int64_t x = 0; x < 2 * 4 * 16; x++) q64[x] = p.q[x];
    for (int64_t x = 0; x < nk; x++) k64[x] = p.k[x];
    for (int64_t x = 0; x < nv; x++) v64[x] = p.v[x];
    heed_attn_desc d = p.d;
    d.q = heed_tensor_4d(q64, HEED_F64, 1, 2, 4, 16);
    d.k = heed_tensor_4d(k64, HEED_F64, 1, 2, 11, 16);
    d.v = heed_tensor_4d(v64, HEED_F64, 1, 2, 11, 12);
    heed_tensor ot = heed_tensor_4d(o64, HEED_F64, 1, 2, 4, 12);
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &ot, lse16, &d));
    double e = 0;
    for (int64_t x = 0; x < no; x++) e = fmax(e, fabs(o64[x] - p.o[x]) / (1 + fabs(o64[x])));
    CHECK(e <= 1.2e-7, "f64 operands vs f32: relative difference %g (bound 1.2e-7, the f32 rounding)", e);
    free(q64), free(k64), free(v64), free(o64), free(k16), free(v16), free(o16);
    prob_free(&p);
}

/* Merge: a random split of the keys into parts (some empty or fully masked for some rows), each
 * computed over its keys at their absolute positions (k_offset) without the sink, then merged with
 * the sink, equals the whole call. Bounds: NMSE 1e-12 and max abs 2e-6 on O (f32 partials), lse within
 * 1e-6 relative. Also in place (o aliasing parts_o[0]) and sigmoid (parts add). */
static void test_merge(t_rng *r)
{
    double worst_nmse = 0, worst_abs = 0;
    for (int it = 0; it < 60; it++) {
        const int64_t B = t_int(r, 1, 2), Hkv = t_int(r, 1, 2), Hq = Hkv * t_int(r, 1, 3), Tq = t_int(r, 1, 6);
        const int64_t Tk = t_int(r, 1, 40), D = t_int(r, 1, 9), Dv = t_int(r, 1, 9);
        prob w;
        prob_init(&w, B, Hq, Hkv, Tq, Tk, D, Dv);
        prob_random(&w, r, 1.0f);
        float sink[6], slope[6];
        for (int h = 0; h < 6; h++) sink[h] = t_normal(r), slope[h] = 0.1f * (float)t_uniform(r);
        float *bias = malloc(sizeof(float) * (size_t)(Tq * Tk));
        for (int64_t x = 0; x < Tq * Tk; x++) bias[x] = t_int(r, 0, 7) == 0 ? -INFINITY : t_normal(r);
        heed_tensor bt = heed_tensor_4d(bias, HEED_F32, 1, 1, Tq, Tk);
        const int sigmoid = it % 4 == 3;
        w.d.mask.kind = it % 2 ? HEED_MASK_CAUSAL : HEED_MASK_WINDOW;
        w.d.mask.left = 5, w.d.mask.right = 0, w.d.mask.n_sink = 2;
        w.d.q_offset = t_int(r, 0, Tk);
        w.d.alibi_slopes = slope;
        w.d.bias = t_int(r, 0, 1) ? &bt : NULL;
        if (sigmoid) w.d.norm = HEED_NORM_SIGMOID, w.d.sigmoid_bias = -1.5f; /* explicit: the default depends on Tk */
        else w.d.sink_logit = t_int(r, 0, 1) ? sink : NULL;
        CHECK_OK(ctx, heed_attn_forward_ref(ctx, &w.ot, w.lse, &w.d));

        enum { MAXP = 5 };
        const int n_parts = (int)t_int(r, 1, MAXP);
        int64_t cut[MAXP + 1];
        cut[0] = 0, cut[n_parts] = Tk;
        for (int p = 1; p < n_parts; p++) cut[p] = t_int(r, cut[p - 1], Tk); /* parts may be empty */
        const int64_t no = B * Hq * Tq * Dv, nl = B * Hq * Tq;
        float *po = malloc(sizeof(float) * (size_t)(no * n_parts + 1));
        float *pl = malloc(sizeof(float) * (size_t)(nl * n_parts + 1));
        heed_tensor views[MAXP], kb, vb;
        const float *lses[MAXP];
        heed_tensor pbias[MAXP];
        for (int p = 0; p < n_parts; p++) {
            heed_attn_desc d = w.d;
            d.sink_logit = NULL;
            kb = w.d.k, vb = w.d.v;
            kb.data = (char *)kb.data + cut[p] * kb.nb[2], kb.ne[2] = cut[p + 1] - cut[p];
            vb.data = (char *)vb.data + cut[p] * vb.nb[2], vb.ne[2] = cut[p + 1] - cut[p];
            d.k = kb, d.v = vb;
            d.k_offset = cut[p];
            if (w.d.bias) {
                pbias[p] = bt;
                pbias[p].data = bias + cut[p];
                pbias[p].ne[3] = cut[p + 1] - cut[p];
                d.bias = &pbias[p];
            }
            views[p] = heed_tensor_4d(po + p * no, HEED_F32, B, Hq, Tq, Dv);
            lses[p] = pl + p * nl;
            CHECK_OK(ctx, heed_attn_forward_ref(ctx, &views[p], pl + p * nl, &d));
        }
        float *mo = malloc(sizeof(float) * (size_t)no), *ml = malloc(sizeof(float) * (size_t)nl);
        heed_tensor mt = heed_tensor_4d(mo, HEED_F32, B, Hq, Tq, Dv);
        CHECK_OK(ctx, heed_attn_merge(ctx, &mt, ml, views, lses, n_parts, w.d.sink_logit, w.d.norm));
        const double nmse = t_nmse(mo, w.o, no), mabs = t_max_abs(mo, w.o, no);
        worst_nmse = fmax(worst_nmse, nmse), worst_abs = fmax(worst_abs, mabs);
        CHECK(nmse <= 1e-12 && mabs <= 2e-6, "merge case %d (%d parts%s): nmse %.3g max abs %.3g", it, n_parts,
              sigmoid ? ", sigmoid" : "", nmse, mabs);
        int lse_ok = 1;
        for (int64_t x = 0; x < nl; x++)
            lse_ok &= isinf(w.lse[x]) ? ml[x] == w.lse[x] : fabs(ml[x] - w.lse[x]) <= 1e-6 * (1 + fabs(w.lse[x]));
        CHECK(lse_ok, "merge case %d: lse differs", it);
        /* in place: o is parts_o[0] */
        CHECK_OK(ctx, heed_attn_merge(ctx, &views[0], NULL, views, lses, n_parts, w.d.sink_logit, w.d.norm));
        CHECK(t_max_abs(po, mo, no) == 0, "merge case %d: in-place merge differs", it);
        free(po), free(pl), free(mo), free(ml), free(bias);
        prob_free(&w);
    }
    printf("merge vs whole call: worst nmse %.3g (bound 1e-12), max abs %.3g (bound 2e-6)\n", worst_nmse, worst_abs);
    /* partials with lse -inf, and a sink logit applied once: exp(l1) o1 / (exp(l1) + exp(s)) */
    float o1[2] = {1, 2}, o2[2] = {NAN, NAN}, l1 = 0.5f, l2 = -INFINITY, sink = 0.25f, out[2], lo;
    heed_tensor v[2] = {heed_tensor_4d(o1, HEED_F32, 1, 1, 1, 2), heed_tensor_4d(o2, HEED_F32, 1, 1, 1, 2)};
    const float *ls[2] = {&l1, &l2};
    heed_tensor ot = heed_tensor_4d(out, HEED_F32, 1, 1, 1, 2);
    CHECK_OK(ctx, heed_attn_merge(ctx, &ot, &lo, v, ls, 2, &sink, HEED_NORM_SOFTMAX));
    const double z = exp(0.5) + exp(0.25);
    CHECK(fabs(out[0] - exp(0.5) / z) < 1e-7 && fabs(out[1] - 2 * exp(0.5) / z) < 1e-7 && fabs(lo - log(z)) < 1e-7,
          "merge with a -inf partial and a sink: %g %g lse %g", (double)out[0], (double)out[1], (double)lo);
    l1 = -INFINITY;
    o1[0] = o1[1] = 0;
    CHECK_OK(ctx, heed_attn_merge(ctx, &ot, &lo, v, ls, 2, NULL, HEED_NORM_SOFTMAX));
    CHECK(out[0] == 0 && out[1] == 0 && lo == -INFINITY, "merge of empty partials: O = 0, lse = -inf");
    CHECK(heed_attn_merge(ctx, &ot, &lo, v, ls, 2, &sink, HEED_NORM_SIGMOID) == HEED_ERR_INVALID,
          "merge: sink with sigmoid accepted");
    CHECK(heed_attn_merge(ctx, &v[1], &lo, v, ls, 2, NULL, HEED_NORM_SOFTMAX) == HEED_ERR_INVALID,
          "merge: o aliasing parts_o[1] accepted");
    heed_tensor bad = ot;
    bad.ne[3] = 3;
    CHECK(heed_attn_merge(ctx, &bad, &lo, v, ls, 2, NULL, HEED_NORM_SOFTMAX) == HEED_ERR_INVALID &&
              strstr(heed_ctx_error(ctx), "parts_o[0]") != NULL,
          "merge: mismatched part shape: %s", heed_ctx_error(ctx));
}

/* A bad descriptor is refused with HEED_ERR_INVALID and a message naming the field; o is not written. */
static void expect_refused(const heed_attn_desc *d, heed_tensor *o, const char *word, const char *what)
{
    float before = ((float *)o->data)[0];
    const heed_status s = heed_attn_forward_ref(ctx, o, NULL, d);
    CHECK(s == HEED_ERR_INVALID, "%s accepted", what);
    CHECK(strstr(heed_ctx_error(ctx), word) != NULL, "%s: message \"%s\" does not name %s", what, heed_ctx_error(ctx),
          word);
    CHECK(memcmp(&before, o->data, sizeof before) == 0, "%s: o written", what);
}

static void test_check(t_rng *r)
{
    prob p;
    prob_init(&p, 2, 4, 2, 3, 5, 8, 6);
    prob_random(&p, r, 1.0f);
    p.o[0] = 42;
    heed_attn_desc d;
    heed_attn_desc_init(&d);
    CHECK(d.norm == HEED_NORM_SOFTMAX && d.mask.kind == HEED_MASK_NONE && isnan(d.sigmoid_bias) && d.scale == 0,
          "heed_attn_desc_init defaults");
    CHECK(heed_attn_check(ctx, &p.d) == HEED_OK, "a valid descriptor: %s", heed_ctx_error(ctx));
    float sink[4] = {0}, nanv[4] = {0, NAN, 0, 0};
    float *bias = calloc(2 * 4 * 3 * 5, sizeof(float));
    heed_tensor bt = heed_tensor_4d(bias, HEED_F32, 2, 4, 3, 5);
    uint16_t h16[2 * 4 * 3 * 8];
    d = p.d, d.q.dtype = HEED_F16, d.q.nb[3] = 2, d.q.data = h16, expect_refused(&d, &p.ot, "q:", "f16 q");
    d = p.d, d.k.dtype = HEED_F16, expect_refused(&d, &p.ot, "v:", "k f16 but v f32");
    d = p.d, d.k.dtype = (heed_dtype)9, expect_refused(&d, &p.ot, "k:", "unknown k dtype");
    d = p.d, d.q.ne[1] = 3, expect_refused(&d, &p.ot, "k:", "Hq % Hkv != 0");
    d = p.d, d.k.ne[3] = 7, expect_refused(&d, &p.ot, "k:", "D mismatch");
    d = p.d, d.v.ne[0] = 1, expect_refused(&d, &p.ot, "v:", "batch mismatch");
    d = p.d, d.v.ne[2] = 4, expect_refused(&d, &p.ot, "v:", "Tk mismatch");
    d = p.d, d.k.nb[3] = 8, expect_refused(&d, &p.ot, "k:", "non-contiguous k rows");
    d = p.d, d.q.data = NULL, expect_refused(&d, &p.ot, "q:", "NULL q");
    d = p.d, d.q_offset = -1, expect_refused(&d, &p.ot, "q_offset", "negative q_offset");
    d = p.d, d.bias = &bt, bt.ne[1] = 2, expect_refused(&d, &p.ot, "bias", "bias heads 2 of 4");
    bt.ne[1] = 1, bt.ne[3] = 4, expect_refused(&d, &p.ot, "bias", "bias Tk 4 of 5");
    bt.ne[3] = 5, bt.dtype = HEED_F16, expect_refused(&d, &p.ot, "bias", "f16 bias");
    bt.dtype = HEED_F32;
    CHECK(heed_attn_check(ctx, &d) == HEED_OK, "a broadcast bias [2,1,3,5]: %s", heed_ctx_error(ctx));
    d = p.d, d.scale = NAN, expect_refused(&d, &p.ot, "scale", "NaN scale");
    d = p.d, d.scale = INFINITY, expect_refused(&d, &p.ot, "scale", "inf scale");
    d = p.d, d.softcap = -1, expect_refused(&d, &p.ot, "softcap", "negative softcap");
    d = p.d, d.sink_logit = sink, d.norm = HEED_NORM_SIGMOID;
    expect_refused(&d, &p.ot, "sink_logit", "sink with sigmoid");
    d = p.d, d.norm = HEED_NORM_SIGMOID, d.sigmoid_bias = INFINITY;
    expect_refused(&d, &p.ot, "sigmoid_bias", "inf bias");
    d = p.d, d.alibi_slopes = nanv, expect_refused(&d, &p.ot, "alibi_slopes", "NaN slope");
    d = p.d, d.temp_scale = nanv, expect_refused(&d, &p.ot, "temp_scale", "NaN temperature");
    d = p.d, d.norm = (heed_norm)5, expect_refused(&d, &p.ot, "norm", "unknown normalizer");
    d = p.d, d.mask.kind = HEED_MASK_S2, expect_refused(&d, &p.ot, "block", "S2 without a block size");
    d = p.d, d.mask.kind = HEED_MASK_NEIGHBOR_1D, d.mask.kernel[0] = 3, d.mask.seq_len = 5, d.q_offset = 3;
    expect_refused(&d, &p.ot, "q:", "neighborhood queries past the axis");
    d.q_offset = 2;
    CHECK(heed_attn_check(ctx, &d) == HEED_OK, "neighborhood queries [2, 5) on a 5-position axis: %s",
          heed_ctx_error(ctx));
    /* f64 is a valid descriptor for the reference, which the fast forward refuses as unsupported */
    double q64[2 * 4 * 3 * 8] = {0};
    d = p.d, d.q = heed_tensor_4d(q64, HEED_F64, 2, 4, 3, 8);
    CHECK_OK(ctx, heed_attn_forward_ref(ctx, &p.ot, NULL, &d));
    p.o[0] = 42;
    CHECK(heed_attn_forward(ctx, &p.ot, NULL, &d) == HEED_ERR_UNSUPPORTED && p.o[0] == 42,
          "the fast forward took f64 q: %s", heed_ctx_error(ctx));
    /* the output: shape, dtype, broadcast */
    heed_tensor o = p.ot;
    o.ne[2] = 2, expect_refused(&p.d, &o, "o:", "o with Tq 2 of 3");
    o = p.ot, o.dtype = HEED_F16, o.nb[3] = 2, expect_refused(&p.d, &o, "o:", "f16 o");
    o = p.ot, o.nb[1] = 0, expect_refused(&p.d, &o, "o:", "o broadcast over heads");
    CHECK(heed_attn_forward_ref(ctx, NULL, NULL, &p.d) == HEED_ERR_INVALID, "NULL o accepted");
    CHECK(heed_attn_forward_ref(ctx, &p.ot, NULL, NULL) == HEED_ERR_INVALID, "NULL descriptor accepted");
    free(bias);
    prob_free(&p);
}

int main(void)
{
    t_rng r = {0x7e57ab1e5eedULL};
    CHECK_OK(NULL, heed_ctx_create(&ctx, 1));
    if (!ctx) return t_done("test_attn_ref");
    test_hand();
    test_prob_rows(&r);
    test_modifiers();
    test_fully_masked(&r);
    test_large_logits();
    test_gqa(&r);
    test_dtypes(&r);
    test_merge(&r);
    test_check(&r);
    heed_ctx_free(ctx);
    return t_done("test_attn_ref");
}
