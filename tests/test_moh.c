/* test_moh.c — Mixture-of-Head routing and combination on cases computed by hand (exact gates, ties,
 * the balance loss), invariants on random logits (gate sums), argument errors, and the gated
 * concatenation over a strided head_out. Bounds: gates to 1e-6 absolute (f32 outputs of f64 math). */
#include "heed.h"
#include "harness.h"

#include <string.h>

static void check_row(const char *what, const float *got, const double *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        CHECK(fabs((double)got[i] - want[i]) <= 1e-6, "%s: gate %lld = %.9g, expected %.9g", what, (long long)i,
              (double)got[i], want[i]);
}

/* T=2, 2 shared, 4 routed, top-2. */
static void test_hand(heed_ctx *ctx)
{
    const float shared[2 * 2] = {0, 0, logf(3), 0};
    const float routed[2 * 4] = {1, 3, 2, 0, 0, 0, 0, 0};
    const float alpha[2 * 2] = {0, 0, logf(3), 0};
    float g[2 * 6], loss = -1;
    CHECK_OK(ctx, heed_moh_route(ctx, g, &loss, shared, routed, alpha, 2, 2, 4, 2));
    const double e = exp(1.0);
    /* Token 0: alpha = [1, 1]; shared softmax [1/2, 1/2] times n_shared = 2; routed top-2 are heads
     * 1 and 2 (logits 3, 2): e^3 / (e^3 + e^2) = e / (e + 1), times top_k = 2. */
    const double want0[6] = {1, 1, 0, 2 * e / (e + 1), 2 / (e + 1), 0};
    check_row("token 0", g, want0, 6);
    /* Token 1: alpha = 2 * [3/4, 1/4]; shared 1.5 * 2 * [3/4, 1/4]; routed logits all equal: the tie
     * picks heads 0 and 1, each 1/2 * 2 * 0.5. */
    const double want1[6] = {2.25, 0.75, 0.5, 0.5, 0, 0};
    check_row("token 1", g + 6, want1, 6);
    /* Balance loss: 4^2 * mean_h(P_h f_h) with P = mean of p(token 0) and [1/4]*4, f = [1/2, 1, 1/2, 0]. */
    const double S = e + e * e * e + e * e + 1;
    const double p0[4] = {e / S, e * e * e / S, e * e / S, 1 / S}, f[4] = {0.5, 1, 0.5, 0};
    double want_loss = 0;
    for (int h = 0; h < 4; h++) want_loss += (p0[h] + 0.25) / 2 * f[h];
    want_loss = 16 * want_loss / 4;
    CHECK(fabs(loss - want_loss) <= 1e-6, "balance loss %.9g, expected %.9g", (double)loss, want_loss);
    CHECK(fabs(want_loss - 2.6118555) < 1e-6, "hand value of the loss %.9g", want_loss); /* 4 * 0.65296388 */

    /* The loss is optional. */
    float g2[2 * 6];
    CHECK_OK(ctx, heed_moh_route(ctx, g2, NULL, shared, routed, alpha, 2, 2, 4, 2));
    CHECK(memcmp(g, g2, sizeof g) == 0, "gates depend on whether the loss is asked for");

    /* No shared heads: the alpha terms are skipped (alpha_logits may be NULL); top_k = n_routed keeps
     * every head: g = n_routed * softmax. */
    float g0[4];
    CHECK_OK(ctx, heed_moh_route(ctx, g0, NULL, NULL, routed, NULL, 1, 0, 4, 4));
    const double want_all[4] = {4 * e / S, 4 * e * e * e / S, 4 * e * e / S, 4 / S};
    check_row("no shared, top_k = n_routed", g0, want_all, 4);

    /* One shared head without shared logits: its gate is alpha1. Top-1 of ties: head 0. */
    const float r5[5] = {2, 2, 2, 2, 2}, a1[2] = {0, logf(3)};
    float g1[6];
    CHECK_OK(ctx, heed_moh_route(ctx, g1, &loss, NULL, r5, a1, 1, 1, 5, 1));
    const double want_one[6] = {0.5, 1.5, 0, 0, 0, 0};
    check_row("one shared head, tie", g1, want_one, 6);
    /* p uniform (1/5), f = [1, 0, 0, 0, 0]: 5 * (1/5 * 1). */
    CHECK(fabs(loss - 1.0) <= 1e-6, "balance loss %.9g, expected 1", (double)loss);

    /* Ties beyond the first: logits [1, 5, 1, 5, 1], top-3 picks heads 1, 3 and then 0. */
    const float rt[5] = {1, 5, 1, 5, 1};
    float gt[5];
    CHECK_OK(ctx, heed_moh_route(ctx, gt, NULL, NULL, rt, NULL, 1, 0, 5, 3));
    const double e4 = exp(4.0), den = 2 * e4 + 1;
    const double want_t[5] = {3 / den, 3 * e4 / den, 0, 3 * e4 / den, 0};
    check_row("ties pick the lower index", gt, want_t, 5);
}

