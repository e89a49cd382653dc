/* test_train_ops.c — the trainer's layer operations (src/train/ops.h) at odd sizes: each forward against
 * an f64 reference written here, each backward against central finite differences of that reference
 * (L = sum(out * R), random R), backward accumulation, and 1-thread vs 2-thread results (bitwise).
 * Bounds: forward max abs error <= 1e-5 * max |ref| (f32 vs f64); gradients max abs error <= 1e-3 * max |FD|
 * (f32 analytic vs f64 finite differences with h = 1e-5 * max(1, |x|)). */
#include "train/ops.h"
#include "harness.h"

#include <string.h>

/* N is set per run: 7 (one task of the row-parallel ops) and 37 (three, the last one partial) */
#define MAX_N 64
static int64_t N;
static const int64_t C = 13, V = 11, T = 3, H = 3, D = 6;

static float *randf(t_rng *r, int64_t n, float scale)
{
    float *x = malloc((size_t)n * sizeof(float));
    t_fill_normal(r, x, n, scale);
    return x;
}
static float *zerof(int64_t n) { return calloc((size_t)n, sizeof(float)); }
static float *dupf(const float *x, int64_t n) { return memcpy(malloc((size_t)n * sizeof(float)), x, (size_t)n * 4); }
static double *tod(const float *x, int64_t n)
{
    double *d = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static double max_abs_d(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* got (f32) within tol * max |want| of want (f64) everywhere. */
static void check_near(const char *what, const float *got, const double *want, int64_t n, double tol)
{
    double err = 0, scale = max_abs_d(want, n);
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) err = e;
    }
    CHECK(err <= tol * scale, "%s: max abs error %.3g, max |ref| %.3g", what, err, scale);
}
static void check_fwd(const char *what, const float *got, const double *want, int64_t n)
{
    check_near(what, got, want, n, 1e-5);
}
static void check_grad(const char *what, const float *got, const double *fd, int64_t n)
{
    check_near(what, got, fd, n, 1e-3);
}
static void check_same(const char *what, const float *a, const float *b, int64_t n)
{
    CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0, "%s: 1 and 2 threads differ", what);
}
/* A second backward call doubled the gradient: twice ~= 2 * once (the sums are re-formed, not doubled). */
static void check_doubled(const char *what, const float *twice, const float *once, int64_t n)
{
    double *want = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) want[i] = 2.0 * once[i];
    check_near(what, twice, want, n, 1e-6);
    free(want);
}

/* Central finite differences of L(env) with respect to each x[i] (x is part of env, perturbed in place). */
static void fd_grad(double *g, double *x, int64_t n, double (*L)(void *), void *env)
{
    for (int64_t i = 0; i < n; i++) {
        const double xi = x[i], h = 1e-5 * (fabs(xi) > 1 ? fabs(xi) : 1);
        x[i] = xi + h;
        double lp = L(env);
        x[i] = xi - h;
        double lm = L(env);
        x[i] = xi;
        g[i] = (lp - lm) / (2 * h);
    }
}

static double dot_d(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* --- linear: out [N, V] = inp [N, C] w^T + b (w [V, C]) --------------------------------------------- */

typedef struct { double *inp, *w, *b, *R, *out; } lin_env;

static void lin_ref(lin_env *e)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < V; o++) {
            double s = e->b ? e->b[o] : 0;
            for (int64_t i = 0; i < C; i++) s += e->inp[n * C + i] * e->w[o * C + i];
            e->out[n * V + o] = s;
        }
}
static double lin_loss(void *env)
{
    lin_ref(env);
    return dot_d(((lin_env *)env)->out, ((lin_env *)env)->R, N * V);
}

