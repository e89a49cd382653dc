/* gconv.c — the gated causal convolution (contract in gconv.h). Work is split into fixed chunks of
 * GC_CHUNK channels (independent of the thread count); inside a chunk the filter tap s is the outer
 * loop and the channels the inner, contiguous one, so the compiler vectorises it. No scratch memory. */
#include "train/gconv.h"

/* Channels per task: a fixed count, so every value is formed the same way for any thread count. */
#define GC_CHUNK 16

typedef struct {
    float *y, *du, *dg, *dfilt;
    const float *dy, *u, *g, *filt;
    int64_t N, T, C, K;
} gconv_job;

static int64_t n_chunks(int64_t C) { return (C + GC_CHUNK - 1) / GC_CHUNK; }

/* The chunk's channels [c0, c0 + cw) of filter tap s: fs [cw] out. */
static void filter_tap(float *fs, const float *filt, int64_t c0, int64_t cw, int64_t K, int64_t s)
{
    for (int64_t c = 0; c < cw; c++) fs[c] = filt[(c0 + c) * K + s];
}

/* One (sequence, chunk): y = sum over taps, accumulated in place, then gated. */
static void fwd_task(void *arg, int64_t task, int thread)
{
    const gconv_job *J = arg;
    const int64_t nc = n_chunks(J->C), seq = task / nc, c0 = (task % nc) * GC_CHUNK, C = J->C, T = J->T;
    const int64_t cw = C - c0 < GC_CHUNK ? C - c0 : GC_CHUNK, n0 = seq * T;
    float fs[GC_CHUNK];
    (void)thread;
    for (int64_t t = 0; t < T; t++) {
        float *restrict y = J->y + (n0 + t) * C + c0;
        for (int64_t c = 0; c < cw; c++) y[c] = 0.0f;
    }
    for (int64_t s = 0; s < J->K; s++) {
        filter_tap(fs, J->filt, c0, cw, J->K, s);
        for (int64_t t = s; t < T; t++) {
            float *restrict y = J->y + (n0 + t) * C + c0;
            const float *restrict u = J->u + (n0 + t - s) * C + c0;
            for (int64_t c = 0; c < cw; c++) y[c] += fs[c] * u[c];
        }
    }
    for (int64_t t = 0; t < T; t++) {
        float *restrict y = J->y + (n0 + t) * C + c0;
        const float *restrict g = J->g + (n0 + t) * C + c0;
        for (int64_t c = 0; c < cw; c++) y[c] *= g[c];
    }
}

void train_gconv_fwd(heed_ctx *ctx, float *y, const float *u, const float *g, const float *filt, int64_t N,
                     int64_t T, int64_t C, int64_t K)
{
    if (N <= 0 || C <= 0) return;
    gconv_job J = {y, NULL, NULL, NULL, NULL, u, g, filt, N, T, C, K};
    heed_parallel(ctx, (N / T) * n_chunks(C), fwd_task, &J);
}

/* One chunk over every sequence, with w[n, c] = dy[n, c] * g[n, c] and tap s:
 *   dg[n, c]    += dy[n, c] * filt[c, s] * u[n - s, c]          (t >= s)
 *   du[m, c]    += filt[c, s] * w[m + s, c]                      (t(m) + s < T)
 *   dfilt[c, s] += sum_n w[n, c] * u[n - s, c]                   (t >= s; per sequence, in row order) */
static void bwd_task(void *arg, int64_t task, int thread)
{
    const gconv_job *J = arg;
    const int64_t c0 = task * GC_CHUNK, C = J->C, T = J->T, K = J->K;
    const int64_t cw = C - c0 < GC_CHUNK ? C - c0 : GC_CHUNK;
    float fs[GC_CHUNK], acc[GC_CHUNK];
    (void)thread;
    for (int64_t n0 = 0; n0 < J->N; n0 += T)
        for (int64_t s = 0; s < K; s++) {
            filter_tap(fs, J->filt, c0, cw, K, s);
            /* row r of the pass: n = n0 + s + r (dy, g, dg), m = n - s = n0 + r (u, du) */
            const float *dy = J->dy + (n0 + s) * C + c0, *g = J->g + (n0 + s) * C + c0, *u = J->u + n0 * C + c0;
            if (J->dg)
                for (int64_t r = 0; r < T - s; r++) {
                    float *restrict dgr = J->dg + (n0 + s + r) * C + c0;
                    const float *restrict dyr = dy + r * C, *restrict ur = u + r * C;
                    for (int64_t c = 0; c < cw; c++) dgr[c] += dyr[c] * fs[c] * ur[c];
                }
            if (J->du)
                for (int64_t r = 0; r < T - s; r++) {
                    float *restrict dur = J->du + (n0 + r) * C + c0;
                    const float *restrict dyr = dy + r * C, *restrict gr = g + r * C;
                    for (int64_t c = 0; c < cw; c++) dur[c] += fs[c] * (dyr[c] * gr[c]);
                }
            if (J->dfilt) {
                for (int64_t c = 0; c < cw; c++) acc[c] = 0.0f;
                for (int64_t r = 0; r < T - s; r++) {
                    const float *restrict dyr = dy + r * C, *restrict gr = g + r * C, *restrict ur = u + r * C;
                    for (int64_t c = 0; c < cw; c++) acc[c] += (dyr[c] * gr[c]) * ur[c];
                }
                for (int64_t c = 0; c < cw; c++) J->dfilt[(c0 + c) * K + s] += acc[c];
            }
        }
}

void train_gconv_bwd(heed_ctx *ctx, float *du, float *dg, float *dfilt, const float *dy, const float *u,
                     const float *g, const float *filt, int64_t N, int64_t T, int64_t C, int64_t K)
{
    if (N <= 0 || C <= 0 || (!du && !dg && !dfilt)) return;
    gconv_job J = {NULL, du, dg, dfilt, dy, u, g, filt, N, T, C, K};
    heed_parallel(ctx, n_chunks(C), bwd_task, &J);
}
