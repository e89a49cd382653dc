/* test_train_gconv.c — the trainer's gated causal convolution (src/train/gconv.h) at odd sizes (channels
 * not a multiple of the task chunk, K = 1, K = T): the forward against an f64 reference written here from
 * the definition, the backward against central finite differences of that reference (L = sum(y * R),
 * random R), accumulation (a second backward doubles the gradients), NULL outputs skipped, and 1 vs 2
 * threads (bitwise). Bounds: forward max abs error <= 1e-5 * max |ref|; gradients <= 1e-3 * max |FD|;
 * doubling <= 1e-6 * max |2 * once|. */
#include "train/gconv.h"
#include "harness.h"

#include <string.h>

typedef struct {
    int64_t N, T, C, K;
    double *u, *g, *f, *r; /* [N, C], [N, C], [C, K], [N, C] */
} problem;

/* y[n, c] = g[n, c] * sum_{s <= min(t, K-1)} f[c, s] u[n - s, c], in f64. y: [N, C] out. */
static void ref_fwd(double *y, const problem *p)
{
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t c = 0; c < p->C; c++) {
            const int64_t t = n % p->T;
            double acc = 0;
            for (int64_t s = 0; s <= t && s < p->K; s++) acc += p->f[c * p->K + s] * p->u[(n - s) * p->C + c];
            y[n * p->C + c] = p->g[n * p->C + c] * acc;
        }
}

static double ref_loss(const problem *p, double *ybuf)
{
    double L = 0;
    ref_fwd(ybuf, p);
    for (int64_t i = 0; i < p->N * p->C; i++) L += ybuf[i] * p->r[i];
    return L;
}

static void fd(double *grad, const problem *p, double *x, int64_t n, double *ybuf)
{
    for (int64_t i = 0; i < n; i++) {
        const double x0 = x[i], h = 1e-5 * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        const double lp = ref_loss(p, ybuf);
        x[i] = x0 - h;
        const double lm = ref_loss(p, ybuf);
        x[i] = x0;
        grad[i] = (lp - lm) / (2 * h);
    }
}

static double *randd(t_rng *rng, int64_t n)
{
    double *x = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) x[i] = (float)t_normal(rng);
    return x;
}
static float *tof(const double *x, int64_t n)
{
    float *f = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

/* got within tol * max |want| of want everywhere. */
static void check_near(const char *what, const float *got, const double *want, int64_t n, double tol)
{
    double err = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) err = e;
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    }
    CHECK(err <= tol * scale, "%s: max abs error %.3g, max |ref| %.3g", what, err, scale);
}

