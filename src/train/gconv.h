/* gconv.h — the gated causal convolution token mixer of the trainer (Zoology's non-attention baseline,
 * BaseConv-like): a per-channel causal filter over each sequence, gated elementwise. Internal (not in
 * heed.h); conventions of ops.h: rows are tokens (N = B * T), backwards ACCUMULATE (+=), NULL skips. */
#ifndef HEED_TRAIN_GCONV_H
#define HEED_TRAIN_GCONV_H

#include "core/core.h"

/* y[n, c] = g[n, c] * sum_{s=0}^{min(t, K-1)} filt[c, s] * u[n - s, c],  t = n % T
 * (causal within each sequence of T rows; u and g come from the caller's linear projections).
 *   y [N, C] out; u, g [N, C]; filt [C, K]; N a multiple of T, 1 <= K <= T.
 * Cost O(N * K * C); results do not depend on the thread count. */
void train_gconv_fwd(heed_ctx *ctx, float *y, const float *u, const float *g, const float *filt, int64_t N,
                     int64_t T, int64_t C, int64_t K);
/*   du [N, C] += ...;  dg [N, C] += ...;  dfilt [C, K] += ...  (from dy [N, C] and the forward's inputs).
 * Parallel over channels, every sum formed in a fixed order: bitwise the same for any thread count. */
void train_gconv_bwd(heed_ctx *ctx, float *du, float *dg, float *dfilt, const float *dy, const float *u,
                     const float *g, const float *filt, int64_t N, int64_t T, int64_t C, int64_t K);

#endif /* HEED_TRAIN_GCONV_H */
