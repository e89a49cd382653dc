/* status.c — version, status names, dtype facts, and heed_fail, the one way library code reports an
 * error: a status code plus a message kept in the context. */
#include "core/core.h"

#include <stdio.h>

const char *heed_version(void) { return HEED_VERSION; }

const char *heed_status_name(heed_status s)
{
    switch (s) {
    case HEED_OK: return "ok";
    case HEED_ERR_INVALID: return "invalid argument";
    case HEED_ERR_NOMEM: return "out of memory";
    case HEED_ERR_UNSUPPORTED: return "unsupported";
    case HEED_ERR_IO: return "i/o error";
    case HEED_ERR_FORMAT: return "malformed input";
    case HEED_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

size_t heed_dtype_size(heed_dtype t)
{
    switch (t) {
    case HEED_F32: return 4;
    case HEED_F16: return 2;
    case HEED_BF16: return 2;
    case HEED_F64: return 8;
    }
    return 0;
}

const char *heed_dtype_name(heed_dtype t)
{
    switch (t) {
    case HEED_F32: return "f32";
    case HEED_F16: return "f16";
    case HEED_BF16: return "bf16";
    case HEED_F64: return "f64";
    }
    return "?";
}

heed_status heed_fail(heed_ctx *ctx, heed_status s, const char *fmt, ...)
{
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
        va_end(ap);
    }
    return s;
}

heed_tensor heed_tensor_4d(void *data, heed_dtype dtype, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    const int64_t es = (int64_t)heed_dtype_size(dtype);
    heed_tensor t = {data, dtype, {n0, n1, n2, n3}, {n1 * n2 * n3 * es, n2 * n3 * es, n3 * es, es}};
    return t;
}
