/* test_linear_probe.c — the linear probes of src/probe/: the objective's gradient against finite differences,
 * fits against closed-form optima and against finite-difference stationarity, a separable set reaching
 * accuracy 1, the stratified split, the Concept Depth figures of hand-made curves, and the JSONL parser. */
#include "harness.h"
#include "heed.h"

#include <string.h>

typedef struct {
    double *w;
    const float *x;
    const int32_t *y;
    int64_t n, d, k;
    double l2;
} objective_arg;

static double objective_at(const void *arg)
{
    const objective_arg *a = arg;
    return heed_linear_probe_objective(NULL, a->w, a->x, a->y, a->n, a->d, a->k, a->l2);
}

static double max_diff(const double *a, const double *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* The analytic gradient against central differences at a random point, with and without the penalty. */
static void test_gradient(void)
{
    t_rng r = {11};
    enum { N = 9, D = 5, K = 3, P = K * (D + 1) };
    float x[N * D];
    int32_t y[N];
    double w[P], g[P], fd[P];
    t_fill_normal(&r, x, N * D, 1.5f);
    for (int i = 0; i < N; i++) y[i] = (int32_t)t_int(&r, 0, K - 1);
    for (int i = 0; i < P; i++) w[i] = t_normal(&r);
    for (int pass = 0; pass < 2; pass++) {
        objective_arg a = {w, x, y, N, D, K, pass ? 0.7 : 0.0};
        const double f = heed_linear_probe_objective(g, w, x, y, N, D, K, a.l2);
        t_fd_grad(fd, w, P, 1e-6, objective_at, &a);
        const double e = max_diff(g, fd, P);
        CHECK(isfinite(f) && e < 1e-7, "l2 %g: gradient vs finite differences max abs %.3g", a.l2, e);
        printf("objective gradient vs finite differences (l2 %g): %.2e\n", a.l2, e);
    }
}

/* A constant feature carries nothing: the weights stay 0 and the biases give the class frequencies, softmax(b) =
 * (1, 2, 3) / 6, with b centred: b_c = log f_c - mean log f. The objective is their entropy. */
static void test_bias_only(heed_ctx *ctx)
{
    const float x[6] = {2, 2, 2, 2, 2, 2};
    const int32_t y[6] = {2, 1, 2, 0, 1, 2};
    const double f[3] = {1 / 6., 2 / 6., 3 / 6.};
    heed_linear_probe p;
    CHECK_OK(ctx, heed_linear_probe_fit(ctx, &p, x, y, 6, 1, 3, 0.1));
    double mean_log = 0, e = 0, ent = 0;
    for (int c = 0; c < 3; c++) mean_log += log(f[c]) / 3, ent -= f[c] * log(f[c]);
    for (int c = 0; p.w && c < 3; c++) e = fmax(e, fmax(fabs(p.w[c * 2]), fabs(p.w[c * 2 + 1] - (log(f[c]) - mean_log))));
    CHECK(p.w && e < 1e-7, "bias-only fit: max abs error %.3g against log frequencies", e);
    CHECK(fabs(p.objective - ent) < 1e-12, "bias-only objective %.15g, entropy %.15g", p.objective, ent);
    CHECK(p.inv_std && p.inv_std[0] == 0, "a constant feature keeps inv_std 0");
    printf("bias-only fit vs log frequencies: %.2e in %lld iterations\n", e, (long long)p.iters);
    heed_linear_probe_release(&p);
}

/* Two rows, x = -1 (class 0) and x = +1 (class 1), standardise to themselves. By symmetry the biases are 0 and
 * w_1 = -w_0 = u / 2 where u minimises log(1 + e^-u) + l2 u^2 / 4, i.e. 1 / (1 + e^u) = l2 u / 2 (bisection). */
static void test_two_points(heed_ctx *ctx)
{
    const float x[2] = {-1, 1};
    const int32_t y[2] = {0, 1};
    const double l2[3] = {0.01, 0.3, 4.0};
    for (int t = 0; t < 3; t++) {
        double lo = 0, hi = 2 / l2[t] + 1;
        for (int it = 0; it < 200; it++) {
            const double mid = 0.5 * (lo + hi);
            if (1 / (1 + exp(mid)) > l2[t] * mid / 2) lo = mid;
            else hi = mid;
        }
        const double u = 0.5 * (lo + hi);
        heed_linear_probe p;
        CHECK_OK(ctx, heed_linear_probe_fit(ctx, &p, x, y, 2, 1, 2, l2[t]));
        if (!p.w) continue;
        const double e = fmax(fmax(fabs(p.w[0] + u / 2), fabs(p.w[2] - u / 2)), fmax(fabs(p.w[1]), fabs(p.w[3])));
        CHECK(e < 1e-6 * fmax(1, u), "l2 %g: w (%.9g %.9g | %.9g %.9g), expected (%.9g 0 | %.9g 0)", l2[t], p.w[0],
              p.w[1], p.w[2], p.w[3], -u / 2, u / 2);
        CHECK(p.train_acc == 1, "two points: train accuracy %g", p.train_acc);
        printf("two points, l2 %g: u = %.6f, fit error %.2e in %lld iterations\n", l2[t], u, e, (long long)p.iters);
        heed_linear_probe_release(&p);
    }
}

/* Overlapping classes (no separating plane): the fit is a stationary point of the objective measured by finite
 * differences on the standardised rows (the objective is strictly convex in the weights and, with centred
 * biases, in the biases), and random nearby points are no lower. Two fits are bit-identical. */
static void test_optimum(heed_ctx *ctx)
{
    t_rng r = {5};
    enum { N = 60, D = 4, K = 3, P = K * (D + 1) };
    float x[N * D], z[N * D];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        y[i] = (int32_t)(i % K);
        for (int j = 0; j < D; j++) x[i * D + j] = (float)(3.0 * j + 0.8 * (j == y[i]) + 1.0 * t_normal(&r));
    }
    heed_linear_probe p, q;
    CHECK_OK(ctx, heed_linear_probe_fit(ctx, &p, x, y, N, D, K, 0.05));
    CHECK_OK(ctx, heed_linear_probe_fit(ctx, &q, x, y, N, D, K, 0.05));
    if (!p.w || !q.w) return;
    CHECK(!memcmp(p.w, q.w, sizeof(double) * P) && p.iters == q.iters, "two fits differ");
    for (int j = 0; j < D; j++) { /* population mean and standard deviation of each feature */
        double mean = 0, var = 0;
        for (int i = 0; i < N; i++) mean += x[i * D + j] / (double)N;
        for (int i = 0; i < N; i++) var += (x[i * D + j] - mean) * (x[i * D + j] - mean) / (double)N;
        CHECK(fabs(p.mean[j] - mean) < 1e-12 && fabs(p.inv_std[j] * sqrt(var) - 1) < 1e-12,
              "feature %d: mean %g inv_std %g, expected %g %g", j, p.mean[j], p.inv_std[j], mean, 1 / sqrt(var));
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) z[i * D + j] = (float)(((double)x[i * D + j] - p.mean[j]) * p.inv_std[j]);
    double w[P], fd[P];
    memcpy(w, p.w, sizeof w);
    objective_arg a = {w, z, y, N, D, K, 0.05};
    t_fd_grad(fd, w, P, 1e-5, objective_at, &a);
    const double f0 = objective_at(&a), gmax = max_diff(fd, (double[P]){0}, P);
    /* z is rounded to f32 here, so the optimum moves by about 1e-7 */
    CHECK(gmax < 1e-5, "finite-difference gradient at the fit: max abs %.3g", gmax);
    CHECK(fabs(f0 - p.objective) < 1e-6, "objective %.12g, fit says %.12g", f0, p.objective);
    int lower = 0;
    for (int t = 0; t < 50; t++) {
        for (int i = 0; i < P; i++) w[i] = p.w[i] + 1e-2 * t_normal(&r);
        lower += objective_at(&a) < f0;
    }
    CHECK(!lower, "%d of 50 nearby points are below the fit", lower);
    CHECK(p.train_acc > 0.4 && p.train_acc < 1, "overlapping classes: train accuracy %g", p.train_acc);
    printf("overlapping classes: |FD gradient| %.2e at the fit (%lld iterations, train accuracy %.3f)\n", gmax,
           (long long)p.iters, p.train_acc);
    heed_linear_probe_release(&p);
    heed_linear_probe_release(&q);
}

