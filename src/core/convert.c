/* convert.c — f16 / bf16 <-> f32 conversions (round-to-nearest-even, NaN and Inf kept) and the bulk
 * heed_convert, which uses the F16C path of convert_avx2.c when the CPU has it. */
#include "core/core.h"
#include "core/convert.h"

#include <math.h>

uint16_t heed_f32_to_f16(float f)
{
    uint32_t x = heed_f32_to_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((x >> 13) & 0x3ff); /* NaN stays NaN */
    if (x >= 0x47800000u) return sign | 0x7c00;                                 /* >= 2^16: Inf */
    if (x < 0x38800000u) {
        /* Below the smallest normal half (2^-14): a subnormal m * 2^-24. Scaling by 2^24 is exact and
         * lrintf rounds to nearest even; m == 1024 correctly becomes the smallest normal. */
        return sign | (uint16_t)lrintf(heed_bits_to_f32(x) * 16777216.0f);
    }
    uint32_t h = ((x >> 23) - 112) << 10 | ((x >> 13) & 0x3ff);
    const uint32_t rem = x & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry may round up to Inf: correct */
    return sign | (uint16_t)h;
}

float heed_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        const float f = (float)m * (1.0f / 16777216.0f); /* zero or subnormal, exact */
        return sign ? -f : f;
    }
    if (e == 31) return heed_bits_to_f32(sign | 0x7f800000u | m << 13);
    return heed_bits_to_f32(sign | (e + 112) << 23 | m << 13);
}

uint16_t heed_f32_to_bf16(float f)
{
    uint32_t x = heed_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(x >> 16 | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

float heed_bf16_to_f32(uint16_t h) { return heed_bf16_to_f32_inline(h); }

static void store_f32(void *dst, heed_dtype t, size_t i, float x)
{
    switch (t) {
    case HEED_F32: ((float *)dst)[i] = x; break;
    case HEED_F16: ((uint16_t *)dst)[i] = heed_f32_to_f16(x); break;
    case HEED_BF16: ((uint16_t *)dst)[i] = heed_f32_to_bf16(x); break;
    case HEED_F64: ((double *)dst)[i] = x; break;
    }
}

void heed_convert(void *dst, heed_dtype dst_type, const void *src, heed_dtype src_type, size_t n)
{
    size_t done = 0;
    if (heed_cpu_isa() >= HEED_ISA_AVX2) done = heed_convert_avx2(dst, dst_type, src, src_type, n);
    if (dst_type == HEED_F64 && src_type == HEED_F64) {
        for (size_t i = done; i < n; i++) ((double *)dst)[i] = ((const double *)src)[i];
        return;
    }
    if (dst_type == HEED_F64) {
        for (size_t i = done; i < n; i++) ((double *)dst)[i] = (double)heed_load_f32(src, src_type, (int64_t)i);
        return;
    }
    for (size_t i = done; i < n; i++) store_f32(dst, dst_type, i, heed_load_f32(src, src_type, (int64_t)i));
}
