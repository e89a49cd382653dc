/* test_linear_bwd.c — heed_linear_attn_backward against central finite differences of an f64 forward
 * written here from the definition (L = sum(O * R), random R), at random odd shapes, causal and not;
 * a row whose denominator underflows; 1 vs 2 threads (bitwise); outputs overwritten; argument errors.
 * Bound: max abs error <= 1e-3 * max |FD| + 1e-6 (f32 analytic vs f64 differences, h = 1e-5 * max(1, |x|);
 * the absolute 1e-6 covers f32 rounding where the gradient is exactly 0, e.g. dq when D = 1). */
#include "heed.h"
#include "harness.h"

#include <string.h>

static double phi64(double x) { return x > 0 ? x + 1 : exp(x); }

/* Contiguous [B, H, T, D] operands in f64 and the weights R [B, H, T, Dv] of the loss. */
typedef struct {
    int64_t B, H, T, Tk, D, Dv;
    int causal;
    double *q, *k, *v, *r;
} problem;

/* L = sum over rows of O_i . R_i with O_i = sum_j w_ij v_j / sum_j w_ij, w_ij = phi(q_i).phi(k_j), j <= i
 * if causal: the definition, in f64. */
static double loss64(const problem *p)
{
    const int64_t H = p->H, T = p->T, Tk = p->Tk, D = p->D, Dv = p->Dv;
    double L = 0;
    for (int64_t bh = 0; bh < p->B * H; bh++)
        for (int64_t t = 0; t < T; t++) {
            const double *qr = p->q + (bh * T + t) * D, *rr = p->r + (bh * T + t) * Dv;
            double den = 0, num = 0;
            for (int64_t j = 0; j < (p->causal ? t + 1 : Tk); j++) {
                const double *kr = p->k + (bh * Tk + j) * D, *vr = p->v + (bh * Tk + j) * Dv;
                double w = 0, vr_r = 0;
                for (int64_t d = 0; d < D; d++) w += phi64(qr[d]) * phi64(kr[d]);
                for (int64_t e = 0; e < Dv; e++) vr_r += vr[e] * rr[e];
                den += w;
                num += w * vr_r;
            }
            L += num / den;
        }
    return L;
}

static double loss_cb(const void *p) { return loss64(p); }

/* Runs the backward on ctx; dq, dk, dv are allocated here, pre-filled with garbage (the outputs must be
 * overwritten). The operands are the f32 roundings of p's f64 values (which p is then set to). */
static void analytic(heed_ctx *ctx, float **dq, float **dk, float **dv, problem *p)
{
    const int64_t B = p->B, H = p->H, T = p->T, Tk = p->Tk, D = p->D, Dv = p->Dv;
    const int64_t nq = B * H * T * D, nk = B * H * Tk * D, nv = B * H * Tk * Dv, no = B * H * T * Dv;
    float *q = t_to_f32(p->q, nq), *k = t_to_f32(p->k, nk), *v = t_to_f32(p->v, nv), *r = t_to_f32(p->r, no);
    *dq = malloc((size_t)nq * 4), *dk = malloc((size_t)nk * 4), *dv = malloc((size_t)nv * 4);
    memset(*dq, 0x7f, (size_t)nq * 4), memset(*dk, 0x7f, (size_t)nk * 4), memset(*dv, 0x7f, (size_t)nv * 4);
    heed_tensor tq = heed_tensor_4d(q, HEED_F32, B, H, T, D), tk = heed_tensor_4d(k, HEED_F32, B, H, Tk, D);
    heed_tensor tv = heed_tensor_4d(v, HEED_F32, B, H, Tk, Dv), tr = heed_tensor_4d(r, HEED_F32, B, H, T, Dv);
    heed_tensor tdq = heed_tensor_4d(*dq, HEED_F32, B, H, T, D), tdk = heed_tensor_4d(*dk, HEED_F32, B, H, Tk, D);
    heed_tensor tdv = heed_tensor_4d(*dv, HEED_F32, B, H, Tk, Dv);
    CHECK_OK(ctx, heed_linear_attn_backward(ctx, &tdq, &tdk, &tdv, &tq, &tk, &tv, &tr, p->causal));
    for (int64_t i = 0; i < nq; i++) p->q[i] = q[i];
    for (int64_t i = 0; i < nk; i++) p->k[i] = k[i];
    for (int64_t i = 0; i < nv; i++) p->v[i] = v[i];
    free(q), free(k), free(v), free(r);
}

