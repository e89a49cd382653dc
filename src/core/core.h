/* core.h — internal services shared by every piece of libheed: the context, error messages,
 * the thread pool, per-thread scratch memory and inline f16/bf16 conversions.
 * Not installed; public callers use heed.h only. */
#ifndef HEED_CORE_H
#define HEED_CORE_H

#include "heed.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

typedef struct heed_pool heed_pool;

#define HEED_ERRMSG_MAX 512

struct heed_ctx {
    heed_pool *pool;          /* n_threads - 1 workers; the calling thread is worker 0 */
    int n_threads;
    heed_isa isa;             /* the instruction set kernels may use (<= heed_cpu_isa()) */
    void **scratch;           /* [n_threads] per-thread scratch buffers, 64-byte aligned */
    size_t *scratch_size;     /* [n_threads] their sizes in bytes */
    char err[HEED_ERRMSG_MAX];
};

/* Formats a message into ctx->err (ctx may be NULL: then the message is dropped) and returns s,
 * so callers can write `return heed_fail(ctx, HEED_ERR_INVALID, "q: D=%lld, expected ...", ...)`. */
heed_status heed_fail(heed_ctx *ctx, heed_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A task of a parallel loop: called once per task index in [0, n_tasks), on thread `thread`
 * (0 <= thread < ctx->n_threads). Tasks run in any order, each exactly once. */
typedef void (*heed_task_fn)(void *arg, int64_t task, int thread);

/* Runs fn over n_tasks on the context's threads (the caller takes part) and returns when all are
 * done. Tasks are handed out dynamically, one index at a time. n_tasks <= 0 returns at once.
 * Not re-entrant: a task must not call heed_parallel on the same context. */
void heed_parallel(heed_ctx *ctx, int64_t n_tasks, heed_task_fn fn, void *arg);

/* Thread pool (used by the context; exposed for tests). */
heed_status heed_pool_create(heed_pool **out, int n_workers);
void heed_pool_free(heed_pool *pool);
/* Runs fn(arg, task, thread) for task in [0, n_tasks) on the workers and the caller (thread 0). */
void heed_pool_run(heed_pool *pool, int64_t n_tasks, heed_task_fn fn, void *arg);

/* Makes sure every thread's scratch buffer holds at least `bytes` bytes (contents not kept).
 * Call before heed_parallel; then heed_scratch(ctx, thread) inside a task. */
heed_status heed_scratch_reserve(heed_ctx *ctx, size_t bytes);
static inline void *heed_scratch(heed_ctx *ctx, int thread) { return ctx->scratch[thread]; }

/* C [m, n] = op(A) [m, k] op(B) [k, n] + beta C, all row-major; op(X) = X^T when tX. A and C are f32;
 * B is f32, f16 or bf16 (a model's weights as stored). Runs on the context's threads: C is cut into
 * fixed slabs, each one single-threaded OpenBLAS call, so C does not depend on the thread count and
 * OpenBLAS starts no threads of its own (its idle workers spin for a while after each call, slowing
 * whatever the pool runs next, such as the decode step after a prefill). Slabs are columns of C when
 * n >= m or B is not f32 (each part of B read once; f16/bf16 slabs widened into the threads' scratch,
 * which must not be in use by the caller), else rows. beta = 0: C is only written.
 * Returns HEED_ERR_INVALID for another dtype of B, HEED_ERR_NOMEM when the scratch cannot grow (C
 * untouched); an f32 B cannot fail. */
heed_status heed_gemm(heed_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                      const void *b, heed_dtype bt, int64_t ldb, float beta, float *c, int64_t ldc);

/* Makes room for one more element in a growing heap array buf [*cap] holding n elements: returns buf
 * itself while n < *cap, else buf reallocated (free with free()) to twice its capacity (min_cap at
 * first) with *cap updated. NULL when out of memory: then buf is still valid and *cap unchanged. */
void *heed_grow(void *buf, size_t *cap, size_t n, size_t elem_size, size_t min_cap);

/* The number of online CPUs (>= 1). */
int heed_cpu_count(void);

/* --- scalar f16 / bf16 conversion, inlined on hot paths ---------------------------------------- */
static inline float heed_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t heed_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float heed_bf16_to_f32_inline(uint16_t h) { return heed_bits_to_f32((uint32_t)h << 16); }

/* Loads element i of a row of dtype t (f32, f16, bf16 or f64) as a float. */
static inline float heed_load_f32(const void *row, heed_dtype t, int64_t i)
{
    switch (t) {
    case HEED_F32: return ((const float *)row)[i];
    case HEED_F16: return heed_f16_to_f32(((const uint16_t *)row)[i]);
    case HEED_BF16: return heed_bf16_to_f32_inline(((const uint16_t *)row)[i]);
    case HEED_F64: return (float)((const double *)row)[i];
    }
    return 0.0f;
}

/* Address of element [i0, i1, i2, 0] of a tensor view (broadcast dimensions have stride 0). */
static inline void *heed_row(const heed_tensor *t, int64_t i0, int64_t i1, int64_t i2)
{
    return (char *)t->data + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2];
}

#endif /* HEED_CORE_H */
