/* test_moh_bwd.c — the Mixture-of-Head backward against central finite differences of f64 forwards
 * written here from the definitions in heed.h: heed_moh_route_backward for L = sum(gates * R) +
 * lambda * balance_loss (logits drawn with a gap of at least 0.05 around each token's top-K cut, so the
 * differences never cross a tie; f_h held at the forward's choice), with and without shared heads and
 * shared logits, top_k up to n_routed; heed_moh_combine_backward for L = sum(out * R) over a strided
 * head_out, 1 vs 2 threads; NULL outputs and argument errors.
 * Bounds: the f64 forward matches heed_moh_route to 1e-6; gradients max abs error <= 1e-5 * max |FD| + 1e-6
 * (f64 math rounded to f32, h = 1e-5). */
#include "heed.h"
#include "harness.h"

#include <string.h>

/* ---- routing ----------------------------------------------------------------------------------------- */

typedef struct {
    int64_t T, ns, nr, K;
    double lambda;
    double *sl, *rl, *al; /* [T, ns] (NULL when not used), [T, nr], [T, 2] (NULL when ns == 0) */
    double *r;            /* [T, ns + nr] weights of the gates in the loss */
    unsigned char *pick;  /* [T, nr] the forward's top-K choice, fixed for the differences */
} route_problem;

static void softmax_d(double *p, const double *x, int64_t n)
{
    double mx = x[0], sum = 0;
    for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int64_t i = 0; i < n; i++) sum += p[i] = exp(x[i] - mx);
    for (int64_t i = 0; i < n; i++) p[i] /= sum;
}

/* The gates [T, H] and the balance loss from the definition in heed.h, with the top-K choice P->pick. */
static double route64(double *gates, const route_problem *P)
{
    const int64_t ns = P->ns, nr = P->nr, H = ns + nr;
    double p[16], ps[16], a[2], Psum[16] = {0}, f[16] = {0};
    for (int64_t t = 0; t < P->T; t++) {
        double *g = gates + t * H, alpha2 = 1;
        if (ns > 0) {
            softmax_d(a, P->al + t * 2, 2);
            if (P->sl) softmax_d(ps, P->sl + t * ns, ns);
            else ps[0] = 1;
            for (int64_t h = 0; h < ns; h++) g[h] = 2 * a[0] * (double)ns * ps[h];
            alpha2 = 2 * a[1];
        }
        softmax_d(p, P->rl + t * nr, nr);
        double kept = 0;
        for (int64_t i = 0; i < nr; i++) kept += P->pick[t * nr + i] ? p[i] : 0;
        for (int64_t i = 0; i < nr; i++) {
            g[ns + i] = P->pick[t * nr + i] ? alpha2 * (double)P->K * p[i] / kept : 0;
            Psum[i] += p[i] / (double)P->T;
            f[i] += P->pick[t * nr + i] / (double)P->T;
        }
    }
    double loss = 0;
    for (int64_t i = 0; i < nr; i++) loss += Psum[i] * f[i];
    return (double)nr * loss;
}

static double route_loss(const route_problem *P)
{
    double gates[16 * 16], L = 0;
    const double bal = route64(gates, P);
    for (int64_t i = 0; i < P->T * (P->ns + P->nr); i++) L += gates[i] * P->r[i];
    return L + P->lambda * bal;
}

static double route_loss_cb(const void *P) { return route_loss(P); }

/* Random logits rounded to f32; each token's routed logits are redrawn until the K-th and (K+1)-th
 * largest differ by at least 0.05. */
static double *rand_logits(t_rng *rng, int64_t T, int64_t n, int64_t K)
{
    double *x = malloc((size_t)(T * n) * sizeof(double));
    for (int64_t t = 0; t < T; t++) {
        double *row = x + t * n;
        for (;;) {
            for (int64_t i = 0; i < n; i++) row[i] = (float)(1.5 * t_normal(rng));
            if (K == n) break;
            double s[16] = {0};
            memcpy(s, row, (size_t)n * sizeof(double));
            for (int64_t i = 0; i < n; i++) /* sort descending */
                for (int64_t j = i + 1; j < n; j++)
                    if (s[j] > s[i]) {
                        const double tmp = s[i];
                        s[i] = s[j], s[j] = tmp;
                    }
            if (s[K - 1] - s[K] >= 0.05) break;
        }
    }
    return x;
}