static void test_linear(heed_ctx **ctx, t_rng *r)
{
    float *inp = randf(r, N * C, 1), *w = randf(r, V * C, 0.5f), *b = randf(r, V, 1), *R = randf(r, N * V, 1);
    float *out[2] = {zerof(N * V), zerof(N * V)}, *nb = zerof(N * V);
    lin_env e = {tod(inp, N * C), tod(w, V * C), tod(b, V), tod(R, N * V), malloc(N * V * sizeof(double))};
    for (int k = 0; k < 2; k++) train_linear_fwd(ctx[k], out[k], inp, w, b, N, C, V);
    lin_ref(&e);
    check_fwd("linear fwd", out[0], e.out, N * V);
    check_same("linear fwd", out[0], out[1], N * V);
    double *bias = e.b;
    e.b = NULL;
    lin_ref(&e);
    train_linear_fwd(ctx[0], nb, inp, w, NULL, N, C, V);
    check_fwd("linear fwd without bias", nb, e.out, N * V);
    e.b = bias;

    float *g[2][3];
    for (int k = 0; k < 2; k++) {
        g[k][0] = zerof(N * C), g[k][1] = zerof(V * C), g[k][2] = zerof(V);
        train_linear_bwd(ctx[k], g[k][0], g[k][1], g[k][2], R, inp, w, N, C, V);
    }
    double *fd = malloc((size_t)(N * C > V * C ? N * C : V * C) * sizeof(double));
    fd_grad(fd, e.inp, N * C, lin_loss, &e);
    check_grad("linear dinp", g[0][0], fd, N * C);
    fd_grad(fd, e.w, V * C, lin_loss, &e);
    check_grad("linear dw", g[0][1], fd, V * C);
    fd_grad(fd, e.b, V, lin_loss, &e);
    check_grad("linear dbias", g[0][2], fd, V);
    const int64_t sz[3] = {N * C, V * C, V};
    for (int j = 0; j < 3; j++) check_same("linear bwd", g[0][j], g[1][j], sz[j]);
    train_linear_bwd(ctx[0], g[1][0], g[1][1], g[1][2], R, inp, w, N, C, V);
    for (int j = 0; j < 3; j++) check_doubled("linear bwd twice", g[1][j], g[0][j], sz[j]);
    /* NULL outputs are skipped: dw alone equals the dw above */
    float *dw = zerof(V * C);
    train_linear_bwd(ctx[0], NULL, dw, NULL, R, inp, w, N, C, V);
    check_same("linear dw alone", dw, g[0][1], V * C);

    free(dw), free(fd), free(e.inp), free(e.w), free(e.b), free(e.R), free(e.out);
    for (int k = 0; k < 2; k++) { free(out[k]); for (int j = 0; j < 3; j++) free(g[k][j]); }
    free(inp), free(w), free(b), free(R), free(nb);
}

/* --- RMSNorm: out [N, C] = x r w, r = (mean(x^2) + eps)^-1/2 ---------------------------------------- */

static const float EPS = 1e-5f;
typedef struct { double *x, *w, *R, *out, *rstd; } rms_env;

static void rms_ref(rms_env *e)
{
    for (int64_t n = 0; n < N; n++) {
        double ss = 0;
        for (int64_t i = 0; i < C; i++) ss += e->x[n * C + i] * e->x[n * C + i];
        e->rstd[n] = 1 / sqrt(ss / C + EPS);
        for (int64_t i = 0; i < C; i++) e->out[n * C + i] = e->x[n * C + i] * e->rstd[n] * e->w[i];
    }
}
static double rms_loss(void *env)
{
    rms_ref(env);
    return dot_d(((rms_env *)env)->out, ((rms_env *)env)->R, N * C);
}

