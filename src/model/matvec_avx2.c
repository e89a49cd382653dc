/* matvec_avx2.c — decode-time products (AVX2 + FMA + F16C): each weight row, f32 or f16/bf16 widened in
 * registers, is used for up to MODEL_MATVEC_MAX_N tokens, so a decode step reads every weight byte once
 * and writes no widened copy. */
#include "model/model.h"

#include <immintrin.h>

/* Weights i..i+7 of a row of dtype wt. */
static inline __m256 load8(const char *row, int64_t i, heed_dtype wt)
{
    if (wt == HEED_F32) return _mm256_loadu_ps((const float *)(const void *)row + i);
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)(const void *)row + i));
    if (wt == HEED_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void model_matvec_avx2(float *y, int64_t ldy, const float *x, const void *w, heed_dtype wt, int64_t n, int64_t in,
                       int64_t j0, int64_t j1)
{
    const int64_t in8 = in & ~(int64_t)7, rb = in * (int64_t)heed_dtype_size(wt); /* bytes per row */
    int64_t j = j0;
    /* one token: four rows at once, four independent FMA chains sharing each load of x */
    for (; n == 1 && j + 4 <= j1; j += 4) {
        const char *r0 = (const char *)w + j * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < in8; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
            a0 = _mm256_fmadd_ps(load8(r0, i, wt), xv, a0);
            a1 = _mm256_fmadd_ps(load8(r1, i, wt), xv, a1);
            a2 = _mm256_fmadd_ps(load8(r2, i, wt), xv, a2);
            a3 = _mm256_fmadd_ps(load8(r3, i, wt), xv, a3);
        }
        float s[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
        for (int64_t i = in8; i < in; i++) {
            s[0] += heed_load_f32(r0, wt, i) * x[i];
            s[1] += heed_load_f32(r1, wt, i) * x[i];
            s[2] += heed_load_f32(r2, wt, i) * x[i];
            s[3] += heed_load_f32(r3, wt, i) * x[i];
        }
        for (int k = 0; k < 4; k++) y[j + k] = s[k];
    }
    for (; j < j1; j++) {
        const char *row = (const char *)w + j * rb;
        __m256 acc[MODEL_MATVEC_MAX_N];
        for (int64_t t = 0; t < n; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t i = 0; i < in8; i += 8) {
            __m256 wv = load8(row, i, wt);
            for (int64_t t = 0; t < n; t++) acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * in + i), acc[t]);
        }
        for (int64_t t = 0; t < n; t++) {
            float s = hsum(acc[t]);
            for (int64_t i = in8; i < in; i++) s += heed_load_f32(row, wt, i) * x[t * in + i];
            y[t * ldy + j] = s;
        }
    }
}