/* Three well separated Gaussian blobs in 16 dimensions: train and test accuracy 1, probabilities rows of 1. */
static void test_separable(heed_ctx *ctx)
{
    t_rng r = {9};
    enum { N = 90, D = 16, K = 3 };
    float x[N * D], xtr[N * D], xte[N * D];
    int32_t y[N], ytr[N], yte[N], pred[N];
    uint8_t is_test[N];
    for (int i = 0; i < N; i++) {
        y[i] = (int32_t)((i * 7) % K);
        for (int j = 0; j < D; j++) x[i * D + j] = t_normal(&r) + 6.0f * (j == y[i]) + 2.0f;
    }
    const int64_t n_test = heed_probe_split(is_test, y, N, K, 0.3, 1);
    int64_t ntr = 0, nte = 0;
    for (int i = 0; i < N; i++) {
        float *dst = is_test[i] ? xte + nte * D : xtr + ntr * D;
        memcpy(dst, x + i * D, sizeof(float) * D);
        if (is_test[i]) yte[nte++] = y[i];
        else ytr[ntr++] = y[i];
    }
    CHECK(n_test == 27 && nte == 27, "30%% of 3 x 30 rows: %lld test rows", (long long)n_test);
    heed_linear_probe p;
    CHECK_OK(ctx, heed_linear_probe_fit(ctx, &p, xtr, ytr, ntr, D, K, 0.01));
    if (!p.w) return;
    const double acc = heed_linear_probe_accuracy(&p, xte, yte, nte);
    CHECK(p.train_acc == 1 && acc == 1, "separable blobs: train %g, test %g", p.train_acc, acc);
    double prob[N * K];
    heed_linear_probe_predict(pred, prob, &p, xte, nte);
    double e = 0;
    for (int i = 0; i < nte; i++) e = fmax(e, fabs(prob[i * K] + prob[i * K + 1] + prob[i * K + 2] - 1));
    CHECK(e < 1e-12 && prob[0 * K + pred[0]] > 0.5, "probability rows: sum error %.3g", e);
    printf("separable blobs: train %.3f, test %.3f (%lld iterations)\n", p.train_acc, acc, (long long)p.iters);
    heed_linear_probe_release(&p);
}

