/* bwd_avx2.c — the attention backward's tile products compiled for AVX2 + FMA (body: bwd_body.h).
 * Called only when heed_ctx_isa says the CPU has AVX2. */
#define BWD_KERNELS attn_bwd_kernels_avx2
#define BWD_VBYTES 32
#include "attn/bwd_body.h"