static void test_rmsnorm(heed_ctx **ctx, t_rng *r)
{
    float *x = randf(r, N * C, 2), *w = randf(r, C, 1), *R = randf(r, N * C, 1);
    float *out[2] = {zerof(N * C), zerof(N * C)}, *rstd[2] = {zerof(N), zerof(N)};
    rms_env e = {tod(x, N * C), tod(w, C), tod(R, N * C), malloc(N * C * 8), malloc(N * 8)};
    for (int k = 0; k < 2; k++) train_rmsnorm_fwd(ctx[k], out[k], rstd[k], x, w, N, C, EPS);
    rms_ref(&e);
    check_fwd("rmsnorm fwd", out[0], e.out, N * C);
    check_fwd("rmsnorm rstd", rstd[0], e.rstd, N);
    check_same("rmsnorm fwd", out[0], out[1], N * C);
    check_same("rmsnorm rstd", rstd[0], rstd[1], N);

    float *dx[2] = {zerof(N * C), zerof(N * C)}, *dw[2] = {zerof(C), zerof(C)};
    for (int k = 0; k < 2; k++) train_rmsnorm_bwd(ctx[k], dx[k], dw[k], R, x, w, rstd[0], N, C);
    double *fd = malloc(N * C * 8);
    fd_grad(fd, e.x, N * C, rms_loss, &e);
    check_grad("rmsnorm dx", dx[0], fd, N * C);
    fd_grad(fd, e.w, C, rms_loss, &e);
    check_grad("rmsnorm dw", dw[0], fd, C);
    check_same("rmsnorm dx", dx[0], dx[1], N * C);
    check_same("rmsnorm dw", dw[0], dw[1], C);
    train_rmsnorm_bwd(ctx[0], dx[1], dw[1], R, x, w, rstd[0], N, C);
    check_doubled("rmsnorm dx twice", dx[1], dx[0], N * C);
    check_doubled("rmsnorm dw twice", dw[1], dw[0], C);

    free(fd), free(e.x), free(e.w), free(e.R), free(e.out), free(e.rstd), free(x), free(w), free(R);
    for (int k = 0; k < 2; k++) free(out[k]), free(rstd[k]), free(dx[k]), free(dw[k]);
}

/* --- RoPE on x [N, H, D] rows of stride S > H * D, positions n % T ---------------------------------- */

static const int64_t S = 3 * 6 + 5; /* H * D + a gap that must stay untouched */
typedef struct { double *x, *R, *out; const float *cs, *sn; } rope_env;

static void rope_ref(rope_env *e)
{
    const int64_t half = D / 2;
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < half; i++) {
                const double c = e->cs[(n % T) * half + i], s = e->sn[(n % T) * half + i];
                const double a = e->x[n * S + h * D + i], b = e->x[n * S + h * D + half + i];
                e->out[n * S + h * D + i] = a * c - b * s; /* x cos + rotate_half(x) sin */
                e->out[n * S + h * D + half + i] = b * c + a * s;
            }
}
static double rope_loss(void *env)
{
    rope_env *e = env;
    rope_ref(e);
    double s = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < H * D; j++) s += e->out[n * S + j] * e->R[n * S + j];
    return s;
}

static void test_rope(heed_ctx **ctx, t_rng *r)
{
    const int64_t half = D / 2;
    float cs[3 * 3], sn[3 * 3];
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            double f = (double)t * pow(10000.0, -2.0 * (double)i / (double)D);
            cs[t * half + i] = (float)cos(f), sn[t * half + i] = (float)sin(f);
        }
    float *x = randf(r, N * S, 1), *R = randf(r, N * S, 1);
    float *y[2] = {dupf(x, N * S), dupf(x, N * S)};
    rope_env e = {tod(x, N * S), tod(R, N * S), tod(x, N * S), cs, sn}; /* out starts as x: the gaps */
    for (int k = 0; k < 2; k++) train_rope_fwd(ctx[k], y[k], S, cs, sn, N, T, H, D);
    rope_ref(&e);
    check_fwd("rope fwd", y[0], e.out, N * S);
    check_same("rope fwd", y[0], y[1], N * S);

    /* the backward turns dL/dout = R (in place) into dL/dx */
    float *dx[2] = {dupf(R, N * S), dupf(R, N * S)};
    for (int k = 0; k < 2; k++) train_rope_bwd(ctx[k], dx[k], S, cs, sn, N, T, H, D);
    double *fd = malloc(N * S * 8);
    fd_grad(fd, e.x, N * S, rope_loss, &e);
    for (int64_t n = 0; n < N; n++) /* L does not depend on the gaps: their gradient (R untouched) is R */
        for (int64_t j = H * D; j < S; j++) fd[n * S + j] = R[n * S + j];
    check_grad("rope dx", dx[0], fd, N * S);
    check_same("rope bwd", dx[0], dx[1], N * S);
    /* in place, not accumulated: the backward of the forward gives x back */
    train_rope_bwd(ctx[0], y[0], S, cs, sn, N, T, H, D);
    check_fwd("rope bwd(fwd(x))", y[0], e.x, N * S);

    free(fd), free(e.x), free(e.R), free(e.out), free(x), free(R);
    for (int k = 0; k < 2; k++) free(y[k]), free(dx[k]);
}

