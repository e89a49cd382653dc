/* gemm.c — matrix products on the context's threads: C is cut into fixed slabs, each one
 * single-threaded OpenBLAS call on one pool thread. f16/bf16 right-hand sides (model weights as
 * they are stored) are widened slab by slab in the thread's scratch, so no f32 copy of a whole
 * matrix is ever made. */
#include "core/core.h"

#include <cblas.h>

/* Rows of C per slab when cutting by rows; columns per slab when cutting by columns. Fixed, so the
 * slabs (and therefore C, bit for bit) do not depend on the number of threads. */
#define GEMM_ROWS 64
#define GEMM_COLS 256

typedef struct gemm_job {
    heed_ctx *ctx;
    int ta, tb, by_cols;
    int64_t m, n, k;
    const float *a;
    int64_t lda;
    const void *b;
    heed_dtype bt;
    int64_t ldb;
    float beta;
    float *c;
    int64_t ldc;
} gemm_job;

static void gemm_task(void *arg, int64_t task, int thread)
{
    const gemm_job *J = arg;
    const CBLAS_TRANSPOSE ta = J->ta ? CblasTrans : CblasNoTrans, tb = J->tb ? CblasTrans : CblasNoTrans;
    if (!J->by_cols) { /* rows r0..r1 of C: rows of op(A), all of B (f32) */
        const int64_t r0 = task * GEMM_ROWS, r1 = r0 + GEMM_ROWS < J->m ? r0 + GEMM_ROWS : J->m;
        const float *a = J->a + (J->ta ? r0 : r0 * J->lda); /* row r of op(A): row r of A, or column r */
        cblas_sgemm(CblasRowMajor, ta, tb, (int)(r1 - r0), (int)J->n, (int)J->k, 1.0f, a, (int)J->lda, J->b,
                    (int)J->ldb, J->beta, J->c + r0 * J->ldc, (int)J->ldc);
        return;
    }
    /* columns j0..j1 of C: all of op(A), columns j0..j1 of op(B), which are rows j0..j1 of B when tb,
     * else columns j0..j1 of every row of B */
    const int64_t j0 = task * GEMM_COLS, nj = J->n - j0 < GEMM_COLS ? J->n - j0 : GEMM_COLS;
    const size_t esz = heed_dtype_size(J->bt);
    const char *b = (const char *)J->b + (size_t)(J->tb ? j0 * J->ldb : j0) * esz;
    const float *bs = (const float *)(const void *)b;
    int64_t ldb = J->ldb;
    if (J->bt != HEED_F32) { /* widen the slab: [nj, k] when tb, else [k, nj] */
        float *w = heed_scratch(J->ctx, thread);
        const int64_t rows = J->tb ? nj : J->k, len = J->tb ? J->k : nj;
        for (int64_t r = 0; r < rows; r++)
            heed_convert(w + r * len, HEED_F32, b + (size_t)(r * J->ldb) * esz, J->bt, (size_t)len);
        bs = w;
        ldb = len;
    }
    cblas_sgemm(CblasRowMajor, ta, tb, (int)J->m, (int)nj, (int)J->k, 1.0f, J->a, (int)J->lda, bs, (int)ldb,
                J->beta, J->c + j0, (int)J->ldc);
}

heed_status heed_gemm(heed_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                      const void *b, heed_dtype bt, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0) return HEED_OK;
    if (bt != HEED_F32 && bt != HEED_F16 && bt != HEED_BF16)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_gemm: B of dtype %s (f32, f16 or bf16 expected)",
                         heed_dtype_name(bt));
    gemm_job J = {ctx, ta, tb, n >= m || bt != HEED_F32, m, n, k, a, lda, b, bt, ldb, beta, c, ldc};
    if (bt != HEED_F32) {
        const heed_status s = heed_scratch_reserve(ctx, sizeof(float) * (size_t)(GEMM_COLS * k));
        if (s != HEED_OK) return s;
    }
    if (k <= 0) { /* an empty sum: C = beta C (OpenBLAS may reject k = 0) */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return HEED_OK;
    }
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    heed_parallel(ctx, J.by_cols ? (n + GEMM_COLS - 1) / GEMM_COLS : (m + GEMM_ROWS - 1) / GEMM_ROWS, gemm_task, &J);
    openblas_set_num_threads(saved);
    return HEED_OK;
}
