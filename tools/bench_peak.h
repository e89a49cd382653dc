/* bench_peak.h — the machine's own reference points for `heed bench`: the OpenBLAS sgemm peak and the
 * streaming read bandwidth, both measured in the calling process so that a kernel's GFLOP/s and GB/s
 * can be reported as ratios of what this machine, at this moment, can do. */
#ifndef HEED_BENCH_PEAK_H
#define HEED_BENCH_PEAK_H

#include <stddef.h>

/* Seconds on a monotonic clock. */
double bench_now(void);

/* Best GFLOP/s of square cblas_sgemm (C = A B) on n_threads OpenBLAS threads over a few sizes
 * (the largest reaches the peak on current CPUs); min_time: seconds spent per size at least.
 * Restores OpenBLAS's previous thread count. Returns a negative value if memory ran out. */
double bench_sgemm_peak_gflops(int n_threads, double min_time);

/* Best GB/s (1e9 bytes/s) over `reps` passes of n_threads threads each summing its share of a buffer
 * of `bytes` bytes with 256-bit loads; bytes should be far above the last-level cache.
 * Returns a negative value if memory ran out. */
double bench_read_bw_gbps(int n_threads, size_t bytes, int reps);

/* `heed bench model ...` (tools/bench_model.c); argv[0] is "model". */
int bench_model(int argc, char **argv);
/* `heed bench train ...` (tools/bench_train.c); argv[0] is "train". */
int bench_train(int argc, char **argv);

#endif /* HEED_BENCH_PEAK_H */
