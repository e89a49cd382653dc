/* test_gemm.c — heed_gemm (core/gemm.c) against a plain double-precision product: both transposes, f32,
 * f16 and bf16 right-hand sides, slabs by rows (m > n, f32) and by columns (n >= m, or f16/bf16), edge
 * slabs, leading dimensions wider than the rows, beta 0 and 1, k = 0; the same C bit for bit on 1 and 3
 * threads; an unsupported dtype refused with C untouched. */
#include "core/core.h"
#include "harness.h"

#include <string.h>

/* c [m, n] = op(a) op(b) + beta c in double, b given as f32 values already rounded to bt. */
static void ref_gemm(double *c, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                     const float *b, int64_t ldb, float beta, const float *c0, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++)
                s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * n + j] = s + (double)beta * (double)c0[i * ldc + j];
        }
}

static void check_case(heed_ctx *ctx1, heed_ctx *ctx3, t_rng *r, int ta, int tb, int64_t m, int64_t n, int64_t k,
                       heed_dtype bt, float beta)
{
    const int64_t pad = 3, lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = malloc(sizeof(float) * (size_t)(arows * lda + 1));
    float *bf = malloc(sizeof(float) * (size_t)(brows * ldb + 1));  /* B's values, rounded to bt */
    uint16_t *bh = malloc(sizeof(uint16_t) * (size_t)(brows * ldb + 1));
    float *c0 = malloc(sizeof(float) * (size_t)(m * ldc + 1)), *c1 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *c3 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    double *ref = malloc(sizeof(double) * (size_t)(m * n + 1));
    t_fill_normal(r, a, arows * lda, 1.0f);
    t_fill_normal(r, bf, brows * ldb, 1.0f);
    t_fill_normal(r, c0, m * ldc, 1.0f);
    if (bt != HEED_F32) { /* round B to bt; the reference multiplies the rounded values */
        heed_convert(bh, bt, bf, HEED_F32, (size_t)(brows * ldb));
        heed_convert(bf, HEED_F32, bh, bt, (size_t)(brows * ldb));
    }
    const void *b = bt == HEED_F32 ? (const void *)bf : (const void *)bh;
    ref_gemm(ref, ta, tb, m, n, k, a, lda, bf, ldb, beta, c0, ldc);
    memcpy(c1, c0, sizeof(float) * (size_t)(m * ldc));
    memcpy(c3, c0, sizeof(float) * (size_t)(m * ldc));
    CHECK_OK(ctx1, heed_gemm(ctx1, ta, tb, m, n, k, a, lda, b, bt, ldb, beta, c1, ldc));
    CHECK_OK(ctx3, heed_gemm(ctx3, ta, tb, m, n, k, a, lda, b, bt, ldb, beta, c3, ldc));
    double err = 0.0;
    int pad_kept = 1;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            const double e = fabs((double)c1[i * ldc + j] - ref[i * n + j]);
            err = e > err ? e : err;
        }
        for (int64_t j = n; j < ldc && i * ldc + j < m * ldc; j++) pad_kept &= c1[i * ldc + j] == c0[i * ldc + j];
    }
    /* f32 sums of k products of N(0,1) values: error ~ sqrt(k) ulp-scale; 1e-4 * (k + 1) is generous */
    CHECK(err <= 1e-4 * (double)(k + 1), "ta %d tb %d m %lld n %lld k %lld %s beta %g: max error %g", ta, tb,
          (long long)m, (long long)n, (long long)k, heed_dtype_name(bt), beta, err);
    CHECK(pad_kept, "columns n..ldc of C untouched (m %lld n %lld)", (long long)m, (long long)n);
    CHECK(memcmp(c1, c3, sizeof(float) * (size_t)(m * ldc)) == 0, "1 and 3 threads agree bit for bit (m %lld n %lld k %lld %s)",
          (long long)m, (long long)n, (long long)k, heed_dtype_name(bt));
    free(a), free(bf), free(bh), free(c0), free(c1), free(c3), free(ref);
}

int main(void)
{
    heed_ctx *ctx1 = NULL, *ctx3 = NULL;
    CHECK_OK(NULL, heed_ctx_create(&ctx1, 1));
    CHECK_OK(NULL, heed_ctx_create(&ctx3, 3));
    t_rng r = {0x6e6d6d6eull};
    /* rows slabs (m > n, f32), column slabs (n >= m, or f16/bf16): sizes that leave partial slabs of 64
     * rows and 256 columns */
    static const int64_t shapes[][3] = {{1, 1, 1},   {3, 5, 7},    {130, 17, 33}, {200, 300, 19},
                                        {5, 600, 64}, {70, 513, 40}, {1, 257, 129}, {300, 2, 3}};
    static const heed_dtype types[] = {HEED_F32, HEED_F16, HEED_BF16};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t t = 0; t < 3; t++)
                    check_case(ctx1, ctx3, &r, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], types[t],
                               (s + (size_t)ta + t) % 2 ? 1.0f : 0.0f);
    check_case(ctx1, ctx3, &r, 0, 1, 9, 300, 0, HEED_BF16, 1.0f); /* k = 0: C = beta C */
    check_case(ctx1, ctx3, &r, 1, 0, 100, 4, 0, HEED_F32, 0.0f);

    float a[4] = {1, 2, 3, 4}, c[4] = {7, 7, 7, 7};
    double b[4] = {1, 0, 0, 1};
    CHECK(heed_gemm(ctx1, 0, 0, 2, 2, 2, a, 2, b, HEED_F64, 2, 0.0f, c, 2) == HEED_ERR_INVALID &&
              c[0] == 7 && c[3] == 7,
          "an f64 B is refused and C untouched");
    CHECK(heed_gemm(ctx1, 0, 0, 0, 2, 2, a, 2, a, HEED_F32, 2, 0.0f, c, 2) == HEED_OK && c[0] == 7,
          "m = 0: nothing to do");
    heed_ctx_free(ctx1);
    heed_ctx_free(ctx3);
    return t_done("test_gemm");
}
