/* ops.h — the layer operations of the trainer (src/train/), each a forward and a backward written
 * by hand (llm.c style). Activations are row-major f32 with one row per token: N = B * T rows.
 * Every backward ACCUMULATES (+=) into its gradient outputs, so the caller zeroes gradients once per
 * optimizer step and residual branches and gradient accumulation simply add. A NULL gradient output
 * is skipped. All functions are internal (not in heed.h); they use the context's threads. */
#ifndef HEED_TRAIN_OPS_H
#define HEED_TRAIN_OPS_H

#include "core/core.h"

/* A linear layer in Hugging Face's nn.Linear layout: w [O, In] (out features, in features).
 *   out [N, O] = inp [N, In] w^T (+ bias [O] when bias is not NULL)            (OpenBLAS sgemm) */
void train_linear_fwd(heed_ctx *ctx, float *out, const float *inp, const float *w, const float *bias,
                      int64_t N, int64_t In, int64_t O);
/*   dinp [N, In] += dout [N, O] w;   dw [O, In] += dout^T inp;   dbias [O] += sum_n dout[n] */
void train_linear_bwd(heed_ctx *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                      const float *w, int64_t N, int64_t In, int64_t O);

/* RMSNorm as transformers' LlamaRMSNorm: out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps).
 *   out [N, C]; rstd [N] out (saved for the backward); x [N, C]; w [C] */
void train_rmsnorm_fwd(heed_ctx *ctx, float *out, float *rstd, const float *x, const float *w, int64_t N,
                       int64_t C, float eps);
/*   dx [N, C] += ...;  dw [C] += ...  (from dout [N, C], the forward's x, w and rstd) */
void train_rmsnorm_bwd(heed_ctx *ctx, float *dx, float *dw, const float *dout, const float *x, const float *w,
                       const float *rstd, int64_t N, int64_t C);

/* Rotary embedding in place, transformers' rotate_half convention: for each head, element i < D/2
 * pairs with i + D/2 and (x_i, x_{i+D/2}) is rotated by angle pos * inv_freq[i].
 *   x [N, H, D] rows of stride row_stride floats (q or k inside a fused buffer); token n of the batch
 *   sits at position n % T; cos_t, sin_t [T, D/2] (precomputed: cos/sin(t * inv_freq[i]))
 * The backward rotates the gradient by the inverse angle (also in place). */
void train_rope_fwd(heed_ctx *ctx, float *x, int64_t row_stride, const float *cos_t, const float *sin_t,
                    int64_t N, int64_t T, int64_t H, int64_t D);
void train_rope_bwd(heed_ctx *ctx, float *dx, int64_t row_stride, const float *cos_t, const float *sin_t,
                    int64_t N, int64_t T, int64_t H, int64_t D);

/* SwiGLU: h = silu(g) * u with g, u [N, F] (the gate_proj and up_proj outputs); h [N, F].
 *   dg, du [N, F] += ... from dh [N, F] */
void train_swiglu_fwd(heed_ctx *ctx, float *h, const float *g, const float *u, int64_t N, int64_t F);
void train_swiglu_bwd(heed_ctx *ctx, float *dg, float *du, const float *dh, const float *g, const float *u,
                      int64_t N, int64_t F);

/* Token embedding: out [N, C] = wte [V, C] rows ids [N] (every id in [0, V), checked by the caller).
 *   dwte [V, C] += scattered dout [N, C] (deterministic: the result does not depend on thread count) */
void train_embed_fwd(heed_ctx *ctx, float *out, const float *wte, const int32_t *ids, int64_t N, int64_t C);
void train_embed_bwd(heed_ctx *ctx, float *dwte, const float *dout, const int32_t *ids, int64_t N, int64_t C,
                     int64_t V);

/* Softmax cross-entropy over logits [N, V] with targets [N] (a target < 0 is ignored).
 * Returns the SUM of -log p[target] over counted rows (double) and sets *n_counted.
 * When dlogits is not NULL it receives (softmax - onehot) * grad_scale for counted rows and 0 for
 * ignored ones (dlogits may alias logits: the logits are then overwritten). Written (=), not
 * accumulated: it starts the backward. */
double train_xent(heed_ctx *ctx, float *dlogits, int64_t *n_counted, const float *logits, const int32_t *targets,
                  int64_t N, int64_t V, float grad_scale);

#endif /* HEED_TRAIN_OPS_H */
