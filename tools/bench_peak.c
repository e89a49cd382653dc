/* bench_peak.c — measures this machine's sgemm peak (OpenBLAS) and streaming read bandwidth, the two
 * reference points `heed bench` divides by. Both are "best of several": a ceiling, not a typical value,
 * so a kernel's ratio against them is conservative. Also a streaming read to pair with each call of a
 * kernel (bench_stream_read), for a ratio that the machine's moment-to-moment bandwidth does not move. */
#include "bench_peak.h"

#include "core/core.h"
#include "heed.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_sgemm_peak_gflops(int n_threads, double min_time)
{
    /* OpenBLAS reaches its plateau well before n = 2048 on AVX2/AVX-512 parts; 3072 confirms it. */
    static const int sizes[] = {1024, 2048, 3072};
    const int nmax = sizes[sizeof sizes / sizeof sizes[0] - 1];
    float *a = heed_alloc((size_t)nmax * nmax * sizeof(float));
    float *b = heed_alloc((size_t)nmax * nmax * sizeof(float));
    float *c = heed_alloc((size_t)nmax * nmax * sizeof(float));
    if (!a || !b || !c) {
        heed_free(a), heed_free(b), heed_free(c);
        return -1.0;
    }
    for (size_t i = 0; i < (size_t)nmax * nmax; i++) { /* small values: no denormals, no overflow */
        a[i] = (float)((i * 7u) % 13u) * 0.01f;
        b[i] = (float)((i * 5u) % 11u) * 0.01f;
    }
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(n_threads);
    double best = 0.0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int n = sizes[s];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double spent = 0.0;
        for (int rep = 0; rep < 3 || spent < min_time; rep++) {
            const double t0 = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            const double dt = bench_now() - t0;
            spent += dt;
            const double gflops = 2.0 * n * (double)n * n / dt * 1e-9;
            if (gflops > best) best = gflops;
        }
    }
    openblas_set_num_threads(saved);
    heed_free(a), heed_free(b), heed_free(c);
    return best;
}

/* 256-bit vectors through GCC's vector extension; target_clones compiles the loop for AVX2 and for
 * baseline x86-64 (two 128-bit halves) and picks at load time, so the tool runs on any x86-64. */
typedef float v8f __attribute__((vector_size(32)));

__attribute__((target_clones("avx2", "default")))
static float stream_sum(const v8f *p, size_t n_vec) /* p: [n_vec], n_vec % 4 == 0 */
{
    /* Four independent accumulators keep enough loads in flight to saturate memory, not the adder. */
    v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (size_t i = 0; i < n_vec; i += 4) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
    }
    const v8f s = (a0 + a1) + (a2 + a3);
    float r = 0.0f;
    for (int k = 0; k < 8; k++) r += s[k];
    return r;
}

int bench_stream_init(bench_stream *s, size_t bytes)
{
    s->bytes = bytes & ~(size_t)127;
    s->at = 0;
    s->buf = heed_alloc(s->bytes);
    if (!s->buf) {
        s->bytes = 0;
        return -1;
    }
    memset(s->buf, 1, s->bytes); /* every page mapped before the first timed read */
    return 0;
}

void bench_stream_free(bench_stream *s)
{
    heed_free(s->buf);
    memset(s, 0, sizeof *s);
}

enum { STREAM_TASK = 256 << 10 };

typedef struct stream_job {
    const char *p;         /* the range to read, [p, p + n) */
    size_t n;
    float *sums;           /* [threads] one per thread, kept so the loads cannot be dropped */
} stream_job;

static void stream_task(void *arg, int64_t task, int thread)
{
    stream_job *J = arg;
    const size_t at = (size_t)task * STREAM_TASK, n = J->n - at < STREAM_TASK ? J->n - at : STREAM_TASK;
    J->sums[thread] += stream_sum((const v8f *)(const void *)(J->p + at), n / sizeof(v8f) & ~(size_t)3);
}

double bench_stream_read(heed_ctx *ctx, bench_stream *s, size_t n)
{
    n &= ~(size_t)127;
    if (n > s->bytes) n = s->bytes;
    if (s->at + n > s->bytes) s->at = 0;
    float *sums = calloc((size_t)heed_ctx_n_threads(ctx), sizeof(float));
    if (!sums) return -1.0;
    stream_job J = {s->buf + s->at, n, sums};
    s->at += n;
    const double t0 = bench_now();
    heed_parallel(ctx, (int64_t)((n + STREAM_TASK - 1) / STREAM_TASK), stream_task, &J);
    const double dt = bench_now() - t0;
    free(sums);
    return dt;
}

double bench_read_bw_gbps(heed_ctx *ctx, size_t bytes, int reps)
{
    bench_stream st;
    if (bench_stream_init(&st, bytes)) return -1.0;
    double best = 0.0;
    for (int r = 0; r < reps && best >= 0.0; r++) {
        const double dt = bench_stream_read(ctx, &st, st.bytes);
        best = dt < 0 ? -1.0 : (double)st.bytes / dt * 1e-9 > best ? (double)st.bytes / dt * 1e-9 : best;
    }
    bench_stream_free(&st);
    return best;
}