static void test_fit_errors(heed_ctx *ctx)
{
    const float x[4] = {0, 1, 2, NAN};
    const int32_t y[4] = {0, 1, 0, 1}, bad[2] = {0, 2};
    heed_linear_probe p;
    CHECK(heed_linear_probe_fit(ctx, &p, x, y, 2, 1, 1, 0.1) == HEED_ERR_INVALID, "k = 1 accepted");
    CHECK(heed_linear_probe_fit(ctx, &p, x, y, 2, 1, 2, -1) == HEED_ERR_INVALID, "l2 < 0 accepted");
    CHECK(heed_linear_probe_fit(ctx, &p, x, y, 2, 1, 2, NAN) == HEED_ERR_INVALID, "l2 NaN accepted");
    CHECK(heed_linear_probe_fit(ctx, &p, x, bad, 2, 1, 2, 0.1) == HEED_ERR_INVALID, "label 2 of k = 2 accepted");
    CHECK(heed_linear_probe_fit(ctx, &p, x, y, 4, 1, 2, 0.1) == HEED_ERR_INVALID &&
          strstr(heed_ctx_error(ctx), "not finite"), "NaN feature: %s", heed_ctx_error(ctx));
    CHECK(!p.w, "a failed fit left arrays");
}

/* Per class round(frac n_c) test rows, within [1, n_c - 1]; a seed reproduces the split, another changes it. */
static void test_split(void)
{
    enum { N = 41 };
    int32_t y[N];
    uint8_t a[N], b[N], c[N];
    for (int i = 0; i < N; i++) y[i] = i < 20 ? 0 : i < 39 ? 1 : i == 39 ? 2 : 3; /* 20, 19, 1, 1 */
    const int64_t n = heed_probe_split(a, y, N, 4, 0.25, 42);
    heed_probe_split(b, y, N, 4, 0.25, 42);
    heed_probe_split(c, y, N, 4, 0.25, 43);
    int per[4] = {0};
    for (int i = 0; i < N; i++) per[y[i]] += a[i];
    CHECK(per[0] == 5 && per[1] == 5 && per[2] == 0 && per[3] == 0 && n == 10, "per class %d %d %d %d (total %lld)",
          per[0], per[1], per[2], per[3], (long long)n);
    CHECK(!memcmp(a, b, N), "the same seed gave another split");
    CHECK(memcmp(a, c, N), "seeds 42 and 43 gave the same split");
    const int32_t two[2] = {0, 1}, pair[4] = {0, 0, 1, 1};
    CHECK(heed_probe_split(a, two, 2, 2, 0.5, 1) == 0, "one row per class: nothing to test on");
    CHECK(heed_probe_split(a, pair, 4, 2, 0.01, 1) == 2 && heed_probe_split(a, pair, 4, 2, 0.99, 1) == 2,
          "two rows per class: one test row each whatever the fraction");
    /* every row of a class is drawn about equally often over seeds */
    int hits[20] = {0};
    for (uint64_t s = 0; s < 2000; s++) {
        heed_probe_split(a, y, N, 4, 0.25, s);
        for (int i = 0; i < 20; i++) hits[i] += a[i];
    }
    int lo = 2000, hi = 0;
    for (int i = 0; i < 20; i++) lo = hits[i] < lo ? hits[i] : lo, hi = hits[i] > hi ? hits[i] : hi;
    CHECK(lo > 400 && hi < 600, "rows drawn %d..%d times of 2000 (expected about 500)", lo, hi);
}