/* Random logits: the shared gates sum to alpha1 * n_shared, the routed ones to alpha2 * top_k, and
 * exactly top_k routed gates are non-zero, all at least as large as the unpicked heads' probabilities. */
static void test_random(heed_ctx *ctx, t_rng *r)
{
    enum { T = 50, NS = 3, NR = 9, K = 4, H = NS + NR };
    float sl[T * NS], rl[T * NR], al[T * 2], g[T * H], loss;
    t_fill_normal(r, sl, T * NS, 2.0f);
    t_fill_normal(r, rl, T * NR, 2.0f);
    t_fill_normal(r, al, T * 2, 1.0f);
    CHECK_OK(ctx, heed_moh_route(ctx, g, &loss, sl, rl, al, T, NS, NR, K));
    int64_t count[NR] = {0};
    for (int t = 0; t < T; t++) {
        const double a1 = 2 / (1 + exp((double)al[t * 2 + 1] - al[t * 2]));
        double ss = 0, rs = 0;
        int nz = 0;
        float min_picked = INFINITY, max_unpicked = -INFINITY;
        for (int h = 0; h < NS; h++) ss += g[t * H + h];
        for (int i = 0; i < NR; i++) {
            const float gi = g[t * H + NS + i];
            rs += gi;
            if (gi != 0) nz++, count[i]++;
            if (gi != 0 && rl[t * NR + i] < min_picked) min_picked = rl[t * NR + i];
            if (gi == 0 && rl[t * NR + i] > max_unpicked) max_unpicked = rl[t * NR + i];
        }
        CHECK(fabs(ss - a1 * NS) <= 1e-5, "token %d: shared gates sum %g, expected %g", t, ss, a1 * NS);
        CHECK(fabs(rs - (2 - a1) * K) <= 1e-5, "token %d: routed gates sum %g, expected %g", t, rs, (2 - a1) * K);
        CHECK(nz == K, "token %d: %d routed heads on, expected %d", t, nz, K);
        CHECK(min_picked >= max_unpicked, "token %d: a head with a larger logit was left out", t);
    }
    /* The loss from the definition, recomputed here. */
    double P[NR] = {0}, want = 0;
    for (int t = 0; t < T; t++) {
        double mx = rl[t * NR], s = 0;
        for (int i = 1; i < NR; i++) mx = rl[t * NR + i] > mx ? rl[t * NR + i] : mx;
        for (int i = 0; i < NR; i++) s += exp(rl[t * NR + i] - mx);
        for (int i = 0; i < NR; i++) P[i] += exp(rl[t * NR + i] - mx) / s / T;
    }
    for (int i = 0; i < NR; i++) want += P[i] * ((double)count[i] / T);
    want = (double)NR * NR * want / NR;
    CHECK(fabs(loss - want) <= 1e-5 * want, "balance loss %.9g, expected %.9g", (double)loss, want);
}

