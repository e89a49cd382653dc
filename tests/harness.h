/* harness.h — the tiny test framework every tests/test_*.c uses: checks that count failures,
 * a seeded random generator, error metrics (NMSE, max abs error) and a closing summary line.
 * Header-only so each test stays one self-contained executable. */
#ifndef HEED_TEST_HARNESS_H
#define HEED_TEST_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int t_checks, t_failures;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        t_checks++;                                                                          \
        if (!(cond)) {                                                                       \
            t_failures++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                  \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fprintf(stderr, "\n");                                                           \
        }                                                                                    \
    } while (0)

/* Checks that a heed call returned HEED_OK, printing the context's message otherwise. */
#define CHECK_OK(ctx, call)                                                                  \
    do {                                                                                     \
        heed_status s_ = (call);                                                             \
        CHECK(s_ == HEED_OK, "%s -> %s: %s", #call, heed_status_name(s_),                   \
              (ctx) ? heed_ctx_error(ctx) : "");                                             \
    } while (0)

/* Prints the summary and returns the process exit code. */
static inline int t_done(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, t_checks, t_failures);
    printf("%d passed, %d failed\n", t_checks - t_failures, t_failures);
    return t_failures ? 1 : 0;
}

/* xorshift64*: deterministic across platforms. */
typedef struct { uint64_t s; } t_rng;
static inline uint64_t t_next(t_rng *r)
{
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}
static inline double t_uniform(t_rng *r) { return (double)(t_next(r) >> 11) * (1.0 / 9007199254740992.0); }
static inline int64_t t_int(t_rng *r, int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(t_next(r) % (uint64_t)(hi - lo + 1));
}
static inline float t_normal(t_rng *r)
{
    double u1 = t_uniform(r) + 1e-300, u2 = t_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
static inline void t_fill_normal(t_rng *r, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * t_normal(r);
}

/* Normalised mean squared error sum (a-b)^2 / sum b^2 (0 when both are all zero). */
static inline double t_nmse(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? num / den : num;
}
static inline double t_max_abs(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as the maximum */
    }
    return m;
}

/* A malloc'd f32 rounding of x [n] (the caller frees it); NULL for a NULL x. */
static inline float *t_to_f32(const double *x, int64_t n)
{
    if (!x) return NULL;
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; f && i < n; i++) f[i] = (float)x[i];
    return f;
}

/* Central finite differences: grad[i] = (loss(arg) at x_i + h - loss(arg) at x_i - h) / 2h for i < n, with
 * h = h_rel * max(1, |x_i|); loss reads x through arg, and x is restored. */
static inline void t_fd_grad(double *grad, double *x, int64_t n, double h_rel, double (*loss)(const void *),
                             const void *arg)
{
    for (int64_t i = 0; i < n; i++) {
        const double x0 = x[i], h = h_rel * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        const double lp = loss(arg);
        x[i] = x0 - h;
        const double lm = loss(arg);
        x[i] = x0;
        grad[i] = (lp - lm) / (2 * h);
    }
}

/* Checks an analytic gradient got [n] against finite differences want [n]:
 * max |got - want| <= rel * max |want| + abs_tol. */
static inline void t_check_grad(const char *what, const float *got, const double *want, int64_t n, double rel,
                                double abs_tol)
{
    double err = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) err = e;
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    }
    CHECK(err <= rel * scale + abs_tol, "%s: max abs error %.3g, max |FD| %.3g", what, err, scale);
}

#endif