static double *randd(t_rng *rng, int64_t n, double scale)
{
    double *x = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * t_normal(rng));
    return x;
}

/* One random problem: analytic gradients against FD. When underflow_row >= 0, that query row of every
 * head is set to -200 (phi = 0 in f32: the forward gives O = 0) and the FD loss leaves the row out. */
static void run_case(heed_ctx *ctx, t_rng *rng, int64_t B, int64_t H, int64_t T, int64_t Tk, int64_t D, int64_t Dv,
                     int causal, int64_t underflow_row)
{
    problem p = {B, H, T, Tk, D, Dv, causal, NULL, NULL, NULL, NULL};
    const int64_t nq = B * H * T * D, nk = B * H * Tk * D, nv = B * H * Tk * Dv, no = B * H * T * Dv;
    p.q = randd(rng, nq, 1.0), p.k = randd(rng, nk, 1.0), p.v = randd(rng, nv, 1.0), p.r = randd(rng, no, 1.0);
    if (underflow_row >= 0)
        for (int64_t bh = 0; bh < B * H; bh++)
            for (int64_t d = 0; d < D; d++) p.q[(bh * T + underflow_row) * D + d] = -200;
    float *dq, *dk, *dv;
    analytic(ctx, &dq, &dk, &dv, &p);
    if (underflow_row >= 0)
        for (int64_t bh = 0; bh < B * H; bh++)
            for (int64_t e = 0; e < Dv; e++) p.r[(bh * T + underflow_row) * Dv + e] = 0;

    double *gq = malloc((size_t)nq * 8), *gk = malloc((size_t)nk * 8), *gv = malloc((size_t)nv * 8);
    t_fd_grad(gq, p.q, nq, 1e-5, loss_cb, &p);
    t_fd_grad(gk, p.k, nk, 1e-5, loss_cb, &p);
    t_fd_grad(gv, p.v, nv, 1e-5, loss_cb, &p);
    char what[160];
    snprintf(what, sizeof what, "B%lld H%lld T%lld Tk%lld D%lld Dv%lld causal%d underflow_row%lld", (long long)B,
             (long long)H, (long long)T, (long long)Tk, (long long)D, (long long)Dv, causal, (long long)underflow_row);
    char w2[200];
    snprintf(w2, sizeof w2, "%s dq", what), t_check_grad(w2, dq, gq, nq, 1e-3, 1e-6);
    snprintf(w2, sizeof w2, "%s dk", what), t_check_grad(w2, dk, gk, nk, 1e-3, 1e-6);
    snprintf(w2, sizeof w2, "%s dv", what), t_check_grad(w2, dv, gv, nv, 1e-3, 1e-6);
    if (underflow_row >= 0) {
        int zero = 1;
        for (int64_t bh = 0; bh < B * H; bh++)
            for (int64_t d = 0; d < D; d++) zero &= dq[(bh * T + underflow_row) * D + d] == 0.0f;
        CHECK(zero, "%s: dq of the underflowed row is not 0", what);
    }
    free(dq), free(dk), free(dv), free(gq), free(gk), free(gv);
    free(p.q), free(p.k), free(p.v), free(p.r);
}