static void check_err(heed_ctx *ctx, heed_status got, const char *needle)
{
    CHECK(got == HEED_ERR_INVALID, "expected HEED_ERR_INVALID, got %s", heed_status_name(got));
    CHECK(strstr(heed_ctx_error(ctx), needle) != NULL, "message \"%s\" lacks \"%s\"", heed_ctx_error(ctx), needle);
}

static void test_route_errors(heed_ctx *ctx)
{
    float sl[4] = {0}, rl[8] = {0}, al[4] = {0}, g[12];
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, al, 2, 2, 4, 0), "top_k: 0");
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, al, 2, 2, 4, 5), "top_k: 5");
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, al, 2, 2, 0, 1), "n_routed");
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, al, 2, -1, 4, 1), "n_shared");
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, al, 0, 2, 4, 1), "T: 0");
    check_err(ctx, heed_moh_route(ctx, NULL, NULL, sl, rl, al, 2, 2, 4, 1), "gates: NULL");
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, NULL, al, 2, 2, 4, 1), "routed_logits: NULL");
    check_err(ctx, heed_moh_route(ctx, g, NULL, NULL, rl, al, 2, 2, 4, 1), "shared_logits: NULL");
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, NULL, 2, 2, 4, 1), "alpha_logits: NULL");
    rl[6] = NAN;
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, al, 2, 2, 4, 1), "routed_logits[1, 2]");
    rl[6] = 0;
    al[1] = INFINITY;
    check_err(ctx, heed_moh_route(ctx, g, NULL, sl, rl, al, 2, 2, 4, 1), "alpha_logits[0, 1]");
    CHECK(heed_moh_route(NULL, g, NULL, sl, rl, al, 2, 2, 4, 1) == HEED_ERR_INVALID, "NULL ctx");
}

static void test_combine(heed_ctx *ctx, t_rng *r)
{
    enum { B = 2, T = 3, H = 4, Dv = 5 };
    /* head_out stored [B, T, H, Dv] (as a fused projection writes it) and viewed as [B, H, T, Dv]. */
    float x[B * T * H * Dv], gates[B * T * H], out[B * T * H * Dv];
    t_fill_normal(r, x, B * T * H * Dv, 1.0f);
    t_fill_normal(r, gates, B * T * H, 1.0f);
    heed_tensor hx = {x, HEED_F32, {B, H, T, Dv}, {T * H * Dv * 4, Dv * 4, H * Dv * 4, 4}};
    CHECK_OK(ctx, heed_moh_combine(ctx, out, &hx, gates));
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int d = 0; d < Dv; d++) {
                    const float want = gates[(b * T + t) * H + h] * x[((b * T + t) * H + h) * Dv + d];
                    bad += out[(b * T + t) * H * Dv + h * Dv + d] != want;
                }
    CHECK(bad == 0, "%d combined values differ", bad);

    heed_tensor h16 = hx;
    h16.dtype = HEED_F16;
    check_err(ctx, heed_moh_combine(ctx, out, &h16, gates), "head_out: dtype f16");
    heed_tensor hs = hx;
    hs.nb[3] = 8;
    check_err(ctx, heed_moh_combine(ctx, out, &hs, gates), "head_out: innermost stride");
    check_err(ctx, heed_moh_combine(ctx, NULL, &hx, gates), "out: NULL");
    check_err(ctx, heed_moh_combine(ctx, out, &hx, NULL), "gates: NULL");
    check_err(ctx, heed_moh_combine(ctx, out, NULL, gates), "head_out: NULL");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 2));
    if (!ctx) return t_done("test_moh");
    t_rng r = {0xC0FFEEu};
    test_hand(ctx);
    test_random(ctx, &r);
    test_route_errors(ctx);
    test_combine(ctx, &r);
    heed_ctx_free(ctx);
    return t_done("test_moh");
}