static void test_concept_depth(void)
{
    const double rise[6] = {0.5, 0.52, 0.7, 0.9, 0.9, 0.85}, flat[3] = {0.8, 0.8, 0.79}, zero[3] = {0, 0.3, 0.2};
    heed_concept_depth cd = heed_concept_depth_of(rise, 6);
    CHECK(cd.jump == 2 && cd.converge == 3 && cd.best_acc == 0.9, "rise: jump %lld converge %lld best %g",
          (long long)cd.jump, (long long)cd.converge, cd.best_acc);
    cd = heed_concept_depth_of(flat, 3);
    CHECK(cd.jump == -1 && cd.converge == 0 && cd.best_acc == 0.8, "flat: jump %lld converge %lld", (long long)cd.jump,
          (long long)cd.converge);
    cd = heed_concept_depth_of(zero, 3);
    CHECK(cd.jump == 1 && cd.converge == 1, "from 0: jump %lld converge %lld", (long long)cd.jump,
          (long long)cd.converge);
}

/* parse error of text: HEED_ERR_FORMAT whose message holds want */
static void parse_fails(heed_ctx *ctx, const char *text, const char *want)
{
    heed_probe_data *d = NULL;
    const heed_status s = heed_probe_data_parse(ctx, &d, text, strlen(text), "set.jsonl");
    CHECK(s == HEED_ERR_FORMAT && !d && strstr(heed_ctx_error(ctx), want), "'%s': %s (%s), expected '%s'", text,
          heed_status_name(s), heed_ctx_error(ctx), want);
    heed_probe_data_free(d);
}