/* A larger problem: 1 and 2 threads give the same bits. */
static void run_threads(heed_ctx *ctx1, heed_ctx *ctx2, t_rng *rng, int causal)
{
    const int64_t B = 2, H = 3, T = 67, Tk = causal ? T : 45, D = 17, Dv = 11;
    problem p = {B, H, T, Tk, D, Dv, causal, NULL, NULL, NULL, NULL};
    p.q = randd(rng, B * H * T * D, 1.0), p.k = randd(rng, B * H * Tk * D, 1.0);
    p.v = randd(rng, B * H * Tk * Dv, 1.0), p.r = randd(rng, B * H * T * Dv, 1.0);
    float *dq1, *dk1, *dv1, *dq2, *dk2, *dv2;
    analytic(ctx1, &dq1, &dk1, &dv1, &p);
    analytic(ctx2, &dq2, &dk2, &dv2, &p);
    CHECK(memcmp(dq1, dq2, (size_t)(B * H * T * D) * 4) == 0 && memcmp(dk1, dk2, (size_t)(B * H * Tk * D) * 4) == 0 &&
              memcmp(dv1, dv2, (size_t)(B * H * Tk * Dv) * 4) == 0,
          "causal %d: 1 and 2 threads differ", causal);
    free(dq1), free(dk1), free(dv1), free(dq2), free(dk2), free(dv2);
    free(p.q), free(p.k), free(p.v), free(p.r);
}

static void run_errors(heed_ctx *ctx)
{
    float buf[2 * 3 * 4] = {0}, g[2 * 3 * 4];
    heed_tensor q = heed_tensor_4d(buf, HEED_F32, 1, 2, 3, 4), k = heed_tensor_4d(buf, HEED_F32, 1, 2, 2, 4);
    heed_tensor v = heed_tensor_4d(buf, HEED_F32, 1, 2, 2, 4), d_o = heed_tensor_4d(buf, HEED_F32, 1, 2, 3, 4);
    heed_tensor dq = heed_tensor_4d(g, HEED_F32, 1, 2, 3, 4), dk = heed_tensor_4d(g, HEED_F32, 1, 2, 2, 4);
    heed_tensor dv = heed_tensor_4d(g, HEED_F32, 1, 2, 2, 4), bad_dk = heed_tensor_4d(g, HEED_F32, 1, 2, 3, 4);
    CHECK(heed_linear_attn_backward(ctx, &dq, &dk, &dv, &q, &k, &v, &d_o, 1) == HEED_ERR_INVALID,
          "causal with Tk != T accepted");
    CHECK(heed_linear_attn_backward(ctx, &dq, &dk, &dv, &q, &k, &v, &d_o, 0) == HEED_OK, "%s", heed_ctx_error(ctx));
    CHECK(heed_linear_attn_backward(ctx, &dq, &bad_dk, &dv, &q, &k, &v, &d_o, 0) == HEED_ERR_INVALID,
          "dk of the wrong shape accepted");
    CHECK(heed_linear_attn_backward(ctx, &dq, &dk, &dv, &q, &k, &v, NULL, 0) == HEED_ERR_INVALID,
          "NULL d_o accepted");
}

int main(void)
{
    heed_ctx *ctx1 = NULL, *ctx2 = NULL;
    CHECK_OK(ctx1, heed_ctx_create(&ctx1, 1));
    CHECK_OK(ctx2, heed_ctx_create(&ctx2, 2));
    if (!ctx1 || !ctx2) return t_done("test_linear_bwd");
    t_rng rng = {0x11ea7b0d};

    run_case(ctx2, &rng, 1, 1, 1, 1, 1, 1, 1, -1); /* one token, one feature */
    for (int i = 0; i < 12; i++) {
        const int causal = i % 2;
        const int64_t T = t_int(&rng, 1, 9), Tk = causal ? T : t_int(&rng, 1, 9);
        run_case(i % 3 ? ctx2 : ctx1, &rng, t_int(&rng, 1, 2), t_int(&rng, 1, 3), T, Tk, t_int(&rng, 1, 7),
                 t_int(&rng, 1, 5), causal, -1);
    }
    run_case(ctx2, &rng, 2, 2, 6, 6, 5, 3, 1, 2);
    run_case(ctx2, &rng, 1, 2, 5, 4, 3, 4, 0, 4);
    run_case(ctx2, &rng, 1, 1, 4, 4, 3, 2, 1, 0);
    run_threads(ctx1, ctx2, &rng, 1);
    run_threads(ctx1, ctx2, &rng, 0);
    run_errors(ctx1);

    heed_ctx_free(ctx1);
    heed_ctx_free(ctx2);
    return t_done("test_linear_bwd");
}
