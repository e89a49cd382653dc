/* test_linear.c — linear attention (phi = elu + 1): the parallel and recurrent forms against an f64
 * reference written here from the definition and against each other, causal and not, strided views,
 * token-by-token decoding with heed_linear_attn_step, and argument errors.
 * Bounds (f32 accumulation over at most 200 keys): NMSE <= 1e-11, max abs error <= 1e-5 * max |ref|. */
#include "heed.h"
#include "harness.h"

#include <string.h>

static const float *rowf(const heed_tensor *t, int64_t b, int64_t h, int64_t i)
{
    return (const float *)((const char *)t->data + b * t->nb[0] + h * t->nb[1] + i * t->nb[2]);
}

static double phi64(double x) { return x > 0 ? x + 1 : exp(x); }

/* The definition, in f64: O_i = sum_j w_ij v_j / sum_j w_ij, w_ij = phi(q_i).phi(k_j), j <= i if causal. */
static void ref_linear(float *o, const heed_tensor *q, const heed_tensor *k, const heed_tensor *v, int causal)
{
    const int64_t B = q->ne[0], H = q->ne[1], T = q->ne[2], D = q->ne[3], Tk = k->ne[2], Dv = v->ne[3];
    double *acc = malloc((size_t)Dv * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const float *qr = rowf(q, b, h, t);
                double den = 0;
                for (int64_t e = 0; e < Dv; e++) acc[e] = 0;
                for (int64_t j = 0; j < (causal ? t + 1 : Tk); j++) {
                    const float *kr = rowf(k, b, h, j), *vr = rowf(v, b, h, j);
                    double w = 0;
                    for (int64_t d = 0; d < D; d++) w += phi64(qr[d]) * phi64(kr[d]);
                    den += w;
                    for (int64_t e = 0; e < Dv; e++) acc[e] += w * vr[e];
                }
                for (int64_t e = 0; e < Dv; e++) o[((b * H + h) * T + t) * Dv + e] = (float)(acc[e] / den);
            }
    free(acc);
}

static double max_abs_of(const float *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* A [B, H, T, D] view over memory laid out [B, T, H, D] (how a projection writes heads): strided. */
static heed_tensor bthd_view(float *data, int64_t B, int64_t H, int64_t T, int64_t D)
{
    heed_tensor t = {data, HEED_F32, {B, H, T, D}, {0, 0, 0, 4}};
    t.nb[2] = H * D * 4;
    t.nb[1] = D * 4;
    t.nb[0] = T * H * D * 4;
    return t;
}

static void check_close(const char *what, const float *got, const float *want, int64_t n)
{
    const double nmse = t_nmse(got, want, n), mx = t_max_abs(got, want, n), scale = max_abs_of(want, n);
    CHECK(nmse <= 1e-11 && mx <= 1e-5 * scale, "%s: nmse %.3g, max abs %.3g (max |ref| %.3g)", what, nmse, mx,
          scale);
}

static void run_case(heed_ctx *ctx, t_rng *r, int64_t B, int64_t H, int64_t T, int64_t Tk, int64_t D, int64_t Dv,
                     int causal, int strided)
{
    const int64_t nq = B * H * T * D, nk = B * H * Tk * D, nv = B * H * Tk * Dv, no = B * H * T * Dv;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4);
    float *o_par = malloc(no * 4), *o_rec = malloc(no * 4), *o_ref = malloc(no * 4), *o_str = malloc(no * 4);
    t_fill_normal(r, q, nq, 1.0f);
    t_fill_normal(r, k, nk, 1.0f);
    t_fill_normal(r, v, nv, 1.0f);
    heed_tensor tq = strided ? bthd_view(q, B, H, T, D) : heed_tensor_4d(q, HEED_F32, B, H, T, D);
    heed_tensor tk = strided ? bthd_view(k, B, H, Tk, D) : heed_tensor_4d(k, HEED_F32, B, H, Tk, D);
    heed_tensor tv = strided ? bthd_view(v, B, H, Tk, Dv) : heed_tensor_4d(v, HEED_F32, B, H, Tk, Dv);
    heed_tensor tpar = heed_tensor_4d(o_par, HEED_F32, B, H, T, Dv);
    heed_tensor trec = heed_tensor_4d(o_rec, HEED_F32, B, H, T, Dv);
    ref_linear(o_ref, &tq, &tk, &tv, causal);
    CHECK_OK(ctx, heed_linear_attn(ctx, &tpar, &tq, &tk, &tv, causal, HEED_LINEAR_PARALLEL));
    CHECK_OK(ctx, heed_linear_attn(ctx, &trec, &tq, &tk, &tv, causal, HEED_LINEAR_RECURRENT));
    char what[160];
    snprintf(what, sizeof what, "B%lld H%lld T%lld Tk%lld D%lld Dv%lld causal%d strided%d", (long long)B,
             (long long)H, (long long)T, (long long)Tk, (long long)D, (long long)Dv, causal, strided);
    printf("%s: parallel vs ref nmse %.2e, recurrent vs ref %.2e, parallel vs recurrent %.2e\n", what,
           t_nmse(o_par, o_ref, no), t_nmse(o_rec, o_ref, no), t_nmse(o_par, o_rec, no));
    check_close(what, o_par, o_ref, no);
    check_close(what, o_rec, o_ref, no);
    check_close(what, o_par, o_rec, no);

    /* A strided output ([B, T, H, Dv] memory) gets the same values. */
    heed_tensor tstr = bthd_view(o_str, B, H, T, Dv);
    CHECK_OK(ctx, heed_linear_attn(ctx, &tstr, &tq, &tk, &tv, causal, HEED_LINEAR_PARALLEL));
    double worst = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t e = 0; e < Dv; e++) {
                    double d = fabs(o_str[((b * T + t) * H + h) * Dv + e] - o_par[((b * H + h) * T + t) * Dv + e]);
                    worst = d > worst ? d : worst;
                }
    CHECK(worst == 0, "%s: strided output differs by %g", what, worst);

    /* Decoding one token at a time reproduces the causal result. */
    if (causal) {
        float *s = calloc(B * H * D * Dv, 4), *z = calloc(B * H * D, 4), *o_step = malloc(no * 4);
        for (int64_t t = 0; t < T; t++) {
            heed_tensor sq = tq, sk = tk, sv = tv;
            sq.data = (char *)q + t * tq.nb[2], sq.ne[2] = 1;
            sk.data = (char *)k + t * tk.nb[2], sk.ne[2] = 1;
            sv.data = (char *)v + t * tv.nb[2], sv.ne[2] = 1;
            heed_tensor so = {o_step + t * Dv, HEED_F32, {B, H, 1, Dv}, {H * T * Dv * 4, T * Dv * 4, Dv * 4, 4}};
            CHECK_OK(ctx, heed_linear_attn_step(ctx, &so, s, z, &sq, &sk, &sv));
        }
        printf("%s: step vs ref nmse %.2e\n", what, t_nmse(o_step, o_ref, no));
        check_close("step-by-step decoding", o_step, o_ref, no);
        CHECK(t_max_abs(o_step, o_rec, no) <= 1e-6 * max_abs_of(o_ref, no), "step vs recurrent %g",
              t_max_abs(o_step, o_rec, no));
        free(s), free(z), free(o_step);
    }
    free(q), free(k), free(v), free(o_par), free(o_rec), free(o_ref), free(o_str);
}

