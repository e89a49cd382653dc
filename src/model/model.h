/* model.h — internals of the model runtime (src/model/) shared with its SIMD kernels: the decode
 * matrix-vector product that reads f32, f16 or bf16 weights as they are stored. */
#ifndef HEED_MODEL_H
#define HEED_MODEL_H

#include "core/core.h"

/* Largest number of tokens the matvec kernel takes at once (each weight row is read once for all). */
#define MODEL_MATVEC_MAX_N 4

/* y[t, j] = x[t, :] . w[j, :] for t < n, j in [j0, j1).
 *   y: [n, ldy] f32 out; x: [n, in] f32; w: [out, in] f32, f16 or bf16 (nn.Linear layout); n <= MODEL_MATVEC_MAX_N */
void model_matvec_avx2(float *y, int64_t ldy, const float *x, const void *w, heed_dtype wt, int64_t n, int64_t in,
                       int64_t j0, int64_t j1);

/* Edits the probabilities p [Tk] of one query row in place as iv says (src/model/intervene.c). s [Tk]: the
 * row's logits (-INFINITY: a masked key); sink [Tk]: ACT's hidden-sink flags (read by ACT only). */
void model_edit_row(float *p, const float *s, const uint8_t *sink, const heed_intervention *iv, int64_t Tk);

#endif /* HEED_MODEL_H */
