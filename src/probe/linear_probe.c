/* linear_probe.c — linear probes per layer (Concept Depth): multinomial logistic regression with an L2
 * penalty on standardised features, fitted full batch by L-BFGS; the stratified train/test split and the
 * jump / converging points of an accuracy curve. Definitions: docs/analysis.md, "Linear probes". */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>

#define LBFGS_MEMORY 10
#define LBFGS_MAX_ITERS 1000
#define LBFGS_GTOL 1e-9

/* The objective of heed.h on rows z [n, d] (f64) with the scratch logits [k]; grad as there. */
static double objective(double *grad, double *logits, const double *w, const double *z, const int32_t *y,
                        int64_t n, int64_t d, int64_t k, double l2)
{
    const int64_t row = d + 1;
    double loss = 0.0;
    if (grad)
        for (int64_t i = 0; i < k * row; i++) grad[i] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double *zi = z + i * d;
        double mx = -INFINITY;
        for (int64_t c = 0; c < k; c++) {
            const double *wc = w + c * row;
            double s = wc[d];
            for (int64_t j = 0; j < d; j++) s += wc[j] * zi[j];
            logits[c] = s;
            mx = fmax(mx, s);
        }
        double sum = 0.0;
        for (int64_t c = 0; c < k; c++) sum += exp(logits[c] - mx);
        const double lse = mx + log(sum);
        loss += lse - logits[y[i]];
        for (int64_t c = 0; grad && c < k; c++) {
            const double r = (exp(logits[c] - lse) - (c == y[i])) / (double)n;
            double *gc = grad + c * row;
            for (int64_t j = 0; j < d; j++) gc[j] += r * zi[j];
            gc[d] += r;
        }
    }
    double penalty = 0.0;
    for (int64_t c = 0; c < k; c++)
        for (int64_t j = 0; j < d; j++) {
            const double v = w[c * row + j];
            penalty += v * v;
            if (grad) grad[c * row + j] += l2 * v;
        }
    return loss / (double)n + 0.5 * l2 * penalty;
}