/* phi(q) = exp(q) underflows to 0 for q < about -104: the row's denominator is 0 and O must be 0, not
 * NaN, in both forms and in the step. Other rows are unaffected. */
static void test_underflow(heed_ctx *ctx)
{
    float q[3 * 4], k[3 * 4], v[3 * 2], o[3 * 2], s[4 * 2] = {0}, z[4] = {0};
    for (int i = 0; i < 12; i++) q[i] = i < 4 ? -200.0f : 0.5f, k[i] = 0.1f * (float)i;
    for (int i = 0; i < 6; i++) v[i] = (float)i;
    heed_tensor tq = heed_tensor_4d(q, HEED_F32, 1, 1, 3, 4), tk = heed_tensor_4d(k, HEED_F32, 1, 1, 3, 4);
    heed_tensor tv = heed_tensor_4d(v, HEED_F32, 1, 1, 3, 2), to = heed_tensor_4d(o, HEED_F32, 1, 1, 3, 2);
    for (int mode = 0; mode <= 1; mode++)
        for (int causal = 0; causal <= 1; causal++) {
            memset(o, 0xff, sizeof o); /* NaN everywhere, so every value must be written */
            CHECK_OK(ctx, heed_linear_attn(ctx, &to, &tq, &tk, &tv, causal, (heed_linear_mode)mode));
            CHECK(o[0] == 0 && o[1] == 0, "mode %d causal %d: underflowed row gives %g %g", mode, causal, o[0], o[1]);
            for (int i = 2; i < 6; i++)
                CHECK(isfinite(o[i]) && o[i] > 0, "mode %d causal %d: o[%d] = %g", mode, causal, i, o[i]);
        }
    heed_tensor q1 = heed_tensor_4d(q, HEED_F32, 1, 1, 1, 4), k1 = heed_tensor_4d(k, HEED_F32, 1, 1, 1, 4);
    heed_tensor v1 = heed_tensor_4d(v, HEED_F32, 1, 1, 1, 2), o1 = heed_tensor_4d(o, HEED_F32, 1, 1, 1, 2);
    memset(o, 0xff, sizeof o);
    CHECK_OK(ctx, heed_linear_attn_step(ctx, &o1, s, z, &q1, &k1, &v1));
    CHECK(o[0] == 0 && o[1] == 0, "step: underflowed row gives %g %g", o[0], o[1]);
}

static void check_err(heed_ctx *ctx, heed_status got, const char *needle)
{
    CHECK(got == HEED_ERR_INVALID, "expected HEED_ERR_INVALID, got %s", heed_status_name(got));
    CHECK(strstr(heed_ctx_error(ctx), needle) != NULL, "message \"%s\" lacks \"%s\"", heed_ctx_error(ctx), needle);
}