static void test_parse(heed_ctx *ctx)
{
    const char *good = "{\"text\": \"In the beginning\", \"label\": 7, \"source\": \"x\"}\n"
                       "\n  \r\n"
                       "{\"ids\": [0, 5, 2147483647], \"label\": -2}\r\n"
                       "{\"label\": 3, \"text\": \"caf\\u00e9\"}  \n"
                       "{\"text\": \"b\", \"label\": 7.0}";
    heed_probe_data *d = NULL;
    CHECK_OK(ctx, heed_probe_data_parse(ctx, &d, good, strlen(good), "set.jsonl"));
    if (d) {
        CHECK(d->n == 4 && d->n_classes == 3 && d->labels[0] == -2 && d->labels[1] == 3 && d->labels[2] == 7,
              "n %lld classes %lld", (long long)d->n, (long long)d->n_classes);
        CHECK(d->ex[0].cls == 2 && d->ex[1].cls == 0 && d->ex[2].cls == 1 && d->ex[3].cls == 2, "classes");
        CHECK(d->ex[0].line == 1 && d->ex[1].line == 4 && d->ex[2].line == 5 && d->ex[3].line == 6, "line numbers");
        CHECK(!strcmp(d->ex[0].text, "In the beginning") && !d->ex[0].ids && !strcmp(d->ex[2].text, "caf\xc3\xa9"),
              "texts");
        CHECK(!d->ex[1].text && d->ex[1].n_ids == 3 && d->ex[1].ids[2] == 2147483647, "ids");
    }
    heed_probe_data_free(d);
    parse_fails(ctx, "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": 1", "set.jsonl:2: not valid JSON");
    parse_fails(ctx, "{\"text\": \"a\"}", "set.jsonl:1: no \"label\"");
    parse_fails(ctx, "{\"text\": \"a\", \"label\": 1.5}", ":1: \"label\" must be an integer");
    parse_fails(ctx, "{\"text\": \"a\", \"label\": \"1\"}", ":1: \"label\" must be an integer");
    parse_fails(ctx, "{\"text\": \"a\", \"label\": 3e9}", ":1: \"label\" must be an integer");
    parse_fails(ctx, "{\"text\": \"\", \"label\": 1}", ":1: \"text\" must be a non-empty string");
    parse_fails(ctx, "{\"text\": 5, \"label\": 1}", ":1: \"text\" must be a non-empty string");
    parse_fails(ctx, "{\"label\": 1}", "exactly one of \"text\" and \"ids\"");
    parse_fails(ctx, "{\"text\": \"a\", \"ids\": [1], \"label\": 1}", "exactly one of");
    parse_fails(ctx, "{\"ids\": [], \"label\": 1}", "non-empty array");
    parse_fails(ctx, "{\"ids\": [1, -1], \"label\": 1}", "\"ids\"[1] is not an integer id");
    parse_fails(ctx, "{\"ids\": [1, 2.5], \"label\": 1}", "\"ids\"[1]");
    parse_fails(ctx, "[1, 2]", "expected a JSON object");
    parse_fails(ctx, "{\"text\": \"a\", \"label\": 1} {}", "set.jsonl:1: not valid JSON near column 27");
    parse_fails(ctx, "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1}", "at least 2 classes");
    parse_fails(ctx, "\n  \n", "no examples");
    parse_fails(ctx, "", "no examples");
    CHECK(heed_probe_data_load(ctx, &d, "/nonexistent/set.jsonl") != HEED_OK &&
          strstr(heed_ctx_error(ctx), "/nonexistent/set.jsonl"), "missing file: %s", heed_ctx_error(ctx));
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 1) != HEED_OK) return 1;
    test_gradient();
    test_bias_only(ctx);
    test_two_points(ctx);
    test_optimum(ctx);
    test_separable(ctx);
    test_fit_errors(ctx);
    test_split();
    test_concept_depth();
    test_parse(ctx);
    heed_ctx_free(ctx);
    return t_done("test_linear_probe");
}
