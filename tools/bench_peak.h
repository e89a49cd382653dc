/* bench_peak.h — the machine's own reference points for `heed bench`: the OpenBLAS sgemm peak and the
 * streaming read bandwidth, both measured in the calling process so that a kernel's GFLOP/s and GB/s
 * can be reported as ratios of what this machine, at this moment, can do. */
#ifndef HEED_BENCH_PEAK_H
#define HEED_BENCH_PEAK_H

#include "heed.h"

#include <stddef.h>

/* Seconds on a monotonic clock. */
double bench_now(void);

/* Best GFLOP/s of square cblas_sgemm (C = A B) on n_threads OpenBLAS threads over a few sizes
 * (the largest reaches the peak on current CPUs); min_time: seconds spent per size at least.
 * Restores OpenBLAS's previous thread count. Returns a negative value if memory ran out. */
double bench_sgemm_peak_gflops(int n_threads, double min_time);

/* A cold source for streaming reads paired with a kernel's calls: a buffer far above the last-level
 * cache, read from a rotating offset so that every read comes from memory, as a kernel's cold operands
 * do. */
typedef struct bench_stream {
    char *buf;
    size_t bytes, at; /* size, and where the next read starts */
} bench_stream;

/* Allocates and touches a source of `bytes` bytes. Returns -1 when out of memory (s zeroed). */
int bench_stream_init(bench_stream *s, size_t bytes);
void bench_stream_free(bench_stream *s);

/* Seconds to read the next n bytes of s (wrapping; n <= s->bytes) on ctx's threads, the way a kernel
 * runs there (heed's pool, tasks of 256 KiB): the memory bandwidth available to that kernel at that
 * moment, when timed next to its call. Negative when out of memory. */
double bench_stream_read(heed_ctx *ctx, bench_stream *s, size_t n);

/* Best GB/s (1e9 bytes/s) over `reps` whole passes over a source of `bytes` bytes (far above the
 * last-level cache) read with bench_stream_read on ctx's threads. Negative if memory ran out. */
double bench_read_bw_gbps(heed_ctx *ctx, size_t bytes, int reps);

/* `heed bench model ...` (tools/bench_model.c); argv[0] is "model". */
int bench_model(int argc, char **argv);
/* `heed bench train ...` (tools/bench_train.c); argv[0] is "train". */
int bench_train(int argc, char **argv);

#endif /* HEED_BENCH_PEAK_H */