static void test_errors(heed_ctx *ctx)
{
    float q[2 * 3 * 4 * 5], k[2 * 3 * 6 * 5], v[2 * 3 * 6 * 7], o[2 * 3 * 4 * 7];
    float s[2 * 3 * 5 * 7], z[2 * 3 * 5];
    memset(q, 0, sizeof q), memset(k, 0, sizeof k), memset(v, 0, sizeof v);
    heed_tensor tq = heed_tensor_4d(q, HEED_F32, 2, 3, 4, 5), tk = heed_tensor_4d(k, HEED_F32, 2, 3, 6, 5);
    heed_tensor tv = heed_tensor_4d(v, HEED_F32, 2, 3, 6, 7), to = heed_tensor_4d(o, HEED_F32, 2, 3, 4, 7);
    CHECK_OK(ctx, heed_linear_attn(ctx, &to, &tq, &tk, &tv, 0, HEED_LINEAR_PARALLEL));
    check_err(ctx, heed_linear_attn(ctx, &to, &tq, &tk, &tv, 1, HEED_LINEAR_PARALLEL), "Tk == T");
    check_err(ctx, heed_linear_attn(ctx, &to, &tq, &tk, &tv, 0, (heed_linear_mode)7), "mode");
    check_err(ctx, heed_linear_attn(ctx, &to, NULL, &tk, &tv, 0, HEED_LINEAR_PARALLEL), "q: NULL");
    heed_tensor bad = tk;
    bad.ne[3] = 4;
    check_err(ctx, heed_linear_attn(ctx, &to, &tq, &bad, &tv, 0, HEED_LINEAR_PARALLEL), "k: shape");
    bad = tv;
    bad.ne[2] = 5;
    check_err(ctx, heed_linear_attn(ctx, &to, &tq, &tk, &bad, 0, HEED_LINEAR_PARALLEL), "v: shape");
    bad = tq;
    bad.dtype = HEED_F16;
    check_err(ctx, heed_linear_attn(ctx, &to, &bad, &tk, &tv, 0, HEED_LINEAR_RECURRENT), "q: dtype f16");
    bad = to;
    bad.nb[3] = 8;
    check_err(ctx, heed_linear_attn(ctx, &bad, &tq, &tk, &tv, 0, HEED_LINEAR_PARALLEL), "o: innermost stride");
    bad = to;
    bad.nb[1] = 0;
    check_err(ctx, heed_linear_attn(ctx, &bad, &tq, &tk, &tv, 0, HEED_LINEAR_PARALLEL), "o: stride 0");
    bad = to;
    bad.ne[3] = 5;
    check_err(ctx, heed_linear_attn(ctx, &bad, &tq, &tk, &tv, 0, HEED_LINEAR_PARALLEL), "o: shape");
    /* Broadcast inputs (stride 0) are allowed: every head reads the same keys. */
    heed_tensor bk = tk;
    bk.nb[1] = 0;
    CHECK_OK(ctx, heed_linear_attn(ctx, &to, &tq, &bk, &tv, 0, HEED_LINEAR_RECURRENT));

    heed_tensor q1 = heed_tensor_4d(q, HEED_F32, 2, 3, 1, 5), k1 = heed_tensor_4d(k, HEED_F32, 2, 3, 1, 5);
    heed_tensor v1 = heed_tensor_4d(v, HEED_F32, 2, 3, 1, 7), o1 = heed_tensor_4d(o, HEED_F32, 2, 3, 1, 7);
    memset(s, 0, sizeof s), memset(z, 0, sizeof z);
    CHECK_OK(ctx, heed_linear_attn_step(ctx, &o1, s, z, &q1, &k1, &v1));
    check_err(ctx, heed_linear_attn_step(ctx, &o1, NULL, z, &q1, &k1, &v1), "s: NULL");
    check_err(ctx, heed_linear_attn_step(ctx, &o1, s, NULL, &q1, &k1, &v1), "z: NULL");
    check_err(ctx, heed_linear_attn_step(ctx, &o1, s, z, &tq, &k1, &v1), "q: shape");
    check_err(ctx, heed_linear_attn_step(ctx, &o1, s, z, &q1, &tk, &v1), "k: shape");
    CHECK(heed_linear_attn(NULL, &to, &tq, &tk, &tv, 0, HEED_LINEAR_PARALLEL) == HEED_ERR_INVALID, "NULL ctx");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 2));
    if (!ctx) return t_done("test_linear");
    t_rng r = {0x1234567u};
    for (int causal = 0; causal <= 1; causal++) {
        run_case(ctx, &r, 1, 1, 1, 1, 1, 1, causal, 0);
        run_case(ctx, &r, 2, 3, 37, causal ? 37 : 29, 5, 7, causal, 0);
        run_case(ctx, &r, 1, 2, 150, causal ? 150 : 200, 64, 48, causal, 1);
        run_case(ctx, &r, 2, 2, 65, 65, 33, 1, causal, 1);
    }
    test_underflow(ctx);
    test_errors(ctx);
    heed_ctx_free(ctx);
    return t_done("test_linear");
}
