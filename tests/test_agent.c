/* test_agent.c — agent attention against an f64 reference written here from the definition (adaptive
 * pooling, two materialised softmaxes), on odd shapes, overlapping pooling windows, strided views,
 * f16/bf16 K/V and fewer KV heads; the exact identities n_agents = T (agents = Q) and n_agents = 1
 * (every output row the same); and argument errors.
 * Bounds (f32 kernels vs f64): NMSE <= 1e-10, max abs error <= 1e-5 * max |ref|. */
#include "heed.h"
#include "harness.h"

#include <string.h>

static const float *rowf(const heed_tensor *t, int64_t b, int64_t h, int64_t i)
{
    return (const float *)((const char *)t->data + b * t->nb[0] + h * t->nb[1] + i * t->nb[2]);
}

/* Element e of row (b, h, i) of a K or V view of any dtype, as f64. */
static double kv_at(const heed_tensor *t, int64_t b, int64_t h, int64_t i, int64_t e)
{
    const char *row = (const char *)t->data + b * t->nb[0] + h * t->nb[1] + i * t->nb[2];
    switch (t->dtype) {
    case HEED_F16: return heed_f16_to_f32(((const uint16_t *)row)[e]);
    case HEED_BF16: return heed_bf16_to_f32(((const uint16_t *)row)[e]);
    default: return ((const float *)row)[e];
    }
}

/* out[i] = sum_j softmax_j(s * x_i . y_j) w_j for n_x rows x, n_y rows y, all f64 contiguous. */
static void softmax_attn64(double *out, const double *x, const double *y, const double *w, int64_t nx, int64_t ny,
                           int64_t D, int64_t Dv, double s)
{
    double *p = malloc((size_t)ny * sizeof(double));
    for (int64_t i = 0; i < nx; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < ny; j++) {
            double dot = 0;
            for (int64_t d = 0; d < D; d++) dot += x[i * D + d] * y[j * D + d];
            p[j] = s * dot;
            mx = p[j] > mx ? p[j] : mx;
        }
        for (int64_t j = 0; j < ny; j++) sum += p[j] = exp(p[j] - mx);
        for (int64_t e = 0; e < Dv; e++) {
            double acc = 0;
            for (int64_t j = 0; j < ny; j++) acc += p[j] / sum * w[j * Dv + e];
            out[i * Dv + e] = acc;
        }
    }
    free(p);
}

/* The definition in f64; o: [B, H, T, Dv] contiguous. */
static void ref_agent(float *o, const heed_tensor *q, const heed_tensor *k, const heed_tensor *v, int64_t n,
                      float scale)
{
    const int64_t B = q->ne[0], H = q->ne[1], T = q->ne[2], D = q->ne[3], Hkv = k->ne[1], Tk = k->ne[2];
    const int64_t Dv = v->ne[3];
    const double s = scale == 0 ? 1 / sqrt((double)D) : scale;
    double *qd = malloc(T * D * 8), *a = malloc(n * D * 8), *kd = malloc(Tk * D * 8), *vd = malloc(Tk * Dv * 8);
    double *va = malloc(n * Dv * 8), *od = malloc(T * Dv * 8);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t hk = h / (H / Hkv);
            for (int64_t t = 0; t < T; t++)
                for (int64_t d = 0; d < D; d++) qd[t * D + d] = rowf(q, b, h, t)[d];
            for (int64_t j = 0; j < Tk; j++) {
                for (int64_t d = 0; d < D; d++) kd[j * D + d] = kv_at(k, b, hk, j, d);
                for (int64_t e = 0; e < Dv; e++) vd[j * Dv + e] = kv_at(v, b, hk, j, e);
            }
            for (int64_t ag = 0; ag < n; ag++) {
                /* floor(ag T / n) .. ceil((ag + 1) T / n), by real division */
                const int64_t lo = (int64_t)floor((double)ag * T / n), hi = (int64_t)ceil((double)(ag + 1) * T / n);
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t t = lo; t < hi; t++) acc += qd[t * D + d];
                    a[ag * D + d] = acc / (double)(hi - lo);
                }
            }
            softmax_attn64(va, a, kd, vd, n, Tk, D, Dv, s);
            softmax_attn64(od, qd, a, va, T, n, D, Dv, s);
            for (int64_t i = 0; i < T * Dv; i++) o[(b * H + h) * T * Dv + i] = (float)od[i];
        }
    free(qd), free(a), free(kd), free(vd), free(va), free(od);
}