/* --- SwiGLU: h [N, C] = silu(g) u ----------------------------------------------------------------- */

typedef struct { double *g, *u, *R, *h; } swiglu_env;

static void swiglu_ref(swiglu_env *e)
{
    for (int64_t i = 0; i < N * C; i++) e->h[i] = e->g[i] / (1 + exp(-e->g[i])) * e->u[i];
}
static double swiglu_loss(void *env)
{
    swiglu_ref(env);
    return dot_d(((swiglu_env *)env)->h, ((swiglu_env *)env)->R, N * C);
}

static void test_swiglu(heed_ctx **ctx, t_rng *r)
{
    float *g = randf(r, N * C, 3), *u = randf(r, N * C, 1), *R = randf(r, N * C, 1);
    float *h[2] = {zerof(N * C), zerof(N * C)};
    swiglu_env e = {tod(g, N * C), tod(u, N * C), tod(R, N * C), malloc(N * C * 8)};
    for (int k = 0; k < 2; k++) train_swiglu_fwd(ctx[k], h[k], g, u, N, C);
    swiglu_ref(&e);
    check_fwd("swiglu fwd", h[0], e.h, N * C);
    check_same("swiglu fwd", h[0], h[1], N * C);

    float *dg[2] = {zerof(N * C), zerof(N * C)}, *du[2] = {zerof(N * C), zerof(N * C)};
    for (int k = 0; k < 2; k++) train_swiglu_bwd(ctx[k], dg[k], du[k], R, g, u, N, C);
    double *fd = malloc(N * C * 8);
    fd_grad(fd, e.g, N * C, swiglu_loss, &e);
    check_grad("swiglu dg", dg[0], fd, N * C);
    fd_grad(fd, e.u, N * C, swiglu_loss, &e);
    check_grad("swiglu du", du[0], fd, N * C);
    check_same("swiglu dg", dg[0], dg[1], N * C);
    check_same("swiglu du", du[0], du[1], N * C);
    train_swiglu_bwd(ctx[0], dg[1], du[1], R, g, u, N, C);
    check_doubled("swiglu dg twice", dg[1], dg[0], N * C);
    check_doubled("swiglu du twice", du[1], du[0], N * C);
    float *du_only = zerof(N * C);
    train_swiglu_bwd(ctx[0], NULL, du_only, R, g, u, N, C);
    check_same("swiglu du alone", du_only, du[0], N * C);

    free(du_only), free(fd), free(e.g), free(e.u), free(e.R), free(e.h), free(g), free(u), free(R);
    for (int k = 0; k < 2; k++) free(h[k]), free(dg[k]), free(du[k]);
}

/* --- embedding --------------------------------------------------------------------------------------- */

/* The scatter in row order, serially in f32: what train_embed_bwd must reproduce bit for bit. */
static void embed_bwd_serial(float *dwte, const float *dout, const int32_t *ids, int64_t n_rows, int64_t c)
{
    for (int64_t n = 0; n < n_rows; n++)
        for (int64_t j = 0; j < c; j++) dwte[ids[n] * c + j] += dout[n * c + j];
}