static void route_case(heed_ctx *ctx, t_rng *rng, int64_t T, int64_t ns, int64_t nr, int64_t K, int with_shared)
{
    const int64_t H = ns + nr;
    route_problem P = {T, ns, nr, K, 0.37, NULL, NULL, NULL, NULL, NULL};
    if (with_shared) P.sl = rand_logits(rng, T, ns, ns);
    P.rl = rand_logits(rng, T, nr, K);
    if (ns > 0) P.al = rand_logits(rng, T, 2, 2);
    P.r = malloc((size_t)(T * H) * sizeof(double));
    for (int64_t i = 0; i < T * H; i++) P.r[i] = t_normal(rng);
    float *sl = t_to_f32(P.sl, T * ns), *rl = t_to_f32(P.rl, T * nr), *al = t_to_f32(P.al, T * 2);
    float *dg = t_to_f32(P.r, T * H);

    /* The forward's choice, and the f64 forward here against heed_moh_route. */
    float gates[16 * 16], loss;
    double gates64[16 * 16];
    CHECK_OK(ctx, heed_moh_route(ctx, gates, &loss, sl, rl, al, T, ns, nr, K));
    P.pick = malloc((size_t)(T * nr));
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < nr; i++) P.pick[t * nr + i] = gates[t * H + ns + i] != 0.0f;
    const double loss64 = route64(gates64, &P);
    char what[120];
    snprintf(what, sizeof what, "T%lld ns%lld nr%lld K%lld shared_logits%d", (long long)T, (long long)ns,
             (long long)nr, (long long)K, with_shared);
    double gerr = 0;
    for (int64_t i = 0; i < T * H; i++) gerr = fmax(gerr, fabs(gates[i] - gates64[i]));
    CHECK(gerr <= 1e-6 && fabs(loss - loss64) <= 1e-6, "%s: forward here differs from heed_moh_route: gates %.3g, "
          "loss %.9g vs %.9g", what, gerr, (double)loss, loss64);

    float *dsl = P.sl ? malloc((size_t)(T * ns) * 4) : NULL, *drl = malloc((size_t)(T * nr) * 4);
    float *dal = P.al ? malloc((size_t)(T * 2) * 4) : NULL;
    CHECK_OK(ctx, heed_moh_route_backward(ctx, dsl, drl, dal, dg, (float)P.lambda, sl, rl, al, T, ns, nr, K));
    double fd[16 * 16];
    char w2[160];
    t_fd_grad(fd, P.rl, T * nr, 1e-5, route_loss_cb, &P);
    snprintf(w2, sizeof w2, "%s d_routed_logits", what), t_check_grad(w2, drl, fd, T * nr, 1e-5, 1e-6);
    if (P.sl) {
        t_fd_grad(fd, P.sl, T * ns, 1e-5, route_loss_cb, &P);
        snprintf(w2, sizeof w2, "%s d_shared_logits", what), t_check_grad(w2, dsl, fd, T * ns, 1e-5, 1e-6);
    }
    if (P.al) {
        t_fd_grad(fd, P.al, T * 2, 1e-5, route_loss_cb, &P);
        snprintf(w2, sizeof w2, "%s d_alpha_logits", what), t_check_grad(w2, dal, fd, T * 2, 1e-5, 1e-6);
    }
    /* NULL outputs are skipped; the one computed alone is the same. */
    float *drl2 = malloc((size_t)(T * nr) * 4);
    CHECK_OK(ctx, heed_moh_route_backward(ctx, NULL, drl2, NULL, dg, (float)P.lambda, sl, rl, al, T, ns, nr, K));
    CHECK(memcmp(drl, drl2, (size_t)(T * nr) * 4) == 0, "%s: d_routed_logits alone differs", what);
    free(drl2), free(dsl), free(drl), free(dal), free(sl), free(rl), free(al), free(dg);
    free(P.sl), free(P.rl), free(P.al), free(P.r), free(P.pick);
}

static void route_errors(heed_ctx *ctx)
{
    const float rl[3] = {0, 1, 2}, dg[3] = {1, 1, 1};
    float d[3], ds[1];
    CHECK(heed_moh_route_backward(ctx, ds, d, NULL, dg, 0.1f, NULL, rl, NULL, 1, 0, 3, 2) == HEED_ERR_INVALID,
          "d_shared_logits without shared_logits accepted");
    CHECK(heed_moh_route_backward(ctx, NULL, d, NULL, NULL, 0.1f, NULL, rl, NULL, 1, 0, 3, 2) == HEED_ERR_INVALID,
          "NULL d_gates accepted");
    CHECK(heed_moh_route_backward(ctx, NULL, d, NULL, dg, NAN, NULL, rl, NULL, 1, 0, 3, 2) == HEED_ERR_INVALID,
          "NaN balance weight accepted");
    CHECK(heed_moh_route_backward(ctx, NULL, d, NULL, dg, 0.1f, NULL, rl, NULL, 1, 0, 3, 4) == HEED_ERR_INVALID,
          "top_k > n_routed accepted");
    CHECK(heed_moh_route_backward(ctx, NULL, d, NULL, dg, 0.1f, NULL, rl, NULL, 1, 0, 3, 2) == HEED_OK, "%s",
          heed_ctx_error(ctx));
}

/* ---- combination ------------------------------------------------------------------------------------- */