static double max_abs_of(const float *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* Random K or V [B, Hkv, Tk, E] in dtype dt, contiguous. */
static heed_tensor make_kv(t_rng *r, heed_dtype dt, int64_t B, int64_t H, int64_t T, int64_t E)
{
    const int64_t n = B * H * T * E;
    float *f = malloc(n * 4);
    t_fill_normal(r, f, n, 1.0f);
    void *data = malloc(n * heed_dtype_size(dt));
    heed_convert(data, dt, f, HEED_F32, (size_t)n);
    free(f);
    heed_tensor t = heed_tensor_4d(data, dt, B, H, T, E);
    return t;
}

static void run_case(heed_ctx *ctx, t_rng *r, int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t Tk, int64_t D,
                     int64_t Dv, int64_t n, float scale, heed_dtype kvt, int strided)
{
    const int64_t nq = B * H * T * D, no = B * H * T * Dv;
    /* A strided q: [B, T, H, D] memory viewed as [B, H, T, D]; o likewise. */
    float *q = malloc(nq * 4), *o = malloc(no * 4), *oref = malloc(no * 4), *oc = malloc(no * 4);
    t_fill_normal(r, q, nq, 1.0f);
    heed_tensor tq = heed_tensor_4d(q, HEED_F32, B, H, T, D), to = heed_tensor_4d(o, HEED_F32, B, H, T, Dv);
    if (strided) {
        tq.nb[0] = T * H * D * 4, tq.nb[1] = D * 4, tq.nb[2] = H * D * 4;
        to.nb[0] = T * H * Dv * 4, to.nb[1] = Dv * 4, to.nb[2] = H * Dv * 4;
    }
    heed_tensor tk = make_kv(r, kvt, B, Hkv, Tk, D), tv = make_kv(r, kvt, B, Hkv, Tk, Dv);
    CHECK_OK(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &tv, n, scale));
    ref_agent(oref, &tq, &tk, &tv, n, scale);
    for (int64_t b = 0; b < B; b++) /* gather o into [B, H, T, Dv] order */
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) memcpy(oc + ((b * H + h) * T + t) * Dv, rowf(&to, b, h, t), Dv * 4);
    const double nmse = t_nmse(oc, oref, no), mx = t_max_abs(oc, oref, no), sc = max_abs_of(oref, no);
    printf("B%lld H%lld/%lld T%lld Tk%lld D%lld Dv%lld n%lld %s%s: nmse %.2e, max abs %.2e (max |ref| %.2f)\n",
           (long long)B, (long long)H, (long long)Hkv, (long long)T, (long long)Tk, (long long)D, (long long)Dv,
           (long long)n, heed_dtype_name(kvt), strided ? " strided" : "", nmse, mx, sc);
    CHECK(nmse <= 1e-10 && mx <= 1e-5 * sc, "nmse %.3g, max abs %.3g", nmse, mx);
    free(q), free(o), free(oref), free(oc), free(tk.data), free(tv.data);
}

/* n_agents = T: agent a pools exactly token a, so A = Q and the result is two plain attentions with
 * Q as both the first queries and the second keys. n_agents = 1: one agent, so softmax over it is 1
 * and every output row is V_A. */
static void test_identities(heed_ctx *ctx, t_rng *r)
{
    const int64_t B = 2, H = 3, T = 17, Tk = 23, D = 12, Dv = 9, nq = B * H * T * D, no = B * H * T * Dv;
    float *q = malloc(nq * 4), *o = malloc(no * 4), *o2 = malloc(no * 4), *va = malloc(no * 4);
    t_fill_normal(r, q, nq, 1.0f);
    heed_tensor tq = heed_tensor_4d(q, HEED_F32, B, H, T, D), to = heed_tensor_4d(o, HEED_F32, B, H, T, Dv);
    heed_tensor tk = make_kv(r, HEED_F32, B, H, Tk, D), tv = make_kv(r, HEED_F32, B, H, Tk, Dv);
    CHECK_OK(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &tv, T, 0.3f));
    heed_attn_desc d1, d2;
    heed_attn_desc_init(&d1);
    d1.q = tq, d1.k = tk, d1.v = tv, d1.scale = 0.3f;
    heed_tensor tva = heed_tensor_4d(va, HEED_F32, B, H, T, Dv), to2 = heed_tensor_4d(o2, HEED_F32, B, H, T, Dv);
    CHECK_OK(ctx, heed_attn_forward(ctx, &tva, NULL, &d1));
    heed_attn_desc_init(&d2);
    d2.q = tq, d2.k = tq, d2.v = tva, d2.scale = 0.3f;
    CHECK_OK(ctx, heed_attn_forward(ctx, &to2, NULL, &d2));
    CHECK(t_max_abs(o, o2, no) == 0, "n_agents = T differs from attention with A = Q by %g", t_max_abs(o, o2, no));

    CHECK_OK(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &tv, 1, 0));
    double spread = 0;
    for (int64_t bh = 0; bh < B * H; bh++)
        for (int64_t t = 1; t < T; t++)
            for (int64_t e = 0; e < Dv; e++) {
                const double d = fabs(o[(bh * T + t) * Dv + e] - o[bh * T * Dv + e]);
                spread = d > spread ? d : spread;
            }
    CHECK(spread == 0, "n_agents = 1: output rows differ by %g", spread);
    free(q), free(o), free(o2), free(va), free(tk.data), free(tv.data);
}