static void test_embed(heed_ctx **ctx, t_rng *r)
{
    float *wte = randf(r, V * C, 1), *out[2] = {zerof(N * C), zerof(N * C)};
    int32_t ids[MAX_N];
    for (int64_t n = 0; n < N; n++) ids[n] = (int32_t)t_int(r, 0, 3); /* repeats, and unused rows */
    for (int k = 0; k < 2; k++) train_embed_fwd(ctx[k], out[k], wte, ids, N, C);
    int rows_ok = 1;
    for (int64_t n = 0; n < N; n++) rows_ok &= !memcmp(out[0] + n * C, wte + ids[n] * C, C * 4);
    CHECK(rows_ok, "embed fwd: rows differ from wte[ids]");
    check_same("embed fwd", out[0], out[1], N * C);

    /* L = sum(out * R) is linear in wte: dL/dwte[v] = sum over n with ids[n] = v of R[n], in f64 */
    float *R = randf(r, N * C, 1), *dw[2] = {zerof(V * C), zerof(V * C)};
    double *want = calloc(V * C, 8);
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < C; j++) want[ids[n] * C + j] += R[n * C + j];
    for (int k = 0; k < 2; k++) train_embed_bwd(ctx[k], dw[k], R, ids, N, C, V);
    check_grad("embed dwte", dw[0], want, V * C);
    check_same("embed bwd", dw[0], dw[1], V * C);
    train_embed_bwd(ctx[0], dw[1], R, ids, N, C, V);
    check_doubled("embed bwd twice", dw[1], dw[0], V * C);

    /* larger: many column chunks shared by both threads, and each equals the serial scatter bitwise */
    const int64_t n2 = 300, c2 = 200, v2 = 17;
    float *d2 = randf(r, n2 * c2, 1), *w2[3] = {zerof(v2 * c2), zerof(v2 * c2), zerof(v2 * c2)};
    int32_t *ids2 = malloc(n2 * sizeof(int32_t));
    for (int64_t n = 0; n < n2; n++) ids2[n] = (int32_t)t_int(r, 0, v2 - 1);
    for (int k = 0; k < 2; k++) train_embed_bwd(ctx[k], w2[k], d2, ids2, n2, c2, v2);
    embed_bwd_serial(w2[2], d2, ids2, n2, c2);
    check_same("embed bwd 300x200", w2[0], w2[1], v2 * c2);
    CHECK(!memcmp(w2[0], w2[2], v2 * c2 * 4), "embed bwd 300x200: differs from the serial scatter");

    free(want), free(wte), free(R), free(d2), free(ids2);
    for (int k = 0; k < 3; k++) free(w2[k]);
    for (int k = 0; k < 2; k++) free(out[k]), free(dw[k]);
}

/* --- cross-entropy over logits [N, V] ----------------------------------------------------------- */

typedef struct { double *x; const int32_t *t; int64_t n, v; double scale; } xent_env;

static double xent_ref(void *env) /* scale * sum over counted rows of -log softmax(x)[t] */
{
    const xent_env *e = env;
    double loss = 0;
    for (int64_t n = 0; n < e->n; n++) {
        if (e->t[n] < 0) continue;
        const double *x = e->x + n * e->v;
        double m = x[0], s = 0;
        for (int64_t i = 1; i < e->v; i++) m = x[i] > m ? x[i] : m;
        for (int64_t i = 0; i < e->v; i++) s += exp(x[i] - m);
        loss += m + log(s) - x[e->t[n]];
    }
    return e->scale * loss;
}