static void run_case(heed_ctx *ctx[2], t_rng *rng, int64_t B, int64_t T, int64_t C, int64_t K)
{
    const int64_t N = B * T, nx = N * C, nf = C * K;
    problem p = {N, T, C, K, randd(rng, nx), randd(rng, nx), randd(rng, nf), randd(rng, nx)};
    float *u = tof(p.u, nx), *g = tof(p.g, nx), *f = tof(p.f, nf), *r = tof(p.r, nx);
    char what[120], w2[160];
    snprintf(what, sizeof what, "B%lld T%lld C%lld K%lld", (long long)B, (long long)T, (long long)C, (long long)K);

    /* forward, with 1 and 2 threads */
    double *yref = malloc((size_t)nx * 8);
    ref_fwd(yref, &p);
    float *y[2];
    for (int k = 0; k < 2; k++) {
        y[k] = malloc((size_t)nx * 4);
        memset(y[k], 0x7f, (size_t)nx * 4);
        train_gconv_fwd(ctx[k], y[k], u, g, f, N, T, C, K);
    }
    snprintf(w2, sizeof w2, "%s forward", what), check_near(w2, y[0], yref, nx, 1e-5);
    CHECK(memcmp(y[0], y[1], (size_t)nx * 4) == 0, "%s forward: 1 and 2 threads differ", what);

    /* backward: once and twice (accumulating) with each thread count */
    float *du[2][2], *dg[2][2], *df[2][2];
    for (int k = 0; k < 2; k++)
        for (int times = 1; times <= 2; times++) {
            float *a = calloc((size_t)nx, 4), *b = calloc((size_t)nx, 4), *c = calloc((size_t)nf, 4);
            for (int i = 0; i < times; i++) train_gconv_bwd(ctx[k], a, b, c, r, u, g, f, N, T, C, K);
            du[k][times - 1] = a, dg[k][times - 1] = b, df[k][times - 1] = c;
        }
    double *gu = malloc((size_t)nx * 8), *gg = malloc((size_t)nx * 8), *gf = malloc((size_t)nf * 8);
    fd(gu, &p, p.u, nx, yref), fd(gg, &p, p.g, nx, yref), fd(gf, &p, p.f, nf, yref);
    snprintf(w2, sizeof w2, "%s du", what), check_near(w2, du[0][0], gu, nx, 1e-3);
    snprintf(w2, sizeof w2, "%s dg", what), check_near(w2, dg[0][0], gg, nx, 1e-3);
    snprintf(w2, sizeof w2, "%s dfilt", what), check_near(w2, df[0][0], gf, nf, 1e-3);
    const float *once[3] = {du[0][0], dg[0][0], df[0][0]}, *twice[3] = {du[0][1], dg[0][1], df[0][1]};
    const int64_t len[3] = {nx, nx, nf};
    const char *name[3] = {"du", "dg", "dfilt"};
    for (int i = 0; i < 3; i++) {
        double *want = malloc((size_t)len[i] * 8);
        for (int64_t j = 0; j < len[i]; j++) want[j] = 2.0 * once[i][j];
        snprintf(w2, sizeof w2, "%s %s accumulated twice", what, name[i]), check_near(w2, twice[i], want, len[i], 1e-6);
        free(want);
    }
    for (int t = 0; t < 2; t++)
        CHECK(memcmp(du[0][t], du[1][t], (size_t)nx * 4) == 0 && memcmp(dg[0][t], dg[1][t], (size_t)nx * 4) == 0 &&
                  memcmp(df[0][t], df[1][t], (size_t)nf * 4) == 0,
              "%s backward (%d calls): 1 and 2 threads differ", what, t + 1);

    /* NULL outputs are skipped; each computed alone is the same */
    float *a = calloc((size_t)nx, 4), *b = calloc((size_t)nx, 4), *c = calloc((size_t)nf, 4);
    train_gconv_bwd(ctx[1], a, NULL, NULL, r, u, g, f, N, T, C, K);
    train_gconv_bwd(ctx[1], NULL, b, NULL, r, u, g, f, N, T, C, K);
    train_gconv_bwd(ctx[1], NULL, NULL, c, r, u, g, f, N, T, C, K);
    CHECK(memcmp(a, du[0][0], (size_t)nx * 4) == 0 && memcmp(b, dg[0][0], (size_t)nx * 4) == 0 &&
              memcmp(c, df[0][0], (size_t)nf * 4) == 0,
          "%s: gradients computed alone differ", what);
    free(a), free(b), free(c);

    for (int k = 0; k < 2; k++) {
        free(y[k]);
        for (int t = 0; t < 2; t++) free(du[k][t]), free(dg[k][t]), free(df[k][t]);
    }
    free(gu), free(gg), free(gf), free(yref), free(u), free(g), free(f), free(r);
    free(p.u), free(p.g), free(p.f), free(p.r);
}

int main(void)
{
    heed_ctx *ctx[2] = {NULL, NULL};
    CHECK_OK(ctx[0], heed_ctx_create(&ctx[0], 1));
    CHECK_OK(ctx[1], heed_ctx_create(&ctx[1], 2));
    if (!ctx[0] || !ctx[1]) return t_done("test_train_gconv");
    t_rng rng = {0x6c0a7e5ULL};
    run_case(ctx, &rng, 3, 11, 37, 4);
    run_case(ctx, &rng, 2, 7, 5, 7);   /* K = T, fewer channels than one chunk */
    run_case(ctx, &rng, 2, 9, 16, 1);  /* K = 1: a gated elementwise scale; exactly one chunk */
    run_case(ctx, &rng, 1, 1, 3, 1);   /* one token */
    run_case(ctx, &rng, 4, 13, 49, 13);
    heed_ctx_free(ctx[0]);
    heed_ctx_free(ctx[1]);
    return t_done("test_train_gconv");
}