/* L = sum_{b,t,h,d} gates[b,t,h] * x[b,h,t,d] * R[b,t,h*Dv+d]: x [B,H,T,Dv] contiguous here. */
static double combine_loss(const double *x, const double *g, const double *R, int64_t B, int64_t H, int64_t T,
                           int64_t Dv)
{
    double L = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t d = 0; d < Dv; d++)
                    L += g[(b * T + t) * H + h] * x[((b * H + h) * T + t) * Dv + d] * R[((b * T + t) * H + h) * Dv + d];
    return L;
}

static void combine_case(heed_ctx *ctx1, heed_ctx *ctx2, t_rng *rng)
{
    const int64_t B = 2, H = 3, T = 5, Dv = 7, nx = B * H * T * Dv, ng = B * T * H;
    double *x = malloc((size_t)nx * 8), *g = malloc((size_t)ng * 8), *R = malloc((size_t)nx * 8);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)t_normal(rng), R[i] = (float)t_normal(rng);
    for (int64_t i = 0; i < ng; i++) g[i] = (float)t_normal(rng);
    /* head_out as a strided view: memory [B, T, H, Dv] (how a projection writes heads). */
    float *xm = malloc((size_t)nx * 4), *gf = t_to_f32(g, ng), *Rf = t_to_f32(R, nx);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t d = 0; d < Dv; d++)
                    xm[((b * T + t) * H + h) * Dv + d] = (float)x[((b * H + h) * T + t) * Dv + d];
    heed_tensor tx = {xm, HEED_F32, {B, H, T, Dv}, {T * H * Dv * 4, Dv * 4, H * Dv * 4, 4}};
    float *dx[2], *dg[2];
    for (int i = 0; i < 2; i++) {
        dx[i] = malloc((size_t)nx * 4), dg[i] = malloc((size_t)ng * 4);
        memset(dx[i], 0x7f, (size_t)nx * 4), memset(dg[i], 0x7f, (size_t)ng * 4);
        heed_tensor tdx = heed_tensor_4d(dx[i], HEED_F32, B, H, T, Dv);
        CHECK_OK(i ? ctx2 : ctx1, heed_moh_combine_backward(i ? ctx2 : ctx1, &tdx, dg[i], Rf, &tx, gf));
    }
    CHECK(memcmp(dx[0], dx[1], (size_t)nx * 4) == 0 && memcmp(dg[0], dg[1], (size_t)ng * 4) == 0,
          "combine: 1 and 2 threads differ");
    double *fx = malloc((size_t)nx * 8), *fg = malloc((size_t)ng * 8);
    for (int which = 0; which < 2; which++) {
        double *v = which ? g : x, *out = which ? fg : fx;
        for (int64_t i = 0; i < (which ? ng : nx); i++) {
            const double v0 = v[i], h = 1e-5;
            v[i] = v0 + h;
            const double lp = combine_loss(x, g, R, B, H, T, Dv);
            v[i] = v0 - h;
            const double lm = combine_loss(x, g, R, B, H, T, Dv);
            v[i] = v0;
            out[i] = (lp - lm) / (2 * h);
        }
    }
    t_check_grad("combine d_head_out", dx[0], fx, nx, 1e-5, 1e-6);
    t_check_grad("combine d_gates", dg[0], fg, ng, 1e-5, 1e-6);
    heed_tensor bad = heed_tensor_4d(dx[0], HEED_F32, B, H, T + 1, Dv);
    CHECK(heed_moh_combine_backward(ctx1, &bad, dg[0], Rf, &tx, gf) == HEED_ERR_INVALID,
          "d_head_out of the wrong shape accepted");
    for (int i = 0; i < 2; i++) free(dx[i]), free(dg[i]);
    free(x), free(g), free(R), free(xm), free(gf), free(Rf), free(fx), free(fg);
}

int main(void)
{
    heed_ctx *ctx1 = NULL, *ctx2 = NULL;
    CHECK_OK(ctx1, heed_ctx_create(&ctx1, 1));
    CHECK_OK(ctx2, heed_ctx_create(&ctx2, 2));
    if (!ctx1 || !ctx2) return t_done("test_moh_bwd");
    t_rng rng = {0x40b0b4d};

    route_case(ctx1, &rng, 5, 0, 4, 2, 0);  /* routed heads only */
    route_case(ctx1, &rng, 4, 1, 3, 1, 0);  /* one shared head without logits */
    route_case(ctx1, &rng, 3, 1, 3, 2, 1);  /* one shared head with a logit (no gradient through it) */
    route_case(ctx1, &rng, 7, 2, 5, 2, 1);
    route_case(ctx1, &rng, 6, 3, 6, 3, 1);
    route_case(ctx1, &rng, 4, 2, 4, 4, 1);  /* top_k == n_routed */
    route_case(ctx1, &rng, 1, 2, 7, 3, 1);  /* one token */
    route_errors(ctx1);
    combine_case(ctx1, ctx2, &rng);

    heed_ctx_free(ctx1);
    heed_ctx_free(ctx2);
    return t_done("test_moh_bwd");
}
