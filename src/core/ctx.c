/* ctx.c — the heed_ctx: thread pool, instruction-set choice, per-thread scratch and the last error. */
#include "core/core.h"

#include <stdlib.h>

heed_status heed_ctx_create(heed_ctx **out, int n_threads)
{
    if (!out) return HEED_ERR_INVALID;
    *out = NULL;
    if (n_threads <= 0) n_threads = heed_cpu_count();
    heed_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return HEED_ERR_NOMEM;
    ctx->n_threads = n_threads;
    ctx->isa = heed_cpu_isa();
    ctx->scratch = calloc((size_t)n_threads, sizeof *ctx->scratch);
    ctx->scratch_size = calloc((size_t)n_threads, sizeof *ctx->scratch_size);
    if (!ctx->scratch || !ctx->scratch_size || heed_pool_create(&ctx->pool, n_threads - 1) != HEED_OK) {
        heed_ctx_free(ctx);
        return HEED_ERR_NOMEM;
    }
    *out = ctx;
    return HEED_OK;
}

void heed_ctx_free(heed_ctx *ctx)
{
    if (!ctx) return;
    heed_pool_free(ctx->pool);
    if (ctx->scratch)
        for (int i = 0; i < ctx->n_threads; i++) heed_free(ctx->scratch[i]);
    free(ctx->scratch);
    free(ctx->scratch_size);
    free(ctx);
}

int heed_ctx_n_threads(const heed_ctx *ctx) { return ctx->n_threads; }

heed_status heed_ctx_set_isa(heed_ctx *ctx, heed_isa isa)
{
    if (isa < HEED_ISA_SCALAR || isa > HEED_ISA_AVX512)
        return heed_fail(ctx, HEED_ERR_INVALID, "isa: %d is not a heed_isa value", (int)isa);
    if (isa > heed_cpu_isa())
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "isa: this CPU does not support %s (best: %s)",
                         heed_isa_name(isa), heed_isa_name(heed_cpu_isa()));
    ctx->isa = isa;
    return HEED_OK;
}

heed_isa heed_ctx_isa(const heed_ctx *ctx) { return ctx->isa; }

const char *heed_ctx_error(const heed_ctx *ctx) { return ctx ? ctx->err : ""; }

heed_status heed_scratch_reserve(heed_ctx *ctx, size_t bytes)
{
    for (int i = 0; i < ctx->n_threads; i++) {
        if (ctx->scratch_size[i] >= bytes) continue;
        void *p = heed_alloc(bytes);
        if (!p) return heed_fail(ctx, HEED_ERR_NOMEM, "scratch: cannot allocate %zu bytes per thread", bytes);
        heed_free(ctx->scratch[i]);
        ctx->scratch[i] = p;
        ctx->scratch_size[i] = bytes;
    }
    return HEED_OK;
}

void heed_parallel(heed_ctx *ctx, int64_t n_tasks, heed_task_fn fn, void *arg)
{
    heed_pool_run(ctx->pool, n_tasks, fn, arg);
}