static void test_xent(heed_ctx **ctx, t_rng *r)
{
    const float scale = 0.37f;
    float *x = randf(r, N * V, 4), *d[2] = {zerof(N * V), zerof(N * V)};
    x[2 * V + 5] = 80.0f; /* exp would overflow f32 without the max subtraction */
    int32_t t[MAX_N];
    for (int64_t n = 0; n < N; n++) t[n] = (int32_t)t_int(r, 0, V - 1);
    t[1] = t[4] = -1;
    xent_env e = {tod(x, N * V), t, N, V, 1.0};
    const double want = xent_ref(&e);
    int64_t counted[2] = {0, 0};
    double loss[2];
    for (int k = 0; k < 2; k++) loss[k] = train_xent(ctx[k], d[k], &counted[k], x, t, N, V, scale);
    CHECK(fabs(loss[0] - want) <= 1e-6 * fabs(want), "xent loss %.9g, want %.9g", loss[0], want);
    CHECK(counted[0] == N - 2 && counted[1] == N - 2, "xent counted %lld, want %lld", (long long)counted[0],
          (long long)(N - 2));
    CHECK(loss[0] == loss[1], "xent loss: 1 and 2 threads differ");
    check_same("xent dlogits", d[0], d[1], N * V);
    e.scale = scale;
    double *fd = malloc(N * V * 8);
    fd_grad(fd, e.x, N * V, xent_ref, &e); /* zero on ignored rows */
    check_grad("xent dlogits", d[0], fd, N * V);
    int64_t c_nograd;
    CHECK(train_xent(ctx[0], NULL, &c_nograd, x, t, N, V, scale) == loss[0] && c_nograd == N - 2,
          "xent without dlogits: another loss or count");

    /* dlogits aliasing logits */
    float *xa = dupf(x, N * V);
    int64_t ca;
    CHECK(train_xent(ctx[1], xa, &ca, xa, t, N, V, scale) == loss[0], "xent aliased: another loss");
    check_same("xent aliased dlogits", xa, d[0], N * V);

    /* larger: many tasks, the loss identical with 1 and 2 threads */
    const int64_t n2 = 1000, v2 = 37;
    float *x2 = randf(r, n2 * v2, 3);
    int32_t *t2 = malloc(n2 * sizeof(int32_t));
    for (int64_t n = 0; n < n2; n++) t2[n] = (int32_t)t_int(r, -1, v2 - 1);
    int64_t c2[2];
    double l2[2];
    for (int k = 0; k < 2; k++) l2[k] = train_xent(ctx[k], NULL, &c2[k], x2, t2, n2, v2, 1.0f);
    xent_env e2 = {tod(x2, n2 * v2), t2, n2, v2, 1.0};
    const double want2 = xent_ref(&e2);
    CHECK(l2[0] == l2[1] && c2[0] == c2[1], "xent 1000x37: 1 and 2 threads differ");
    CHECK(fabs(l2[0] - want2) <= 1e-6 * fabs(want2), "xent 1000x37 loss %.9g, want %.9g", l2[0], want2);

    free(e2.x), free(x2), free(t2), free(xa), free(fd), free(e.x), free(x);
    for (int k = 0; k < 2; k++) free(d[k]);
}

int main(void)
{
    heed_ctx *ctx[2] = {NULL, NULL};
    CHECK_OK(ctx[0], heed_ctx_create(&ctx[0], 1));
    CHECK_OK(ctx[1], heed_ctx_create(&ctx[1], 2));
    if (!ctx[0] || !ctx[1]) return t_done("test_train_ops");
    t_rng r = {0x5eed7ea1ULL};
    const int64_t sizes[2] = {7, 37};
    for (int k = 0; k < 2; k++) {
        N = sizes[k];
        test_linear(ctx, &r);
        test_rmsnorm(ctx, &r);
        test_rope(ctx, &r);
        test_swiglu(ctx, &r);
        test_embed(ctx, &r);
        test_xent(ctx, &r);
    }
    heed_ctx_free(ctx[0]);
    heed_ctx_free(ctx[1]);
    return t_done("test_train_ops");
}
