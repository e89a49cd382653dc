/* convert_avx2.c — bulk f16/bf16 <-> f32 conversion with AVX2 + F16C, 8 elements at a time.
 * Rounding matches the scalar functions of convert.c (nearest even). */
#include "core/convert.h"

#include <immintrin.h>
#include <stdint.h>

static inline __m256i bf16_round(__m256 x)
{
    /* x + 0x7fff + ((x >> 16) & 1), NaN made quiet: the scalar rule, 8 lanes at a time. */
    __m256i u = _mm256_castps_si256(x);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256i q = _mm256_or_si256(u, _mm256_set1_epi32(0x400000));
    return _mm256_srli_epi32(_mm256_blendv_epi8(r, q, _mm256_castps_si256(nan)), 16);
}

size_t heed_convert_avx2(void *dst, heed_dtype dst_type, const void *src, heed_dtype src_type, size_t n)
{
    size_t i = 0, n8 = n & ~(size_t)7;
    if (src_type == HEED_F16 && dst_type == HEED_F32) {
        for (; i < n8; i += 8)
            _mm256_storeu_ps((float *)dst + i,
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)src + i))));
    } else if (src_type == HEED_F32 && dst_type == HEED_F16) {
        for (; i < n8; i += 8)
            _mm_storeu_si128((__m128i *)((uint16_t *)dst + i),
                             _mm256_cvtps_ph(_mm256_loadu_ps((const float *)src + i), _MM_FROUND_TO_NEAREST_INT));
    } else if (src_type == HEED_BF16 && dst_type == HEED_F32) {
        for (; i < n8; i += 8) {
            __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)src + i)));
            _mm256_storeu_ps((float *)dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
        }
    } else if (src_type == HEED_F32 && dst_type == HEED_BF16) {
        for (; i < n8; i += 8) {
            __m256i r = bf16_round(_mm256_loadu_ps((const float *)src + i));
            __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
            _mm_storeu_si128((__m128i *)((uint16_t *)dst + i), packed);
        }
    }
    return i;
}