double heed_linear_probe_objective(double *grad, const double *w, const float *x, const int32_t *y, int64_t n,
                                   int64_t d, int64_t k, double l2)
{
    double *z = malloc(sizeof(double) * (size_t)(n * d)), *logits = malloc(sizeof(double) * (size_t)k);
    double f = NAN;
    if (z && logits) {
        for (int64_t i = 0; i < n * d; i++) z[i] = x[i];
        f = objective(grad, logits, w, z, y, n, d, k, l2);
    }
    free(z);
    free(logits);
    return f;
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Minimises the objective over w [k, d + 1] (in: the start, out: the minimum) by L-BFGS with a backtracking
 * (Armijo) line search; buf holds (4 + 2 LBFGS_MEMORY) * P + LBFGS_MEMORY + k doubles, P = k (d + 1). */
static void lbfgs(heed_linear_probe *p, double *buf, const double *z, const int32_t *y, int64_t n, double l2)
{
    const int64_t d = p->d, k = p->k, P = k * (d + 1);
    double *w = p->w, *g = buf, *dir = g + P, *w_new = dir + P, *g_new = w_new + P, *S = g_new + P;
    double *Y = S + LBFGS_MEMORY * P, *rho = Y + LBFGS_MEMORY * P, *logits = rho + LBFGS_MEMORY, alpha[LBFGS_MEMORY];
    int64_t stored = 0, newest = -1, it = 0;
    double f = objective(g, logits, w, z, y, n, d, k, l2);
    for (; it < LBFGS_MAX_ITERS && max_abs(g, P) > LBFGS_GTOL; it++) {
        /* two-loop recursion: dir = -H g, H0 = (s.y / y.y) I from the newest pair, else 1 / max(1, |g|_inf) */
        for (int64_t i = 0; i < P; i++) dir[i] = -g[i];
        for (int64_t m = 0; m < stored; m++) {
            const int64_t j = (newest - m + LBFGS_MEMORY) % LBFGS_MEMORY;
            alpha[j] = rho[j] * dot(S + j * P, dir, P);
            for (int64_t i = 0; i < P; i++) dir[i] -= alpha[j] * Y[j * P + i];
        }
        const double h0 = stored ? 1.0 / (rho[newest] * dot(Y + newest * P, Y + newest * P, P))
                                 : 1.0 / fmax(1.0, max_abs(g, P));
        for (int64_t i = 0; i < P; i++) dir[i] *= h0;
        for (int64_t m = stored - 1; m >= 0; m--) {
            const int64_t j = (newest - m + LBFGS_MEMORY) % LBFGS_MEMORY;
            const double beta = rho[j] * dot(Y + j * P, dir, P);
            for (int64_t i = 0; i < P; i++) dir[i] += (alpha[j] - beta) * S[j * P + i];
        }
        double slope = dot(g, dir, P);
        if (!(slope < 0.0)) { /* not a descent direction: forget the pairs, go down the gradient */
            stored = 0;
            for (int64_t i = 0; i < P; i++) dir[i] = -g[i] / fmax(1.0, max_abs(g, P));
            slope = dot(g, dir, P);
        }
        double t = 1.0, f_new = f;
        int accepted = 0;
        for (int tries = 0; tries < 60 && !accepted; tries++, t *= 0.5) {
            for (int64_t i = 0; i < P; i++) w_new[i] = w[i] + t * dir[i];
            f_new = objective(g_new, logits, w_new, z, y, n, d, k, l2);
            accepted = f_new <= f + 1e-4 * t * slope;
        }
        if (!accepted) break; /* no decrease left at this precision */
        t *= 2.0;             /* the step taken (the loop halved it once more) */
        const int64_t j = (newest + 1) % LBFGS_MEMORY;
        double sy = 0.0;
        for (int64_t i = 0; i < P; i++) {
            S[j * P + i] = t * dir[i];
            Y[j * P + i] = g_new[i] - g[i];
            sy += S[j * P + i] * Y[j * P + i];
        }
        if (sy > 1e-300) { /* keep the pair only where the curvature is positive */
            rho[j] = 1.0 / sy;
            newest = j;
            stored += stored < LBFGS_MEMORY;
        }
        const double decrease = f - f_new;
        for (int64_t i = 0; i < P; i++) w[i] = w_new[i], g[i] = g_new[i];
        f = f_new;
        if (decrease <= 1e-16 * fmax(1.0, fabs(f))) {
            it++;
            break;
        }
    }
    p->iters = it;
    p->objective = f;
    p->grad_max = max_abs(g, P);
}

/* z [n, d] out: the rows of x [n, d] standardised by p's mean and inv_std. */
static void standardise(double *z, const heed_linear_probe *p, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < p->d; j++) z[i * p->d + j] = ((double)x[i * p->d + j] - p->mean[j]) * p->inv_std[j];
}

heed_status heed_linear_probe_fit(heed_ctx *ctx, heed_linear_probe *p, const float *x, const int32_t *y, int64_t n,
                                  int64_t d, int64_t k, double l2)
{
    if (!p) return heed_fail(ctx, HEED_ERR_INVALID, "heed_linear_probe_fit: NULL probe");
    *p = (heed_linear_probe){0};
    if (!x || !y || n < 1 || d < 1 || k < 2)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_linear_probe_fit: need rows and labels, n >= 1, d >= 1, "
                         "k >= 2 (n = %lld, d = %lld, k = %lld)", (long long)n, (long long)d, (long long)k);
    if (!(l2 >= 0.0) || !isfinite(l2))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_linear_probe_fit: l2 = %g, expected a finite value >= 0", l2);
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_linear_probe_fit: label %d of row %lld is outside [0, %lld)",
                             y[i], (long long)i, (long long)k);
    for (int64_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_linear_probe_fit: feature %lld of row %lld is not finite",
                             (long long)(i % d), (long long)(i / d));
    const int64_t P = k * (d + 1);
    p->d = d;
    p->k = k;
    p->mean = calloc((size_t)d, sizeof(double));
    p->inv_std = calloc((size_t)d, sizeof(double));
    p->w = calloc((size_t)P, sizeof(double));
    double *z = malloc(sizeof(double) * (size_t)(n * d));
    double *buf = malloc(sizeof(double) * (size_t)((4 + 2 * LBFGS_MEMORY) * P + LBFGS_MEMORY + k));
    if (!p->mean || !p->inv_std || !p->w || !z || !buf) {
        free(z);
        free(buf);
        heed_linear_probe_release(p);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_linear_probe_fit: out of memory (%lld x %lld features)",
                         (long long)n, (long long)d);
    }
    for (int64_t j = 0; j < d; j++) {
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < n; i++) mean += x[i * d + j];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) var += ((double)x[i * d + j] - mean) * ((double)x[i * d + j] - mean);
        const double sd = sqrt(var / (double)n);
        p->mean[j] = mean;
        /* a feature constant up to rounding carries no signal: scaling it up would only amplify noise */
        p->inv_std[j] = sd > 1e-12 * fmax(1.0, fabs(mean)) ? 1.0 / sd : 0.0;
    }
    standardise(z, p, x, n);
    lbfgs(p, buf, z, y, n, l2);
    double mean_b = 0.0; /* the common shift of the biases is free: centre them */
    for (int64_t c = 0; c < k; c++) mean_b += p->w[c * (d + 1) + d] / (double)k;
    for (int64_t c = 0; c < k; c++) p->w[c * (d + 1) + d] -= mean_b;
    free(z);
    free(buf);
    p->train_acc = heed_linear_probe_accuracy(p, x, y, n);
    return HEED_OK;
}

