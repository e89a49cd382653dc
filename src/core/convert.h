/* convert.h — the SIMD halves of heed_convert, one per instruction-set file. */
#ifndef HEED_CONVERT_H
#define HEED_CONVERT_H

#include "heed.h"

/* Converts a prefix of n elements between f32 and f16/bf16 with AVX2 + F16C and returns how many it
 * did (a multiple of 8, or 0 for type pairs it does not handle); the caller finishes the tail. */
size_t heed_convert_avx2(void *dst, heed_dtype dst_type, const void *src, heed_dtype src_type, size_t n);

#endif
