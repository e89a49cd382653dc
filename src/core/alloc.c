/* alloc.c — 64-byte aligned allocation (cache lines and AVX-512 vectors) for every buffer heed owns. */
#include "core/core.h"

#include <stdint.h>
#include <stdlib.h>

void *heed_alloc(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL; /* overflow */
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) return NULL;
    return p;
}

void heed_free(void *p) { free(p); }

void *heed_grow(void *buf, size_t *cap, size_t n, size_t elem_size, size_t min_cap)
{
    if (n < *cap) return buf;
    const size_t want = *cap ? 2 * *cap : min_cap;
    if (want < *cap || want > SIZE_MAX / elem_size) return NULL;
    void *p = realloc(buf, want * elem_size);
    if (p) *cap = want;
    return p;
}