void heed_linear_probe_predict(int32_t *pred, double *prob, const heed_linear_probe *p, const float *x, int64_t n)
{
    const int64_t d = p->d, k = p->k;
    for (int64_t i = 0; i < n; i++) {
        double best = -INFINITY, sum = 0.0, *logit = prob ? prob + i * k : NULL;
        int32_t arg = 0;
        for (int64_t c = 0; c < k; c++) {
            const double *wc = p->w + c * (d + 1);
            double a = wc[d];
            for (int64_t j = 0; j < d; j++) a += wc[j] * ((double)x[i * d + j] - p->mean[j]) * p->inv_std[j];
            if (a > best) best = a, arg = (int32_t)c;
            if (logit) logit[c] = a;
        }
        pred[i] = arg;
        for (int64_t c = 0; logit && c < k; c++) sum += (logit[c] = exp(logit[c] - best));
        for (int64_t c = 0; logit && c < k; c++) logit[c] /= sum;
    }
}

double heed_linear_probe_accuracy(const heed_linear_probe *p, const float *x, const int32_t *y, int64_t n)
{
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t pred;
        heed_linear_probe_predict(&pred, NULL, p, x + i * p->d, 1);
        right += pred == y[i];
    }
    return n > 0 ? (double)right / (double)n : 0.0;
}

void heed_linear_probe_release(heed_linear_probe *p)
{
    if (!p) return;
    free(p->mean);
    free(p->inv_std);
    free(p->w);
    *p = (heed_linear_probe){0};
}

int64_t heed_probe_split(uint8_t *is_test, const int32_t *y, int64_t n, int64_t k, double test_frac, uint64_t seed)
{
    uint64_t state = seed;
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) is_test[i] = 0;
    for (int64_t c = 0; c < k; c++) {
        int64_t n_c = 0;
        for (int64_t i = 0; i < n; i++) n_c += y[i] == c;
        if (n_c < 2) continue;
        int64_t want = (int64_t)llround(test_frac * (double)n_c);
        want = want < 1 ? 1 : want > n_c - 1 ? n_c - 1 : want;
        /* selection sampling (Knuth's algorithm S): each row in turn, taken with probability
         * (still wanted) / (still left), gives every subset of `want` rows the same chance */
        for (int64_t i = 0, left = n_c, taken = 0; i < n && taken < want; i++) {
            if (y[i] != c) continue;
            if ((int64_t)heed_rng_below(&state, (uint64_t)left) < want - taken) is_test[i] = 1, taken++;
            left--;
        }
        total += want;
    }
    return total;
}

heed_concept_depth heed_concept_depth_of(const double *acc, int64_t n)
{
    heed_concept_depth cd = {-1, 0, n > 0 ? acc[0] : 0.0};
    for (int64_t L = 1; L < n; L++) {
        if (cd.jump < 0 && acc[L] >= 1.1 * acc[L - 1] && acc[L] > acc[L - 1]) cd.jump = L;
        if (acc[L] > cd.best_acc) cd.best_acc = acc[L], cd.converge = L;
    }
    return cd;
}
