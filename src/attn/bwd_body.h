/* bwd_body.h — the tile kernels of the attention backward (see attn_bwd_kernels in bwd.h), written
 * once with GCC vector extensions and compiled for the instruction set of the file that includes it:
 * bwd.c (baseline), bwd_avx2.c, bwd_avx512.c. Define BWD_KERNELS to the table's name first. */
#include "attn/bwd.h"

#define KB ATTN_BWD_KB

/* GCC vector extensions: the tile rows are spelled as vectors of the includer's register width
 * BWD_VBYTES (16, 32, 64), so every ISA gets them vectorised. Tile rows are KB floats at 64-byte
 * aligned addresses (bwd.c carves them so). */
#ifndef BWD_VBYTES
#error "define BWD_VBYTES (the vector register width in bytes) before including attn/bwd_body.h"
#endif
typedef float bwd_vf __attribute__((vector_size(BWD_VBYTES), may_alias));
typedef int32_t bwd_vi __attribute__((vector_size(BWD_VBYTES), may_alias));
#define NV (KB * (int)sizeof(float) / BWD_VBYTES)
#define VL (BWD_VBYTES / (int)sizeof(float))

static inline bwd_vf vsel(bwd_vi m, bwd_vf a, bwd_vf b) { return (bwd_vf)(((bwd_vi)a & m) | ((bwd_vi)b & ~m)); }

/* exp(x) (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, 2^n in the exponent bits),
 * within 2 ulp; exactly 0 below -87.3 (including -inf, a -inf bias), 1.65e38 above 88. */
static inline bwd_vf vexp(bwd_vf x)
{
    const bwd_vi under = x < -87.33654f;
    x = vsel(x > 88.0f, (bwd_vf){0} + 88.0f, x);
    x = vsel(under, (bwd_vf){0}, x);
    /* n = rint(x / ln2): adding 1.5 * 2^23 rounds to an integer in the low mantissa bits */
    const bwd_vf big = x * 1.44269504088896341f + 12582912.0f, nf = big - 12582912.0f;
    const bwd_vi n = (bwd_vi)big - 0x4B400000;
    const bwd_vf r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
    bwd_vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const bwd_vf scale = (bwd_vf)((n + 127) << 23);
    return vsel(under, (bwd_vf){0}, p * scale);
}

/* tanh(z) = sign(z) (1 - 2 / (exp(2|z|) + 1)): absolute error ~1e-7, which softcap * tanh keeps. */
static inline bwd_vf vtanh(bwd_vf z)
{
    const bwd_vi neg = z < 0.0f;
    const bwd_vf az = vsel(neg, -z, z);
    const bwd_vf t = 1.0f - 2.0f / (vexp(az * 2.0f) + 1.0f);
    return vsel(neg, -t, t);
}

static void mm_nt(float *c, const float *const *a, const float *bt, int64_t n, int64_t D)
{
    for (int64_t r = 0; r < n; r++) {
        bwd_vf acc[NV];
        for (int v = 0; v < NV; v++) acc[v] = (bwd_vf){0};
        const float *ar = a[r];
        for (int64_t e = 0; e < D; e++) {
            const bwd_vf *b = (const bwd_vf *)(bt + e * KB);
            const float x = ar[e];
            for (int v = 0; v < NV; v++) acc[v] += x * b[v];
        }
        bwd_vf *cr = (bwd_vf *)(c + r * KB);
        for (int v = 0; v < NV; v++) cr[v] = acc[v];
    }
}

static void mm_tn(float *ct, const float *const *a, const float *p, int64_t n, int64_t D)
{
    for (int64_t e = 0; e < D; e++) {
        bwd_vf *cr = (bwd_vf *)(ct + e * KB), acc[NV];
        for (int v = 0; v < NV; v++) acc[v] = cr[v];
        for (int64_t r = 0; r < n; r++) {
            const bwd_vf *pr = (const bwd_vf *)(p + r * KB);
            const float x = a[r][e];
            for (int v = 0; v < NV; v++) acc[v] += x * pr[v];
        }
        for (int v = 0; v < NV; v++) cr[v] = acc[v];
    }
}

static float row_grad(float *p, float *ds, const int32_t *vis, const float *bias, const float *dist,
                      const attn_bwd_row *a)
{
    bwd_vf dt = {0};
    for (int v = 0; v < NV; v++) {
        const bwd_vf s0 = ((const bwd_vf *)p)[v] * a->scale, s1 = s0 * a->tf, dp = ((const bwd_vf *)ds)[v];
        bwd_vf s = s1, dcap = (bwd_vf){0} + 1.0f, pv, dv;
        if (a->cap > 0) {
            const bwd_vf th = vtanh(s1 / a->cap);
            s = th * a->cap;
            dcap = 1.0f - th * th;
        }
        if (dist) s -= a->slope * ((const bwd_vf *)dist)[v];
        if (bias) s += ((const bwd_vf *)bias)[v];
        if (a->softmax) {
            pv = vsel(((const bwd_vi *)vis)[v], vexp(s - a->lse), (bwd_vf){0});
            dv = pv * (dp - a->drow);
        } else {
            pv = vsel(((const bwd_vi *)vis)[v], 1.0f / (1.0f + vexp(-(s + a->sigmoid_bias))), (bwd_vf){0});
            dv = dp * pv * (1.0f - pv);
        }
        dv *= dcap;
        dt += dv * s0;
        ((bwd_vf *)p)[v] = pv;
        ((bwd_vf *)ds)[v] = dv * (a->tf * a->scale);
    }
    float sum = 0.0f;
    for (int l = 0; l < VL; l++) sum += dt[l];
    return sum;
}

const attn_bwd_kernels BWD_KERNELS = {mm_nt, mm_tn, row_grad};

#undef NV
#undef VL
#undef KB