static void check_err(heed_ctx *ctx, heed_status got, const char *needle)
{
    CHECK(got == HEED_ERR_INVALID, "expected HEED_ERR_INVALID, got %s", heed_status_name(got));
    CHECK(strstr(heed_ctx_error(ctx), needle) != NULL, "message \"%s\" lacks \"%s\"", heed_ctx_error(ctx), needle);
}

static void test_errors(heed_ctx *ctx)
{
    float q[2 * 3 * 4 * 5] = {0}, k[2 * 3 * 6 * 5] = {0}, v[2 * 3 * 6 * 7] = {0}, o[2 * 3 * 4 * 7];
    heed_tensor tq = heed_tensor_4d(q, HEED_F32, 2, 3, 4, 5), tk = heed_tensor_4d(k, HEED_F32, 2, 3, 6, 5);
    heed_tensor tv = heed_tensor_4d(v, HEED_F32, 2, 3, 6, 7), to = heed_tensor_4d(o, HEED_F32, 2, 3, 4, 7);
    CHECK_OK(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &tv, 2, 0));
    check_err(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &tv, 0, 0), "n_agents: 0");
    check_err(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &tv, 5, 0), "n_agents: 5");
    check_err(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &tv, 2, NAN), "scale");
    check_err(ctx, heed_agent_attn(ctx, &to, NULL, &tk, &tv, 2, 0), "q: NULL");
    check_err(ctx, heed_agent_attn(ctx, &to, &tq, NULL, &tv, 2, 0), "k: NULL");
    heed_tensor bad = to;
    bad.ne[3] = 5;
    check_err(ctx, heed_agent_attn(ctx, &bad, &tq, &tk, &tv, 2, 0), "o: shape");
    bad = to;
    bad.nb[2] = 0;
    check_err(ctx, heed_agent_attn(ctx, &bad, &tq, &tk, &tv, 2, 0), "o: stride 0");
    /* A bad k is caught by the first attention's descriptor check, and named as such. */
    bad = tk;
    bad.ne[3] = 4;
    check_err(ctx, heed_agent_attn(ctx, &to, &tq, &bad, &tv, 2, 0), "agent attention, agents (pooled q)");
    bad = tv;
    bad.ne[2] = 5;
    check_err(ctx, heed_agent_attn(ctx, &to, &tq, &tk, &bad, 2, 0), "agent attention, agents (pooled q)");
    CHECK(heed_agent_attn(NULL, &to, &tq, &tk, &tv, 2, 0) == HEED_ERR_INVALID, "NULL ctx");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 2));
    if (!ctx) return t_done("test_agent");
    t_rng r = {0xA6E27u};
    run_case(ctx, &r, 1, 1, 1, 1, 1, 1, 1, 1, 0, HEED_F32, 0);
    run_case(ctx, &r, 2, 3, 3, 5, 7, 4, 6, 3, 0, HEED_F32, 0);      /* pooling windows overlap: [0,2) [1,4) [3,5) */
    run_case(ctx, &r, 1, 4, 2, 64, 50, 33, 17, 7, 0.2f, HEED_F32, 1);
    run_case(ctx, &r, 2, 2, 1, 40, 40, 64, 64, 8, 0, HEED_F16, 1);
    run_case(ctx, &r, 1, 2, 2, 31, 9, 3, 5, 31, 1.5f, HEED_BF16, 0);
    test_identities(ctx, &r);
    test_errors(ctx);
    heed_ctx_free(ctx);
    return t_done("test_agent");
}
